//! Reading each part of a raw spec: the typed accessors that name the field
//! in their error, and one parser per nested object (repo, agent, commit,
//! PR, registries).

use super::checks::{check_branch, check_name, check_owner, check_rel_path};
use super::url::check_clone_url;
use super::{
    AgentSpec, CommitSpec, PrSpec, Provider, RegistrySpec, RemotePolicy, RepoSpec, SpecError,
    MAX_TIMEOUT_S,
};
use serde_json::Value;

pub(super) fn short(s: &str) -> String {
    // Echo at most 64 characters of a bad value: enough to recognise it,
    // never a whole pasted token.
    let mut out: String = s.chars().take(64).collect();
    if s.chars().count() > 64 {
        out.push('…');
    }
    out
}

pub(super) fn req_str<'a>(v: Option<&'a Value>, field: &str) -> Result<&'a str, SpecError> {
    match v {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(SpecError::new(field, "is required")),
        Some(_) => Err(SpecError::new(field, "must be a string")),
    }
}

pub(super) fn opt_str<'a>(v: Option<&'a Value>, field: &str) -> Result<Option<&'a str>, SpecError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(SpecError::new(field, "must be a string or null")),
    }
}

pub(super) fn opt_u64(v: Option<&Value>, field: &str) -> Result<Option<u64>, SpecError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| SpecError::new(field, "must be a non-negative integer")),
        Some(_) => Err(SpecError::new(field, "must be a non-negative integer")),
    }
}

/// A time limit in seconds: absent, or 1 to [`MAX_TIMEOUT_S`].
pub(super) fn opt_timeout(v: Option<&Value>, field: &str) -> Result<Option<u64>, SpecError> {
    match opt_u64(v, field)? {
        Some(0) => Err(SpecError::new(field, "must be greater than 0")),
        Some(s) if s > MAX_TIMEOUT_S => Err(too_long(field)),
        t => Ok(t),
    }
}

pub(super) fn too_long(field: &str) -> SpecError {
    SpecError::new(
        field,
        format!("must be at most {MAX_TIMEOUT_S} seconds (7 days)"),
    )
}

pub(super) fn parse_repo(v: Option<&Value>, policy: RemotePolicy) -> Result<RepoSpec, SpecError> {
    let obj = match v {
        Some(Value::Object(o)) => o,
        None | Some(Value::Null) => return Err(SpecError::new("repo", "is required")),
        Some(_) => return Err(SpecError::new("repo", "must be an object")),
    };
    let provider = match opt_str(obj.get("provider"), "repo.provider")? {
        None | Some("github") => Provider::Github,
        Some("gitlab") => Provider::Gitlab,
        Some("bitbucket") => Provider::Bitbucket,
        Some(other) => {
            return Err(SpecError::new(
                "repo.provider",
                format!("`{}` is not one of github, gitlab, bitbucket", short(other)),
            ))
        }
    };
    let base_url = opt_str(obj.get("base_url"), "repo.base_url")?
        .map(|s| s.trim_end_matches('/').to_string())
        .unwrap_or_else(|| match provider {
            Provider::Github => "https://github.com".into(),
            Provider::Gitlab => "https://gitlab.com".into(),
            Provider::Bitbucket => "https://bitbucket.org".into(),
        });
    let api_url = opt_str(obj.get("api_url"), "repo.api_url")?.map(str::to_string);
    if let Some(api) = &api_url {
        let l = api.to_ascii_lowercase();
        if !(l.starts_with("https://") || l.starts_with("http://")) {
            return Err(SpecError::new("repo.api_url", "must be an http(s) URL"));
        }
        // The PR step sends the token there: the clone URL's rule (plain
        // http only on loopback or with ADOS_ALLOW_HTTP), checked before
        // the job runs rather than after its push.
        check_clone_url("repo.api_url", api, policy)?;
    }
    let owner = req_str(obj.get("owner"), "repo.owner")?.to_string();
    check_owner(provider, &owner)?;
    let name = req_str(obj.get("name"), "repo.name")?.to_string();
    check_name("repo.name", &name)?;
    let clone_url = match opt_str(obj.get("clone_url"), "repo.clone_url")? {
        Some(u) if !u.is_empty() => {
            check_clone_url("repo.clone_url", u, policy)?;
            u.to_string()
        }
        _ => {
            check_clone_url("repo.base_url", &base_url, policy)?;
            format!("{base_url}/{owner}/{name}.git")
        }
    };
    let path = opt_str(obj.get("path"), "repo.path")?
        .unwrap_or("")
        .trim_end_matches('/')
        .to_string();
    check_rel_path("repo.path", &path)?;
    let target_branch = opt_str(obj.get("target_branch"), "repo.target_branch")?
        .unwrap_or("main")
        .to_string();
    check_branch("repo.target_branch", &target_branch)?;
    Ok(RepoSpec {
        provider,
        base_url,
        api_url,
        owner,
        name,
        clone_url,
        path,
        target_branch,
    })
}

pub(super) fn parse_agent(v: &Value, field: &str) -> Result<AgentSpec, SpecError> {
    let obj = match v {
        Value::Object(o) => o,
        // A bare string is accepted as a shorthand: "fallbacks": ["codex"].
        Value::String(s) => {
            check_name(&format!("{field}.name"), s)?;
            return Ok(AgentSpec {
                name: s.clone(),
                model: None,
                timeout_s: None,
                args: Vec::new(),
            });
        }
        _ => return Err(SpecError::new(field, "must be an object")),
    };
    let name = req_str(obj.get("name"), &format!("{field}.name"))?.to_string();
    check_name(&format!("{field}.name"), &name)?;
    let model = opt_str(obj.get("model"), &format!("{field}.model"))?.map(str::to_string);
    if let Some(m) = &model {
        if m.starts_with('-') || m.chars().any(|c| c.is_control()) || m.len() > 200 {
            return Err(SpecError::new(
                format!("{field}.model"),
                "must not start with `-` or contain control characters",
            ));
        }
    }
    let timeout_s = opt_timeout(obj.get("timeout_s"), &format!("{field}.timeout_s"))?;
    let mut args = Vec::new();
    match obj.get("args") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, a) in items.iter().enumerate() {
                match a {
                    Value::String(s) if !s.contains('\0') => args.push(s.clone()),
                    _ => {
                        return Err(SpecError::new(
                            format!("{field}.args[{i}]"),
                            "must be a string without NUL",
                        ))
                    }
                }
            }
        }
        Some(_) => {
            return Err(SpecError::new(
                format!("{field}.args"),
                "must be an array of strings",
            ))
        }
    }
    Ok(AgentSpec {
        name,
        model,
        timeout_s,
        args,
    })
}

pub(super) fn parse_commit(v: Option<&Value>) -> Result<CommitSpec, SpecError> {
    let mut c = CommitSpec {
        message: None,
        author_name: "ADOS".into(),
        author_email: "ados@ados.dev".into(),
    };
    let obj = match v {
        None | Some(Value::Null) => return Ok(c),
        Some(Value::Object(o)) => o,
        Some(_) => return Err(SpecError::new("commit", "must be an object")),
    };
    c.message = opt_str(obj.get("message"), "commit.message")?.map(str::to_string);
    if let Some(n) = opt_str(obj.get("author_name"), "commit.author_name")? {
        if n.chars().any(|ch| matches!(ch, '<' | '>' | '\n' | '\0')) || n.trim().is_empty() {
            return Err(SpecError::new(
                "commit.author_name",
                "must be non-empty without <, > or newlines",
            ));
        }
        c.author_name = n.to_string();
    }
    if let Some(e) = opt_str(obj.get("author_email"), "commit.author_email")? {
        if e.chars()
            .any(|ch| matches!(ch, '<' | '>' | '\n' | '\0' | ' '))
            || !e.contains('@')
        {
            return Err(SpecError::new(
                "commit.author_email",
                "must look like name@example.com",
            ));
        }
        c.author_email = e.to_string();
    }
    Ok(c)
}

pub(super) fn parse_pr(v: Option<&Value>) -> Result<PrSpec, SpecError> {
    let obj = match v {
        None | Some(Value::Null) => return Ok(PrSpec::default()),
        Some(Value::Object(o)) => o,
        Some(_) => return Err(SpecError::new("pr", "must be an object")),
    };
    let draft = match obj.get("draft") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(SpecError::new("pr.draft", "must be true or false")),
    };
    Ok(PrSpec {
        title: opt_str(obj.get("title"), "pr.title")?.map(str::to_string),
        body: opt_str(obj.get("body"), "pr.body")?.map(str::to_string),
        draft,
    })
}

pub(super) fn parse_registries(v: Option<&Value>) -> Result<Vec<RegistrySpec>, SpecError> {
    let items = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(SpecError::new("registries", "must be an array")),
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let f = |k: &str| format!("registries[{i}].{k}");
        let obj = item
            .as_object()
            .ok_or_else(|| SpecError::new(format!("registries[{i}]"), "must be an object"))?;
        let kind = req_str(obj.get("type"), &f("type"))?.to_string();
        if !matches!(kind.as_str(), "npm" | "pip" | "maven") {
            return Err(SpecError::new(f("type"), "must be one of npm, pip, maven"));
        }
        let url = req_str(obj.get("url"), &f("url"))?.to_string();
        let l = url.to_ascii_lowercase();
        if !(l.starts_with("https://") || l.starts_with("http://"))
            || url.chars().any(|c| c.is_control() || c == ' ')
        {
            return Err(SpecError::new(
                f("url"),
                "must be an http(s) URL without spaces",
            ));
        }
        let scope = opt_str(obj.get("scope"), &f("scope"))?.map(str::to_string);
        if let Some(s) = &scope {
            let body = s.strip_prefix('@').unwrap_or(s);
            check_name(&f("scope"), body)?;
        }
        let token = req_str(obj.get("token"), &f("token"))?.to_string();
        if token.chars().any(|c| c.is_control()) {
            return Err(SpecError::new(
                f("token"),
                "must not contain control characters",
            ));
        }
        out.push(RegistrySpec {
            kind,
            url,
            scope,
            token,
        });
    }
    Ok(out)
}
