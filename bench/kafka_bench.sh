#!/usr/bin/env bash
# The Kafka rows of bus_bench, and Debian's kcat producing the same
# messages (100 bytes, acks=all, idempotent) to the same broker, with the
# ratio. Starts a broker of its own (scripts/kafka.sh) on 127.0.0.1:19792
# with data in a temp dir, and stops it.
#
#   bench/kafka_bench.sh [build/dev]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build/dev}
PORT=19792
MESSAGES=200000
DIR=$(mktemp -d)
trap '"$ROOT/scripts/kafka.sh" stop "$DIR/broker" >/dev/null 2>&1 || true; rm -rf "$DIR"' EXIT

command -v kcat >/dev/null || { echo "kafka_bench.sh: kcat is missing (apt-get install kcat)" >&2; exit 1; }
"$ROOT/scripts/kafka.sh" start "$DIR/broker" "$PORT"

# kcat: the same 100-byte messages (acks=all, idempotent, linger 5 ms), timed
# from start to the last acknowledgement (kcat -P waits for every report).
python3 - "$DIR" "$MESSAGES" <<'PY'
import sys
d, n = sys.argv[1], int(sys.argv[2])
open(d + "/one", "w").write("x" * 100 + "\n")
open(d + "/messages", "w").write(("x" * 100 + "\n") * n)
PY
kcat_rate() {
  local topic=kcat-bench-$RANDOM$RANDOM start end
  kcat -P -b "127.0.0.1:$PORT" -t "$topic" -X enable.idempotence=true -X acks=all \
    -X linger.ms=5 -l "$DIR/one" >/dev/null 2>&1 || true  # the topic exists before timing
  start=$(date +%s%N)
  kcat -P -b "127.0.0.1:$PORT" -t "$topic" -X enable.idempotence=true -X acks=all \
    -X linger.ms=5 -l "$DIR/messages"
  end=$(date +%s%N)
  python3 -c "print(round($MESSAGES / (($end - $start) / 1e9)))"
}
ours_rate() {  # ours_rate <benchmark name>
  DEVCYCLE_BENCH_KAFKA=127.0.0.1:$PORT "$BUILD/bench/bus_bench" --benchmark_filter="^$1\$" \
    --benchmark_min_time=1 | grep "^$1" |
    sed -E 's/.*messages_per_second=([0-9.]+)([kM]?)\/s.*/\1 \2/' |
    awk '{m = $2 == "k" ? 1e3 : ($2 == "M" ? 1e6 : 1); printf "%d", $1 * m}'
}

# The broker's JVM warms up first (its JIT: rates still doubled over the
# first seconds of load); then the three alternate, five times each, so
# that none gets the warmer broker.
for _ in 1 2 3; do kcat_rate >/dev/null; done
ours_rate BM_KafkaProduceBatched/process_time/real_time >/dev/null
ours_rate BM_KafkaProduce/process_time/real_time >/dev/null
batched=() each=() kcats=()
for _ in 1 2 3 4 5; do
  batched+=("$(ours_rate BM_KafkaProduceBatched/process_time/real_time)")
  kcats+=("$(kcat_rate)")
  each+=("$(ours_rate BM_KafkaProduce/process_time/real_time)")
done
median() { printf '%s\n' "$@" | sort -n | sed -n 3p; }
b=$(median "${batched[@]}") e=$(median "${each[@]}") k=$(median "${kcats[@]}")
echo "DevCycle publish_batch() of 100,000: ${batched[*]} messages/s (median $b)"
echo "DevCycle publish() x100,000 in flight: ${each[*]} messages/s (median $e)"
echo "kcat -P:                              ${kcats[*]} messages/s (median $k)"
python3 -c "print('ratio publish_batch / kcat: %.2f' % ($b / $k))"
python3 -c "print('ratio publish / kcat:       %.2f' % ($e / $k))"

# The other Kafka rows.
DEVCYCLE_BENCH_KAFKA=127.0.0.1:$PORT "$BUILD/bench/bus_bench" \
  --benchmark_filter='KafkaPublishBatch|KafkaEndToEnd' \
  --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
