#!/usr/bin/env bash
# HTTP load on `devcycle serve` with wrk (2 threads, keep-alive), each row
# labelled with the caches it passes through:
#   - GET /healthz;
#   - the authenticated GET /api/v1/agents (20 agents) with the server's
#     1-second response cache on and off (agent_list_cache_ms=0), with one
#     token and with many distinct tokens (one per user, round-robin through
#     bench/wrk_tokens.lua);
#   - a write mix: the list read while one request in ten changes an agent,
#     which drops the cached list each time (bench/wrk_mix.lua).
# Also the server's idle resident memory and its time to ready.
# Usage: bench/http_load.sh [build dir] [seconds] [connections] [users]
# Setup (users, logins) uses argon2id at OWASP's minimum (19 MiB) so that
# 1,000 logins take seconds; no row measures a login.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/dev}
seconds=${2:-10}
connections=${3:-64}
users=${4:-1000}
bin=$build/server/devcycle
command -v wrk >/dev/null || { echo "wrk is missing: bash scripts/setup-debian.sh" >&2; exit 1; }
[[ -x $bin ]] || { echo "$bin is missing: cmake --build --preset dev" >&2; exit 1; }
[[ $users =~ ^[1-9][0-9]*$ ]] || { echo "users: a whole number of at least 1 (got $users)" >&2; exit 1; }

dir=$(mktemp -d)
pid=
stop_server() {
  [[ -n $pid ]] || return 0
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=
}
trap 'stop_server; rm -rf "$dir"' EXIT

# start_server CACHE_MS: the server on the one database of this run.
start_server() {
  : >"$dir/out"
  DEVCYCLE_ARGON2_MEMORY_KIB=19456 DEVCYCLE_AGENT_LIST_CACHE_MS=$1 \
    "$bin" serve --listen 127.0.0.1:0 --database "sqlite://$dir/devcycle.db" \
    --master-key-file "$dir/devcycle.key" --rate-limit 10000000 --rate-burst 10000000 \
    --login-threads 2 --log-level warn >"$dir/out" 2>"$dir/err" &
  pid=$!
  for _ in $(seq 200); do grep -q "listening on" "$dir/out" 2>/dev/null && break; sleep 0.05; done
  port=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$dir/out")
  url=http://127.0.0.1:$port
  for _ in $(seq 100); do curl -sf "$url/readyz" >/dev/null && break; sleep 0.05; done
}

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
login() {
  curl -sf -X POST "$url/api/v1/auth/login" -H 'Content-Type: application/json' \
    -d "{\"login\":\"$1\",\"password\":\"$2\"}" | json '["access_token"]'
}
# row LABEL [wrk arguments...]: one wrk run, its throughput and latencies;
# the script fails when wrk fails or any answer is not a 2xx.
row() {
  local label=$1
  shift
  echo "== $label ($connections connections, ${seconds}s)"
  wrk -t2 -c"$connections" -d"${seconds}s" --latency "$@" >"$dir/wrk" 2>&1 ||
    { cat "$dir/wrk" >&2; exit 1; }
  grep -E "Requests/sec|^ +50%|^ +99%|Socket errors" "$dir/wrk"
  if grep -q "Non-2xx" "$dir/wrk"; then
    grep "Non-2xx" "$dir/wrk" >&2
    exit 1
  fi
}
# logins: one access token per user (and the admin's), fresh for this server.
logins() {
  token=$(login admin "$password")
  : >"$dir/tokens"
  for i in $(seq "$users"); do login "user$i" "bench password $i" >>"$dir/tokens"; done
}

start_server 1000
for _ in $(seq 100); do grep -q "It is shown only" "$dir/out" 2>/dev/null && break; sleep 0.1; done
password=$(awk '/password:/ {print $2}' "$dir/out")
token=$(login admin "$password")
auth=(-H "Authorization: Bearer $token" -H 'Content-Type: application/json')
curl -sf "${auth[@]}" -X POST "$url/api/v1/agent-types" -d '{"name":"bench"}' >/dev/null
: >"$dir/agents"
for i in $(seq 20); do
  curl -sf "${auth[@]}" -X POST "$url/api/v1/agents" \
    -d "{\"name\":\"agent-$i\",\"type\":\"bench\",\"labels\":{\"n\":\"$i\"}}" |
    json '["id"]' >>"$dir/agents"
done
echo "== setup: $users users, each logged in once (distinct tokens)"
: >"$dir/tokens"
for i in $(seq "$users"); do
  curl -sf "${auth[@]}" -X POST "$url/api/v1/users" -d "{\"email\":\"u$i@example.com\",\
\"username\":\"user$i\",\"password\":\"bench password $i\",\"role\":\"viewer\"}" >/dev/null
done
logins
sleep 1
echo "== idle resident memory: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"

row "GET /healthz" "$url/healthz"
row "GET /api/v1/agents, response cache on (1 s), one token (warm: cached list, token memo)" \
  -H "Authorization: Bearer $token" "$url/api/v1/agents"
TOKENS_FILE=$dir/tokens
export TOKENS_FILE
row "GET /api/v1/agents, response cache on, $users tokens round-robin (cached list; tokens and states cached after first use)" \
  -s bench/wrk_tokens.lua "$url/api/v1/agents"
TOKEN=$token AGENTS_FILE=$dir/agents WRITE_EVERY=10
export TOKEN AGENTS_FILE WRITE_EVERY
row "mix: 9 GET /api/v1/agents to 1 PATCH of an agent, response cache on (each PATCH drops it)" \
  -s bench/wrk_mix.lua "$url"
echo "== resident memory after load: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"
stop_server

start_server 0
echo "== $(grep -o "ready in [0-9]* ms" "$dir/out") (second start, $users users)"
logins  # tokens live 15 minutes: fresh ones for the second half
TOKEN=$token
row "GET /api/v1/agents, response cache off, one token (list read and written each time)" \
  -H "Authorization: Bearer $token" "$url/api/v1/agents"
row "GET /api/v1/agents, response cache off, $users tokens round-robin (list each time; tokens and states cached after first use)" \
  -s bench/wrk_tokens.lua "$url/api/v1/agents"
row "mix: 9 GET /api/v1/agents to 1 PATCH of an agent, response cache off" \
  -s bench/wrk_mix.lua "$url"
