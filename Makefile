# Every target bootstraps its own virtualenv from pyproject.toml.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test lint typecheck unit clean compiled bench bench-web bench-pg stress generate lists-eval

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## run: serve on the embedded defaults (127.0.0.1:5353 and [::1]:5353 when not root), or CONFIG=file
run: compiled
	$(BIN)/filterdns serve $(if $(CONFIG),-c $(CONFIG))

## test: lint, strict types and the whole test suite (after writing the generated files), in one
## process per core and one more: the tests wait on servers and subprocesses half their time
TEST_WORKERS ?= $(shell echo $$(( $$(nproc 2>/dev/null || echo 1) + 1 )))
test: generate lint typecheck compiled
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS)

## compiled: the hot modules compiled to C with mypyc (about a minute, once per change of them;
## without a C compiler or Python's headers it says so and filterdns runs its Python modules)
compiled: $(STAMP)
	@$(BIN)/python scripts/compile.py

## generate: write the JSON Schema and default.yaml from the config section modules
generate: $(STAMP)
	@$(BIN)/python -m filterdns.config.schema > schema/filterdns.schema.json.new
	@cmp -s schema/filterdns.schema.json.new schema/filterdns.schema.json \
	  && rm schema/filterdns.schema.json.new \
	  || { mv schema/filterdns.schema.json.new schema/filterdns.schema.json; echo "wrote schema/filterdns.schema.json"; }
	@$(BIN)/python -m filterdns.config.defaults > filterdns/config/default.yaml.new
	@cmp -s filterdns/config/default.yaml.new filterdns/config/default.yaml \
	  && rm filterdns/config/default.yaml.new \
	  || { mv filterdns/config/default.yaml.new filterdns/config/default.yaml; echo "wrote filterdns/config/default.yaml"; }

lint: $(STAMP)
	$(BIN)/ruff check filterdns tests bench scripts
	$(BIN)/ruff format --check filterdns tests bench scripts

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

## lists-eval: measure the lists per band (recall on held-aside sites, false positives, the
## classifier, size) and write blocklists/EVAL.md (DATA=dir: the list data, default ../shared/data)
lists-eval: $(STAMP)
	$(BIN)/python scripts/lists_eval.py $(if $(DATA),--data $(DATA))

## bench: filterdns against dnsmasq and unbound on loopback, then DNS while the web app is
## polled (bench-web; QUICK=1: under 5 minutes in all)
bench: compiled
	bash bench/setup.sh && $(BIN)/python bench/run.py $(if $(QUICK),--quick)
	$(BIN)/python bench/web_bench.py $(if $(QUICK),--secs 20 --rounds 1 --rows 20000)

## bench-web: DNS p50/p99 with and without a parent polling the web app (about 10 minutes;
## SECS=seconds per measurement, ROUNDS=pairs): bench/RESULTS.md "DNS while the web app is used"
bench-web: $(STAMP)
	$(BIN)/python bench/web_bench.py $(if $(SECS),--secs $(SECS)) $(if $(ROUNDS),--rounds $(ROUNDS))

## bench-pg: 4 instances logging blocked lookups into one PostgreSQL (rows/s, drops), then
## `filterdns report` over 10M rows (about 10 minutes; SECS=flood seconds, ROWS=report rows,
## QUICK=1: 1M rows and 10 s floods): bench/RESULTS.md "Many instances, one PostgreSQL"
bench-pg: $(STAMP)
	bash bench/setup.sh && bash scripts/setup-postgres.sh
	$(BIN)/python bench/pg_bench.py $(if $(QUICK),--quick) $(if $(SECS),--secs $(SECS)) $(if $(ROWS),--rows $(ROWS))

## stress: a million hostile packets, a 10-minute soak with a 1M-name list, a 60 s upstream
## outage and a TCP connection hold (SOAK, PACKETS, OUTAGE=seconds, HOLD=connections)
stress: compiled
	bash bench/setup.sh && $(BIN)/python bench/stress.py $(if $(SOAK),--soak $(SOAK)) $(if $(PACKETS),--packets $(PACKETS)) $(if $(OUTAGE),--outage $(OUTAGE)) $(if $(HOLD),--hold $(HOLD))

clean:
	rm -rf $(VENV) state filterdns/_compiled .pytest_cache .mypy_cache .ruff_cache
