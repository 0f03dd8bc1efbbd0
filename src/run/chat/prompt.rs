//! The prompt of a chat's first turn (`docs/prompt.md`, "Chat sessions"):
//! where the agent is and what the runner does for it, then the user's
//! first message. Later turns send the user's message alone: the agent's
//! own session remembers the rest.

use crate::job::spec::JobSpec;
use crate::run::prompt::instruction_files;
use crate::run::repo_file::RepoFiles;
use std::path::Path;

/// The first turn's prompt for `message`. A spec's `prompt` is context
/// given ahead of it (the control plane's framing of the session).
pub fn first(spec: &JobSpec, files: &RepoFiles, workdir: &Path, message: &str) -> String {
    let root = files.root();
    let mut out = format!(
        "You are in a chat with a developer about the repository {}/{}, checked out on branch {}.\n",
        spec.repo.owner, spec.repo.name, spec.branch
    );
    if let Some(context) = spec.prompt.as_deref().filter(|p| !p.trim().is_empty()) {
        out.push_str(&format!("\n{}\n\n", context.trim()));
    }
    let found = instruction_files(files);
    if !found.is_empty() {
        out.push_str(&format!(
            "The repository's own instructions are in: {}.\n",
            found.join(", ")
        ));
    }
    if let Some(rel) = workdir
        .strip_prefix(root)
        .ok()
        .filter(|r| !r.as_os_str().is_empty())
    {
        out.push_str(&format!(
            "Work inside the `{}` directory of this monorepo.\n",
            rel.display()
        ));
    }
    out.push_str(
        "Answer each message; change files in the working tree when asked. \
         Do not commit or push: the runner does that when the developer asks for a pull request.\n\n\
         The developer's first message:\n\n",
    );
    out.push_str(message);
    out
}
