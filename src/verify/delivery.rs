//! Delivery to one subscriber: a batch goes out when the oldest buffered record is `timeoutMs`
//! old, or `maxBytes` or `maxItems` are reached, or the environment ends (then whatever is
//! buffered goes at once). Each batch is one HTTP POST of a JSON array on a fresh connection to
//! the loopback port of the destination.
//!
//! Like Lambda, the emulator never waits on a subscriber for long: a POST that is not answered
//! within [`DELIVERY_DEADLINE`] (a subscriber that never answers, or is slow) counts as not
//! accepted, as does a refused connection or a non-2xx answer; the batch is dropped, not
//! retried, and the next one goes out.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::network::Network;
use super::state::Shared;
use super::telemetry::{BatchReport, REPORTED_BATCHES, Subscriber};

/// How long one POST may take, connection and answer included.
pub(crate) const DELIVERY_DEADLINE: Duration = Duration::from_millis(1_500);
/// Pause between connection attempts: the `lambda-extension` crate binds its listener anew
/// after every connection it accepts, so a refused connection is retried until the deadline.
const RECONNECT_PAUSE: Duration = Duration::from_millis(10);

/// Delivers the buffer of subscriber `index` until the telemetry side is closed.
pub(super) async fn deliver(shared: Arc<Shared>, index: usize) {
    loop {
        let far = Instant::now() + Duration::from_secs(365 * 24 * 3600);
        // Wake at the oldest record's timeout even when nothing else changes.
        let due = {
            let state = shared.lock();
            let subscriber = &state.telemetry.subscribers[index];
            subscriber
                .buffer
                .front()
                .map(|_| Instant::now() + Duration::from_millis(subscriber.buffering.timeout_ms))
        };
        let waited = shared
            .wait_for(due.unwrap_or(far), |s| {
                let closed = s.telemetry.closed;
                let flushing = s.telemetry.flushing;
                let subscriber = &mut s.telemetry.subscribers[index];
                if closed {
                    return Some(Wake::Closed);
                }
                if subscriber.buffer.is_empty() {
                    return None;
                }
                let full = subscriber.buffer.len() as u64 >= subscriber.buffering.max_items
                    || subscriber.buffer_bytes as u64 >= subscriber.buffering.max_bytes;
                if full || flushing {
                    return Some(Wake::Batch(take_batch(subscriber)));
                }
                // The first record since the buffer was empty: its timeout starts now.
                due.is_none().then_some(Wake::Recompute)
            })
            .await;
        let batch = match waited {
            Some(Wake::Batch(batch)) => batch,
            Some(Wake::Closed) => return,
            Some(Wake::Recompute) => continue,
            // The oldest record's timeout passed: send what is there.
            None => {
                let batch = shared.update(|s| {
                    let subscriber = &mut s.telemetry.subscribers[index];
                    (!subscriber.buffer.is_empty()).then(|| take_batch(subscriber))
                });
                match batch {
                    Some(batch) => batch,
                    None => continue,
                }
            }
        };
        let port = shared.lock().telemetry.subscribers[index].port;
        let network = shared.network.get().cloned();
        let report = post(network.as_deref(), port, batch).await;
        shared.update(|s| {
            let subscriber = &mut s.telemetry.subscribers[index];
            subscriber.delivering = false;
            let report_of = &mut subscriber.report;
            report_of.records_sent += report.records as u64;
            if report.accepted {
                report_of.records_accepted += report.records as u64;
            }
            if report_of.batches.len() < REPORTED_BATCHES {
                report_of.batches.push(report);
            }
        });
    }
}

enum Wake {
    Batch(Vec<Value>),
    Closed,
    Recompute,
}

/// Up to `maxItems` records and `maxBytes` bytes (at least one record) off the buffer.
fn take_batch(subscriber: &mut Subscriber) -> Vec<Value> {
    let mut batch = Vec::new();
    let mut bytes = 0usize;
    while let Some((record, size)) = subscriber.buffer.front() {
        let over = !batch.is_empty()
            && (batch.len() as u64 >= subscriber.buffering.max_items
                || (bytes + size) as u64 > subscriber.buffering.max_bytes);
        if over {
            break;
        }
        bytes += size;
        if let Some(value) = record.to_json(subscriber.api) {
            batch.push(value);
        }
        subscriber.buffer_bytes -= size;
        subscriber.buffer.pop_front();
    }
    subscriber.delivering = true;
    batch
}

/// POSTs `batch` to `127.0.0.1:port` (of `network`, when the environment has its own) and
/// reports what happened.
async fn post(network: Option<&Network>, port: u16, batch: Vec<Value>) -> BatchReport {
    let mut types: Vec<String> = Vec::new();
    for record in &batch {
        if let Some(kind) = record.get("type").and_then(Value::as_str)
            && !types.iter().any(|t| t == kind)
        {
            types.push(kind.to_string());
        }
    }
    let records = batch.len();
    let body = Value::Array(batch).to_string();
    let started = Instant::now();
    let deadline = started + DELIVERY_DEADLINE;
    let outcome = tokio::time::timeout_at(deadline, exchange(network, port, &body, deadline)).await;
    let (status, error) = match outcome {
        Ok(Ok(status)) => (Some(status), None),
        Ok(Err(error)) => (None, Some(error)),
        Err(_) => (
            None,
            Some(format!(
                "no answer within {} ms; the batch was dropped",
                DELIVERY_DEADLINE.as_millis()
            )),
        ),
    };
    let accepted = status.is_some_and(|s| (200..300).contains(&s));
    let error = error.or_else(|| {
        status
            .filter(|_| !accepted)
            .map(|s| format!("answered HTTP {s}; the batch was dropped"))
    });
    BatchReport {
        records,
        bytes: body.len(),
        types,
        status,
        accepted,
        error,
        elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
    }
}

/// A connection to the subscriber's loopback port: the environment's loopback when it has its
/// own network, else the host's.
async fn connect(network: Option<&Network>, port: u16) -> std::io::Result<TcpStream> {
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    match network {
        Some(network) => network.stream_socket()?.connect(address).await,
        None => TcpStream::connect(address).await,
    }
}

/// One request on a fresh connection; the status code of the answer.
async fn exchange(
    network: Option<&Network>,
    port: u16,
    body: &str,
    deadline: Instant,
) -> Result<u16, String> {
    let mut stream = loop {
        match connect(network, port).await {
            Ok(stream) => break stream,
            Err(_) if Instant::now() + RECONNECT_PAUSE < deadline => {
                tokio::time::sleep(RECONNECT_PAUSE).await;
            }
            Err(err) => return Err(format!("could not connect to port {port}: {err}")),
        }
    };
    let head = format!(
        "POST / HTTP/1.1\r\nHost: sandbox.localdomain:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let write = async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await?;
        stream.flush().await
    };
    write
        .await
        .map_err(|e| format!("could not send the batch: {e}"))?;
    // Only the status line matters.
    let mut answer = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("could not read the answer: {e}"))?;
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&chunk[..n]);
        if answer.windows(2).any(|w| w == b"\r\n") {
            break;
        }
    }
    let line = String::from_utf8_lossy(&answer);
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| {
            format!(
                "the answer is not HTTP: {:?}",
                line.lines().next().unwrap_or("")
            )
        })?;
    Ok(status)
}
