#!/usr/bin/env bash
# Runs the SDLC example against a running `devcycle serve` that allows the
# example agents (devcycle serve --config examples/devcycle.toml):
# registers four process agents (analyze, codegen, test, deploy), applies
# examples/workflows/sdlc.json, starts a run and follows it to the end.
#
#   DEVCYCLE_SERVER   default http://127.0.0.1:8080
#   DEVCYCLE_TOKEN    an admin's access token or API key, or
#   DEVCYCLE_PASSWORD the admin's password (login DEVCYCLE_LOGIN, default admin)
#
# Exits 0 when the run succeeded, 1 when it failed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
server=${DEVCYCLE_SERVER:-http://127.0.0.1:8080}
api=$server/api/v1
python=${DEVCYCLE_PYTHON:-/usr/bin/python3}

token=${DEVCYCLE_TOKEN:-}
if [[ -z $token ]]; then
  [[ -n ${DEVCYCLE_PASSWORD:-} ]] || { echo "set DEVCYCLE_TOKEN or DEVCYCLE_PASSWORD" >&2; exit 64; }
  token=$(jq -n --arg l "${DEVCYCLE_LOGIN:-admin}" --arg p "$DEVCYCLE_PASSWORD" '{login: $l, password: $p}' |
    curl -sf -X POST "$api/auth/login" -H 'Content-Type: application/json' -d @- | jq -r .access_token)
fi
call() {  # call METHOD PATH [JSON]: prints the body; fails on any status but 2xx and 409
  local method=$1 path=$2 body=${3:-}
  local out status
  out=$(mktemp)
  status=$(curl -s -o "$out" -w '%{http_code}' -X "$method" "$api$path" \
    -H "Authorization: Bearer $token" -H 'Content-Type: application/json' ${body:+-d "$body"})
  if [[ $status != 2* && $status != 409 ]]; then
    echo "$method $path: HTTP $status: $(cat "$out")" >&2
    rm -f "$out"
    return 1
  fi
  cat "$out"
  rm -f "$out"
}

call POST /agent-types '{"name": "sdlc-agent", "description": "An agent of the SDLC example"}' >/dev/null
for spec in analyze:requirements-analysis codegen:codegen test:testing deploy:deployment; do
  name=${spec%%:*} capability=${spec#*:}
  id=$(call GET "/agents?label=example:sdlc&label=role:$name" | jq -r '.items[0].id // empty')
  if [[ -z $id ]]; then
    id=$(call POST /agents "$(jq -n --arg n "sdlc-$name" \
      '{name: $n, type: "sdlc-agent", capacity: 2, labels: {example: "sdlc", role: ($n | ltrimstr("sdlc-"))}}')" |
      jq -r .id)
  fi
  executor=$(jq -cn --arg py "$python" --arg script "$here/agents/$name.py" '[$py, $script]')
  call POST "/agents/$id/versions" "$(jq -n --arg e "process:$executor" --arg c "$capability@1.0.0" \
    '{version: "1.0.0", capabilities: [$c], executor: $e}')" >/dev/null
  if [[ $(call GET "/agents/$id" | jq -r '.active_version // empty') != 1.0.0 ]]; then
    call POST "/agents/$id/deploy" '{"version": "1.0.0"}' >/dev/null
  fi
  echo "agent sdlc-$name ($capability): $executor"
done

version=$(call POST /workflows "@$here/../workflows/sdlc.json" | jq -r .version)
echo "workflow sdlc version $version"

input=$(jq -n --arg r $'Users can sign up\nUsers can log in\nAdmins can list users' \
  '{requirements: $r, environment: "staging"}')
run=$(call POST /runs "$(jq -n --argjson i "$input" '{workflow: "sdlc", input: $i}')" | jq -r .id)
echo "run $run started"

for _ in $(seq 600); do
  detail=$(call GET "/runs/$run")
  status=$(jq -r .status <<<"$detail")
  case $status in succeeded|failed|cancelled|timed_out) break ;; esac
  sleep 0.2
done
jq -r '.tasks[] | "  \(.key): \(.status)"' <<<"$detail"
echo "run $run $status"
if [[ $status == succeeded ]]; then
  jq '.tasks[] | select(.key == "deploy") | .output' <<<"$detail"
  exit 0
fi
jq -r '.error // empty' <<<"$detail" >&2
exit 1
