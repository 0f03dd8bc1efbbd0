//! `ados-bench`: the helper programs of `dist/bench/run.sh` (see
//! BENCHMARKS.md). One binary, three roles:
//!
//! ```text
//! ados-bench flood-agent BYTES LINE_LEN RATE [PROMPT]   the flooding custom agent
//! ados-bench flood --runner BIN --workspace DIR --repo PATH --agents FILE --bytes N --line-len L
//!                                                       a control plane that runs the
//!                                                       runner daemon and measures the flood
//! ados-bench git-serve ROOT USER TOKEN                  the smart-HTTP test git server
//! ados-bench idle | reconnect | concurrent …             the operations benchmarks (ops.rs)
//! ```
//!
//! Why one compiled program and not scripts: the flood agent must write
//! faster than the runner can read (a shell or Python loop could not), and
//! the measuring control plane must cost far less per frame than the runner
//! does, so it never parses JSON: it finds the `seq` and the line's
//! timestamp by substring and records the latency in a fixed histogram
//! (constant memory, whatever the flood's size).

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};
use tungstenite::Message;

mod ops;

const USAGE: &str = "usage:
  ados-bench flood-agent BYTES LINE_LEN RATE [PROMPT]
  ados-bench flood --runner BIN --workspace DIR --repo PATH --agents FILE --bytes N --line-len L
  ados-bench git-serve ROOT USER TOKEN
  ados-bench idle --runner BIN --workspace DIR --agents FILE [--seconds S]
  ados-bench reconnect --runner BIN --workspace DIR --agents FILE [--count N]
  ados-bench concurrent --runner BIN --workspace DIR --agents FILE --repo PATH
                        [--count JOBS] [--seconds S] [--agent NAME] [--env NAME=value]...";

/// The marker that starts every flood line: `BENCH <index> <ns> xxx…`.
const MARKER: &str = "BENCH ";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("flood-agent") => flood_agent(&args[1..]),
        Some("flood") => flood(&args[1..]),
        Some("git-serve") => git_serve(&args[1..]),
        Some("idle") => ops::idle(&args[1..]),
        Some("reconnect") => ops::reconnect(&args[1..]),
        Some("concurrent") => ops::concurrent(&args[1..]),
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ados-bench: {e}");
            ExitCode::from(2)
        }
    }
}

/// CLOCK_MONOTONIC in ns: the same clock in the agent and the control
/// plane (one machine), unlike `Instant`, whose value cannot be printed.
fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn num(args: &[String], i: usize, name: &str) -> Result<u64, String> {
    args.get(i)
        .ok_or_else(|| format!("{name} is missing\n{USAGE}"))?
        .parse()
        .map_err(|_| format!("{name} must be a number\n{USAGE}"))
}

/// Write all of `buf` to fd 1 with write(2): no std line buffering, so a
/// line's timestamp is taken just before the write that carries it.
fn write_stdout(mut buf: &[u8]) -> Result<(), String> {
    while !buf.is_empty() {
        // SAFETY: `buf` is a valid slice; fd 1 is our stdout.
        let n = unsafe { libc::write(1, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(format!("write to stdout: {e}"));
        }
        buf = &buf[n as usize..];
    }
    Ok(())
}

/// The custom agent: BYTES of LINE_LEN-byte lines (newline included) as
/// fast as the pipe takes them (RATE 0) or paced at RATE lines/s, in
/// chunks of at most 16 KiB so a line waits little in our own buffer.
fn flood_agent(args: &[String]) -> Result<(), String> {
    let bytes = num(args, 0, "BYTES")?;
    let line_len = num(args, 1, "LINE_LEN")?.max(40) as usize;
    let rate = num(args, 2, "RATE")?;
    let lines = bytes / line_len as u64;
    let mut buf: Vec<u8> = Vec::with_capacity(32 * 1024);
    let start = Instant::now();
    let mut i = 0u64;
    while i < lines {
        if rate > 0 {
            // Paced: write what is due by now, then sleep a millisecond.
            let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
            if due <= i {
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
        }
        let due_limit = if rate > 0 {
            ((start.elapsed().as_secs_f64() * rate as f64) as u64).min(lines)
        } else {
            lines
        };
        while i < due_limit && buf.len() + line_len <= 16 * 1024 {
            let before = buf.len();
            let _ = write!(buf, "{MARKER}{i} {} ", mono_ns());
            let pad = line_len.saturating_sub(buf.len() - before + 1);
            buf.resize(buf.len() + pad, b'x');
            buf.push(b'\n');
            i += 1;
        }
        write_stdout(&buf)?;
        buf.clear();
    }
    Ok(())
}

/// Latency histogram: 1 µs buckets below 131 ms, then 10 ms buckets up to
/// ~11 min; constant memory.
struct Histogram {
    fine: Vec<u64>,
    coarse: Vec<u64>,
    count: u64,
    max_ns: u64,
}

const FINE: usize = 1 << 17;
const COARSE: usize = 1 << 16;

impl Histogram {
    fn new() -> Histogram {
        Histogram {
            fine: vec![0; FINE],
            coarse: vec![0; COARSE],
            count: 0,
            max_ns: 0,
        }
    }

    fn record(&mut self, ns: u64) {
        let us = (ns / 1000) as usize;
        if us < FINE {
            self.fine[us] += 1;
        } else {
            let i = (ns / 10_000_000) as usize;
            self.coarse[i.min(COARSE - 1)] += 1;
        }
        self.count += 1;
        self.max_ns = self.max_ns.max(ns);
    }

    /// The `q` quantile in milliseconds (upper edge of its bucket).
    fn quantile_ms(&self, q: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let target = ((self.count as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (us, c) in self.fine.iter().enumerate() {
            seen += c;
            if seen >= target {
                return (us + 1) as f64 / 1000.0;
            }
        }
        for (i, c) in self.coarse.iter().enumerate() {
            seen += c;
            if seen >= target {
                return (i + 1) as f64 * 10.0;
            }
        }
        self.max_ns as f64 / 1e6
    }
}

/// A number after `key` in `text` (`"seq":12` → 12).
fn number_after(text: &str, key: &str) -> Option<u64> {
    let at = text.find(key)? + key.len();
    let digits: &str = &text[at..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

/// The flood line's index and stamp, when `text` carries one.
fn marker(text: &str) -> Option<(u64, u64)> {
    let at = text.find(MARKER)? + MARKER.len();
    let mut parts = text[at..].splitn(3, ' ');
    let idx = parts.next()?.parse().ok()?;
    let ts = parts.next()?.parse().ok()?;
    Some((idx, ts))
}

/// `VmHWM` (peak RSS) and `VmRSS` of `pid`, in KiB.
fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// User + system CPU seconds of `pid` so far (from /proc/<pid>/stat).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the `(comm)`, which may itself hold spaces.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of stat; `rest` starts at field 3.
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    (ticks(11) + ticks(12)) as f64 / hz
}

/// CPU seconds of every live thread of `pid`, folded into `seen` (by tid,
/// so a thread that has ended keeps its last sample): the per-thread
/// split shows which stage of the runner is the bottleneck.
fn sample_threads(pid: u32, seen: &mut std::collections::BTreeMap<u64, (String, f64)>) {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return;
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    for entry in dir.flatten() {
        let Some(tid) = entry
            .file_name()
            .to_str()
            .and_then(|t| t.parse::<u64>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some((head, rest))) = (stat.find('('), stat.rsplit_once(')')) else {
            continue;
        };
        let comm = head.get(open + 1..).unwrap_or("").to_string();
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        seen.insert(tid, (comm, (ticks(11) + ticks(12)) as f64 / hz));
    }
}

/// Our own CPU seconds (the control plane's cost, to show it is small).
fn self_cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

struct FloodOpts {
    runner: String,
    workspace: String,
    repo: String,
    agents: String,
    bytes: u64,
    line_len: u64,
    rate: u64,
    timeout: Duration,
}

fn flood_opts(args: &[String]) -> Result<FloodOpts, String> {
    let mut o = FloodOpts {
        runner: String::new(),
        workspace: String::new(),
        repo: String::new(),
        agents: String::new(),
        bytes: 1 << 30,
        line_len: 200,
        rate: 0,
        timeout: Duration::from_secs(1800),
    };
    each_flag(args, |flag, v| {
        let n = || number(flag, &v);
        match flag {
            "--runner" => o.runner = v,
            "--workspace" => o.workspace = v,
            "--repo" => o.repo = v,
            "--agents" => o.agents = v,
            "--bytes" => o.bytes = n()?,
            "--line-len" => o.line_len = n()?,
            "--rate" => o.rate = n()?,
            "--timeout" => o.timeout = Duration::from_secs(n()?),
            other => return Err(format!("unknown flag {other}\n{USAGE}")),
        }
        Ok(())
    })?;
    required(&[
        ("--runner", &o.runner),
        ("--workspace", &o.workspace),
        ("--repo", &o.repo),
        ("--agents", &o.agents),
    ])?;
    Ok(o)
}

/// Call `f` with each `--flag value` pair of `args`.
fn each_flag(
    args: &[String],
    mut f: impl FnMut(&str, String) -> Result<(), String>,
) -> Result<(), String> {
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let v = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        f(flag, v.clone())?;
    }
    Ok(())
}

/// A flag's value as a number.
fn number(flag: &str, v: &str) -> Result<u64, String> {
    v.parse::<u64>()
        .map_err(|_| format!("{flag} {v}: not a number"))
}

/// An error naming the first of `flags` left empty.
fn required(flags: &[(&str, &String)]) -> Result<(), String> {
    match flags.iter().find(|(_, v)| v.is_empty()) {
        Some((name, _)) => Err(format!("{name} is required\n{USAGE}")),
        None => Ok(()),
    }
}

/// Kills the runner daemon if the benchmark ends early.
struct Daemon(std::process::Child);

/// What a benchmark's runner daemon is started with.
struct DaemonSetup<'a> {
    runner: &'a str,
    workspace: &'a str,
    /// The ADOS_CUSTOM_AGENTS file.
    agents: &'a str,
    /// The control plane's port on 127.0.0.1.
    port: u16,
    max_jobs: usize,
    /// More variables (ADOS_EXECUTOR=docker, …).
    extra_env: &'a [(String, String)],
}

/// Start `runner run` against a control plane on 127.0.0.1:`port`, with a
/// clean environment: only what the benchmark sets, PATH and HOME.
fn start_daemon(s: &DaemonSetup) -> Result<Daemon, String> {
    let health = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("a free port: {e}"))?
        .port();
    let mut cmd = Command::new(s.runner);
    cmd.arg("run")
        .env_clear()
        .env("ADOS_API_URL", format!("http://127.0.0.1:{}", s.port))
        .env("ADOS_TOKEN", "bench-token")
        .env("ADOS_RUNNER_ID", "bench")
        .env("WORKSPACE_DIR", s.workspace)
        .env("ADOS_HEALTH_ADDR", format!("127.0.0.1:{health}"))
        .env("ADOS_ALLOW_FILE_REMOTES", "1")
        .env("ADOS_MIN_FREE_DISK", "0")
        .env("ADOS_MAX_JOBS", s.max_jobs.to_string())
        .env("ADOS_CUSTOM_AGENTS", s.agents)
        .env("ADOS_LOG_LEVEL", "warn")
        .env(
            "PATH",
            std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()),
        )
        .envs(s.extra_env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    if let Ok(home) = std::env::var("HOME") {
        cmd.env("HOME", home);
    }
    cmd.spawn()
        .map(Daemon)
        .map_err(|e| format!("cannot start {}: {e}", s.runner))
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The flood benchmark: a control plane on 127.0.0.1 that starts the
/// runner daemon, assigns one job whose custom agent is `flood-agent`,
/// measures every line's latency and acks cumulatively, then prints one
/// JSON object of figures on stdout.
fn flood(args: &[String]) -> Result<(), String> {
    let o = flood_opts(args)?;
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind 127.0.0.1:0: {e}"))?;
    let port = listener
        .local_addr()
        .map_err(|e| format!("local addr: {e}"))?
        .port();
    let daemon = start_daemon(&DaemonSetup {
        runner: &o.runner,
        workspace: &o.workspace,
        agents: &o.agents,
        port,
        max_jobs: 1,
        extra_env: &[],
    })?;
    let pid = daemon.0.id();
    let (tcp, _) = listener
        .accept()
        .map_err(|e| format!("accept the runner: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(60)));
    let mut ws = tungstenite::accept(tcp).map_err(|e| format!("WebSocket handshake: {e}"))?;

    let job_id = "flood-1";
    let assign = format!(
        "{{\"type\":\"job.assign\",\"job\":{{\"job_id\":\"{job_id}\",\"kind\":\"issue\",\
         \"repo\":{{\"provider\":\"github\",\"owner\":\"bench\",\"name\":\"flood\",\
         \"clone_url\":{},\"target_branch\":\"main\"}},\"prompt\":\"flood\",\
         \"agent\":{{\"name\":\"flood\",\"args\":[\"{}\",\"{}\",\"{}\"]}},\
         \"merge_mode\":\"none\",\"test_command\":\"\"}}}}",
        serde_json::Value::String(o.repo.clone()),
        o.bytes,
        o.line_len,
        o.rate
    );
    let expected = o.bytes / o.line_len.max(40);
    let mut hist = Histogram::new();
    let mut lines = 0u64;
    let mut next_idx = 0u64;
    let mut out_of_order = 0u64;
    let mut first_stamp: Option<u64> = None;
    let mut last_recv = 0u64;
    let mut last_seq = 0u64;
    let mut acked = 0u64;
    let mut frames = 0u64;
    let mut frame_bytes = 0u64;
    let mut result_status = String::new();
    let mut peak_rss_sampled = 0u64;
    let mut threads = std::collections::BTreeMap::new();
    let mut last_sample = Instant::now();
    let started = Instant::now();
    let cp_cpu0 = self_cpu_seconds();
    let mut assigned_at = 0u64;
    loop {
        if started.elapsed() > o.timeout {
            return Err(format!("no job.result within {:?}", o.timeout));
        }
        let msg = ws
            .read()
            .map_err(|e| format!("reading from the runner: {e}"))?;
        let Message::Text(text) = msg else { continue };
        let now = mono_ns();
        let text = text.as_str();
        frames += 1;
        frame_bytes += text.len() as u64;
        if text.contains("\"type\":\"hello\"") {
            ws.send(Message::text(
                "{\"type\":\"welcome\",\"heartbeat_s\":15,\"acks\":[]}",
            ))
            .map_err(|e| format!("send welcome: {e}"))?;
            ws.send(Message::text(assign.clone()))
                .map_err(|e| format!("send job.assign: {e}"))?;
            assigned_at = mono_ns();
            continue;
        }
        let is_event = text.contains("\"type\":\"job.event\"");
        let is_result = !is_event && text.contains("\"type\":\"job.result\"");
        if !is_event && !is_result {
            continue;
        }
        if let Some(seq) = number_after(text, "\"seq\":") {
            last_seq = last_seq.max(seq);
        }
        if is_event {
            if let Some((idx, ts)) = marker(text) {
                hist.record(now.saturating_sub(ts));
                first_stamp.get_or_insert(ts);
                if idx != next_idx {
                    out_of_order += 1;
                }
                next_idx = idx + 1;
                lines += 1;
                last_recv = now;
            }
        } else {
            result_status = result_status_of(text);
        }
        // Cumulative acks keep the runner's journal pruned, as a real
        // server would; every 1024 frames is well inside its window.
        if is_result || last_seq >= acked + 1024 {
            let ack = format!("{{\"type\":\"ack\",\"job_id\":\"{job_id}\",\"seq\":{last_seq}}}");
            ws.send(Message::text(ack))
                .map_err(|e| format!("send ack: {e}"))?;
            acked = last_seq;
        }
        if last_sample.elapsed() > Duration::from_millis(200) {
            peak_rss_sampled = peak_rss_sampled.max(rss_kib(pid).1);
            sample_threads(pid, &mut threads);
            last_sample = Instant::now();
        }
        if is_result {
            break;
        }
    }
    let done = mono_ns();
    let (hwm, rss) = rss_kib(pid);
    let runner_cpu = cpu_seconds(pid);
    sample_threads(pid, &mut threads);
    let mut by_name: std::collections::BTreeMap<String, f64> = std::collections::BTreeMap::new();
    for (name, cpu) in threads.into_values() {
        *by_name.entry(name).or_default() += cpu;
    }
    let cp_cpu = self_cpu_seconds() - cp_cpu0;
    // Stop the runner the way an operator would: SIGTERM, then serve the
    // connection until it closes it (it flushes and says goodbye first).
    // The Daemon guard kills it if it does not exit in time.
    let mut daemon = daemon;
    // SAFETY: kill(2) on the pid of our own child.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline && ws.read().is_ok() {}
    while Instant::now() < deadline {
        if let Ok(Some(_)) = daemon.0.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let span_s = first_stamp
        .map(|f| last_recv.saturating_sub(f) as f64 / 1e9)
        .unwrap_or(0.0);
    let figures = serde_json::json!({
        "bytes": o.bytes,
        "line_len": o.line_len,
        "rate_offered": o.rate,
        "lines_expected": expected,
        "lines_received": lines,
        "lines_out_of_order": out_of_order,
        "frames": frames,
        "frame_mib": frame_bytes as f64 / 1048576.0,
        "result_status": result_status,
        "flood_seconds": span_s,
        "lines_per_s": if span_s > 0.0 { lines as f64 / span_s } else { 0.0 },
        "mib_per_s": if span_s > 0.0 { (lines * o.line_len) as f64 / 1048576.0 / span_s } else { 0.0 },
        "job_seconds": done.saturating_sub(assigned_at) as f64 / 1e9,
        "latency_ms": {"p50": hist.quantile_ms(0.50), "p90": hist.quantile_ms(0.90),
                       "p99": hist.quantile_ms(0.99), "p999": hist.quantile_ms(0.999),
                       "max": hist.max_ns as f64 / 1e6},
        "runner_vmhwm_kib": hwm,
        "runner_vmrss_end_kib": rss,
        "runner_vmrss_sampled_max_kib": peak_rss_sampled,
        "runner_cpu_s": runner_cpu,
        "runner_thread_cpu_s": by_name,
        "control_plane_cpu_s": cp_cpu,
    });
    println!("{figures}");
    if lines != expected {
        return Err(format!("received {lines} lines of {expected}"));
    }
    Ok(())
}

/// The `status` of a `job.result` frame.
fn result_status_of(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v["status"].as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Serve the bare repositories under ROOT over smart HTTP until killed,
/// printing the base URL (`http://127.0.0.1:PORT`) on stdout.
fn git_serve(args: &[String]) -> Result<(), String> {
    let [root, user, token] = args else {
        return Err(USAGE.to_string());
    };
    let server = ados_test_support::git_server::GitServer::start(Path::new(root), user, token);
    println!("{}", server.url_for("").trim_end_matches('/'));
    let _ = std::io::stdout().flush();
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
