//! The one place a forge request is sent: the credentials header, the
//! status classification every provider shares, rate-limit waits, retries
//! and bounded reads.
//!
//! - 401, and 403 that is not a rate limit: the token was rejected; the
//!   error names the setting that supplied it and the host, never its value.
//! - 404: the repository does not exist, or the token cannot see it (the
//!   providers answer 404, not 403, for a private repository).
//! - 429, or 403 with `X-RateLimit-Remaining: 0` or a `Retry-After`
//!   (GitHub's secondary limit): wait `Retry-After` seconds, else until
//!   `X-RateLimit-Reset` / `RateLimit-Reset` (Unix seconds), else a
//!   minute — at most [`MAX_RATE_LIMIT_WAIT`] in all, then an error saying
//!   when the limit resets.
//! - 5xx and transport errors: retried [`RETRIES`] times with a doubling
//!   backoff.
//!
//! - 3xx: an error; a redirect is never followed (the credentials header
//!   would go with it).
//!
//! Waiting goes through a [`Clock`], so tests wait on a fake one. A next
//! page the server links must stay on the API's origin: the credentials
//! header is never sent to another host.

use super::{provider_name, ErrorKind, ForgeCredentials, ForgeError, ForgeTarget};
use crate::job::spec::Provider;
use crate::net::{Network, Url};
use crate::redact::Redactor;
use serde_json::Value;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Largest response body read (a page of 100 GitHub PRs with long bodies
/// stays well under it).
pub const MAX_BODY: u64 = 16 * 1024 * 1024;
/// Rate-limit waits of one PR step, in all.
pub const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(300);
/// Retries of a request answered 5xx or lost in transport.
pub const RETRIES: u32 = 3;
/// The first retry's backoff; doubled for each next one.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The wait when a rate limit says nothing of its reset (GitHub's advice
/// for its secondary limit: at least a minute).
pub const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);
/// GitHub's REST API version the requests are written against.
pub const GITHUB_API_VERSION: &str = "2022-11-28";
/// Longest provider message quoted in an error.
const MAX_MESSAGE: usize = 300;

/// Time for rate-limit resets, and sleeping. Injected so that tests do
/// not sleep and can tell when each request was sent.
pub trait Clock {
    /// Now.
    fn now(&self) -> SystemTime;
    /// Wait `d`.
    fn sleep(&self, d: Duration);
}

/// The real clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// A request method the forges use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Lookups.
    Get,
    /// Creates.
    Post,
    /// GitLab and Bitbucket updates.
    Put,
    /// GitHub updates.
    Patch,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
        }
    }
}

/// A response the caller handles (not an error [`Api::send`] classified).
#[derive(Debug)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The `Link` header's `rel="next"` URL (GitHub).
    pub link_next: Option<String>,
    /// The `X-Next-Page` header (GitLab), when not empty.
    pub next_page: Option<u64>,
    /// The body as JSON (`Null` when empty or not JSON).
    pub json: Value,
}

/// A session with one provider's API for one PR step.
pub struct Api<'a> {
    net: &'a Network,
    clock: &'a dyn Clock,
    creds: &'a ForgeCredentials,
    redactor: Redactor,
    /// The API root: every URL must keep its origin.
    base: Url,
    /// Headers of the provider's dialect (`Accept`, API version).
    dialect: &'static [(&'static str, &'static str)],
    /// The API host, for messages.
    host: String,
    provider: &'static str,
    repo: String,
    /// Rate-limit waits so far.
    waited: Duration,
}

enum Outcome {
    Done(Answer),
    Retry(String),
    RateLimited {
        wait: Option<Duration>,
        reset: Option<u64>,
    },
}

impl<'a> Api<'a> {
    /// A session with the API of `target`.
    ///
    /// # Errors
    /// The API URL does not parse.
    pub fn new(
        net: &'a Network,
        target: &ForgeTarget,
        creds: &'a ForgeCredentials,
        clock: &'a dyn Clock,
    ) -> Result<Api<'a>, ForgeError> {
        let url = Url::parse(&target.api_url).map_err(|e| {
            ForgeError::new(ErrorKind::Config, format!("the provider's API URL {e}"))
        })?;
        Ok(Api {
            net,
            clock,
            creds,
            redactor: Redactor::new(creds.secrets.iter().cloned()),
            host: url.host_port(),
            base: url,
            dialect: match target.provider {
                Provider::Github => &[
                    ("Accept", "application/vnd.github+json"),
                    ("X-GitHub-Api-Version", GITHUB_API_VERSION),
                ],
                Provider::Gitlab | Provider::Bitbucket => &[("Accept", "application/json")],
            },
            provider: provider_name(target.provider),
            repo: target.full_name(),
            waited: Duration::ZERO,
        })
    }

    /// Send a request; answers that are errors whatever the caller (auth,
    /// 404, rate limits past the bound, 5xx after the retries) come back
    /// as a [`ForgeError`], every other answer as an [`Answer`].
    ///
    /// # Errors
    /// See the module docs.
    pub fn send(
        &mut self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Answer, ForgeError> {
        self.check_origin(url)?;
        let mut retries = 0;
        loop {
            match self.once(method, url, body)? {
                Outcome::Done(answer) => return Ok(answer),
                Outcome::Retry(why) => {
                    if retries >= RETRIES {
                        return Err(ForgeError::new(
                            ErrorKind::Unavailable,
                            format!(
                                "{} at {} kept failing ({why}) after {RETRIES} retries; \
                                 run the job again later",
                                self.provider, self.host
                            ),
                        ));
                    }
                    self.clock.sleep(FIRST_BACKOFF * 2u32.pow(retries));
                    retries += 1;
                }
                Outcome::RateLimited { wait, reset } => {
                    let now = unix(self.clock.now());
                    let wait = wait
                        .or_else(|| {
                            reset.map(|r| Duration::from_secs(r.saturating_sub(now).max(1)))
                        })
                        .unwrap_or(DEFAULT_RATE_LIMIT_WAIT)
                        // `Retry-After: 0` again and again must still
                        // reach the bound.
                        .max(Duration::from_secs(1));
                    let total = self.waited.saturating_add(wait);
                    if total > MAX_RATE_LIMIT_WAIT {
                        let when = reset.unwrap_or_else(|| now.saturating_add(wait.as_secs()));
                        return Err(ForgeError::new(
                            ErrorKind::RateLimited,
                            format!(
                                "{} at {} is rate limiting this token ({}); the limit resets at {} \
                                 — run the job again after that",
                                self.provider,
                                self.host,
                                self.creds.source,
                                crate::job::reporter::rfc3339(
                                    i64::try_from(when).unwrap_or(i64::MAX),
                                    0
                                )
                            ),
                        ));
                    }
                    self.waited = total;
                    self.clock.sleep(wait);
                }
            }
        }
    }

    fn once(&self, method: Method, url: &str, body: Option<&Value>) -> Result<Outcome, ForgeError> {
        let mut builder = ureq::http::Request::builder()
            .method(method.as_str())
            .uri(url)
            .header(self.creds.header, self.creds.value.as_str());
        for (name, value) in self.dialect {
            builder = builder.header(*name, *value);
        }
        let sent = match body {
            Some(json) => {
                let request = builder
                    .header("Content-Type", "application/json")
                    .body(json.to_string())
                    .map_err(|e| self.protocol(&format!("the request could not be built: {e}")))?;
                self.run(request)
            }
            None => {
                let request = builder
                    .body(())
                    .map_err(|e| self.protocol(&format!("the request could not be built: {e}")))?;
                self.run(request)
            }
        };
        let mut response = match sent {
            Ok(r) => r,
            Err(e) => {
                let why = self.redactor.redact(&describe_transport(&e)).into_owned();
                return Ok(Outcome::Retry(format!("could not reach it: {why}")));
            }
        };
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim().to_string())
        };
        let retry_after = header("retry-after").and_then(|v| v.parse::<u64>().ok());
        let reset = header("x-ratelimit-reset")
            .or_else(|| header("ratelimit-reset"))
            .and_then(|v| v.parse::<u64>().ok());
        let exhausted = header("x-ratelimit-remaining").as_deref() == Some("0");
        let link_next = header("link").and_then(|l| next_link(&l));
        let next_page = header("x-next-page").and_then(|v| v.parse::<u64>().ok());
        if status == 429 || (status == 403 && (exhausted || retry_after.is_some())) {
            return Ok(Outcome::RateLimited {
                wait: retry_after.map(Duration::from_secs),
                reset,
            });
        }
        let text = match response
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()
        {
            Ok(t) => t,
            Err(e) if (500..=599).contains(&status) => {
                return Ok(Outcome::Retry(format!("{status}: {e}")));
            }
            Err(e) => {
                return Err(self.protocol(&format!(
                    "its answer could not be read (at most {MAX_BODY} bytes): {e}"
                )))
            }
        };
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let answer = Answer {
            status,
            link_next,
            next_page,
            json,
        };
        match status {
            401 | 403 => Err(ForgeError::new(
                ErrorKind::Auth,
                format!(
                    "{} was rejected by {} ({status}): {} — check that the token is valid \
                     and may write pull requests to {}",
                    self.creds.source,
                    self.host,
                    self.message(&answer),
                    self.repo
                ),
            )),
            404 => Err(ForgeError::new(
                ErrorKind::NotFound,
                format!(
                    "{} at {} answered 404 for {}: repository not found, or the token \
                     cannot see it (the token comes from {})",
                    self.provider, self.host, self.repo, self.creds.source
                ),
            )),
            300..=399 => Err(ForgeError::new(
                ErrorKind::Refused,
                format!(
                    "{} at {} answered {status} (moved) for {}: the repository or the API \
                     moved; set repo.api_url, repo.owner and repo.name to where it is now \
                     (redirects are not followed: the token would go with them)",
                    self.provider, self.host, self.repo
                ),
            )),
            500..=599 => Ok(Outcome::Retry(format!("{status}"))),
            _ => Ok(Outcome::Done(answer)),
        }
    }

    /// Run on the runner's agent, never following a redirect: ureq would
    /// drop `Authorization` on the way but not `PRIVATE-TOKEN`, and a
    /// redirect to another host is not where the job said the API is.
    fn run(
        &self,
        request: ureq::http::Request<impl ureq::AsSendBody>,
    ) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
        use ureq::RequestExt as _;
        request
            .with_agent(&self.net.http)
            .configure()
            .max_redirects(0)
            .run()
    }

    /// A URL must stay on the API's origin: a next-page link pointing
    /// elsewhere would carry the credentials to another host.
    fn check_origin(&self, url: &str) -> Result<(), ForgeError> {
        let same = |u: &Url| {
            u.scheme() == self.base.scheme()
                && u.host().eq_ignore_ascii_case(self.base.host())
                && u.port_or_default() == self.base.port_or_default()
                && u.userinfo().is_none()
        };
        match Url::parse(url) {
            Ok(u) if same(&u) => Ok(()),
            _ => {
                Err(self
                    .protocol("it linked a page outside its API URL; the link was not followed"))
            }
        }
    }

    /// The error for an answer the flow did not expect.
    pub fn refused(&self, doing: &str, answer: &Answer) -> ForgeError {
        ForgeError::new(
            ErrorKind::Refused,
            format!(
                "{} at {} refused {doing} for {} ({}): {}",
                self.provider,
                self.host,
                self.repo,
                answer.status,
                self.message(answer)
            ),
        )
    }

    /// The error for an answer that is not what the provider documents.
    pub fn protocol(&self, what: &str) -> ForgeError {
        ForgeError::new(
            ErrorKind::Protocol,
            format!("{} at {}: {what}", self.provider, self.host),
        )
    }

    /// The provider's own explanation in an error body, cut and redacted:
    /// GitHub `message` and `errors[].message`, GitLab `message` (a string,
    /// list or object) or `error`, Bitbucket `error.message`.
    fn message(&self, answer: &Answer) -> String {
        let j = &answer.json;
        let mut parts = Vec::new();
        match j.get("message") {
            Some(Value::String(s)) => parts.push(s.clone()),
            Some(v @ (Value::Array(_) | Value::Object(_))) => parts.push(v.to_string()),
            _ => {}
        }
        if let Some(errors) = j.get("errors").and_then(Value::as_array) {
            parts.extend(
                errors
                    .iter()
                    .filter_map(|e| e.get("message").and_then(Value::as_str))
                    .map(str::to_string),
            );
        }
        match j.get("error") {
            Some(Value::String(s)) => parts.push(s.clone()),
            Some(e) => parts.extend(e.get("message").and_then(Value::as_str).map(str::to_string)),
            None => {}
        }
        let mut text = if parts.is_empty() {
            "no explanation in the answer".to_string()
        } else {
            parts.join("; ")
        };
        if text.len() > MAX_MESSAGE {
            let mut end = MAX_MESSAGE;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
            text.push('…');
        }
        self.redactor.redact(&text).into_owned()
    }
}

/// Seconds since the Unix epoch.
fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The `rel="next"` URL of a `Link` header (RFC 8288):
/// `<https://…?page=2>; rel="next", <…>; rel="last"`.
pub fn next_link(header: &str) -> Option<String> {
    let mut rest = header;
    while let Some(open) = rest.find('<') {
        let after = rest.get(open + 1..)?;
        let close = after.find('>')?;
        let url = after.get(..close)?;
        let params_end = after
            .get(close..)?
            .find('<')
            .map_or(after.len(), |i| close + i);
        let params = after.get(close + 1..params_end)?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim().trim_end_matches(',').trim();
            p.strip_prefix("rel=")
                .map(|v| v.trim_matches('"').split_whitespace().any(|r| r == "next"))
                .unwrap_or(false)
        });
        if is_next {
            return Some(url.to_string());
        }
        rest = after.get(params_end..)?;
    }
    None
}

/// A transport error in words; a timeout names the phase it hit, so a
/// person can tell a proxy or firewall that drops connections (connecting)
/// from a slow API (waiting for the answer).
fn describe_transport(e: &ureq::Error) -> String {
    use ureq::Timeout;
    let phase = match e {
        ureq::Error::Timeout(t) => match t {
            Timeout::Resolve => "resolving the host name",
            Timeout::Connect => "connecting",
            Timeout::SendRequest | Timeout::SendBody | Timeout::Await100 | Timeout::PerWrite => {
                "sending the request"
            }
            Timeout::RecvResponse => "waiting for the answer",
            Timeout::RecvBody | Timeout::PerRead => "reading the answer",
            _ => "the request as a whole (60 s)",
        },
        other => return other.to_string(),
    };
    format!("timed out {phase}")
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_timeout_names_its_phase() {
        let t = |timeout| super::describe_transport(&ureq::Error::Timeout(timeout));
        assert_eq!(t(ureq::Timeout::Connect), "timed out connecting");
        assert_eq!(
            t(ureq::Timeout::RecvResponse),
            "timed out waiting for the answer"
        );
        assert_eq!(t(ureq::Timeout::RecvBody), "timed out reading the answer");
    }
    use super::*;

    #[test]
    fn next_link_finds_rel_next_wherever_it_is() {
        let h = r#"<https://api.github.com/r?page=1>; rel="prev", <https://api.github.com/r?page=3>; rel="next", <https://api.github.com/r?page=9>; rel="last""#;
        assert_eq!(
            next_link(h).as_deref(),
            Some("https://api.github.com/r?page=3")
        );
        assert_eq!(next_link(r#"<https://a/x?page=9>; rel="last""#), None);
        assert_eq!(
            next_link(r#"<https://a/x>; rel="next last""#).as_deref(),
            Some("https://a/x")
        );
        assert_eq!(next_link(""), None);
        assert_eq!(next_link("<unclosed; rel=\"next\""), None);
    }
}
