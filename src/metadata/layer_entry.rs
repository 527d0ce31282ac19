//! `layers` entries: a workspace crate's name, a Lambda layer version ARN, or a table
//! `{ arn = "...", zip = "path.zip" }` naming a local copy of that layer's content (which verify
//! mounts at `/opt` and the size check counts).

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use super::{Context, Level, describe, render};
use crate::error::{Error, Result};

/// One entry of `layers = [...]`, in the order written (which is Lambda's merge order).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum LayerEntry {
    /// A workspace crate whose role is layer, runtime or extension.
    Crate(String),
    /// A layer published elsewhere, attached by its version ARN.
    Arn(ArnLayer),
}

impl LayerEntry {
    /// Shorthand for tests and callers that only attach crates.
    pub fn krate(name: &str) -> LayerEntry {
        LayerEntry::Crate(name.to_string())
    }
}

/// A layer version attached by ARN.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ArnLayer {
    /// `arn:aws:lambda:<region>:<account>:layer:<name>:<version>`.
    pub arn: String,
    /// A local ZIP of the layer's content, resolved against the directory of the manifest that
    /// names it.
    pub zip: Option<PathBuf>,
}

/// What a layer version ARN looks like, for messages.
pub const ARN_SHAPE: &str = "arn:aws:lambda:<region>:<account>:layer:<name>:<version>";

impl Context<'_> {
    pub(super) fn layer_entries(&self, value: &Value) -> Result<Vec<LayerEntry>> {
        let items = value.as_array().ok_or_else(|| {
            Error::config(format!(
                "key `layers` in {} must be an array, found {}",
                self.location(),
                render(value)
            ))
            .with_help(
                "write it as `layers = [\"tools\", \"arn:aws:lambda:...:layer:name:1\", { arn = \"...\", zip = \"layer.zip\" }]`",
            )
        })?;
        items.iter().map(|item| self.layer_entry(item)).collect()
    }

    fn layer_entry(&self, item: &Value) -> Result<LayerEntry> {
        match item {
            Value::String(text) if text.starts_with("arn:") => {
                self.check_arn(text)?;
                Ok(LayerEntry::Arn(ArnLayer {
                    arn: text.clone(),
                    zip: None,
                }))
            }
            Value::String(name) => Ok(LayerEntry::Crate(name.clone())),
            Value::Object(map) => {
                for key in map.keys() {
                    if key != "arn" && key != "zip" {
                        return Err(Error::config(format!(
                            "unknown key `{key}` in a `layers` entry of {}",
                            self.location()
                        ))
                        .with_note("expected `arn` (required) and `zip` (optional)")
                        .with_help("write the entry as `{ arn = \"arn:aws:lambda:...\", zip = \"layer.zip\" }`"));
                    }
                }
                let arn = match map.get("arn") {
                    Some(Value::String(arn)) => arn.clone(),
                    other => {
                        return Err(Error::config(format!(
                            "a `layers` entry of {} needs `arn`, a layer version ARN, found {}",
                            self.location(),
                            other.map(render).unwrap_or_else(|| "none".to_string())
                        ))
                        .with_help(format!("write `{{ arn = \"{ARN_SHAPE}\", zip = \"layer.zip\" }}`")));
                    }
                };
                self.check_arn(&arn)?;
                let zip = match map.get("zip") {
                    None => None,
                    Some(Value::String(path)) if !path.trim().is_empty() => {
                        let dir = self.manifest_path.parent().unwrap_or(std::path::Path::new(""));
                        Some(dir.join(path))
                    }
                    Some(other) => {
                        return Err(Error::config(format!(
                            "key `zip` of layer `{arn}` in {} must be a path to a ZIP file, found {}",
                            self.location(),
                            render(other)
                        ))
                        .with_help("give the ZIP's path relative to this Cargo.toml, e.g. `zip = \"layers/adapter.zip\"`, or remove `zip`"));
                    }
                };
                Ok(LayerEntry::Arn(ArnLayer { arn, zip }))
            }
            other => Err(Error::config(format!(
                "a `layers` entry of {} must be a crate name, a layer version ARN or a table `{{ arn, zip }}`, found {} {}",
                self.location(),
                describe(other),
                render(other)
            ))
            .with_help("write crate names and ARNs as strings: `layers = [\"tools\", \"arn:aws:lambda:...\"]`")),
        }
    }

    fn check_arn(&self, arn: &str) -> Result<()> {
        match arn_problem(arn) {
            None => Ok(()),
            Some(problem) => Err(Error::config(format!(
                "`layers` in {} holds \"{arn}\", which is not a Lambda layer version ARN: {problem}",
                self.location()
            ))
            .with_note(format!("expected {ARN_SHAPE}"))
            .with_help(
                "copy the layer version's ARN (with its version number) from the layer's publisher, e.g. `aws lambda list-layer-versions --layer-name NAME`",
            )),
        }
    }
}

/// cargo-lambda's `layers` of `[package.metadata.lambda.deploy]` (`header`): a list of layer
/// version ARNs, validated as lambda-pack's own ARN entries are.
pub fn foreign_layers(
    value: &Value,
    header: &str,
    manifest_path: &Path,
) -> Result<Vec<LayerEntry>> {
    let ctx = Context {
        manifest_path,
        level: Level::Foreign(header),
    };
    let entries = ctx.layer_entries(value)?;
    if let Some(LayerEntry::Crate(name)) =
        entries.iter().find(|e| matches!(e, LayerEntry::Crate(_)))
    {
        return Err(Error::config(format!(
            "`layers` in {} (cargo-lambda) holds \"{name}\", which is not a layer version ARN",
            ctx.location()
        ))
        .with_note(format!("expected {ARN_SHAPE}"))
        .with_help("cargo-lambda attaches layers by ARN; to attach a workspace crate, list it in `layers` of [package.metadata.lambda-pack]"));
    }
    Ok(entries)
}

/// What is wrong with `arn` as a layer version ARN, if anything.
pub fn arn_problem(arn: &str) -> Option<String> {
    let parts: Vec<&str> = arn.split(':').collect();
    if parts.len() != 8 {
        return Some(format!(
            "it has {} `:`-separated parts, a layer version ARN has 8",
            parts.len()
        ));
    }
    let [_, partition, service, region, account, kind, name, version] = parts[..] else {
        unreachable!("eight parts")
    };
    if !matches!(partition, "aws" | "aws-cn" | "aws-us-gov") {
        return Some(format!(
            "the partition `{partition}` is not `aws`, `aws-cn` or `aws-us-gov`"
        ));
    }
    if service != "lambda" {
        return Some(format!("the service is `{service}`, not `lambda`"));
    }
    let region_ok = !region.is_empty()
        && region.split('-').all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        && region.contains('-');
    if !region_ok {
        return Some(format!("`{region}` is not a region such as `us-east-1`"));
    }
    if account.len() != 12 || !account.chars().all(|c| c.is_ascii_digit()) {
        return Some(format!("`{account}` is not a 12-digit account id"));
    }
    if kind != "layer" {
        return Some(format!("it names a `{kind}`, not a `layer`"));
    }
    if name.is_empty()
        || name.len() > 140
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Some(format!(
            "`{name}` is not a layer name (1-140 characters of a-z A-Z 0-9 - _)"
        ));
    }
    if version.is_empty() || !version.chars().all(|c| c.is_ascii_digit()) || version == "0" {
        return Some(format!(
            "`{version}` is not a version number (a layer ARN without a version names no content)"
        ));
    }
    None
}
