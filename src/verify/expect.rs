//! `verify --expect`: each response compared, as JSON, with the expected document.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::Value;

use super::{InvokeOutcome, RunReport};

/// How the responses of one function compared with `--expect`.
#[derive(Clone, Debug, Serialize)]
pub struct ExpectReport {
    /// True when every invoke answered with JSON equal to `expected`.
    pub matched: bool,
    /// The `--expect` file.
    pub file: String,
    pub expected: Value,
    /// One per invoke that did not match, in order.
    pub mismatches: Vec<Mismatch>,
}

/// One invoke whose response was not the expected JSON.
#[derive(Clone, Debug, Serialize)]
pub struct Mismatch {
    /// 1-based, as printed.
    pub invoke: usize,
    /// The first differing location (`$.items[2].id`), when both sides are JSON.
    pub path: Option<String>,
    /// The response as JSON; as a string when it was not JSON; null when there was none.
    pub actual: Value,
    /// Why it does not match, in words.
    pub reason: String,
}

/// Compares every invoke's response in `report` with `expected`.
pub fn compare(report: &RunReport, expected: &Value, file: &str) -> ExpectReport {
    let mut mismatches = Vec::new();
    for (index, invoke) in report.invocations.iter().enumerate() {
        let invoke_number = index + 1;
        let Some(body) = invoke.outcome.body() else {
            mismatches.push(Mismatch {
                invoke: invoke_number,
                path: None,
                actual: Value::Null,
                reason: format!("no response ({})", outcome_name(&invoke.outcome)),
            });
            continue;
        };
        match serde_json::from_slice::<Value>(body) {
            Ok(actual) if actual == *expected => {}
            Ok(actual) => {
                let path = first_difference(expected, &actual);
                mismatches.push(Mismatch {
                    invoke: invoke_number,
                    reason: format!("differs at {path}"),
                    path: Some(path),
                    actual,
                });
            }
            Err(err) => mismatches.push(Mismatch {
                invoke: invoke_number,
                path: None,
                actual: Value::String(String::from_utf8_lossy(body).into_owned()),
                reason: format!("the response is not JSON ({err})"),
            }),
        }
    }
    let not_run = report.events_not_run;
    if not_run > 0 {
        let first = report.invocations.len() + 1;
        for invoke in first..first + not_run {
            mismatches.push(Mismatch {
                invoke,
                path: None,
                actual: Value::Null,
                reason: "never invoked (the environment failed before it)".into(),
            });
        }
    }
    ExpectReport {
        matched: mismatches.is_empty() && !report.invocations.is_empty(),
        file: file.to_string(),
        expected: expected.clone(),
        mismatches,
    }
}

fn outcome_name(outcome: &InvokeOutcome) -> String {
    match outcome {
        InvokeOutcome::Response { .. } => "response".into(),
        InvokeOutcome::FunctionError { error_type, .. } => format!("function error {error_type}"),
        InvokeOutcome::Timeout { .. } => "Sandbox.Timeout".into(),
        InvokeOutcome::RuntimeExited { out_of_memory, .. } => {
            super::report::runtime_exit_type(*out_of_memory).into()
        }
        InvokeOutcome::ExtensionCrashed { .. } => "Extension.Crash".into(),
    }
}

/// The first location where two JSON values differ, as a JSONPath-like string (`$` for the
/// root); object keys are visited in sorted order. Returns `$` when they are equal.
pub fn first_difference(expected: &Value, actual: &Value) -> String {
    let mut path = String::from("$");
    walk(expected, actual, &mut path);
    path
}

/// Extends `path` down to the first difference; returns whether one was found.
fn walk(expected: &Value, actual: &Value, path: &mut String) -> bool {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            let keys: BTreeSet<&String> = e.keys().chain(a.keys()).collect();
            for key in keys {
                let len = path.len();
                push_key(path, key);
                match (e.get(key), a.get(key)) {
                    (Some(x), Some(y)) => {
                        if walk(x, y, path) {
                            return true;
                        }
                    }
                    _ => return true,
                }
                path.truncate(len);
            }
            false
        }
        (Value::Array(e), Value::Array(a)) => {
            for index in 0..e.len().max(a.len()) {
                let len = path.len();
                path.push_str(&format!("[{index}]"));
                match (e.get(index), a.get(index)) {
                    (Some(x), Some(y)) => {
                        if walk(x, y, path) {
                            return true;
                        }
                    }
                    _ => return true,
                }
                path.truncate(len);
            }
            false
        }
        _ => expected != actual,
    }
}

fn push_key(path: &mut String, key: &str) {
    let plain = !key.is_empty()
        && !key.starts_with(|c: char| c.is_ascii_digit())
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain {
        path.push('.');
        path.push_str(key);
    } else {
        path.push('[');
        path.push_str(&Value::String(key.to_string()).to_string());
        path.push(']');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::Arch;
    use crate::verify::report::InvokeReport;
    use serde_json::json;

    fn report(outcomes: Vec<InvokeOutcome>, events_not_run: usize) -> RunReport {
        RunReport {
            function_name: "f".into(),
            arch: Arch::X86_64,
            emulator: None,
            private_mount_namespace: false,
            namespace_note: None,
            sandbox: Default::default(),
            init_duration_ms: 1.0,
            init_error: None,
            invocations: outcomes
                .into_iter()
                .enumerate()
                .map(|(i, outcome)| InvokeReport {
                    request_id: format!("r{i}"),
                    duration_ms: 1.0,
                    response: outcome.response_value(),
                    outcome,
                    started_at_ms: i as f64,
                    ended_at_ms: i as f64 + 1.0,
                    streamed: false,
                    max_memory_used_mb: None,
                })
                .collect(),
            events_not_run,
            extensions: Vec::new(),
            runtime: None,
            error_type: None,
            error_message: None,
            api_requests: 0,
            stand_in: false,
            image: false,
            concurrency: 1,
            tenant_id: None,
            telemetry_subscriptions: Vec::new(),
        }
    }

    fn response(text: &str) -> InvokeOutcome {
        InvokeOutcome::response(text.as_bytes().to_vec(), text.len() as u64, false)
    }

    #[test]
    fn every_invoke_is_compared_as_json() {
        let expected = json!({"a": 1, "b": [true]});
        let same = report(vec![response("{\"b\": [true],\n \"a\": 1}"); 2], 0);
        let result = compare(&same, &expected, "e.json");
        assert!(result.matched, "{result:?}");
        assert!(result.mismatches.is_empty());

        let mixed = report(
            vec![
                response(r#"{"a":1,"b":[true]}"#),
                response(r#"{"a":2,"b":[true]}"#),
                response("not json"),
                InvokeOutcome::Timeout { timeout_ms: 1000 },
            ],
            1,
        );
        let result = compare(&mixed, &expected, "e.json");
        assert!(!result.matched);
        let found: Vec<(usize, Option<&str>)> = result
            .mismatches
            .iter()
            .map(|m| (m.invoke, m.path.as_deref()))
            .collect();
        assert_eq!(found, [(2, Some("$.a")), (3, None), (4, None), (5, None)]);
        assert_eq!(result.mismatches[0].actual, json!({"a": 2, "b": [true]}));
        assert_eq!(result.mismatches[1].actual, json!("not json"));
        assert!(result.mismatches[2].reason.contains("Sandbox.Timeout"));

        // No invoke at all (init failed): nothing matched.
        assert!(!compare(&report(Vec::new(), 1), &expected, "e.json").matched);
    }

    #[test]
    fn finds_the_first_differing_path() {
        let expected = json!({"a": 1, "b": {"c": [1, 2, {"d": "x"}]}, "e": true});
        let same = expected.clone();
        assert_eq!(first_difference(&expected, &same), "$");
        let actual = json!({"a": 1, "b": {"c": [1, 2, {"d": "y"}]}, "e": false});
        assert_eq!(first_difference(&expected, &actual), "$.b.c[2].d");
        let shorter = json!({"a": 1, "b": {"c": [1, 2]}, "e": true});
        assert_eq!(first_difference(&expected, &shorter), "$.b.c[2]");
        let extra = json!({"a": 1, "b": {"c": [1, 2, {"d": "x"}]}, "e": true, "f": 0});
        assert_eq!(first_difference(&expected, &extra), "$.f");
        assert_eq!(first_difference(&json!(1), &json!("1")), "$");
        assert_eq!(
            first_difference(&json!({"odd key": 1}), &json!({"odd key": 2})),
            "$[\"odd key\"]"
        );
    }
}
