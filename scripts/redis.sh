#!/usr/bin/env bash
# A Redis server for tests and local use: 127.0.0.1 only, a non-default port,
# data in a fresh temporary directory.
#
#   scripts/redis.sh start STATE PORT   # starts it; waits until it answers PING
#   scripts/redis.sh stop STATE         # stops it and removes its directory
#
# STATE is a file this script writes (the directory and port).
set -euo pipefail

die() { echo "redis.sh: $*" >&2; exit 1; }

start() {
  local state=$1 port=$2
  command -v redis-server >/dev/null || die "redis-server is missing: run scripts/setup-debian.sh"
  [[ -f $state ]] && stop "$state" >/dev/null 2>&1 || true
  local dir
  dir=$(mktemp -d -t devcycle-redis-XXXXXX)
  printf '%s\n%s\n' "$dir" "$port" >"$state"
  redis-server --port "$port" --bind 127.0.0.1 --protected-mode yes --dir "$dir" \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" \
    --save "" --appendonly no >/dev/null
  for _ in $(seq 100); do
    if [[ $(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null) == PONG ]]; then
      echo "redis.sh: Redis on 127.0.0.1:$port, data in $dir"
      return
    fi
    sleep 0.1
  done
  cat "$dir/redis.log" >&2 || true
  die "the server does not answer on port $port"
}

stop() {
  local state=$1
  [[ -f $state ]] || return 0
  local dir port
  dir=$(sed -n 1p "$state")
  port=$(sed -n 2p "$state")
  redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || true
  for _ in $(seq 50); do
    [[ -f $dir/redis.pid ]] && kill -0 "$(cat "$dir/redis.pid")" 2>/dev/null || break
    sleep 0.1
  done
  rm -rf "$dir" "$state"
}

case ${1:-} in
  start) [[ $# -eq 3 ]] || die "usage: start STATE PORT"; start "$2" "$3" ;;
  stop) [[ $# -eq 2 ]] || die "usage: stop STATE"; stop "$2" ;;
  *) die "usage: $0 start STATE PORT | stop STATE" ;;
esac
