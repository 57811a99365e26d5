# Sourced by the kdns-only bench scripts. start_kdns KDNS COREFILE LOG runs kdns on CPU 1, sets
# `pid` (the caller's EXIT trap stops it), and returns once it answers a cluster name (a
# gen_data.py Corefile: port 5320) or after 5 minutes (a 10,000-service snapshot loads slowly).
start_kdns() {
  taskset -c 1 $1 serve --conf "$2" >"$3" 2>&1 &
  pid=$!
  for _ in $(seq 600); do
    dig +short +time=1 +tries=1 -p 5320 @127.0.0.1 svc-1.default.svc.cluster.local 2>/dev/null \
      | grep -q '^[0-9]' && return 0
    sleep 0.5
  done
}
