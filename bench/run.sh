#!/usr/bin/env bash
# `make bench`: kdns against knot, unbound and dnsmasq with dnsperf, in one interleaved run.
# The harness is bench/peers/ (its README says what it measures); results land in
# /tmp/kdns-perf/results-*.md. Needs root (network namespace, apt for the peers) and 2 cores.
# Extra arguments go to run-peers.sh, e.g. `make bench ARGS="--quick"` or
# `bench/run.sh --services 10000`.
set -euo pipefail
cd "$(dirname "$0")/.."
# Every mix, the names asked once (uniq, mix20) included, unless --mixes is given.
mixes=(--mixes a,srvptr,fwd,uniq,mix20)
for arg in "$@"; do [ "$arg" = --mixes ] && mixes=(); done
exec bash bench/peers/run-peers.sh --kdns .venv/bin/kdns --servers knot,unbound,dnsmasq,kdns \
  "${mixes[@]}" "$@"
