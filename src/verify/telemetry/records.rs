//! The records the Telemetry and Logs APIs deliver, with the field names of AWS's Telemetry API
//! reference (and of the `lambda-extension` crate's typed records, which parse them):
//! `{"time": "<RFC 3339, ms>", "type": "<type>", "record": …}`.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use serde::Serialize;

/// The subscription type a record belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Category {
    Platform,
    Function,
    Extension,
}

impl Category {
    pub fn name(self) -> &'static str {
        match self {
            Category::Platform => "platform",
            Category::Function => "function",
            Category::Extension => "extension",
        }
    }
}

/// One record, as both APIs would send it.
#[derive(Clone, Debug)]
pub(crate) struct Record {
    pub category: Category,
    pub time: String,
    pub kind: String,
    /// The Telemetry API's record.
    pub telemetry: Value,
    /// The Logs API's record, when the Logs API has this type.
    pub logs: Option<Value>,
}

impl Record {
    /// A line a process wrote (without its newline): `function` or `extension`.
    pub fn line(category: Category, line: &str) -> Record {
        Record {
            category,
            time: now(),
            kind: category.name().into(),
            telemetry: Value::String(line.into()),
            logs: Some(Value::String(line.into())),
        }
    }

    fn platform(kind: &str, telemetry: Value, logs: Option<Value>) -> Record {
        Record {
            category: Category::Platform,
            time: now(),
            kind: kind.into(),
            telemetry,
            logs,
        }
    }

    pub fn init_start() -> Record {
        Record::platform(
            "platform.initStart",
            json!({"initializationType": "on-demand", "phase": "init"}),
            None,
        )
    }

    /// `platform.initRuntimeDone`: `status` is `success`, `error` or `failure`.
    pub fn init_runtime_done(status: &str, error_type: Option<&str>) -> Record {
        let mut record = json!({"initializationType": "on-demand", "phase": "init", "status": status, "spans": []});
        if let Some(error_type) = error_type {
            record["errorType"] = json!(error_type);
        }
        Record::platform("platform.initRuntimeDone", record, None)
    }

    pub fn init_report(status: &str, duration_ms: f64) -> Record {
        Record::platform(
            "platform.initReport",
            json!({
                "initializationType": "on-demand",
                "phase": "init",
                "status": status,
                "metrics": {"durationMs": round(duration_ms)},
                "spans": [],
            }),
            None,
        )
    }

    pub fn start(request_id: &str, trace_id: &str) -> Record {
        Record::platform(
            "platform.start",
            json!({
                "requestId": request_id,
                "version": "$LATEST",
                "tracing": {"type": "X-Amzn-Trace-Id", "value": trace_id},
            }),
            Some(json!({"requestId": request_id, "version": "$LATEST"})),
        )
    }

    pub fn runtime_done(
        request_id: &str,
        status: &str,
        error_type: Option<&str>,
        duration_ms: f64,
        produced_bytes: Option<u64>,
    ) -> Record {
        let mut metrics = json!({"durationMs": round(duration_ms)});
        if let Some(bytes) = produced_bytes {
            metrics["producedBytes"] = json!(bytes);
        }
        let mut record =
            json!({"requestId": request_id, "status": status, "metrics": metrics, "spans": []});
        if let Some(error_type) = error_type {
            record["errorType"] = json!(error_type);
        }
        Record::platform(
            "platform.runtimeDone",
            record,
            Some(json!({"requestId": request_id, "status": status})),
        )
    }

    /// The Logs API's `platform.end`, between `runtimeDone` and `report`.
    pub fn end(request_id: &str) -> Record {
        let mut record = Record::platform(
            "platform.end",
            Value::Null,
            Some(json!({"requestId": request_id})),
        );
        record.telemetry = Value::Null;
        record
    }

    pub fn report(
        request_id: &str,
        status: &str,
        error_type: Option<&str>,
        metrics: &ReportMetrics,
    ) -> Record {
        let mut values = json!({
            "durationMs": round(metrics.duration_ms),
            // Lambda bills by the millisecond, rounded up.
            "billedDurationMs": metrics.duration_ms.ceil().max(1.0) as u64,
            "memorySizeMB": metrics.memory_size_mb,
            "maxMemoryUsedMB": metrics.max_memory_used_mb,
        });
        if let Some(init) = metrics.init_duration_ms {
            values["initDurationMs"] = json!(round(init));
        }
        let mut record = json!({"requestId": request_id, "status": status, "metrics": values.clone(), "spans": []});
        if let Some(error_type) = error_type {
            record["errorType"] = json!(error_type);
        }
        Record::platform(
            "platform.report",
            record,
            Some(json!({"requestId": request_id, "metrics": values})),
        )
    }

    /// `platform.telemetrySubscription` / `platform.logsSubscription`.
    pub fn subscription(api: Api, name: &str, types: &[String]) -> Record {
        let value = json!({"name": name, "state": "Subscribed", "types": types});
        match api {
            Api::Telemetry => Record::platform("platform.telemetrySubscription", value, None),
            Api::Logs => {
                let mut record =
                    Record::platform("platform.logsSubscription", Value::Null, Some(value));
                record.telemetry = Value::Null;
                record
            }
        }
    }

    /// The record as `api` sends it, or `None` when that API has no such record.
    pub fn to_json(&self, api: Api) -> Option<Value> {
        let record = match api {
            Api::Telemetry => Some(&self.telemetry).filter(|v| !v.is_null())?,
            Api::Logs => self.logs.as_ref()?,
        };
        Some(json!({"time": self.time, "type": self.kind, "record": record}))
    }
}

/// What `platform.report` measures.
pub(crate) struct ReportMetrics {
    pub duration_ms: f64,
    pub memory_size_mb: u32,
    pub max_memory_used_mb: u64,
    /// On the first invocation after init only.
    pub init_duration_ms: Option<f64>,
}

fn round(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

/// Now, as RFC 3339 with milliseconds in UTC (`2026-11-30T18:02:03.123Z`).
fn now() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (y, m, d) = crate::plan::civil_from_days((secs / 86_400) as i64);
    let day = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        day / 3600,
        day % 3600 / 60,
        day % 60,
        now.subsec_millis()
    )
}

/// Which of the two APIs a subscription came through: they share the buffering and the
/// destination, not the record schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    /// 2022-07-01: `platform.initStart` … `platform.report`, typed records.
    Telemetry,
    /// 2020-08-15: `platform.start`, `platform.runtimeDone`, `platform.end`, `platform.report`.
    Logs,
}

impl Api {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Api::Telemetry => "Telemetry API",
            Api::Logs => "Logs API",
        }
    }
}
