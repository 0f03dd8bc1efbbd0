#!/bin/sh
# `make bench`: the runner's benchmarks (method and figures in BENCHMARKS.md).
#
#   dist/bench/run.sh [RUNNER_BIN]
#
# 1. overhead  a job whose agent only writes one file, on a ~2000-file repo,
#              `exec --merge-mode pr --test-cmd ""` against a local bare repo,
#              versus a shell script doing clone + commit + push.
# 2. warm      the second job on a >= 20 000-commit repository served over
#              smart HTTP (mirror cache) versus the first one (cold clone).
# 3. flood     an agent writing 1 GiB of lines through a daemon-mode job to a
#              measuring control plane: lines/s, latency, the runner's peak RSS.
# 4. size      the static binary (dist/ados-work-runner, `make static`) against
#              the glibc release binary.
# 5. idle      an idle connected runner's RSS: the static binary against the
#              glibc release binary.
# 6. reconnect the time from a restarted control plane listening again to the
#              runner's hello.
# 7. concurrent 32 jobs at once with sleeping agents: the runner's own CPU % and
#              RSS, against one such job.
# 8. docker    a job in a per-job container (ADOS_EXECUTOR=docker) against the
#              same job on the host: seconds added per job.
#
# The run ends with one table (also $OUT/table.md): each figure, its baseline
# from the same run, and its goal.
#
# Knobs (environment):
#   BENCH_ONLY="overhead warm flood size idle reconnect concurrent docker"
#                                      which benchmarks to run
#   BENCH_QUICK=1                      small sizes, to try the harness
#   BENCH_RUNS=7                       timed runs per variant (overhead, warm)
#   BENCH_FILES=2000                   files in the overhead repository
#   BENCH_COMMITS=20000                commits in the warm-start repository
#   BENCH_COMMIT_BYTES=2048            bytes each of those commits writes
#   BENCH_WARM_FILES=2000              files the warm-start repository has
#   BENCH_COLD_RUNS=3                  cold runs in the warm-start benchmark
#   BENCH_FLOOD_BYTES=1073741824       bytes the flood agent writes
#   BENCH_FLOOD_LINE=200               bytes per flood line (newline included)
#   BENCH_FLOOD_RATE=100000            lines/s of the paced latency run (0: skip it)
#   BENCH_PACED_SECONDS=10             length of the paced run (3 with BENCH_QUICK)
#   BENCH_OUT=DIR                      where the raw figures go (default target/bench)
#   BENCH_KEEP=1                       keep the scratch directory
#   BENCH_STATIC=dist/ados-work-runner the static binary (size, idle)
#   BENCH_JOBS=32                      jobs at once in the concurrent benchmark
#   BENCH_SLEEP=10                     seconds each of those jobs' agent sleeps
#   BENCH_DOCKER_IMAGE=TAG             the job image of the docker benchmark
#                                      (default: the tests' image, built if missing)
set -eu

BIN=${1:-./target/release/ados-work-runner}
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=${BENCH_OUT:-$ROOT/target/bench}
ONLY=${BENCH_ONLY:-overhead warm flood size idle reconnect concurrent docker}
STATIC=${BENCH_STATIC:-$ROOT/dist/ados-work-runner}
JOBS=${BENCH_JOBS:-32}
if [ "${BENCH_QUICK:-0}" = 1 ]; then
  RUNS=${BENCH_RUNS:-3}; FILES=${BENCH_FILES:-200}; COMMITS=${BENCH_COMMITS:-2000}
  COMMIT_BYTES=${BENCH_COMMIT_BYTES:-256}; FILES_W=${BENCH_WARM_FILES:-200}
  COLD_RUNS=${BENCH_COLD_RUNS:-2}; FLOOD_BYTES=${BENCH_FLOOD_BYTES:-20000000}
  PACED_SECONDS=${BENCH_PACED_SECONDS:-3}; SLEEP=${BENCH_SLEEP:-2}; IDLE_S=2; RESTARTS=1
else
  RUNS=${BENCH_RUNS:-7}; FILES=${BENCH_FILES:-2000}; COMMITS=${BENCH_COMMITS:-20000}
  COMMIT_BYTES=${BENCH_COMMIT_BYTES:-2048}; FILES_W=${BENCH_WARM_FILES:-2000}
  COLD_RUNS=${BENCH_COLD_RUNS:-3}; FLOOD_BYTES=${BENCH_FLOOD_BYTES:-1073741824}
  PACED_SECONDS=${BENCH_PACED_SECONDS:-10}; SLEEP=${BENCH_SLEEP:-10}; IDLE_S=10; RESTARTS=3
fi
FLOOD_LINE=${BENCH_FLOOD_LINE:-200}
FLOOD_RATE=${BENCH_FLOOD_RATE:-100000}

[ -x "$BIN" ] || { echo "no runner binary at $BIN (run \`make release\`)" >&2; exit 2; }
# The quick form (CI) takes the helper from the debug build `make test`
# made; its figures are not for reading.
if [ "${BENCH_QUICK:-0}" = 1 ]; then PROFILE=debug; PFLAG=; else PROFILE=release; PFLAG=--release; fi
echo "== building the benchmark helper (ados-bench, $PROFILE)"
(cd "$ROOT" && cargo build $PFLAG --quiet -p ados-test-support --bin ados-bench)
HELPER=$TARGET/$PROFILE/ados-bench

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ados-bench.XXXXXX")
# A root runner runs each job's agent as a user of its own, who must be able
# to pass through to the workspace (README "What the host executor protects").
chmod 711 "$WORK"
GIT_SERVER_PID=
cleanup() {
  [ -n "$GIT_SERVER_PID" ] && kill "$GIT_SERVER_PID" 2>/dev/null || true
  if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "scratch kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT INT TERM
mkdir -p "$OUT"
# The closing table: one row per figure (tab-separated: what, measured,
# baseline, goal, met).
TABLE=$OUT/table.tsv
: > "$TABLE"
row() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" >> "$TABLE"; }
# met VALUE OP LIMIT: "yes" or "no" (OP is <= or >=).
met() { awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN { ok = (op == "<=") ? (v <= l) : (v >= l); print ok ? "yes" : "**no**" }'; }
# json FILE KEY: a number from a flat JSON object (first match).
json() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); k=sys.argv[2].split("."); v=d
for p in k: v=v[p]
print(v)' "$1" "$2"; }

# Test-side git: no user or system configuration, a fixed identity.
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.com
export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.com

now_ns() { date +%s%N; }
# Seconds between two now_ns values, 3 decimals.
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
# "median min max" of the numbers in file $1.
stats() { sort -n "$1" | awk '{ v[NR] = $1 } END {
  m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
  printf "%.3f %.3f %.3f", m, v[1], v[NR] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

cat > "$WORK/agents.json" <<EOF
{"agents": [
  {"name": "bench-sh", "command": ["sh", "-c", "echo x > bench.txt"], "prompt": "arg", "timeout_s": 60},
  {"name": "sleeper", "command": ["sh", "-c", "sleep \"\$1\"; echo x > sleep.txt", "sleeper"], "prompt": "arg", "timeout_s": 600},
  {"name": "flood", "command": ["$HELPER", "flood-agent"], "prompt": "arg", "timeout_s": 3600}
]}
EOF

# One `exec` job with the sh agent; its wall time in seconds on stdout.
# exec_job REPO WORKSPACE BRANCH LOG
exec_job() {
  t0=$(now_ns)
  if ! ADOS_CUSTOM_AGENTS="$WORK/agents.json" ADOS_LOG_LEVEL=warn \
      "$BIN" exec --repo "$1" --agent bench-sh --prompt "write bench.txt" \
      --test-cmd "" --merge-mode pr --branch "$3" --workspace "$2" \
      --output "$WORK/result.json" 2>"$4"; then
    echo "runner job failed; its log ($4):" >&2; cat "$4" >&2; cat "$WORK/result.json" >&2
    exit 1
  fi
  t1=$(now_ns)
  echo "$(secs "$t0" "$t1")"
}

# Where a runner job's time goes: one more job (untimed) with a `git`
# wrapper first on PATH that logs each call's duration (the wrapper adds
# ~1 ms a call). Prints a header line and the calls.
# trace_job LABEL REPO WORKSPACE BRANCH
trace_job() {
  tw=$WORK/gitwrap
  if [ ! -x "$tw/git" ]; then
    mkdir -p "$tw"
    real_git=$(command -v git)
    {
      echo '#!/bin/sh'
      echo 't0=$(date +%s%N)'
      echo "\"$real_git\" \"\$@\""
      echo 'rc=$?'
      echo 't1=$(date +%s%N)'
      echo "echo \"\$(( (t1 - t0) / 1000000 )) ms  git \$*\" | cut -c1-140 >> \"$tw/calls\""
      echo 'exit $rc'
    } > "$tw/git"
    chmod +x "$tw/git"
  fi
  : > "$tw/calls"
  wall=$(PATH="$tw:$PATH" exec_job "$2" "$3" "$4" "$tw/log")
  echo "## $1 job: $wall s wall (with the wrapper), $(wc -l < "$tw/calls") git calls, $(awk '{ s += $1 } END { print s }' "$tw/calls") ms in git"
  cat "$tw/calls"
}

# ---------------------------------------------------------------- overhead
bench_overhead() {
  echo "== 1. job overhead: $FILES-file repository, $RUNS runs per variant"
  d=$WORK/overhead
  mkdir -p "$d/src"
  i=0
  while [ $i -lt "$FILES" ]; do
    dir=$d/src/pkg$((i / 50))
    [ -d "$dir" ] || mkdir -p "$dir"
    # ~1 KiB of text per file.
    awk -v n=$i 'BEGIN { for (l = 0; l < 16; l++) printf "file %d line %d: lorem ipsum dolor sit amet consectetur\n", n, l }' > "$dir/f$i.txt"
    i=$((i + 1))
  done
  git -C "$d/src" init -q -b main
  git -C "$d/src" add -A
  git -C "$d/src" commit -q -m "$FILES files"
  git clone -q --bare "$d/src" "$d/origin.git"
  : > "$d/cold"; : > "$d/warm"; : > "$d/script"; : > "$d/script_nolocal"
  # The baseline: clone, write the file, commit, push. A plain `git clone`
  # of a local path hardlinks the objects; with --no-local it packs and
  # copies them as over a network, which is what the runner's mirror does.
  # script_job CLONE_FLAG BRANCH
  script_job() {
    rm -rf "$d/clone"
    t0=$(now_ns)
    git clone -q $1 "$d/origin.git" "$d/clone"
    echo x > "$d/clone/bench.txt"
    git -C "$d/clone" add -A
    git -C "$d/clone" commit -q -m "bench: write bench.txt"
    git -C "$d/clone" push -q origin "HEAD:refs/heads/$2"
    t1=$(now_ns)
    echo "$(secs "$t0" "$t1")"
  }
  # Warm the page cache and the binary once, untimed.
  exec_job "$d/origin.git" "$d/ws-prime" bench/prime "$d/log" > /dev/null
  exec_job "$d/origin.git" "$d/ws-warm" bench/warm-0 "$d/log" > /dev/null
  r=1
  while [ $r -le "$RUNS" ]; do
    # Interleaved, so drift in machine load hits every variant alike.
    rm -rf "$d/ws-cold"
    exec_job "$d/origin.git" "$d/ws-cold" "bench/cold-$r" "$d/log" >> "$d/cold"
    exec_job "$d/origin.git" "$d/ws-warm" "bench/warm-$r" "$d/log" >> "$d/warm"
    script_job "" "bench/script-$r" >> "$d/script"
    script_job --no-local "bench/script-nl-$r" >> "$d/script_nolocal"
    r=$((r + 1))
  done
  # Where a runner job's time goes: one more cold and one more warm job
  # (untimed) with a `git` wrapper first on PATH that logs each call's
  # duration (the wrapper itself adds ~1 ms a call).
  rm -rf "$d/ws-cold"
  trace_job cold "$d/origin.git" "$d/ws-cold" bench/trace-cold > "$OUT/overhead-git-calls.txt"
  trace_job warm "$d/origin.git" "$d/ws-warm" bench/trace-warm >> "$OUT/overhead-git-calls.txt"
  set -- $(stats "$d/cold"); cold_med=$1 cold_min=$2 cold_max=$3
  set -- $(stats "$d/warm"); warm_med=$1 warm_min=$2 warm_max=$3
  set -- $(stats "$d/script"); sc_med=$1 sc_min=$2 sc_max=$3
  set -- $(stats "$d/script_nolocal"); nl_med=$1 nl_min=$2 nl_max=$3
  {
    echo "overhead files=$FILES runs=$RUNS (seconds: median min max)"
    echo "runner_cold   $cold_med $cold_min $cold_max   [$(tr '\n' ' ' < "$d/cold")]"
    echo "runner_warm   $warm_med $warm_min $warm_max   [$(tr '\n' ' ' < "$d/warm")]"
    echo "script        $sc_med $sc_min $sc_max   [$(tr '\n' ' ' < "$d/script")]"
    echo "script_nolocal $nl_med $nl_min $nl_max   [$(tr '\n' ' ' < "$d/script_nolocal")]"
    echo "ratio cold/script median $(ratio "$cold_med" "$sc_med") min $(ratio "$cold_min" "$sc_min") (goal <= 1.10)"
    echo "ratio warm/script median $(ratio "$warm_med" "$sc_med") min $(ratio "$warm_min" "$sc_min")"
    echo "ratio cold/script_nolocal median $(ratio "$cold_med" "$nl_med") min $(ratio "$cold_min" "$nl_min")"
    echo "git calls per runner job: $OUT/overhead-git-calls.txt"
  } | tee "$OUT/overhead.txt"
  r=$(ratio "$cold_med" "$sc_med")
  row "job overhead, cold job / shell script (ratio of medians)" "$r ($cold_med s)" "script $sc_med s" "<= 1.10" "$(met "$r" "<=" 1.10)"
}

# ---------------------------------------------------------------- warm start
bench_warm() {
  echo "== 2. warm start: $COMMITS-commit repository over smart HTTP"
  d=$WORK/warm
  mkdir -p "$d/srv/o" "$d/logs"
  git init -q --bare -b main "$d/srv/o/big.git"
  t0=$(now_ns)
  # One commit per step, each rewriting one of $FILES_W files with
  # $COMMIT_BYTES bytes of pseudo-random text (fixed seed), plus a README:
  # a history whose pack is tens of MB, like a real repository with that
  # many commits (BENCH_COMMIT_BYTES=16 gives the tiny-content variant).
  awk -v n="$COMMITS" -v bytes="$COMMIT_BYTES" -v files="$FILES_W" 'BEGIN {
    srand(42)
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 "
    for (i = 1; i <= n; i++) {
      msg = "commit " i
      data = "content of step " i "\n"
      while (length(data) < bytes) {
        line = ""
        for (k = 0; k < 63; k++) line = line substr(alphabet, int(rand() * 63) + 1, 1)
        data = data line "\n"
      }
      printf "commit refs/heads/main\nmark :%d\ncommitter Bench <bench@example.com> %d +0000\ndata %d\n%s\n", i, 1700000000 + i, length(msg), msg
      if (i > 1) printf "from :%d\n", i - 1
      else printf "M 644 inline README.md\ndata 7\n# big\n\n\n"
      printf "M 644 inline src/f%d.txt\ndata %d\n%s\n", i % files, length(data), data
    } }' | git -C "$d/srv/o/big.git" fast-import --quiet
  # A server keeps its repositories packed.
  git -C "$d/srv/o/big.git" repack -adq
  t1=$(now_ns)
  echo "generated $COMMITS commits in $(secs "$t0" "$t1") s ($(du -sh "$d/srv/o/big.git" | cut -f1))"
  token=bench-git-token-0123456789
  "$HELPER" git-serve "$d/srv" x-access-token "$token" > "$d/url" &
  GIT_SERVER_PID=$!
  n=0
  while [ ! -s "$d/url" ] && [ $n -lt 100 ]; do sleep 0.05; n=$((n + 1)); done
  url=$(cat "$d/url")/o/big.git
  : > "$d/cold"; : > "$d/warm"; : > "$d/plain"; : > "$d/cold_clone"; : > "$d/warm_clone"
  step=0
  # An upstream push between jobs: the warm job has something to fetch.
  new_commit() {
    step=$((step + 1))
    printf 'commit refs/heads/main\ncommitter Bench <bench@example.com> %d +0000\ndata 8\nupstream\nfrom refs/heads/main^0\nM 644 inline NEWS\ndata %d\n%s\n' \
      $((1800000000 + step)) $((${#step} + 1)) "$step" | git -C "$d/srv/o/big.git" fast-import --quiet
  }
  # The clone phase from exec's progress lines: `[   1.2s] cloning` to the
  # next status (0.1 s resolution).
  clone_phase() { awk 'match($0, /^\[ *[0-9.]+s\] [a-z_]+/) {
      t = $0; sub(/^\[ */, "", t); sub(/s\].*/, "", t)
      if ($0 ~ /\] cloning/) { a = t; next }
      if (a != "") { printf "%.1f\n", t - a; exit } }' "$1"; }
  r=1
  while [ $r -le "$COLD_RUNS" ]; do
    rm -rf "$d/ws"
    GITHUB_TOKEN=$token exec_job "$url" "$d/ws" "bench/cold-$r" "$d/logs/cold-$r" >> "$d/cold"
    clone_phase "$d/logs/cold-$r" >> "$d/cold_clone"
    # A plain `git clone` of the same URL, for reference.
    rm -rf "$d/plain-clone"
    t0=$(now_ns)
    git -c http.extraHeader="Authorization: Basic $(printf 'x-access-token:%s' "$token" | base64)" \
      clone -q "$url" "$d/plain-clone"
    t1=$(now_ns)
    echo "$(secs "$t0" "$t1")" >> "$d/plain"
    r=$((r + 1))
  done
  # The workspace of the last cold run now holds the mirror: warm jobs.
  r=1
  while [ $r -le "$RUNS" ]; do
    new_commit
    GITHUB_TOKEN=$token exec_job "$url" "$d/ws" "bench/warm-$r" "$d/logs/warm-$r" >> "$d/warm"
    clone_phase "$d/logs/warm-$r" >> "$d/warm_clone"
    r=$((r + 1))
  done
  new_commit
  GITHUB_TOKEN=$token trace_job warm "$url" "$d/ws" bench/trace-warm > "$OUT/warm-git-calls.txt"
  kill "$GIT_SERVER_PID" 2>/dev/null || true
  GIT_SERVER_PID=
  set -- $(stats "$d/cold"); c_med=$1 c_min=$2 c_max=$3
  set -- $(stats "$d/warm"); w_med=$1 w_min=$2 w_max=$3
  set -- $(stats "$d/plain"); p_med=$1 p_min=$2 p_max=$3
  {
    echo "warm commits=$COMMITS cold_runs=$COLD_RUNS warm_runs=$RUNS over smart HTTP (seconds: median min max)"
    echo "job_cold      $c_med $c_min $c_max   [$(tr '\n' ' ' < "$d/cold")]"
    echo "job_warm      $w_med $w_min $w_max   [$(tr '\n' ' ' < "$d/warm")]"
    echo "git_clone     $p_med $p_min $p_max   [$(tr '\n' ' ' < "$d/plain")]"
    echo "clone_phase_cold [$(tr '\n' ' ' < "$d/cold_clone")]  clone_phase_warm [$(tr '\n' ' ' < "$d/warm_clone")]"
    echo "speed-up job cold/warm median $(ratio "$c_med" "$w_med") (goal >= 5)"
    echo "speed-up plain git clone / warm job median $(ratio "$p_med" "$w_med")"
    echo "git calls of a warm job: $OUT/warm-git-calls.txt"
  } | tee "$OUT/warm.txt"
  r=$(ratio "$c_med" "$w_med")
  row "warm-mirror job start, cold / warm ($COMMITS commits)" "${r}x (warm $w_med s)" "cold $c_med s" ">= 5x" "$(met "$r" ">=" 5)"
}

# ---------------------------------------------------------------- flood
bench_flood() {
  d=$WORK/flood
  mkdir -p "$d"
  git init -q -b main "$d/src"
  echo flood > "$d/src/README.md"
  git -C "$d/src" add -A
  git -C "$d/src" commit -q -m flood
  git clone -q --bare "$d/src" "$d/repo.git"
  echo "== 3. flood: $FLOOD_BYTES bytes in $FLOOD_LINE-byte lines, as fast as the runner takes them"
  "$HELPER" flood --runner "$BIN" --workspace "$d/ws" --repo "$d/repo.git" \
    --agents "$WORK/agents.json" --bytes "$FLOOD_BYTES" --line-len "$FLOOD_LINE" \
    | tee "$OUT/flood.json"
  if [ "$FLOOD_RATE" != 0 ]; then
    paced_bytes=$((FLOOD_RATE * PACED_SECONDS * FLOOD_LINE))
    echo "== 3b. flood paced at $FLOOD_RATE lines/s for ${PACED_SECONDS}s (latency below saturation)"
    rm -rf "$d/ws"
    "$HELPER" flood --runner "$BIN" --workspace "$d/ws" --repo "$d/repo.git" \
      --agents "$WORK/agents.json" --bytes "$paced_bytes" --line-len "$FLOOD_LINE" \
      --rate "$FLOOD_RATE" | tee "$OUT/flood-paced.json"
  fi
  lps=$(json "$OUT/flood.json" lines_per_s | awk '{ printf "%d", $1 }')
  p50=$(json "$OUT/flood.json" latency_ms.p50); p99=$(json "$OUT/flood.json" latency_ms.p99)
  hwm=$(json "$OUT/flood.json" runner_vmhwm_kib | awk '{ printf "%.1f", $1 / 1024 }')
  base="unpaced"
  [ -f "$OUT/flood-paced.json" ] && base="paced at $FLOOD_RATE/s: p99 $(json "$OUT/flood-paced.json" latency_ms.p99) ms"
  row "flood $FLOOD_BYTES bytes: lines/s" "$lps" "$base" ">= 100000" "$(met "$lps" ">=" 100000)"
  row "flood: latency p50 / p99 (ms)" "$p50 / $p99" "" "p99 <= 50" "$(met "$p99" "<=" 50)"
  row "flood: runner peak RSS (MiB)" "$hwm" "" "<= 32" "$(met "$hwm" "<=" 32)"
}

# ---------------------------------------------------------------- size
# What the static binary is compared with: the runner under test, which is
# the glibc release build unless the static binary itself was passed (CI).
baseline_name() {
  if [ "$(readlink -f "$BIN")" = "$(readlink -f "$STATIC")" ]; then
    echo "itself (no other build given)"
  else
    echo "glibc release"
  fi
}
bench_size() {
  echo "== 4. binary size"
  if [ ! -x "$STATIC" ]; then
    echo "no static binary at $STATIC (run \`make static\`): size not measured"
    row "static binary size (MB)" "not built" "" "<= 5" "-"
    return
  fi
  st=$(stat -c %s "$STATIC"); gl=$(stat -c %s "$BIN")
  mb() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1e6 }'; }
  echo "static $(mb "$st") MB ($STATIC); runner under test $(mb "$gl") MB ($BIN)" | tee "$OUT/size.txt"
  row "static binary size (MB)" "$(mb "$st")" "$(baseline_name) $(mb "$gl")" "<= 5" "$(met "$(mb "$st")" "<=" 5)"
}

# ---------------------------------------------------------------- idle
bench_idle() {
  echo "== 5. idle connected runner, ${IDLE_S}s"
  d=$WORK/idle; mkdir -p "$d"
  "$HELPER" idle --runner "$BIN" --workspace "$d/ws-glibc" --agents "$WORK/agents.json" \
    --seconds "$IDLE_S" | tee "$OUT/idle-glibc.json"
  gl=$(json "$OUT/idle-glibc.json" runner_vmrss_kib | awk '{ printf "%.1f", $1 / 1024 }')
  if [ -x "$STATIC" ]; then
    "$HELPER" idle --runner "$STATIC" --workspace "$d/ws-static" --agents "$WORK/agents.json" \
      --seconds "$IDLE_S" | tee "$OUT/idle-static.json"
    st=$(json "$OUT/idle-static.json" runner_vmrss_kib | awk '{ printf "%.1f", $1 / 1024 }')
    row "idle connected RSS, static binary (MiB)" "$st" "$(baseline_name) $gl" "<= 4" "$(met "$st" "<=" 4)"
  else
    row "idle connected RSS (MiB)" "glibc $gl (no static binary)" "" "<= 4" "$(met "$gl" "<=" 4)"
  fi
}

# ---------------------------------------------------------------- reconnect
bench_reconnect() {
  echo "== 6. reconnect after $RESTARTS control-plane restart(s) (1 s down each)"
  d=$WORK/reconnect; mkdir -p "$d"
  "$HELPER" reconnect --runner "$BIN" --workspace "$d/ws" --agents "$WORK/agents.json" \
    --count "$RESTARTS" | tee "$OUT/reconnect.json"
  first=$(python3 -c 'import json,sys; print("%.2f" % json.load(open(sys.argv[1]))["reconnect_s"][0])' "$OUT/reconnect.json")
  mx=$(json "$OUT/reconnect.json" max_s | awk '{ printf "%.2f", $1 }')
  row "reconnect: server back -> hello, first restart (s)" "$first" "max over $RESTARTS: $mx" "<= 2" "$(met "$first" "<=" 2)"
}

# ---------------------------------------------------------------- concurrent
# A tiny repository and a custom agent that sleeps, then writes a file.
small_repo() {
  if [ ! -d "$WORK/small.git" ]; then
    git init -q -b main "$WORK/small-src"
    echo small > "$WORK/small-src/README.md"
    git -C "$WORK/small-src" add -A
    git -C "$WORK/small-src" commit -q -m small
    git clone -q --bare "$WORK/small-src" "$WORK/small.git"
  fi
  echo "$WORK/small.git"
}
bench_concurrent() {
  echo "== 7. $JOBS concurrent jobs, agents sleeping ${SLEEP}s"
  d=$WORK/concurrent; mkdir -p "$d"
  repo=$(small_repo)
  "$HELPER" concurrent --runner "$BIN" --workspace "$d/ws-1" --agents "$WORK/agents.json" \
    --repo "$repo" --count 1 --seconds "$SLEEP" | tee "$OUT/concurrent-1.json"
  "$HELPER" concurrent --runner "$BIN" --workspace "$d/ws-n" --agents "$WORK/agents.json" \
    --repo "$repo" --count "$JOBS" --seconds "$SLEEP" | tee "$OUT/concurrent.json"
  pc() { json "$1" runner_cpu_percent | awk '{ printf "%.1f", $1 }'; }
  mib() { json "$1" runner_vmhwm_kib | awk '{ printf "%.1f", $1 / 1024 }'; }
  # The runner's own CPU per job (ms): with agents that only sleep, what a
  # job costs the runner; it should not grow with the jobs beside it.
  per() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("%.0f" % (d["runner_cpu_s"] * 1000 / d["jobs"]))' "$1"; }
  one=$(per "$OUT/concurrent-1.json"); many=$(per "$OUT/concurrent.json")
  limit=$(awk -v o="$one" 'BEGIN { printf "%.0f", (o < 10 ? 10 : o) * 2 }')
  row "$JOBS concurrent jobs: runner CPU per job (ms), and % of one core" "$many ms ($(pc "$OUT/concurrent.json") %)" "1 job: $one ms ($(pc "$OUT/concurrent-1.json") %)" "<= 2x one job ($limit ms)" "$(met "$many" "<=" "$limit")"
  row "$JOBS concurrent jobs: runner peak RSS (MiB)" "$(mib "$OUT/concurrent.json")" "1 job: $(mib "$OUT/concurrent-1.json")" "<= 64" "$(met "$(mib "$OUT/concurrent.json")" "<=" 64)"
}

# ---------------------------------------------------------------- docker
bench_docker() {
  echo "== 8. a job in a per-job container against the same job on the host"
  if ! docker info > /dev/null 2>&1; then
    echo "docker not available: not measured"
    row "Docker executor: seconds added per job" "not measured (no Docker)" "" "<= 3" "-"
    return
  fi
  image=${BENCH_DOCKER_IMAGE:-}
  if [ -z "$image" ]; then
    (cd "$ROOT" && cargo build --quiet -p ados-test-support --bin ados-test-image)
    image=$("$TARGET/debug/ados-test-image" job)
  fi
  d=$WORK/docker; mkdir -p "$d"
  repo=$(small_repo)
  "$HELPER" concurrent --runner "$BIN" --workspace "$d/ws-host" --agents "$WORK/agents.json" \
    --repo "$repo" --count 1 --seconds 0 | tee "$OUT/docker-host.json"
  "$HELPER" concurrent --runner "$BIN" --workspace "$d/ws-docker" --agents "$WORK/agents.json" \
    --repo "$repo" --count 1 --seconds 0 --env ADOS_EXECUTOR=docker --env "ADOS_JOB_IMAGE=$image" \
    | tee "$OUT/docker-container.json"
  h=$(json "$OUT/docker-host.json" wall_s); c=$(json "$OUT/docker-container.json" wall_s)
  added=$(awk -v a="$c" -v b="$h" 'BEGIN { printf "%.2f", a - b }')
  row "Docker executor: seconds added per job" "$added (container job $(printf '%.2f' "$c") s)" "host job $(printf '%.2f' "$h") s" "<= 3" "$(met "$added" "<=" 3)"
}

# What else is running matters on a small machine: say it.
load() {
  echo "$1: load average $(cut -d' ' -f1-3 /proc/loadavg); busiest processes over 1 s:"
  top -b -n 2 -d 1 -w 200 2>/dev/null | awk '/^top -/ { n++ }
    n == 2 && $1 ~ /^[0-9]+$/ && $9 + 0 > 3 { printf "  %6s%%  %s\n", $9, $12 }' | head -8
}
{
  echo "machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(free -h | awk '/^Mem:/ { print $2 }') RAM, kernel $(uname -r), $(git --version)"
  echo "runner: $BIN"
  echo "started: $(date -u +%FT%TZ)"
  load "before"
} | tee "$OUT/machine.txt"
for b in $ONLY; do
  case $b in
    overhead) bench_overhead ;;
    warm) bench_warm ;;
    flood) bench_flood ;;
    size) bench_size ;;
    idle) bench_idle ;;
    reconnect) bench_reconnect ;;
    concurrent) bench_concurrent ;;
    docker) bench_docker ;;
    *) echo "unknown benchmark $b (overhead, warm, flood, size, idle, reconnect, concurrent, docker)" >&2; exit 2 ;;
  esac
done
{
  [ "${BENCH_QUICK:-0}" = 1 ] && echo "BENCH_QUICK: small sizes to exercise the harness; these figures are not measured against their goals." && echo
  echo "| figure | measured | baseline (same run) | goal | met |"
  echo "|---|---|---|---|---|"
  awk -F '\t' '{ printf "| %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5 }' "$TABLE"
} > "$OUT/table.md"
echo
echo "== the table ($OUT/table.md)"
cat "$OUT/table.md"
{ echo "ended: $(date -u +%FT%TZ)"; load "after"; } | tee -a "$OUT/machine.txt"
echo "figures in $OUT"
