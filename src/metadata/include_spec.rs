//! `include` entries: `path/or/glob` or `source:destination`, both relative.

use super::{Context, IncludeSpec};
use crate::error::{Error, Result};

impl Context<'_> {
    pub(super) fn include_spec(&self, entry: &str) -> Result<IncludeSpec> {
        let (pattern, dest) = match entry.split_once(':') {
            Some((pattern, dest)) => (pattern, Some(dest)),
            None => (entry, None),
        };
        let bad = |what: String| {
            Error::config(format!(
                "include \"{entry}\" in {} {what}",
                self.location()
            ))
            .with_help(
                "write `\"path/or/glob\"` or `\"source:destination\"`, both relative (source to the package directory, destination to the artifact root)",
            )
        };
        if pattern.is_empty() {
            return Err(bad("has an empty source".into()));
        }
        check_relative(pattern).map_err(|why| bad(format!("has a source that {why}")))?;
        if let Err(err) = globset::Glob::new(pattern) {
            return Err(bad(format!("is not a valid glob: {}", err.kind())));
        }
        if let Some(dest) = dest {
            if dest.trim_matches('/').is_empty() {
                return Err(bad("has an empty destination".into()));
            }
            check_relative(dest).map_err(|why| bad(format!("has a destination that {why}")))?;
            if dest.contains(['*', '?', '[', '{']) {
                return Err(bad("has a glob in its destination".into()));
            }
        }
        Ok(IncludeSpec {
            pattern: pattern.to_owned(),
            dest: dest.map(|d| d.trim_end_matches('/').to_owned()),
        })
    }
}

/// A path written in the metadata must stay inside its root: no absolute paths, no `..`.
pub(super) fn check_relative(path: &str) -> std::result::Result<(), &'static str> {
    if path.starts_with('/') || path.starts_with('\\') || path.contains(":\\") {
        return Err("is absolute");
    }
    if path.split(['/', '\\']).any(|part| part == "..") {
        return Err("leaves its directory through `..`");
    }
    Ok(())
}
