//! Talking to registries over the OCI distribution API (through `oci-client`).
//!
//! A registry on `localhost` or `127.0.0.1` (any port) is spoken to over plain HTTP, as Docker
//! does for those; every other over HTTPS. TLS uses rustls with the *ring* provider (installed
//! once per process), which builds much faster than the aws-lc default.

use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use oci_client::{Client, Reference, client::ClientConfig, client::ClientProtocol};
use serde_json::Value;

use crate::error::{Error, ErrorKind, Result};
use crate::target::Arch;

use super::base::{
    BaseSource, INDEX_TYPES, MANIFEST_TYPES, Pulled, choose_platform, digest_mismatch, hash_file,
    is_index, no_platform, sha256_hex,
};
use super::retry::{self, Failed, Policy};

/// True for registries Docker speaks plain HTTP to without being told: the loopback names.
pub fn is_plain_http(registry: &str) -> bool {
    let host = match registry.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => registry,
    };
    matches!(host, "localhost" | "127.0.0.1" | "[::1]")
}

pub fn parse_reference(reference: &str) -> Result<Reference> {
    reference.parse::<Reference>().map_err(|e| {
        Error::config(format!(
            "base_image = \"{reference}\" is not an image reference: {e}"
        ))
        .with_help("write a reference such as public.ecr.aws/lambda/provided:al2023-x86_64, or \"scratch\"")
    })
}

pub fn client_for(reference: &Reference, policy: &Policy) -> Client {
    // Installing fails only when a provider is already installed, which is what we want anyway.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let protocol = if is_plain_http(reference.resolve_registry()) {
        ClientProtocol::Http
    } else {
        ClientProtocol::Https
    };
    // reqwest's read timeout is per read, so a large blob that keeps flowing is never cut; a
    // registry that stops sending for that long is.
    Client::new(ClientConfig {
        protocol,
        connect_timeout: Some(policy.connect_timeout()),
        read_timeout: Some(policy.timeout),
        ..Default::default()
    })
}

/// Runs a future to completion on a runtime of its own (callers are plain threads).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts")
        .block_on(future)
}

/// A step's failure after its attempts: the typed error, naming the step and the attempts.
pub fn step_error(
    reference: &str,
    registry: &str,
    credential_source: &str,
    step: &str,
    failed: Failed<oci_client::errors::OciDistributionError>,
) -> Error {
    let transient = retry::is_transient(&failed.error);
    let error = registry_error(reference, registry, credential_source, failed.error)
        .with_note(format!("while {step} ({} attempt(s))", failed.attempts));
    // The generic help suits a refusal; a failure that retries met is the network's or the
    // registry's, and the next run resumes (a more precise help, e.g. for an unreachable
    // registry, stays).
    if transient && error.message.contains(" failed for `") {
        error.with_help(format!(
            "the registry or the network failed; run again (what is already there is not sent or fetched again), or raise {} / {}",
            retry::ATTEMPTS_ENV,
            retry::TIMEOUT_ENV
        ))
    } else {
        error
    }
}

/// A registry failure as a typed error naming the registry and the reference.
pub fn registry_error(
    reference: &str,
    registry: &str,
    credential_source: &str,
    err: oci_client::errors::OciDistributionError,
) -> Error {
    use oci_client::errors::{OciDistributionError as E, OciErrorCode as Code};
    let codes: Vec<&Code> = match &err {
        E::RegistryError { envelope, .. } => envelope.errors.iter().map(|e| &e.code).collect(),
        _ => Vec::new(),
    };
    let status = match &err {
        E::RequestError(e) => e.status().map(|s| s.as_u16()),
        E::ServerError { code, .. } => Some(*code),
        _ => None,
    };
    let refused = codes
        .iter()
        .any(|c| matches!(c, Code::Unauthorized | Code::Denied))
        || matches!(status, Some(401 | 403));
    let unknown = codes
        .iter()
        .any(|c| matches!(c, Code::ManifestUnknown | Code::NameUnknown));
    match &err {
        _ if refused => Error::new(
            ErrorKind::Registry,
            format!("registry {registry} refused access to `{reference}` (credentials tried: {credential_source}): {err}"),
        )
        .with_help("log in with `docker login` (or put credentials in $DOCKER_CONFIG/config.json or $REGISTRY_AUTH_FILE)"),
        _ if unknown => Error::new(
            ErrorKind::Registry,
            format!("registry {registry} has no image `{reference}`: {err}"),
        )
        .with_help("check base_image's repository and tag"),
        E::AuthenticationFailure(_) | E::UnauthorizedError { .. } => Error::new(
            ErrorKind::Registry,
            format!("registry {registry} refused access to `{reference}` (credentials tried: {credential_source}): {err}"),
        )
        .with_help("log in with `docker login` (or put credentials in $DOCKER_CONFIG/config.json or $REGISTRY_AUTH_FILE)"),
        E::ImageManifestNotFoundError(_) => Error::new(
            ErrorKind::Registry,
            format!("registry {registry} has no image `{reference}`: {err}"),
        )
        .with_help("check base_image's repository and tag"),
        E::RequestError(_) if status.is_none() => Error::new(
            ErrorKind::Registry,
            format!("registry {registry} is unreachable for `{reference}`: {err}"),
        )
        .with_help("check the network and the registry's address, or use --offline with a filled cache"),
        _ => Error::new(
            ErrorKind::Registry,
            format!("registry {registry} failed for `{reference}`: {err}"),
        )
        .with_help("check base_image, and that the registry is reachable"),
    }
}

/// Pulls what `reference` names (an index or a manifest), the image manifest for `arch`, its
/// config and layers into the cache (blobs already there are not downloaded again). Every
/// request is retried as [`retry::retry`] says; a blob is kept only once it hashes to its digest.
pub fn pull_base(source: &BaseSource, reference: &str, arch: Arch) -> Result<Pulled> {
    let parsed = parse_reference(reference)?;
    let registry = parsed.resolve_registry().to_string();
    let credential = super::credentials::lookup(&registry)?;
    let policy = Policy::from_env()?;
    let fail =
        |step: &str, failed| step_error(reference, &registry, &credential.source, step, failed);
    let client = client_for(&parsed, &policy);
    let auth = credential.auth.clone();
    let pull_manifest = |target: Reference, accepted: Vec<&'static str>, step: String| {
        let (client, auth, registry) = (&client, &auth, &registry);
        async move {
            retry::retry(
                &policy,
                registry,
                &step,
                retry::is_transient,
                retry::describe,
                || client.pull_manifest_raw(&target, auth, &accepted),
            )
            .await
            .map_err(|failed| fail(&step, failed))
        }
    };
    block_on(async {
        let accepted: Vec<&str> = INDEX_TYPES.iter().chain(&MANIFEST_TYPES).copied().collect();
        let (bytes, _) =
            pull_manifest(parsed.clone(), accepted, "pulling the manifest".into()).await?;
        let top_digest = sha256_hex(&bytes);
        if let Some(pinned) = parsed.digest()
            && pinned != top_digest
        {
            return Err(digest_mismatch(reference, pinned, &top_digest));
        }
        let not_json = |e: serde_json::Error| {
            Error::new(
                ErrorKind::Registry,
                format!("`{reference}`: the registry sent a manifest that is not JSON: {e}"),
            )
            .with_help("check base_image")
        };
        let mut manifest: Value = serde_json::from_slice(&bytes).map_err(not_json)?;
        let top = Pulled {
            media_type: manifest["mediaType"]
                .as_str()
                .unwrap_or(if is_index(&manifest) {
                    INDEX_TYPES[0]
                } else {
                    MANIFEST_TYPES[0]
                })
                .to_string(),
            digest: top_digest.clone(),
            size: bytes.len() as u64,
        };
        source.store(reference, &top_digest, &bytes)?;
        if is_index(&manifest) {
            let chosen = choose_platform(&manifest, arch)
                .ok_or_else(|| no_platform(reference, arch, &manifest))?;
            let by_digest = parsed.clone_with_digest(chosen.clone());
            let step = format!("pulling the {arch} manifest {chosen}");
            let (bytes, _) = pull_manifest(by_digest, MANIFEST_TYPES.to_vec(), step).await?;
            let actual = sha256_hex(&bytes);
            if actual != chosen {
                return Err(digest_mismatch(reference, &chosen, &actual));
            }
            source.store(reference, &chosen, &bytes)?;
            manifest = serde_json::from_slice(&bytes).map_err(not_json)?;
        }
        let mut blobs = vec![descriptor(&manifest["config"])];
        blobs.extend(
            manifest["layers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(descriptor),
        );
        for blob in blobs {
            if source.has_blob(&blob.digest) {
                continue;
            }
            let step = format!("pulling blob {}", blob.digest);
            let pulled = retry::retry(
                &policy,
                &registry,
                &step,
                |e: &Download| matches!(e, Download::Registry(e) if retry::is_transient(e)),
                Download::describe,
                || download(source, &client, reference, &parsed, &blob),
            )
            .await;
            match pulled {
                Ok(()) => {}
                Err(Failed {
                    error: Download::Local(error),
                    ..
                }) => return Err(error),
                Err(Failed {
                    error: Download::Registry(error),
                    attempts,
                }) => return Err(fail(&step, Failed { error, attempts })),
            }
        }
        Ok(top)
    })
}

/// One attempt at a blob: what failed, the registry (perhaps transiently) or this machine.
enum Download {
    Registry(oci_client::errors::OciDistributionError),
    Local(Error),
}

impl Download {
    fn describe(&self) -> String {
        match self {
            Download::Registry(e) => retry::describe(e),
            Download::Local(e) => e.message.clone(),
        }
    }
}

/// Downloads a blob into a fresh temporary file of the cache and renames it into place once it
/// hashes to its digest (bytes damaged on the way are a digest error, so they are fetched again).
async fn download(
    source: &BaseSource,
    client: &Client,
    image: &str,
    reference: &Reference,
    blob: &oci_client::manifest::OciDescriptor,
) -> std::result::Result<(), Download> {
    let (temp, dest) = source
        .blob_download(image, &blob.digest)
        .map_err(Download::Local)?;
    client
        .pull_blob(reference, blob, BlockingFile(temp.as_file()))
        .await
        .map_err(Download::Registry)?;
    let (actual, _) =
        hash_file(temp.path()).map_err(|e| Download::Local(Error::read(temp.path(), &e)))?;
    if actual != blob.digest {
        return Err(Download::Registry(
            oci_client::errors::DigestError::VerificationError {
                expected: blob.digest.clone(),
                actual,
            }
            .into(),
        ));
    }
    persist(temp, &dest).map_err(Download::Local)
}

fn persist(temp: tempfile::NamedTempFile, dest: &Path) -> Result<()> {
    temp.persist(dest)
        .map_err(|e| Error::write(dest, &e.error))?;
    Ok(())
}

fn descriptor(value: &Value) -> oci_client::manifest::OciDescriptor {
    oci_client::manifest::OciDescriptor {
        media_type: value["mediaType"].as_str().unwrap_or_default().to_string(),
        digest: value["digest"].as_str().unwrap_or_default().to_string(),
        size: value["size"].as_i64().unwrap_or_default(),
        ..Default::default()
    }
}

/// A `std::fs::File` written from async code. The runtime is a private current-thread one, so
/// blocking in `poll_write` stalls nothing else.
struct BlockingFile<'a>(&'a std::fs::File);

impl tokio::io::AsyncWrite for BlockingFile<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        use std::io::Write;
        Poll::Ready((&mut &*self.0).write(buf))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_names_get_plain_http() {
        assert!(is_plain_http("localhost:5000"));
        assert!(is_plain_http("127.0.0.1:41234"));
        assert!(is_plain_http("localhost"));
        assert!(!is_plain_http("public.ecr.aws"));
        assert!(!is_plain_http("127.0.0.1.nip.io:5000"));
        assert!(!is_plain_http("registry.example.com:5000"));
    }
}
