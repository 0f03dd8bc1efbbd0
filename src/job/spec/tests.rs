//! Unit tests of spec validation: each rule names its field.

use super::*;
use serde_json::json;

fn base() -> Value {
    json!({"job_id":"j-1","kind":"issue","repo":{"provider":"github","owner":"o","name":"r",
        "target_branch":"main"},"issue":{"number":42,"title":"t","body":"b"}})
}

fn reject(mut v: Value, path: &[&str], bad: Value) -> SpecError {
    let mut cur = &mut v;
    for p in &path[..path.len() - 1] {
        cur = cur.get_mut(*p).expect("test path");
    }
    cur[path[path.len() - 1]] = bad;
    JobSpec::from_json(&v, RemotePolicy::default()).expect_err("should be rejected")
}

#[test]
fn minimal_spec_gets_defaults() {
    let s = JobSpec::from_json(&base(), RemotePolicy::default()).expect("valid");
    assert_eq!(s.branch, "ados/issue-42");
    assert_eq!(s.repo.clone_url, "https://github.com/o/r.git");
    assert_eq!(s.merge_mode, MergeMode::Pr);
    assert_eq!(s.agent.name, "claude");
    assert_eq!(s.max_repair_attempts, 1);
}

#[test]
fn a_chat_waits_1800_s_for_a_message_unless_told() {
    let mut v = base();
    v["kind"] = json!("chat");
    let s = JobSpec::from_json(&v, RemotePolicy::default()).expect("valid");
    assert_eq!(s.kind, JobKind::Chat);
    assert_eq!(s.idle_timeout_s, 1800);
    v["idle_timeout_s"] = json!(60);
    let s = JobSpec::from_json(&v, RemotePolicy::default()).expect("valid");
    assert_eq!(s.idle_timeout_s, 60);
}

#[test]
fn each_rule_names_its_field() {
    let cases: Vec<(&[&str], Value, &str)> = vec![
        (&["job_id"], json!("../x"), "job_id"),
        (&["job_id"], json!(".."), "job_id"),
        (&["job_id"], json!("a".repeat(129)), "job_id"),
        (&["job_id"], json!(null), "job_id"),
        (&["repo", "name"], json!("a/b"), "repo.name"),
        (&["repo", "owner"], json!("a/b"), "repo.owner"),
        (&["repo", "path"], json!("../etc"), "repo.path"),
        (&["repo", "path"], json!("/etc"), "repo.path"),
        (
            &["repo", "target_branch"],
            json!("-x"),
            "repo.target_branch",
        ),
        (
            &["repo", "target_branch"],
            json!("a..b"),
            "repo.target_branch",
        ),
        (&["branch"], json!("--force"), "branch"),
        (&["branch"], json!("a b"), "branch"),
        (&["branch"], json!("x.lock"), "branch"),
        (&["branch"], json!("HEAD"), "branch"),
        (
            &["repo", "target_branch"],
            json!("HEAD"),
            "repo.target_branch",
        ),
        (
            &["repo", "clone_url"],
            json!("ext::sh -c touch% /tmp/x"),
            "repo.clone_url",
        ),
        (&["repo", "clone_url"], json!("fd::3"), "repo.clone_url"),
        (
            &["repo", "clone_url"],
            json!("file:///tmp/r"),
            "repo.clone_url",
        ),
        (
            &["repo", "clone_url"],
            json!("http://example.com/r.git"),
            "repo.clone_url",
        ),
        (&["merge_mode"], json!("yolo"), "merge_mode"),
        (&["kind"], json!("batch"), "kind"),
    ];
    for (path, bad, field) in cases {
        let err = reject(base(), path, bad.clone());
        assert_eq!(err.field, field, "{path:?} = {bad}");
    }
}

#[test]
fn numbers_are_bounded_and_name_their_field() {
    let huge = json!(1u64 << 63);
    let cases: Vec<(&[&str], Value, &str)> = vec![
        (&["timeout_s"], huge.clone(), "timeout_s"),
        (&["timeout_s"], json!(MAX_TIMEOUT_S + 1), "timeout_s"),
        (&["timeout_s"], json!(0), "timeout_s"),
        (&["idle_timeout_s"], huge.clone(), "idle_timeout_s"),
        (
            &["max_repair_attempts"],
            huge.clone(),
            "max_repair_attempts",
        ),
        (&["max_repair_attempts"], json!(11), "max_repair_attempts"),
        (
            &["agent"],
            json!({"name":"claude","timeout_s":huge}),
            "agent.timeout_s",
        ),
        (
            &["fallbacks"],
            json!(["codex", {"name":"claude","timeout_s":huge}]),
            "fallbacks[1].timeout_s",
        ),
    ];
    for (path, bad, field) in cases {
        let err = reject(base(), path, bad.clone());
        assert_eq!(err.field, field, "{path:?} = {bad}");
    }
    let mut v = base();
    v["timeout_s"] = json!(MAX_TIMEOUT_S);
    v["idle_timeout_s"] = json!(MAX_TIMEOUT_S);
    v["agent"] = json!({"name":"claude","timeout_s":MAX_TIMEOUT_S});
    v["max_repair_attempts"] = json!(MAX_REPAIR_ATTEMPTS);
    let s = JobSpec::from_json(&v, RemotePolicy::default()).expect("the maxima are valid");
    assert_eq!(s.max_repair_attempts, 10);
}

#[test]
fn branches_with_control_or_bidi_characters_are_refused() {
    for c in [
        '\u{202E}', '\u{202A}', '\u{200E}', '\u{200F}', '\u{2066}', '\u{2069}', '\u{061C}',
        '\u{200B}', '\u{FEFF}', '\u{2028}', '\u{0085}', '\u{009B}', '\u{0007}',
    ] {
        let name = format!("ados/issue-1{c}gpj.exe");
        for path in [&["branch"][..], &["repo", "target_branch"][..]] {
            let err = reject(base(), path, json!(name));
            assert_eq!(err.field, path.join("."), "{:?}", name);
            assert!(!err.problem.contains(c), "the character is echoed: {err}");
        }
    }
    // Non-ASCII letters are fine: git and people read them as written.
    let mut v = base();
    v["branch"] = json!("ados/café-42");
    assert!(JobSpec::from_json(&v, RemotePolicy::default()).is_ok());
}

#[test]
fn gitlab_owner_may_be_nested() {
    let mut v = base();
    v["repo"]["provider"] = json!("gitlab");
    v["repo"]["owner"] = json!("grp/sub");
    assert!(JobSpec::from_json(&v, RemotePolicy::default()).is_ok());
    v["repo"]["owner"] = json!("grp/../x");
    assert!(JobSpec::from_json(&v, RemotePolicy::default()).is_err());
}

#[test]
fn http_allowed_on_loopback_and_by_policy() {
    let mut v = base();
    v["repo"]["clone_url"] = json!("http://127.0.0.1:9/o/r.git");
    assert!(JobSpec::from_json(&v, RemotePolicy::default()).is_ok());
    v["repo"]["clone_url"] = json!("http://git.internal/o/r.git");
    assert!(JobSpec::from_json(&v, RemotePolicy::default()).is_err());
    // The authority ends at `?` or `#`: git and curl connect to evil.com.
    for sneaky in [
        "http://evil.com?@127.0.0.1/o/r.git",
        "http://evil.com#@127.0.0.1/o/r.git",
    ] {
        v["repo"]["clone_url"] = json!(sneaky);
        assert!(
            JobSpec::from_json(&v, RemotePolicy::default()).is_err(),
            "{sneaky}"
        );
    }
    v["repo"]["clone_url"] = json!("http://git.internal/o/r.git");
    let p = RemotePolicy {
        allow_http: true,
        allow_file: false,
    };
    assert!(JobSpec::from_json(&v, p).is_ok());
}

#[test]
fn api_url_follows_the_clone_url_http_rule() {
    // The PR step sends the VCS token to `api_url`.
    let mut v = base();
    v["repo"]["api_url"] = json!("http://127.0.0.1:9/api/v3");
    assert!(JobSpec::from_json(&v, RemotePolicy::default()).is_ok());
    v["repo"]["api_url"] = json!("http://evil.com?@127.0.0.1/api");
    let e = JobSpec::from_json(&v, RemotePolicy::default()).unwrap_err();
    assert!(e.to_string().contains("repo.api_url"), "{e}");
    v["repo"]["api_url"] = json!("http://ghe.internal/api/v3");
    let e = JobSpec::from_json(&v, RemotePolicy::default()).unwrap_err();
    assert!(e.to_string().contains("ADOS_ALLOW_HTTP"), "{e}");
    let p = RemotePolicy {
        allow_http: true,
        allow_file: false,
    };
    assert!(JobSpec::from_json(&v, p).is_ok());
}

#[test]
fn debug_never_prints_secrets() {
    let mut v = base();
    v["credentials"] = json!({"vcs_token":"tok-supersecret"});
    v["registries"] = json!([{"type":"npm","url":"https://npm.example","token":"reg-supersecret"}]);
    let s = JobSpec::from_json(&v, RemotePolicy::default()).expect("valid");
    let dbg = format!("{s:?} {:?}", s.registries);
    assert!(!dbg.contains("supersecret"), "{dbg}");
    assert_eq!(s.secrets().len(), 2);
}
