//! Bitbucket Cloud pull requests (REST 2.0,
//! `/repositories/{workspace}/{repo_slug}/pullrequests`).
//!
//! The lookup asks for `state=OPEN` and `q=source.branch.name="…"`, pages
//! by the answer's `next` URL, and checks each answer: OPEN, from this
//! branch to the target branch, from this very repository
//! (`source.repository.full_name`: a fork's PR is not the runner's). A create always names `destination.branch.name`: without it
//! Bitbucket targets the repository's main branch, which is not always
//! the job's `target_branch`.

use super::http::{Answer, Method};
use super::{encode, field_is, str_at, Forge, ForgeTarget, PullRequest};
use serde_json::{json, Value};

/// PRs per lookup page (Bitbucket's maximum).
const PAGE_LEN: u32 = 50;

/// The Bitbucket dialect for one target.
#[derive(Debug)]
pub struct Bitbucket<'a> {
    target: &'a ForgeTarget,
    pulls: String,
}

impl<'a> Bitbucket<'a> {
    /// The dialect for `target`.
    pub fn new(target: &'a ForgeTarget) -> Bitbucket<'a> {
        Bitbucket {
            target,
            pulls: format!(
                "{}/repositories/{}/{}/pullrequests",
                target.api_url, target.owner, target.name
            ),
        }
    }

    fn fields(&self, pr: &PullRequest) -> Value {
        json!({
            "title": pr.title,
            "description": pr.body,
            "source": {"branch": {"name": self.target.branch}},
            "destination": {"branch": {"name": self.target.target_branch}},
            "draft": pr.draft,
        })
    }
}

impl Forge for Bitbucket<'_> {
    fn list_url(&self, _page: Option<u64>) -> String {
        // The branch is quoted inside the BBQL string: `"` and `\` escaped.
        let branch = self
            .target
            .branch
            .replace('\\', "\\\\")
            .replace('"', "\\\"");
        format!(
            "{}?state=OPEN&q={}&pagelen={PAGE_LEN}",
            self.pulls,
            encode(&format!("source.branch.name=\"{branch}\""))
        )
    }

    fn items<'v>(&self, page: &'v Value) -> Option<&'v Vec<Value>> {
        page.get("values")?.as_array()
    }

    fn next_url(&self, answer: &Answer) -> Option<String> {
        answer
            .json
            .get("next")
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    fn is_ours(&self, pr: &Value) -> bool {
        let full = self.target.full_name();
        field_is(pr, &["state"], "OPEN")
            && field_is(pr, &["source", "branch", "name"], &self.target.branch)
            && field_is(
                pr,
                &["destination", "branch", "name"],
                &self.target.target_branch,
            )
            && str_at(pr, &["source", "repository", "full_name"])
                .is_some_and(|n| n.eq_ignore_ascii_case(&full))
    }

    fn create(&self, pr: &PullRequest) -> (String, Value) {
        (self.pulls.clone(), self.fields(pr))
    }

    fn update(&self, id: u64, pr: &PullRequest) -> (Method, String, Value) {
        (Method::Put, format!("{}/{id}", self.pulls), self.fields(pr))
    }

    fn opened(&self, pr: &Value) -> Option<(u64, String)> {
        let id = pr.get("id")?.as_u64()?;
        let url = str_at(pr, &["links", "html", "href"])?;
        Some((id, url.to_string()))
    }
}
