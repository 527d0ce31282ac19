//! The HTTP side: Runtime API, Extensions API and the Logs/Telemetry APIs on one loopback port.
//!
//! Long polls (`/invocation/next`, `/event/next`) park until the lifecycle puts an invocation or
//! an extension event into the shared state (see `state.rs`).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::MAX_RESPONSE_BYTES;
use super::extensions_api::{extension_error, extension_next, register};
use super::http::{Answer, accepted, answer, error, header, read_body, set_header};
use super::report::{InitErrorReport, InvokeOutcome};
use super::state::Parked;
use super::state::{Current, Shared};
use super::telemetry::Api;

const RUNTIME: &str = "/2018-06-01/runtime";
const EXTENSION: &str = "/2020-01-01/extension";
/// A streamed response may reach 200 MB; beyond that the stream is refused.
const MAX_STREAM_BYTES: u64 = 200 * 1024 * 1024;
/// Error documents are small; keep at most this much of one.
const MAX_ERROR_BYTES: usize = 1024 * 1024;
/// Connections served at once; a process opening more waits for a free slot.
const MAX_CONNECTIONS: usize = 64;

/// Serves the APIs on `listener` until the task is dropped.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of file descriptors or similar: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(shared.clone(), request));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
            drop(slot);
        });
    }
}

async fn handle(shared: Arc<Shared>, request: Request<Incoming>) -> Result<Answer, Infallible> {
    shared.lock().requests += 1;
    let path = request.uri().path().to_string();
    let method = request.method().clone();
    let response = if let Some(rest) = path.strip_prefix(RUNTIME) {
        match (rest, &method) {
            ("/invocation/next", &Method::GET) => runtime_next(&shared).await,
            ("/init/error", &Method::POST) => runtime_init_error(&shared, request).await,
            (rest, &Method::POST) if rest.starts_with("/invocation/") => {
                let parts: Vec<&str> = rest.split('/').collect();
                match parts.as_slice() {
                    ["", "invocation", id, "response"] => {
                        invocation_response(&shared, id, request).await
                    }
                    ["", "invocation", id, "error"] => invocation_error(&shared, id, request).await,
                    _ => not_found(&path),
                }
            }
            _ => not_found(&path),
        }
    } else if let Some(rest) = path.strip_prefix(EXTENSION) {
        match (rest, &method) {
            ("/register", &Method::POST) => register(&shared, request).await,
            ("/event/next", &Method::GET) => extension_next(&shared, request.headers()).await,
            ("/init/error", &Method::POST) | ("/exit/error", &Method::POST) => {
                extension_error(&shared, rest, request.headers())
            }
            _ => not_found(&path),
        }
    } else if path.trim_end_matches('/') == "/2020-08-15/logs" && method == Method::PUT {
        super::subscribe::subscribe(&shared, Api::Logs, request).await
    } else if path.trim_end_matches('/') == "/2022-07-01/telemetry" && method == Method::PUT {
        super::subscribe::subscribe(&shared, Api::Telemetry, request).await
    } else {
        not_found(&path)
    };
    Ok(response)
}

fn not_found(path: &str) -> Answer {
    error(
        StatusCode::NOT_FOUND,
        "InvalidRequest",
        &format!("no such API: {path}"),
    )
}

async fn runtime_next(shared: &Shared) -> Answer {
    shared.update(|s| s.runtime_waiting += 1);
    let _parked = Parked {
        shared,
        extension: None,
    };
    let far = Instant::now() + Duration::from_secs(365 * 24 * 3600);
    let Some(invocation) = shared
        .wait_for(far, |s| {
            let invocation = s.runtime_inbox.pop_front()?;
            s.taken.push(Current {
                request_id: invocation.request_id.clone(),
                outcome: None,
                taken_at: Instant::now(),
            });
            Some(invocation)
        })
        .await
    else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ServiceException",
            "no event",
        );
    };
    let (arn, tenant_id) = {
        let state = shared.lock();
        (state.config.arn.clone(), state.config.tenant_id.clone())
    };
    let mut response = answer(StatusCode::OK, invocation.body);
    set_header(
        &mut response,
        "lambda-runtime-aws-request-id",
        &invocation.request_id,
    );
    set_header(
        &mut response,
        "lambda-runtime-deadline-ms",
        &invocation.deadline_ms.to_string(),
    );
    set_header(&mut response, "lambda-runtime-invoked-function-arn", &arn);
    set_header(
        &mut response,
        "lambda-runtime-trace-id",
        &invocation.trace_id,
    );
    if let Some(tenant_id) = tenant_id {
        set_header(&mut response, "lambda-runtime-aws-tenant-id", &tenant_id);
    }
    response
}

/// The refusal when `id` is not the invocation in flight or was already answered.
fn refuse_unless_current(shared: &Shared, id: &str) -> Option<Answer> {
    let state = shared.lock();
    match state.taken(id) {
        Some(current) if current.outcome.is_none() => None,
        Some(_) => Some(error(
            StatusCode::BAD_REQUEST,
            "InvalidStateTransition",
            &format!("invocation {id} was already answered"),
        )),
        _ => Some(error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestID",
            &format!("invalid request id {id}: no such invocation is in flight"),
        )),
    }
}

fn finish(shared: &Shared, id: &str, outcome: InvokeOutcome) {
    shared.update(|s| {
        if let Some(current) = s.taken_mut(id) {
            current.outcome.get_or_insert(outcome);
        }
    });
}

async fn invocation_response(shared: &Shared, id: &str, request: Request<Incoming>) -> Answer {
    if let Some(refused) = refuse_unless_current(shared, id) {
        return refused;
    }
    let streamed = header(request.headers(), "lambda-runtime-function-response-mode")
        .is_some_and(|mode| mode.eq_ignore_ascii_case("streaming"));
    let limit = if streamed {
        MAX_STREAM_BYTES
    } else {
        MAX_RESPONSE_BYTES as u64
    };
    let too_large = if !streamed
        && header(request.headers(), "content-length")
            .and_then(|len| len.parse::<u64>().ok())
            .is_some_and(|len| len > limit)
    {
        true
    } else {
        // Kept whole: the JSON report shows the response in full.
        match read_body(request.into_body(), limit as usize, limit).await {
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequest",
                    "the response body could not be read",
                );
            }
            Ok(read) if read.over_limit => true,
            Ok(read) => {
                let trailers = read.trailers.as_ref();
                let error_type =
                    trailers.and_then(|t| header(t, "lambda-runtime-function-error-type"));
                let outcome = match error_type {
                    Some(error_type) => {
                        let body = trailers
                            .and_then(|t| header(t, "lambda-runtime-function-error-body"))
                            .unwrap_or_default();
                        function_error(error_type, decode_error_body(&body))
                    }
                    None => InvokeOutcome::response(read.data, read.len, streamed),
                };
                finish(shared, id, outcome);
                return accepted();
            }
        }
    };
    debug_assert!(too_large);
    let message =
        format!("Response payload size exceeded maximum allowed payload size ({limit} bytes).");
    finish(
        shared,
        id,
        InvokeOutcome::FunctionError {
            error_type: "Function.ResponseSizeTooLarge".into(),
            error_message: Some(message.clone()),
            body: String::new(),
        },
    );
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "RequestEntityTooLarge",
        &message,
    )
}

/// Streaming error trailers carry the error document base64-encoded; accept plain text too.
fn decode_error_body(body: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .unwrap_or_else(|| body.to_string())
}

/// Builds the outcome of an `/error` call: the body's `errorType` wins over the header's.
fn function_error(header_type: String, body: String) -> InvokeOutcome {
    let parsed: Option<Value> = serde_json::from_str(&body).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(name))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    InvokeOutcome::FunctionError {
        error_type: field("errorType").unwrap_or(header_type),
        error_message: field("errorMessage"),
        body,
    }
}

async fn read_error(request: Request<Incoming>) -> (String, String) {
    let error_type = header(request.headers(), "lambda-runtime-function-error-type")
        .unwrap_or_else(|| "Unhandled".to_string());
    let body = match read_body(request.into_body(), MAX_ERROR_BYTES, u64::MAX).await {
        Ok(read) => String::from_utf8_lossy(&read.data).into_owned(),
        Err(_) => String::new(),
    };
    (error_type, body)
}

async fn invocation_error(shared: &Shared, id: &str, request: Request<Incoming>) -> Answer {
    if let Some(refused) = refuse_unless_current(shared, id) {
        return refused;
    }
    let (error_type, body) = read_error(request).await;
    finish(shared, id, function_error(error_type, body));
    accepted()
}

async fn runtime_init_error(shared: &Shared, request: Request<Incoming>) -> Answer {
    let (error_type, body) = read_error(request).await;
    if let InvokeOutcome::FunctionError {
        error_type,
        error_message,
        body,
    } = function_error(error_type, body)
    {
        shared.update(|s| {
            s.init_error.get_or_insert(InitErrorReport {
                source: "runtime".into(),
                error_type,
                error_message,
                body,
            });
        });
    }
    accepted()
}
