#!/usr/bin/env bash
# A real Apache Kafka broker for tests and local use: one combined
# broker+controller in KRaft mode on 127.0.0.1, data in a directory of the
# caller's choosing.
#
#   scripts/kafka.sh fetch              # the broker jars, with Maven, into .cache/kafka/
#   scripts/kafka.sh start DIR PORT     # listener on PORT, controller on PORT+1; waits until up
#   scripts/kafka.sh stop DIR           # stops the broker started in DIR
#
# Kafka 3.9.x on purpose: Kafka 4 removed old protocol versions (KIP-896)
# and Debian's librdkafka 2.0.2 then turns most features off, the idempotent
# producer among them. See docs/decisions/0013-kafka-broker.md.
set -euo pipefail

KAFKA_VERSION=3.9.1
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE="$ROOT/.cache/kafka/$KAFKA_VERSION"
LIBS="$CACHE/libs"

die() { echo "kafka.sh: $*" >&2; exit 1; }

fetch() {
  if [[ -f "$LIBS/kafka_2.13-$KAFKA_VERSION.jar" && -f "$LIBS/.complete" ]]; then return; fi
  command -v mvn >/dev/null || die "Maven is missing: run scripts/setup-debian.sh"
  command -v java >/dev/null || die "Java is missing: run scripts/setup-debian.sh"
  mkdir -p "$CACHE"
  cat >"$CACHE/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>io.devcycle</groupId>
  <artifactId>kafka-broker</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
  </dependencies>
</project>
POM
  rm -rf "$LIBS"
  echo "kafka.sh: fetching Apache Kafka $KAFKA_VERSION with Maven" >&2
  if ! (cd "$CACHE" && mvn -B -q dependency:copy-dependencies -DoutputDirectory="$LIBS" </dev/null); then
    die "Maven could not fetch org.apache.kafka:kafka_2.13:$KAFKA_VERSION (see its output above)"
  fi
  [[ -f "$LIBS/kafka_2.13-$KAFKA_VERSION.jar" ]] || die "Maven finished but the broker jar is missing"
  touch "$LIBS/.complete"
}

classpath() {
  local cp=""
  for jar in "$LIBS"/*.jar; do cp="$cp:$jar"; done
  echo "${cp#:}"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start() {
  local dir=$1 port=$2
  [[ -n "$dir" && -n "$port" ]] || die "usage: kafka.sh start DIR PORT"
  fetch
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if port_open "$port"; then die "port $port is already in use"; fi
  local controller=$((port + 1))
  cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
# Keep records whatever their timestamps say: tests publish with a manual
# clock years in the past, and time-based retention would delete them 30 s
# after start. DevCycle's own purge() is the retention here.
log.retention.ms=-1
auto.create.topics.enable=true
PROPS
  local cp
  cp=$(classpath)
  if [[ ! -f "$dir/data/meta.properties" ]]; then
    local id
    id=$(java -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)
    java -cp "$cp" kafka.tools.StorageTool format -t "$id" -c "$dir/server.properties" \
      >"$dir/format.log" 2>&1 || { cat "$dir/format.log" >&2; die "formatting KRaft storage failed"; }
  fi
  nohup java -Xms256m -Xmx512m -cp "$cp" kafka.Kafka "$dir/server.properties" \
    >"$dir/broker.log" 2>&1 </dev/null &
  echo $! >"$dir/broker.pid"
  for _ in $(seq 1 120); do
    if port_open "$port"; then
      echo "kafka.sh: Kafka $KAFKA_VERSION listening on 127.0.0.1:$port (data in $dir)" >&2
      return
    fi
    if ! kill -0 "$(cat "$dir/broker.pid")" 2>/dev/null; then
      tail -20 "$dir/broker.log" >&2
      die "the broker exited during start-up"
    fi
    sleep 0.5
  done
  tail -20 "$dir/broker.log" >&2
  stop "$dir"
  die "the broker did not answer on port $port within 60 s"
}

stop() {
  local dir=$1
  [[ -f "$dir/broker.pid" ]] || return 0
  local pid
  pid=$(cat "$dir/broker.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 40); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/broker.pid"
}

case "${1:-}" in
  fetch) fetch ;;
  start) start "${2:-}" "${3:-}" ;;
  stop) stop "${2:-}" ;;
  *) die "usage: kafka.sh fetch | start DIR PORT | stop DIR" ;;
esac
