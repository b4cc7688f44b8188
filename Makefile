# Two commands for a fresh machine with Python 3.11: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXAMPLE ?= examples/checkout_service/app.py

.PHONY: run test lint layout typecheck layers pytest browser bytecode bench clean install install-dev

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# the stamp files re-install when pyproject.toml, setup.py or a C source or header change
C_SOURCES := $(wildcard probes/*.c probes/*.h advisor/embed/*.c)
$(VENV)/.installed: pyproject.toml setup.py $(C_SOURCES) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml setup.py $(C_SOURCES) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## run: install advisor and profile the example service; the report goes to stderr
run: install bytecode
	$(BIN)/advisor run --json advisor-report.json $(EXAMPLE)
	@echo "JSON report written to advisor-report.json"

## test: install the dev extras, then lint, type-check, check layering and run every test
test: install-dev lint typecheck layers pytest

lint: install-dev
	$(BIN)/ruff check advisor probes rules tests benchmarks examples

# mypy and import-linter cannot follow setuptools' package-dir mapping (probes/ ->
# advisor.probes), so they read a tree of symlinks laid out as the installed package
layout:
	rm -rf build/layout && mkdir -p build/layout/advisor
	for f in advisor/*; do ln -s ../../../$$f build/layout/advisor/; done
	ln -s ../../../probes build/layout/advisor/probes
	ln -s ../../../rules build/layout/advisor/rules

typecheck: install-dev layout
	cd build/layout && ../../$(BIN)/mypy --config-file ../../pyproject.toml -p advisor

layers: install-dev layout
	cd build/layout && PYTHONPATH=. ../../$(BIN)/lint-imports --config ../../pyproject.toml

# the HTML report's browser test drives Debian's chromium (playwright's own download needs its CDN)
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO=sudo; else SUDO=; fi; \
	  $$SUDO apt-get update -q && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

# the tests start advisor in hundreds of subprocesses: compile its modules once (where
# PYTHONDONTWRITEBYTECODE is set, as on our CI machines, each process would compile all of
# them again, ~0.2 s of every `advisor run`)
bytecode: install
	$(BIN)/python -m compileall -q advisor probes rules >/dev/null

pytest: install-dev browser bytecode
	$(BIN)/python -m pytest -q

## bench: overhead and scale benchmarks (minutes; not part of make test)
bench: install-dev
	$(BIN)/python benchmarks/overhead.py
	$(BIN)/python benchmarks/scale.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache advisor-report.json
