//! The Extensions API (`/2020-01-01/extension`): register, next event, init and exit errors.

use std::collections::VecDeque;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::{Request, StatusCode};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::http::{Answer, accepted, answer, error, header, read_body, set_header};
use super::report::InitErrorReport;
use super::state::Parked;
use super::state::{Extension, Shared, uuid_v4};

pub(super) async fn register(shared: &Shared, request: Request<Incoming>) -> Answer {
    let Some(name) = header(request.headers(), "lambda-extension-name") else {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "missing the Lambda-Extension-Name header",
        );
    };
    let body = match read_body(request.into_body(), 64 * 1024, 64 * 1024).await {
        Ok(read) if !read.over_limit => read.data,
        _ => return error(StatusCode::BAD_REQUEST, "InvalidRequest", "unreadable body"),
    };
    let events: Vec<String> = match serde_json::from_slice::<Value>(&body) {
        Ok(value) => match value.get("events").and_then(Value::as_array) {
            Some(events) => events
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            None => Vec::new(),
        },
        Err(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidRequest",
                "the body is not JSON like {\"events\":[\"INVOKE\",\"SHUTDOWN\"]}",
            );
        }
    };
    if let Some(bad) = events.iter().find(|e| *e != "INVOKE" && *e != "SHUTDOWN") {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidEventType",
            &format!("unknown event type {bad}; use INVOKE and/or SHUTDOWN"),
        );
    }
    let id = uuid_v4();
    let refused = shared.update(|s| {
        if s.init_done {
            return Some(error(
                StatusCode::FORBIDDEN,
                "Extension.InvalidState",
                &format!("extension {name} registers after the Init phase; register before the runtime's first next"),
            ));
        }
        // The processes started from /opt/extensions register under their file names; any
        // other name comes from the function's own process: an internal extension, which
        // Lambda accepts but never sends SHUTDOWN.
        let internal = !s.allowed_extensions.contains(&name);
        if internal && events.iter().any(|e| e == "SHUTDOWN") {
            return Some(error(
                StatusCode::BAD_REQUEST,
                "ShutdownEventNotSupportedForInternalExtension",
                &format!(
                    "internal extension {name} cannot register for SHUTDOWN (only external extensions in /opt/extensions receive it)"
                ),
            ));
        }
        if s.extension(&name).is_some() {
            return Some(error(
                StatusCode::CONFLICT,
                "Extension.AlreadyRegistered",
                &format!("extension {name} is already registered"),
            ));
        }
        s.extensions.push(Extension {
            name: name.clone(),
            internal,
            id: id.clone(),
            events,
            waiting: 0,
            queue: VecDeque::new(),
            received: Vec::new(),
            errors: Vec::new(),
        });
        None
    });
    if let Some(refused) = refused {
        return refused;
    }
    let state = shared.lock();
    let body = json!({
        "functionName": state.config.function_name,
        "functionVersion": "$LATEST",
        "handler": state.config.handler,
    });
    drop(state);
    let mut response = answer(StatusCode::OK, body.to_string());
    set_header(&mut response, "lambda-extension-identifier", &id);
    response
}

fn unknown_extension() -> Answer {
    error(
        StatusCode::FORBIDDEN,
        "Extension.UnknownExtensionIdentifier",
        "missing or unknown Lambda-Extension-Identifier header; register first",
    )
}

pub(super) async fn extension_next(shared: &Shared, headers: &HeaderMap) -> Answer {
    let Some(id) = header(headers, "lambda-extension-identifier") else {
        return unknown_extension();
    };
    let known = shared.update(|s| match s.extensions.iter_mut().find(|e| e.id == id) {
        Some(ext) => {
            ext.waiting += 1;
            true
        }
        None => false,
    });
    if !known {
        return unknown_extension();
    }
    let _parked = Parked {
        shared,
        extension: Some(id.clone()),
    };
    let far = Instant::now() + Duration::from_secs(365 * 24 * 3600);
    let event = shared
        .wait_for(far, |s| {
            let ext = s.extensions.iter_mut().find(|e| e.id == id)?;
            let (kind, event) = ext.queue.pop_front()?;
            ext.received.push(kind);
            Some(event)
        })
        .await;
    match event {
        Some(event) => {
            let mut response = answer(StatusCode::OK, event);
            set_header(
                &mut response,
                "lambda-extension-event-identifier",
                &uuid_v4(),
            );
            response
        }
        None => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ServiceException",
            "no event",
        ),
    }
}

pub(super) fn extension_error(shared: &Shared, which: &str, headers: &HeaderMap) -> Answer {
    let Some(id) = header(headers, "lambda-extension-identifier") else {
        return unknown_extension();
    };
    let error_type = header(headers, "lambda-extension-function-error-type")
        .unwrap_or_else(|| "Extension.Unknown".into());
    let phase = which.trim_start_matches('/').replace("/error", "");
    let known = shared.update(|s| {
        let Some(ext) = s.extensions.iter_mut().find(|e| e.id == id) else {
            return false;
        };
        ext.errors.push(format!("{phase}: {error_type}"));
        if phase == "init" {
            let source = ext.name.clone();
            s.init_error.get_or_insert(InitErrorReport {
                source,
                error_type: "Extension.InitError".into(),
                error_message: Some(error_type),
                body: String::new(),
            });
        }
        true
    });
    if known {
        accepted()
    } else {
        unknown_extension()
    }
}
