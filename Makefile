# Two commands for a fresh machine:  `make run` (set up, fetch offline assets, run the quick suite, write the
# report) and `make test` (set up, run the tests). Everything lives in .venv; nothing is installed system-wide
# except Chromium for the report's browser test (Debian package, needs root; skipped with a reason otherwise).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SUITE ?= bench/suites/quick.yaml
RESULTS ?= results/$(basename $(notdir $(SUITE)))

.PHONY: venv run test fetch report lint clean

$(BIN)/transferbench: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch/torchvision first, pinned: these builds install from local files (no multi-GB download).
	$(BIN)/pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install --quiet -e '.[test,ray]'
	touch $@

venv: $(BIN)/transferbench

fetch: venv
	$(BIN)/transferbench fetch $(SUITE)

run: fetch
	$(BIN)/transferbench run $(SUITE) --results $(RESULTS)
	$(BIN)/transferbench report $(RESULTS) -o $(RESULTS)/report.html
	@echo "results: $(RESULTS)/results.parquet (and .csv)   report: $(RESULTS)/report.html"

test: venv
	$(BIN)/python -m pytest -q

lint: venv
	$(BIN)/ruff check bench strategies tasks report tests

clean:
	rm -rf $(VENV) *.egg-info
