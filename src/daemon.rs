//! The daemon: starts the threads in order and owns the shutdown order.
//!
//! Start: logging → workspace and journal → restart recovery → health
//! server → link → worker pool → signals → dispatcher (on this thread).
//! Stop (after the dispatcher returns: no job left running): join the
//! workers, join the link (it flushes unsent frames for up to 10 s and
//! closes), stop the health server and the signal thread.

use crate::config::Config;
use crate::journal::Journal;
use crate::link::proto::HelloInfo;
use crate::link::{self, LinkConfig};
use crate::metrics::Metrics;
use crate::run::JobContext;
use crate::workspace::Workspace;
use std::fmt;
use std::sync::Arc;

/// Why the daemon could not start.
#[derive(Debug)]
pub struct DaemonError(String);

impl fmt::Display for DaemonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DaemonError {}

fn fail(what: &str, e: impl fmt::Display) -> DaemonError {
    DaemonError(format!("{what}: {e}"))
}

/// Run the daemon until it is told to stop.
pub fn run(cfg: Config) -> Result<(), DaemonError> {
    crate::logging::init_logging(cfg.log_format, &cfg.log_level, cfg.secrets());
    // Deterministic crypto provider for every rustls user in the process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cfg = Arc::new(cfg);
    log::info!(
        "ados-work-runner {} starting: runner {} (group {}, mode {}), {}, {}, {} memory, workspace {}",
        crate::VERSION,
        cfg.runner_id,
        cfg.group,
        cfg.mode.as_str(),
        crate::words::count(cfg.max_jobs, "slot"),
        crate::words::count(cfg.cpus as usize, "CPU"),
        crate::config::format_binary(cfg.memory_bytes),
        cfg.workspace_dir.display()
    );
    for short in cfg.short_secrets() {
        log::warn!(
            "{short} is shorter than {} characters and will not be masked in output; use a real token",
            crate::redact::MIN_SECRET_LEN
        );
    }

    let workspace =
        Workspace::open(&cfg.workspace_dir).map_err(|e| fail("cannot prepare WORKSPACE_DIR", e))?;
    let journal = Journal::open(&workspace.journal_path())
        .map_err(|e| fail("cannot open the event journal under WORKSPACE_DIR", e))?;
    let metrics = Arc::new(Metrics::new());
    metrics.set_repo_label(cfg.metrics_repo_label);
    let health = match cfg.health_addr {
        Some(addr) => Some(
            crate::health::serve(addr, metrics.clone())
                .map_err(|e| fail(&format!("cannot listen on ADOS_HEALTH_ADDR {addr}"), e))?,
        ),
        None => {
            log::info!("ADOS_HEALTH_ADDR=off: no /health or /metrics endpoint");
            None
        }
    };

    let redactor = crate::redact::Redactor::new(cfg.secrets());
    let (from_link_tx, from_link_rx) = crossbeam_channel::unbounded();
    let mut outbox = crate::link::Outbox::new();
    let mut table = crate::dispatch::JobTable::new(cfg.max_jobs);
    let executors = crate::executors::ExecutorKind::from_config(&cfg, &metrics)
        .map_err(|e| fail("cannot use the Docker executor (ADOS_EXECUTOR=docker)", e))?;
    if let crate::executors::ExecutorKind::Docker(rt) = &executors {
        log::info!("{}; job image {}", rt.placement().describe(), rt.image());
    }
    crate::recovery::recover(
        &journal,
        &workspace,
        &executors,
        &redactor,
        &mut outbox,
        &mut table,
    );
    let agents = crate::agents::AgentRegistry::new(&cfg.custom_agents);
    let path_env = std::env::var("PATH").unwrap_or_default();

    let hello = HelloInfo {
        runner_id: cfg.runner_id.clone(),
        group: cfg.group.clone(),
        mode: cfg.mode.as_str().to_string(),
        hostname: cfg.hostname.clone(),
        cpus: cfg.cpus,
        memory: crate::config::format_memory(cfg.memory_bytes),
        memory_bytes: cfg.memory_bytes,
        deploy_id: cfg.deploy_id.clone(),
        tenant_id: cfg.tenant_id.clone(),
        version: crate::VERSION.to_string(),
        executor: executors.name().to_string(),
        agents: executors.available_agents(&agents.programs(), &path_env),
        slots: cfg.max_jobs,
    };
    let place = match &executors {
        crate::executors::ExecutorKind::Docker(rt) => format!(" in the job image {}", rt.image()),
        crate::executors::ExecutorKind::Host => String::new(),
    };
    log::info!(
        "agent CLIs found{place}: {}",
        if hello.agents.is_empty() {
            "none (jobs will fail until one is installed; see `ados-work-runner check`)".to_string()
        } else {
            hello.agents.join(", ")
        }
    );
    let link_cfg = LinkConfig::from_config(&cfg, hello);
    let (link, link_thread) = link::start(link_cfg, outbox, metrics.clone(), from_link_tx)
        .map_err(|e| fail("cannot start the control-plane link", e))?;
    let ctx = Arc::new(
        JobContext::new(
            cfg.clone(),
            workspace,
            executors,
            metrics.clone(),
            link.waker(),
        )
        .map_err(|e| fail("cannot set up the network for pull requests", e))?,
    );

    let (done_tx, done_rx) = crossbeam_channel::unbounded();
    let pool = crate::pool::Pool::start(cfg.max_jobs, ctx.clone(), done_tx)
        .map_err(|e| fail("cannot start worker threads", e))?;
    let (signal_tx, signal_rx) = crossbeam_channel::unbounded();
    let signals =
        crate::signal::spawn(signal_tx).map_err(|e| fail("cannot install signal handlers", e))?;

    let dispatcher =
        crate::dispatch::Dispatcher::new(cfg.clone(), table, link.clone(), pool, journal, metrics);
    let inbox = crate::dispatch::Inbox::new(from_link_rx, signal_rx, done_rx);
    let pool = dispatcher.run(inbox);
    pool.join();
    if link_thread.join().is_err() {
        log::error!("the link thread panicked during shutdown");
    }
    if let Some(health) = health {
        health.shutdown();
    }
    signals.close();
    log::info!("stopped");
    Ok(())
}
