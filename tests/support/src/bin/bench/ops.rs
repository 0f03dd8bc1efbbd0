//! The operations benchmarks of `ados-bench` (BENCHMARKS.md): an idle
//! connected runner's memory, the time to reconnect after the control
//! plane restarts, and the runner's own cost while 32 jobs run at once.
//!
//! Each plays the control plane on 127.0.0.1 for a runner daemon it starts
//! itself, and prints one JSON object of figures on stdout.

use crate::{
    cpu_seconds, each_flag, number, required, result_status_of, rss_kib, start_daemon, DaemonSetup,
    USAGE,
};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};

/// Flags shared by the three benchmarks.
struct OpsOpts {
    runner: String,
    workspace: String,
    agents: String,
    repo: String,
    /// `reconnect`: restarts to time; `concurrent`: jobs at once.
    count: u64,
    /// `idle`: seconds connected before measuring; `concurrent`: the
    /// sleeping agent's seconds.
    seconds: u64,
    /// `concurrent`: the custom agent the jobs run.
    agent: String,
    /// More variables for the runner (`NAME=value`, repeatable).
    env: Vec<(String, String)>,
}

fn ops_opts(args: &[String]) -> Result<OpsOpts, String> {
    let mut o = OpsOpts {
        runner: String::new(),
        workspace: String::new(),
        agents: String::new(),
        repo: String::new(),
        count: 5,
        seconds: 5,
        agent: "sleeper".into(),
        env: Vec::new(),
    };
    each_flag(args, |flag, v| {
        match flag {
            "--runner" => o.runner = v,
            "--workspace" => o.workspace = v,
            "--agents" => o.agents = v,
            "--repo" => o.repo = v,
            "--count" => o.count = number(flag, &v)?,
            "--seconds" => o.seconds = number(flag, &v)?,
            "--agent" => o.agent = v,
            "--env" => {
                let (k, val) = v
                    .split_once('=')
                    .ok_or_else(|| format!("--env {v}: expected NAME=value"))?;
                o.env.push((k.to_string(), val.to_string()));
            }
            other => return Err(format!("unknown flag {other}\n{USAGE}")),
        }
        Ok(())
    })?;
    required(&[
        ("--runner", &o.runner),
        ("--workspace", &o.workspace),
        ("--agents", &o.agents),
    ])?;
    Ok(o)
}

/// A listener on 127.0.0.1 (a free port when `port` is 0).
fn listen(port: u16) -> Result<(TcpListener, u16), String> {
    let l = TcpListener::bind(("127.0.0.1", port))
        .map_err(|e| format!("bind 127.0.0.1:{port}: {e}"))?;
    let p = l
        .local_addr()
        .map_err(|e| format!("local addr: {e}"))?
        .port();
    Ok((l, p))
}

/// Accept the runner, answer its `hello` with a `welcome`.
fn accept_runner(l: &TcpListener) -> Result<WebSocket<TcpStream>, String> {
    let (tcp, _) = l.accept().map_err(|e| format!("accept the runner: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(120)));
    let mut ws = tungstenite::accept(tcp).map_err(|e| format!("WebSocket handshake: {e}"))?;
    loop {
        let msg = ws.read().map_err(|e| format!("waiting for hello: {e}"))?;
        if let Message::Text(t) = msg {
            if t.as_str().contains("\"type\":\"hello\"") {
                break;
            }
        }
    }
    ws.send(Message::text(
        "{\"type\":\"welcome\",\"heartbeat_s\":15,\"acks\":[]}",
    ))
    .map_err(|e| format!("send welcome: {e}"))?;
    Ok(ws)
}

fn setup<'a>(o: &'a OpsOpts, port: u16, max_jobs: usize) -> DaemonSetup<'a> {
    DaemonSetup {
        runner: &o.runner,
        workspace: &o.workspace,
        agents: &o.agents,
        port,
        max_jobs,
        extra_env: &o.env,
    }
}

/// `idle`: the runner connected and idle for `--seconds`, then its RSS.
pub fn idle(args: &[String]) -> Result<(), String> {
    let o = ops_opts(args)?;
    let (l, port) = listen(0)?;
    let daemon = start_daemon(&setup(&o, port, 1))?;
    let mut ws = accept_runner(&l)?;
    let _ = ws
        .get_mut()
        .set_read_timeout(Some(Duration::from_millis(200)));
    let until = Instant::now() + Duration::from_secs(o.seconds);
    // Keep reading (heartbeats) so the runner stays connected and idle.
    while Instant::now() < until {
        let _ = ws.read();
    }
    let pid = daemon.0.id();
    let (hwm, rss) = rss_kib(pid);
    println!(
        "{}",
        serde_json::json!({
            "idle_seconds": o.seconds,
            "runner_vmrss_kib": rss,
            "runner_vmhwm_kib": hwm,
            "runner_cpu_s": cpu_seconds(pid),
        })
    );
    Ok(())
}

/// `reconnect`: `--count` control-plane restarts (the connection dropped and
/// the port closed for one second, as a restarting server does); for each,
/// the time from the server listening again to the runner's `hello`.
pub fn reconnect(args: &[String]) -> Result<(), String> {
    let o = ops_opts(args)?;
    let (l, port) = listen(0)?;
    let _daemon = start_daemon(&setup(&o, port, 1))?;
    let mut ws = accept_runner(&l)?;
    drop(l);
    let mut times = Vec::new();
    for _ in 0..o.count.max(1) {
        // The restart: the connection and the listening socket both go.
        drop(ws);
        std::thread::sleep(Duration::from_secs(1));
        let (l, _) = listen(port)?;
        let up = Instant::now();
        ws = accept_runner(&l)?;
        times.push(up.elapsed().as_secs_f64());
    }
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or(0.0);
    let max = sorted.last().copied().unwrap_or(0.0);
    println!(
        "{}",
        serde_json::json!({
            "restarts": times.len(),
            "reconnect_s": times,
            "median_s": median,
            "max_s": max,
        })
    );
    Ok(())
}

/// `concurrent`: `--count` jobs assigned at once, each running the custom
/// agent `--agent` (one that sleeps `--seconds`); the runner's own CPU
/// (its threads, not its children's) and peak RSS over the whole run.
pub fn concurrent(args: &[String]) -> Result<(), String> {
    let o = ops_opts(args)?;
    if o.repo.is_empty() {
        return Err(format!("--repo is required\n{USAGE}"));
    }
    let jobs = usize::try_from(o.count.max(1)).map_err(|_| "--count too large".to_string())?;
    let (l, port) = listen(0)?;
    let daemon = start_daemon(&setup(&o, port, jobs))?;
    let pid = daemon.0.id();
    let mut ws = accept_runner(&l)?;
    let cpu0 = cpu_seconds(pid);
    let started = Instant::now();
    for i in 0..jobs {
        let assign = serde_json::json!({
            "type": "job.assign",
            "job": {
                "job_id": format!("concurrent-{i}"),
                "kind": "issue",
                "repo": {"provider": "github", "owner": "bench", "name": "concurrent",
                         "clone_url": o.repo, "target_branch": "main"},
                "prompt": "sleep",
                "agent": {"name": o.agent, "args": [o.seconds.to_string()]},
                "merge_mode": "none",
                "test_command": "",
            }
        });
        ws.send(Message::text(assign.to_string()))
            .map_err(|e| format!("send job.assign: {e}"))?;
    }
    let _ = ws
        .get_mut()
        .set_read_timeout(Some(Duration::from_millis(200)));
    let mut results = Vec::new();
    let mut peak = 0u64;
    let deadline = started + Duration::from_secs(o.seconds + 600);
    while results.len() < jobs {
        if Instant::now() > deadline {
            return Err(format!("{} of {jobs} results in time", results.len()));
        }
        peak = peak.max(rss_kib(pid).1);
        let msg = match ws.read() {
            Ok(m) => m,
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) => return Err(format!("reading from the runner: {e}")),
        };
        let Message::Text(text) = msg else { continue };
        let text = text.as_str();
        if text.contains("\"type\":\"job.result\"") {
            results.push(result_status_of(text));
        }
        if let Some((job, seq)) = ack_for(text) {
            let ack = serde_json::json!({"type": "ack", "job_id": job, "seq": seq});
            ws.send(Message::text(ack.to_string()))
                .map_err(|e| format!("send ack: {e}"))?;
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid) - cpu0;
    let (hwm, _) = rss_kib(pid);
    let completed = results.iter().filter(|s| s.as_str() == "completed").count();
    println!(
        "{}",
        serde_json::json!({
            "jobs": jobs,
            "agent_seconds": o.seconds,
            "completed": completed,
            "statuses": results,
            "wall_s": wall,
            "runner_cpu_s": cpu,
            "runner_cpu_percent": if wall > 0.0 { cpu / wall * 100.0 } else { 0.0 },
            "runner_vmhwm_kib": hwm,
            "runner_vmrss_sampled_max_kib": peak,
        })
    );
    if completed != jobs {
        return Err(format!("{completed} of {jobs} jobs completed: {results:?}"));
    }
    Ok(())
}

/// The job id and seq of a journaled frame, to ack it at once.
fn ack_for(text: &str) -> Option<(String, u64)> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let seq = v["seq"].as_u64()?;
    let job = v["job_id"].as_str()?.to_string();
    Some((job, seq))
}
