"""``softdisplaced validate``: fast generator vs Pythia 8 vs the study's events (results/validation/).

    softdisplaced validate --settings JSON --output-dir results/validation \
        [--fast 1=results/skims/soft_emu/bp1.h5 ...] \
        [--pythia8 1=results/skims/soft_emu/bp1_pythia8.h5 ...] \
        [--study-dir ../shared/reference/authors_ntuples] [--benchmarks 1 4] [--no-plots]

Settings keys used: ``validation`` (schema block), ``samples.study_ntuples`` (dir, n_generated).
Without ``--study-dir`` the study directory of ``samples.study_ntuples.dir`` is used when it exists
(and ``samples.study_ntuples.enabled`` is not false).
"""

from __future__ import annotations

from pathlib import Path

from ..cli import add_settings_args
from ..config import settings_from_args


def _pairs(items, flag):
    out = {}
    for it in items or []:
        if "=" not in it:
            raise ValueError(f"{flag} expects BENCHMARK=PATH, got {it!r}")
        k, v = it.split("=", 1)
        try:
            bm = int(k.removeprefix("bp"))
        except ValueError:
            raise ValueError(f"{flag}: benchmark id must be an integer (or bp<id>), got {k!r}") from None
        out[bm] = v
    return out


def register(sub):
    p = sub.add_parser("validate", help="compare generators with the study's events")
    add_settings_args(p)
    p.add_argument("--output-dir", required=True, help="results/validation")
    p.add_argument("--fast", nargs="*", default=[], metavar="ID=SKIM", help="fast-generator skims per benchmark")
    p.add_argument("--pythia8", nargs="*", default=[], metavar="ID=SKIM", help="Pythia 8 skims per benchmark")
    p.add_argument("--study-dir", default=None, help="the study's ntuples (default: samples.study_ntuples.dir)")
    p.add_argument("--benchmarks", nargs="*", type=int, default=None, help="restrict to these benchmark ids")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--references", nargs="*", default=[],
                   help="committed fidelity measurements (validation.fidelity.references)")
    p.add_argument("--yields", help="results/yields/yields.csv (fidelity: project / study-ntuple yields)")
    p.add_argument("--nn-metrics", nargs="*", default=[],
                   help="metrics.json of the networks trained on the skims (fidelity; e.g. one per HtJet definition)")
    p.add_argument("--study-nn-metrics", help="metrics.json of the study-ntuple network (fidelity)")
    p.add_argument("--post-nn-scores", nargs="*", default=[],
                   help="scores of further networks (e.g. the study-compatible one) on the --fast skims (fidelity: "
                        "their post-NN yields; the cut is nn.cut of the settings)")
    p.add_argument("--transfer-factors", help="results/background/transfer_factors.csv (fidelity: kappa)")
    p.add_argument("--cutflows", nargs="*", default=[], metavar="ID:SOURCE=JSON",
                   help="skim cutflows per benchmark and generator, e.g. 1:fast=results/skims/soft_emu/bp1.cutflow.json")
    p.set_defaults(func=run)


def run(args):
    from softdisplaced.validation.generators import run_validation

    settings = settings_from_args(args)
    study = args.study_dir
    if study is None:
        st = (settings.get("samples") or {}).get("study_ntuples") or {}
        cand = st.get("dir")
        if cand and st.get("enabled", "auto") is not False and Path(cand).exists():
            study = cand
    elif not Path(study).is_dir():
        raise FileNotFoundError(f"{study}: study ntuple directory does not exist")
    cutflows: dict = {}
    for it in args.cutflows or []:
        key, _, path = it.partition("=")
        bm, _, src = key.partition(":")
        if not path or not src:
            raise ValueError(f"--cutflows expects ID:SOURCE=JSON, got {it!r}")
        cutflows.setdefault(bm.removeprefix("bp"), {})[src] = path
    fidelity = dict(yields=args.yields, nn_metrics=args.nn_metrics, study_nn_metrics=args.study_nn_metrics,
                    post_nn_scores=args.post_nn_scores, transfer_factors=args.transfer_factors, cutflows=cutflows,
                    references=args.references)
    summary = run_validation(settings, args.output_dir, fast=_pairs(args.fast, "--fast"),
                             pythia8=_pairs(args.pythia8, "--pythia8"), study_dir=study,
                             benchmarks=args.benchmarks, plots=not args.no_plots, fidelity_inputs=fidelity)
    print(f"validation: {len(summary['benchmarks'])} benchmarks, {summary['n_comparisons']} comparisons, "
          f"{summary['n_explained']} above the KS threshold -> {args.output_dir}/REPORT.md")
    return 0
