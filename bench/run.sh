#!/usr/bin/env bash
# `make bench`: kdns against knot, unbound and dnsmasq with dnsperf, in one interleaved run.
# The harness is bench/peers/ (its README says what it measures); results land in
# /tmp/kdns-perf/results-*.md. Needs root (network namespace, apt for the peers) and 2 cores.
# Extra arguments go to run-peers.sh, e.g. `make bench ARGS="--quick"` or
# `bench/run.sh --services 10000`.
set -euo pipefail
cd "$(dirname "$0")/.."
exec bash bench/peers/run-peers.sh --kdns .venv/bin/kdns --servers knot,unbound,dnsmasq,kdns "$@"
