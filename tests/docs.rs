//! The project's docs stand alone: a reader of the repository (or of the
//! README shipped beside the binary) never needs a file outside it.

use std::path::Path;

/// README.md and every page under docs/.
fn pages() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut pages = vec![root.join("README.md")];
    let docs = std::fs::read_dir(root.join("docs")).expect("read docs/");
    pages.extend(docs.filter_map(Result::ok).map(|e| e.path()));
    pages
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("read page");
            (p.display().to_string(), text)
        })
        .collect()
}

#[test]
fn no_page_points_outside_the_repository() {
    for (page, text) in pages() {
        for outside in ["../shared", "shared/protocol.md", "shared/research"] {
            assert!(!text.contains(outside), "{page} points at {outside}");
        }
    }
}

#[test]
fn the_protocol_page_is_the_whole_contract_and_the_readme_says_what_is_missing() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let protocol = std::fs::read_to_string(root.join("docs/protocol.md")).expect("protocol");
    for section in [
        "## 1. Connection",
        "## 2. Runner → server",
        "## 3. Server → runner",
        "## 4. Job spec",
        "## 5. Rules the runner holds",
        "/api/v1/work/runners/ws",
        "`welcome`",
        "`job.cancel`",
        "`ack`",
        "`drain` / `undrain`",
        "\"memory_bytes\"",
        "### Chat sessions",
        "`chat.reply`",
    ] {
        assert!(
            protocol.contains(section),
            "docs/protocol.md lacks {section}"
        );
    }
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README");
    let gaps = readme
        .split("## Not in this version yet")
        .nth(1)
        .expect("README has a section on what this version does not do yet");
    assert!(
        gaps.contains("Per-job CPU and memory limits"),
        "README's gaps lack the host executor's per-job limits"
    );
    // The Docker executor, egress control and chat sessions are no longer
    // gaps: each has its own section.
    let listed = gaps.split("\n## ").next().unwrap_or("");
    for (section, gap) in [
        ("The Docker executor", "**The Docker executor**"),
        ("Egress control", "**Egress control**"),
        ("Chat sessions", "**Chat sessions**"),
    ] {
        assert!(readme.contains(&format!("\n## {section}\n")), "{section}");
        assert!(!listed.contains(gap), "README still lists {gap} as a gap");
    }
    for chat in ["**Slots.**", "**Drain.**"] {
        assert!(readme.contains(chat), "README lacks {chat}");
    }
}

/// `dist/.env.example` is what `help env-file` prints: every variable the
/// configuration reads, so it cannot fall behind the code.
#[test]
fn the_env_example_is_the_variable_table() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let committed =
        std::fs::read_to_string(root.join("dist/.env.example")).expect("read dist/.env.example");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ados-work-runner"))
        .args(["help", "env-file"])
        .output()
        .expect("run help env-file");
    assert!(out.status.success());
    assert_eq!(
        committed,
        String::from_utf8_lossy(&out.stdout),
        "regenerate it: ados-work-runner help env-file > dist/.env.example"
    );
    for name in [
        "ADOS_TOKEN",
        "WORKSPACE_DIR",
        "ADOS_JOB_UID_BASE",
        "ADOS_ONCE",
        "ADOS_EXECUTOR",
        "ADOS_JOB_IMAGE",
    ] {
        assert!(committed.contains(&format!("#{name}=")), "{name}");
    }
}

/// docs/egress.md's table of the agents' API hosts is the one the proxy
/// uses (`AGENT_HOSTS`).
#[test]
fn the_agent_host_table_in_the_docs_is_the_proxys() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/egress.md")).expect("read docs/egress.md");
    for (agent, hosts) in ados_work_runner::egress::agents::AGENT_HOSTS {
        let row = doc
            .lines()
            .find(|l| l.starts_with(&format!("| `{agent}` |")))
            .unwrap_or_else(|| panic!("docs/egress.md has no row for {agent}"));
        let cell = row.split('|').nth(2).unwrap_or_default();
        let listed: Vec<String> = cell
            .split(',')
            .map(|h| format!("{}:443", h.trim().trim_matches('`')))
            .collect();
        assert_eq!(listed, *hosts, "docs/egress.md's row for {agent}");
    }
}
