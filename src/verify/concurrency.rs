//! `--concurrency N`: Lambda Managed Instances run several invocations at once in one execution
//! environment. Up to N events are in flight together (each `/next` long poll takes its own;
//! answers are matched by request id); as one ends the next event goes out. One that times out
//! is reported as `Sandbox.Timeout` and no further event is dispatched, while those already in
//! flight still end on their own; a runtime or extension that exits ends every invocation in
//! flight with `Runtime.ExitError` or `Extension.Crash`.

use bytes::Bytes;
use tokio::time::Instant;

use super::lifecycle::{Dispatched, Life, Stop, stopped};

/// How one wait for the invocations in flight ended.
enum Wake {
    /// The invocation at this index in flight was answered.
    Answered(usize, super::InvokeOutcome),
    /// The runtime or an extension exited.
    Stopped(Stop),
}

impl Life<'_> {
    /// Runs every event with up to `--concurrency` in flight; returns the SHUTDOWN reason.
    pub(super) async fn invoke_concurrently(&mut self) -> &'static str {
        let run = self.run;
        let limit = run.concurrency.unwrap_or(1).max(1) as usize;
        let total = run.events.len();
        let mut in_flight: Vec<Dispatched> = Vec::new();
        let mut next = 0;
        let mut reason: Option<&'static str> = None;
        loop {
            while reason.is_none() && in_flight.len() < limit && next < total {
                in_flight.push(self.dispatch(Bytes::from(run.events[next].clone())));
                next += 1;
                self.report.events_not_run = total - next;
            }
            let Some(earliest) = in_flight.iter().map(|d| d.deadline).min() else {
                break;
            };
            let ids: Vec<String> = in_flight.iter().map(|d| d.request_id.clone()).collect();
            let runtime = self.runtime.as_ref().map(|p| p.index);
            let woke = self
                .wait(earliest, |s, exts| {
                    for (index, id) in ids.iter().enumerate() {
                        if let Some(outcome) = s.taken(id).and_then(|c| c.outcome.clone()) {
                            return Some(Wake::Answered(index, outcome));
                        }
                    }
                    stopped(s, runtime, exts, false).map(Wake::Stopped)
                })
                .await;
            match woke {
                Some(Wake::Answered(index, outcome)) => {
                    let dispatched = in_flight.remove(index);
                    if let Some(why) = self.settle(dispatched, Some(Ok(outcome))) {
                        reason.get_or_insert(why);
                    }
                }
                Some(Wake::Stopped(stop)) => {
                    for dispatched in in_flight.drain(..) {
                        if let Some(why) = self.settle(dispatched, Some(Err(stop.clone()))) {
                            reason.get_or_insert(why);
                        }
                    }
                    reason.get_or_insert("failure");
                }
                None => {
                    // Every invocation whose deadline passed times out.
                    let now = Instant::now();
                    let (late, on_time): (Vec<_>, Vec<_>) =
                        in_flight.drain(..).partition(|d| d.deadline <= now);
                    in_flight = on_time;
                    for dispatched in late {
                        if let Some(why) = self.settle(dispatched, None) {
                            reason.get_or_insert(why);
                        }
                    }
                }
            }
        }
        if let Some(reason) = reason {
            return reason;
        }
        // As in the sequential run: the environment is done once everything waits again.
        let ready = self
            .wait_ready(Instant::now() + run.invoke_timeout, false)
            .await;
        self.check_invoke(ready, None, run.invoke_timeout)
            .unwrap_or("spindown")
    }
}
