#!/usr/bin/env bash
# Random-subdomain ("water torture") flood: kdns and knot side by side, in a private network
# namespace, server pinned to CPU 1, clients to CPU 0. A closed-loop dnsperf floods names asked
# once (NXDOMAIN) while a second dnsperf sends 2,000 qps of names the server answers all day;
# reported: the legitimate queries' loss and latency (p50/p99), and the flood's qps.
#   bash bench/peers/torture.sh --kdns .venv/bin/kdns      (as root, from the kdns checkout)
# Uses the peer benchmark's data in /tmp/kdns-perf (generated at 1,000 services when missing).
# Ends with `torture: ...` and exit 0 when kdns's legitimate p99 <= max(2 ms, 3 x knot's) and
# its loss <= 0.1 %.
set -u
kdns=; while [ $# -gt 0 ]; do case $1 in --kdns) kdns=$2; shift ;; esac; shift; done
[ -n "$kdns" ] || { echo "usage: torture.sh --kdns CMD"; exit 2; }
case $kdns in /*) ;; *) kdns=$(pwd)/$kdns ;; esac
bench=$(cd "$(dirname "$0")" && pwd)
W=/tmp/kdns-perf
[ -s $W/kdns/Corefile ] || python3 "$bench/gen_data.py" --dir $W --services 1000 --unique 1000 >/dev/null
T=$(mktemp -d /tmp/torture.XXXX)
python3 - "$T" <<'PY'
import random, sys
d = sys.argv[1]; r = random.Random(7)
with open(f"{d}/hot.txt", "w") as f:
    f.writelines(f"svc-{r.randrange(1000)}.default.svc.cluster.local. A\n" for _ in range(50000))
with open(f"{d}/flood.txt", "w") as f:
    f.writelines(f"t{i}-{r.getrandbits(32):x}.default.svc.cluster.local. A\n" for i in range(600000))
PY
ns=torture$$
ip netns add $ns; ip -n $ns link set lo up
cleanup() { [ -n "${spid:-}" ] && kill "$spid" 2>/dev/null; sleep 0.5; ip netns pids $ns 2>/dev/null | xargs -r kill -9 2>/dev/null; ip netns del $ns 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
run() {  # run NAME PORT CMD...
  local name=$1 port=$2; shift 2
  ip netns exec $ns taskset -c 1 "$@" >"$T/$name.log" 2>&1 &
  spid=$!
  for _ in $(seq 1 120); do
    ip netns exec $ns dig +short +time=1 +tries=1 @127.0.0.1 -p $port svc-1.default.svc.cluster.local A 2>/dev/null | grep -q . && break
    sleep 1
  done
  ip netns exec $ns taskset -c 0 dnsperf -s 127.0.0.1 -p $port -d "$T/hot.txt" -l 2 >/dev/null 2>&1
  ip netns exec $ns taskset -c 0 dnsperf -s 127.0.0.1 -p $port -d "$T/flood.txt" -l 13 -c 8 -q 500 >"$T/$name.flood" 2>&1 &
  local fp=$!
  sleep 1
  ip netns exec $ns taskset -c 0 dnsperf -s 127.0.0.1 -p $port -d "$T/hot.txt" -l 10 -Q 2000 -c 2 -q 50 -t 1 -v >"$T/$name.legit" 2>&1
  wait $fp
  kill $spid; wait $spid 2>/dev/null; spid=
  python3 - "$T/$name.legit" "$T/$name.flood" "$name" >>"$T/summary" <<'PY'
import re, sys
legit, flood, name = open(sys.argv[1]).read(), open(sys.argv[2]).read(), sys.argv[3]
def secs(line):
    try:
        return float(line.split()[-1])
    except ValueError:  # "> T ...": a timeout
        return None
lat = sorted(x for x in (secs(l) for l in legit.splitlines() if l.startswith("> ")) if x is not None)
sent = int(re.search(r"Queries sent:\s+(\d+)", legit).group(1))
lost = int(re.search(r"Queries lost:\s+(\d+)", legit).group(1))
fq = float(re.search(r"Queries per second:\s+([\d.]+)", flood).group(1))
p = lambda q: lat[min(len(lat) - 1, int(len(lat) * q / 100))] * 1e3 if lat else float("nan")
print(f"{name} {sent} {lost} {p(50):.3f} {p(99):.3f} {fq:.0f}")
PY
}
mkdir -p $W/run/knot/db
run knot 5301 knotd -c "$bench/conf/knot.conf"
run kdns 5320 "$kdns" serve --conf $W/kdns/Corefile
python3 - "$T/summary" <<'PY'
import sys
rows = {l.split()[0]: l.split()[1:] for l in open(sys.argv[1])}
out, ok = [], True
for n in ("knot", "kdns"):
    sent, lost, p50, p99, fq = rows[n]
    out.append(f"{n}: legit lost {int(lost)}/{sent}, p50 {p50} ms, p99 {p99} ms; flood {fq} qps")
k, r = rows["kdns"], rows["knot"]
limit = max(2.0, 3 * float(r[3]))
if float(k[3]) > limit or int(k[1]) > 0.001 * int(k[0]):
    ok = False
print("torture: " + "; ".join(out) + ("" if ok else f"; FAIL: kdns p99 must be <= {limit:.2f} ms and loss <= 0.1 %"))
sys.exit(0 if ok else 1)
PY
