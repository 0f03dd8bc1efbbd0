//! `ados-control-plane`: the test control plane, run by hand, so the
//! daemon can be tried without an ADOS account.
//!
//! ```text
//! ados-control-plane --port 9090 --token dev-token [--assign job.json] [--heartbeat 15] [--tls]
//! ADOS_API_URL=http://127.0.0.1:9090 ADOS_TOKEN=dev-token ados-work-runner run
//! ```
//!
//! Prints every frame the runner sends; after each `hello` it assigns the
//! job of `--assign`. Commands on stdin: `assign FILE`, `cancel ID`,
//! `drain`, `undrain`, `send JSON`, `quit`.

use ados_test_support::control_plane::{ControlPlane, Options};
use serde_json::{json, Value};
use std::io::BufRead;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage: ados-control-plane [--port PORT] [--token TOKEN] [--assign JOB.json] \
                     [--heartbeat SECONDS] [--tls]";

fn read_job(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))
}

fn main() -> ExitCode {
    let mut opts = Options {
        port: 9090,
        token: "dev-token".into(),
        ..Options::default()
    };
    let mut assign: Option<Value> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        let parsed: Result<(), String> = match arg.as_str() {
            "--port" => value("--port").and_then(|v| {
                opts.port = v.parse().map_err(|_| format!("--port {v}: not a port"))?;
                Ok(())
            }),
            "--token" => value("--token").map(|v| opts.token = v),
            "--heartbeat" => value("--heartbeat").and_then(|v| {
                opts.heartbeat_s = v
                    .parse()
                    .map_err(|_| format!("--heartbeat {v}: not a number of seconds"))?;
                Ok(())
            }),
            "--assign" => value("--assign").and_then(|v| {
                assign = Some(read_job(Path::new(&v))?);
                Ok(())
            }),
            "--tls" => {
                opts.tls = true;
                Ok(())
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => Err(format!("unknown argument {other}\n{USAGE}")),
        };
        if let Err(e) = parsed {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    }

    let cp = ControlPlane::start(opts);
    eprintln!(
        "control plane listening: ADOS_API_URL={} (WebSocket {})",
        cp.url(),
        cp.ws_url()
    );
    if cp.options().tls {
        eprintln!(
            "TLS with the TEST-ONLY CA: ADOS_CA_CERT={}",
            ados_test_support::tls::ca_cert_path().display()
        );
    }

    let (cmd_tx, mut cmd_rx) = crossbeam_channel::unbounded::<String>();
    // Stdin is read on its own thread; it ends with the process (a read
    // on stdin cannot be interrupted portably).
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if cmd_tx.send(line).is_err() {
                break;
            }
        }
    });

    let mut next = 0;
    loop {
        while let Some((i, r)) = cp.find_after(next, Duration::ZERO, |_| true) {
            next = i + 1;
            println!("<- conn {}: {}", r.conn, r.value);
            if r.value["type"] == "hello" {
                if let Some(job) = &assign {
                    cp.assign(job.clone());
                    println!("-> job.assign {}", job["job_id"]);
                }
            }
        }
        match cmd_rx.recv_timeout(Duration::from_millis(50)) {
            Ok(line) => {
                let line = line.trim();
                let (cmd, arg) = line.split_once(' ').unwrap_or((line, ""));
                let arg = arg.trim();
                let sent = match cmd {
                    "" => continue,
                    "quit" | "exit" => break,
                    "assign" => match read_job(Path::new(arg)) {
                        Ok(job) => cp.assign(job),
                        Err(e) => {
                            eprintln!("{e}");
                            continue;
                        }
                    },
                    "cancel" => cp.cancel(arg),
                    "drain" => cp.send(json!({"type":"drain"})),
                    "undrain" => cp.send(json!({"type":"undrain"})),
                    "send" => cp.send_raw(arg),
                    other => {
                        eprintln!("unknown command {other}: assign FILE | cancel ID | drain | undrain | send JSON | quit");
                        continue;
                    }
                };
                if !sent {
                    eprintln!("no runner connected");
                }
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            // Stdin closed (run in the background): serve until killed.
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                cmd_rx = crossbeam_channel::never()
            }
        }
    }
    ExitCode::SUCCESS
}
