//! One invocation: dispatched to the runtime (or answered by the stand-in), settled when it is
//! answered, times out or the environment fails, and told to the Logs/Telemetry API subscribers
//! (`platform.start`, `platform.runtimeDone`, `platform.end`, `platform.report`).

use bytes::Bytes;
use serde_json::json;
use tokio::time::Instant;

use super::lifecycle::{Dispatched, Life, Stop, epoch_ms, stopped};
use super::report::{InvokeOutcome, InvokeReport};
use super::state::{self, Invocation};
use super::telemetry::{Record, ReportMetrics};

impl Life<'_> {
    /// One invoke; `Some(reason)` when the environment must shut down afterwards.
    pub(super) async fn invoke(&mut self, body: Bytes) -> Option<&'static str> {
        let dispatched = self.dispatch(body);
        let runtime = self.runtime.as_ref().map(|p| p.index);
        let id = dispatched.request_id.clone();
        let answered = self
            .wait(dispatched.deadline, |s, exts| {
                if let Some(outcome) = s.taken(&id).and_then(|c| c.outcome.clone()) {
                    return Some(Ok(outcome));
                }
                stopped(s, runtime, exts, false).map(Err)
            })
            .await;
        self.settle(dispatched, answered)
    }

    /// Hands an event to the runtime (or the stand-in) and INVOKE to the extensions.
    pub(super) fn dispatch(&mut self, body: Bytes) -> Dispatched {
        let timeout = self.run.invoke_timeout;
        let request_id = state::uuid_v4();
        let deadline_ms = epoch_ms(timeout);
        let trace_id = state::trace_id(deadline_ms / 1000);
        let started = Instant::now();
        self.shared.update(|s| {
            let arn = s.config.arn.clone();
            let event = json!({
                "eventType": "INVOKE",
                "deadlineMs": deadline_ms,
                "requestId": request_id,
                "invokedFunctionArn": arn,
                "tracing": { "type": "X-Amzn-Trace-Id", "value": trace_id },
            });
            for ext in s
                .extensions
                .iter_mut()
                .filter(|e| e.events.iter().any(|e| e == "INVOKE"))
            {
                ext.queue
                    .push_back(("INVOKE".into(), Bytes::from(event.to_string())));
            }
            s.telemetry.emit(Record::start(&request_id, &trace_id));
            if self.run.stand_in {
                // The stand-in function answers at once with the event itself.
                let len = body.len() as u64;
                s.taken.push(state::Current {
                    request_id: request_id.clone(),
                    outcome: Some(InvokeOutcome::response(body.to_vec(), len, false)),
                    taken_at: Instant::now(),
                });
                return;
            }
            s.runtime_inbox.push_back(Invocation {
                request_id: request_id.clone(),
                deadline_ms,
                trace_id: trace_id.clone(),
                body,
            });
        });
        Dispatched {
            request_id,
            started,
            deadline: started + timeout,
        }
    }

    /// Records how a dispatched invocation ended (`None`: its deadline passed) and tells the
    /// subscribers; `Some(reason)` when the environment must shut down afterwards.
    pub(super) fn settle(
        &mut self,
        dispatched: Dispatched,
        answered: Option<Result<InvokeOutcome, Stop>>,
    ) -> Option<&'static str> {
        let timeout = self.run.invoke_timeout;
        let Dispatched {
            request_id,
            started,
            ..
        } = dispatched;
        // From when the runtime took the event (as Lambda counts it); an event never taken (a
        // timeout while queued, a crash) counts from when it was queued.
        let taken_at = self
            .shared
            .lock()
            .taken(&request_id)
            .map_or(started, |c| c.taken_at);
        let duration_ms = taken_at.elapsed().as_secs_f64() * 1000.0;
        let (outcome, reason) = match answered {
            Some(Ok(outcome)) => {
                if let InvokeOutcome::FunctionError {
                    error_type,
                    error_message,
                    ..
                } = &outcome
                {
                    let message = error_message.clone().unwrap_or_default();
                    self.fail(error_type, message);
                }
                (outcome, None)
            }
            None => {
                let reason = self.check_invoke(None, Some(&request_id), timeout);
                let timeout_ms = timeout.as_millis() as u64;
                (InvokeOutcome::Timeout { timeout_ms }, reason)
            }
            Some(Err(stop)) => {
                let outcome = match &stop {
                    Stop::RuntimeExited(exit) => InvokeOutcome::RuntimeExited {
                        exit: exit.clone(),
                        out_of_memory: self.memory.exceeded(),
                    },
                    Stop::ExtensionExited(extension, exit) => InvokeOutcome::ExtensionCrashed {
                        extension: extension.clone(),
                        exit: exit.clone(),
                    },
                    Stop::InitError => InvokeOutcome::RuntimeExited {
                        out_of_memory: false,
                        exit: "init error during invoke".into(),
                    },
                };
                let reason = self.check_invoke(Some(Err(stop)), Some(&request_id), timeout);
                (outcome, reason)
            }
        };
        // Not taken yet (a timeout, a crash): it never reaches the runtime.
        self.shared
            .update(|s| s.runtime_inbox.retain(|i| i.request_id != request_id));
        let max_memory_used_mb = self.max_memory_used_mb();
        self.report_invocation(&request_id, duration_ms, &outcome, max_memory_used_mb);
        let (response, streamed) = match &outcome {
            InvokeOutcome::Response { streamed, .. } => (outcome.response_value(), *streamed),
            _ => (None, false),
        };
        let ended_at_ms = self.began.elapsed().as_secs_f64() * 1000.0;
        self.report.invocations.push(InvokeReport {
            request_id,
            duration_ms,
            outcome,
            started_at_ms: ended_at_ms - duration_ms,
            ended_at_ms,
            response,
            streamed,
            max_memory_used_mb,
        });
        reason
    }

    /// `platform.runtimeDone`, (Logs API) `platform.end` and `platform.report`.
    fn report_invocation(
        &mut self,
        request_id: &str,
        duration_ms: f64,
        outcome: &InvokeOutcome,
        max_memory_used_mb: Option<u64>,
    ) {
        let (status, error_type) = outcome.telemetry_status();
        let produced = match outcome {
            InvokeOutcome::Response { len, .. } => Some(*len),
            _ => None,
        };
        let metrics = ReportMetrics {
            duration_ms,
            memory_size_mb: self.run.memory_mb,
            max_memory_used_mb: max_memory_used_mb.unwrap_or(0),
            init_duration_ms: (!self.reported_init).then_some(self.report.init_duration_ms),
        };
        self.reported_init = true;
        self.shared.update(|s| {
            let error_type = error_type.as_deref();
            s.telemetry.emit(Record::runtime_done(
                request_id,
                status,
                error_type,
                duration_ms,
                produced,
            ));
            s.telemetry.emit(Record::end(request_id));
            s.telemetry
                .emit(Record::report(request_id, status, error_type, &metrics));
        });
    }
}

impl Life<'_> {
    /// "Max Memory Used": in the environment, the peak of its processes' resident memory
    /// (Lambda's figure stops at the limit, where its kernel stops the function); without
    /// one, the runtime's own peak.
    fn max_memory_used_mb(&self) -> Option<u64> {
        if let Some(environment) = &self.sandbox.environment {
            self.memory
                .sample_now(&environment.pid_namespace, environment.init_pid());
            let peak = self.memory.peak_mb();
            return Some(if self.memory.exceeded() {
                u64::from(self.run.memory_mb)
            } else {
                peak
            });
        }
        self.runtime
            .as_ref()
            .and_then(|p| peak_rss_mb(p.spawned.pid))
    }
}

/// The peak resident set (`VmHWM`) of process `pid`, in MB rounded up; under qemu, the
/// emulator's, which holds the guest's memory.
fn peak_rss_mb(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb.div_ceil(1024))
}
