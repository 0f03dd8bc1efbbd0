//! Which credential a job's git presents: the job's own token or the
//! runner's, with each provider's username convention. The choice reads the
//! runner's configuration, which is why it lives here and not in `git/`
//! (typed git invocations only, given a [`GitAuth`]).

use crate::config::VcsCredentials;
use crate::git::GitAuth;
use crate::job::spec::Provider;

/// The credential for a job: the job's own `vcs_token` when set, otherwise
/// the runner's token for the provider. `None` means git runs without one
/// (public repositories).
///
/// Usernames follow each provider's token convention: GitHub
/// `x-access-token`, GitLab `oauth2`, Bitbucket the account's username with
/// an app password, or `x-token-auth` with an access token.
pub fn auth_for(
    provider: Provider,
    vcs_token: Option<&str>,
    vcs: &VcsCredentials,
) -> Option<GitAuth> {
    let job_token = vcs_token.filter(|t| !t.is_empty());
    let non_empty = |o: &Option<String>| o.as_deref().filter(|t| !t.is_empty()).map(str::to_string);
    match provider {
        Provider::Github => job_token
            .map(str::to_string)
            .or_else(|| non_empty(&vcs.github_token))
            .map(|t| GitAuth::new("x-access-token", t)),
        Provider::Gitlab => job_token
            .map(str::to_string)
            .or_else(|| non_empty(&vcs.gitlab_token))
            .map(|t| GitAuth::new("oauth2", t)),
        Provider::Bitbucket => {
            if let Some(t) = job_token {
                return Some(GitAuth::new("x-token-auth", t));
            }
            match (
                non_empty(&vcs.bitbucket_username),
                non_empty(&vcs.bitbucket_app_password),
            ) {
                (Some(u), Some(p)) => Some(GitAuth::new(u, p)),
                _ => None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> VcsCredentials {
        VcsCredentials {
            github_token: Some("ghp_runner".into()),
            gitlab_token: Some("glpat_runner".into()),
            bitbucket_username: Some("bob".into()),
            bitbucket_app_password: Some("bb_pass".into()),
        }
    }

    #[test]
    fn provider_usernames_and_job_token_override() {
        let c = creds();
        let gh = auth_for(Provider::Github, None, &c).unwrap();
        assert_eq!(
            (gh.username(), gh.token()),
            ("x-access-token", "ghp_runner")
        );
        let gl = auth_for(Provider::Gitlab, Some("job"), &c).unwrap();
        assert_eq!((gl.username(), gl.token()), ("oauth2", "job"));
        let bb = auth_for(Provider::Bitbucket, None, &c).unwrap();
        assert_eq!((bb.username(), bb.token()), ("bob", "bb_pass"));
        let bbj = auth_for(Provider::Bitbucket, Some("jt"), &c).unwrap();
        assert_eq!((bbj.username(), bbj.token()), ("x-token-auth", "jt"));
        assert!(auth_for(Provider::Github, Some(""), &VcsCredentials::default()).is_none());
        let half = VcsCredentials {
            bitbucket_username: Some("bob".into()),
            ..VcsCredentials::default()
        };
        assert!(auth_for(Provider::Bitbucket, None, &half).is_none());
    }
}
