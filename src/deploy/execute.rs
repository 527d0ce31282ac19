//! Carries out a [`DeployPlan`], step by step, and records what it did. It decides nothing: the
//! uploads, publishes, creates and updates are the plan's. Between calls on a function it waits
//! with the SDK's waiters for `LastUpdateStatus: Successful`; an update refused because another
//! is in progress (`ResourceConflictException`) is retried after waiting again.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_lambda::client::Waiters;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{self as lambda, Architecture, PackageType};

use super::aws::{Aws, api_error, error_chain};
use super::desired::{Desired, DesiredFunction, FunctionCode, ZipCode};
use super::plan::{DeployPlan, FunctionAction, LayerAction, LayerRef};
use super::report::{Done, LayerDone};
use super::settings;
use crate::error::{Error, ErrorKind, Result};
use crate::output::Shell;
use crate::target::Arch;

/// How long a function may take to become active or finish an update.
const WAIT: Duration = Duration::from_secs(300);
/// Attempts of a call refused with ResourceConflictException (an update in progress).
const CONFLICT_ATTEMPTS: usize = 5;

/// Options that act after the plan's steps.
pub struct Finish<'a> {
    pub publish: bool,
    pub alias: Option<&'a str>,
}

/// Carries out `plan`; on failure returns what was done with the error.
pub async fn carry_out(
    aws: &Aws,
    plan: &DeployPlan,
    desired: &Desired,
    finish: &Finish<'_>,
    shell: &Shell,
    jobs: usize,
    done: &mut Done,
) -> Result<()> {
    let mut published: BTreeMap<(String, Arch), String> = BTreeMap::new();
    for step in &plan.layers {
        let mut action = step.action;
        let arn = match step.action {
            LayerAction::Reuse => {
                shell.status(
                    "Reusing",
                    format!(
                        "layer {} ({}) {}",
                        step.name,
                        step.arch,
                        step.arn.as_deref().unwrap_or_default()
                    ),
                );
                step.arn.clone().unwrap_or_default()
            }
            LayerAction::Publish => {
                let layer = desired
                    .layers
                    .iter()
                    .find(|l| l.name == step.name && l.arch == step.arch)
                    .expect("the plan's layers come from the desired ones");
                upload_if_planned(aws, plan, &layer.code, shell, done).await?;
                shell.status("Publishing", format!("layer {} ({})", step.name, step.arch));
                let content = match &layer.code.s3_bucket {
                    Some(bucket) => lambda::LayerVersionContentInput::builder()
                        .s3_bucket(bucket)
                        .s3_key(layer.code.s3_key())
                        .build(),
                    None => lambda::LayerVersionContentInput::builder()
                        .zip_file(read_zip(&layer.code)?)
                        .build(),
                };
                let published = super::publish::publish_layer(aws, layer, content, shell).await?;
                if published.another_deploys {
                    // Another deploy's version is the one kept (said by `publish_layer`).
                    action = LayerAction::Reuse;
                }
                published.arn
            }
        };
        published.insert((step.name.clone(), step.arch), arn.clone());
        done.layers.push(LayerDone {
            name: step.name.clone(),
            arch: step.arch,
            action,
            arn,
        });
    }
    // Every upload a function needs, first, one at a time (two functions may share an object).
    for step in &plan.functions {
        let function = desired
            .functions
            .iter()
            .find(|f| f.function_name == step.function_name)
            .expect("the plan's functions come from the desired ones");
        if let FunctionCode::Zip(zip) = &function.code
            && step
                .actions
                .iter()
                .any(|a| *a != FunctionAction::UpdateConfiguration)
        {
            upload_if_planned(aws, plan, zip, shell, done).await?;
        }
    }
    // The functions are independent of one another: `jobs` at a time. `buffered` yields the
    // results in the plan's order, so the report's order does not depend on which finished first;
    // every function started is carried to its end before a failure is returned.
    use futures_util::stream::{self, StreamExt};
    let published = &published;
    let results: Vec<(Done, Result<()>)> = stream::iter(&plan.functions)
        .map(|step| async move {
            let mut part = Done::default();
            let result =
                deploy_function(aws, step, desired, published, finish, shell, &mut part).await;
            (part, result)
        })
        .buffered(jobs.max(1))
        .collect()
        .await;
    let mut first_error = None;
    for (part, result) in results {
        done.functions.extend(part.functions);
        if let Err(error) = result {
            first_error.get_or_insert(error);
        }
    }
    match first_error {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// Creates or updates one function, then publishes, aliases and configures its URL.
async fn deploy_function(
    aws: &Aws,
    step: &super::plan::FunctionStep,
    desired: &Desired,
    published: &BTreeMap<(String, Arch), String>,
    finish: &Finish<'_>,
    shell: &Shell,
    done: &mut Done,
) -> Result<()> {
    let function = desired
        .functions
        .iter()
        .find(|f| f.function_name == step.function_name)
        .expect("the plan's functions come from the desired ones");
    let layers: Vec<String> = step
        .layers
        .iter()
        .map(|l| match l {
            LayerRef::Existing(arn) => arn.clone(),
            LayerRef::Published { layer, arch } => published[&(layer.clone(), *arch)].clone(),
        })
        .collect();
    let mut arn = step.arn.clone();
    for action in &step.actions {
        match action {
            // After the version and alias it may belong to exist: below.
            FunctionAction::FunctionUrl => {
                done.record_function_unchanged(step, &layers);
                continue;
            }
            FunctionAction::Create => {
                shell.status(
                    "Creating",
                    format!("function {} ({})", function.function_name, function.arch),
                );
                arn = Some(create(aws, function, &layers).await?);
                wait_active(aws, &function.function_name).await?;
            }
            FunctionAction::UpdateCode => {
                shell.status(
                    "Updating",
                    format!("code of {} ({})", function.function_name, function.arch),
                );
                retry_on_conflict(aws, &function.function_name, || update_code(aws, function))
                    .await?;
                wait_updated(aws, &function.function_name).await?;
            }
            FunctionAction::Tag => {
                shell.status(
                    "Tagging",
                    format!(
                        "{} ({}): {}",
                        function.function_name,
                        function.arch,
                        step.tags_set.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                );
                let resource = arn.clone().unwrap_or_default();
                aws.lambda
                    .tag_resource()
                    .resource(&resource)
                    .set_tags(Some(step.tags_set.clone().into_iter().collect()))
                    .send()
                    .await
                    .map_err(|err| api_error("TagResource", &function.function_name, err))?;
            }
            FunctionAction::Untag => {
                shell.status(
                    "Untagging",
                    format!(
                        "{} ({}): {}",
                        function.function_name,
                        function.arch,
                        step.tags_removed.join(", ")
                    ),
                );
                let resource = arn.clone().unwrap_or_default();
                aws.lambda
                    .untag_resource()
                    .resource(&resource)
                    .set_tag_keys(Some(step.tags_removed.clone()))
                    .send()
                    .await
                    .map_err(|err| api_error("UntagResource", &function.function_name, err))?;
            }
            FunctionAction::UpdateConfiguration => {
                shell.status(
                    "Updating",
                    format!(
                        "configuration of {} ({})",
                        function.function_name, function.arch
                    ),
                );
                retry_on_conflict(aws, &function.function_name, || {
                    update_configuration(aws, function, &layers)
                })
                .await?;
                wait_updated(aws, &function.function_name).await?;
            }
        }
        done.record_function(step, *action, arn.clone(), &layers);
    }
    if step.actions.is_empty() {
        shell.status(
            "Unchanged",
            format!("function {} ({})", function.function_name, function.arch),
        );
        done.record_function_unchanged(step, &layers);
    }
    if finish.publish || finish.alias.is_some() {
        let version = retry_on_conflict(aws, &function.function_name, || async {
            let output = aws
                .lambda
                .publish_version()
                .function_name(&function.function_name)
                .send()
                .await
                .map_err(|err| api_error("PublishVersion", &function.function_name, err))?;
            Ok(output.version().unwrap_or_default().to_string())
        })
        .await?;
        shell.status(
            "Published",
            format!("{} version {version}", function.function_name),
        );
        if let Some(alias) = finish.alias {
            point_alias(aws, &function.function_name, alias, &version).await?;
            shell.status(
                "Aliased",
                format!("{}:{alias} → version {version}", function.function_name),
            );
        }
        done.set_version(&function.function_name, version, finish.alias);
    }
    if let Some(url_step) = &step.url {
        let url = if url_step.changes_something() {
            shell.status(
                "Configuring",
                format!(
                    "function URL of {} ({})",
                    function.function_name, function.arch
                ),
            );
            let url = super::url::apply(
                aws,
                &function.function_name,
                function.settings.url.as_ref(),
                url_step,
            )
            .await?;
            done.record_function(step, FunctionAction::FunctionUrl, arn.clone(), &layers);
            url
        } else {
            url_step.url.clone()
        };
        if let Some(url) = &url {
            shell.status("URL", format!("{} {url}", function.function_name));
        }
        done.set_url(&function.function_name, url);
    }
    Ok(())
}

/// Uploads `zip` to its bucket just before the step that needs it, unless the plan found it
/// there (or this run already uploaded it).
async fn upload_if_planned(
    aws: &Aws,
    plan: &DeployPlan,
    zip: &ZipCode,
    shell: &Shell,
    done: &mut Done,
) -> Result<()> {
    let Some(bucket) = &zip.s3_bucket else {
        return Ok(());
    };
    let key = zip.s3_key();
    let url = format!("s3://{bucket}/{key}");
    let Some(upload) = plan
        .uploads
        .iter()
        .find(|u| &u.bucket == bucket && u.key == key)
    else {
        return Ok(());
    };
    if upload.present || done.uploaded.contains(&url) {
        return Ok(());
    }
    shell.status("Uploading", format!("{} to {url}", upload.artifact));
    let body = aws_sdk_s3::primitives::ByteStream::from(read_checked(zip)?);
    aws.s3
        .put_object()
        .bucket(bucket)
        .key(&key)
        .body(body)
        .send()
        .await
        .map_err(|err| api_error("s3:PutObject", &url, err))?;
    done.uploaded.push(url);
    Ok(())
}

fn read_zip(code: &ZipCode) -> Result<Blob> {
    read_checked(code).map(Blob::new)
}

/// The ZIP's bytes, which are sent as read: hashed again so that a file replaced since the plan
/// was made (which compared the hash computed then) is refused rather than sent.
fn read_checked(code: &ZipCode) -> Result<Vec<u8>> {
    use sha2::Digest;
    let bytes = std::fs::read(&code.path).map_err(|err| Error::read(&code.path, &err))?;
    let sha256 = crate::files::hex(&sha2::Sha256::digest(&bytes));
    if sha256 != code.sha256 {
        return Err(Error::config(format!(
            "`{}` changed during the deploy: its SHA-256 is now {sha256}, it was {} when the plan was made",
            code.path.display(),
            code.sha256
        ))
        .with_help("let the pack that rewrites it finish, then deploy again"));
    }
    Ok(bytes)
}

fn architecture(arch: Arch) -> Architecture {
    Architecture::from(arch.to_string().as_str())
}

fn zip_function_code(code: &ZipCode) -> Result<lambda::FunctionCode> {
    Ok(match &code.s3_bucket {
        Some(bucket) => lambda::FunctionCode::builder()
            .s3_bucket(bucket)
            .s3_key(code.s3_key())
            .build(),
        None => lambda::FunctionCode::builder()
            .zip_file(read_zip(code)?)
            .build(),
    })
}

async fn create(aws: &Aws, function: &DesiredFunction, layers: &[String]) -> Result<String> {
    let role = function.iam_role.as_deref().ok_or_else(|| {
        Error::config(format!(
            "function `{}` does not exist yet, and creating it needs an execution role",
            function.function_name
        ))
        .with_help(
            "pass --iam-role arn:aws:iam::<account>:role/<name>, or set `iam_role` in the metadata",
        )
    })?;
    let mut request = aws
        .lambda
        .create_function()
        .function_name(&function.function_name)
        .role(role)
        .architectures(architecture(function.arch))
        .set_memory_size(function.memory.map(|m| m as i32))
        .set_timeout(function.timeout.map(|t| t as i32))
        .set_environment(environment(function))
        .set_tags(Some(function.settings.tags.clone().into_iter().collect()))
        .set_ephemeral_storage(settings::ephemeral_storage(&function.settings))
        .set_capacity_provider_config(settings::capacity_provider_config(&function.settings))
        .set_tenancy_config(settings::tenancy_config(&function.settings));
    request = match &function.code {
        FunctionCode::Zip(zip) => request
            .package_type(PackageType::Zip)
            .runtime(lambda::Runtime::from(function.runtime.name()))
            .handler(&function.handler)
            .set_layers(Some(layers.to_vec()))
            .code(zip_function_code(zip)?),
        FunctionCode::Image(uri) => request
            .package_type(PackageType::Image)
            .code(lambda::FunctionCode::builder().image_uri(uri).build()),
    };
    match request.send().await {
        Ok(output) => Ok(output.function_arn().unwrap_or_default().to_string()),
        // The SDK retries a create whose answer was lost; if the lost attempt created the
        // function, the retry is refused as a conflict. A function with this code is that one.
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_conflict_exception()) =>
        {
            match super::aws::function_state(aws, &function.function_name).await? {
                Some(state) if state.code_sha256 == function.code_sha256 => Ok(state.arn),
                _ => Err(api_error("CreateFunction", &function.function_name, err)),
            }
        }
        Err(err) => Err(api_error("CreateFunction", &function.function_name, err)),
    }
}

async fn update_code(aws: &Aws, function: &DesiredFunction) -> Result<()> {
    let request = aws
        .lambda
        .update_function_code()
        .function_name(&function.function_name);
    let request = match &function.code {
        FunctionCode::Zip(zip) => match &zip.s3_bucket {
            Some(bucket) => request.s3_bucket(bucket).s3_key(zip.s3_key()),
            None => request.zip_file(read_zip(zip)?),
        },
        FunctionCode::Image(uri) => request.image_uri(uri),
    };
    request
        .send()
        .await
        .map_err(|err| api_error("UpdateFunctionCode", &function.function_name, err))?;
    Ok(())
}

/// Sends only what this tool owns; everything else of the function's configuration is left as
/// it is (UpdateFunctionConfiguration changes only the fields given).
async fn update_configuration(
    aws: &Aws,
    function: &DesiredFunction,
    layers: &[String],
) -> Result<()> {
    let mut request = aws
        .lambda
        .update_function_configuration()
        .function_name(&function.function_name)
        .set_memory_size(function.memory.map(|m| m as i32))
        .set_timeout(function.timeout.map(|t| t as i32))
        .set_environment(environment(function))
        .set_ephemeral_storage(settings::ephemeral_storage(&function.settings))
        .set_capacity_provider_config(settings::capacity_provider_config(&function.settings));
    if let FunctionCode::Zip(_) = function.code {
        request = request
            .runtime(lambda::Runtime::from(function.runtime.name()))
            .handler(&function.handler)
            .set_layers(Some(layers.to_vec()));
    }
    request
        .send()
        .await
        .map_err(|err| api_error("UpdateFunctionConfiguration", &function.function_name, err))?;
    Ok(())
}

fn environment(function: &DesiredFunction) -> Option<lambda::Environment> {
    function.env.as_ref().map(|env| {
        lambda::Environment::builder()
            .set_variables(Some(env.clone().into_iter().collect()))
            .build()
    })
}

async fn point_alias(aws: &Aws, function: &str, alias: &str, version: &str) -> Result<()> {
    let exists = match aws
        .lambda
        .get_alias()
        .function_name(function)
        .name(alias)
        .send()
        .await
    {
        Ok(_) => true,
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            false
        }
        Err(err) => return Err(api_error("GetAlias", &format!("{function}:{alias}"), err)),
    };
    if exists {
        aws.lambda
            .update_alias()
            .function_name(function)
            .name(alias)
            .function_version(version)
            .send()
            .await
            .map_err(|err| api_error("UpdateAlias", &format!("{function}:{alias}"), err))?;
    } else {
        aws.lambda
            .create_alias()
            .function_name(function)
            .name(alias)
            .function_version(version)
            .send()
            .await
            .map_err(|err| api_error("CreateAlias", &format!("{function}:{alias}"), err))?;
    }
    Ok(())
}

async fn wait_active(aws: &Aws, function: &str) -> Result<()> {
    aws.lambda
        .wait_until_function_active_v2()
        .function_name(function)
        .wait(WAIT)
        .await
        .map(|_| ())
        .map_err(|err| waiter_error(function, "become active", &err))
}

async fn wait_updated(aws: &Aws, function: &str) -> Result<()> {
    aws.lambda
        .wait_until_function_updated_v2()
        .function_name(function)
        .wait(WAIT)
        .await
        .map(|_| ())
        .map_err(|err| waiter_error(function, "finish updating", &err))
}

fn waiter_error(function: &str, what: &str, err: &(dyn std::error::Error + 'static)) -> Error {
    Error::new(
        ErrorKind::Aws,
        format!("function `{function}` did not {what}: {}", error_chain(err)),
    )
    .with_help("look at the function's LastUpdateStatusReason in the console or with `aws lambda get-function`; then run deploy again")
}

/// Runs `call`; when Lambda answers that an update is in progress, waits for it and tries again.
async fn retry_on_conflict<T, F, Fut>(aws: &Aws, function: &str, mut call: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut attempt = 1;
    loop {
        match call().await {
            Err(err)
                if attempt < CONFLICT_ATTEMPTS
                    && err.message.contains("ResourceConflictException") =>
            {
                attempt += 1;
                wait_updated(aws, function).await?;
            }
            other => return other,
        }
    }
}
