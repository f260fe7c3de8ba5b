# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CONFIG ?= examples/demo.yaml

.PHONY: run test test-windows lint typecheck bench bench-compare clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/orchestrator run -c $(CONFIG)

test: $(STAMP)
	$(PY) -m pytest -q

# The suite under Windows CPython on Wine; sets itself up under .wine-lane/ (see .ci/windows-lane.sh).
test-windows:
	bash .ci/windows-lane.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check orchestrator tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy --platform win32 orchestrator
	$(VENV)/bin/lint-imports

bench: $(STAMP)
	$(PY) bench/log_throughput.py
	$(PY) bench/restart_latency.py
	$(PY) bench/health_cost.py
	$(PY) bench/api_latency.py
	$(PY) bench/idle.py

# Not part of `make test` or CI: the peers go into bench/.peers (git-ignored), never into .venv.
PEERS := bench/.peers
# A peer that fails to install is a `–` in the table with the last line of its log here as the reason.
bench-compare:
	test -x $(PEERS)/venv/bin/python || $(PYTHON) -m venv $(PEERS)/venv
	$(PEERS)/venv/bin/pip install --quiet py-spy -e .
	# pip compiled the peers' bytecode at install; ours is editable: compile it too, or every CLI call
	# (with PYTHONDONTWRITEBYTECODE set) compiles our modules from source, +60 ms (docs/benchmarks.md)
	$(PEERS)/venv/bin/python -m compileall -q orchestrator
	-$(PEERS)/venv/bin/pip install --quiet supervisor==4.3.0 >$(PEERS)/supervisor-install.log 2>&1
	-if command -v npm >/dev/null; then npm install --silent --no-audit --no-fund --prefix $(PEERS)/pm2 pm2@7 \
	  >$(PEERS)/pm2-install.log 2>&1; else echo "no npm on this machine" >$(PEERS)/pm2-install.log; fi
	$(PEERS)/venv/bin/python bench/compare.py

clean:
	rm -rf $(VENV) build *.egg-info
	if [ -d .wine-lane ]; then WINEPREFIX=$$PWD/.wine-lane/prefix wineserver -k 2>/dev/null || true; rm -rf .wine-lane; fi
