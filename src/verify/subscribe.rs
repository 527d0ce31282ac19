//! `PUT /2022-07-01/telemetry` and `PUT /2020-08-15/logs`: a registered extension's
//! subscription, checked as Lambda checks it (`telemetry.rs`), added to the subscribers and given
//! its delivery task (`delivery.rs`).

use std::collections::VecDeque;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};

use super::http::{Answer, answer, error, header, read_body};
use super::state::Shared;
use super::telemetry::{
    Api, Record, Subscriber, SubscriptionReport, parse_subscription_body, queue,
};

fn validation(message: String) -> Answer {
    error(StatusCode::BAD_REQUEST, "ValidationError", &message)
}

/// `PUT /2022-07-01/telemetry` or `PUT /2020-08-15/logs`.
pub(super) async fn subscribe(
    shared: &Arc<Shared>,
    api: Api,
    request: Request<Incoming>,
) -> Answer {
    let Some(id) = header(request.headers(), "lambda-extension-identifier") else {
        return error(
            StatusCode::FORBIDDEN,
            "Extension.UnknownExtensionIdentifier",
            "missing Lambda-Extension-Identifier header; register the extension before subscribing",
        );
    };
    let Some(extension) = shared
        .lock()
        .extensions
        .iter()
        .find(|e| e.id == id)
        .map(|e| e.name.clone())
    else {
        return error(
            StatusCode::FORBIDDEN,
            "Extension.UnknownExtensionIdentifier",
            &format!("unknown extension identifier {id}; register first"),
        );
    };
    let body = match read_body(request.into_body(), 64 * 1024, 64 * 1024).await {
        Ok(read) if !read.over_limit => read.data,
        _ => return validation("the subscription body is unreadable or over 64 KiB".into()),
    };
    let (types, buffering, destination, port) = match parse_subscription_body(api, &body) {
        Ok(parsed) => parsed,
        Err(message) => return validation(message),
    };
    let subscriber = Subscriber {
        extension: extension.clone(),
        api,
        types: types.clone(),
        buffering,
        port,
        buffer: VecDeque::new(),
        buffer_bytes: 0,
        delivering: false,
        report: SubscriptionReport {
            extension: extension.clone(),
            api,
            types: types.clone(),
            buffering,
            destination,
            records_sent: 0,
            records_accepted: 0,
            records_dropped: 0,
            batches: Vec::new(),
        },
    };
    let index = shared.update(|s| {
        let telemetry = &mut s.telemetry;
        // A second subscription of the same extension to the same API replaces the first.
        if let Some(old) = telemetry
            .subscribers
            .iter()
            .position(|x| x.extension == extension && x.api == api)
        {
            telemetry.subscribers[old].types = types.clone();
            telemetry.subscribers[old].buffering = buffering;
            telemetry.subscribers[old].port = port;
            return None;
        }
        let mut subscriber = subscriber;
        for record in &telemetry.history {
            queue(&mut subscriber, record);
        }
        telemetry.subscribers.push(subscriber);
        let index = telemetry.subscribers.len() - 1;
        telemetry.emit(Record::subscription(api, &extension, &types));
        Some(index)
    });
    if let Some(index) = index {
        tokio::spawn(super::delivery::deliver(shared.clone(), index));
    }
    answer(StatusCode::OK, "OK")
}
