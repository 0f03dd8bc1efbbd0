//! GitLab and self-managed GitLab merge requests (REST v4,
//! `/projects/:id/merge_requests`).
//!
//! The project id is the URL-encoded path (`grp%2Fsub%2Fname`, nested
//! groups included). The lookup asks for `state=opened` (GitLab lists
//! every state unless asked) and `source_branch`, pages by `X-Next-Page`,
//! and checks each answer: opened, from this branch to the target branch,
//! and from this very project (`source_project_id == target_project_id`:
//! a fork's MR of a branch with the same name is not the runner's). A draft
//! is a title starting `Draft: `; an update sends the title of this run,
//! so a re-run whose tests pass marks the MR ready.

use super::http::{Answer, Method};
use super::{encode, field_is, Forge, ForgeTarget, PullRequest};
use serde_json::{json, Value};

/// MRs per lookup page (GitLab's maximum).
const PER_PAGE: u32 = 100;
/// The title prefix that makes an MR a draft.
pub const DRAFT_PREFIX: &str = "Draft: ";

/// The GitLab dialect for one target.
#[derive(Debug)]
pub struct GitLab<'a> {
    target: &'a ForgeTarget,
    mrs: String,
}

impl<'a> GitLab<'a> {
    /// The dialect for `target`.
    pub fn new(target: &'a ForgeTarget) -> GitLab<'a> {
        GitLab {
            target,
            mrs: format!(
                "{}/projects/{}/merge_requests",
                target.api_url,
                encode(&target.full_name())
            ),
        }
    }

    fn title(pr: &PullRequest) -> String {
        let bare = pr.title.strip_prefix(DRAFT_PREFIX).unwrap_or(&pr.title);
        if pr.draft {
            format!("{DRAFT_PREFIX}{bare}")
        } else {
            bare.to_string()
        }
    }
}

impl Forge for GitLab<'_> {
    fn list_url(&self, page: Option<u64>) -> String {
        let mut url = format!(
            "{}?state=opened&source_branch={}&per_page={PER_PAGE}",
            self.mrs,
            encode(&self.target.branch)
        );
        if let Some(p) = page {
            url.push_str(&format!("&page={p}"));
        }
        url
    }

    fn items<'v>(&self, page: &'v Value) -> Option<&'v Vec<Value>> {
        page.as_array()
    }

    fn next_url(&self, answer: &Answer) -> Option<String> {
        answer.next_page.map(|p| self.list_url(Some(p)))
    }

    fn is_ours(&self, mr: &Value) -> bool {
        let project = |k: &str| mr.get(k).and_then(Value::as_u64);
        field_is(mr, &["state"], "opened")
            && field_is(mr, &["source_branch"], &self.target.branch)
            && field_is(mr, &["target_branch"], &self.target.target_branch)
            && project("source_project_id").is_some()
            && project("source_project_id") == project("target_project_id")
    }

    fn create(&self, pr: &PullRequest) -> (String, Value) {
        let body = json!({
            "source_branch": self.target.branch,
            "target_branch": self.target.target_branch,
            "title": GitLab::title(pr),
            "description": pr.body,
        });
        (self.mrs.clone(), body)
    }

    fn update(&self, iid: u64, pr: &PullRequest) -> (Method, String, Value) {
        let body = json!({
            "target_branch": self.target.target_branch,
            "title": GitLab::title(pr),
            "description": pr.body,
        });
        (Method::Put, format!("{}/{iid}", self.mrs), body)
    }

    fn opened(&self, mr: &Value) -> Option<(u64, String)> {
        let iid = mr.get("iid")?.as_u64()?;
        let url = mr.get("web_url")?.as_str()?;
        Some((iid, url.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draft_is_a_title_prefix_never_doubled() {
        let pr = |title: &str, draft| PullRequest {
            title: title.into(),
            body: String::new(),
            draft,
        };
        assert_eq!(GitLab::title(&pr("Fix (#4)", true)), "Draft: Fix (#4)");
        assert_eq!(GitLab::title(&pr("Draft: Fix", true)), "Draft: Fix");
        assert_eq!(GitLab::title(&pr("Draft: Fix", false)), "Fix");
        assert_eq!(GitLab::title(&pr("Fix", false)), "Fix");
    }
}
