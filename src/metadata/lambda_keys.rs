//! The metadata keys whose values Lambda itself validates: `env` (a function's environment
//! variables), `compatible_runtimes` (PublishLayerVersion's CompatibleRuntimes) and `handler`
//! (CreateFunction's Handler).

use std::collections::BTreeMap;

use serde_json::Value;

use super::{Context, render};
use crate::error::{Error, Result};
use crate::lambda_rules;

/// Every runtime identifier PublishLayerVersion accepts in CompatibleRuntimes (AWS's Lambda API
/// reference, `LayerVersionsListItem`), deprecated ones included: a layer built today may still
/// serve functions on them.
pub const LAMBDA_RUNTIME_IDS: [&str; 52] = [
    "nodejs",
    "nodejs4.3",
    "nodejs4.3-edge",
    "nodejs6.10",
    "nodejs8.10",
    "nodejs10.x",
    "nodejs12.x",
    "nodejs14.x",
    "nodejs16.x",
    "nodejs18.x",
    "nodejs20.x",
    "nodejs22.x",
    "nodejs24.x",
    "java8",
    "java8.al2",
    "java11",
    "java17",
    "java21",
    "java25",
    "python2.7",
    "python3.6",
    "python3.7",
    "python3.8",
    "python3.9",
    "python3.10",
    "python3.11",
    "python3.12",
    "python3.13",
    "python3.14",
    "dotnetcore1.0",
    "dotnetcore2.0",
    "dotnetcore2.1",
    "dotnetcore3.1",
    "dotnet6",
    "dotnet8",
    "dotnet10",
    "go1.x",
    "ruby2.5",
    "ruby2.7",
    "ruby3.2",
    "ruby3.3",
    "ruby3.4",
    "provided",
    "provided.al2",
    "provided.al2023",
    "nodejs8.x",
    "nodejs8.9",
    "python3.4",
    "python2.7-greengrass",
    "go1.9",
    "ruby2.6",
    "byol",
];

/// PublishLayerVersion's limit on CompatibleRuntimes.
pub const MAX_COMPATIBLE_RUNTIMES: usize = 15;

impl Context<'_> {
    /// `env = { KEY = "value", ... }`: string values under names Lambda accepts.
    pub(super) fn env_table(&self, value: &Value) -> Result<BTreeMap<String, String>> {
        let map = value.as_object().ok_or_else(|| {
            Error::config(format!(
                "key `env` in {} must be a table of strings, found {}",
                self.location(),
                render(value)
            ))
            .with_help("write it as `env = { TABLE_NAME = \"orders\" }`")
        })?;
        let mut env = BTreeMap::new();
        for (key, item) in map {
            lambda_rules::check_env_key(key).map_err(|why| {
                Error::config(format!("`env.{key}` in {}: {why}", self.location()))
                    .with_help(lambda_rules::env_key_help(key))
            })?;
            let text = item.as_str().ok_or_else(|| {
                Error::config(format!(
                    "`env.{key}` in {} must be a string, found {}",
                    self.location(),
                    render(item)
                ))
                .with_help(format!(
                    "quote the value: `{key} = \"{}\"` (Lambda's variables are strings)",
                    render(item).trim_matches('"')
                ))
            })?;
            lambda_rules::check_env_value(key, text).map_err(|why| {
                Error::config(format!("`env.{key}` in {}: {why}", self.location()))
                    .with_help("remove the NUL byte (`\\u0000`) from the value")
            })?;
            env.insert(key.clone(), text.to_string());
        }
        // One table over the limit is refused here, naming it; the merged environment of each
        // function (workspace, package, bin) is checked again when the units are resolved.
        lambda_rules::check_env_bytes(lambda_rules::env_bytes(&env)).map_err(|why| {
            Error::config(format!("key `env` in {} is too large: {why}", self.location()))
                .with_help("keep large configuration in a file (include) or a parameter store, and its name in `env`")
        })?;
        Ok(env)
    }

    /// `compatible_runtimes = ["python3.13", ...]`: Lambda runtime identifiers, at most 15.
    pub(super) fn runtime_ids(&self, value: &Value) -> Result<Vec<String>> {
        let ids = self.string_list(value, "compatible_runtimes")?;
        for id in &ids {
            if LAMBDA_RUNTIME_IDS.contains(&id.as_str()) {
                continue;
            }
            // Always a suggestion: the nearest id, however far.
            let nearest =
                crate::suggest::nearest(id, LAMBDA_RUNTIME_IDS, 0.0).unwrap_or("provided.al2023");
            return Err(Error::config(format!(
                "invalid value \"{id}\" in key `compatible_runtimes` of {}: Lambda has no such runtime",
                self.location()
            ))
            .with_note(
                "expected Lambda runtime identifiers such as \"python3.13\", \"nodejs22.x\", \
                 \"java21\", \"dotnet8\", \"ruby3.4\", \"provided.al2023\"",
            )
            .with_help(format!("did you mean \"{nearest}\"?")));
        }
        let mut unique: Vec<String> = Vec::new();
        for id in ids {
            if !unique.contains(&id) {
                unique.push(id);
            }
        }
        if unique.len() > MAX_COMPATIBLE_RUNTIMES {
            return Err(Error::config(format!(
                "key `compatible_runtimes` of {} lists {} runtimes; PublishLayerVersion takes at most {MAX_COMPATIBLE_RUNTIMES}",
                self.location(),
                unique.len()
            ))
            .with_help("keep the runtimes the layer is really used with"));
        }
        Ok(unique)
    }

    /// `handler = "index.wasm"`: what Lambda passes as `_HANDLER`, with CreateFunction's rule
    /// for `Handler` (no whitespace, 1 to 128 characters).
    pub(super) fn handler(&self, value: &Value) -> Result<String> {
        match value.as_str() {
            Some(text) if lambda_rules::check_handler(text).is_ok() => Ok(text.to_string()),
            _ => Err(Error::config(format!(
                "key `handler` in {} must be 1 to {} characters without whitespace (Lambda's rule for a function's Handler), found {}",
                self.location(),
                lambda_rules::MAX_HANDLER_CHARS,
                render(value)
            ))
            .with_help("name the file or entry point the runtime loads, e.g. `handler = \"index.handler\"`; without the key it is \"bootstrap\"")),
        }
    }
}
