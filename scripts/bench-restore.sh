#!/usr/bin/env bash
# bench-restore.sh compares rockstream's base upload and restore with
# RocksDB's own BackupEngine (ldb backup / ldb restore) on the same database,
# in one run, and notes rockstream restore's peak RSS.
#   scripts/bench-restore.sh [SIZE_MB]   (default 1024: a database of about 1 GB)
# Needs db_bench and ldb (scripts/setup.sh). Uses the file:// store on this disk.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
size_mb="${1:-1024}"
go build -o bin/rockstream ./cmd/rockstream
bin="$PWD/bin/rockstream"
work="$(mktemp -d /tmp/rockstream-bench-restore.XXXXXX)"
trap 'rm -rf "$work"' EXIT
db="$work/db"
num=$(( size_mb * 1024 * 1024 / 1100 ))
echo "== a database of about $size_mb MB: db_bench fillrandom, $num keys of 1000 bytes"
db_bench --benchmarks=fillrandom --db="$db" --num="$num" --value_size=1000 --compression_type=none \
	--wal_ttl_seconds=3600 --seed=3 2>&1 | grep '^fillrandom' || true
du -sh "$db"

secs() { python3 -c "import sys; print(round(float(sys.argv[2])-float(sys.argv[1]), 2))" "$1" "$2"; }
now() { date +%s.%N; }
rss_of() { /usr/bin/time -f '%M' "$@" 2>&1 >/dev/null | tail -1; }

echo "== base: rockstream base vs ldb backup (BackupEngine to a local folder)"
t0=$(now); "$bin" base --db "$db" --to "file://$work/bucket" --log-level warn >/dev/null; t1=$(now)
t2=$(now); ldb --db="$db" backup --backup_dir="$work/backup" >/dev/null 2>&1; t3=$(now)
rb=$(secs "$t0" "$t1"); lb=$(secs "$t2" "$t3")
echo "rockstream base: ${rb} s; ldb backup: ${lb} s; time ratio rockstream/BackupEngine: $(python3 -c "print(round($rb/$lb,2))")"

echo "== restore: rockstream restore vs ldb restore"
t0=$(now); rss=$(rss_of "$bin" restore --from "file://$work/bucket" --log-level warn "$work/restored"); t1=$(now)
t2=$(now); ldb restore --backup_dir="$work/backup" --db="$work/ldb-restored" >/dev/null 2>&1; t3=$(now)
rr=$(secs "$t0" "$t1"); lr=$(secs "$t2" "$t3")
echo "rockstream restore: ${rr} s (peak RSS $((rss / 1024)) MiB); ldb restore: ${lr} s"
echo "speed ratio rockstream/BackupEngine (restore): $(python3 -c "print(round($lr/$rr,2))") (above 1: rockstream faster)"
if diff <(ldb --db="$db" scan 2>/dev/null | md5sum) <(ldb --db="$work/restored" scan 2>/dev/null | md5sum) >/dev/null; then
	echo "the restored database equals the original (ldb scan)"
else
	echo "MISMATCH between the restored database and the original" >&2
	exit 1
fi
