#!/bin/sh
# Install ados-work-runner on a server from the release tarball, with no
# network access: copy the tarball over (scp), unpack it, run this as root.
#
#   tar -xzf ados-work-runner-<version>-x86_64-linux-musl.tar.gz
#   sudo ./ados-work-runner-<version>-x86_64-linux-musl/install.sh [--docker]
#
# It installs:
#   /usr/local/bin/ados-work-runner                  the static binary
#   /etc/systemd/system/ados-work-runner.service     the hardened unit
#   /etc/ados-work-runner/env                        from .env.example, 0640, never overwritten
#   /var/lib/ados-work-runner                        WORKSPACE_DIR, 0750, owned by the user
#   /usr/local/share/doc/ados-work-runner/           README, LICENSE, docs
# and the system user and group `ados-runner` (no login, no home of its own
# beyond the workspace). --docker adds the user to the `docker` group, for
# ADOS_EXECUTOR=docker. It enables nothing: fill in the env file, then
# `systemctl enable --now ados-work-runner`.
#
# DESTDIR=/some/root installs below that root instead (packaging, tests):
# the user is added to DESTDIR/etc/passwd when that file exists (useradd
# --prefix), and systemd is not touched.
set -eu

USER_NAME=ados-runner
WORKSPACE=/var/lib/ados-work-runner
DESTDIR=${DESTDIR:-}
DOCKER=no

for arg in "$@"; do
  case $arg in
    --docker) DOCKER=yes ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument $arg (only --docker)" >&2; exit 2 ;;
  esac
done

HERE=$(cd "$(dirname "$0")" && pwd)
# The tarball has everything beside this script; the source tree has the
# unit and .env.example under dist/.
find_file() {
  for f in "$@"; do
    if [ -f "$HERE/$f" ]; then echo "$HERE/$f"; return 0; fi
  done
  return 1
}
BIN=$(find_file ados-work-runner) || { echo "install.sh: no ados-work-runner beside this script: unpack the release tarball (or run \`make static\`)" >&2; exit 2; }
UNIT=$(find_file ados-work-runner.service systemd/ados-work-runner.service) || { echo "install.sh: no ados-work-runner.service beside this script" >&2; exit 2; }
ENV_EXAMPLE=$(find_file .env.example) || { echo "install.sh: no .env.example beside this script" >&2; exit 2; }

if [ -z "$DESTDIR" ] && [ "$(id -u)" != 0 ]; then
  echo "install.sh: run it as root (sudo), or set DESTDIR to install below another root" >&2
  exit 2
fi
# The binary must run here before anything is changed.
VERSION=$("$BIN" version) || { echo "install.sh: $BIN does not run on this machine (x86_64 Linux only)" >&2; exit 2; }

PREFIX_ARGS=
if [ -n "$DESTDIR" ]; then
  PREFIX_ARGS="--prefix $DESTDIR"
fi
have_passwd() { [ -f "$DESTDIR/etc/passwd" ]; }
user_exists() { have_passwd && grep -q "^$USER_NAME:" "$DESTDIR/etc/passwd"; }

if have_passwd; then
  if ! user_exists; then
    # shellcheck disable=SC2086
    useradd $PREFIX_ARGS --system --user-group --home-dir "$WORKSPACE" --no-create-home \
      --shell /usr/sbin/nologin --comment "ADOS work runner" "$USER_NAME"
    echo "added the system user $USER_NAME"
  fi
  if [ "$DOCKER" = yes ]; then
    if grep -q '^docker:' "$DESTDIR/etc/group"; then
      # shellcheck disable=SC2086
      usermod $PREFIX_ARGS -aG docker "$USER_NAME"
      echo "added $USER_NAME to the docker group (ADOS_EXECUTOR=docker)"
    else
      echo "install.sh: --docker: there is no docker group; install Docker first" >&2
      exit 1
    fi
  fi
else
  echo "no $DESTDIR/etc/passwd: the user $USER_NAME is not created (create it when installing the image)"
fi
ids() { awk -F: -v u="$USER_NAME" '$1 == u { print $3 ":" $4 }' "$DESTDIR/etc/passwd" 2>/dev/null; }
OWNER=$(ids || true)

install -D -m 0755 "$BIN" "$DESTDIR/usr/local/bin/ados-work-runner"
install -D -m 0644 "$UNIT" "$DESTDIR/etc/systemd/system/ados-work-runner.service"
install -d -m 0755 "$DESTDIR/etc/ados-work-runner"
if [ ! -e "$DESTDIR/etc/ados-work-runner/env" ]; then
  install -m 0640 "$ENV_EXAMPLE" "$DESTDIR/etc/ados-work-runner/env"
  [ -n "$OWNER" ] && chown "0:${OWNER#*:}" "$DESTDIR/etc/ados-work-runner/env"
  echo "wrote $DESTDIR/etc/ados-work-runner/env: fill in ADOS_API_URL, ADOS_TOKEN, ADOS_RUNNER_ID and the credentials"
else
  echo "kept the existing $DESTDIR/etc/ados-work-runner/env"
fi
install -d -m 0750 "$DESTDIR$WORKSPACE"
[ -n "$OWNER" ] && chown "$OWNER" "$DESTDIR$WORKSPACE"
DOC="$DESTDIR/usr/local/share/doc/ados-work-runner"
install -d -m 0755 "$DOC"
for f in README.md LICENSE; do
  [ -f "$HERE/$f" ] && install -m 0644 "$HERE/$f" "$DOC/$f"
done
[ -d "$HERE/docs" ] && cp -R "$HERE/docs" "$DOC/"

if [ -z "$DESTDIR" ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
fi
echo "installed $VERSION"
echo "next: edit /etc/ados-work-runner/env, check it with"
echo "  sudo -u $USER_NAME sh -c 'set -a; . /etc/ados-work-runner/env; WORKSPACE_DIR=$WORKSPACE ados-work-runner check'"
echo "then: systemctl enable --now ados-work-runner"
