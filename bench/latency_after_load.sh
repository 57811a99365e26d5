#!/bin/bash
# Latency of the A mix at a fixed 2,000 qps after one round of loads, kdns alone: what the peer
# benchmark's latency run sees, with the tail (p99.9, max) that pauses show up in.
#
#   bash bench/latency_after_load.sh KDNS COREFILE DATA [UNIQ_DATA]
#
# KDNS: the kdns command; COREFILE: a gen_data.py Corefile (port 5320); DATA: the gen_data.py
# directory with q-a.txt and q-srvptr.txt; UNIQ_DATA: where q-uniq.txt and q-mix20.txt are
# (default DATA). SECONDS_PER_MIX (default 10) sets each load's length. Prints RSS (MiB) after
# each load and the latency percentiles. Needs dnsperf, dig and taskset; the server runs on
# CPU 1, dnsperf on CPU 0.
set -u
[ $# -ge 3 ] || { sed -n 2,12p "$0"; exit 2; }
kdns=$1 conf=$2 data=$3 uniq=${4:-$3} secs=${SECONDS_PER_MIX:-10}
out=$(mktemp -d)
. "$(dirname "$0")/serve_kdns.sh"
start_kdns "$kdns" "$conf" "$out/kdns.log"
trap 'kill $pid 2>/dev/null; rm -rf "$out"' EXIT
rss() { awk '/VmRSS/ {printf "%d", $2 / 1024}' /proc/$pid/status; }
echo -n "rss idle $(rss)"
for m in a srvptr; do
  taskset -c 0 dnsperf -s 127.0.0.1 -p 5320 -d "$data/q-$m.txt" -l "$secs" -q 100 >/dev/null 2>&1
  echo -n ", after $m $(rss)"
done
for m in uniq mix20; do
  taskset -c 0 dnsperf -s 127.0.0.1 -p 5320 -d "$uniq/q-$m.txt" -l "$secs" -q 100 >/dev/null 2>&1
  echo -n ", after $m $(rss)"
done
echo
taskset -c 0 dnsperf -s 127.0.0.1 -p 5320 -d "$data/q-a.txt" -l 10 -Q 2000 -q 100 -v 2>&1 \
  | awk '/^> / {print $NF}' | sort -g >"$out/lat"
python3 - "$out/lat" <<'PY'
import sys
lat = [float(x) * 1e3 for x in open(sys.argv[1])]
n = len(lat)
pick = lambda q: lat[min(n - 1, int(n * q))]
print(f"{n} answers at 2000 qps: p50 {pick(.5):.3f} p99 {pick(.99):.3f} "
      f"p99.9 {pick(.999):.3f} max {lat[-1]:.3f} ms")
PY
echo "rss after $(rss)"
