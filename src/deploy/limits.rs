//! How long a call to AWS may hang and how a retry is told. The SDK does the retrying (standard
//! mode, exponential backoff with jitter, throttling and 5xx and timeouts counted as transient;
//! `AWS_MAX_ATTEMPTS`, `AWS_RETRY_MODE` and the profile's `max_attempts`/`retry_mode` are read
//! by its config loader); this module sets its timeouts, which it has none of by default but a
//! connect timeout, and says each retry on stderr as cargo would.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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
/// With the SDK's 3 attempts, an endpoint that accepts and never answers is given up after about
/// a minute, each retry said. Enough for a 50 MB ZIP sent inline at 30 Mbit/s; a slower uplink
/// raises [`TIMEOUT_ENV`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

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

/// Says on stderr that the SDK is about to try a call again: why the last attempt failed, the
/// endpoint, and how long the call has taken so far.
///
/// Calls run concurrently (`deploy -j`) on one client, so what an attempt got is kept per call,
/// and forgotten when the call ends. A call is known by the address of its `ConfigBag`: the SDK
/// makes one per call and hands the same one to every hook of it, in a pinned future (the sent
/// request, which carries the call's invocation id, is gone by the time an attempt ends).
#[derive(Debug)]
pub struct RetryNotice {
    pub max_attempts: u32,
    calls: Mutex<HashMap<usize, CallState>>,
}

/// What one call's attempts have shown so far.
#[derive(Debug, Default)]
struct CallState {
    /// What the last failed attempt got.
    last_failure: Option<String>,
    /// When the call's first attempt started.
    first_attempt: Option<Instant>,
    /// Where the last attempt was sent (known once the endpoint is resolved, before transmit).
    last_endpoint: Option<String>,
}

impl RetryNotice {
    pub fn new(max_attempts: u32) -> RetryNotice {
        RetryNotice {
            max_attempts,
            calls: Mutex::new(HashMap::new()),
        }
    }

    fn with_call<T>(&self, call: &ConfigBag, f: impl FnOnce(&mut CallState) -> T) -> T {
        let key = call as *const ConfigBag as usize;
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        f(calls.entry(key).or_default())
    }
}

/// `scheme://host[:port]` of a request's URI (the endpoint, without the path).
fn endpoint(uri: &str) -> String {
    match uri.parse::<http::Uri>() {
        Ok(uri) => match (uri.scheme_str(), uri.authority()) {
            (Some(scheme), Some(authority)) => format!("{scheme}://{authority}"),
            _ => uri.to_string(),
        },
        Err(_) => uri.to_string(),
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
        let (waited, why, endpoint) = self.with_call(cfg, |call| {
            if attempt <= 1 || call.first_attempt.is_none() {
                call.first_attempt = Some(Instant::now());
            }
            (
                call.first_attempt.map_or(Duration::ZERO, |at| at.elapsed()),
                call.last_failure.take(),
                call.last_endpoint.clone(),
            )
        });
        if attempt > 1 {
            let operation = cfg.load::<Metadata>().map_or_else(
                || "a call".to_string(),
                |m| format!("{}:{}", m.service().to_lowercase(), m.name()),
            );
            // A timed-out attempt ends without a response or an error to read.
            let why = why.unwrap_or_else(|| "no answer to the last attempt".into());
            let endpoint = endpoint.unwrap_or_else(|| "the endpoint".into());
            crate::output::warn_stderr(format!(
                "AWS {operation}: {why}; retrying (attempt {attempt}/{}) at {}, {:.1}s after the first attempt started",
                self.max_attempts,
                endpoint,
                waited.as_secs_f64()
            ));
        }
        Ok(())
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> std::result::Result<(), BoxError> {
        let at = endpoint(context.request().uri());
        self.with_call(cfg, |call| call.last_endpoint = Some(at));
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> std::result::Result<(), BoxError> {
        let failure = match (context.response(), context.output_or_error()) {
            (Some(response), _) if !response.status().is_success() => {
                Some(format!("HTTP {}", response.status().as_u16()))
            }
            (_, Some(Err(error))) => Some(super::aws::error_chain(error)),
            _ => None,
        };
        self.with_call(cfg, |call| call.last_failure = failure);
        Ok(())
    }

    fn read_after_execution(
        &self,
        _: &FinalizerInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> std::result::Result<(), BoxError> {
        let key = &*cfg as *const ConfigBag as usize;
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_default_a_silent_endpoint_is_given_up_after_about_a_minute() {
        // The SDK's standard mode makes 3 attempts.
        assert!(DEFAULT_TIMEOUT * 3 <= Duration::from_secs(60));
        assert_eq!(
            endpoint("http://127.0.0.1:4566/2015-03-31/functions/tiny?Qualifier=1"),
            "http://127.0.0.1:4566"
        );
        assert_eq!(
            endpoint("https://lambda.eu-west-1.amazonaws.com/2015-03-31/functions"),
            "https://lambda.eu-west-1.amazonaws.com"
        );
    }
}
