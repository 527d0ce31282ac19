//! Registry requests fail in ways a retry cures: a connection cut mid-body, a 5xx or 429 from an
//! overloaded registry, a read that stalls, bytes corrupted on the way (caught by the digest).
//! Every step of a pull or push goes through [`retry`]: a bounded number of attempts with
//! exponential backoff, each retry said on stderr. A request that still fails, or fails in a way
//! no retry changes (refused credentials, an unknown image), becomes the caller's typed error.
//!
//! The limits come from the environment, like the AWS SDK's `AWS_MAX_ATTEMPTS`:
//! [`TIMEOUT_ENV`] (seconds a connection or a read may stall) and [`ATTEMPTS_ENV`].

use std::future::Future;
use std::time::Duration;

use oci_client::errors::{OciDistributionError as E, OciErrorCode as Code};

use crate::error::{Error, Result};

/// Seconds a connection attempt or a read from the registry may stall before it is given up.
pub const TIMEOUT_ENV: &str = "LAMBDA_PACK_REGISTRY_TIMEOUT";
/// How many times one registry request is tried in all (1 = no retry).
pub const ATTEMPTS_ENV: &str = "LAMBDA_PACK_REGISTRY_ATTEMPTS";
/// With [`DEFAULT_ATTEMPTS`], a registry that accepts and never answers is given up after a
/// minute of silence (and 15 s of waits between attempts), each retry said on the way.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(12);
pub const DEFAULT_ATTEMPTS: u32 = 5;
/// The first retry waits this long; each next one twice as long, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(16);

/// How long to wait for a registry and how often to try.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    pub timeout: Duration,
    pub attempts: u32,
}

impl Policy {
    /// The limits the environment sets, else the defaults.
    pub fn from_env() -> Result<Policy> {
        let timeout = match std::env::var(TIMEOUT_ENV) {
            Ok(value) => Duration::from_secs(positive(TIMEOUT_ENV, &value)?.into()),
            Err(_) => DEFAULT_TIMEOUT,
        };
        let attempts = match std::env::var(ATTEMPTS_ENV) {
            Ok(value) => positive(ATTEMPTS_ENV, &value)?,
            Err(_) => DEFAULT_ATTEMPTS,
        };
        Ok(Policy { timeout, attempts })
    }

    /// A connection is given the same time as a stalled read, but never more than 30 s: a
    /// registry that does not accept a connection in that time is not going to.
    pub fn connect_timeout(&self) -> Duration {
        self.timeout.min(Duration::from_secs(30))
    }
}

fn positive(name: &str, value: &str) -> Result<u32> {
    match value.trim().parse::<u32>() {
        Ok(number) if number > 0 => Ok(number),
        _ => Err(
            Error::config(format!("{name}=`{value}` is not a positive whole number")).with_help(
                format!(
                    "set {name} to a number such as {} (or unset it for the default)",
                    if name == TIMEOUT_ENV {
                        DEFAULT_TIMEOUT.as_secs()
                    } else {
                        u64::from(DEFAULT_ATTEMPTS)
                    }
                ),
            ),
        ),
    }
}

/// A failure another attempt may not meet: the connection or the server's state, not the request.
pub fn is_transient(err: &E) -> bool {
    match err {
        // No status: the connection failed, was cut, or timed out, or the body ended early.
        E::RequestError(e) => e
            .status()
            .is_none_or(|s| s.is_server_error() || s.as_u16() == 429 || s.as_u16() == 408),
        E::ServerError { code, message, .. } => {
            *code >= 500 || *code == 429 || *code == 408 || names_upload_fault(message)
        }
        // Bytes that do not hash to their digest were damaged on the way (either way).
        E::DigestError(_) => true,
        E::RegistryError { envelope, .. } => envelope.errors.iter().any(|e| {
            matches!(
                &e.code,
                Code::Toomanyrequests
                    | Code::DigestInvalid
                    | Code::BlobUploadInvalid
                    | Code::BlobUploadUnknown
                    | Code::SizeInvalid
            ) || matches!(&e.code, Code::Other(code) if code == "UNAVAILABLE")
        }),
        _ => false,
    }
}

/// An error body (the distribution spec's envelope, which oci-client passes on as text for some
/// calls) saying an upload's bytes did not arrive as sent.
fn names_upload_fault(body: &str) -> bool {
    let Ok(envelope) = serde_json::from_str::<serde_json::Value>(body) else {
        return false;
    };
    envelope["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|e| {
            matches!(
                e["code"].as_str(),
                Some(
                    "DIGEST_INVALID"
                        | "BLOB_UPLOAD_INVALID"
                        | "BLOB_UPLOAD_UNKNOWN"
                        | "SIZE_INVALID"
                )
            )
        })
}

/// The wait before attempt `next` (2 for the first retry).
pub fn backoff(next: u32) -> Duration {
    let doublings = next.saturating_sub(2).min(8);
    (FIRST_BACKOFF * 2u32.pow(doublings)).min(MAX_BACKOFF)
}

/// A failure of one step, and how many attempts it was given.
pub struct Failed<X> {
    pub error: X,
    pub attempts: u32,
}

/// Runs `attempt` until it succeeds, fails in a way that is not [`is_transient`] (as `transient`
/// judges), or has been tried `policy.attempts` times. Each retry is said on stderr, naming the
/// registry, the step (`step` reads after "while", e.g. "uploading blob sha256:...") and how
/// long the step has taken so far, so a registry that does not answer is never silent.
pub async fn retry<T, X, F, Fut>(
    policy: &Policy,
    registry: &str,
    step: &str,
    transient: impl Fn(&X) -> bool,
    describe: impl Fn(&X) -> String,
    mut attempt: F,
) -> std::result::Result<T, Failed<X>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<T, X>>,
{
    let mut tried = 0;
    let started = std::time::Instant::now();
    loop {
        tried += 1;
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(error) if tried < policy.attempts && transient(&error) => {
                let delay = backoff(tried + 1);
                crate::output::warn_stderr(format!(
                    "registry {registry}: {} while {step}; retrying in {}s (attempt {}/{}), {:.1}s after the first attempt started",
                    describe(&error),
                    delay.as_secs(),
                    tried + 1,
                    policy.attempts,
                    started.elapsed().as_secs_f64()
                ));
                tokio::time::sleep(delay).await;
            }
            Err(error) => {
                return Err(Failed {
                    error,
                    attempts: tried,
                });
            }
        }
    }
}

/// An oci-client error on one line, with its causes (reqwest's own message is terse: "error
/// sending request").
pub fn describe(err: &E) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    // One line: a registry's error body may end in a newline.
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_default_a_silent_registry_is_given_up_after_a_minute_of_silence() {
        assert!(DEFAULT_TIMEOUT * DEFAULT_ATTEMPTS <= Duration::from_secs(60));
        let waits: Duration = (2..=DEFAULT_ATTEMPTS).map(backoff).sum();
        assert!(waits <= Duration::from_secs(15), "{waits:?}");
    }

    #[test]
    fn backoff_doubles_from_one_second_up_to_sixteen() {
        let waits: Vec<u64> = (2..=8).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 16, 16]);
    }

    #[test]
    fn server_errors_and_throttling_are_transient_refusals_are_not() {
        let server = |code| E::ServerError {
            code,
            url: "http://127.0.0.1/v2/".into(),
            message: String::new(),
        };
        assert!(is_transient(&server(500)));
        assert!(is_transient(&server(503)));
        assert!(is_transient(&server(429)));
        assert!(!is_transient(&server(404)));
        let refused_upload = E::ServerError {
            code: 400,
            url: "http://127.0.0.1/v2/x/blobs/uploads/1".into(),
            message: r#"{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match uploaded content"}]}"#.into(),
        };
        assert!(is_transient(&refused_upload));
        assert!(!is_transient(&E::UnauthorizedError {
            url: "http://127.0.0.1/v2/".into()
        }));
        assert!(!is_transient(&E::ImageManifestNotFoundError("x".into())));
    }

    #[test]
    fn a_bad_limit_names_the_variable() {
        let error = positive(TIMEOUT_ENV, "soon").unwrap_err();
        assert!(
            error
                .message
                .contains("LAMBDA_PACK_REGISTRY_TIMEOUT=`soon`")
        );
        assert!(error.help.unwrap().contains("12"));
        assert!(positive(ATTEMPTS_ENV, "0").is_err());
        assert_eq!(positive(ATTEMPTS_ENV, " 3 ").unwrap(), 3);
    }
}
