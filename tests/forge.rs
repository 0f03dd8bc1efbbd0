//! The PR step against stand-ins for the GitHub, GitLab and Bitbucket REST
//! APIs (`tests/support/src/forge.rs`), through the runner's real
//! `net::Network`. Every test runs for each provider. Waits go through a
//! fake clock the server shares, so rate-limit tests assert the order and
//! the (fake) time of requests, never wall time.

use ados_test_support::forge::{Auth, ForgeServer, Kind, Pr, PrState, Recorded, CLOCK_START};
use ados_test_support::proxy::ConnectProxy;
use ados_work_runner::job::spec::{Provider, RemotePolicy, RepoSpec};
use ados_work_runner::net::{Network, Proxy, ProxySettings};
use ados_work_runner::vcs::forge::{
    open_or_update, Clock, ErrorKind, ForgeCredentials, ForgeError, ForgeTarget, OpenedPr,
    PullRequest,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const KINDS: [Kind; 3] = [Kind::GitHub, Kind::GitLab, Kind::Bitbucket];
const BRANCH: &str = "ados/issue-42";
const TOKEN: &str = "tok-forge-secret-123";
const BB_USER: &str = "ados-bot";

/// The server's clock, advanced by the runner's sleeps.
struct FakeClock {
    now: Arc<AtomicU64>,
    slept: std::sync::Mutex<Vec<Duration>>,
}

impl Clock for FakeClock {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.now.load(Ordering::SeqCst))
    }
    fn sleep(&self, d: Duration) {
        let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
        self.now.fetch_add(secs, Ordering::SeqCst);
        self.slept.lock().unwrap().push(d);
    }
}

struct Case {
    kind: Kind,
    server: ForgeServer,
    target: ForgeTarget,
    creds: ForgeCredentials,
    clock: FakeClock,
    net: Network,
}

fn repo_of(kind: Kind) -> (&'static str, &'static str) {
    match kind {
        // Nested groups: the project id must be `grp%2Fsub%2Fapp`.
        Kind::GitLab => ("grp/sub", "app"),
        _ => ("octo", "app"),
    }
}

fn provider(kind: Kind) -> Provider {
    match kind {
        Kind::GitHub => Provider::Github,
        Kind::GitLab => Provider::Gitlab,
        Kind::Bitbucket => Provider::Bitbucket,
    }
}

/// The job's `repo`, its API at `api_url`.
fn repo_spec(kind: Kind, api_url: String) -> RepoSpec {
    let (owner, name) = repo_of(kind);
    RepoSpec {
        provider: provider(kind),
        base_url: "https://example.invalid".into(),
        api_url: Some(api_url),
        owner: owner.into(),
        name: name.into(),
        clone_url: String::new(),
        path: String::new(),
        target_branch: "main".into(),
    }
}

fn setup(kind: Kind) -> Case {
    let (owner, name) = repo_of(kind);
    let auth = match kind {
        Kind::GitHub => Auth::Bearer(TOKEN.into()),
        Kind::GitLab => Auth::PrivateToken(TOKEN.into()),
        Kind::Bitbucket => Auth::Basic(BB_USER.into(), TOKEN.into()),
    };
    let server = ForgeServer::start(kind, &format!("{owner}/{name}"), auth);
    let repo = repo_spec(kind, server.api_url());
    let target = ForgeTarget::from_repo(&repo, BRANCH, RemotePolicy::default()).unwrap();
    let creds = credentials(kind, TOKEN);
    let clock = FakeClock {
        now: server.clock(),
        slept: std::sync::Mutex::new(Vec::new()),
    };
    let net = Network::new(&ProxySettings::default(), None).unwrap();
    Case {
        kind,
        server,
        target,
        creds,
        clock,
        net,
    }
}

fn credentials(kind: Kind, secret: &str) -> ForgeCredentials {
    let vcs = ados_work_runner::config::VcsCredentials {
        github_token: Some(secret.into()),
        gitlab_token: Some(secret.into()),
        bitbucket_username: Some(BB_USER.into()),
        bitbucket_app_password: Some(secret.into()),
    };
    ForgeCredentials::choose(provider(kind), None, &vcs).unwrap()
}

fn pr(title: &str, draft: bool) -> PullRequest {
    PullRequest {
        title: title.into(),
        body: format!("Body of {title}\n\n<!-- opened by ados-work-runner -->\n"),
        draft,
    }
}

impl Case {
    fn run(&self, p: &PullRequest) -> Result<OpenedPr, ForgeError> {
        open_or_update(&self.net, &self.target, p, &self.creds, &self.clock)
    }

    fn seed(&self, branch: &str, base: &str, state: PrState, source_repo: &str) -> u64 {
        self.server.add_pr(Pr {
            number: 0,
            branch: branch.into(),
            base: base.into(),
            state,
            source_repo: source_repo.into(),
            title: "seeded".into(),
            body: "seeded body".into(),
            draft: false,
        })
    }

    fn full(&self) -> String {
        self.target.full_name()
    }

    fn methods(&self) -> Vec<String> {
        self.server
            .requests()
            .iter()
            .map(|r| format!("{} {}", r.method, r.status))
            .collect()
    }

    fn update_method(&self) -> &'static str {
        if self.kind == Kind::GitHub {
            "PATCH"
        } else {
            "PUT"
        }
    }
}

/// The title as the provider stores it (GitLab marks a draft in it).
fn stored_title(kind: Kind, title: &str, draft: bool) -> String {
    if kind == Kind::GitLab && draft {
        format!("Draft: {title}")
    } else {
        title.to_string()
    }
}

#[test]
fn creates_the_pr_with_the_documented_request() {
    for kind in KINDS {
        let c = setup(kind);
        let opened = c.run(&pr("Fix login (#42)", false)).unwrap();
        assert!(opened.created, "{kind:?}");
        let prs = c.server.prs();
        assert_eq!(prs.len(), 1, "{kind:?}");
        let made = &prs[0];
        assert_eq!(opened.number, made.number, "{kind:?}");
        assert_eq!(
            (made.branch.as_str(), made.base.as_str()),
            (BRANCH, "main"),
            "{kind:?}"
        );
        assert_eq!(made.title, "Fix login (#42)", "{kind:?}");
        assert!(made.body.starts_with("Body of Fix login"), "{kind:?}");
        assert!(!made.draft, "{kind:?}");
        // The web URL is the one the server answered.
        let expected_url = match kind {
            Kind::GitHub => format!("{}/{}/pull/{}", c.server.api_url(), c.full(), made.number),
            Kind::GitLab => format!(
                "{}/{}/-/merge_requests/{}",
                c.server.api_url().trim_end_matches("/api/v4"),
                c.full(),
                made.number
            ),
            Kind::Bitbucket => format!(
                "https://bitbucket.org/{}/pull-requests/{}",
                c.full(),
                made.number
            ),
        };
        assert_eq!(opened.url, expected_url, "{kind:?}");

        let reqs = c.server.requests();
        assert_eq!(c.methods(), ["GET 200", "POST 201"], "{kind:?}");
        let (lookup, create) = (&reqs[0], &reqs[1]);
        let body = create.json();
        match kind {
            Kind::GitHub => {
                assert_eq!(lookup.path, "/repos/octo/app/pulls");
                assert!(
                    lookup.query.contains("head=octo%3Aados%2Fissue-42"),
                    "{}",
                    lookup.query
                );
                assert!(lookup.query.contains("state=open"), "{}", lookup.query);
                assert_eq!(body["head"], BRANCH);
                assert_eq!(body["base"], "main");
                assert_eq!(body["draft"], false);
                assert_eq!(create.header("accept"), Some("application/vnd.github+json"));
                assert_eq!(create.header("x-github-api-version"), Some("2022-11-28"));
                assert!(create
                    .header("user-agent")
                    .unwrap()
                    .starts_with("ados-work-runner/"));
                assert_eq!(
                    create.header("authorization"),
                    Some(format!("Bearer {TOKEN}").as_str())
                );
            }
            Kind::GitLab => {
                assert_eq!(
                    lookup.path,
                    "/api/v4/projects/grp%2Fsub%2Fapp/merge_requests"
                );
                assert!(lookup.query.contains("state=opened"), "{}", lookup.query);
                assert!(
                    lookup.query.contains("source_branch=ados%2Fissue-42"),
                    "{}",
                    lookup.query
                );
                assert_eq!(body["source_branch"], BRANCH);
                assert_eq!(body["target_branch"], "main");
                assert_eq!(create.header("private-token"), Some(TOKEN));
                assert_eq!(create.header("authorization"), None);
            }
            Kind::Bitbucket => {
                assert_eq!(lookup.path, "/2.0/repositories/octo/app/pullrequests");
                assert!(lookup.query.contains("state=OPEN"), "{}", lookup.query);
                assert!(
                    lookup
                        .query
                        .contains("q=source.branch.name%3D%22ados%2Fissue-42%22"),
                    "{}",
                    lookup.query
                );
                assert_eq!(body["source"]["branch"]["name"], BRANCH);
                assert_eq!(body["destination"]["branch"]["name"], "main");
                assert!(create
                    .header("authorization")
                    .unwrap()
                    .starts_with("Basic "));
            }
        }
        if kind != Kind::GitHub {
            assert_eq!(
                create.header("accept"),
                Some("application/json"),
                "{kind:?}"
            );
            assert_eq!(create.header("x-github-api-version"), None, "{kind:?}");
        }
        assert_eq!(
            create.header("content-type"),
            Some("application/json"),
            "{kind:?}"
        );
    }
}

#[test]
fn a_rerun_updates_the_open_pr_found_on_a_later_page() {
    for kind in KINDS {
        let c = setup(kind);
        // 36 open PRs the lookup returns but that are not the runner's:
        // the same head to other bases (GitHub), forks' branches of the
        // same name (GitLab, Bitbucket). Ours comes last.
        for i in 0..36 {
            match kind {
                Kind::GitHub => c.seed(BRANCH, &format!("release-{i}"), PrState::Open, &c.full()),
                _ => c.seed(BRANCH, "main", PrState::Open, &format!("fork{i}/app")),
            };
        }
        let ours = c.seed(BRANCH, "main", PrState::Open, &c.full());

        let opened = c.run(&pr("Second run", false)).unwrap();
        assert_eq!((opened.number, opened.created), (ours, false), "{kind:?}");
        let prs = c.server.prs();
        assert_eq!(prs.len(), 37, "{kind:?}: no second PR");
        for p in &prs {
            let expect = if p.number == ours {
                "Second run"
            } else {
                "seeded"
            };
            assert_eq!(p.title, expect, "{kind:?}: PR {}", p.number);
        }
        let reqs = c.server.requests();
        let gets = reqs.iter().filter(|r| r.method == "GET").count();
        assert_eq!(gets, 4, "{kind:?}: 37 PRs at 10 a page: {:?}", c.methods());
        let last = reqs.last().unwrap();
        assert_eq!(last.method, c.update_method(), "{kind:?}");
        assert!(
            last.path.ends_with(&format!("/{ours}")),
            "{kind:?}: {}",
            last.path
        );
        assert!(!reqs.iter().any(|r| r.method == "POST"), "{kind:?}");
        let body = last.json();
        match kind {
            Kind::GitHub => assert_eq!(body["base"], "main"),
            Kind::GitLab => assert_eq!(body["target_branch"], "main"),
            Kind::Bitbucket => assert_eq!(body["destination"]["branch"]["name"], "main"),
        }

        // And once more: still the same PR.
        let again = c.run(&pr("Third run", false)).unwrap();
        assert_eq!((again.number, again.created), (ours, false), "{kind:?}");
        assert_eq!(again.url, opened.url, "{kind:?}");
        assert_eq!(c.server.prs().len(), 37, "{kind:?}");
    }
}

#[test]
fn closed_merged_declined_and_fork_prs_of_the_branch_are_left_alone() {
    for kind in KINDS {
        let c = setup(kind);
        let closed = match kind {
            Kind::Bitbucket => PrState::Declined,
            _ => PrState::Closed,
        };
        let mut theirs = vec![
            c.seed(BRANCH, "main", closed, &c.full()),
            c.seed(BRANCH, "main", PrState::Merged, &c.full()),
            c.seed(BRANCH, "main", PrState::Open, "someone/app"),
        ];
        if kind == Kind::Bitbucket {
            theirs.push(c.seed(BRANCH, "main", PrState::Merged, "someone/app"));
        }
        let opened = c.run(&pr("New", false)).unwrap();
        assert!(opened.created, "{kind:?}");
        assert!(!theirs.contains(&opened.number), "{kind:?}");
        for p in c.server.prs() {
            if theirs.contains(&p.number) {
                assert_eq!(
                    (p.title.as_str(), p.body.as_str()),
                    ("seeded", "seeded body"),
                    "{kind:?}"
                );
            }
        }
        assert!(
            !c.server
                .requests()
                .iter()
                .any(|r| r.method == "PATCH" || r.method == "PUT"),
            "{kind:?}: {:?}",
            c.methods()
        );
    }
}

#[test]
fn a_draft_is_opened_as_each_provider_marks_one() {
    for kind in KINDS {
        let c = setup(kind);
        let opened = c.run(&pr("Red tests", true)).unwrap();
        let made = c
            .server
            .prs()
            .into_iter()
            .find(|p| p.number == opened.number)
            .unwrap();
        assert!(made.draft, "{kind:?}");
        assert_eq!(
            made.title,
            stored_title(kind, "Red tests", true),
            "{kind:?}"
        );
        let create = c
            .server
            .requests()
            .into_iter()
            .find(|r| r.method == "POST")
            .unwrap();
        match kind {
            Kind::GitHub | Kind::Bitbucket => assert_eq!(create.json()["draft"], true),
            Kind::GitLab => assert_eq!(create.json()["title"], "Draft: Red tests"),
        }
        // A re-run with green tests: GitLab's title (the only draft switch
        // it has) drops the prefix; the others keep the PR's draft state.
        c.run(&pr("Green now", false)).unwrap();
        let after = c
            .server
            .prs()
            .into_iter()
            .find(|p| p.number == opened.number)
            .unwrap();
        assert_eq!(after.title, "Green now", "{kind:?}");
    }
}

#[test]
fn a_create_refused_as_a_duplicate_is_followed_by_the_lookup_and_update() {
    for kind in KINDS {
        let c = setup(kind);
        c.server.race_next_create();
        let opened = c.run(&pr("Mine", false)).unwrap();
        assert!(!opened.created, "{kind:?}");
        let prs = c.server.prs();
        assert_eq!(prs.len(), 1, "{kind:?}: never a second PR");
        assert_eq!(prs[0].number, opened.number, "{kind:?}");
        assert_eq!(prs[0].title, "Mine", "{kind:?}");
        let refused = match kind {
            Kind::GitHub => 422,
            Kind::GitLab => 409,
            Kind::Bitbucket => 400,
        };
        assert_eq!(
            c.methods(),
            [
                "GET 200".to_string(),
                format!("POST {refused}"),
                "GET 200".into(),
                format!("{} 200", c.update_method()),
            ],
            "{kind:?}"
        );
    }
}

#[test]
fn a_rejected_token_is_named_by_its_variable_never_its_value() {
    for kind in KINDS {
        let c = setup(kind);
        let wrong = credentials(kind, "wrong-token-value-987");
        let err = open_or_update(&c.net, &c.target, &pr("x", false), &wrong, &c.clock).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Auth, "{kind:?}: {err}");
        let var = match kind {
            Kind::GitHub => "GITHUB_TOKEN",
            Kind::GitLab => "GITLAB_TOKEN",
            Kind::Bitbucket => "BITBUCKET_APP_PASSWORD",
        };
        let host = c.server.api_url();
        let host = host
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap();
        assert!(
            err.message()
                .starts_with(&format!("{var} was rejected by {host} (401)")),
            "{kind:?}: {err}"
        );
        assert!(
            !err.message().contains("wrong-token-value-987"),
            "{kind:?}: {err}"
        );
        assert_eq!(c.server.requests().len(), 1, "{kind:?}: no retry of a 401");
        // The provider's own reason is quoted.
        let reason = match kind {
            Kind::GitHub => "Bad credentials",
            Kind::GitLab => "401 Unauthorized",
            Kind::Bitbucket => "Invalid credentials",
        };
        assert!(err.message().contains(reason), "{kind:?}: {err}");

        // A job token is named as the spec field.
        let vcs = ados_work_runner::config::VcsCredentials::default();
        let job =
            ForgeCredentials::choose(provider(kind), Some("job-token-xyz-456"), &vcs).unwrap();
        let err = open_or_update(&c.net, &c.target, &pr("x", false), &job, &c.clock).unwrap_err();
        assert!(
            err.message()
                .starts_with("credentials.vcs_token was rejected"),
            "{kind:?}: {err}"
        );
        assert!(
            !err.message().contains("job-token-xyz-456"),
            "{kind:?}: {err}"
        );
    }
}

#[test]
fn an_unknown_repository_says_not_found_or_not_visible() {
    for kind in KINDS {
        let c = setup(kind);
        let mut target = c.target.clone();
        target.name = "other".into();
        let err = open_or_update(&c.net, &target, &pr("x", false), &c.creds, &c.clock).unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotFound, "{kind:?}: {err}");
        assert!(
            err.message()
                .contains("repository not found, or the token cannot see it"),
            "{kind:?}: {err}"
        );
    }
}

#[test]
fn a_rate_limit_is_waited_out_and_nothing_is_sent_before_the_reset() {
    for kind in KINDS {
        let c = setup(kind);
        let reset = CLOCK_START + 120;
        c.server.rate_limit_until(reset);
        let opened = c.run(&pr("Later", false)).unwrap();
        assert!(opened.created, "{kind:?}");
        let reqs = c.server.requests();
        let refused = if kind == Kind::GitHub { 403 } else { 429 };
        assert_eq!(reqs[0].status, refused, "{kind:?}");
        let early: Vec<&Recorded> = reqs.iter().filter(|r| r.at < reset).collect();
        assert_eq!(
            early.len(),
            1,
            "{kind:?}: only the refused request before the reset"
        );
        assert_eq!(reqs.len(), 3, "{kind:?}: {:?}", c.methods());
        assert_eq!(
            *c.clock.slept.lock().unwrap(),
            [Duration::from_secs(120)],
            "{kind:?}"
        );
    }
}

#[test]
fn a_rate_limit_past_five_minutes_fails_saying_when_it_resets() {
    for kind in KINDS {
        let c = setup(kind);
        c.server.rate_limit_until(CLOCK_START + 3600);
        let err = c.run(&pr("x", false)).unwrap_err();
        assert_eq!(err.kind, ErrorKind::RateLimited, "{kind:?}: {err}");
        assert!(
            err.message().contains("resets at 2026-11-26T01:00:00"),
            "{kind:?}: {err}"
        );
        assert_eq!(c.server.requests().len(), 1, "{kind:?}");
        assert!(
            c.clock.slept.lock().unwrap().is_empty(),
            "{kind:?}: no pointless wait"
        );
    }
}

#[test]
fn server_errors_are_retried_with_backoff_then_reported() {
    for kind in KINDS {
        let c = setup(kind);
        c.server.fail_next(&[502, 503]);
        assert!(c.run(&pr("x", false)).unwrap().created, "{kind:?}");
        assert_eq!(c.methods()[..2], ["GET 502", "GET 503"], "{kind:?}");
        assert_eq!(
            *c.clock.slept.lock().unwrap(),
            [Duration::from_secs(1), Duration::from_secs(2)],
            "{kind:?}"
        );

        let c = setup(kind);
        c.server.fail_next(&[500, 500, 500, 500, 500]);
        let err = c.run(&pr("x", false)).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Unavailable, "{kind:?}: {err}");
        assert!(err.message().contains("after 3 retries"), "{kind:?}: {err}");
        assert_eq!(c.server.requests().len(), 4, "{kind:?}");
    }
}

#[test]
fn the_token_is_only_ever_in_the_credentials_header() {
    for kind in KINDS {
        let c = setup(kind);
        c.server.race_next_create();
        c.run(&pr("One", true)).unwrap();
        c.run(&pr("Two", false)).unwrap();
        let secrets = [
            TOKEN.to_string(),
            ados_work_runner::base64::encode(format!("{BB_USER}:{TOKEN}").as_bytes()),
        ];
        let auth_header = if kind == Kind::GitLab {
            "private-token"
        } else {
            "authorization"
        };
        let reqs = c.server.requests();
        assert!(reqs.len() >= 6, "{kind:?}");
        for r in &reqs {
            for s in &secrets {
                for (what, text) in [("path", &r.path), ("query", &r.query), ("body", &r.body)] {
                    assert!(
                        !text.contains(s.as_str()),
                        "{kind:?}: token in the {what} of {r:?}"
                    );
                }
                for (name, value) in &r.headers {
                    if name != auth_header {
                        assert!(
                            !value.contains(s.as_str()),
                            "{kind:?}: token in header {name}"
                        );
                    }
                }
            }
            assert!(
                r.header(auth_header).is_some(),
                "{kind:?}: every request authenticated"
            );
        }
    }
}

#[test]
fn a_next_page_on_another_host_is_not_followed() {
    // GitLab pages by number (X-Next-Page) on the API URL; the others
    // follow a link the server gives, which must stay on the API's origin.
    for kind in [Kind::GitHub, Kind::Bitbucket] {
        let c = setup(kind);
        for i in 0..15 {
            c.seed(BRANCH, &format!("release-{i}"), PrState::Open, &c.full());
        }
        c.server.set_link_origin("http://127.0.0.2:9");
        let err = c.run(&pr("x", false)).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Protocol, "{kind:?}: {err}");
        assert!(
            err.message().contains("outside its API URL"),
            "{kind:?}: {err}"
        );
        assert_eq!(c.server.requests().len(), 1, "{kind:?}");
    }
}

#[test]
fn the_api_is_reached_through_the_runners_proxy() {
    for kind in KINDS {
        let mut c = setup(kind);
        let proxy = ConnectProxy::start_to(c.server.addr());
        let settings = ProxySettings {
            http_proxy: Some(Proxy::parse("HTTP_PROXY", &proxy.url()).unwrap()),
            ..ProxySettings::default()
        };
        c.net = Network::new(&settings, None).unwrap();
        // A host only the proxy can reach; plain http needs ADOS_ALLOW_HTTP.
        let port = c.server.addr().port();
        let mut repo_api = c.server.api_url();
        repo_api = repo_api.replace(
            &format!("127.0.0.1:{port}"),
            &format!("forge.corp.invalid:{port}"),
        );
        let repo = repo_spec(kind, repo_api);
        let refused = ForgeTarget::from_repo(&repo, BRANCH, RemotePolicy::default()).unwrap_err();
        assert!(
            refused.message().contains("ADOS_ALLOW_HTTP"),
            "{kind:?}: {refused}"
        );
        let allow = RemotePolicy {
            allow_http: true,
            allow_file: false,
        };
        c.target = ForgeTarget::from_repo(&repo, BRANCH, allow).unwrap();
        assert!(c.run(&pr("Via proxy", false)).unwrap().created, "{kind:?}");
        let tunnels: Vec<String> = proxy.requests().into_iter().map(|r| r.target).collect();
        assert_eq!(
            tunnels.len(),
            2,
            "{kind:?}: one tunnel a request: {tunnels:?}"
        );
        assert!(
            tunnels
                .iter()
                .all(|t| *t == format!("forge.corp.invalid:{port}")),
            "{kind:?}: {tunnels:?}"
        );
    }
}

#[test]
fn a_redirect_is_not_followed_and_says_the_repository_moved() {
    for kind in KINDS {
        let c = setup(kind);
        let elsewhere = setup(kind);
        c.server
            .redirect_next(&format!("{}/moved", elsewhere.server.api_url()));
        let err = c.run(&pr("x", false)).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Refused, "{kind:?}: {err}");
        assert!(err.message().contains("301 (moved)"), "{kind:?}: {err}");
        assert!(err.message().contains("repo.api_url"), "{kind:?}: {err}");
        assert!(
            elsewhere.server.requests().is_empty(),
            "{kind:?}: followed the redirect"
        );
    }
}

#[test]
fn retry_after_zero_forever_still_ends_at_the_bound() {
    let c = setup(Kind::GitHub);
    c.server.fail_next(&[429; 400]);
    let err = c.run(&pr("x", false)).unwrap_err();
    assert_eq!(err.kind, ErrorKind::RateLimited, "{err}");
    let waited: Duration = c.clock.slept.lock().unwrap().iter().sum();
    assert_eq!(waited, Duration::from_secs(300));
}

#[test]
fn a_repository_without_draft_prs_still_gets_its_pr() {
    let c = setup(Kind::GitHub);
    c.server.no_drafts();
    let opened = c.run(&pr("Red tests", true)).unwrap();
    assert!(opened.created);
    let prs = c.server.prs();
    assert_eq!(prs.len(), 1);
    assert!(!prs[0].draft);
    assert_eq!(c.methods(), ["GET 200", "POST 422", "GET 200", "POST 201"]);
}
