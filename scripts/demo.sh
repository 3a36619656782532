#!/usr/bin/env bash
# demo.sh shows rockstream at work on the embedded file:// default, in under
# a minute: a writer (db_bench) writes a RocksDB database, rockstream archives
# it as a sidecar, a warm standby follows the archive with its live lag,
# status shows what can be restored, verify checks every object, restores
# rebuild the database (latest and at an earlier sequence, checked against the
# original with ldb), and the standby is promoted: the old primary's archiver
# is fenced and the promoted copy takes writes on timeline 2. It leaves its
# folders for you to look at and says where.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin="$PWD/bin/rockstream"
[ -x "$bin" ] || go build -o "$bin" ./cmd/rockstream

out="${DEMO_DIR:-$(mktemp -d /tmp/rockstream-demo.XXXXXX)}"
db="$out/db"
bucket="file://$out/bucket"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
bench() { db_bench --db="$db" --wal_ttl_seconds=3600 --value_size=200 --batch_size=4 --compression_type=none "$@" 2>&1 | grep -E '^(fillrandom|overwrite) ' || true; }
cleanup() {
	[ -n "${apid:-}" ] && kill "$apid" 2>/dev/null
	[ -n "${spid:-}" ] && kill "$spid" 2>/dev/null
	true
}
trap cleanup EXIT

say "1. A program writes a RocksDB database at $db"
echo "(db_bench from rocksdb-tools plays the program; it keeps its WAL for an hour: WAL_ttl_seconds=3600)"
bench --benchmarks=fillrandom --num=20000

say "2. rockstream archives it to $bucket, as a sidecar: the program needs no change"
"$bin" archive --db "$db" --to "$bucket" --segment-age 250ms --fence-check 500ms --listen 127.0.0.1:19464 --log-level warn &
apid=$!
sleep 1
echo "The archiver took a first base (a copy of the database) and now ships every write batch."

say "3. A warm standby at $out/standby follows the archive (another machine, in real life)"
"$bin" standby --from "$bucket" --listen 127.0.0.1:19465 --poll 50ms --segment-age 250ms --log-level warn "$out/standby" &
spid=$!
for _ in $(seq 100); do curl -fsS http://127.0.0.1:19465/status >/dev/null 2>&1 && break; sleep 0.1; done

say "4. The program goes on writing (about 5 seconds); the standby's lag, live:"
bench --benchmarks=overwrite --use_existing_db=1 --num=100000 --benchmark_write_rate_limit=4000000 &
wpid=$!
lag() {
	python3 - "$(curl -fsS http://127.0.0.1:19464/status 2>/dev/null)" "$(curl -fsS http://127.0.0.1:19465/status 2>/dev/null)" <<'PY' || true
import json, sys
primary = json.loads(sys.argv[1])["stats"]["last_sequence"]
standby = json.loads(sys.argv[2])["applied_sequence"]
print("  primary (as the archiver read its WAL) at sequence %d, standby at %d: %d sequences behind" % (primary, standby, primary - standby))
PY
}
while kill -0 "$wpid" 2>/dev/null; do
	lag
	sleep 1
done
wait "$wpid" || true
sleep 1.5
echo "  a second and a half after the writes stopped:"
lag

say "5. What the archive holds"
"$bin" status --from "$bucket"

say "6. Verify: read every object of the archive, check every checksum and the chain, and restore as a drill"
"$bin" verify --from "$bucket" --drill

say "7. Restore the latest state into $out/restored-latest and compare it with the database, key by key"
"$bin" restore --from "$bucket" "$out/restored-latest"
if diff <(ldb --db="$db" scan 2>/dev/null) <(ldb --db="$out/restored-latest" scan 2>/dev/null) >/dev/null; then
	echo "ldb scan of the restored database equals ldb scan of the original: $(ldb --db="$db" scan 2>/dev/null | wc -l) keys."
else
	echo "MISMATCH between the restored database and the original" >&2
	exit 1
fi

json="$("$bin" status --from "$bucket" --json)"
range="$(python3 -c 'import json,sys; t=json.load(sys.stdin)["timelines"][0]["restorable"][0]; print(t["from"], t["to"])' <<<"$json")"
read -r from to <<<"$range"
mid=$(( (from + to) / 2 ))
say "8. Point-in-time restore: the database as it was after sequence $mid (the archive spans $from..$to)"
"$bin" restore --from "$bucket" --to-seq "$mid" "$out/restored-earlier"
ldb --db="$out/restored-earlier" checkconsistency >/dev/null 2>&1 && echo "ldb checkconsistency: OK"

say "9. Failover: promote the standby. It drains the archive, fences the old primary, starts timeline 2"
"$bin" promote --standby http://127.0.0.1:19465
set +e
wait "$apid"; code=$?
set -e
apid=""
echo "The old primary's archiver stopped with exit code $code (4: fenced): nothing it writes now can enter timeline 2."
echo "The standby process released $out/standby and archives it as the new primary. The program opens it and writes:"
db_bench --db="$out/standby" --wal_ttl_seconds=3600 --value_size=200 --batch_size=4 --compression_type=none \
	--benchmarks=overwrite --use_existing_db=1 --num=2000 2>&1 | grep -E '^overwrite ' || true
sleep 2
"$bin" status --from "$bucket" | sed -n '/^Timeline/,/^$/p'
kill -TERM "$spid" 2>/dev/null && wait "$spid" || true
spid=""

say "Done"
echo "Look around: the database is $db, the archive is $out/bucket, the promoted standby is $out/standby,"
echo "the restores are $out/restored-latest and $out/restored-earlier."
echo "(segments/ holds the WAL segments, bases/ and sst/ the base copies, manifest.json the index.)"
