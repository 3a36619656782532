#!/usr/bin/env bash
# bench-archive.sh measures the archiver against db_bench on this machine:
#   - archive throughput: MB/s of WAL read, sealed and uploaded (file:// store),
#     catching up on a backlog of WAL written while it was stopped;
#   - writer slowdown: db_bench overwrite ops/s with the archiver running
#     (at its default --nice 10), divided by ops/s without it, alternating
#     runs (ratios, same run);
#   - PUTs per GB of WAL, PUTs while idle, and the archiver's peak RSS.
# Usage: scripts/bench-archive.sh [RUNS]  (default 3). Needs db_bench (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs="${1:-3}"
go build -o bin/rockstream ./cmd/rockstream
bin="$PWD/bin/rockstream"
work="$(mktemp -d /tmp/rockstream-bench.XXXXXX)"
trap 'pkill -f "$work" 2>/dev/null || true; rm -rf "$work"' EXIT
db="$work/db"
common=(--db="$db" --wal_ttl_seconds=3600 --value_size=400 --batch_size=4 --compression_type=none --seed=7)
db_bench --benchmarks=fillrandom --num=10000 "${common[@]}" >/dev/null

status() { curl -fsS "http://$1/status" 2>/dev/null || echo '{}'; }
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print(d.get('stats',{}).get('$1',0))"; }

# start_archiver BUCKET [FLAGS...]: starts the archiver in the background,
# sets $apid, and waits until it serves /status and holds a base.
start_archiver() {
	local bucket="$1"
	shift
	"$bin" archive --db "$db" --to "file://$bucket" --listen 127.0.0.1:19464 --log-level warn \
		--work-dir "$work/archiver" "$@" >>"$work/archiver.log" 2>&1 &
	apid=$!
	for _ in $(seq 600); do
		[ "$(status 127.0.0.1:19464 | field LastSequence)" -ge 1 ] 2>/dev/null && return
		sleep 0.1
	done
	echo "the archiver did not take its first base in 60 s" >&2
	exit 1
}
stop_archiver() { kill -TERM "$apid"; wait "$apid" || true; }

ops() { db_bench --benchmarks=overwrite --use_existing_db=1 --num="$1" "${common[@]}" 2>&1 | awk '/^overwrite/ {print $5}'; }

echo "== writer slowdown: db_bench overwrite ops/s, without / with the archiver"
ratios=()
for r in $(seq "$runs"); do
	without=$(ops 400000)
	start_archiver "$work/bucket-slow"
	with=$(ops 400000)
	stop_archiver
	ratio=$(python3 -c "print(round($with/$without, 3))")
	ratios+=("$ratio")
	echo "run $r: without $without ops/s, with $with ops/s, ratio $ratio"
done

echo "== archive throughput: catching up on a backlog of WAL"
start_archiver "$work/bucket-tp"
stop_archiver
ops 1500000 >/dev/null # about 650 MB of WAL written while the archiver is stopped
t0=$(date +%s.%N)
start_archiver "$work/bucket-tp"
pid=$apid
last=-1; same=0
while [ "$same" -lt 10 ]; do
	sleep 0.1
	cur=$(status 127.0.0.1:19464 | field LastSequence)
	if [ "$cur" = "$last" ] && [ "$cur" != 0 ]; then same=$((same + 1)); else same=0; t1=$(date +%s.%N); fi
	last=$cur
done
s=$(status 127.0.0.1:19464)
wal=$(echo "$s" | field BatchBytes); puts=$(echo "$s" | field Puts)
rss=$(awk '/VmHWM/ {print $2}' /proc/"$pid"/status)
echo "read $((wal / 1048576)) MiB of WAL in $(python3 -c "print(round($t1-$t0,2))") s: $(python3 -c "print(round($wal/1048576/($t1-$t0),1))") MB/s (includes start-up)"
echo "segment PUTs: $puts for $((wal / 1048576)) MiB: $(python3 -c "print(round($puts/($wal/2**30),1))") PUT per GiB"
echo "== idle: 10 s with no writes"
before=$(status 127.0.0.1:19464 | field Puts); sleep 10; after=$(status 127.0.0.1:19464 | field Puts)
echo "PUTs while idle for 10 s: $((after - before))"
echo "archiver peak RSS: $((rss / 1024)) MiB"
stop_archiver
echo "== summary: slowdown ratios ${ratios[*]}"
