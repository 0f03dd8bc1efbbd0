//! GitHub and GitHub Enterprise pull requests (REST, `/repos/{owner}/{repo}/pulls`).
//!
//! The lookup filters on `head=owner:branch` (GitHub ignores a `head`
//! filter without the owner and would list every open PR) and `state=open`,
//! pages by the `Link` header, and still checks each answer itself: an
//! open PR whose head is this very repository and branch and whose base is
//! the target branch (one head may have open PRs to several bases). An
//! update (PATCH) sets the title and the body (and restates the base);
//! REST cannot change a PR's draft state, so an existing PR keeps the one
//! it has. A repository whose plan has no draft PRs refuses a draft
//! create (422); the PR is then created ready for review.

use super::http::{Answer, Method};
use super::{encode, field_is, str_at, Forge, ForgeTarget, PullRequest};
use serde_json::{json, Value};

/// PRs per lookup page (GitHub's maximum).
const PER_PAGE: u32 = 100;

/// The GitHub dialect for one target.
#[derive(Debug)]
pub struct GitHub<'a> {
    target: &'a ForgeTarget,
    pulls: String,
}

impl<'a> GitHub<'a> {
    /// The dialect for `target`.
    pub fn new(target: &'a ForgeTarget) -> GitHub<'a> {
        GitHub {
            target,
            pulls: format!(
                "{}/repos/{}/{}/pulls",
                target.api_url, target.owner, target.name
            ),
        }
    }
}

impl Forge for GitHub<'_> {
    fn list_url(&self, _page: Option<u64>) -> String {
        let t = self.target;
        format!(
            "{}?state=open&head={}&per_page={PER_PAGE}",
            self.pulls,
            encode(&format!("{}:{}", t.owner, t.branch))
        )
    }

    fn items<'v>(&self, page: &'v Value) -> Option<&'v Vec<Value>> {
        page.as_array()
    }

    fn next_url(&self, answer: &Answer) -> Option<String> {
        answer.link_next.clone()
    }

    fn is_ours(&self, pr: &Value) -> bool {
        let full = self.target.full_name();
        field_is(pr, &["state"], "open")
            && field_is(pr, &["head", "ref"], &self.target.branch)
            && field_is(pr, &["base", "ref"], &self.target.target_branch)
            && str_at(pr, &["head", "repo", "full_name"])
                .is_some_and(|n| n.eq_ignore_ascii_case(&full))
    }

    fn create(&self, pr: &PullRequest) -> (String, Value) {
        let body = json!({
            "title": pr.title,
            "body": pr.body,
            "head": self.target.branch,
            "base": self.target.target_branch,
            "draft": pr.draft,
            "maintainer_can_modify": false,
        });
        (self.pulls.clone(), body)
    }

    fn update(&self, number: u64, pr: &PullRequest) -> (Method, String, Value) {
        let body = json!({
            "title": pr.title,
            "body": pr.body,
            "base": self.target.target_branch,
        });
        (Method::Patch, format!("{}/{number}", self.pulls), body)
    }

    /// "Draft pull requests are not supported in this repository." (a
    /// private repository on a plan without drafts).
    fn refuses_drafts(&self, refused: &Answer) -> bool {
        refused.status == 422
            && refused
                .json
                .to_string()
                .contains("Draft pull requests are not supported")
    }

    fn opened(&self, pr: &Value) -> Option<(u64, String)> {
        let number = pr.get("number")?.as_u64()?;
        let url = str_at(pr, &["html_url"])?;
        Some((number, url.to_string()))
    }
}
