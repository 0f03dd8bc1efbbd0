//! git/ and workspace against real git and a real smart-HTTP server that
//! demands a token: mirror, checkout, commit, push, re-run, and proof that
//! the token ends up in no file, argv or output line.

use ados_test_support::fixtures::{
    commit_to_bare, files_containing, git_argv_recorder, make_bare_repo, recorded_argv, run_git,
    try_git, TempDir,
};
use ados_test_support::git_server::{base64, GitServer};
use ados_work_runner::cancel::{CancelReason, CancelToken};
use ados_work_runner::git::{
    Author, ChangeKind, Checkout, Git, GitAuth, GitEnv, GitError, GitStep, Mirror, PushMode,
    PushOutcome,
};
use ados_work_runner::job::spec::RemotePolicy;
use ados_work_runner::redact::Redactor;
use ados_work_runner::workspace::{JobDir, MirrorKey, MirrorLock, Workspace};
use std::fs;
use std::path::PathBuf;
use std::process::Command;

const USER: &str = "x-access-token";
const TOKEN: &str = "ghs_TestToken0123456789abcdefXYZ";

struct Fixture {
    tmp: TempDir,
    server: GitServer,
    url: String,
    bare: PathBuf,
    bin: PathBuf,
    ws: Workspace,
}

fn fixture() -> Fixture {
    let tmp = TempDir::new("git");
    let srv = tmp.join("srv");
    let bare = make_bare_repo(
        &srv,
        "o/r.git",
        &[
            ("README.md", "hello\n"),
            (".gitignore", "*.log\n"),
            ("src/lib.rs", "pub fn a() {}\n"),
        ],
    );
    let server = GitServer::start(&srv, USER, TOKEN);
    let url = server.url_for("o/r.git");
    let bin = git_argv_recorder(tmp.path());
    let ws = Workspace::open(&tmp.join("ws")).unwrap();
    Fixture {
        tmp,
        server,
        url,
        bare,
        bin,
        ws,
    }
}

impl Fixture {
    fn env(&self, job: &JobDir, token: Option<&str>) -> GitEnv {
        GitEnv::new(
            job.home(),
            RemotePolicy::default(),
            &self.url,
            token.map(|t| GitAuth::new(USER, t)),
            Some(&self.bin),
        )
    }
}

fn author() -> Author {
    Author {
        name: "ADOS".into(),
        email: "ados@ados.dev".into(),
    }
}

fn redactor() -> Redactor {
    Redactor::new(vec![TOKEN.to_string()])
}

/// Every form of the credential that must never be written anywhere.
fn token_forms() -> Vec<String> {
    vec![
        TOKEN.to_string(),
        base64(format!("{USER}:{TOKEN}").as_bytes()),
        base64(TOKEN.as_bytes()),
    ]
}

#[test]
fn clone_commit_push_and_rerun_leave_the_token_nowhere() {
    let f = fixture();
    let cancel = CancelToken::never();
    let mut lines: Vec<String> = Vec::new();
    let branch = "ados/issue-1";

    // First job: new branch.
    let job1 = f.ws.create_job_dir("job-1").unwrap();
    let env1 = f.env(&job1, Some(TOKEN));
    let first_sha;
    {
        let mut on_line = |l: &str| lines.push(l.to_string());
        let mut git = Git::new(&env1, &cancel, &redactor(), &mut on_line);
        let mirror = Mirror::ensure(&f.ws, &f.url, &mut git).unwrap();
        assert!(!mirror.reused());
        let mut co = Checkout::clone(&mut git, &mirror, job1.repo(), "main").unwrap();
        assert_eq!(
            fs::read_to_string(co.dir().join("README.md")).unwrap(),
            "hello\n"
        );
        assert_eq!(co.remote_branch(&mut git, branch).unwrap(), None);
        co.start_branch(&mut git, branch).unwrap();

        co.add_exclude(&[".npmrc"]).unwrap();
        co.add_exclude(&[".npmrc"]).unwrap();
        let exclude = fs::read_to_string(co.dir().join(".git/info/exclude")).unwrap();
        assert_eq!(exclude.matches(".npmrc").count(), 1, "{exclude}");
        fs::write(
            co.dir().join(".npmrc"),
            "//npm.example/:_authToken=npm_secret_value\n",
        )
        .unwrap();
        fs::write(co.dir().join("debug.log"), "ignored by .gitignore\n").unwrap();
        fs::write(co.dir().join("feature.txt"), "feature line\nsecond\n").unwrap();
        fs::write(co.dir().join("README.md"), "hello\nmore\n").unwrap();

        let changed = co.changed_files(&mut git).unwrap();
        let mut paths: Vec<(&str, ChangeKind)> =
            changed.iter().map(|c| (c.path.as_str(), c.kind)).collect();
        paths.sort_by_key(|p| p.0);
        assert_eq!(
            paths,
            vec![
                ("README.md", ChangeKind::Modified),
                ("feature.txt", ChangeKind::Untracked)
            ]
        );

        first_sha = co
            .commit(&mut git, &author(), "Add feature\n\nbody")
            .unwrap()
            .expect("a commit");
        assert_eq!(co.commit(&mut git, &author(), "nothing").unwrap(), None);
        let who = run_git(
            co.git_dir(),
            &["log", "-1", "--format=%an <%ae>|%cn <%ce>|%B"],
        );
        assert_eq!(
            who.trim_end(),
            "ADOS <ados@ados.dev>|ADOS <ados@ados.dev>|Add feature\n\nbody"
        );

        let diff = co.diff_for_scan(&mut git, 1 << 20).unwrap();
        let got: Vec<(String, u32, String)> = diff
            .lines
            .iter()
            .map(|l| (l.path.clone(), l.line, l.text.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("README.md".into(), 2, "more".into()),
                ("feature.txt".into(), 1, "feature line".into()),
                ("feature.txt".into(), 2, "second".into()),
            ]
        );
        assert!(!diff.truncated);
        assert_eq!(diff.added_paths, vec!["feature.txt".to_string()]);
        // Past the cap the diff says it is not whole.
        let cut = co.diff_for_scan(&mut git, 16).unwrap();
        assert!(cut.truncated, "a diff over the cap is marked cut");

        let out = co
            .push(
                &mut git,
                branch,
                &PushMode::ForceWithLease { expected: None },
            )
            .unwrap();
        assert_eq!(
            out,
            PushOutcome::Pushed {
                sha: first_sha.clone()
            }
        );
        let tree = run_git(&f.bare, &["ls-tree", "-r", "--name-only", &first_sha]);
        assert!(
            tree.contains("feature.txt") && !tree.contains(".npmrc") && !tree.contains("debug.log"),
            "{tree}"
        );

        // The checkout's origin is the plain URL and its config holds no header.
        assert_eq!(
            run_git(co.dir(), &["config", "remote.origin.url"]).trim(),
            f.url
        );
        assert!(!try_git(co.dir(), &["config", "--get-regexp", "extraheader"]).0);
        assert!(!try_git(mirror.path(), &["config", "--get-regexp", "extraheader"]).0);
    }

    // Second job (re-run): the branch exists remotely; start from target again.
    let job2 = f.ws.create_job_dir("job-2").unwrap();
    let env2 = f.env(&job2, Some(TOKEN));
    {
        let mut on_line = |l: &str| lines.push(l.to_string());
        let mut git = Git::new(&env2, &cancel, &redactor(), &mut on_line);
        let mirror = Mirror::ensure(&f.ws, &f.url, &mut git).unwrap();
        assert!(mirror.reused());
        let mut co = Checkout::clone(&mut git, &mirror, job2.repo(), "main").unwrap();
        let main_sha = co.head(&mut git).unwrap();
        let remote = co.remote_branch(&mut git, branch).unwrap();
        assert_eq!(remote.as_deref(), Some(first_sha.as_str()));
        assert!(co.remote_branch_exists(&mut git, branch).unwrap());
        co.start_branch(&mut git, branch).unwrap();
        assert_eq!(
            co.head(&mut git).unwrap(),
            main_sha,
            "a re-run starts from the target"
        );
        assert_eq!(co.base(), main_sha);
        fs::write(co.dir().join("feature.txt"), "redone\n").unwrap();
        let second_sha = co
            .commit(&mut git, &author(), "Redo feature")
            .unwrap()
            .unwrap();

        // A stale lease (someone else's sha) is refused...
        let stale = co
            .push(
                &mut git,
                branch,
                &PushMode::ForceWithLease {
                    expected: Some(main_sha.clone()),
                },
            )
            .unwrap();
        assert!(
            matches!(
                stale,
                PushOutcome::Rejected {
                    protected: false,
                    ..
                }
            ),
            "{stale:?}"
        );
        // ...a plain push is refused (not a fast-forward)...
        let ff = co.push(&mut git, branch, &PushMode::FastForward).unwrap();
        assert!(
            matches!(
                ff,
                PushOutcome::Rejected {
                    protected: false,
                    ..
                }
            ),
            "{ff:?}"
        );
        // ...and the lease on what we saw succeeds.
        let out = co
            .push(
                &mut git,
                branch,
                &PushMode::ForceWithLease { expected: remote },
            )
            .unwrap();
        assert_eq!(
            out,
            PushOutcome::Pushed {
                sha: second_sha.clone()
            }
        );
        assert_eq!(
            run_git(&f.bare, &["rev-parse", &format!("refs/heads/{branch}")]).trim(),
            second_sha
        );
        assert_eq!(
            run_git(&f.bare, &["rev-parse", &format!("{second_sha}^")]).trim(),
            main_sha
        );
        // The temporary push ref does not linger in the mirror.
        assert!(
            !try_git(
                mirror.path(),
                &["rev-parse", "--verify", "--quiet", "refs/ados-push/head"]
            )
            .0
        );
    }

    // The token is in no file (workspace, checkouts, mirror, server, argv log)...
    for form in token_forms() {
        let hits = files_containing(f.tmp.path(), form.as_bytes());
        assert!(hits.is_empty(), "`{form}` found in {hits:?}");
    }
    // ...in no argv git was started with...
    let argv = recorded_argv(f.tmp.path());
    assert!(
        argv.iter().any(|l| l.contains(" push ")),
        "the recorder saw the push: {argv:?}"
    );
    for form in token_forms() {
        assert!(!argv.iter().any(|l| l.contains(&form)), "`{form}` in argv");
    }
    // ...and in no output line.
    assert!(!lines
        .iter()
        .any(|l| token_forms().iter().any(|t| l.contains(t.as_str()))));
    // Every request the server saw carried the credential up front.
    assert!(f.server.requests().iter().all(|r| r.authorized));
    drop(job1);
    assert!(!f.ws.jobs_dir().join("job-1").exists());
}

#[test]
fn second_ensure_fetches_instead_of_cloning() {
    let f = fixture();
    let cancel = CancelToken::never();
    let job = f.ws.create_job_dir("j").unwrap();
    let env = f.env(&job, Some(TOKEN));
    let mut sink = |_: &str| {};
    let mut git = Git::new(&env, &cancel, &redactor(), &mut sink);

    let first = Mirror::ensure(&f.ws, &f.url, &mut git).unwrap();
    assert!(!first.reused());
    let clone_reqs = f.server.requests();
    assert!(
        clone_reqs.iter().any(|r| r.is_upload_pack_post()),
        "{clone_reqs:?}"
    );
    assert!(
        clone_reqs.iter().all(|r| r.haves == 0),
        "a fresh clone has nothing to offer: {clone_reqs:?}"
    );

    let new_sha = commit_to_bare(&f.bare, "main", &[("upstream.txt", "new\n")]);
    f.server.clear_requests();
    let second = Mirror::ensure(&f.ws, &f.url, &mut git).unwrap();
    assert!(second.reused());
    assert_eq!(second.path(), first.path());
    let fetch_reqs = f.server.requests();
    assert!(
        fetch_reqs
            .iter()
            .any(|r| r.is_upload_pack_post() && r.haves > 0),
        "the update negotiated from what the mirror has: {fetch_reqs:?}"
    );
    assert!(fetch_reqs
        .iter()
        .all(|r| r.authorized && !r.is_receive_pack_post()));
    assert_eq!(
        run_git(second.path(), &["rev-parse", "refs/heads/main"]).trim(),
        new_sha
    );

    // A half-made mirror left by a crash is cleaned up under the lock.
    let key = MirrorKey::for_url(&f.url);
    let leftover = f.ws.mirrors_dir().join(format!("{key}.git.tmp-999999"));
    fs::create_dir_all(&leftover).unwrap();
    Mirror::ensure(&f.ws, &f.url, &mut git).unwrap();
    assert!(!leftover.exists());

    // A mirror that is not a repository any more is cloned again.
    fs::remove_dir_all(second.path().join("objects")).unwrap();
    fs::remove_file(second.path().join("HEAD")).unwrap();
    let again = Mirror::ensure(&f.ws, &f.url, &mut git).unwrap();
    assert!(!again.reused());
    assert_eq!(
        run_git(again.path(), &["rev-parse", "refs/heads/main"]).trim(),
        new_sha
    );
}

#[test]
fn missing_or_wrong_token_is_an_auth_failure() {
    let f = fixture();
    let cancel = CancelToken::never();
    let job = f.ws.create_job_dir("j").unwrap();
    let wrong = "ghs_WrongToken_zzzzzzzzzzzz";
    for token in [None, Some(wrong)] {
        let env = f.env(&job, token);
        let mut sink = |_: &str| {};
        let r = Redactor::new(vec![wrong.to_string()]);
        let mut git = Git::new(&env, &cancel, &r, &mut sink);
        let err = Mirror::ensure(&f.ws, &f.url, &mut git).unwrap_err();
        assert!(err.is_auth_failure(), "{token:?}: {err}");
        assert_eq!(err.step(), Some(GitStep::MirrorClone));
        assert!(!err.to_string().contains(wrong));
    }
    // Nothing half-made is left behind.
    assert_eq!(fs::read_dir(f.ws.mirrors_dir()).unwrap().count(), 0);
    assert!(f
        .server
        .requests()
        .iter()
        .all(|r| !r.authorized && r.status == 401));
}

#[test]
fn force_push_only_for_ados_branches_and_protected_rejection_is_typed() {
    let f = fixture();
    let cancel = CancelToken::never();
    let job = f.ws.create_job_dir("j").unwrap();
    let env = f.env(&job, Some(TOKEN));
    let mut sink = |_: &str| {};
    let mut git = Git::new(&env, &cancel, &redactor(), &mut sink);
    let mirror = Mirror::ensure(&f.ws, &f.url, &mut git).unwrap();
    let co = Checkout::clone(&mut git, &mirror, job.repo(), "main").unwrap();
    fs::write(co.dir().join("x.txt"), "x\n").unwrap();
    co.commit(&mut git, &author(), "x").unwrap().unwrap();
    f.server.clear_requests();

    for b in ["main", "feature/ados/x", "ados"] {
        let err = co
            .push(&mut git, b, &PushMode::ForceWithLease { expected: None })
            .unwrap_err();
        assert!(
            matches!(err, GitError::ForcePushRefused { .. }),
            "{b}: {err}"
        );
    }
    assert!(f.server.requests().is_empty(), "nothing reached the server");

    f.server.protect_branch("o/r.git", "main");
    let out = co.push(&mut git, "main", &PushMode::FastForward).unwrap();
    assert!(
        matches!(
            out,
            PushOutcome::Rejected {
                protected: true,
                ..
            }
        ),
        "{out:?}"
    );

    assert!(matches!(
        Checkout::clone(
            &mut git,
            &mirror,
            &job.root().join("other"),
            "no-such-branch"
        ),
        Err(GitError::BranchNotFound { .. })
    ));
}

#[test]
fn lock_held_by_a_killed_process_does_not_block() {
    let tmp = TempDir::new("lock");
    let ws = Workspace::open(tmp.path()).unwrap();
    let path = ws.lock_path(&MirrorKey::for_url("https://h/o/r.git"));
    fs::write(&path, "").unwrap();
    use std::os::unix::process::CommandExt;
    let mut child = Command::new("flock")
        .arg(&path)
        .args(["sleep", "60"])
        .process_group(0)
        .spawn()
        .unwrap();
    // Wait (with a deadline) until the child holds it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while MirrorLock::try_acquire(&path).unwrap().is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "flock never took the lock"
        );
        std::thread::yield_now();
    }
    // SAFETY: kill(2) on the process group of the child we spawned.
    unsafe {
        libc::kill(-(child.id() as i32), libc::SIGKILL);
    }
    child.wait().unwrap();
    let lock = MirrorLock::acquire(&path, &CancelToken::never()).unwrap();
    assert_eq!(lock.path(), path);
}

#[test]
fn ext_transport_is_refused_by_git_itself() {
    let f = fixture();
    let cancel = CancelToken::never();
    let job = f.ws.create_job_dir("j").unwrap();
    let marker = f.tmp.join("pwned");
    let ext_url = format!("ext::sh -c touch% {}", marker.display());
    // Even with every policy switch on, ext:: is never in GIT_ALLOW_PROTOCOL.
    let policy = RemotePolicy {
        allow_http: true,
        allow_file: true,
    };
    let env = GitEnv::new(job.home(), policy, &ext_url, None, None);
    let mut sink = |_: &str| {};
    let mut git = Git::new(&env, &cancel, &redactor(), &mut sink);
    let err = git
        .run_local(GitStep::LsRemote, job.home(), &["ls-remote", &ext_url])
        .unwrap_err();
    assert!(
        err.to_string().contains("transport 'ext' not allowed"),
        "{err}"
    );
    let err = Mirror::ensure(&f.ws, &ext_url, &mut git).unwrap_err();
    assert!(err.to_string().contains("not allowed"), "{err}");
    assert!(!marker.exists(), "the ext:: command ran");
}

#[test]
fn existing_branch_checkout_for_repair_and_review() {
    let f = fixture();
    let cancel = CancelToken::never();
    run_git(&f.bare, &["branch", "pr-branch", "main"]);
    let pr_sha = commit_to_bare(&f.bare, "pr-branch", &[("pr.txt", "pr\n")]);
    let job = f.ws.create_job_dir("j").unwrap();
    let env = f.env(&job, Some(TOKEN));
    let mut sink = |_: &str| {};
    let mut git = Git::new(&env, &cancel, &redactor(), &mut sink);
    let mirror = Mirror::ensure(&f.ws, &f.url, &mut git).unwrap();
    let mut co = Checkout::clone(&mut git, &mirror, job.repo(), "main").unwrap();
    co.checkout_existing(&mut git, "pr-branch").unwrap();
    assert_eq!(co.head(&mut git).unwrap(), pr_sha);
    assert_eq!(co.base(), pr_sha, "the scan covers only new commits");
    assert!(co.dir().join("pr.txt").exists());
    // Made independent of the mirror, the checkout still has its history.
    co.dissociate(&mut git).unwrap();
    assert!(!co.dir().join(".git/objects/info/alternates").exists());
    run_git(co.dir(), &["fsck", "--connectivity-only", "--no-dangling"]);
    assert!(matches!(
        co.checkout_existing(&mut git, "nope"),
        Err(GitError::BranchNotFound { .. })
    ));
    fs::write(co.dir().join("pr.txt"), "fixed\n").unwrap();
    let sha = co.commit(&mut git, &author(), "Fix CI").unwrap().unwrap();
    // A fast-forward onto a non-ados branch is allowed.
    let out = co
        .push(&mut git, "pr-branch", &PushMode::FastForward)
        .unwrap();
    assert_eq!(out, PushOutcome::Pushed { sha: sha.clone() });
    assert_eq!(
        run_git(&f.bare, &["rev-parse", "refs/heads/pr-branch"]).trim(),
        sha
    );
}

#[test]
fn cancelled_job_stops_git() {
    let f = fixture();
    let (canceller, cancel) = ados_work_runner::cancel::cancel_pair();
    canceller.cancel(CancelReason::Server);
    let job = f.ws.create_job_dir("j").unwrap();
    let env = f.env(&job, Some(TOKEN));
    let mut sink = |_: &str| {};
    let mut git = Git::new(&env, &cancel, &redactor(), &mut sink);
    let err = Mirror::ensure(&f.ws, &f.url, &mut git).unwrap_err();
    assert!(
        matches!(
            err,
            GitError::Cancelled {
                step: GitStep::MirrorClone,
                reason: CancelReason::Server
            }
        ),
        "{err}"
    );
    assert!(f.server.requests().is_empty());
    // Nothing half-made is left behind.
    assert_eq!(fs::read_dir(f.ws.mirrors_dir()).unwrap().count(), 0);
}

#[test]
fn a_base_that_is_not_on_the_branch_upstream_is_never_pushed() {
    let f = fixture();
    let cancel = CancelToken::never();
    let mut on_line = |_: &str| {};
    let job = f.ws.create_job_dir("job-poisoned").unwrap();
    let env = f.env(&job, Some(TOKEN));
    let mut git = Git::new(&env, &cancel, &redactor(), &mut on_line);
    let mirror = Mirror::ensure(&f.ws, &f.url, &mut git).unwrap();
    // Something other than the runner moves the mirror's main onto a
    // commit upstream does not have (an agent that found the mirror).
    let evil = commit_to_bare(mirror.path(), "main", &[("evil.txt", "evil\n")]);
    let mut co = Checkout::clone(&mut git, &mirror, job.repo(), "main").unwrap();
    assert_eq!(
        co.base(),
        evil,
        "the checkout started from the poisoned main"
    );
    co.start_branch(&mut git, "ados/issue-9").unwrap();
    fs::write(co.dir().join("work.txt"), "work\n").unwrap();
    co.commit(&mut git, &author(), "work")
        .unwrap()
        .expect("a commit");
    let err = co
        .push(
            &mut git,
            "ados/issue-9",
            &PushMode::ForceWithLease { expected: None },
        )
        .expect_err("a base that is not upstream must not be pushed");
    assert!(
        matches!(err, GitError::BaseNotUpstream { ref branch, .. } if branch == "main"),
        "{err}"
    );
    assert!(err.to_string().contains("nothing was pushed"), "{err}");
    assert!(
        !try_git(
            &f.bare,
            &["rev-parse", "--verify", "refs/heads/ados/issue-9"]
        )
        .0
    );

    // Upstream moving on while a job runs is fine: a base that is an
    // ancestor of the new tip is pushed.
    let job2 = f.ws.create_job_dir("job-moved-on").unwrap();
    let env2 = f.env(&job2, Some(TOKEN));
    let mut git = Git::new(&env2, &cancel, &redactor(), &mut on_line);
    let mirror = Mirror::ensure(&f.ws, &f.url, &mut git).unwrap();
    let mut co = Checkout::clone(&mut git, &mirror, job2.repo(), "main").unwrap();
    co.start_branch(&mut git, "ados/issue-10").unwrap();
    commit_to_bare(&f.bare, "main", &[("upstream.txt", "later\n")]);
    fs::write(co.dir().join("work.txt"), "work\n").unwrap();
    co.commit(&mut git, &author(), "work")
        .unwrap()
        .expect("a commit");
    let out = co
        .push(
            &mut git,
            "ados/issue-10",
            &PushMode::ForceWithLease { expected: None },
        )
        .unwrap();
    assert!(matches!(out, PushOutcome::Pushed { .. }), "{out:?}");
}
