#!/usr/bin/env bash
# HTTP load on `devcycle serve` with wrk: GET /healthz and an authenticated
# GET /api/v1/agents (20 agents), keep-alive. Prints req/s and latency
# percentiles from wrk, the server's idle resident memory and its time to
# ready. Usage: bench/http_load.sh [build dir] [seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/dev}
seconds=${2:-10}
connections=${3:-64}
bin=$build/server/devcycle
command -v wrk >/dev/null || { echo "wrk is missing: bash scripts/setup-debian.sh" >&2; exit 1; }
[[ -x $bin ]] || { echo "$bin is missing: cmake --build --preset dev" >&2; exit 1; }

dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
"$bin" serve --listen 127.0.0.1:0 --database "sqlite://$dir/devcycle.db" \
  --master-key-file "$dir/devcycle.key" --rate-limit 10000000 --rate-burst 10000000 \
  --log-level warn >"$dir/out" 2>"$dir/err" &
pid=$!
for _ in $(seq 100); do grep -q "It is shown only" "$dir/out" 2>/dev/null && break; sleep 0.1; done
port=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$dir/out")
password=$(awk '/password:/ {print $2}' "$dir/out")
url=http://127.0.0.1:$port
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
token=$(curl -sf -X POST "$url/api/v1/auth/login" -H 'Content-Type: application/json' \
  -d "{\"login\":\"admin\",\"password\":\"$password\"}" | json '["access_token"]')
auth=(-H "Authorization: Bearer $token" -H 'Content-Type: application/json')
curl -sf "${auth[@]}" -X POST "$url/api/v1/agent-types" -d '{"name":"bench"}' >/dev/null
for i in $(seq 20); do
  curl -sf "${auth[@]}" -X POST "$url/api/v1/agents" \
    -d "{\"name\":\"agent-$i\",\"type\":\"bench\",\"labels\":{\"n\":\"$i\"}}" >/dev/null
done
sleep 1
echo "== idle resident memory: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"
echo "== $(grep -o "ready in [0-9]* ms" "$dir/out")"

echo "== GET /healthz ($connections connections, ${seconds}s)"
wrk -t2 -c"$connections" -d"${seconds}s" --latency "$url/healthz" | grep -E "Requests/sec|50%|99%|Non-2xx|Socket errors"
echo "== GET /api/v1/agents, Bearer JWT, 20 agents ($connections connections, ${seconds}s)"
PERF_HOOK=${PERF_HOOK:-}; [[ -n $PERF_HOOK ]] && (perf record --call-graph dwarf,16384 -F 499 -p $pid -o /tmp/perf.data -- sleep $((seconds-1)) >/dev/null 2>&1 &)
wrk -t2 -c"$connections" -d"${seconds}s" --latency -H "Authorization: Bearer $token" \
  "$url/api/v1/agents" | grep -E "Requests/sec|50%|99%|Non-2xx|Socket errors"
echo "== resident memory after load: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"
