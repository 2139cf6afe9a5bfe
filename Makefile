# The two set-up-complete commands (see README):  make run   and   make test
# Each creates .venv and installs the package on first use.

PYTHON ?= python3
VENV   ?= .venv
CONFIG ?= config/config.yaml
CORES  ?= all
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.softdisplaced-installed

.PHONY: run test bench dry-run report clean-results help unlock

help:
	@echo "make run    - run the whole workflow on $(CONFIG) (all cores); results in results/"
	@echo "make test   - run the test suite"
	@echo "make bench  - run every benchmark, JSON files in results/benchmarks/"
	@echo "make unlock - after a killed run: remove Snakemake's stale lock (refused while a run is active here)"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

# After a killed run Snakemake's lock stays behind ("Directory cannot be locked").  Remove it only when
# no Snakemake process runs in this directory (Linux /proc; `[b]in` keeps pgrep from matching this shell).
unlock: $(STAMP)
	@for p in $$(pgrep -f '[b]in/snakemake' 2>/dev/null); do \
		if [ "$$(readlink /proc/$$p/cwd 2>/dev/null)" = "$(CURDIR)" ]; then \
			echo "make unlock: Snakemake (pid $$p) is still running in $(CURDIR); not unlocking"; exit 1; \
		fi; \
	done
	@if [ -d .snakemake/locks ] && [ -n "$$(ls -A .snakemake/locks)" ]; then \
		PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --profile workflow/profiles/default \
			--configfile $(CONFIG) --unlock --quiet all; \
	fi

run: $(STAMP) unlock
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --profile workflow/profiles/default \
		--configfile $(CONFIG) --cores $(CORES) $(SNAKEMAKE_ARGS)
	@$(BIN)/softdisplaced workflow-times --rules-dir results/benchmarks/rules --log-dir .snakemake/log \
		--output results/benchmarks/workflow.json > /dev/null && \
		echo "Run times: results/benchmarks/workflow.json"
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
