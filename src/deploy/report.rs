//! What a deploy did (or, with `--dry-run`, would do): the human summary and the JSON document.
//! Rendering only; the decisions are the plan's.

use std::fmt::Write;

use serde::Serialize;

use super::plan::{Deletion, DeletionKind, DeployPlan, FunctionAction, FunctionStep, LayerAction};
use crate::target::Arch;

/// A layer as this run left it.
#[derive(Clone, Debug, Serialize)]
pub struct LayerDone {
    pub name: String,
    pub arch: Arch,
    pub action: LayerAction,
    pub arn: String,
}

/// A function as this run left it.
#[derive(Clone, Debug, Serialize)]
pub struct FunctionDone {
    pub name: String,
    pub function_name: String,
    pub arch: Arch,
    /// What was done, in order; empty when it was already as wanted.
    pub actions: Vec<FunctionAction>,
    pub arn: Option<String>,
    pub code_sha256: String,
    /// The layer version ARNs it has, in merge order.
    pub layers: Vec<String>,
    /// With --publish: the version published.
    pub version: Option<String>,
    /// With --alias: the alias now pointing at `version`.
    pub alias: Option<String>,
    /// The Function URL (`function_url`), when the function has one this tool manages.
    pub function_url: Option<String>,
}

/// Everything done so far; on a failure, what the next run need not repeat.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Done {
    pub uploaded: Vec<String>,
    pub layers: Vec<LayerDone>,
    pub functions: Vec<FunctionDone>,
    /// With `--prune`: what was deleted.
    pub deleted: Vec<Deletion>,
}

impl Done {
    fn entry(&mut self, step: &FunctionStep, layers: &[String]) -> &mut FunctionDone {
        if let Some(index) = self
            .functions
            .iter()
            .position(|f| f.function_name == step.function_name)
        {
            return &mut self.functions[index];
        }
        self.functions.push(FunctionDone {
            name: step.name.clone(),
            function_name: step.function_name.clone(),
            arch: step.arch,
            actions: Vec::new(),
            arn: step.arn.clone(),
            code_sha256: step.code_sha256.clone(),
            layers: layers.to_vec(),
            version: None,
            alias: None,
            function_url: None,
        });
        self.functions.last_mut().expect("just pushed")
    }

    pub fn record_function(
        &mut self,
        step: &FunctionStep,
        action: FunctionAction,
        arn: Option<String>,
        layers: &[String],
    ) {
        let entry = self.entry(step, layers);
        entry.actions.push(action);
        if arn.is_some() {
            entry.arn = arn;
        }
    }

    pub fn record_function_unchanged(&mut self, step: &FunctionStep, layers: &[String]) {
        self.entry(step, layers);
    }

    pub fn set_version(&mut self, function_name: &str, version: String, alias: Option<&str>) {
        if let Some(entry) = self
            .functions
            .iter_mut()
            .find(|f| f.function_name == function_name)
        {
            entry.version = Some(version);
            entry.alias = alias.map(str::to_string);
        }
    }

    pub fn set_url(&mut self, function_name: &str, url: Option<String>) {
        if let Some(entry) = self
            .functions
            .iter_mut()
            .find(|f| f.function_name == function_name)
        {
            entry.function_url = url;
        }
    }

    /// One line per thing done, for a failure's notes: what the next run will find done.
    pub fn lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .uploaded
            .iter()
            .map(|u| format!("uploaded {u}"))
            .collect();
        for layer in &self.layers {
            if layer.action == LayerAction::Publish {
                lines.push(format!("published {}", layer.arn));
            }
        }
        for function in &self.functions {
            for action in &function.actions {
                lines.push(format!("{} {}", verb(*action), function.function_name));
            }
        }
        for deletion in &self.deleted {
            lines.push(format!("deleted {}", deletion.arn));
        }
        lines
    }
}

/// `--message-format json` of a deploy.
#[derive(Serialize)]
pub struct DeployDocument<'a> {
    pub dry_run: bool,
    pub region: &'a str,
    #[serde(flatten)]
    pub done: &'a Done,
}

/// `--message-format json` of `--dry-run`: the plan itself.
#[derive(Serialize)]
pub struct PlanDocument<'a> {
    pub dry_run: bool,
    pub region: &'a str,
    #[serde(flatten)]
    pub plan: &'a DeployPlan,
}

fn verb(action: FunctionAction) -> &'static str {
    match action {
        FunctionAction::Create => "created",
        FunctionAction::UpdateCode => "updated the code of",
        FunctionAction::UpdateConfiguration => "updated the configuration of",
        FunctionAction::Tag => "tagged",
        FunctionAction::Untag => "untagged",
        FunctionAction::FunctionUrl => "changed the function URL of",
    }
}

/// The dry run's listing: every step with its reasons.
pub fn render_plan(plan: &DeployPlan, region: &str) -> String {
    let mut text = format!("deploy plan for {region} (dry run: nothing is changed)\n");
    for upload in &plan.uploads {
        let what = if upload.present { "present" } else { "upload" };
        let _ = writeln!(
            text,
            "  {what:<22} s3://{}/{} ({})",
            upload.bucket, upload.key, upload.artifact
        );
    }
    for layer in &plan.layers {
        let what = match layer.action {
            LayerAction::Reuse => "reuse layer",
            LayerAction::Publish => "publish layer",
        };
        let _ = writeln!(
            text,
            "  {what:<22} {} ({}): {}",
            layer.name, layer.arch, layer.reason
        );
    }
    for function in &plan.functions {
        let actions: Vec<&str> = function.actions.iter().map(|a| action_name(*a)).collect();
        let what = if actions.is_empty() {
            "unchanged".to_string()
        } else {
            actions.join(" + ")
        };
        let _ = writeln!(
            text,
            "  {what:<22} {} ({})",
            function.function_name, function.arch
        );
        for reason in &function.reasons {
            let _ = writeln!(text, "  {:<22}   {reason}", "");
        }
    }
    for deletion in &plan.deletions {
        let _ = writeln!(
            text,
            "  {:<22} {}: {}",
            deletion_name(deletion),
            deletion.arn,
            deletion.reason
        );
    }
    text
}

fn deletion_name(deletion: &Deletion) -> &'static str {
    match deletion.kind {
        DeletionKind::Function => "delete function",
        DeletionKind::LayerVersion => "delete layer version",
    }
}

pub fn action_name(action: FunctionAction) -> &'static str {
    match action {
        FunctionAction::Create => "create",
        FunctionAction::UpdateCode => "update-code",
        FunctionAction::UpdateConfiguration => "update-configuration",
        FunctionAction::Tag => "tag",
        FunctionAction::Untag => "untag",
        FunctionAction::FunctionUrl => "function-url",
    }
}

/// The summary after a deploy: created / updated / unchanged, with ARNs.
pub fn render_done(done: &Done, region: &str) -> String {
    let mut text = format!("deployed to {region}\n");
    for layer in &done.layers {
        let what = match layer.action {
            LayerAction::Reuse => "reused",
            LayerAction::Publish => "published",
        };
        let _ = writeln!(
            text,
            "  layer    {what:<10} {} ({}) {}",
            layer.name, layer.arch, layer.arn
        );
    }
    for function in &done.functions {
        let what = if function.actions.contains(&FunctionAction::Create) {
            "created"
        } else if function.actions.is_empty() {
            "unchanged"
        } else {
            "updated"
        };
        let _ = writeln!(
            text,
            "  function {what:<10} {} ({}) {}",
            function.function_name,
            function.arch,
            function.arn.as_deref().unwrap_or_default()
        );
        if let Some(version) = &function.version {
            let alias = function
                .alias
                .as_ref()
                .map(|a| format!(", alias {a}"))
                .unwrap_or_default();
            let _ = writeln!(text, "  {:<20} version {version}{alias}", "");
        }
        if let Some(url) = &function.function_url {
            let _ = writeln!(text, "  {:<20} URL {url}", "");
        }
    }
    for deletion in &done.deleted {
        let _ = writeln!(text, "  deleted  {}", deletion.arn);
    }
    text
}
