//! The account, through the official AWS SDK for Rust: its standard credential and region chain
//! (environment, profiles, SSO, container and instance roles), `AWS_ENDPOINT_URL`, signing,
//! retries with backoff and waiters. This module reads the state the plan needs and turns SDK
//! errors into this tool's errors; `execute.rs` makes the changes.

use std::collections::BTreeMap;

use aws_sdk_lambda::config::ProvideCredentials;
use aws_sdk_lambda::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

use super::desired::{Desired, FunctionCode};
use super::limits::RetryNotice;
use super::plan::{FunctionState, LayerVersion, Observed};
use crate::error::{Error, ErrorKind, Result};

/// The clients of one run.
pub struct Aws {
    pub lambda: aws_sdk_lambda::Client,
    pub s3: aws_sdk_s3::Client,
    pub region: String,
    /// Attempts per call, as the SDK's retry configuration says (`AWS_MAX_ATTEMPTS`, default 3).
    pub max_attempts: u32,
}

/// Loads the SDK's configuration and checks that it has a region and credentials, so that these
/// fail once, clearly, before any call.
pub async fn connect() -> Result<Aws> {
    // rustls over ring (the crypto the image push already uses), not the SDK's default aws-lc.
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    // Retries are the SDK's, configured by its loader (AWS_MAX_ATTEMPTS, AWS_RETRY_MODE, the
    // profile); timeouts are ours to set, since the SDK has none but a connect timeout.
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http_client)
        .timeout_config(super::limits::timeouts()?)
        .load()
        .await;
    let max_attempts = config.retry_config().map_or(1, |r| r.max_attempts());
    let region = config.region().map(|r| r.to_string()).ok_or_else(|| {
        Error::new(ErrorKind::Aws, "no AWS region is configured")
            .with_note("the SDK looked in AWS_REGION, AWS_DEFAULT_REGION, the profile (AWS_PROFILE, ~/.aws/config) and the instance metadata")
            .with_help("set AWS_REGION (e.g. `AWS_REGION=eu-west-1`) or `region` in your AWS profile")
    })?;
    let no_credentials = |why: String| {
        Error::new(ErrorKind::Aws, "no AWS credentials were found")
            .with_note(why)
            .with_note("the SDK looked in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, the profile (AWS_PROFILE, ~/.aws/credentials and config, SSO, credential_process), web identity, and the container and instance roles")
            .with_help("run `aws configure` or `aws sso login`, or set AWS_PROFILE or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    };
    let provider = config
        .credentials_provider()
        .ok_or_else(|| no_credentials("no credentials provider is configured".into()))?;
    provider
        .provide_credentials()
        .await
        .map_err(|err| no_credentials(error_chain(&err)))?;
    // An endpoint of one's own (a local emulator, a proxy) rarely serves buckets as host names.
    let path_style = config.endpoint_url().is_some();
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(path_style)
            .interceptor(RetryNotice::new(max_attempts))
            .build(),
    );
    let lambda = aws_sdk_lambda::Client::from_conf(
        aws_sdk_lambda::config::Builder::from(&config)
            .interceptor(RetryNotice::new(max_attempts))
            .build(),
    );
    Ok(Aws {
        max_attempts,
        lambda,
        s3,
        region,
    })
}

/// Reads what the plan needs: for each layer the newest version with the wanted CodeSha256, for
/// each function its configuration, for each S3 upload whether the object is there.
pub async fn observe(aws: &Aws, desired: &Desired, jobs: usize) -> Result<Observed> {
    let mut observed = Observed::default();
    for layer in &desired.layers {
        if let Some(found) =
            find_layer_version(aws, &layer.name, layer.arch, &layer.code_sha256).await?
        {
            observed
                .layer_matches
                .insert((layer.name.clone(), layer.arch), found);
        }
        if let Some(bucket) = &layer.code.s3_bucket
            && object_exists(aws, bucket, &layer.code.s3_key()).await?
        {
            observed
                .objects
                .insert((bucket.clone(), layer.code.s3_key()));
        }
    }
    // Functions are read `jobs` at a time (GetFunction, and the URL when there is one to read).
    use futures_util::stream::{self, StreamExt};
    let reads: Vec<Result<FunctionRead>> = stream::iter(&desired.functions)
        .map(|function| observe_function(aws, function))
        .buffered(jobs.max(1))
        .collect()
        .await;
    for (function, read) in desired.functions.iter().zip(reads) {
        let (state, object) = read?;
        if let Some(state) = state {
            observed
                .functions
                .insert(function.function_name.clone(), state);
        }
        if let Some(object) = object {
            observed.objects.insert(object);
        }
    }
    Ok(observed)
}

/// A function's state (`None`: it does not exist), and the `(bucket, key)` of its ZIP when that
/// is already uploaded.
type FunctionRead = (Option<FunctionState>, Option<(String, String)>);

/// One function's state, and the S3 object of its ZIP when that is already uploaded.
async fn observe_function(
    aws: &Aws,
    function: &super::desired::DesiredFunction,
) -> Result<FunctionRead> {
    let mut found = None;
    let mut object = None;
    if let Some(mut state) = function_state(aws, &function.function_name).await? {
        // The URL is read when one is wanted, or when this tool made one (to remove it).
        let made = state.settings.tags.get(super::url::URL_TAG).cloned();
        let qualifier = match (&function.settings.url, made.as_deref()) {
            (Some(wanted), _) => Some(wanted.qualifier.clone()),
            (None, Some("latest")) => Some(None),
            (None, Some(alias)) => Some(Some(alias.to_string())),
            (None, None) => None,
        };
        if let Some(qualifier) = qualifier {
            state.settings.url =
                super::url::observe(aws, &function.function_name, qualifier.as_deref()).await?;
        }
        found = Some(state);
    }
    if let FunctionCode::Zip(zip) = &function.code
        && let Some(bucket) = &zip.s3_bucket
        && object_exists(aws, bucket, &zip.s3_key()).await?
    {
        object = Some((bucket.clone(), zip.s3_key()));
    }
    Ok((found, object))
}

/// Which end of a layer's versions a search starts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Search {
    /// Newest first: the version a deploy reuses.
    Newest,
    /// Oldest first, among the versions numbered below this one: the version concurrent
    /// deploys that published the same content agree on (see `publish.rs`).
    OldestBelow(i64),
}

/// The newest version of `name` compatible with `arch` whose content has `code_sha256`.
/// ListLayerVersions does not report content hashes, so each candidate is asked with
/// GetLayerVersion, newest first, until one matches.
pub async fn find_layer_version(
    aws: &Aws,
    name: &str,
    arch: crate::target::Arch,
    code_sha256: &str,
) -> Result<Option<LayerVersion>> {
    search_layer_versions(aws, name, arch, code_sha256, Search::Newest).await
}

/// The first version of `name` compatible with `arch` with content `code_sha256`, searched from
/// the end `search` says.
pub async fn search_layer_versions(
    aws: &Aws,
    name: &str,
    arch: crate::target::Arch,
    code_sha256: &str,
    search: Search,
) -> Result<Option<LayerVersion>> {
    let mut marker = None;
    let mut candidates = Vec::new();
    loop {
        let page = aws
            .lambda
            .list_layer_versions()
            .layer_name(name)
            .set_marker(marker)
            .send()
            .await
            .map_err(|err| api_error("ListLayerVersions", name, err))?;
        for item in page.layer_versions() {
            let architectures: Vec<String> = item
                .compatible_architectures()
                .iter()
                .map(|a| a.as_str().to_string())
                .collect();
            if !architectures.is_empty() && !architectures.contains(&arch.to_string()) {
                continue;
            }
            candidates.push((item.version(), architectures));
        }
        marker = page.next_marker().map(str::to_string);
        if marker.is_none() {
            break;
        }
    }
    match search {
        Search::Newest => candidates.sort_by_key(|(version, _)| std::cmp::Reverse(*version)),
        Search::OldestBelow(below) => {
            candidates.retain(|(version, _)| *version < below);
            candidates.sort_by_key(|(version, _)| *version);
        }
    }
    for (version, architectures) in candidates {
        let found = match aws
            .lambda
            .get_layer_version()
            .layer_name(name)
            .version_number(version)
            .send()
            .await
        {
            Ok(found) => found,
            // Deleted since it was listed (another deploy removing its duplicate).
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                continue;
            }
            Err(err) => return Err(api_error("GetLayerVersion", name, err)),
        };
        if found.content().and_then(|c| c.code_sha256()) == Some(code_sha256) {
            return Ok(Some(LayerVersion {
                arn: found.layer_version_arn().unwrap_or_default().to_string(),
                version,
                code_sha256: code_sha256.to_string(),
                architectures,
            }));
        }
    }
    Ok(None)
}

/// GetFunction, or `None` when the function does not exist.
pub async fn function_state(aws: &Aws, name: &str) -> Result<Option<FunctionState>> {
    let output = match aws.lambda.get_function().function_name(name).send().await {
        Ok(output) => output,
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            return Ok(None);
        }
        Err(err) => return Err(api_error("GetFunction", name, err)),
    };
    let Some(config) = output.configuration() else {
        return Ok(None);
    };
    Ok(Some(FunctionState {
        arn: config.function_arn().unwrap_or_default().to_string(),
        package_type: config
            .package_type()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default(),
        architectures: config
            .architectures()
            .iter()
            .map(|a| a.as_str().to_string())
            .collect(),
        code_sha256: config.code_sha256().unwrap_or_default().to_string(),
        image_uri: output
            .code()
            .and_then(|c| c.image_uri())
            .map(str::to_string),
        runtime: config.runtime().map(|r| r.as_str().to_string()),
        handler: config.handler().map(str::to_string),
        layers: config
            .layers()
            .iter()
            .filter_map(|l| l.arn().map(str::to_string))
            .collect(),
        memory: config.memory_size(),
        timeout: config.timeout(),
        env: config
            .environment()
            .and_then(|e| e.variables())
            .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_else(BTreeMap::new),
        settings: super::settings::observed(config, output.tags()),
    }))
}

async fn object_exists(aws: &Aws, bucket: &str, key: &str) -> Result<bool> {
    match aws.s3.head_object().bucket(bucket).key(key).send().await {
        Ok(_) => Ok(true),
        Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(false),
        Err(err) => Err(api_error(
            "s3:HeadObject",
            &format!("s3://{bucket}/{key}"),
            err,
        )),
    }
}

/// An SDK failure as this tool's error: which action on what, AWS's code and message, and what
/// to do. Access refusals name the IAM action to allow.
pub fn api_error<E, R>(action: &str, target: &str, err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let iam_action = if action.contains(':') {
        action.to_string()
    } else {
        format!("lambda:{action}")
    };
    let code = err.code().map(str::to_string);
    let message = err.message().map(str::to_string);
    let detail = match (&code, &message) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.clone(),
        _ => error_chain(&err),
    };
    let error = Error::new(
        ErrorKind::Aws,
        format!("{action} on `{target}` failed: {detail}"),
    );
    match code.as_deref() {
        Some(
            "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation"
            | "UnrecognizedClientException" | "InvalidSignatureException"
            | "ExpiredTokenException" | "InvalidClientTokenId" | "SignatureDoesNotMatch",
        ) => error.with_help(format!(
            "allow `{iam_action}` on `{target}` for the identity these credentials belong to (or use a profile that may)"
        )),
        Some("InvalidParameterValueException") if detail.contains("role") => error.with_help(
            "pass an existing execution role that Lambda may assume (--iam-role ARN or `iam_role`)",
        ),
        Some("ResourceConflictException") => error.with_help(
            "another update of this function is in progress; wait for it and run deploy again",
        ),
        Some("NoSuchBucket") => error.with_help("create the bucket, or name another with --s3-bucket or `s3_bucket`"),
        _ if matches!(err, SdkError::DispatchFailure(_) | SdkError::TimeoutError(_)) => error
            .with_help("check the network and AWS_ENDPOINT_URL (if set); deploy is idempotent: run it again"),
        _ => error.with_help("fix what AWS reports, then run deploy again: what is already done is not repeated"),
    }
}

/// The error and its sources on one line (the SDK's top-level messages are terse).
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text
}
