//! Pull and merge requests: after the branch is pushed, open a PR (GitHub),
//! MR (GitLab) or PR (Bitbucket Cloud) from it to the target branch, or
//! update the one that is already open.
//!
//! The flow is the same on every provider, so it lives here once
//! ([`open_or_update`]): look up an open PR of the job's branch (paging
//! through the answers), update it when there is one, else create it; a
//! create the provider refuses as a duplicate (another run won the race)
//! is followed by the lookup and the update. What differs — paths, JSON
//! fields, how a page links the next one, what "open" and "not a fork"
//! look like — is a [`Forge`] implementation per provider ([`github`],
//! [`gitlab`], [`bitbucket`]). [`http`] is the one place that sends a
//! request: auth headers, status classification, rate-limit waits, retries
//! and bounded reads. [`compose`] writes the title and body (pure).
//!
//! Every request goes through [`crate::net::Network`]'s agent, so the
//! forge is reached exactly as the control plane is (proxy, `NO_PROXY`,
//! `ADOS_CA_CERT`). The token travels only in a request header: never in
//! a URL, a body, an error message or a log line.

pub mod bitbucket;
pub mod compose;
pub mod github;
pub mod gitlab;
pub mod http;

pub use compose::{body, title, BodyFacts, MARKER};
pub use http::{Clock, SystemClock};

use crate::config::VcsCredentials;
use crate::job::spec::{check_clone_url, JobSpec, Provider, RemotePolicy, RepoSpec};
use crate::net::Network;
use http::{Api, Method};
use serde_json::Value;
use std::fmt;

/// At most this many pages are read looking for an open PR (100 PRs a
/// page on GitHub and GitLab, 50 on Bitbucket): a lookup must end even
/// when a server keeps linking a next page.
pub const MAX_PAGES: usize = 50;

/// Where the PR goes: the repository, its API, and the two branches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForgeTarget {
    /// The hosting provider.
    pub provider: Provider,
    /// The API root, resolved (see [`ForgeTarget::from_repo`]).
    pub api_url: String,
    /// Owner, workspace or (GitLab) group path.
    pub owner: String,
    /// Repository name (Bitbucket: the repository slug).
    pub name: String,
    /// The branch the work was pushed to (the PR's head / source).
    pub branch: String,
    /// The branch the PR targets (base / target / destination).
    pub target_branch: String,
}

impl ForgeTarget {
    /// The target of a job: `repo.api_url` when set; else GitHub's public
    /// API for github.com and `<base_url>/api/v3` for GitHub Enterprise,
    /// `<base_url>/api/v4` for GitLab, Bitbucket Cloud's public API. The
    /// API URL follows the rule clone URLs follow: plain `http` only for a
    /// loopback host or with `ADOS_ALLOW_HTTP`.
    ///
    /// # Errors
    /// The API URL is not a usable `http(s)` URL, or is plain `http`
    /// where that is not allowed; the message names `repo.api_url` (or
    /// `repo.base_url` when the API URL was derived from it).
    pub fn from_repo(
        repo: &RepoSpec,
        branch: &str,
        policy: RemotePolicy,
    ) -> Result<ForgeTarget, ForgeError> {
        let base = repo.base_url.trim_end_matches('/');
        let (field, api_url) = match repo.api_url.as_deref().filter(|u| !u.is_empty()) {
            Some(api) => ("repo.api_url", api.trim_end_matches('/').to_string()),
            None => ("repo.base_url", default_api_url(repo.provider, base)),
        };
        let lower = api_url.to_ascii_lowercase();
        if !(lower.starts_with("https://") || lower.starts_with("http://")) {
            return Err(ForgeError::new(
                ErrorKind::Config,
                format!("`{field}` must be an http(s) URL for the provider's API"),
            ));
        }
        check_clone_url(field, &api_url, policy)
            .map_err(|e| ForgeError::new(ErrorKind::Config, e.to_string()))?;
        if crate::net::Url::parse(&api_url).is_ok_and(|u| u.userinfo().is_some()) {
            return Err(ForgeError::new(
                ErrorKind::Config,
                format!(
                    "`{field}` must not hold credentials: send them as credentials.vcs_token \
                     (or set the runner's token)"
                ),
            ));
        }
        Ok(ForgeTarget {
            provider: repo.provider,
            api_url,
            owner: repo.owner.clone(),
            name: repo.name.clone(),
            branch: branch.to_string(),
            target_branch: repo.target_branch.clone(),
        })
    }

    /// `owner/name`, for messages.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }
}

/// The API root when the spec names none.
fn default_api_url(provider: Provider, base_url: &str) -> String {
    let host_is = |h: &str| {
        crate::net::Url::parse(base_url)
            .map(|u| u.host().eq_ignore_ascii_case(h))
            .unwrap_or(false)
    };
    match provider {
        Provider::Github if host_is("github.com") => "https://api.github.com".into(),
        Provider::Github => format!("{base_url}/api/v3"),
        Provider::Gitlab => format!("{base_url}/api/v4"),
        Provider::Bitbucket => "https://api.bitbucket.org/2.0".into(),
    }
}

/// What the PR says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullRequest {
    /// The title (see [`compose::title`]).
    pub title: String,
    /// The body, markdown (see [`compose::body`]).
    pub body: String,
    /// Open it as a draft (tests red, or `pr.draft`).
    pub draft: bool,
}

impl PullRequest {
    /// The PR of a job: title and body composed from the spec and what the
    /// run did ([`compose`]); a draft when `pr.draft` asks or the tests
    /// stayed red (the result is then `needs-human`).
    pub fn for_job(spec: &JobSpec, facts: &BodyFacts<'_>, tests_red: bool) -> PullRequest {
        PullRequest {
            title: title(&spec.pr, spec.issue.as_ref(), &spec.branch),
            body: body(&spec.pr, spec.issue.as_ref(), spec.repo.provider, facts),
            draft: spec.pr.draft || tests_red,
        }
    }
}

/// The credentials for the provider's API, and which setting supplied
/// them (named in errors; the value never is).
#[derive(Clone, PartialEq, Eq)]
pub struct ForgeCredentials {
    /// The header that carries them (`Authorization`, `PRIVATE-TOKEN`).
    header: &'static str,
    /// Its value: a secret.
    value: String,
    /// The secret parts, for redacting provider messages.
    secrets: Vec<String>,
    /// `GITHUB_TOKEN`, `credentials.vcs_token`, …
    source: &'static str,
}

impl ForgeCredentials {
    /// The job's `credentials.vcs_token` when set (it wins), else the
    /// runner's own for the provider: `GITHUB_TOKEN`, `GITLAB_TOKEN`, or
    /// `BITBUCKET_USERNAME` + `BITBUCKET_APP_PASSWORD` (HTTP Basic). A
    /// job token is a Bearer token on GitHub and Bitbucket (a repository
    /// or workspace access token) and `PRIVATE-TOKEN` on GitLab.
    ///
    /// # Errors
    /// No credentials for the provider; the message says what to set.
    pub fn choose(
        provider: Provider,
        vcs_token: Option<&str>,
        vcs: &VcsCredentials,
    ) -> Result<ForgeCredentials, ForgeError> {
        // The precedence is git's too: one rule, in `vcs::auth_for`.
        let Some(auth) = crate::vcs::auth_for(provider, vcs_token, vcs) else {
            let what = match provider {
                Provider::Github => "GITHUB_TOKEN",
                Provider::Gitlab => "GITLAB_TOKEN",
                Provider::Bitbucket => "BITBUCKET_USERNAME and BITBUCKET_APP_PASSWORD",
            };
            return Err(ForgeError::new(
                ErrorKind::Auth,
                format!(
                    "no credentials to open a pull request on {}: set {what} on the runner, \
                     or send credentials.vcs_token with the job",
                    provider_name(provider)
                ),
            ));
        };
        let token = auth.token().to_string();
        if vcs_token.is_some_and(|t| !t.is_empty()) {
            return Ok(ForgeCredentials::token(
                provider,
                token,
                "credentials.vcs_token",
            ));
        }
        Ok(match provider {
            Provider::Github => ForgeCredentials::token(provider, token, "GITHUB_TOKEN"),
            Provider::Gitlab => ForgeCredentials::token(provider, token, "GITLAB_TOKEN"),
            Provider::Bitbucket => ForgeCredentials::basic(auth.username().to_string(), token),
        })
    }

    /// A token: Bearer, or `PRIVATE-TOKEN` on GitLab.
    pub fn token(provider: Provider, token: String, source: &'static str) -> ForgeCredentials {
        let (header, value) = match provider {
            Provider::Gitlab => ("PRIVATE-TOKEN", token.clone()),
            Provider::Github | Provider::Bitbucket => ("Authorization", format!("Bearer {token}")),
        };
        ForgeCredentials {
            header,
            value,
            secrets: vec![token],
            source,
        }
    }

    /// HTTP Basic with a Bitbucket user and app password.
    pub fn basic(user: String, password: String) -> ForgeCredentials {
        let encoded = crate::base64::encode(format!("{user}:{password}").as_bytes());
        ForgeCredentials {
            header: "Authorization",
            value: format!("Basic {encoded}"),
            secrets: vec![password, encoded],
            source: "BITBUCKET_APP_PASSWORD",
        }
    }

    /// The setting that supplied the credentials (for messages).
    pub fn source(&self) -> &'static str {
        self.source
    }
}

impl fmt::Debug for ForgeCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ForgeCredentials")
            .field("header", &self.header)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// The PR that exists after [`open_or_update`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenedPr {
    /// What users see: GitHub `number`, GitLab `iid`, Bitbucket `id`.
    pub number: u64,
    /// The web URL the provider answered (never built by hand).
    pub url: String,
    /// A new PR was created (else an open one was updated).
    pub created: bool,
}

/// What kind of failure, for the caller's choice of result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The spec or the runner's settings cannot work (URL, missing token).
    Config,
    /// The token was rejected (401, or 403 that is not a rate limit).
    Auth,
    /// 404: no such repository, or the token cannot see it.
    NotFound,
    /// Rate limited for longer than the runner waits.
    RateLimited,
    /// The provider kept failing (5xx) or could not be reached.
    Unavailable,
    /// The provider refused the request (a 4xx with its own message).
    Refused,
    /// The answer was not what the provider documents.
    Protocol,
}

/// Why no PR exists. The message is for users: it names the variable or
/// field to fix, and never holds a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForgeError {
    /// What kind of failure.
    pub kind: ErrorKind,
    message: String,
}

impl ForgeError {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> ForgeError {
        ForgeError {
            kind,
            message: message.into(),
        }
    }

    /// The user-facing message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ForgeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ForgeError {}

/// The provider's name in messages.
pub fn provider_name(provider: Provider) -> &'static str {
    match provider {
        Provider::Github => "GitHub",
        Provider::Gitlab => "GitLab",
        Provider::Bitbucket => "Bitbucket",
    }
}

/// One provider's REST dialect. The flow ([`open_or_update`]) is shared.
pub(crate) trait Forge {
    /// The first page of the lookup of open PRs from the job's branch.
    fn list_url(&self, page: Option<u64>) -> String;
    /// The PRs on a page of that lookup.
    fn items<'a>(&self, page: &'a Value) -> Option<&'a Vec<Value>>;
    /// The next page's URL, when there is one.
    fn next_url(&self, answer: &http::Answer) -> Option<String>;
    /// An open PR from the job's branch of this very repository to the
    /// target branch (not a fork's, not closed, merged or declined).
    fn is_ours(&self, pr: &Value) -> bool;
    /// The create request: URL and JSON body.
    fn create(&self, pr: &PullRequest) -> (String, Value);
    /// The update request of PR `number`: method, URL and JSON body.
    fn update(&self, number: u64, pr: &PullRequest) -> (Method, String, Value);
    /// The number users see and the web URL, from a PR object.
    fn opened(&self, pr: &Value) -> Option<(u64, String)>;
    /// A refused create says the repository cannot have draft PRs.
    fn refuses_drafts(&self, _refused: &http::Answer) -> bool {
        false
    }
}

/// Open a PR from `target.branch` to `target.target_branch`, or update the
/// open one: the PR step after a successful push. `clock` waits out rate
/// limits and backs off retries ([`SystemClock`] in the daemon).
///
/// # Errors
/// No PR exists afterwards; see [`ForgeError`] for the kinds.
pub fn open_or_update(
    net: &Network,
    target: &ForgeTarget,
    pr: &PullRequest,
    creds: &ForgeCredentials,
    clock: &dyn Clock,
) -> Result<OpenedPr, ForgeError> {
    let mut api = Api::new(net, target, creds, clock)?;
    match target.provider {
        Provider::Github => run(&mut api, &github::GitHub::new(target), pr),
        Provider::Gitlab => run(&mut api, &gitlab::GitLab::new(target), pr),
        Provider::Bitbucket => run(&mut api, &bitbucket::Bitbucket::new(target), pr),
    }
}

/// Lookup, then update or create; a duplicate-refused create is followed
/// by a second lookup and the update.
fn run(api: &mut Api<'_>, forge: &dyn Forge, pr: &PullRequest) -> Result<OpenedPr, ForgeError> {
    if let Some(number) = find_open(api, forge)? {
        return update(api, forge, number, pr);
    }
    let refused = match create(api, forge, pr)? {
        Created::Done(opened) => return Ok(opened),
        Created::Refused(answer) => answer,
    };
    // Most likely a PR of this branch was opened meanwhile (GitHub 422,
    // GitLab 409, Bitbucket 400).
    if let Some(number) = find_open(api, forge)? {
        return update(api, forge, number, pr);
    }
    // A repository whose plan has no draft PRs still gets a PR; its body
    // says when the tests failed.
    if pr.draft && forge.refuses_drafts(&refused) {
        let ready = PullRequest {
            draft: false,
            ..pr.clone()
        };
        if let Created::Done(opened) = create(api, forge, &ready)? {
            return Ok(opened);
        }
    }
    Err(api.refused("creating the pull request", &refused))
}

/// What a create came to.
enum Created {
    Done(OpenedPr),
    /// 400, 409 or 422: a duplicate, or the provider's own objection.
    Refused(http::Answer),
}

fn create(api: &mut Api<'_>, forge: &dyn Forge, pr: &PullRequest) -> Result<Created, ForgeError> {
    let (url, body) = forge.create(pr);
    let answer = api.send(Method::Post, &url, Some(&body))?;
    match answer.status {
        200 | 201 => {
            let (number, url) = opened(api, forge, &answer.json)?;
            Ok(Created::Done(OpenedPr {
                number,
                url,
                created: true,
            }))
        }
        400 | 409 | 422 => Ok(Created::Refused(answer)),
        _ => Err(api.refused("creating the pull request", &answer)),
    }
}

fn update(
    api: &mut Api<'_>,
    forge: &dyn Forge,
    number: u64,
    pr: &PullRequest,
) -> Result<OpenedPr, ForgeError> {
    let (method, url, body) = forge.update(number, pr);
    let answer = api.send(method, &url, Some(&body))?;
    if answer.status != 200 {
        return Err(api.refused("updating the pull request", &answer));
    }
    let (number, url) = opened(api, forge, &answer.json)?;
    Ok(OpenedPr {
        number,
        url,
        created: false,
    })
}

fn opened(api: &Api<'_>, forge: &dyn Forge, pr: &Value) -> Result<(u64, String), ForgeError> {
    forge
        .opened(pr)
        .ok_or_else(|| api.protocol("its answer has no pull request number or web URL"))
}

/// The number of the open PR of the job's branch, paging through the
/// lookup (at most [`MAX_PAGES`] pages).
fn find_open(api: &mut Api<'_>, forge: &dyn Forge) -> Result<Option<u64>, ForgeError> {
    let mut url = forge.list_url(None);
    for _ in 0..MAX_PAGES {
        let answer = api.send(Method::Get, &url, None)?;
        if answer.status != 200 {
            return Err(api.refused("listing pull requests", &answer));
        }
        let items = forge
            .items(&answer.json)
            .ok_or_else(|| api.protocol("its list of pull requests is not a list"))?;
        if let Some(found) = items.iter().find(|pr| forge.is_ours(pr)) {
            return opened(api, forge, found).map(|(number, _)| Some(number));
        }
        match forge.next_url(&answer) {
            Some(next) => url = next,
            None => return Ok(None),
        }
    }
    Ok(None)
}

/// A string field of a JSON object, compared exactly.
pub(crate) fn field_is(v: &Value, path: &[&str], expected: &str) -> bool {
    str_at(v, path) == Some(expected)
}

/// The string at a path of object keys.
pub(crate) fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(v, |v, key| v.get(key))
        .and_then(Value::as_str)
}

/// Percent-encode everything but RFC 3986 unreserved characters: branch
/// names and project paths in a URL path or query.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(provider: Provider, base: &str, api: Option<&str>) -> RepoSpec {
        RepoSpec {
            provider,
            base_url: base.into(),
            api_url: api.map(str::to_string),
            owner: "o".into(),
            name: "r".into(),
            clone_url: String::new(),
            path: String::new(),
            target_branch: "main".into(),
        }
    }

    fn api_of(provider: Provider, base: &str, api: Option<&str>) -> Result<String, ForgeError> {
        ForgeTarget::from_repo(
            &repo(provider, base, api),
            "ados/x",
            RemotePolicy::default(),
        )
        .map(|t| t.api_url)
    }

    #[test]
    fn api_urls_follow_the_provider_rules() {
        let gh = Provider::Github;
        assert_eq!(
            api_of(gh, "https://github.com", None).unwrap(),
            "https://api.github.com"
        );
        assert_eq!(
            api_of(gh, "https://GitHub.com", None).unwrap(),
            "https://api.github.com"
        );
        assert_eq!(
            api_of(gh, "https://ghe.corp", None).unwrap(),
            "https://ghe.corp/api/v3"
        );
        assert_eq!(
            api_of(gh, "https://github.com", Some("https://api.x/")).unwrap(),
            "https://api.x"
        );
        assert_eq!(
            api_of(Provider::Gitlab, "https://gitlab.com", None).unwrap(),
            "https://gitlab.com/api/v4"
        );
        assert_eq!(
            api_of(Provider::Gitlab, "https://git.corp/", None).unwrap(),
            "https://git.corp/api/v4"
        );
        assert_eq!(
            api_of(Provider::Bitbucket, "https://bitbucket.org", None).unwrap(),
            "https://api.bitbucket.org/2.0"
        );
    }

    #[test]
    fn plain_http_api_only_on_loopback_or_when_allowed() {
        let e = api_of(
            Provider::Github,
            "https://github.com",
            Some("http://api.corp"),
        )
        .unwrap_err();
        assert!(e.message().contains("repo.api_url"), "{e}");
        assert!(e.message().contains("ADOS_ALLOW_HTTP"), "{e}");
        assert!(api_of(
            Provider::Github,
            "https://github.com",
            Some("http://127.0.0.1:9")
        )
        .is_ok());
        let allowed = RemotePolicy {
            allow_http: true,
            allow_file: false,
        };
        let r = repo(
            Provider::Github,
            "https://github.com",
            Some("http://api.corp"),
        );
        assert!(ForgeTarget::from_repo(&r, "b", allowed).is_ok());
        let e = api_of(Provider::Gitlab, "http://git.corp", None).unwrap_err();
        assert!(e.message().contains("repo.base_url"), "{e}");
        let e = api_of(
            Provider::Github,
            "https://github.com",
            Some("https://u:pw@api.x"),
        )
        .unwrap_err();
        assert!(
            e.message().contains("must not hold credentials") && !e.message().contains("pw"),
            "{e}"
        );
        let e = api_of(Provider::Github, "https://github.com", Some("ftp://x")).unwrap_err();
        assert!(e.message().contains("repo.api_url"), "{e}");
    }

    #[test]
    fn the_job_token_wins_and_missing_credentials_say_what_to_set() {
        let vcs = VcsCredentials {
            github_token: Some("ghp_runner".into()),
            gitlab_token: Some(String::new()),
            bitbucket_username: Some("bob".into()),
            bitbucket_app_password: None,
        };
        let c = ForgeCredentials::choose(Provider::Github, Some("job-token"), &vcs).unwrap();
        assert_eq!(c.source(), "credentials.vcs_token");
        assert_eq!(c.value, "Bearer job-token");
        let c = ForgeCredentials::choose(Provider::Github, Some(""), &vcs).unwrap();
        assert_eq!(c.source(), "GITHUB_TOKEN");
        let e = ForgeCredentials::choose(Provider::Gitlab, None, &vcs).unwrap_err();
        assert!(e.message().contains("GITLAB_TOKEN"), "{e}");
        let e = ForgeCredentials::choose(Provider::Bitbucket, None, &vcs).unwrap_err();
        assert!(e.message().contains("BITBUCKET_APP_PASSWORD"), "{e}");
        let c = ForgeCredentials::choose(Provider::Gitlab, Some("glpat-job"), &vcs).unwrap();
        assert_eq!((c.header, c.value.as_str()), ("PRIVATE-TOKEN", "glpat-job"));
        assert!(!format!("{c:?}").contains("glpat-job"));
    }

    #[test]
    fn a_jobs_pr_is_a_draft_when_asked_or_when_tests_stay_red() {
        let v = serde_json::json!({"job_id": "j-1", "repo": {"owner": "o", "name": "r"},
            "issue": {"number": 7, "title": "Crash on start"}});
        let mut spec = JobSpec::from_json(&v, RemotePolicy::default()).unwrap();
        let facts = BodyFacts::default();
        let green = PullRequest::for_job(&spec, &facts, false);
        assert_eq!(green.title, "Crash on start (#7)");
        assert!(green.body.contains("Closes #7") && !green.draft);
        assert!(PullRequest::for_job(&spec, &facts, true).draft);
        spec.pr.draft = true;
        assert!(PullRequest::for_job(&spec, &facts, false).draft);
    }

    #[test]
    fn encode_keeps_only_unreserved_characters() {
        assert_eq!(encode("grp/sub/name"), "grp%2Fsub%2Fname");
        assert_eq!(encode("ados/issue-4_2.x~"), "ados%2Fissue-4_2.x~");
        assert_eq!(encode("a b&c=d\"é"), "a%20b%26c%3Dd%22%C3%A9");
    }
}
