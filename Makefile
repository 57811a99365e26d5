# Two commands do all set-up on a fresh machine: `make serve` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: serve test lint typecheck unit bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[fast]'
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[fast,test]'
	touch $(VENV)/.installed $@

serve: $(VENV)/.installed
	$(BIN)/kdns serve --conf Corefile

# dig is an independent client the integration tests use; install it when missing.
dig:
	@command -v dig >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bind9-dnsutils >/dev/null; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bind9-dnsutils >/dev/null; fi; }

lint: $(VENV)/.installed-test
	$(BIN)/ruff check kdns tests
	$(BIN)/ruff format --check kdns tests

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy --strict kdns

test: $(VENV)/.installed-test dig lint typecheck
	$(BIN)/python -m pytest -q

bench: $(VENV)/.installed-test
	bench/run.sh

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
