#!/bin/bash
# Server CPU per query of kdns alone, one 8 s closed-loop run per mix: a quick comparison of two
# builds or two Corefiles (the peer benchmark, with its same-run ratios, is the measure of record).
#
#   bash bench/cpu_per_query.sh KDNS COREFILE DATA [MIX ...]
#
# KDNS: the kdns command; COREFILE: a gen_data.py Corefile (port 5320); DATA: the gen_data.py
# directory with the q-MIX.txt files; MIX: a, srvptr, uniq, mix20 (default: a uniq mix20).
# Needs dnsperf, dig and taskset; the server runs on CPU 1, dnsperf on CPU 0.
set -u
[ $# -ge 3 ] || { sed -n 2,10p "$0"; exit 2; }
kdns=$1 conf=$2 data=$3; shift 3
mixes=${*:-a uniq mix20}
log=$(mktemp)
. "$(dirname "$0")/serve_kdns.sh"
start_kdns "$kdns" "$conf" "$log"
trap 'kill $pid 2>/dev/null; rm -f "$log"' EXIT
taskset -c 0 dnsperf -s 127.0.0.1 -p 5320 -d "$data/q-a.txt" -l 3 -q 100 >/dev/null 2>&1  # warm
ticks() { awk '{print $14 + $15}' /proc/$pid/stat; }
steal() { awk '/^cpu / {print $9}' /proc/stat; }
hz=$(getconf CLK_TCK)
for m in $mixes; do
  c0=$(ticks) s0=$(steal)
  done_=$(taskset -c 0 dnsperf -s 127.0.0.1 -p 5320 -d "$data/q-$m.txt" -l 8 -q 100 2>&1 \
    | awk '/Queries completed/ {print $3}')
  c1=$(ticks) s1=$(steal)
  python3 -c "print(f'$m: {($c1 - $c0) / $hz / $done_ * 1e6:.1f} us/query (host steal ticks: $((s1 - s0)))')"
done
