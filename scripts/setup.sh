#!/usr/bin/env bash
# setup.sh installs what rockstream needs on a Debian machine.
#
#   scripts/setup.sh            RocksDB library and tools (to build and run rockstream)
#   scripts/setup.sh --test     the above, plus what the test suite needs: a MinIO
#                               server built from the Go module proxy into a cache
#                               folder, docker-compose (checks the compose file),
#                               prometheus (promtool) and systemd (systemd-analyze).
#
# Every step is skipped when its result is already there, so a second run takes
# seconds. The MinIO binary is cached under $ROCKSTREAM_CACHE (default
# ~/.cache/rockstream); scripts/minio-path.sh prints where.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
want_test=0
for arg in "$@"; do
	case "$arg" in
	--test) want_test=1 ;;
	-h | --help)
		sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "setup.sh: unknown argument $arg (try --help)" >&2
		exit 2
		;;
	esac
done

log() { printf 'setup: %s\n' "$*" >&2; }

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		sudo_cmd=(sudo)
	else
		log "not root and no sudo: cannot install Debian packages"
	fi
fi

# Debian packages. librocksdb-dev is RocksDB 7.8.3 on bookworm, which is what
# grocksdb v1.7.15 (pinned in go.mod) builds against.
pkgs=(librocksdb-dev rocksdb-tools curl)
if [ "$want_test" = 1 ]; then
	pkgs+=(docker-compose prometheus) # prometheus: promtool, which checks the metrics
	# systemd: systemd-analyze, which checks the units in deploy/systemd. A
	# container image may lack it; like every package here, it is installed
	# only when dpkg says it is missing (it never becomes PID 1 by that).
	pkgs+=(systemd)
fi
missing=()
for p in "${pkgs[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
if [ "${#missing[@]}" -gt 0 ]; then
	log "installing Debian packages: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	"${sudo_cmd[@]}" apt-get update -qq
	"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
	log "Debian packages present: ${pkgs[*]}"
fi

if [ "$want_test" = 1 ]; then
	minio="$("$here/minio-path.sh")"
	if [ -x "$minio" ]; then
		log "MinIO cached at $minio"
	else
		version="$("$here/minio-path.sh" --version)"
		log "building MinIO $version from the Go module proxy (about 3 minutes, once)"
		tmp="$(dirname "$minio").tmp.$$"
		mkdir -p "$tmp"
		GOBIN="$tmp" GOFLAGS=-mod=mod go install "github.com/minio/minio@$version"
		mkdir -p "$(dirname "$minio")"
		mv "$tmp/minio" "$minio"
		rmdir "$tmp"
		log "MinIO built at $minio"
	fi
fi
