#!/bin/sh
# Create a throwaway repository for the demo: a bare "server" repo at $1
# holding a tiny shell project whose `make test` checks a mul() function
# that does not exist yet.
set -eu
dest=${1:?usage: make-repo.sh DEST}
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
mkdir -p "$src"
cat > "$src/calc.sh" <<'SH'
#!/bin/sh
# calc.sh: tiny arithmetic helpers
add() { echo $(( $1 + $2 )); }
SH
cat > "$src/test.sh" <<'SH'
#!/bin/sh
. ./calc.sh
fail=0
[ "$(add 2 3)" = 5 ] || { echo "FAIL: add 2 3"; fail=1; }
[ "$(mul 3 4 2>/dev/null)" = 12 ] || { echo "FAIL: mul 3 4 should be 12, got '$(mul 3 4 2>&1)'"; fail=1; }
[ $fail = 0 ] && echo "all tests passed"
exit $fail
SH
printf 'test:\n\tsh test.sh\n' > "$src/Makefile"
printf '# calc\n\nTiny arithmetic helpers in POSIX shell. Run `make test`.\n' > "$src/README.md"
git -C "$src" init -q -b main
git -C "$src" add -A
git -C "$src" -c user.name=demo -c user.email=demo@example.com commit -q -m "calc: add()"
rm -rf "$dest"
git clone -q --bare "$src" "$dest"
echo "demo repository: $dest"
