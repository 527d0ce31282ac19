//! What a run observed, serialisable for the JSON report.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use serde::Serialize;
use serde_json::Value;

use super::limits::Containment;
use super::telemetry::SubscriptionReport;
use crate::target::Arch;

/// Everything one [`super::run_function`] observed.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    pub function_name: String,
    pub arch: Arch,
    /// `Some(path)` when the binaries ran under a user-mode emulator (qemu).
    pub emulator: Option<String>,
    /// True when the processes ran in the environment (the function at `/var/task`, the layers
    /// at `/opt`); false with `--no-sandbox`.
    pub private_mount_namespace: bool,
    /// A caveat about how the processes ran (`--no-sandbox`, an image's replaced entrypoint).
    pub namespace_note: Option<String>,
    /// What held the processes: read-only root, user, /tmp size, memory, pid namespace,
    /// process cap, and each limit not applied with why.
    pub sandbox: Containment,
    /// From starting the first process until the runtime and every extension asked for an event.
    pub init_duration_ms: f64,
    pub init_error: Option<InitErrorReport>,
    pub invocations: Vec<InvokeReport>,
    /// Events that were never delivered because the environment failed before them.
    pub events_not_run: usize,
    pub extensions: Vec<ExtensionReport>,
    /// The bootstrap process (absent when it could not be started).
    pub runtime: Option<ProcessReport>,
    /// Lambda's name for what went wrong first, e.g. `Runtime.ExitError`, `Sandbox.Timeout`,
    /// `Runtime.InvalidEntrypoint`, `Extension.Crash`, or the function's own error type.
    pub error_type: Option<String>,
    pub error_message: Option<String>,
    /// Requests the API answered (all endpoints); a runtime flooding the API shows here.
    pub api_requests: u64,
    /// True when no runtime ran: the emulator answered each invoke by echoing the event.
    pub stand_in: bool,
    /// True for a container image, run with its own root file system as `/`.
    pub image: bool,
    /// `--concurrency`: invocations allowed in flight at once (1 without the flag).
    pub concurrency: u32,
    /// `--tenant-id`: sent with every invocation.
    pub tenant_id: Option<String>,
    /// Logs API and Telemetry API subscriptions: what each subscriber was sent and whether it
    /// accepted each batch.
    pub telemetry_subscriptions: Vec<SubscriptionReport>,
}

impl RunReport {
    /// True when init succeeded and every event got a response (no error of any kind).
    pub fn is_success(&self) -> bool {
        self.error_type.is_none()
    }
}

/// An error reported during init, by the runtime (`/runtime/init/error`) or an extension.
#[derive(Clone, Debug, Serialize)]
pub struct InitErrorReport {
    /// `runtime` or the extension's name.
    pub source: String,
    pub error_type: String,
    pub error_message: Option<String>,
    pub body: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct InvokeReport {
    pub request_id: String,
    pub duration_ms: f64,
    pub outcome: InvokeOutcome,
    /// When the runtime took the event (its `/next` answered; when it was queued if never taken)
    /// and when it ended, in milliseconds since the run began: with `--concurrency`,
    /// overlapping intervals are invocations in flight at once.
    pub started_at_ms: f64,
    pub ended_at_ms: f64,
    /// The payload in full (up to 6 MiB, or 200 MiB streamed): parsed when it is JSON, else
    /// text; null when the function did not answer.
    pub response: Option<Value>,
    /// True when the response was streamed.
    pub streamed: bool,
    /// The runtime process's peak resident memory at the end of the invocation (`VmHWM`).
    pub max_memory_used_mb: Option<u64>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InvokeOutcome {
    /// The function answered.
    Response {
        /// The payload (up to the 6 MiB cap, or 200 MiB streamed); in the report as `response`.
        #[serde(skip)]
        body: Vec<u8>,
        len: u64,
        /// The first 200 bytes as (lossy) text.
        preview: String,
        streamed: bool,
    },
    /// The function reported a (handled) error; the runtime is still alive.
    FunctionError {
        error_type: String,
        error_message: Option<String>,
        body: String,
    },
    /// No answer before the deadline (`Sandbox.Timeout`).
    Timeout { timeout_ms: u64 },
    /// The runtime process ended during the invoke (`Runtime.ExitError`), or was killed for
    /// going past the memory (`Runtime.OutOfMemory`).
    RuntimeExited {
        exit: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        out_of_memory: bool,
    },
    /// An extension ended during the invoke (`Extension.Crash`).
    ExtensionCrashed { extension: String, exit: String },
}

impl InvokeOutcome {
    pub(crate) fn response(body: Vec<u8>, len: u64, streamed: bool) -> Self {
        let preview = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        InvokeOutcome::Response {
            body,
            len,
            preview,
            streamed,
        }
    }

    /// The response payload, if the function answered.
    pub fn body(&self) -> Option<&[u8]> {
        match self {
            InvokeOutcome::Response { body, .. } => Some(body),
            _ => None,
        }
    }

    /// The payload as the JSON report shows it: parsed when it is JSON, else (lossy) text.
    pub(crate) fn response_value(&self) -> Option<Value> {
        let body = self.body()?;
        Some(
            serde_json::from_slice(body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned())),
        )
    }

    /// Lambda's status for the Telemetry API (`success`, `error`, `timeout`, `failure`) and its
    /// error type.
    pub(crate) fn telemetry_status(&self) -> (&'static str, Option<String>) {
        match self {
            InvokeOutcome::Response { .. } => ("success", None),
            InvokeOutcome::FunctionError { error_type, .. } => ("error", Some(error_type.clone())),
            InvokeOutcome::Timeout { .. } => ("timeout", Some("Sandbox.Timeout".into())),
            InvokeOutcome::RuntimeExited { out_of_memory, .. } => {
                ("failure", Some(runtime_exit_type(*out_of_memory).into()))
            }
            InvokeOutcome::ExtensionCrashed { .. } => ("failure", Some("Extension.Crash".into())),
        }
    }
}

/// Lambda's error type for a runtime that ended during an invoke.
pub(crate) fn runtime_exit_type(out_of_memory: bool) -> &'static str {
    if out_of_memory {
        "Runtime.OutOfMemory"
    } else {
        "Runtime.ExitError"
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ExtensionReport {
    /// The file name in `/opt/extensions`, or the name an internal extension registered with.
    pub name: String,
    /// Registered by the function's own process (no process of its own: `process` is empty and
    /// `shutdown` is the runtime's).
    pub internal: bool,
    pub registered: bool,
    pub identifier: Option<String>,
    /// The events it registered for (`INVOKE`, `SHUTDOWN`).
    pub subscribed: Vec<String>,
    /// The events delivered to it, in order (`INVOKE`, `SHUTDOWN`).
    pub received: Vec<String>,
    pub shutdown: ShutdownStatus,
    /// Errors it reported through `/init/error` or `/exit/error`.
    pub reported_errors: Vec<String>,
    pub process: ProcessReport,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ShutdownStatus {
    /// It exited within the shutdown budget.
    Exited,
    /// It took SHUTDOWN and asked for the next event within the budget (done; then killed, as
    /// Lambda kills what is left).
    Finished,
    /// It exited before the shutdown phase began.
    ExitedEarly,
    /// Still running when the budget ran out; it was killed.
    Killed,
    /// It could not be started.
    NotStarted,
}

/// One process: what it was, how it ended and what it wrote.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ProcessReport {
    /// The path the process saw itself started from (`/var/task/bootstrap`, `/opt/extensions/x`).
    pub path: String,
    /// `exit status 0`, `signal: killed`, … (Go's spelling, as Lambda prints it).
    pub exit: Option<String>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// True when stdout or stderr was longer than the capture limit.
    pub output_truncated: bool,
}

/// Spells an exit status the way Lambda's logs do (they come from Go's `os/exec`).
pub(crate) fn describe_exit(status: &ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exit status {code}");
    }
    let signal = status.signal().unwrap_or(0);
    let name = match signal {
        libc::SIGABRT => "aborted",
        libc::SIGKILL => "killed",
        libc::SIGSEGV => "segmentation fault",
        libc::SIGTERM => "terminated",
        libc::SIGBUS => "bus error",
        libc::SIGILL => "illegal instruction",
        libc::SIGFPE => "floating point exception",
        _ => "",
    };
    let core = if status.core_dumped() {
        " (core dumped)"
    } else {
        ""
    };
    if name.is_empty() {
        format!("signal: {signal}{core}")
    } else {
        format!("signal: {name}{core}")
    }
}
