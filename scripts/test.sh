#!/usr/bin/env bash
# test.sh is the whole test suite, installing what it needs first: the
# README's test command (make test) and CI's (.ci/run) both run it.
#
#   scripts/test.sh            setup, format and vet checks, compose file check, go test
#
# Environment: CI=true makes every test that needs MinIO, db_bench or ldb
# fail instead of skipping when it is missing. GOTESTFLAGS adds flags to
# go test (for example GOTESTFLAGS=-short or GOTESTFLAGS='-run Conformance').
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n== %s\n' "$*"; }

step "setup (scripts/setup.sh --test)"
start=$SECONDS
bash scripts/setup.sh --test
echo "setup took $((SECONDS - start))s"

step "gofmt"
unformatted="$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"
if [ -n "$unformatted" ]; then
	echo "not gofmt'ed:"
	echo "$unformatted"
	exit 1
fi

step "go vet"
go vet ./...

step "docker-compose.yml"
if command -v docker-compose >/dev/null 2>&1; then
	docker-compose -f docker-compose.yml config -q
	echo "docker-compose.yml is valid"
elif [ "${CI:-}" = "true" ]; then
	echo "docker-compose is missing (scripts/setup.sh --test installs it)" >&2
	exit 1
fi

step "go test"
start=$SECONDS
# shellcheck disable=SC2086
go test -count=1 -timeout 30m ${GOTESTFLAGS:-} ./...
echo "go test took $((SECONDS - start))s"
