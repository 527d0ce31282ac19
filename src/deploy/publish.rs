//! PublishLayerVersion is the one call of a deploy that is not idempotent: each call that reaches
//! Lambda makes a new version, even when the answer is lost on the way back. The SDK would retry
//! such a failure blindly (and publish the same content twice), so its retries are turned off for
//! this call and done here: before publishing again, the layer's versions are searched for the
//! content, as the next run would; a version whose content arrived damaged (its CodeSha256 is not
//! the ZIP's) is deleted, so no version holds what was never packed.
//!
//! Two deploys of one layer from two output directories (two CI runners) can both find no version
//! with the content and both publish. So after publishing, a deploy looks for an OLDER version
//! with the same CodeSha256: if there is one, another run published it meanwhile, and this run
//! deletes its own version and uses the oldest one. Every run defers to the lowest-numbered
//! version with the content, which no run deletes (none has an older one), so the runs end with
//! one version whichever order their calls reach Lambda in.

use aws_sdk_lambda::config::retry::RetryConfig;
use aws_sdk_lambda::error::SdkError;
use aws_sdk_lambda::types as lambda;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use super::aws::{Aws, Search, api_error, error_chain, find_layer_version, search_layer_versions};
use super::desired::DesiredLayer;
use crate::error::{Error, ErrorKind, Result};
use crate::output::Shell;

/// The version a publish leaves for the functions.
pub struct Published {
    pub arn: String,
    /// True when another deploy published the same content first: its version is the one kept.
    pub another_deploys: bool,
}

/// Publishes `layer` with `content` once, and returns the version to use: the new one, or an
/// older one with the same content that another deploy published meanwhile.
pub async fn publish_layer(
    aws: &Aws,
    layer: &DesiredLayer,
    content: lambda::LayerVersionContentInput,
    shell: &Shell,
) -> Result<Published> {
    let mut attempt = 1;
    loop {
        let sent = aws
            .lambda
            .publish_layer_version()
            .layer_name(&layer.name)
            .description(&layer.description)
            .content(content.clone())
            .compatible_architectures(lambda::Architecture::from(layer.arch.to_string().as_str()))
            .set_compatible_runtimes(Some(
                layer
                    .compatible_runtimes
                    .iter()
                    .map(|r| lambda::Runtime::from(r.as_str()))
                    .collect(),
            ))
            .customize()
            .config_override(
                aws_sdk_lambda::config::Builder::default().retry_config(RetryConfig::disabled()),
            )
            .send()
            .await;
        let why = match sent {
            Ok(output) => {
                let arn = output.layer_version_arn().unwrap_or_default().to_string();
                let received = output
                    .content()
                    .and_then(|c| c.code_sha256())
                    .unwrap_or_default()
                    .to_string();
                if received == layer.code_sha256 {
                    return converge(aws, layer, output.version(), arn, shell).await;
                }
                aws.lambda
                    .delete_layer_version()
                    .layer_name(&layer.name)
                    .version_number(output.version())
                    .send()
                    .await
                    .map_err(|err| api_error("DeleteLayerVersion", &arn, err))?;
                let why = format!(
                    "Lambda received CodeSha256 {received}, not the ZIP's {} (damaged on the way); version {} was deleted",
                    layer.code_sha256,
                    output.version()
                );
                if attempt >= aws.max_attempts {
                    return Err(Error::new(
                        ErrorKind::Aws,
                        format!("PublishLayerVersion on `{}` failed: {why}", layer.name),
                    )
                    .with_note(format!("{attempt} attempt(s)"))
                    .with_help("check the network (and any proxy between here and AWS), then run deploy again"));
                }
                why
            }
            Err(err) if is_transient(&err) && attempt < aws.max_attempts => {
                // The request may have reached Lambda before the failure: its version counts.
                if let Some(found) =
                    find_layer_version(aws, &layer.name, layer.arch, &layer.code_sha256).await?
                {
                    crate::output::warn_stderr(format!(
                        "AWS lambda:PublishLayerVersion of layer {}: {}; the version was made before the failure: {}",
                        layer.name,
                        error_chain(&err),
                        found.arn
                    ));
                    return converge(aws, layer, found.version, found.arn, shell).await;
                }
                error_chain(&err)
            }
            Err(err) => {
                return Err(api_error("PublishLayerVersion", &layer.name, err)
                    .with_note(format!("{attempt} attempt(s)")));
            }
        };
        attempt += 1;
        let delay = std::time::Duration::from_secs(1 << (attempt - 2).min(4));
        crate::output::warn_stderr(format!(
            "AWS lambda:PublishLayerVersion of layer {}: {why}; retrying in {}s (attempt {attempt}/{})",
            layer.name,
            delay.as_secs(),
            aws.max_attempts
        ));
        tokio::time::sleep(delay).await;
    }
}

/// After `version` of `layer` was published: the oldest version with the same content, if
/// another deploy published one, is kept and `version` deleted (DeleteLayerVersion succeeds on
/// a version already deleted, so two runs may both remove one).
async fn converge(
    aws: &Aws,
    layer: &DesiredLayer,
    version: i64,
    arn: String,
    shell: &Shell,
) -> Result<Published> {
    // The first version of a layer has no older one: nothing to ask.
    if version <= 1 {
        return Ok(Published {
            arn,
            another_deploys: false,
        });
    }
    let older = search_layer_versions(
        aws,
        &layer.name,
        layer.arch,
        &layer.code_sha256,
        Search::OldestBelow(version),
    )
    .await?;
    let Some(older) = older else {
        return Ok(Published {
            arn,
            another_deploys: false,
        });
    };
    let deleted = aws
        .lambda
        .delete_layer_version()
        .layer_name(&layer.name)
        .version_number(version)
        .send()
        .await;
    match deleted {
        Ok(_) => shell.note(format!(
            "layer {} ({}): another deploy published the same content (CodeSha256 {}) as version {} meanwhile; kept version {}, deleted this deploy's version {version}",
            layer.name, layer.arch, layer.code_sha256, older.version, older.version
        )),
        // The functions still get the kept version; the duplicate is only clutter.
        Err(err) => shell.warn(format!(
            "layer {} ({}): another deploy published the same content as version {} meanwhile; kept version {}, but could not delete this deploy's duplicate version {version}: {}; delete it with `aws lambda delete-layer-version --layer-name {} --version-number {version}`",
            layer.name,
            layer.arch,
            older.version,
            older.version,
            error_chain(&err),
            layer.name
        )),
    }
    Ok(Published {
        arn: older.arn,
        another_deploys: true,
    })
}

/// A failure another attempt may not meet: the connection, a timeout, an unreadable answer, or
/// a 5xx or throttling answer.
pub fn is_transient<E>(err: &SdkError<E, HttpResponse>) -> bool {
    match err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(e) => {
            let status = e.raw().status().as_u16();
            status >= 500 || status == 429
        }
        _ => false,
    }
}
