#!/bin/sh
# `make dist`: the release tarball of the static binary (built by
# `make static` first), with what an operator needs beside it (README,
# LICENSE, docs/, .env.example, the systemd unit and install.sh, which
# installs from the unpacked tarball with no network), and its SHA-256;
# refused when the binary is over its 5 MB size budget:
#   dist/out/ados-work-runner-<version>-x86_64-linux-musl.tar.gz
#   dist/out/ados-work-runner-<version>-x86_64-linux-musl.tar.gz.sha256
set -eu
cd "$(dirname "$0")/.."
BIN=dist/ados-work-runner
[ -x "$BIN" ] || { echo "no static binary at $BIN: run \`make static\` first" >&2; exit 2; }
if ! file "$BIN" | grep -q "statically linked"; then
  echo "$BIN is not statically linked: run \`make static\`" >&2
  exit 2
fi
# The size budget (BENCHMARKS.md, figure 4): users scp this binary and copy
# it into scratch images; a release over it is not made.
BUDGET=5000000
SIZE=$(stat -c %s "$BIN")
if [ "$SIZE" -gt "$BUDGET" ]; then
  echo "$BIN is $SIZE bytes, over the size budget of 5 MB ($BUDGET bytes, BENCHMARKS.md): cut features or dependencies (Cargo.toml) until it fits" >&2
  exit 1
fi
VERSION=$("$BIN" version | awk '{print $2}')
NAME=ados-work-runner-$VERSION-x86_64-linux-musl
OUT=dist/out
STAGE=$OUT/$NAME
rm -rf "$STAGE"
mkdir -p "$STAGE"
cp "$BIN" README.md LICENSE "$STAGE/"
cp -r docs "$STAGE/docs"
cp dist/.env.example "$STAGE/.env.example"
# What install.sh needs beside it to set up a server with no network.
cp dist/systemd/ados-work-runner.service "$STAGE/ados-work-runner.service"
cp dist/install.sh "$STAGE/install.sh"
# Reproducible archive: fixed owner, order and times.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime='@0' \
  -C "$OUT" -czf "$OUT/$NAME.tar.gz" "$NAME"
rm -rf "$STAGE"
(cd "$OUT" && sha256sum "$NAME.tar.gz" > "$NAME.tar.gz.sha256")
echo "$OUT/$NAME.tar.gz"
cat "$OUT/$NAME.tar.gz.sha256"
