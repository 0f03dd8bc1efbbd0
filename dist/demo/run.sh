#!/bin/sh
# `make demo`: the whole pipeline on a throwaway repository, with the demo
# agent. No account, no API key, nothing left behind.
set -eu
BIN=${1:-${CARGO_TARGET_DIR:-./target}/release/ados-work-runner}
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
# A root runner runs the job's agent as a user of its own, who must be able
# to pass through to the workspace and run the demo agent.
chmod 711 "$WORK"
trap 'rm -rf "$WORK"' EXIT
# ...and run the agent wherever this checkout is (a clone under /root or a
# mktemp -d is not reachable by that user): the demo agent goes beside it.
mkdir -m 755 "$WORK/bin"
cp "$HERE/ados-demo-agent" "$WORK/bin/"
chmod 755 "$WORK/bin/ados-demo-agent"
"$HERE/make-repo.sh" "$WORK/calc.git"
echo
echo "== ados-work-runner exec: issue #1 on $WORK/calc.git with the demo agent"
echo
status=0
PATH="$WORK/bin:$PATH" ADOS_CUSTOM_AGENTS="$HERE/agents.json" ADOS_LOG_LEVEL=warn \
  "$BIN" exec --repo "$WORK/calc.git" --agent demo --issue-file "$HERE/issue.md" \
  --merge-mode pr --workspace "$WORK/workspace" --output "$WORK/result.json" || status=$?
echo
echo "== result (exit code $status)"
cat "$WORK/result.json"
echo
echo "== what was pushed to ados/issue-1"
git -C "$WORK/calc.git" log --stat -1 ados/issue-1 || true
git -C "$WORK/calc.git" show ados/issue-1:calc.sh || true
exit $status
