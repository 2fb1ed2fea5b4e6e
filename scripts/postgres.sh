#!/usr/bin/env bash
# A PostgreSQL 15 server for tests and local use: its own cluster in a fresh
# temporary directory, listening on 127.0.0.1 only, trust authentication on
# loopback, a database "devcycle".
#
#   scripts/postgres.sh start STATE PORT   # initdb + pg_ctl start; waits until it answers
#   scripts/postgres.sh stop STATE         # stops it and removes its directory
#   scripts/postgres.sh url STATE          # postgresql://postgres@127.0.0.1:PORT/devcycle
#   scripts/postgres.sh restart STATE      # a fast restart (fault tests), data kept
#
# STATE is a file this script writes (the cluster's directory and port) so
# that stop finds what start made. initdb and pg_ctl refuse to run as root
# (CI runs as root): then they run as the "postgres" user that Debian's
# postgresql package creates.
set -euo pipefail

BIN=/usr/lib/postgresql/15/bin
die() { echo "postgres.sh: $*" >&2; exit 1; }

as_owner() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

start() {
  local state=$1 port=$2
  [[ -x $BIN/initdb ]] || die "PostgreSQL 15 is missing: run scripts/setup-debian.sh"
  [[ -f $state ]] && stop "$state" >/dev/null 2>&1 || true
  local dir
  dir=$(mktemp -d -t devcycle-postgres-XXXXXX)
  if [[ $(id -u) -eq 0 ]]; then
    id postgres >/dev/null 2>&1 || die "no postgres user (install the postgresql-15 package)"
    chown postgres:postgres "$dir"
  fi
  printf '%s\n%s\n' "$dir" "$port" >"$state"
  as_owner "$BIN/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 \
    --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  # fsync off: a test fixture. Autovacuum every second, as a busy engine's
  # server should run it (docs/operations.md): the batched statements are
  # planned on current statistics.
  local options="-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off"
  options+=" -c max_connections=200 -c autovacuum_naptime=1s"
  as_owner "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -o "$options" \
    start >/dev/null || { cat "$dir/server.log" >&2; die "the server did not start on port $port"; }
  for _ in $(seq 100); do
    if "$BIN/pg_isready" -q -h 127.0.0.1 -p "$port"; then
      "$BIN/createdb" -h 127.0.0.1 -p "$port" -U postgres devcycle
      echo "postgres.sh: PostgreSQL 15 on 127.0.0.1:$port, data in $dir"
      return
    fi
    sleep 0.1
  done
  die "the server does not answer on port $port"
}

stop() {
  local state=$1
  [[ -f $state ]] || return 0
  local dir
  dir=$(sed -n 1p "$state")
  if [[ -d $dir/data ]]; then
    as_owner "$BIN/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir" "$state"
}

restart() {
  local state=$1
  [[ -f $state ]] || die "not started: $state"
  local dir
  dir=$(sed -n 1p "$state")
  as_owner "$BIN/pg_ctl" -D "$dir/data" -m fast -w -t 60 restart >/dev/null ||
    { cat "$dir/server.log" >&2; die "the server did not restart"; }
}

url() {
  local state=$1
  [[ -f $state ]] || die "not started: $state"
  echo "postgresql://postgres@127.0.0.1:$(sed -n 2p "$state")/devcycle"
}

case ${1:-} in
  start) [[ $# -eq 3 ]] || die "usage: start STATE PORT"; start "$2" "$3" ;;
  stop) [[ $# -eq 2 ]] || die "usage: stop STATE"; stop "$2" ;;
  url) [[ $# -eq 2 ]] || die "usage: url STATE"; url "$2" ;;
  restart) [[ $# -eq 2 ]] || die "usage: restart STATE"; restart "$2" ;;
  *) die "usage: $0 start STATE PORT | stop STATE | url STATE | restart STATE" ;;
esac
