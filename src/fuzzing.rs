//! Entry points for the fuzz targets (`fuzz/fuzz_targets/`) and their regression tests: each runs
//! one private parser of untrusted bytes exactly as the tool runs it, and hands back plain values
//! and error text. Not an API; nothing else uses them.

use std::path::{Path, PathBuf};

use crate::cli::{ColorChoice, MergeArgs, MessageFormat};
use crate::output::{Shell, Verbosity};
use crate::target::Arch;

/// What a base image read from the cache turned into.
pub struct BaseOutcome {
    /// The cache blob of every base layer, in order.
    pub layer_blobs: Vec<PathBuf>,
    /// The image config this tool writes on top of the base's (no layers of its own); `None`
    /// for `scratch`.
    pub config: Option<Vec<u8>>,
}

/// Resolves base image `reference` for `arch` from the cache at `cache_dir` only (`--offline`):
/// its `index.json`, the index or manifest it names, the config and the layers, every digest
/// checked; then builds the image config from the base's, as `pack` does.
pub fn base_image_offline(
    cache_dir: &Path,
    reference: &str,
    arch: Arch,
) -> Result<BaseOutcome, String> {
    let source = crate::image::BaseSource {
        cache_dir: cache_dir.to_path_buf(),
        offline: true,
    };
    let base = source.resolve(reference, arch).map_err(|e| e.to_string())?;
    let config = base
        .config
        .as_ref()
        .map(|config| crate::image::config::image_config(Some(config), arch, 0, &[], "bootstrap"));
    Ok(BaseOutcome {
        layer_blobs: base.layers.into_iter().map(|l| l.blob).collect(),
        config,
    })
}

/// A registry credential: `(user, secret)` or `None` for anonymous, and where it came from.
pub type FoundCredential = (Option<(String, String)>, String);

/// Looks up the credential for `registry` with `$DOCKER_CONFIG` = `docker_config_dir`, every
/// credential helper answering `helper_stdout` (exit status 0) instead of being run.
pub fn registry_credential(
    registry: &str,
    docker_config_dir: &Path,
    helper_stdout: &[u8],
) -> Result<FoundCredential, String> {
    use oci_client::secrets::RegistryAuth;
    let dir = docker_config_dir.display().to_string();
    let env = |key: &str| (key == "DOCKER_CONFIG").then(|| dir.clone());
    let helper = |_: &str, _: &str, _: &str| -> crate::error::Result<Option<RegistryAuth>> {
        Ok(Some(
            crate::image::credentials::helper_answer(helper_stdout)
                .map_err(crate::error::Error::config)?,
        ))
    };
    let found = crate::image::credentials::for_registry_with(registry, &env, &helper)
        .map_err(|e| e.to_string())?;
    let auth = match found.auth {
        RegistryAuth::Anonymous => None,
        RegistryAuth::Basic(user, secret) => Some((user, secret)),
        RegistryAuth::Bearer(token) => Some((String::new(), token)),
    };
    Ok((auth, found.source))
}

/// Parses `text` as the `--env-file` `path`.
pub fn parse_env_file(text: &str, path: &Path) -> Result<Vec<(String, String)>, String> {
    crate::lambda_env::parse_env_file(text, path).map_err(|e| e.to_string())
}

/// `cargo lambda-pack merge <inputs>... --out-dir <out_dir>`, printing nothing.
pub fn merge(inputs: &[PathBuf], out_dir: &Path) -> Result<(), String> {
    let args = MergeArgs {
        inputs: inputs.to_vec(),
        out_dir: out_dir.to_path_buf(),
        message_format: None,
        color: Some(ColorChoice::Never),
    };
    let shell = Shell::new(Verbosity::Quiet, ColorChoice::Never, MessageFormat::Human);
    crate::commands::merge::run(&args, &shell).map_err(|e| e.to_string())
}

/// A Telemetry API (`logs_api` false) or Logs API subscription body, checked as `verify`'s
/// `PUT /telemetry` and `PUT /logs` check it: the types, `[timeoutMs, maxBytes, maxItems]`, the
/// destination URI and its port.
pub type Subscription = (Vec<String>, [u64; 3], String, u16);

/// Parses a subscription body as `verify` does (which exists on Linux only).
#[cfg(target_os = "linux")]
pub fn telemetry_subscription(logs_api: bool, body: &[u8]) -> Result<Subscription, String> {
    let api = if logs_api {
        crate::verify::TelemetryApi::Logs
    } else {
        crate::verify::TelemetryApi::Telemetry
    };
    crate::verify::parse_subscription_body(api, body)
        .map(|(types, b, uri, port)| (types, [b.timeout_ms, b.max_bytes, b.max_items], uri, port))
}

/// Lambda's `(min, max)` of `timeoutMs`, `maxBytes` and `maxItems`.
#[cfg(target_os = "linux")]
pub fn subscription_buffering_bounds() -> [(u64, u64); 3] {
    crate::verify::buffering_bounds()
}
