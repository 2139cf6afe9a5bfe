# Soft displaced leptons from long-lived charged mediators: the whole analysis DAG.
#
#   events (generate) -> coffea processor (process, merge) -> HDF5 skims
#   -> NN (train, evaluate) -> background, yields, lifetime_scan
#   -> projections (R95 / CLs vs c*tau, luminosity, mass reach), recast
#   -> validate, report (tables, figures, HEPData, REPORT.md, provenance)
#
# Run:  snakemake --profile workflow/profiles/default            (config/config.yaml)
#       snakemake --profile workflow/profiles/default --configfile config/paper.yaml
#       snakemake --profile workflow/profiles/slurm                (on a Slurm cluster)

from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


# Fail at start, naming the key and the schema rule, before anything runs.
from softdisplaced.config import validate_config

validate_config(config, "config/schema.yaml", source=" + ".join(map(str, workflow.configfiles)) or "config")
validate(config, "config/schema.yaml")


include: "rules/common.smk"
include: "rules/generate.smk"
include: "rules/process.smk"
include: "rules/train.smk"
include: "rules/yields.smk"
include: "rules/limits.smk"
include: "rules/validate.smk"
include: "rules/report.smk"


rule all:
    input:
        all_targets(),
    message: "all targets are up to date"
    default_target: True
