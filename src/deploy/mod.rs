//! `cargo lambda-pack deploy`: the manifest's layers, extensions and functions into an AWS account
//! in one idempotent run.
//!
//! Pipeline: the manifest and the metadata's deploy keys → [`desired::Desired`] (what the account
//! should hold; every ZIP hashed again) → [`checks::check`] (every name, handler, environment,
//! memory and timeout against Lambda's rules, as the pack checks them) → the account's state read through the SDK
//! ([`aws::observe`]) → the PURE [`plan::plan`] (every publish, create and update, with its
//! reasons) → printed with `--dry-run`, else carried out by [`execute::carry_out`] → the report.
//! Re-running after a failure part way completes the rest: every decision is made again from the
//! account as it now is.

mod aws;
mod checks;
mod desired;
mod execute;
mod limits;
mod plan;
mod prune;
mod publish;
mod report;
mod settings;
mod url;

use std::path::Path;

use crate::cli::{DeployArgs, MessageFormat};
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{MANIFEST_FILE, Manifest, ReadError, SCHEMA_VERSION};
use crate::output::{Shell, stdout_error};
use crate::settings::Options;
use crate::workspace::Workspace;

pub fn run(args: &DeployArgs, options: &Options, shell: &Shell) -> Result<()> {
    // The workspace's metadata holds the deploy keys; its root tells this workspace's entries
    // apart in an output directory shared with others.
    let workspace = Workspace::load(&options.cargo, options.manifest_path.as_deref())?;
    let out_dir = options.out_dir(&workspace.target_dir);
    // One deploy of this output directory at a time: a second one waits, then finds the first's
    // work done (every decision is made from the account as it then is). Held to the end.
    let _deploying = crate::emit::lock_deploys(&out_dir, || {
        shell.status(
            "Blocking",
            format!(
                "waiting for another deploy of {} to finish",
                out_dir.display()
            ),
        )
    })?;
    // Read the manifest and the ZIPs while no pack is rewriting them; held to the end.
    let _lock = crate::emit::lock_out_dir_shared(&out_dir, || {
        shell.status(
            "Blocking",
            format!("waiting for a pack to finish in {}", out_dir.display()),
        )
    })?;
    let manifest_path = out_dir.join(MANIFEST_FILE);
    let manifest = read_manifest(&manifest_path)?;
    let desired = desired::collect(
        &manifest,
        &manifest_path,
        &out_dir,
        &workspace,
        args,
        options,
    )?;
    // The manifest is not trusted: what Lambda would refuse is refused here, before any call.
    checks::check(&desired, &manifest_path)?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| Error::internal(format!("could not start the async runtime: {err}")))?;
    runtime.block_on(async {
        let aws = aws::connect().await?;
        shell.status(
            "Reading",
            format!(
                "{} layer(s) and {} function(s) in {}",
                desired.layers.len(),
                desired.functions.len(),
                aws.region
            ),
        );
        // `-j N`: functions read and deployed at once (with --build, also cargo's jobs).
        let jobs = options.jobs.map_or(DEFAULT_JOBS, |j| j as usize);
        let observed = aws::observe(&aws, &desired, jobs).await?;
        let mut plan = plan::plan(&desired, &observed)?;
        if args.prune {
            plan.deletions = prune::find(
                &aws,
                &desired,
                args.prune_layers,
                &plan.attached_layer_arns(),
            )
            .await?;
        }
        let json = options.message_format == MessageFormat::Json;
        if args.dry_run {
            // The dry run still shows the whole plan; the missing role is what a deploy would stop at.
            if let Err(error) =
                check_roles(&plan, &desired).and(check_runtimes(&plan, &desired, options))
            {
                shell.warn(format!(
                    "{}; {}",
                    error.message,
                    error.help.unwrap_or_default()
                ));
            }
            if json {
                let document = report::PlanDocument {
                    dry_run: true,
                    region: &aws.region,
                    plan: &plan,
                };
                shell
                    .print_data(&to_json(&document))
                    .map_err(stdout_error)?;
            } else {
                shell.print_block(&report::render_plan(&plan, &aws.region));
            }
            return Ok(());
        }
        check_roles(&plan, &desired)?;
        check_runtimes(&plan, &desired, options)?;
        let finish = execute::Finish {
            publish: args.publish,
            alias: args.alias.as_deref(),
        };
        let mut done = report::Done::default();
        let result =
            execute::carry_out(&aws, &plan, &desired, &finish, shell, jobs, &mut done).await;
        if let Err(error) = result {
            return Err(partial_failure(error, &done));
        }
        // Deletions last: what is deleted is no longer listed, so nothing deployed needs it.
        if let Err(error) = prune::delete(&aws, &plan.deletions, shell, &mut done.deleted).await {
            return Err(partial_failure(error, &done));
        }
        if json {
            let document = report::DeployDocument {
                dry_run: false,
                region: &aws.region,
                done: &done,
            };
            shell
                .print_data(&to_json(&document))
                .map_err(stdout_error)?;
        } else {
            shell.print_block(&report::render_done(&done, &aws.region));
        }
        let summary = if plan.changes_nothing() {
            "nothing to change".to_string()
        } else {
            format!(
                "{} layer version(s) published, {} function(s) created or updated, {} deleted",
                done.layers
                    .iter()
                    .filter(|l| l.action == plan::LayerAction::Publish)
                    .count(),
                done.functions
                    .iter()
                    .filter(|f| !f.actions.is_empty())
                    .count(),
                done.deleted.len()
            )
        };
        shell.status("Finished", format!("deploy to {}: {summary}", aws.region));
        Ok(())
    })
}

/// Functions deployed (and read) at once without `-j`.
pub const DEFAULT_JOBS: usize = 8;

/// Creating a function needs a role; checked for every function before anything changes.
fn check_roles(plan: &plan::DeployPlan, desired: &desired::Desired) -> Result<()> {
    let missing: Vec<&str> = plan
        .functions
        .iter()
        .filter(|f| f.actions.contains(&plan::FunctionAction::Create))
        .filter(|f| {
            desired
                .functions
                .iter()
                .any(|d| d.function_name == f.function_name && d.iam_role.is_none())
        })
        .map(|f| f.function_name.as_str())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::config(format!(
        "function(s) {} do not exist yet, and creating a function needs an execution role",
        missing
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    ))
    .with_note("nothing was changed")
    .with_help(
        "pass --iam-role arn:aws:iam::<account>:role/<name>, or set `iam_role` in the metadata",
    ))
}

/// Creating a function on `provided.al2` is refused unless `--allow deprecated-runtime`: its
/// support has ended, and Lambda stops accepting new functions on it. Existing ones are updated.
fn check_runtimes(
    plan: &plan::DeployPlan,
    desired: &desired::Desired,
    options: &Options,
) -> Result<()> {
    use crate::inspect::codes::DEPRECATED_RUNTIME;
    if options.allow.iter().any(|a| a == DEPRECATED_RUNTIME) {
        return Ok(());
    }
    let old: Vec<&str> = plan
        .functions
        .iter()
        .filter(|f| f.actions.contains(&plan::FunctionAction::Create))
        .filter(|f| {
            desired.functions.iter().any(|d| {
                d.function_name == f.function_name
                    && d.runtime == crate::target::Runtime::ProvidedAl2
                    && matches!(d.code, desired::FunctionCode::Zip(_))
            })
        })
        .map(|f| f.function_name.as_str())
        .collect();
    if old.is_empty() {
        return Ok(());
    }
    let runtime = crate::target::Runtime::ProvidedAl2;
    let Some(deprecation) = runtime.deprecation() else {
        return Ok(());
    };
    Err(Error::config(format!(
        "function(s) {} would be created on {runtime}, which Lambda deprecated on {}",
        old.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "),
        deprecation.deprecated,
    ))
    .with_note(format!(
        "Lambda blocks creating functions on {runtime} from {} and updating them from {}; Amazon Linux 2 itself ended on 2026-06-30",
        deprecation.create_blocked, deprecation.update_blocked
    ))
    .with_note("nothing was changed")
    .with_help("pack for provided.al2023 (--runtime provided.al2023), or pass --allow deprecated-runtime to create it all the same"))
}

/// A failure part way: the error, with what was already done (the next run will find it done
/// and complete the rest).
fn partial_failure(mut error: Error, done: &report::Done) -> Error {
    let lines = done.lines();
    if lines.is_empty() {
        error.notes.push("nothing was changed".into());
    } else {
        for line in lines {
            error.notes.push(format!("done before the failure: {line}"));
        }
        error.notes.push(
            "deploy is idempotent: running it again completes the rest without repeating this"
                .into(),
        );
    }
    error
}

fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).expect("the deploy report always serializes")
}

fn read_manifest(path: &Path) -> Result<Manifest> {
    let manifest = Manifest::read(path).map_err(|err| match err {
        ReadError::Missing => Error::config(format!("no manifest at `{}`", path.display()))
            .with_help("run `cargo lambda-pack` first, or pass --build (and --out-dir if the artifacts were written elsewhere)"),
        ReadError::Io(err) => Error::config(format!(
            "could not read manifest `{}`: {err}",
            path.display()
        ))
        .with_help("check the file's permissions, or pack again (--build)"),
        ReadError::Invalid(err) => Error::config(format!(
            "`{}` is not a lambda-pack manifest: {err}",
            path.display()
        ))
        .with_help("regenerate it with `cargo lambda-pack`, or pass --build"),
    })?;
    if manifest.schema_version > SCHEMA_VERSION {
        return Err(Error::new(
            ErrorKind::Config,
            format!(
                "`{}` has schema version {}; this cargo-lambda-pack reads version {SCHEMA_VERSION}",
                path.display(),
                manifest.schema_version
            ),
        )
        .with_help("update cargo-lambda-pack, or pack again with this version (--build)"));
    }
    Ok(manifest)
}
