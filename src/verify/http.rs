//! The HTTP pieces both APIs share: answers, headers, bounded body reads.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::json;

pub(super) type Answer = Response<Full<Bytes>>;

pub(super) fn answer(status: StatusCode, body: impl Into<Bytes>) -> Answer {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

pub(super) fn error(status: StatusCode, error_type: &str, message: &str) -> Answer {
    let body = json!({ "errorType": error_type, "errorMessage": message });
    answer(status, body.to_string())
}

pub(super) fn accepted() -> Answer {
    answer(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
}

pub(super) fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

pub(super) fn set_header(response: &mut Answer, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}

/// Reads a body up to `keep` bytes (the rest is counted, up to `limit`), with its trailers.
pub(super) struct ReadBody {
    pub(super) data: Vec<u8>,
    pub(super) len: u64,
    pub(super) over_limit: bool,
    pub(super) trailers: Option<HeaderMap>,
}

pub(super) async fn read_body(
    mut body: Incoming,
    keep: usize,
    limit: u64,
) -> Result<ReadBody, hyper::Error> {
    let mut read = ReadBody {
        data: Vec::new(),
        len: 0,
        over_limit: false,
        trailers: None,
    };
    while let Some(frame) = body.frame().await {
        let frame = frame?;
        match frame.into_data() {
            Ok(chunk) => {
                read.len += chunk.len() as u64;
                if read.len > limit {
                    read.over_limit = true;
                    return Ok(read);
                }
                let room = keep.saturating_sub(read.data.len());
                read.data.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Err(frame) => {
                if let Ok(trailers) = frame.into_trailers() {
                    read.trailers = Some(trailers);
                }
            }
        }
    }
    Ok(read)
}
