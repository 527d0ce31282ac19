//! The human rendering of a verify run: each function's invokes, responses, expect mismatches and
//! the processes' stderr, under its status line.

use serde_json::Value;

use super::command::FunctionResult;
use super::expect::ExpectReport;
use super::{InvokeOutcome, RunReport, ShutdownStatus};

/// Lines of a failed process's stderr shown in the human output.
const STDERR_TAIL_LINES: usize = 20;
/// Characters of each JSON value shown for an expect mismatch.
const SHOWN_JSON_CHARS: usize = 2000;
/// Mismatching invokes shown in detail in the human output.
const SHOWN_MISMATCHES: usize = 3;
/// Indentation of detail lines: under the message of a status line.
const INDENT: &str = "             ";

/// The human rendering of one function's result (stderr, under its status line); with
/// `show_output` (`-v`) everything the processes wrote, else a failed one's stderr tail.
pub(super) fn render(result: &FunctionResult, show_output: bool) -> String {
    let mut lines: Vec<String> = Vec::new();
    if let Some(error) = &result.error {
        lines.push(format!("could not run: {error}"));
    }
    if let Some(report) = &result.report {
        render_report(report, &mut lines);
    }
    if let Some(expect) = &result.expect {
        render_expect(expect, &mut lines);
    }
    if !result.passed && result.error.is_none() {
        lines.push(format!("result: FAILED ({})", result.failure_summary()));
        if let Some(report) = result.report.as_ref().filter(|_| !show_output) {
            render_stderr(report, &mut lines);
        }
    }
    if let Some(report) = result.report.as_ref().filter(|_| show_output) {
        super::show::render_output(report, &mut lines);
    }
    let mut text = String::new();
    for line in lines {
        for (index, part) in line.lines().enumerate() {
            text.push_str(INDENT);
            if index > 0 {
                text.push_str("  ");
            }
            text.push_str(part);
            text.push('\n');
        }
    }
    text
}

fn render_report(report: &RunReport, lines: &mut Vec<String>) {
    if let Some(emulator) = &report.emulator {
        lines.push(format!("emulator: {emulator}"));
    }
    let root = if report.image {
        "the image's root file system as /"
    } else {
        "function at /var/task, layers at /opt"
    };
    if report.sandbox.sandboxed {
        lines.push(format!("sandbox: {} ({root})", report.sandbox.summary()));
    } else {
        lines.push(format!(
            "sandbox: none (--no-sandbox): {}",
            report
                .namespace_note
                .as_deref()
                .unwrap_or("ran from the temporary directories")
        ));
    }
    for limit in &report.sandbox.not_applied {
        if report.sandbox.sandboxed {
            lines.push(format!("not applied: {limit}"));
        }
    }
    if report.image
        && let Some(note) = &report.namespace_note
    {
        lines.push(format!("note: {note}"));
    }
    lines.push(format!("init: {:.1} ms", report.init_duration_ms));
    if let Some(init) = &report.init_error {
        lines.push(format!(
            "init error from {}: {}{}",
            init.source,
            init.error_type,
            init.error_message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        ));
    }
    for (index, invoke) in report.invocations.iter().enumerate() {
        let what = match &invoke.outcome {
            InvokeOutcome::Response {
                len,
                body,
                streamed,
                ..
            } => {
                let kind = if *streamed {
                    "streamed response"
                } else {
                    "response"
                };
                format!("{kind} {}", super::preview::preview(body, *len))
            }
            InvokeOutcome::FunctionError {
                error_type,
                error_message,
                ..
            } => format!(
                "error {error_type}{}",
                error_message
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            ),
            InvokeOutcome::Timeout { timeout_ms } => {
                format!("Sandbox.Timeout: no answer within {timeout_ms} ms")
            }
            InvokeOutcome::RuntimeExited {
                exit,
                out_of_memory,
            } => {
                let error_type = super::report::runtime_exit_type(*out_of_memory);
                format!("{error_type}: the runtime exited ({exit})")
            }
            InvokeOutcome::ExtensionCrashed { extension, exit } => {
                format!("Extension.Crash: extension {extension} exited ({exit})")
            }
        };
        // With --concurrency, when each ran: overlapping intervals ran at once.
        let when = if report.concurrency > 1 {
            format!(
                " [+{:.0} ms to +{:.0} ms]",
                invoke.started_at_ms, invoke.ended_at_ms
            )
        } else {
            String::new()
        };
        lines.push(format!(
            "invoke {} ({}){when}: {:.1} ms, {what}",
            index + 1,
            invoke.request_id,
            invoke.duration_ms
        ));
    }
    if report.concurrency > 1 {
        lines.push(format!(
            "concurrency: up to {} invocations at once (AWS_LAMBDA_MAX_CONCURRENCY={})",
            report.concurrency, report.concurrency
        ));
    }
    if let Some(tenant_id) = &report.tenant_id {
        lines.push(format!(
            "tenant: {tenant_id} (Lambda-Runtime-Aws-Tenant-Id)"
        ));
    }
    for subscription in &report.telemetry_subscriptions {
        lines.push(super::telemetry::describe(subscription));
    }
    if report.events_not_run > 0 {
        lines.push(format!(
            "{} invoke(s) not run: the environment failed before them",
            report.events_not_run
        ));
    }
    for extension in &report.extensions {
        let registration = if extension.registered {
            format!("registered for [{}]", extension.subscribed.join(", "))
        } else {
            "never registered".into()
        };
        let shutdown = match extension.shutdown {
            ShutdownStatus::Exited => "exited at shutdown",
            ShutdownStatus::Finished => "finished shutdown",
            ShutdownStatus::ExitedEarly => "exited before shutdown",
            ShutdownStatus::Killed => "killed at the end of the shutdown budget",
            ShutdownStatus::NotStarted => "could not be started",
        };
        let shutdown = if extension.internal {
            format!("inside the function's process, which {shutdown}")
        } else {
            shutdown.to_string()
        };
        let mut line = format!(
            "{} {}: {registration}, received [{}], {shutdown}",
            if extension.internal {
                "internal extension"
            } else {
                "extension"
            },
            extension.name,
            extension.received.join(", ")
        );
        if let Some(exit) = &extension.process.exit {
            line.push_str(&format!(" ({exit})"));
        }
        for error in &extension.reported_errors {
            line.push_str(&format!("; reported {error}"));
        }
        lines.push(line);
    }
    match &report.runtime {
        Some(runtime) => {
            let exited_itself = report.error_type.as_deref() == Some("Runtime.ExitError")
                || report
                    .invocations
                    .iter()
                    .any(|i| matches!(i.outcome, InvokeOutcome::RuntimeExited { .. }));
            let how = if exited_itself {
                "exited on its own"
            } else {
                "stopped at shutdown"
            };
            lines.push(format!(
                "runtime {} {how}: {}",
                runtime.path,
                runtime.exit.as_deref().unwrap_or("status unknown")
            ));
        }
        None if report.stand_in => lines.push(
            "runtime: stand-in function (no runtime process; the emulator answered each invoke with its event)".into(),
        ),
        None => lines.push("runtime: not started".into()),
    }
}

fn render_expect(expect: &ExpectReport, lines: &mut Vec<String>) {
    if expect.matched {
        lines.push(format!("expect: every response equals {}", expect.file));
        return;
    }
    for mismatch in expect.mismatches.iter().take(SHOWN_MISMATCHES) {
        let mut line = format!(
            "expect: invoke {} does not match {}: {}",
            mismatch.invoke, expect.file, mismatch.reason
        );
        if !mismatch.actual.is_null() {
            line.push_str(&format!(
                "\nexpected: {}\nactual:   {}",
                shorten(&expect.expected.to_string()),
                shorten(&match &mismatch.actual {
                    Value::String(text) if mismatch.path.is_none() => text.clone(),
                    value => value.to_string(),
                })
            ));
        }
        lines.push(line);
    }
    if expect.mismatches.len() > SHOWN_MISMATCHES {
        lines.push(format!(
            "expect: {} more invoke(s) do not match either",
            expect.mismatches.len() - SHOWN_MISMATCHES
        ));
    }
    if expect.mismatches.is_empty() {
        lines.push(format!(
            "expect: no invoke ran, so nothing could be compared with {}",
            expect.file
        ));
    }
}

fn render_stderr(report: &RunReport, lines: &mut Vec<String>) {
    let processes = report.runtime.iter().map(|p| ("runtime", p)).chain(
        report
            .extensions
            .iter()
            .map(|e| (e.name.as_str(), &e.process)),
    );
    for (name, process) in processes {
        let all: Vec<&str> = process.stderr.trim_matches('\n').lines().collect();
        if all.iter().all(|line| line.trim().is_empty()) {
            continue;
        }
        let tail = &all[all.len().saturating_sub(STDERR_TAIL_LINES)..];
        let mut text = format!(
            "stderr of {name}{}:",
            if tail.len() < all.len() {
                format!(" (last {} lines)", tail.len())
            } else {
                String::new()
            }
        );
        for line in tail {
            text.push_str(&format!("\n| {line}"));
        }
        lines.push(text);
    }
}

fn shorten(text: &str) -> String {
    match text.char_indices().nth(SHOWN_JSON_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

pub(super) fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

#[cfg(test)]
mod tests;
