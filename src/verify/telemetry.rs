//! The Telemetry API (`/2022-07-01/telemetry`) and the Logs API (`/2020-08-15/logs`): an
//! extension subscribes during init with a destination (`http://sandbox.localdomain:<port>`,
//! resolved to the loopback address), the types it wants and how to buffer them; the emulator
//! then POSTs batches of records to it as Lambda does (see `delivery.rs`) and reports what each
//! subscriber was sent and whether it accepted it.
//!
//! Every record of the run is kept from the start (bounded), so a subscriber also gets the
//! `platform.initStart` and the function's lines written before it subscribed, as on Lambda,
//! where init telemetry is buffered until the subscriptions are in.

mod records;

use std::collections::VecDeque;

use serde::Serialize;
use serde_json::{Value, json};

pub use records::Api;
pub(crate) use records::{Category, Record, ReportMetrics};

/// Records kept for subscribers that come later; beyond this the oldest are dropped.
const HISTORY_RECORDS: usize = 10_000;
/// Batches kept in the report per subscriber (the counts cover all of them).
pub(crate) const REPORTED_BATCHES: usize = 1_000;

/// `buffering` of a subscription, with Lambda's defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Buffering {
    pub timeout_ms: u64,
    pub max_bytes: u64,
    pub max_items: u64,
}

/// Lambda's bounds: (name, minimum, maximum, default).
const BOUNDS: [(&str, u64, u64, u64); 3] = [
    ("timeoutMs", 25, 30_000, 1_000),
    ("maxBytes", 262_144, 1_048_576, 262_144),
    ("maxItems", 1_000, 10_000, 10_000),
];

/// One subscription and what it was sent.
pub(crate) struct Subscriber {
    pub extension: String,
    pub api: Api,
    pub types: Vec<String>,
    pub buffering: Buffering,
    pub port: u16,
    /// Records waiting for the next batch, with their serialised size.
    pub buffer: VecDeque<(Record, usize)>,
    pub buffer_bytes: usize,
    /// A batch is on its way; the lifecycle waits for it before SHUTDOWN.
    pub delivering: bool,
    pub report: SubscriptionReport,
}

/// What one subscriber was sent, for the JSON report.
#[derive(Clone, Debug, Serialize)]
pub struct SubscriptionReport {
    pub extension: String,
    pub api: Api,
    pub types: Vec<String>,
    pub buffering: Buffering,
    /// The destination as the extension gave it (`http://sandbox.localdomain:PORT`).
    pub destination: String,
    pub records_sent: u64,
    pub records_accepted: u64,
    /// Records never sent: still buffered when the environment ended.
    pub records_dropped: u64,
    pub batches: Vec<BatchReport>,
}

/// One POST to a subscriber.
#[derive(Clone, Debug, Serialize)]
pub struct BatchReport {
    pub records: usize,
    pub bytes: usize,
    /// The record types in the batch, in order of first appearance (`function`,
    /// `platform.start`, …).
    pub types: Vec<String>,
    /// The HTTP status the subscriber answered, if it answered in time.
    pub status: Option<u16>,
    /// A 2xx answer.
    pub accepted: bool,
    /// Why it was not accepted: refused connection, no answer within the deadline, …
    pub error: Option<String>,
    pub elapsed_ms: f64,
}

/// The Telemetry/Logs side of the shared state.
#[derive(Default)]
pub(crate) struct Telemetry {
    pub subscribers: Vec<Subscriber>,
    pub(crate) history: VecDeque<Record>,
    /// Deliver what is buffered now, whatever the buffering says (the end of the environment).
    pub flushing: bool,
    /// No more deliveries: the delivery tasks end.
    pub closed: bool,
}

impl Telemetry {
    /// Records `record` and queues it for every subscriber that wants it.
    pub fn emit(&mut self, record: Record) {
        for subscriber in &mut self.subscribers {
            queue(subscriber, &record);
        }
        if self.history.len() == HISTORY_RECORDS {
            self.history.pop_front();
        }
        self.history.push_back(record);
    }

    /// True when nothing is buffered or on its way.
    pub fn drained(&self) -> bool {
        self.subscribers
            .iter()
            .all(|s| s.buffer.is_empty() && !s.delivering)
    }

    pub fn reports(&self) -> Vec<SubscriptionReport> {
        self.subscribers
            .iter()
            .map(|s| {
                let mut report = s.report.clone();
                report.records_dropped += s.buffer.len() as u64;
                report
            })
            .collect()
    }
}

pub(crate) fn queue(subscriber: &mut Subscriber, record: &Record) {
    if !subscriber.types.iter().any(|t| t == record.category.name()) {
        return;
    }
    if let Some(value) = record.to_json(subscriber.api) {
        let size = value.to_string().len();
        subscriber.buffer_bytes += size;
        subscriber.buffer.push_back((record.clone(), size));
    }
}

type Parsed = (Vec<String>, Buffering, String, u16);

/// A subscription's body as it came (`PUT`): JSON, then [`parse_subscription`]. What the fuzz
/// target `telemetry_subscription` runs.
pub(crate) fn parse_subscription_body(api: Api, body: &[u8]) -> Result<Parsed, String> {
    match serde_json::from_slice::<Value>(body) {
        Ok(value) => parse_subscription(api, &value),
        Err(err) => Err(format!("the subscription body is not JSON: {err}")),
    }
}

/// Lambda's bounds of `timeoutMs`, `maxBytes` and `maxItems`, in that order: `(min, max)`.
pub(crate) fn buffering_bounds() -> [(u64, u64); 3] {
    BOUNDS.map(|(_, min, max, _)| (min, max))
}

/// Checks a subscription as Lambda does: a known schema version, an HTTP destination in the
/// sandbox, known types, buffering within Lambda's bounds.
fn parse_subscription(api: Api, body: &Value) -> Result<Parsed, String> {
    let versions: &[&str] = match api {
        Api::Telemetry => &["2022-07-01", "2022-12-13", "2025-01-29"],
        Api::Logs => &["2020-08-15", "2021-03-18"],
    };
    match body.get("schemaVersion").and_then(Value::as_str) {
        Some(version) if versions.contains(&version) => {}
        Some(version) => {
            return Err(format!(
                "schemaVersion {version} is not supported by the {}; use one of {}",
                api.name(),
                versions.join(", ")
            ));
        }
        // The Logs API of 2020-08-15 took subscriptions without a schema version.
        None if api == Api::Logs => {}
        None => return Err("schemaVersion is required".into()),
    }
    let destination = body.get("destination").cloned().unwrap_or(Value::Null);
    let protocol = destination.get("protocol").and_then(Value::as_str);
    if protocol != Some("HTTP") {
        return Err(format!(
            "destination.protocol must be \"HTTP\" (this emulator delivers over HTTP only), got {}",
            protocol.map_or("nothing".to_string(), |p| format!("\"{p}\""))
        ));
    }
    let uri = destination
        .get("URI")
        .and_then(Value::as_str)
        .ok_or("destination.URI is required, e.g. \"http://sandbox.localdomain:8080\"")?;
    let port = sandbox_port(uri).ok_or_else(|| {
        format!(
            "destination.URI {uri} is not in the sandbox; use http://sandbox.localdomain:<port> \
             (Lambda delivers only inside the execution environment)"
        )
    })?;
    let types: Vec<String> = match body.get("types") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|t| {
                t.as_str()
                    .map(str::to_string)
                    .ok_or("types must be strings")
            })
            .collect::<Result<_, _>>()?,
        None if api == Api::Logs => vec!["platform".into(), "function".into()],
        _ => {
            return Err(
                "types is required: an array of \"platform\", \"function\", \"extension\"".into(),
            );
        }
    };
    if let Some(bad) = types
        .iter()
        .find(|t| !["platform", "function", "extension"].contains(&t.as_str()))
    {
        return Err(format!(
            "unknown type {bad}; types are \"platform\", \"function\" and \"extension\""
        ));
    }
    let buffering = body.get("buffering").cloned().unwrap_or(json!({}));
    let mut values = [0u64; 3];
    for (slot, (name, min, max, default)) in values.iter_mut().zip(BOUNDS) {
        *slot = match buffering.get(name) {
            None | Some(Value::Null) => default,
            Some(value) => {
                let n = value.as_u64().ok_or_else(|| {
                    format!("buffering.{name} must be a whole number, got {value}")
                })?;
                if !(min..=max).contains(&n) {
                    return Err(format!(
                        "buffering.{name} {n} is out of range: it must be between {min} and {max}"
                    ));
                }
                n
            }
        };
    }
    let buffering = Buffering {
        timeout_ms: values[0],
        max_bytes: values[1],
        max_items: values[2],
    };
    Ok((types, buffering, uri.to_string(), port))
}

/// The port of `http://sandbox.localdomain:PORT[/path]` (also `sandbox`, `localhost`,
/// `127.0.0.1`), the hosts that resolve to the execution environment.
fn sandbox_port(uri: &str) -> Option<u16> {
    let rest = uri.strip_prefix("http://")?;
    let authority = rest.split('/').next()?;
    let (host, port) = authority.rsplit_once(':')?;
    if !["sandbox.localdomain", "sandbox", "localhost", "127.0.0.1"].contains(&host) {
        return None;
    }
    port.parse().ok().filter(|p| *p != 0)
}

/// One line of the human output: who subscribed to what, what it was sent and took.
pub(super) fn describe(report: &SubscriptionReport) -> String {
    let batches = report.batches.len();
    let accepted = report.batches.iter().filter(|b| b.accepted).count();
    let mut line = format!(
        "{} subscriber {} [{}] at {}: {} record(s) in {batches} batch(es), {accepted} accepted",
        report.api.name(),
        report.extension,
        report.types.join(", "),
        report.destination,
        report.records_sent,
    );
    if let Some(error) = report.batches.iter().find_map(|b| b.error.as_deref()) {
        line.push_str(&format!(", {} not: {error}", batches - accepted));
    }
    if report.records_dropped > 0 {
        line.push_str(&format!(
            ", {} record(s) dropped at shutdown",
            report.records_dropped
        ));
    }
    line
}

#[cfg(test)]
mod tests;
