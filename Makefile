# The two set-up-complete commands (see README):  make run   and   make test
# Each creates .venv and installs the package on first use.

PYTHON ?= python3
VENV   ?= .venv
CONFIG ?= config/config.yaml
CORES  ?= all
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.softdisplaced-installed

.PHONY: run test bench dry-run report clean-results help

help:
	@echo "make run    - run the whole workflow on $(CONFIG) (all cores); results in results/"
	@echo "make test   - run the test suite"
	@echo "make bench  - run every benchmark, JSON files in results/benchmarks/"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

run: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --profile workflow/profiles/default \
		--configfile $(CONFIG) --cores $(CORES) $(SNAKEMAKE_ARGS)
	@echo "Done. Results are in results/; start with results/paper/REPORT.md"

test: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/softdisplaced bench --outdir results/benchmarks

dry-run: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --profile workflow/profiles/default \
		--configfile $(CONFIG) -n $(SNAKEMAKE_ARGS)

clean-results:
	rm -rf results/* .snakemake && touch results/.gitkeep
