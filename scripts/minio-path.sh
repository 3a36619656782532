#!/usr/bin/env bash
# minio-path.sh prints where scripts/setup.sh caches the MinIO server binary
# (with --version: the pinned MinIO module version). The test helper in
# internal/miniotest finds MinIO the same way: $ROCKSTREAM_MINIO if set,
# else this path.
set -euo pipefail
version="v0.0.0-20260212201848-7aac2a2c5b7c"
if [ "${1:-}" = "--version" ]; then
	echo "$version"
	exit 0
fi
if [ -n "${ROCKSTREAM_MINIO:-}" ]; then
	echo "$ROCKSTREAM_MINIO"
	exit 0
fi
cache="${ROCKSTREAM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rockstream}"
echo "$cache/minio-$version/minio"
