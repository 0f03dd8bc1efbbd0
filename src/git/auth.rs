//! The credential git presents to the hosting provider (which one a job
//! gets is [`crate::vcs::auth_for`]'s choice).

use std::fmt;

/// HTTP Basic credentials for git over https (username + token). `Debug`
/// never prints the token.
#[derive(Clone, PartialEq, Eq)]
pub struct GitAuth {
    username: String,
    token: String,
}

impl GitAuth {
    /// Credentials from a username and a token (or app password).
    pub fn new(username: impl Into<String>, token: impl Into<String>) -> GitAuth {
        GitAuth {
            username: username.into(),
            token: token.into(),
        }
    }

    /// The username (not a secret).
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The token (secret: only for the redactor and the header).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The value of the `Authorization` header: `Basic base64(user:token)`.
    pub(crate) fn header_value(&self) -> String {
        format!(
            "Basic {}",
            crate::base64::encode(format!("{}:{}", self.username, self.token).as_bytes())
        )
    }

    /// Every form of the secret that must be redacted: the token and the
    /// whole base64 blob of the header (the redactor also catches the
    /// token's base64 inside longer blobs).
    pub fn secrets(&self) -> Vec<String> {
        vec![self.token.clone(), self.header_value()]
    }
}

impl fmt::Debug for GitAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitAuth")
            .field("username", &self.username)
            .field("token", &"[REDACTED]")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_token_and_header_is_basic() {
        let a = GitAuth::new("x-access-token", "s3cr3t-token");
        assert!(!format!("{a:?}").contains("s3cr3t"));
        assert_eq!(
            crate::base64::encode(b"Aladdin:open sesame"),
            "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert_eq!(crate::base64::encode(b"ab"), "YWI=");
        assert_eq!(
            a.header_value(),
            format!(
                "Basic {}",
                crate::base64::encode(b"x-access-token:s3cr3t-token")
            )
        );
    }
}
