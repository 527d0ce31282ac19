//! The end of an execution environment: Lambda's shutdown phase, then the report.

use std::process::ExitStatus;
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use tokio::time::Instant;

use super::lifecycle::{Life, Proc, epoch_ms};
use super::report::{ExtensionReport, ProcessReport, RunReport, ShutdownStatus, describe_exit};
use super::sandbox::signal_group;
use super::state::State;

/// How long extensions have to finish after SHUTDOWN.
const SHUTDOWN_BUDGET: Duration = Duration::from_millis(2000);
/// How long the runtime has after SIGTERM when only internal extensions registered.
const INTERNAL_ONLY_BUDGET: Duration = Duration::from_millis(500);
/// How long to wait for killed processes to be reaped and their output drained.
const REAP_BUDGET: Duration = Duration::from_secs(2);
/// How long buffered telemetry may take to go out before SHUTDOWN: a few batches, each within
/// its own delivery deadline; what is left after is dropped (and counted), as Lambda drops what
/// it cannot deliver.
const FLUSH_BUDGET: Duration = Duration::from_secs(3);

impl Life<'_> {
    /// SIGTERM to the runtime (only when extensions registered, else SIGKILL), SHUTDOWN to the
    /// extensions subscribed to it with a 2,000 ms budget, then SIGKILL to every process group.
    /// Returns each started extension's shutdown status.
    pub(super) async fn shutdown(&mut self, reason: &str) -> Vec<ShutdownStatus> {
        // What is buffered for the Logs and Telemetry API subscribers goes out first, so the
        // last invocation's `platform.report` reaches them before SHUTDOWN.
        self.shared.update(|s| s.telemetry.flushing = true);
        self.shared
            .wait_for(Instant::now() + FLUSH_BUDGET, |s| {
                s.telemetry.drained().then_some(())
            })
            .await;
        let exited = |life: &Life<'_>| -> Vec<bool> {
            let state = life.shared.lock();
            life.extensions
                .iter()
                .map(|p| state.exits[p.index].is_some())
                .collect()
        };
        let before = exited(self);
        let runtime_exited = |life: &Life<'_>| {
            let state = life.shared.lock();
            life.runtime
                .as_ref()
                .is_some_and(|p| state.exits[p.index].is_some())
        };
        let runtime_before = runtime_exited(self);
        // Internal extensions count too: lambda_runtime's graceful-shutdown registers one only
        // so that the runtime gets SIGTERM.
        let (any_registered, any_external) = {
            let state = self.shared.lock();
            (
                !state.extensions.is_empty(),
                state.extensions.iter().any(|e| !e.internal),
            )
        };
        let budget = if any_registered && !any_external {
            INTERNAL_ONLY_BUDGET
        } else {
            SHUTDOWN_BUDGET
        };
        if let Some(runtime) = &self.runtime {
            let signal = if any_registered {
                libc::SIGTERM
            } else {
                libc::SIGKILL
            };
            signal_group(runtime.spawned.pid, signal);
        }

        let deadline_ms = epoch_ms(SHUTDOWN_BUDGET);
        let event = json!({
            "eventType": "SHUTDOWN",
            "shutdownReason": reason,
            "deadlineMs": deadline_ms,
        })
        .to_string();
        let names: Vec<(String, usize)> = self
            .extensions
            .iter()
            .map(|p| (p.name.clone(), p.index))
            .collect();
        let subscribed: Vec<(String, usize)> = self.shared.update(|s| {
            let mut subscribed = Vec::new();
            for (name, index) in &names {
                let Some(ext) = s.extensions.iter_mut().find(|e| &e.name == name) else {
                    continue;
                };
                if ext.events.iter().any(|e| e == "SHUTDOWN") && s.exits[*index].is_none() {
                    ext.queue
                        .push_back(("SHUTDOWN".into(), Bytes::from(event.clone())));
                    subscribed.push((name.clone(), *index));
                }
            }
            subscribed
        });
        let runtime = self.runtime.as_ref().map(|p| p.index);
        let deadline = Instant::now() + budget;
        self.shared
            .wait_for(deadline, |s| {
                let runtime_done = runtime.is_none_or(|i| s.exits[i].is_some());
                let extensions_done = subscribed
                    .iter()
                    .all(|(name, i)| s.exits[*i].is_some() || acknowledged(s, name));
                (runtime_done && extensions_done).then_some(())
            })
            .await;
        let after = exited(self);
        self.runtime_shutdown = match (runtime_before, runtime_exited(self)) {
            (true, _) => ShutdownStatus::ExitedEarly,
            (false, true) => ShutdownStatus::Exited,
            (false, false) => ShutdownStatus::Killed,
        };
        let finished: Vec<bool> = {
            let state = self.shared.lock();
            names
                .iter()
                .map(|(name, _)| acknowledged(&state, name))
                .collect()
        };

        for proc in self.runtime.iter().chain(&self.extensions) {
            signal_group(proc.spawned.pid, libc::SIGKILL);
        }
        // And whatever they left behind, in their process groups or not.
        self.sandbox.end();
        self.shared
            .wait_for(Instant::now() + REAP_BUDGET, |s| {
                s.exits.iter().all(Option::is_some).then_some(())
            })
            .await;

        (0..names.len())
            .map(|i| match (before[i], after[i], finished[i]) {
                (true, _, _) => ShutdownStatus::ExitedEarly,
                (false, true, _) => ShutdownStatus::Exited,
                (false, false, true) => ShutdownStatus::Finished,
                (false, false, false) => ShutdownStatus::Killed,
            })
            .collect()
    }

    /// Collects output, exits and what the API saw into the report.
    pub(super) async fn finish(mut self, statuses: Vec<ShutdownStatus>) -> RunReport {
        let exits: Vec<Option<ExitStatus>> = self.shared.lock().exits.clone();
        let mut extensions = Vec::new();
        for (proc, shutdown) in self.extensions.iter_mut().zip(statuses) {
            let process = process_report(proc, exits[proc.index]).await;
            let state = self.shared.lock();
            let ext = state.extension(&proc.name);
            extensions.push(ExtensionReport {
                name: proc.name.clone(),
                internal: false,
                registered: ext.is_some(),
                identifier: ext.map(|e| e.id.clone()),
                subscribed: ext.map(|e| e.events.clone()).unwrap_or_default(),
                received: ext.map(|e| e.received.clone()).unwrap_or_default(),
                shutdown,
                reported_errors: ext.map(|e| e.errors.clone()).unwrap_or_default(),
                process,
            });
        }
        for ext in self.shared.lock().extensions.iter().filter(|e| e.internal) {
            extensions.push(ExtensionReport {
                name: ext.name.clone(),
                internal: true,
                registered: true,
                identifier: Some(ext.id.clone()),
                subscribed: ext.events.clone(),
                received: ext.received.clone(),
                shutdown: self.runtime_shutdown.clone(),
                reported_errors: ext.errors.clone(),
                process: ProcessReport {
                    path: self
                        .runtime
                        .as_ref()
                        .map(|p| p.visible.display().to_string())
                        .unwrap_or_default(),
                    ..ProcessReport::default()
                },
            });
        }
        for (name, path, message) in self.unstarted.drain(..) {
            extensions.push(ExtensionReport {
                name,
                internal: false,
                registered: false,
                identifier: None,
                subscribed: Vec::new(),
                received: Vec::new(),
                shutdown: ShutdownStatus::NotStarted,
                reported_errors: vec![message],
                process: ProcessReport {
                    path: path.display().to_string(),
                    ..ProcessReport::default()
                },
            });
        }
        self.report.extensions = extensions;
        if let Some(runtime) = self.runtime.as_mut() {
            self.report.runtime = Some(process_report(runtime, exits[runtime.index]).await);
        }
        // No more deliveries; what is still buffered is reported as dropped.
        self.shared.update(|s| s.telemetry.closed = true);
        let state = self.shared.lock();
        self.report.telemetry_subscriptions = state.telemetry.reports();
        self.report.api_requests = state.requests;
        if self.report.init_error.is_none() {
            self.report.init_error = state.init_error.clone();
        }
        drop(state);
        self.report
    }
}

/// True once `name` took its SHUTDOWN event and asked for the next one: it is done (the
/// `lambda-extension` crate never exits by itself; Lambda then kills it).
fn acknowledged(state: &State, name: &str) -> bool {
    state.extension(name).is_some_and(|e| {
        e.received.last().is_some_and(|k| k == "SHUTDOWN") && e.waiting > 0 && e.queue.is_empty()
    })
}

async fn process_report(proc: &mut Proc, exit: Option<ExitStatus>) -> ProcessReport {
    for reader in proc.spawned.readers.drain(..) {
        let abort = reader.abort_handle();
        if tokio::time::timeout(REAP_BUDGET, reader).await.is_err() {
            // A grandchild outside the process group still holds the pipe.
            abort.abort();
        }
    }
    let lock = |c: &std::sync::Mutex<_>| {
        let guard: std::sync::MutexGuard<'_, super::sandbox::Captured> =
            c.lock().unwrap_or_else(|p| p.into_inner());
        (guard.text(), guard.truncated())
    };
    let (stdout, out_cut) = lock(&proc.spawned.stdout);
    let (stderr, err_cut) = lock(&proc.spawned.stderr);
    ProcessReport {
        path: proc.visible.display().to_string(),
        exit: exit.as_ref().map(describe_exit),
        exit_code: exit.and_then(|s| s.code()),
        signal: exit.and_then(|s| std::os::unix::process::ExitStatusExt::signal(&s)),
        stdout,
        stderr,
        output_truncated: out_cut || err_cut,
    }
}
