#!/bin/sh
# `make static`: a fully static x86_64 musl binary at dist/ados-work-runner.
# Two routes, and the last line says which one was taken:
# - rustup's musl target, where it is installed (`rustup target add
#   x86_64-unknown-linux-musl`): the standard `cargo build --target`;
# - otherwise (no musl target, none downloadable, as on the project's build
#   machine): Debian's rustc-web 1.96 + its std source, -Zbuild-std, linked
#   by musl-gcc against LLVM's libunwind (docs/static.md). Needs root for
#   apt-get (or the packages below already installed).
set -eu
cd "$(dirname "$0")/.."
ROOT=$PWD
MUSL=x86_64-unknown-linux-musl
if command -v rustup >/dev/null 2>&1 && rustup target list --installed 2>/dev/null | grep -qx "$MUSL"; then
  cargo build --release --bin ados-work-runner --target "$MUSL"
  cp "${CARGO_TARGET_DIR:-$ROOT/target}/$MUSL/release/ados-work-runner" dist/ados-work-runner
  file dist/ados-work-runner 2>/dev/null || true
  echo "static binary: dist/ados-work-runner (route: rustup target $MUSL; see docs/static.md)"
  exit 0
fi
# Beside cargo's other output: $CARGO_TARGET_DIR when set, like the Makefile.
LAB=${LAB:-${CARGO_TARGET_DIR:-$ROOT/target}/musl-lab}
mkdir -p "$LAB"
pkgs="rustc-web cargo-web rust-web-src libstd-rust-web-dev musl-tools libunwind-14-dev"
if ! dpkg -s $pkgs >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
fi
SHIM=$LAB/musl-shim
mkdir -p "$SHIM"
# Debian built libunwind with _FORTIFY_SOURCE against glibc: provide the one
# glibc-only symbol it needs.
printf '#include <stdarg.h>\n#include <stdio.h>\nint __fprintf_chk(FILE *f, int flag, const char *fmt, ...) { va_list ap; va_start(ap, fmt); int r = vfprintf(f, fmt, ap); va_end(ap); (void)flag; return r; }\n' > "$SHIM/fortify_shim.c"
musl-gcc -O2 -c "$SHIM/fortify_shim.c" -o "$SHIM/fortify_shim.o"
cp /usr/lib/llvm-14/lib/libunwind.a "$SHIM/libunwind.a"
ar rcs "$SHIM/libunwind.a" "$SHIM/fortify_shim.o"
export PATH=/usr/bin:$PATH RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1
export CC_x86_64_unknown_linux_musl=musl-gcc
export CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_LINKER=musl-gcc
export CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="-C link-self-contained=no -C relocation-model=static -L native=$SHIM"
/usr/bin/cargo build --release --bin ados-work-runner -Zbuild-std=std,panic_abort \
  --target x86_64-unknown-linux-musl --target-dir "$LAB/target"
cp "$LAB/target/x86_64-unknown-linux-musl/release/ados-work-runner" dist/ados-work-runner
file dist/ados-work-runner 2>/dev/null || true
echo "static binary: dist/ados-work-runner (route: Debian rustc-web $(/usr/bin/rustc --version | cut -d" " -f2) with -Zbuild-std, linked by musl-gcc; see docs/static.md)"
