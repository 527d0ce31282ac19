//! PURE: what the account holds (read through the SDK) + what it should hold → the actions, with
//! their reasons. `--dry-run` prints this plan; a deploy carries out exactly this plan, so the two
//! cannot disagree.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::desired::{Desired, DesiredFunction, FunctionCode};
use super::settings::{self, ObservedSettings};
use super::url::{UrlStep, plan_url};
use crate::error::{Error, ErrorKind, Result};
use crate::target::Arch;

/// One version of a layer in the account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerVersion {
    pub arn: String,
    /// Its number, the ARN's last field.
    pub version: i64,
    pub code_sha256: String,
    pub architectures: Vec<String>,
}

/// A function as GetFunction describes it, reduced to what this tool owns or checks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FunctionState {
    pub arn: String,
    pub package_type: String,
    pub architectures: Vec<String>,
    pub code_sha256: String,
    pub image_uri: Option<String>,
    pub runtime: Option<String>,
    pub handler: Option<String>,
    pub layers: Vec<String>,
    pub memory: Option<i32>,
    pub timeout: Option<i32>,
    pub env: BTreeMap<String, String>,
    /// Tags, ephemeral storage, Managed Instances, tenancy.
    pub settings: ObservedSettings,
}

/// What the account holds of what is to be deployed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    /// Per (layer name, arch): versions compatible with that architecture, newest first, whose
    /// content has the CodeSha256 wanted; only the first matters.
    pub layer_matches: BTreeMap<(String, Arch), LayerVersion>,
    /// Per function name: its state, or absent when it does not exist.
    pub functions: BTreeMap<String, FunctionState>,
    /// `(bucket, key)` objects already uploaded.
    pub objects: BTreeSet<(String, String)>,
}

/// A layer version a function is to get: one that exists, or the one this deploy publishes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum LayerRef {
    Existing(String),
    Published { layer: String, arch: Arch },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LayerAction {
    Reuse,
    Publish,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LayerStep {
    pub name: String,
    pub arch: Arch,
    pub action: LayerAction,
    /// The version reused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    pub code_sha256: String,
    pub reason: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FunctionAction {
    Create,
    UpdateCode,
    UpdateConfiguration,
    /// TagResource: tags added or changed (`tags_set`).
    Tag,
    /// UntagResource: the metadata's tags removed since the last deploy (`tags_removed`).
    Untag,
    /// The Function URL and its permission statements (`url`), after --publish/--alias.
    FunctionUrl,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FunctionStep {
    pub name: String,
    pub function_name: String,
    pub arch: Arch,
    /// In order; empty when the function is unchanged.
    pub actions: Vec<FunctionAction>,
    /// Why each action (the CodeSha256 and configuration differences), or why nothing.
    pub reasons: Vec<String>,
    pub code_sha256: String,
    /// The layer versions the function is to have, in merge order.
    pub layers: Vec<LayerRef>,
    /// The function's ARN when it exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// Tags TagResource sets (added or changed values).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tags_set: BTreeMap<String, String>,
    /// Tag keys UntagResource removes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags_removed: Vec<String>,
    /// The Function URL: what is done to it, and the URL when it exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<UrlStep>,
}

/// An S3 upload a publish or an update needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UploadStep {
    pub bucket: String,
    pub key: String,
    /// The artifact it carries (`name (arch)`).
    pub artifact: String,
    /// Already there: skipped.
    pub present: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeletionKind {
    Function,
    LayerVersion,
}

/// One deletion `--prune` makes (or, with `--dry-run`, would make).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Deletion {
    pub kind: DeletionKind,
    /// The function's name, or the layer's name.
    pub name: String,
    /// The layer version's number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    pub arn: String,
    pub reason: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DeployPlan {
    pub uploads: Vec<UploadStep>,
    pub layers: Vec<LayerStep>,
    pub functions: Vec<FunctionStep>,
    /// With `--prune`: what is deleted after the deploy (found by `prune.rs`).
    pub deletions: Vec<Deletion>,
}

impl DeployPlan {
    pub fn changes_nothing(&self) -> bool {
        self.uploads.iter().all(|u| u.present)
            && self.layers.iter().all(|l| l.action == LayerAction::Reuse)
            && self.functions.iter().all(|f| f.actions.is_empty())
            && self.deletions.is_empty()
    }

    /// The layer version ARNs this plan's functions keep or get attached (not to be pruned).
    pub fn attached_layer_arns(&self) -> BTreeSet<String> {
        self.layers
            .iter()
            .filter_map(|l| l.arn.clone())
            .chain(self.functions.iter().flat_map(|f| {
                f.layers.iter().filter_map(|l| match l {
                    LayerRef::Existing(arn) => Some(arn.clone()),
                    LayerRef::Published { .. } => None,
                })
            }))
            .collect()
    }
}

/// Decides every action. Refuses a function that exists with another architecture or package
/// type: changing those would replace what the account runs in a way a redeploy cannot undo.
pub fn plan(desired: &Desired, observed: &Observed) -> Result<DeployPlan> {
    let mut plan = DeployPlan::default();
    let mut uploads = BTreeMap::new();
    for layer in &desired.layers {
        let found = observed
            .layer_matches
            .get(&(layer.name.clone(), layer.arch));
        let (action, arn, reason) = match found {
            Some(version) => (
                LayerAction::Reuse,
                Some(version.arn.clone()),
                format!(
                    "{} has the same content (CodeSha256 {})",
                    version.arn, layer.code_sha256
                ),
            ),
            None => (
                LayerAction::Publish,
                None,
                format!(
                    "no {} version of `{}` has CodeSha256 {}",
                    layer.arch, layer.name, layer.code_sha256
                ),
            ),
        };
        if action == LayerAction::Publish
            && let Some(bucket) = &layer.code.s3_bucket
        {
            uploads.insert(
                (bucket.clone(), layer.code.s3_key()),
                format!("{} ({})", layer.name, layer.arch),
            );
        }
        plan.layers.push(LayerStep {
            name: layer.name.clone(),
            arch: layer.arch,
            action,
            arn,
            code_sha256: layer.code_sha256.clone(),
            reason,
        });
    }
    for function in &desired.functions {
        let workspace_layers = function.layers.iter().map(|name| {
            let step = plan
                .layers
                .iter()
                .find(|l| &l.name == name && l.arch == function.arch)
                .expect("desired::collect checked every attachment");
            match &step.arn {
                Some(arn) => LayerRef::Existing(arn.clone()),
                None => LayerRef::Published {
                    layer: name.clone(),
                    arch: function.arch,
                },
            }
        });
        // Layers attached by ARN are taken as they are, at their places in the merge order.
        let layers: Vec<LayerRef> = crate::manifest::merge_order(
            workspace_layers,
            function
                .arn_layers
                .iter()
                .map(|(position, arn)| (*position, LayerRef::Existing(arn.clone()))),
        );
        let step = function_step(
            function,
            observed.functions.get(&function.function_name),
            layers,
        )?;
        if step
            .actions
            .iter()
            .any(|a| *a != FunctionAction::UpdateConfiguration)
            && let FunctionCode::Zip(zip) = &function.code
            && let Some(bucket) = &zip.s3_bucket
        {
            uploads.insert(
                (bucket.clone(), zip.s3_key()),
                format!("{} ({})", function.artifact, function.arch),
            );
        }
        plan.functions.push(step);
    }
    plan.uploads = uploads
        .into_iter()
        .map(|((bucket, key), artifact)| UploadStep {
            present: observed.objects.contains(&(bucket.clone(), key.clone())),
            bucket,
            key,
            artifact,
        })
        .collect();
    Ok(plan)
}

fn function_step(
    function: &DesiredFunction,
    state: Option<&FunctionState>,
    layers: Vec<LayerRef>,
) -> Result<FunctionStep> {
    let mut step = FunctionStep {
        name: function.artifact.clone(),
        function_name: function.function_name.clone(),
        arch: function.arch,
        actions: Vec::new(),
        reasons: Vec::new(),
        code_sha256: function.code_sha256.clone(),
        layers,
        arn: state.map(|s| s.arn.clone()),
        tags_set: BTreeMap::new(),
        tags_removed: Vec::new(),
        url: None,
    };
    let Some(state) = state else {
        step.actions.push(FunctionAction::Create);
        step.reasons
            .push(format!("`{}` does not exist", function.function_name));
        step.url = plan_url(
            function.settings.url.as_ref(),
            None,
            false,
            &mut step.reasons,
        );
        if step.url.is_some() {
            step.actions.push(FunctionAction::FunctionUrl);
        }
        return Ok(step);
    };
    let image = matches!(function.code, FunctionCode::Image(_));
    let package_type = if image { "Image" } else { "Zip" };
    if !state.package_type.is_empty() && state.package_type != package_type {
        let article = if image { "an" } else { "a" };
        return Err(conflict(
            function,
            &format!("has PackageType {}", state.package_type),
            &format!("{article} {package_type} function"),
        ));
    }
    if !state.architectures.is_empty() && state.architectures != [function.arch.to_string()] {
        return Err(conflict(
            function,
            &format!("runs on {}", state.architectures.join(", ")),
            &format!("{}", function.arch),
        ));
    }
    match &function.code {
        FunctionCode::Zip(_) if state.code_sha256 != function.code_sha256 => {
            step.actions.push(FunctionAction::UpdateCode);
            step.reasons.push(format!(
                "code: CodeSha256 {} → {}",
                state.code_sha256, function.code_sha256
            ));
        }
        FunctionCode::Image(uri) if state.image_uri.as_deref() != Some(uri.as_str()) => {
            step.actions.push(FunctionAction::UpdateCode);
            step.reasons.push(format!(
                "code: image {} → {uri}",
                state.image_uri.as_deref().unwrap_or("(none)")
            ));
        }
        _ => {}
    }
    let mut differences = configuration_differences(function, state, &step.layers);
    differences.extend(settings::differences(&function.settings, &state.settings));
    if !differences.is_empty() {
        step.actions.push(FunctionAction::UpdateConfiguration);
        step.reasons.extend(differences);
    }
    let (set, removed) = settings::tag_changes(&function.settings.tags, &state.settings.tags);
    if !set.is_empty() {
        step.actions.push(FunctionAction::Tag);
        step.reasons.push(format!(
            "tags: {} set",
            set.keys()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        ));
        step.tags_set = set;
    }
    if !removed.is_empty() {
        step.actions.push(FunctionAction::Untag);
        step.reasons
            .push(format!("tags: {} removed", removed.join(", ")));
        step.tags_removed = removed;
    }
    let ours = state.settings.tags.contains_key(super::url::URL_TAG);
    step.url = plan_url(
        function.settings.url.as_ref(),
        state.settings.url.as_ref(),
        ours,
        &mut step.reasons,
    );
    if step.url.as_ref().is_some_and(UrlStep::changes_something) {
        step.actions.push(FunctionAction::FunctionUrl);
    }
    if step.actions.is_empty() {
        step.reasons.push(format!(
            "CodeSha256 {} and configuration as wanted",
            function.code_sha256
        ));
    }
    Ok(step)
}

/// The settings this tool owns that differ, one line each. Environment values are not shown
/// (only the names): they may be meant to stay out of logs.
fn configuration_differences(
    function: &DesiredFunction,
    state: &FunctionState,
    layers: &[LayerRef],
) -> Vec<String> {
    let mut lines = Vec::new();
    if let FunctionCode::Zip(_) = function.code {
        let runtime = function.runtime.name();
        if state.runtime.as_deref() != Some(runtime) {
            lines.push(format!(
                "runtime: {} → {runtime}",
                state.runtime.as_deref().unwrap_or("(none)")
            ));
        }
        if state.handler.as_deref() != Some(function.handler.as_str()) {
            lines.push(format!(
                "handler: {} → {}",
                state.handler.as_deref().unwrap_or("(none)"),
                function.handler
            ));
        }
        let wanted: Vec<String> = layers
            .iter()
            .map(|l| match l {
                LayerRef::Existing(arn) => arn.clone(),
                LayerRef::Published { layer, .. } => format!("{layer}:<new version>"),
            })
            .collect();
        if state.layers != wanted {
            lines.push(format!(
                "layers: [{}] → [{}]",
                state.layers.join(", "),
                wanted.join(", ")
            ));
        }
    }
    if let Some(memory) = function.memory
        && state.memory.map(i64::from) != Some(memory as i64)
    {
        lines.push(format!(
            "memory: {} → {memory} MB",
            state.memory.map_or("(none)".into(), |m| m.to_string())
        ));
    }
    if let Some(timeout) = function.timeout
        && state.timeout.map(i64::from) != Some(timeout as i64)
    {
        lines.push(format!(
            "timeout: {} → {timeout} s",
            state.timeout.map_or("(none)".into(), |t| t.to_string())
        ));
    }
    if let Some(env) = &function.env
        && &state.env != env
    {
        let changed: BTreeSet<&String> = env
            .iter()
            .filter(|(k, v)| state.env.get(*k) != Some(v))
            .map(|(k, _)| k)
            .chain(state.env.keys().filter(|k| !env.contains_key(*k)))
            .collect();
        let names: Vec<&str> = changed.iter().map(|k| k.as_str()).collect();
        lines.push(format!("environment: {} differ", names.join(", ")));
    }
    lines
}

fn conflict(function: &DesiredFunction, found: &str, wanted: &str) -> Error {
    Error::new(
        ErrorKind::Aws,
        format!(
            "function `{}` exists in the account and {found}, but `{}` is {wanted}",
            function.function_name, function.artifact
        ),
    )
    .with_note("deploy does not change a function's architecture or package type: what runs there would be replaced in a way a redeploy could not undo")
    .with_help("delete the function first, or deploy under another name with `function_name`")
}

#[cfg(test)]
mod tests;
