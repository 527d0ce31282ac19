//! The Runtime and Extensions APIs on the wire, driven by a bare HTTP/1.1 client on `TcpStream`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};

use super::api::serve;
use super::function_arn;
use super::report::InvokeOutcome;
use super::state::{ApiConfig, Current, Invocation, Shared, State};

struct Server {
    shared: Arc<Shared>,
    addr: SocketAddr,
}

/// Serves the APIs from a thread of its own (it ends with the test process).
fn server(allowed: &[&str]) -> Server {
    let config = ApiConfig {
        function_name: "fn".into(),
        handler: "bootstrap".into(),
        arn: function_arn("us-east-1", "fn"),
        tenant_id: Some("tenant-7".into()),
    };
    let allowed = allowed.iter().map(|s| s.to_string()).collect();
    let shared = Shared::new(config, allowed);
    let (sender, receiver) = std::sync::mpsc::channel();
    let serving = shared.clone();
    thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            sender.send(listener.local_addr().unwrap()).unwrap();
            serve(listener, serving).await;
        });
    });
    let addr = receiver.recv().unwrap();
    Server { shared, addr }
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// Sends `head` (request line and headers, without the blank line) and `body` verbatim.
fn raw(addr: SocketAddr, head: &str, body: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(format!("{head}\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    stream.write_all(body).unwrap();
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).unwrap();
    let split = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(bytes[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    Reply {
        status,
        headers,
        body: bytes[split + 4..].to_vec(),
    }
}

fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("\r\n{name}: {value}"));
    }
    raw(addr, &head, body)
}

/// Polls the state until `ready` holds (the parked request has arrived).
fn until(shared: &Shared, ready: impl Fn(&State) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !ready(&shared.lock()) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for the server"
        );
        thread::sleep(Duration::from_millis(5));
    }
}

fn in_flight(server: &Server, id: &str) {
    server.shared.update(|s| {
        s.taken.push(Current {
            request_id: id.into(),
            outcome: None,
            taken_at: tokio::time::Instant::now(),
        });
    });
}

fn outcome(server: &Server) -> Option<InvokeOutcome> {
    server.shared.lock().taken.last()?.outcome.clone()
}

const INVOCATION: &str = "/2018-06-01/runtime/invocation";

#[test]
fn next_carries_lambdas_headers_and_the_event() {
    let server = server(&[]);
    let addr = server.addr;
    let client =
        thread::spawn(move || request(addr, "GET", &format!("{INVOCATION}/next"), &[], b""));
    until(&server.shared, |s| s.runtime_waiting == 1);
    server.shared.update(|s| {
        s.runtime_inbox.push_back(Invocation {
            request_id: "8476a536-e9f4-11e8-9739-2dfe598c3fcd".into(),
            deadline_ms: 1_542_409_706_888,
            trace_id: "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=0"
                .into(),
            body: Bytes::from_static(br#"{"key":"value"}"#),
        })
    });
    let reply = client.join().unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, br#"{"key":"value"}"#);
    assert_eq!(
        reply.header("lambda-runtime-aws-request-id"),
        Some("8476a536-e9f4-11e8-9739-2dfe598c3fcd")
    );
    let deadline = reply.header("lambda-runtime-deadline-ms").unwrap();
    assert_eq!(deadline.parse::<u64>().unwrap(), 1_542_409_706_888);
    assert_eq!(
        reply.header("lambda-runtime-invoked-function-arn"),
        Some("arn:aws:lambda:us-east-1:000000000000:function:fn")
    );
    assert!(
        reply
            .header("lambda-runtime-trace-id")
            .unwrap()
            .starts_with("Root=1-")
    );
    assert_eq!(
        reply.header("lambda-runtime-aws-tenant-id"),
        Some("tenant-7")
    );
    let state = server.shared.lock();
    assert_eq!(state.runtime_waiting, 0);
    assert_eq!(
        state.taken.last().unwrap().request_id,
        "8476a536-e9f4-11e8-9739-2dfe598c3fcd"
    );
}

#[test]
fn response_is_accepted_once_and_only_for_the_invocation_in_flight() {
    let server = server(&[]);
    in_flight(&server, "abc");
    let unknown = request(
        server.addr,
        "POST",
        &format!("{INVOCATION}/nope/response"),
        &[],
        b"{}",
    );
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.json()["errorType"], "InvalidRequestID");

    let ok = request(
        server.addr,
        "POST",
        &format!("{INVOCATION}/abc/response"),
        &[],
        b"\"hi\"",
    );
    assert_eq!(ok.status, 202);
    assert_eq!(ok.json(), json!({"status": "OK"}));
    assert_eq!(outcome(&server).unwrap().body(), Some(&b"\"hi\""[..]));

    let again = request(
        server.addr,
        "POST",
        &format!("{INVOCATION}/abc/response"),
        &[],
        b"{}",
    );
    assert_eq!(again.status, 400);
}

#[test]
fn response_over_six_mib_is_413() {
    let server = server(&[]);
    in_flight(&server, "big");
    let head = format!(
        "POST {INVOCATION}/big/response HTTP/1.1\r\nHost: x\r\nContent-Length: {}",
        6 * 1024 * 1024 + 1
    );
    let reply = raw(server.addr, &head, b"");
    assert_eq!(reply.status, 413);
    match outcome(&server).unwrap() {
        InvokeOutcome::FunctionError { error_type, .. } => {
            assert_eq!(error_type, "Function.ResponseSizeTooLarge")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn error_posts_are_accepted_and_keep_the_functions_error_type() {
    let server = server(&[]);
    in_flight(&server, "e1");
    let body = br#"{"errorMessage":"boom","errorType":"MyError","stackTrace":[]}"#;
    let headers = [("Lambda-Runtime-Function-Error-Type", "Unhandled")];
    let reply = request(
        server.addr,
        "POST",
        &format!("{INVOCATION}/e1/error"),
        &headers,
        body,
    );
    assert_eq!(reply.status, 202);
    match outcome(&server).unwrap() {
        InvokeOutcome::FunctionError {
            error_type,
            error_message,
            ..
        } => {
            assert_eq!(error_type, "MyError");
            assert_eq!(error_message.as_deref(), Some("boom"));
        }
        other => panic!("{other:?}"),
    }

    let headers = [(
        "Lambda-Runtime-Function-Error-Type",
        "Runtime.ConfigInvalid",
    )];
    let reply = request(
        server.addr,
        "POST",
        "/2018-06-01/runtime/init/error",
        &headers,
        b"not json",
    );
    assert_eq!(reply.status, 202);
    let init = server.shared.lock().init_error.clone().unwrap();
    assert_eq!(
        (init.source.as_str(), init.error_type.as_str()),
        ("runtime", "Runtime.ConfigInvalid")
    );
}

fn chunked(server: &Server, id: &str, chunks: &[&str], trailers: &str) -> Reply {
    let head = format!(
        "POST {INVOCATION}/{id}/response HTTP/1.1\r\nHost: x\r\n\
         Lambda-Runtime-Function-Response-Mode: streaming\r\nTransfer-Encoding: chunked\r\n\
         Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body"
    );
    let mut body = String::new();
    for chunk in chunks {
        body.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    body.push_str(&format!("0\r\n{trailers}\r\n"));
    raw(server.addr, &head, body.as_bytes())
}

#[test]
fn streamed_responses_and_their_error_trailers() {
    let server = server(&[]);
    in_flight(&server, "s1");
    let reply = chunked(&server, "s1", &["hello ", "world"], "");
    assert_eq!(reply.status, 202);
    match outcome(&server).unwrap() {
        InvokeOutcome::Response {
            body,
            len,
            streamed,
            ..
        } => {
            assert_eq!(
                (body.as_slice(), len, streamed),
                (&b"hello world"[..], 11, true)
            );
        }
        other => panic!("{other:?}"),
    }

    in_flight(&server, "s2");
    // {"errorMessage":"mid-stream","errorType":"StreamFailed"}, base64-encoded as Lambda expects.
    let trailers = "Lambda-Runtime-Function-Error-Type: StreamFailed\r\n\
         Lambda-Runtime-Function-Error-Body: eyJlcnJvck1lc3NhZ2UiOiJtaWQtc3RyZWFtIiwiZXJyb3JUeXBlIjoiU3RyZWFtRmFpbGVkIn0=\r\n";
    let reply = chunked(&server, "s2", &["partial"], trailers);
    assert_eq!(reply.status, 202);
    match outcome(&server).unwrap() {
        InvokeOutcome::FunctionError {
            error_type,
            error_message,
            ..
        } => {
            assert_eq!(error_type, "StreamFailed");
            assert_eq!(error_message.as_deref(), Some("mid-stream"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn extensions_register_by_file_name_and_get_queued_events() {
    let server = server(&["recorder"]);
    let register = "/2020-01-01/extension/register";
    let events = br#"{"events":["INVOKE","SHUTDOWN"]}"#;
    // Another name comes from the function's own process: an internal extension, which may not
    // take SHUTDOWN.
    let internal = request(
        server.addr,
        "POST",
        register,
        &[("Lambda-Extension-Name", "other")],
        events,
    );
    assert_eq!(internal.status, 400);
    assert_eq!(
        internal.json()["errorType"],
        "ShutdownEventNotSupportedForInternalExtension"
    );
    assert!(server.shared.lock().extensions.is_empty());

    let reply = request(
        server.addr,
        "POST",
        register,
        &[("Lambda-Extension-Name", "recorder")],
        events,
    );
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json(),
        json!({"functionName": "fn", "functionVersion": "$LATEST", "handler": "bootstrap"})
    );
    let id = reply
        .header("lambda-extension-identifier")
        .unwrap()
        .to_string();
    assert_eq!(id.len(), 36);
    assert_eq!(&id[14..15], "4", "a version 4 UUID: {id}");

    let twice = request(
        server.addr,
        "POST",
        register,
        &[("Lambda-Extension-Name", "recorder")],
        events,
    );
    assert_eq!(twice.status, 409);

    let addr = server.addr;
    let next_id = id.clone();
    let client = thread::spawn(move || {
        let headers = [("Lambda-Extension-Identifier", next_id.as_str())];
        request(
            addr,
            "GET",
            "/2020-01-01/extension/event/next",
            &headers,
            b"",
        )
    });
    until(&server.shared, |s| s.extensions[0].waiting == 1);
    let event = json!({"eventType": "SHUTDOWN", "shutdownReason": "spindown", "deadlineMs": 1});
    server.shared.update(|s| {
        s.extensions[0]
            .queue
            .push_back(("SHUTDOWN".into(), Bytes::from(event.to_string())))
    });
    let reply = client.join().unwrap();
    assert_eq!((reply.status, reply.json()), (200, event));
    assert_eq!(server.shared.lock().extensions[0].received, ["SHUTDOWN"]);

    let headers = [
        ("Lambda-Extension-Identifier", id.as_str()),
        ("Lambda-Extension-Function-Error-Type", "Extension.Broken"),
    ];
    let exit = request(
        server.addr,
        "POST",
        "/2020-01-01/extension/exit/error",
        &headers,
        b"{}",
    );
    assert_eq!(exit.status, 202);
    let unknown = request(
        server.addr,
        "GET",
        "/2020-01-01/extension/event/next",
        &[],
        b"",
    );
    assert_eq!(unknown.status, 403);
}

#[test]
fn subscriptions_need_a_registered_extension_and_unknown_paths_are_404() {
    let server = server(&[]);
    for path in ["/2020-08-15/logs", "/2022-07-01/telemetry"] {
        let reply = request(server.addr, "PUT", path, &[], b"{}");
        assert_eq!(reply.status, 403);
        assert_eq!(
            reply.json()["errorType"],
            "Extension.UnknownExtensionIdentifier"
        );
    }
    assert_eq!(request(server.addr, "GET", "/", &[], b"").status, 404);
    assert_eq!(
        request(
            server.addr,
            "GET",
            "/2018-06-01/runtime/invocation/x/response",
            &[],
            b""
        )
        .status,
        404
    );
    assert_eq!(server.shared.lock().requests, 4);
}

#[test]
fn a_telemetry_subscriber_is_sent_the_records_so_far_and_refused_bad_buffering() {
    use std::io::{Read, Write};
    let server = server(&["observer"]);
    let registered = request(
        server.addr,
        "POST",
        "/2020-01-01/extension/register",
        &[("Lambda-Extension-Name", "observer")],
        br#"{"events":["INVOKE"]}"#,
    );
    let id = registered
        .header("lambda-extension-identifier")
        .unwrap()
        .to_string();
    server.shared.update(|s| {
        s.telemetry.emit(super::telemetry::Record::init_start());
        s.telemetry.emit(super::telemetry::Record::line(
            super::telemetry::Category::Function,
            "hello from the function",
        ));
    });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let subscription = |buffering: &str| {
        format!(
            r#"{{"schemaVersion":"2022-07-01","types":["platform","function"],"buffering":{buffering},"destination":{{"protocol":"HTTP","URI":"http://sandbox.localdomain:{port}"}}}}"#
        )
    };
    let headers = [("Lambda-Extension-Identifier", id.as_str())];
    let refused = request(
        server.addr,
        "PUT",
        "/2022-07-01/telemetry",
        &headers,
        subscription(r#"{"maxItems":50}"#).as_bytes(),
    );
    assert_eq!(refused.status, 400);
    assert_eq!(refused.json()["errorType"], "ValidationError");
    assert!(server.shared.lock().telemetry.subscribers.is_empty());
    let accepted = request(
        server.addr,
        "PUT",
        "/2022-07-01/telemetry",
        &headers,
        subscription(r#"{"timeoutMs":25}"#).as_bytes(),
    );
    assert_eq!(accepted.status, 200);
    // The first batch arrives 25 ms later: what was written before the subscription included.
    let (mut stream, _) = listener.accept().unwrap();
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    let body = loop {
        let n = stream.read(&mut chunk).unwrap();
        received.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&received).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .unwrap()
                .parse()
                .unwrap();
            if body.len() >= length {
                assert!(head.starts_with("POST / HTTP/1.1"), "{head}");
                break body.to_string();
            }
        }
        assert!(n > 0, "connection closed early");
    };
    stream
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    let records: Value = serde_json::from_str(&body).unwrap();
    let kinds: Vec<&str> = records
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "platform.initStart",
            "function",
            "platform.telemetrySubscription"
        ]
    );
    assert_eq!(records[1]["record"], "hello from the function");
    assert!(records[0]["time"].as_str().unwrap().ends_with('Z'));
    until(&server.shared, |s| {
        s.telemetry.subscribers[0].report.records_accepted == 3
    });
}

#[test]
fn internal_extensions_register_under_any_name_during_init_only() {
    let server = server(&["recorder"]);
    let register = "/2020-01-01/extension/register";
    let reply = request(
        server.addr,
        "POST",
        register,
        &[(
            "Lambda-Extension-Name",
            "_lambda-rust-runtime-no-op-graceful-shutdown-helper",
        )],
        br#"{"events":[]}"#,
    );
    assert_eq!(reply.status, 200);
    let reply = request(
        server.addr,
        "POST",
        register,
        &[("Lambda-Extension-Name", "recorder")],
        br#"{"events":["INVOKE","SHUTDOWN"]}"#,
    );
    assert_eq!(reply.status, 200);
    {
        let state = server.shared.lock();
        let kinds: Vec<(&str, bool)> = state
            .extensions
            .iter()
            .map(|e| (e.name.as_str(), e.internal))
            .collect();
        assert_eq!(
            kinds,
            [
                ("_lambda-rust-runtime-no-op-graceful-shutdown-helper", true),
                ("recorder", false)
            ]
        );
    }
    server.shared.update(|s| s.init_done = true);
    let late = request(
        server.addr,
        "POST",
        register,
        &[("Lambda-Extension-Name", "late")],
        br#"{"events":["INVOKE"]}"#,
    );
    assert_eq!(late.status, 403);
    assert_eq!(late.json()["errorType"], "Extension.InvalidState");
}
