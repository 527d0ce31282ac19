//! `image_repository`: a repository name as the OCI distribution spec defines it, checked when
//! the metadata is read, so that a bad one fails before anything is built rather than at the
//! push (or, worse, as a base image reference with a tag made up from it).
//!
//! The name is `host[:port]/path`: the path's components follow the spec's grammar
//! `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, joined by `/`; the host is DNS labels (an IPv4
//! address and `localhost` are such) or a bracketed IPv6 address, with an optional port. A registry host is required: `--push` never
//! guesses Docker Hub.

use serde_json::Value;

use super::{Context, render};
use crate::error::{Error, Result};

/// Most registries refuse longer names (the distribution spec's reference implementation, ECR).
const MAX_NAME_CHARS: usize = 255;

impl Context<'_> {
    pub(super) fn image_repository(&self, value: &Value) -> Result<String> {
        let problem = match value.as_str() {
            Some(name) => match repository_problem(name) {
                None => return Ok(name.to_string()),
                Some(problem) => problem,
            },
            None => "it is not a string".to_string(),
        };
        Err(Error::config(format!(
            "key `image_repository` in {} must be a repository such as \"123456789012.dkr.ecr.us-east-1.amazonaws.com/my-function\" (no tag or digest), found {}: {problem}",
            self.location(),
            render(value)
        ))
        .with_help("set it to <registry>/<repository>, lowercase, no scheme; --push tags the image <package version>-<arch>"))
    }
}

/// What is wrong with `name` as `<registry>/<repository>`, if anything.
pub fn repository_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("it is empty".into());
    }
    if let Some((scheme, _)) = name.split_once("://") {
        return Some(format!(
            "`{scheme}://` is a URL scheme, not part of a repository"
        ));
    }
    if name.contains('@') {
        return Some("`@` starts a digest, which a repository has none of".into());
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Some(format!("it is longer than {MAX_NAME_CHARS} characters"));
    }
    let Some((host, path)) = name.split_once('/') else {
        return Some("it names no registry host (`<registry>/<repository>`)".into());
    };
    if let Some(problem) = host_problem(host) {
        return Some(problem);
    }
    path.split('/').find_map(component_problem)
}

/// `host[:port]`: DNS labels of letters, digits and `-` (not at either end), or `localhost`.
fn host_problem(registry: &str) -> Option<String> {
    let (host, port) = match registry.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (registry, None),
    };
    if let Some(port) = port
        && (port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return Some(format!(
            "the registry `{registry}` has a port `{port}` that is not a number"
        ));
    }
    let label_ok = |label: &str| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    let ipv6 = host.len() > 2
        && host.starts_with('[')
        && host.ends_with(']')
        && host[1..host.len() - 1]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':');
    if ipv6 || host.split('.').all(label_ok) {
        None
    } else {
        Some(format!(
            "the registry host `{host}` is not a host name (letters, digits, `-` and `.`)"
        ))
    }
}

/// One path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn component_problem(component: &str) -> Option<String> {
    if component.is_empty() {
        return Some("it has an empty path component (`//` or a trailing `/`)".into());
    }
    if component == "." || component == ".." {
        return Some(format!("`{component}` is not a repository path component"));
    }
    if let Some(tag) = component.split_once(':').map(|(_, tag)| tag) {
        return Some(format!(
            "`:{tag}` is a tag; the tag is set by --push (<package version>-<arch>)"
        ));
    }
    if component.bytes().any(|b| b.is_ascii_uppercase()) {
        return Some(format!(
            "`{component}` has uppercase letters; repository names are lowercase"
        ));
    }
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = component.as_bytes();
    let well_formed = alnum(bytes[0])
        && alnum(bytes[bytes.len() - 1])
        && component
            .split(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            .filter(|separator| !separator.is_empty())
            .all(|separator| {
                matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-')
            })
        && bytes.iter().all(|&b| alnum(b) || b".-_".contains(&b));
    (!well_formed).then(|| {
        format!(
            "`{component}` is not a repository path component: lowercase letters and digits, separated by one `.`, one or two `_`, or `-`s"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_the_distribution_grammar_are_accepted() {
        for good in [
            "127.0.0.1:5000/team/fn",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-function",
            "localhost:5000/a",
            "Registry.Example.com/a.b/c__d/e---f/g_h",
            "ghcr.io/org/0/x9",
            "[::1]:5000/fn",
        ] {
            assert_eq!(repository_problem(good), None, "{good}");
        }
    }

    #[test]
    fn each_bad_name_says_what_is_wrong() {
        for (bad, why) in [
            ("https://registry.example/fn", "`https://` is a URL scheme"),
            ("registry.example/Team/fn", "`Team` has uppercase letters"),
            ("registry.example/../fn", "`..` is not a repository path"),
            ("registry.example/a/./fn", "`.` is not a repository path"),
            ("registry.example/fn:1.0", "`:1.0` is a tag"),
            ("registry.example/fn@sha256:00", "`@` starts a digest"),
            ("fn", "names no registry host"),
            ("", "it is empty"),
            ("registry.example/a//b", "empty path component"),
            ("registry.example/a/", "empty path component"),
            (
                "registry.example/a._b",
                "`a._b` is not a repository path component",
            ),
            ("registry.example/a___b", "`a___b` is not"),
            ("registry.example/-a", "`-a` is not"),
            ("registry.example/a.", "`a.` is not"),
            ("registry.example/a b", "`a b` is not"),
            (
                "reg_istry.example/a",
                "the registry host `reg_istry.example`",
            ),
            (
                "registry.example:http/a",
                "port `http` that is not a number",
            ),
        ] {
            let problem = repository_problem(bad).unwrap_or_else(|| panic!("{bad} accepted"));
            assert!(problem.contains(why), "{bad}: {problem}");
        }
        assert!(repository_problem(&format!("r.example/{}", "a".repeat(260))).is_some());
    }
}
