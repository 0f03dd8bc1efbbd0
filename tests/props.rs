//! Property tests over what the control plane can send: frames and job
//! specs never panic the parsers, an accepted spec never names a path
//! outside the workspace, a ref git would refuse, or a command-running
//! remote; and the stream redactor never lets a secret through.
//!
//! Every property runs on a fixed ChaCha RNG (the same cases on every run,
//! whatever `PROPTEST_RNG_SEED` says) and persists no failure files into
//! the repository: a failure prints the minimal input, which is the
//! regression to add as a unit test.

use ados_test_support::fixtures::{try_git, TempDir};
use ados_work_runner::job::spec::{check_branch, check_clone_url, JobSpec, Provider, RemotePolicy};
use ados_work_runner::link::proto::{parse_server_message, ServerMessage};
use ados_work_runner::net::Url;
use ados_work_runner::redact::{Redactor, REDACTED};
use ados_work_runner::run::workdir_of;
use ados_work_runner::workspace::Workspace;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use serde_json::{json, Map, Value};
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

/// A runner with a fixed seed and no failure persistence, so CI sees the
/// same cases every time and nothing is written next to the sources.
fn runner(cases: u32) -> TestRunner {
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha))
}

/// Runs `test` over `strategy`; on failure panics with the shrunk input.
fn check<S: Strategy>(cases: u32, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    if let Err(e) = runner(cases).run(&strategy, test) {
        panic!("{e}");
    }
}

// ---------------------------------------------------------------- strings

/// Strings chosen to hit the rules of protocol.md §5 and the parsers'
/// corners: traversal, separators, NUL, option-looking values, git's
/// command-running transports, refs git refuses, unicode and controls.
const HOSTILE: &[&str] = &[
    "",
    ".",
    "..",
    "...",
    "/",
    "//",
    "../x",
    "a/../b",
    "a/./b",
    "./a",
    "a/",
    "\0",
    "a\0b",
    "-",
    "--force",
    "-x",
    "--upload-pack=touch /tmp/pwned",
    "ext::sh -c touch% /tmp/pwned",
    "ext::sh",
    "fd::3",
    "EXT::x",
    "http+ext::x",
    "httpx::x@y:z",
    "a@b::c",
    "file:///etc",
    "/etc/passwd",
    "http://127.0.0.1:9/o/r.git",
    "http://[::1]/o/r.git",
    "http://localhost.evil.com/o/r.git",
    "http://example.com/o/r.git",
    "https://",
    "https://@/x",
    "https://:443/x",
    "ssh://-oProxyCommand=x/y",
    "git@github.com:o/r.git",
    "-oProxyCommand=x@y:z",
    "HEAD",
    "@",
    "@{-1}",
    "x.lock",
    "a..b",
    "a b",
    "a\tb",
    "a\nb",
    "a\\b",
    "C:\\x",
    "\u{7f}",
    "ä",
    "🦀",
    "\u{202e}evil",
    "refs/heads/x",
    "a/b/c",
    "grp/sub",
    "grp//sub",
    "main",
    "j-1",
    "null",
    "0",
];

fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(HOSTILE).prop_map(str::to_string),
        2 => "[a-zA-Z0-9._/@:-]{0,16}",
        2 => any::<String>(),
        1 => (select(HOSTILE), select(HOSTILE)).prop_map(|(a, b)| format!("{a}{b}")),
        1 => (select(&[1usize, 127, 128, 129, 254, 255, 256, 5000][..]), "[a-z./-]")
            .prop_map(|(n, c)| c.repeat(n)),
    ]
}

/// JSON leaves: null, bools, numbers of every kind, hostile strings.
fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<u64>().prop_map(|n| json!(n)),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        select(&[0u64, 1, 10, 11, u64::MAX][..]).prop_map(|n| json!(n)),
        hostile_string().prop_map(Value::String),
    ]
}

/// Keys of the spec and of the frames, so random objects often have the
/// field a parser looks at.
const KEYS: &[&str] = &[
    "type",
    "job",
    "job_id",
    "seq",
    "acks",
    "heartbeat_s",
    "reason",
    "text",
    "message_id",
    "action",
    "kind",
    "stage",
    "repo",
    "provider",
    "base_url",
    "api_url",
    "owner",
    "name",
    "clone_url",
    "path",
    "target_branch",
    "issue",
    "number",
    "title",
    "body",
    "labels",
    "comments",
    "prompt",
    "agent",
    "model",
    "timeout_s",
    "args",
    "fallbacks",
    "branch",
    "merge_mode",
    "test_command",
    "max_repair_attempts",
    "commit",
    "message",
    "author_name",
    "author_email",
    "pr",
    "draft",
    "credentials",
    "vcs_token",
    "registries",
    "url",
    "scope",
    "token",
    "idle_timeout_s",
];

fn json_key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(KEYS).prop_map(str::to_string),
        1 => hostile_string(),
    ]
}

/// Any JSON value, at most 4 levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            vec((json_key(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

// ---------------------------------------------------------------- frames

const FRAME_TYPES: &[&str] = &[
    "welcome",
    "job.assign",
    "job.cancel",
    "ack",
    "chat.input",
    "chat.end",
    "drain",
    "undrain",
    "hello",
    "heartbeat",
];

/// A frame-shaped object: a `type` that is usually known, plus random
/// fields (often the ones that type needs).
fn frame_value() -> impl Strategy<Value = Value> {
    let kind = prop_oneof![
        4 => select(FRAME_TYPES).prop_map(|t| Value::String(t.to_string())),
        1 => hostile_string().prop_map(Value::String),
        1 => json_leaf(),
    ];
    (kind, vec((json_key(), json_value()), 0..6)).prop_map(|(kind, fields)| {
        let mut m: Map<String, Value> = fields.into_iter().collect();
        m.insert("type".into(), kind);
        Value::Object(m)
    })
}

#[test]
fn parse_server_message_never_panics_on_arbitrary_text() {
    let text = prop_oneof![
        any::<String>(),
        json_value().prop_map(|v| v.to_string()),
        // Truncated frames: what a torn read would deliver.
        (frame_value(), any::<prop::sample::Index>()).prop_map(|(v, i)| {
            let s = v.to_string();
            let cut = i.index(s.len() + 1);
            String::from_utf8_lossy(&s.as_bytes()[..cut]).into_owned()
        }),
    ];
    check(256, text, |t| {
        let _ = parse_server_message(&t);
        Ok(())
    });
}

#[test]
fn parse_server_message_never_panics_on_frame_shaped_json() {
    check(256, prop_oneof![frame_value(), json_value()], |v| {
        let text = v.to_string();
        match parse_server_message(&text) {
            // A job is always handed on as an object, for JobSpec to judge.
            Ok(ServerMessage::Assign(job)) => prop_assert!(job.is_object()),
            Ok(ServerMessage::Welcome { heartbeat_s, .. }) => prop_assert!(heartbeat_s > 0),
            Ok(ServerMessage::Unknown(t)) => {
                prop_assert_eq!(Some(t.as_str()), v.get("type").and_then(Value::as_str))
            }
            _ => {}
        }
        Ok(())
    });
}

// ---------------------------------------------------------------- specs

/// A spec with every §4 field present and valid.
fn valid_spec() -> Value {
    json!({"job_id":"j-17","kind":"issue","stage":"implement",
     "repo":{"provider":"github","base_url":"https://github.com","api_url":null,
             "owner":"my-org","name":"my-repo","clone_url":null,"path":"",
             "target_branch":"main"},
     "issue":{"number":42,"title":"t","body":"b","labels":["ados"],
              "comments":[{"author":"alice","body":"c"}],"url":"https://x/1"},
     "prompt":null,
     "agent":{"name":"claude","model":"claude-sonnet-4","timeout_s":2700,"args":["--x"]},
     "fallbacks":[{"name":"copilot"},"codex"],
     "branch":"ados/issue-42","merge_mode":"pr",
     "test_command":null,"max_repair_attempts":1,
     "commit":{"message":null,"author_name":"ADOS","author_email":"ados@ados.dev"},
     "pr":{"title":null,"body":null,"draft":false},
     "credentials":{"vcs_token":"tok-secret"},
     "registries":[{"type":"npm","url":"https://npm.pkg.github.com","scope":"@myorg",
                    "token":"reg-secret"}],
     "timeout_s":3600,"idle_timeout_s":60})
}

/// JSON pointers of the fields a mutation may replace (leaves and whole
/// sub-objects).
const SPEC_POINTERS: &[&str] = &[
    "",
    "/job_id",
    "/kind",
    "/stage",
    "/repo",
    "/repo/provider",
    "/repo/base_url",
    "/repo/api_url",
    "/repo/owner",
    "/repo/name",
    "/repo/clone_url",
    "/repo/path",
    "/repo/target_branch",
    "/issue",
    "/issue/number",
    "/issue/labels",
    "/issue/comments",
    "/prompt",
    "/agent",
    "/agent/name",
    "/agent/model",
    "/agent/timeout_s",
    "/agent/args",
    "/agent/args/0",
    "/fallbacks",
    "/fallbacks/0",
    "/fallbacks/1",
    "/branch",
    "/merge_mode",
    "/test_command",
    "/max_repair_attempts",
    "/commit",
    "/commit/author_name",
    "/commit/author_email",
    "/pr",
    "/pr/draft",
    "/credentials",
    "/credentials/vcs_token",
    "/registries",
    "/registries/0",
    "/registries/0/type",
    "/registries/0/url",
    "/registries/0/scope",
    "/registries/0/token",
    "/timeout_s",
    "/idle_timeout_s",
];

/// Near-valid values for the fields that reach paths, refs and URLs, so
/// mutated specs are often accepted and the invariants get exercised.
fn near_valid(pointer: &str) -> BoxedStrategy<Value> {
    // Two parts valid-looking to one part hostile, so a mutated spec often
    // passes validation and the invariants get exercised.
    let s: BoxedStrategy<String> = match pointer {
        "/job_id" | "/repo/name" | "/agent/name" => prop_oneof![
            2 => "[a-zA-Z0-9._-]{1,12}",
            1 => "([a-zA-Z0-9_-]{1,6}|\\.|\\.\\.|/|\\\\){1,4}",
        ]
        .boxed(),
        "/repo/owner" => prop_oneof![
            2 => "[a-z0-9._-]{1,6}(/[a-z0-9._-]{1,6}){0,2}",
            1 => "([a-z0-9_-]{1,6}|\\.|\\.\\.|/){1,5}",
        ]
        .boxed(),
        "/repo/path" => prop_oneof![
            2 => "[a-z0-9._-]{1,6}(/[a-z0-9._-]{0,6}){0,3}",
            1 => "([a-z0-9_-]{1,5}|\\.|\\.\\.|/|//|\\\\){0,6}",
        ]
        .boxed(),
        "/branch" | "/repo/target_branch" => prop_oneof![
            2 => "[a-z0-9][a-z0-9_-]{0,5}(/[a-z0-9][a-z0-9._-]{0,5}){0,3}",
            1 => branch_like(),
        ]
        .boxed(),
        "/repo/clone_url" | "/repo/base_url" => url_like().boxed(),
        "/repo/provider" => select(&["github", "gitlab", "bitbucket"][..])
            .prop_map(str::to_string)
            .boxed(),
        _ => return json_value().boxed(),
    };
    s.prop_map(Value::String).boxed()
}

/// Branch-name candidates: mostly ordinary words and separators, with the
/// characters and sequences `git check-ref-format` cares about.
fn branch_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        8 => "[a-z0-9]{1,4}",
        3 => Just("/".to_string()),
        2 => Just(".".to_string()),
        2 => Just("-".to_string()),
        4 => select(
            &[
                "..", "@", "@{", "{", "}", "~", "^", ":", "?", "*", "[", "\\", " ", "_",
                ".lock", "HEAD", "\u{7f}", "\t", "é", "//",
            ][..]
        )
        .prop_map(str::to_string),
    ];
    vec(piece, 1..8).prop_map(|p| p.concat())
}

/// Clone-URL candidates: every scheme and transport git knows, hosts that
/// are loopback or not, user info, option-looking hosts.
fn url_like() -> impl Strategy<Value = String> {
    let scheme = select(
        &[
            "https://",
            "http://",
            "HTTP://",
            "ssh://",
            "file://",
            "/",
            "",
            "ext::",
            "fd::",
            "-",
            "git@",
            "u@",
            "http+ext::",
            "httpx::",
            "git::",
        ][..],
    );
    let host = select(
        &[
            "github.com",
            "127.0.0.1",
            "127.0.0.1:9",
            "localhost",
            "[::1]",
            "[::1]:8",
            "example.com",
            "",
            "@",
            ":22",
            "u:p@127.0.0.1",
            "example.com?@127.0.0.1",
            "example.com#@127.0.0.1",
            "127.0.0.1?@example.com",
            "-oProxyCommand=x",
            "sh -c x",
        ][..],
    );
    let mixed = (scheme, host, "[a-z/.:@-]{0,10}").prop_map(|(s, h, p)| format!("{s}{h}{p}"));
    let plausible = (
        select(&["https://", "ssh://git@", "http://127.0.0.1:8080/", "git@"][..]),
        "[a-z]{1,8}\\.com[/:][a-z]{1,6}/[a-z]{1,6}(\\.git)?",
    )
        .prop_map(|(s, rest)| format!("{s}{rest}"));
    prop_oneof![1 => plausible, 2 => mixed]
}

/// The fields that reach a path, a ref, an argv or a URL: mutated most.
const RISKY_POINTERS: &[&str] = &[
    "/job_id",
    "/repo/provider",
    "/repo/owner",
    "/repo/name",
    "/repo/path",
    "/repo/base_url",
    "/repo/clone_url",
    "/repo/target_branch",
    "/branch",
    "/agent/name",
];

/// A valid spec with 1–4 fields replaced: mostly the risky ones with
/// near-valid values (so many specs are accepted and the invariants are
/// exercised), sometimes any field with any JSON.
fn mutated_spec() -> impl Strategy<Value = Value> {
    let risky = select(RISKY_POINTERS).prop_flat_map(|p| (Just(p), near_valid(p)));
    let any_field = (select(SPEC_POINTERS), json_value());
    let one = prop_oneof![4 => risky, 1 => any_field];
    vec(one, 1..5).prop_map(|muts| {
        let mut v = valid_spec();
        for (p, new) in muts {
            if p.is_empty() {
                v = new;
            } else if let Some(slot) = v.pointer_mut(p) {
                *slot = new;
            }
        }
        v
    })
}

fn policy() -> impl Strategy<Value = RemotePolicy> {
    (any::<bool>(), any::<bool>()).prop_map(|(allow_http, allow_file)| RemotePolicy {
        allow_http,
        allow_file,
    })
}

/// A safe single path component: exactly one `Normal` component equal to
/// the whole string, so `dir.join(s)` is a direct child of `dir`.
fn is_one_component(s: &str) -> bool {
    let mut comps = Path::new(s).components();
    matches!(
        (comps.next(), comps.next()),
        (Some(Component::Normal(c)), None) if c == s
    ) && !s.contains('\0')
        && !s.contains('/')
}

/// `path` resolved lexically, component by component (no symlinks
/// followed): `None` when a `..` climbs above the root.
fn normalise(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    Some(out)
}

/// git's `<transport>::<address>` detection (transport.c): a run of
/// URL-scheme characters, the first a letter, followed by `::`.
fn is_git_transport_syntax(url: &str) -> bool {
    let mut end = 0;
    for (i, c) in url.char_indices() {
        let ok = if i == 0 {
            c.is_ascii_alphabetic()
        } else {
            c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')
        };
        if !ok {
            break;
        }
        end = i + c.len_utf8();
    }
    end > 0 && url[end..].starts_with("::")
}

/// Whether the host git (curl) would connect to is loopback: the
/// authority ends at the first `/`, `?` or `#` (RFC 3986), the host follows
/// the last `@` in it. Written independently of the validator's code.
fn host_is_loopback(after_scheme: &str) -> bool {
    let end = after_scheme
        .find(['/', '?', '#'])
        .unwrap_or(after_scheme.len());
    let authority = &after_scheme[..end];
    let hostport = authority.rsplit('@').next().unwrap_or("");
    let host = match hostport.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => hostport.split(':').next().unwrap_or(""),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

/// Whether the real git accepts `name` as a branch name (memoised: specs
/// repeat names).
struct GitRefs {
    dir: TempDir,
    seen: RefCell<HashMap<String, bool>>,
}

impl GitRefs {
    fn new() -> GitRefs {
        GitRefs {
            dir: TempDir::new("props-refs"),
            seen: RefCell::new(HashMap::new()),
        }
    }

    fn accepts(&self, name: &str) -> bool {
        if let Some(ok) = self.seen.borrow().get(name) {
            return *ok;
        }
        // `--` is not understood by check-ref-format; a leading `-` is
        // refused by --branch itself, which is what we want to compare.
        let (ok, _, _) = try_git(self.dir.path(), &["check-ref-format", "--branch", name]);
        self.seen.borrow_mut().insert(name.to_string(), ok);
        ok
    }
}

/// Every invariant an accepted spec must hold, checked against the real
/// filesystem and the real git.
fn accepted_spec_is_safe(
    spec: &JobSpec,
    policy: RemotePolicy,
    ws: &Workspace,
    git: &GitRefs,
) -> Result<(), TestCaseError> {
    let job_id = spec.job_id.as_str();
    prop_assert!(is_one_component(job_id), "job_id {job_id:?}");
    prop_assert!(
        is_one_component(&spec.repo.name),
        "repo.name {:?}",
        spec.repo.name
    );
    for seg in spec.repo.owner.split('/') {
        prop_assert!(is_one_component(seg), "owner {:?}", spec.repo.owner);
    }
    if spec.repo.provider != Provider::Gitlab {
        prop_assert!(!spec.repo.owner.contains('/'));
    }
    for agent in spec.agents_in_order() {
        prop_assert!(is_one_component(&agent.name), "agent {:?}", agent.name);
    }

    // The job directory is a direct child of jobs/, on the real disk.
    let dir = ws
        .create_job_dir(job_id)
        .map_err(|e| TestCaseError::fail(format!("create_job_dir({job_id:?}): {e}")))?;
    let real = std::fs::canonicalize(dir.root())
        .map_err(|e| TestCaseError::fail(format!("canonicalize: {e}")))?;
    let jobs = std::fs::canonicalize(ws.jobs_dir())
        .map_err(|e| TestCaseError::fail(format!("canonicalize jobs: {e}")))?;
    prop_assert_eq!(real.parent(), Some(jobs.as_path()), "job dir {:?}", real);
    prop_assert!(real.starts_with(ws.root()));
    drop(dir);

    // The monorepo path stays inside the checkout, resolved lexically.
    let checkout = Path::new("/ws/jobs/j/repo");
    let workdir = workdir_of(checkout, &spec.repo.path);
    let norm = normalise(&workdir);
    prop_assert!(
        norm.as_deref().is_some_and(|n| n.starts_with(checkout)),
        "repo.path {:?} resolves to {:?}",
        spec.repo.path,
        norm
    );

    // Refs: whatever we accept, git accepts.
    for (field, b) in [
        ("branch", &spec.branch),
        ("target_branch", &spec.repo.target_branch),
    ] {
        prop_assert!(!b.starts_with('-'), "{field} {b:?}");
        prop_assert!(git.accepts(b), "{field} {b:?} accepted but git refuses it");
    }

    remote_is_allowed(&spec.repo.clone_url, policy)
}

/// The remote has a scheme the policy allows, reaches a plain-http host
/// only when it is loopback or the policy allows http, and is never a
/// command-running transport or an option.
fn remote_is_allowed(url: &str, policy: RemotePolicy) -> Result<(), TestCaseError> {
    let lower = url.to_ascii_lowercase();
    prop_assert!(!lower.starts_with("ext::") && !lower.starts_with("fd::"));
    prop_assert!(!url.starts_with('-'), "clone_url {url:?}");
    prop_assert!(!is_git_transport_syntax(url), "clone_url {url:?}");
    prop_assert!(
        !url.chars().any(|c| c.is_control() || c == ' '),
        "clone_url {url:?}"
    );
    let scp_like = url
        .split_once(':')
        .is_some_and(|(uh, _)| uh.contains('@') && !uh.contains('/'));
    let allowed = if let Some(rest) = lower.strip_prefix("http://") {
        policy.allow_http || host_is_loopback(rest)
    } else if lower.starts_with("file://") || lower.starts_with('/') {
        policy.allow_file
    } else {
        lower.starts_with("https://") || lower.starts_with("ssh://") || scp_like
    };
    prop_assert!(allowed, "clone_url {url:?} under {policy:?}");
    Ok(())
}

#[test]
fn job_spec_never_panics_on_arbitrary_json() {
    check(256, (json_value(), policy()), |(v, p)| {
        let _ = JobSpec::from_json(&v, p);
        let _ = JobSpec::raw_job_id(&v);
        Ok(())
    });
}

#[test]
fn accepted_mutated_specs_stay_inside_the_workspace() {
    let tmp = TempDir::new("props-ws");
    let ws = Workspace::open(tmp.path()).unwrap();
    let git = GitRefs::new();
    let accepted = RefCell::new(0u32);
    check(512, (mutated_spec(), policy()), |(v, p)| {
        if let Ok(spec) = JobSpec::from_json(&v, p) {
            *accepted.borrow_mut() += 1;
            accepted_spec_is_safe(&spec, p, &ws, &git)?;
        }
        Ok(())
    });
    // The property is only worth something if a fair share of the mutated
    // specs gets through validation.
    let n = *accepted.borrow();
    assert!(n >= 50, "only {n} of 512 mutated specs were accepted");
}

#[test]
fn check_clone_url_never_accepts_a_forbidden_remote() {
    check(512, (url_like(), policy()), |(url, p)| {
        if check_clone_url("repo.clone_url", &url, p).is_ok() {
            remote_is_allowed(&url, p)?;
        }
        Ok(())
    });
}

/// The runner's one URL parser (`net::Url`) finds the host git (curl)
/// connects to: on every http URL it accepts, it agrees with the
/// independent reading above about whether that host is loopback.
#[test]
fn the_url_parser_reads_the_host_git_connects_to() {
    check(512, url_like(), |url| {
        let lower = url.to_ascii_lowercase();
        if let (Some(rest), Ok(parsed)) = (lower.strip_prefix("http://"), Url::parse(&url)) {
            prop_assert_eq!(parsed.is_loopback(), host_is_loopback(rest), "{}", url);
        }
        Ok(())
    });
}

/// The runner must never accept a branch name git refuses.
///
/// The other direction (git accepts, we refuse) is safe and known: `@`
/// alone (git outside a repository accepts it; inside one it means HEAD)
/// and names over 255 bytes.
#[test]
fn check_branch_never_accepts_what_git_refuses() {
    let git = GitRefs::new();
    let counts = RefCell::new((0u32, 0u32));
    check(256, branch_like(), |name| {
        let ours = check_branch("branch", &name).is_ok();
        let theirs = git.accepts(&name);
        prop_assert!(
            !ours || theirs,
            "check_branch accepts {name:?}, git check-ref-format --branch refuses it"
        );
        let mut c = counts.borrow_mut();
        if ours {
            c.0 += 1;
        } else if !theirs {
            c.1 += 1;
        }
        Ok(())
    });
    // The alphabet must produce plenty of both kinds to test anything.
    let (accepted, rejected) = *counts.borrow();
    assert!(
        accepted >= 20 && rejected >= 20,
        "{accepted} accepted and {rejected} rejected of 256"
    );
}

// ---------------------------------------------------------------- redaction

/// Secret characters: letters, digits, JSON-special characters (quote,
/// backslash, slash, controls), URL- and base64-special ones, unicode.
/// `[` and `]` are left out: a secret overlapping the `[REDACTED]` marker
/// (say `ED]abc`) could be rebuilt from the marker plus the text after it.
fn secret() -> impl Strategy<Value = String> {
    let ch = prop_oneof![
        6 => proptest::char::range('a', 'z'),
        2 => proptest::char::range('0', '9'),
        3 => select(&['"', '\\', '/', '+', '=', '%', '-', '_', ':', '@', ' ', '.', '~'][..]),
        1 => select(&['\t', '\r', '\u{1}', '\u{1f}', '\u{7f}', 'é', '🦀', '\u{2028}'][..]),
        1 => Just('\n'),
    ];
    vec(ch, 6..40)
        .prop_map(|cs| cs.into_iter().collect::<String>())
        .prop_filter("a secret inside the marker is rewritten into itself", |s| {
            !REDACTED.contains(s.as_str())
        })
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof!["[a-zA-Z0-9 \n\"\\\\/%+=:.{}-]{0,60}", any::<String>(),]
}

/// Feeds `input` to a stream redactor in pieces cut at `cuts` (byte
/// offsets, possibly inside a UTF-8 sequence), then finishes.
fn stream_through(r: &Redactor, input: &[u8], cuts: &[prop::sample::Index]) -> Vec<u8> {
    let mut points: Vec<usize> = cuts.iter().map(|i| i.index(input.len() + 1)).collect();
    points.sort_unstable();
    let mut s = r.stream();
    let mut out = Vec::new();
    let mut last = 0;
    for p in points {
        out.extend(s.feed(&input[last..p]));
        last = p;
    }
    out.extend(s.feed(&input[last..]));
    out.extend(s.finish());
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn stream_redactor_never_lets_a_split_secret_through() {
    let case = (
        secret(),
        text(),
        text(),
        vec(any::<prop::sample::Index>(), 1..4),
        vec(secret(), 0..3),
    );
    check(256, case, |(secret, before, after, cuts, others)| {
        let r = Redactor::new(std::iter::once(secret.clone()).chain(others));
        let input = format!("{before}{secret}{after}");
        let out = stream_through(&r, input.as_bytes(), &cuts);
        prop_assert!(
            !contains(&out, secret.as_bytes()),
            "secret {secret:?} in {:?}",
            String::from_utf8_lossy(&out)
        );
        // The stream is the whole-string redaction, however it was cut.
        prop_assert_eq!(
            String::from_utf8_lossy(&out),
            r.redact(&input),
            "stream and whole-text redaction differ"
        );
        Ok(())
    });
}

#[test]
fn stream_redactor_passes_text_without_secrets_unchanged() {
    let case = (
        vec(secret(), 1..4),
        text(),
        vec(any::<prop::sample::Index>(), 1..4),
    );
    check(256, case, |(secrets, text, cuts)| {
        let r = Redactor::new(secrets);
        prop_assume!(!r.contains_secret(&text));
        let out = stream_through(&r, text.as_bytes(), &cuts);
        prop_assert_eq!(out, text.as_bytes());
        Ok(())
    });
}

/// The fixed-seed runner really is reproducible: two runners generate the
/// same specs, so a CI failure replays locally.
#[test]
fn the_runner_is_deterministic() {
    let gen = |mut r: TestRunner| {
        (0..8)
            .map(|_| mutated_spec().new_tree(&mut r).unwrap().current())
            .collect::<Vec<_>>()
    };
    assert_eq!(gen(runner(1)), gen(runner(1)));
}
