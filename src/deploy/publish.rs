//! PublishLayerVersion is the one call of a deploy that is not idempotent: each call that reaches
//! Lambda makes a new version, even when the answer is lost on the way back. The SDK would retry
//! such a failure blindly (and publish the same content twice), so its retries are turned off for
//! this call and done here: before publishing again, the layer's versions are searched for the
//! content, as the next run would; a version whose content arrived damaged (its CodeSha256 is not
//! the ZIP's) is deleted, so no version holds what was never packed.

use aws_sdk_lambda::config::retry::RetryConfig;
use aws_sdk_lambda::error::SdkError;
use aws_sdk_lambda::types as lambda;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use super::aws::{Aws, api_error, error_chain, find_layer_version};
use super::desired::DesiredLayer;
use crate::error::{Error, ErrorKind, Result};

/// Publishes `layer` with `content` once, and returns the new version's ARN.
pub async fn publish_layer(
    aws: &Aws,
    layer: &DesiredLayer,
    content: lambda::LayerVersionContentInput,
) -> Result<String> {
    let mut attempt = 1;
    loop {
        let sent = aws
            .lambda
            .publish_layer_version()
            .layer_name(&layer.name)
            .description(format!("cargo-lambda-pack {} ({})", layer.name, layer.arch))
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
                    return Ok(arn);
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
                    return Ok(found.arn);
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
