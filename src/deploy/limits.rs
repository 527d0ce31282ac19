//! How long a call to AWS may hang and how a retry is told. The SDK does the retrying (standard
//! mode, exponential backoff with jitter, throttling and 5xx and timeouts counted as transient;
//! `AWS_MAX_ATTEMPTS`, `AWS_RETRY_MODE` and the profile's `max_attempts`/`retry_mode` are read
//! by its config loader); this module sets its timeouts, which it has none of by default but a
//! connect timeout, and says each retry on stderr as cargo would.

use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_lambda::config::interceptors::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_lambda::config::timeout::TimeoutConfig;
use aws_sdk_lambda::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::retries::RequestAttempts;

use crate::error::{Error, Result};

/// Seconds one attempt at an AWS call may take, from connecting to the last byte of the answer.
pub const TIMEOUT_ENV: &str = "LAMBDA_PACK_AWS_TIMEOUT";
/// Generous enough for a 50 MB layer sent inline over a slow uplink.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// The SDK's timeouts: [`TIMEOUT_ENV`] (else [`DEFAULT_TIMEOUT`]) per attempt, and a connect
/// timeout of at most 10 s.
pub fn timeouts() -> Result<TimeoutConfig> {
    let attempt = match std::env::var(TIMEOUT_ENV) {
        Ok(value) => match value.trim().parse::<u64>() {
            Ok(seconds) if seconds > 0 => Duration::from_secs(seconds),
            _ => {
                return Err(Error::config(format!(
                    "{TIMEOUT_ENV}=`{value}` is not a positive whole number of seconds"
                ))
                .with_help(format!(
                    "set {TIMEOUT_ENV} to a number such as {} (or unset it for the default)",
                    DEFAULT_TIMEOUT.as_secs()
                )));
            }
        },
        Err(_) => DEFAULT_TIMEOUT,
    };
    Ok(TimeoutConfig::builder()
        .connect_timeout(attempt.min(Duration::from_secs(10)))
        .operation_attempt_timeout(attempt)
        .build())
}

/// Says on stderr that the SDK is about to try a call again, and why the last attempt failed.
#[derive(Debug)]
pub struct RetryNotice {
    pub max_attempts: u32,
    /// What the last failed attempt got (calls are made one at a time, so one slot is enough).
    last_failure: Mutex<Option<String>>,
}

impl RetryNotice {
    pub fn new(max_attempts: u32) -> RetryNotice {
        RetryNotice {
            max_attempts,
            last_failure: Mutex::new(None),
        }
    }
}

impl Intercept for RetryNotice {
    fn name(&self) -> &'static str {
        "RetryNotice"
    }

    fn read_before_attempt(
        &self,
        _: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> std::result::Result<(), BoxError> {
        let attempt = cfg.load::<RequestAttempts>().map_or(1, |a| a.attempts());
        if attempt > 1 {
            let operation = cfg.load::<Metadata>().map_or_else(
                || "a call".to_string(),
                |m| format!("{}:{}", m.service().to_lowercase(), m.name()),
            );
            let why = self
                .last_failure
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
                .unwrap_or_else(|| "it failed".into());
            crate::output::warn_stderr(format!(
                "AWS {operation}: {why}; retrying (attempt {attempt}/{})",
                self.max_attempts
            ));
        }
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> std::result::Result<(), BoxError> {
        let failure = match (context.response(), context.output_or_error()) {
            (Some(response), _) if !response.status().is_success() => {
                Some(format!("HTTP {}", response.status().as_u16()))
            }
            (_, Some(Err(error))) => Some(super::aws::error_chain(error)),
            _ => None,
        };
        *self.last_failure.lock().unwrap_or_else(|e| e.into_inner()) = failure;
        Ok(())
    }
}
