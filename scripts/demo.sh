#!/usr/bin/env bash
# demo.sh shows what rockstream does today on the embedded file:// default.
# It grows with the product: the archiver, standby and restore join it as
# they are built. It leaves its folder for you to look at.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin=bin/rockstream
[ -x "$bin" ] || go build -o "$bin" ./cmd/rockstream

out="${DEMO_DIR:-$(mktemp -d /tmp/rockstream-demo.XXXXXX)}"
bucket="file://$out/bucket"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "rockstream $("$bin" --version | sed 's/^rockstream version //')"
"$bin" --help | sed -n '1,12p'

say "Checking that $bucket can hold an archive"
echo "(create-only and if-match puts are what fence a second writer, so the check proves the store refuses them when it must)"
"$bin" check --location "$bucket"

say "Checking a location that cannot work (exit code 2: bad usage)"
set +e
"$bin" check --location "s3://Not_A_Bucket/x"
echo "exit code: $?"
set -e

say "Done"
echo "The archive folder is $out/bucket."
echo "Not built yet: archive, standby, restore and promote (see the issues); this demo grows with them."
