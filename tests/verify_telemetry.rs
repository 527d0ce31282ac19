//! `cargo lambda-pack verify` for today's Lambda: the Telemetry and Logs APIs deliver to real
//! `lambda-extension` subscribers, `--concurrency` runs `lambda_runtime`'s `run_concurrent`
//! several invocations at once, `--tenant-id` reaches `context.tenant_id`, responses come back
//! whole in the JSON report and /tmp is the environment's own. The fixture is
//! `fixtures/verify-functions` (crates `managed-fn`, `telemetry-ext`, `logs-ext`), packed once.

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

fn out() -> &'static PathBuf {
    static OUT: OnceLock<PathBuf> = OnceLock::new();
    OUT.get_or_init(|| {
        let workspace = verify_functions_workspace();
        let target_dir = verify_functions_target_dir();
        let mut command = lambda_pack();
        command
            .args([
                "verify",
                "--build",
                "--compiler",
                "cargo",
                "--profile",
                "dev",
            ])
            .args(["--locked", "--target-dir"])
            .arg(&target_dir)
            .arg("managed")
            .current_dir(&workspace)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_BUILD_TARGET");
        let run = run(command);
        assert_eq!(
            run.code(),
            0,
            "packing fixtures/verify-functions failed\n{}",
            run.stderr
        );
        target_dir.join("lambda-pack")
    })
}

/// Runs of this file go at the same time: each environment has its own network, so the logs
/// extensions of two runs both listen on lambda_extension's fixed port (9002).
fn verify(args: &[&str]) -> Run {
    verify_with(&verify_functions_workspace(), out(), args)
}

/// `verify <args> --message-format json` with `event`; the function's report.
fn verify_json(event: &Value, args: &[&str]) -> (Run, Value) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("event.json");
    std::fs::write(&path, event.to_string()).unwrap();
    let mut all = vec![
        "--event",
        path.to_str().unwrap(),
        "--message-format",
        "json",
    ];
    all.extend_from_slice(args);
    let run = verify(&all);
    let document: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|err| panic!("stdout is not JSON ({err})\n{}\n{}", run.stdout, run.stderr));
    let function = document["functions"][0].clone();
    (run, function)
}

fn invocations(function: &Value) -> &Vec<Value> {
    function["report"]["invocations"].as_array().unwrap()
}

/// Records of `kind` in a list of `{"type", "record"}` lines.
fn records<'a>(lines: &'a Value, kind: &str) -> Vec<&'a Value> {
    lines
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["type"] == kind)
        .collect()
}

#[test]
fn the_functions_log_line_and_platform_records_reach_both_extensions() {
    let event = json!({
        "action": "read",
        "files": ["/tmp/telemetry.jsonl", "/tmp/logs.jsonl"],
        "until": "platform.report",
    });
    let (run, function) = verify_json(&event, &["observed", "--invokes", "2"]);
    run.assert_code(0);
    let invokes = invocations(&function);
    let first_id = invokes[0]["request_id"].as_str().unwrap();
    // The second invocation reads back, from the /tmp it shares with the extensions, what
    // they were sent about the first.
    let files = &invokes[1]["response"]["files"];
    let telemetry = &files["/tmp/telemetry.jsonl"];
    let line = format!("managed-fn handling {first_id}");
    // The extension's own line is an `extension` record.
    assert!(
        records(telemetry, "extension").iter().any(|r| r["record"]
            .as_str()
            .unwrap()
            .starts_with("telemetry-ext listening on port")),
        "{telemetry:#}"
    );
    assert!(
        records(telemetry, "function")
            .iter()
            .any(|r| r["record"] == line),
        "{telemetry:#}"
    );
    for kind in [
        "platform.initStart",
        "platform.initRuntimeDone",
        "platform.initReport",
    ] {
        assert_eq!(records(telemetry, kind).len(), 1, "{kind}: {telemetry:#}");
    }
    let start = records(telemetry, "platform.start");
    assert_eq!(start[0]["record"]["requestId"], first_id, "{telemetry:#}");
    assert_eq!(start[0]["record"]["tracing"]["type"], "X-Amzn-Trace-Id");
    let done = records(telemetry, "platform.runtimeDone");
    assert_eq!(done[0]["record"]["status"], "success", "{telemetry:#}");
    let report = records(telemetry, "platform.report");
    let metrics = &report[0]["record"]["metrics"];
    assert_eq!(report[0]["record"]["requestId"], first_id);
    assert_eq!(metrics["memorySizeMB"], 128, "{metrics}");
    assert!(
        metrics["maxMemoryUsedMB"].as_u64().unwrap() > 0,
        "{metrics}"
    );
    assert!(
        metrics["billedDurationMs"].as_u64().unwrap() >= 1,
        "{metrics}"
    );
    assert!(
        metrics["initDurationMs"].as_f64().unwrap() > 0.0,
        "{metrics}"
    );
    // The Logs API subscriber got the same invocation in its own schema.
    let logs = &files["/tmp/logs.jsonl"];
    assert!(
        records(logs, "function")
            .iter()
            .any(|r| r["record"] == line),
        "{logs:#}"
    );
    assert!(
        records(logs, "platform.start")
            .iter()
            .any(|r| r["record"] == first_id)
    );
    assert!(
        records(logs, "platform.end")
            .iter()
            .any(|r| r["record"] == first_id)
    );
    assert!(
        records(logs, "platform.report")
            .iter()
            .any(|r| r["record"]["requestId"] == first_id),
        "{logs:#}"
    );

    // The report says what each subscriber was sent and that it accepted every batch.
    let subscriptions = function["report"]["telemetry_subscriptions"]
        .as_array()
        .unwrap();
    assert_eq!(subscriptions.len(), 2, "{subscriptions:#?}");
    for subscription in subscriptions {
        assert!(subscription["records_sent"].as_u64().unwrap() > 0);
        assert_eq!(
            subscription["records_sent"],
            subscription["records_accepted"]
        );
        let batches = subscription["batches"].as_array().unwrap();
        assert!(
            batches
                .iter()
                .all(|b| b["accepted"] == true && b["status"] == 200)
        );
        let types: Vec<&str> = batches
            .iter()
            .flat_map(|b| b["types"].as_array().unwrap())
            .filter_map(Value::as_str)
            .collect();
        for kind in ["function", "platform.start", "platform.report"] {
            assert!(types.contains(&kind), "{kind} never sent: {subscription:#}");
        }
    }
    let telemetry = subscriptions
        .iter()
        .find(|s| s["api"] == "telemetry")
        .unwrap();
    assert_eq!(
        telemetry["buffering"],
        json!({"timeoutMs": 25, "maxBytes": 262144, "maxItems": 1000})
    );
    assert!(
        telemetry["destination"]
            .as_str()
            .unwrap()
            .starts_with("http://sandbox.localdomain:")
    );
    // The last invocation's records went out before SHUTDOWN.
    assert_eq!(telemetry["records_dropped"], 0);
    let human = verify(&["observed"]);
    human.assert_code(0);
    assert!(
        human.stderr.contains("Telemetry API subscriber telemetry [platform, function, extension] at http://sandbox.localdomain:"),
        "{}",
        human.stderr
    );
    assert!(
        human
            .stderr
            .contains("Logs API subscriber logs [platform, function]"),
        "{}",
        human.stderr
    );
}

#[test]
fn a_buffering_outside_lambdas_bounds_is_refused_as_lambda_refuses_it() {
    let (run, function) = verify_json(
        &json!({"action": "env"}),
        &[
            "observed",
            "--env",
            r#"TELEMETRY_EXT_BUFFERING={"timeoutMs":10,"maxItems":1000}"#,
        ],
    );
    run.assert_code(10);
    let telemetry = function["report"]["extensions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "telemetry")
        .unwrap();
    let stderr = telemetry["process"]["stderr"].as_str().unwrap();
    assert!(stderr.contains("400 Bad Request"), "{stderr}");
    assert!(
        stderr.contains(r#""errorType":"ValidationError""#),
        "{stderr}"
    );
    assert!(
        stderr.contains("buffering.timeoutMs 10 is out of range: it must be between 25 and 30000"),
        "{stderr}"
    );
    // The extension gave up during init, as it would on Lambda: nothing was invoked.
    assert_eq!(
        function["report"]["error_type"], "Extension.Crash",
        "{function:#}"
    );
    assert!(invocations(&function).is_empty());
}

/// Each invocation's `[start, end]` in milliseconds.
fn intervals(function: &Value) -> Vec<(f64, f64)> {
    invocations(function)
        .iter()
        .map(|i| {
            (
                i["started_at_ms"].as_f64().unwrap(),
                i["ended_at_ms"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn with_concurrency_3_three_invocations_overlap_and_see_the_variable() {
    let event = json!({"action": "env", "sleep_ms": 800});
    let (run, function) = verify_json(&event, &["managed", "--concurrency", "3", "--invokes", "3"]);
    run.assert_code(0);
    let invokes = invocations(&function);
    assert_eq!(invokes.len(), 3);
    for invoke in invokes {
        assert_eq!(invoke["response"]["max_concurrency"], "3", "{invoke:#}");
        assert_eq!(invoke["response"]["request_id"], invoke["request_id"]);
    }
    let spans = intervals(&function);
    let latest_start = spans.iter().map(|s| s.0).fold(f64::MIN, f64::max);
    let earliest_end = spans.iter().map(|s| s.1).fold(f64::MAX, f64::min);
    assert!(
        latest_start < earliest_end,
        "not all three in flight at once: {spans:?}"
    );
    assert_eq!(function["report"]["concurrency"], 3);

    let human = verify(&["managed", "--concurrency", "3", "--invokes", "3"]);
    human.assert_code(0);
    assert!(
        human
            .stderr
            .contains("concurrency: up to 3 invocations at once"),
        "{}",
        human.stderr
    );
}

#[test]
fn without_concurrency_no_invocations_overlap() {
    let event = json!({"action": "env", "sleep_ms": 300});
    let (run, function) = verify_json(&event, &["managed", "--invokes", "3"]);
    run.assert_code(0);
    for invoke in invocations(&function) {
        assert_eq!(
            invoke["response"]["max_concurrency"],
            Value::Null,
            "{invoke:#}"
        );
    }
    let spans = intervals(&function);
    for pair in spans.windows(2) {
        assert!(pair[1].0 >= pair[0].1, "invocations overlap: {spans:?}");
    }
}

/// A runtime that polls `/next` one event at a time, under `--concurrency 3`: the events wait for
/// it, and each invocation is timed from when the runtime took it (as Lambda times it), so the
/// report shows no overlap that did not happen.
#[test]
fn a_runtime_serving_one_at_a_time_does_not_look_concurrent() {
    let event = json!({"action": "env", "sleep_ms": 300});
    let (run, function) = verify_json(
        &event,
        &[
            "managed",
            "--concurrency",
            "3",
            "--invokes",
            "3",
            "--env",
            "SERVE_ONE_AT_A_TIME=1",
        ],
    );
    run.assert_code(0);
    let spans = intervals(&function);
    assert_eq!(spans.len(), 3);
    let mut sorted = spans.clone();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    for pair in sorted.windows(2) {
        assert!(pair[1].0 >= pair[0].1, "invocations overlap: {spans:?}");
    }
}

#[test]
fn tenant_id_reaches_the_handlers_context() {
    let (run, function) = verify_json(
        &json!({"action": "env"}),
        &["managed", "--tenant-id", "customer-42"],
    );
    run.assert_code(0);
    assert_eq!(
        invocations(&function)[0]["response"]["tenant_id"],
        "customer-42"
    );
    assert_eq!(function["report"]["tenant_id"], "customer-42");
    let (run, function) = verify_json(&json!({"action": "env"}), &["managed"]);
    run.assert_code(0);
    assert_eq!(
        invocations(&function)[0]["response"]["tenant_id"],
        Value::Null
    );

    let refused = verify(&["managed", "--tenant-id", "has space"]);
    refused.assert_code(3);
    assert!(
        refused
            .stderr
            .contains("--tenant-id \"has space\" is not a tenant id Lambda accepts"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("help:"), "{}", refused.stderr);
}

#[test]
fn a_streamed_response_over_6_mb_arrives_whole() {
    let bytes = 7 * 1024 * 1024 + 5;
    let (run, function) = verify_json(&json!({"bytes": bytes}), &["streamer"]);
    run.assert_code(0);
    let invoke = &invocations(&function)[0];
    assert_eq!(invoke["streamed"], true);
    // Every byte the runtime streamed: lambda_runtime's metadata prelude (for function URLs,
    // ended by 8 NUL bytes), then the body, as InvokeWithResponseStream hands them over.
    let len = invoke["outcome"]["len"].as_u64().unwrap() as usize;
    let response = invoke["response"].as_str().unwrap();
    assert_eq!(response.len(), len);
    let (prelude, body) = response.split_once("\0\0\0\0\0\0\0\0").unwrap();
    assert!(prelude.starts_with(r#"{"statusCode":200"#), "{prelude}");
    assert_eq!(body.len(), bytes);
    assert!(body.bytes().all(|b| b == b'x'));
    // People keep the 200-byte preview.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("event.json");
    std::fs::write(&path, json!({"bytes": bytes}).to_string()).unwrap();
    let human = verify(&["streamer", "--event", path.to_str().unwrap()]);
    human.assert_code(0);
    assert!(
        human
            .stderr
            .contains(r#" ms, streamed response {"statusCode":200"#),
        "{}",
        human.stderr
    );
    assert!(
        human.stderr.contains(&format!("… ({len} bytes)")),
        "{}",
        human.stderr
    );
}

#[test]
fn tmp_is_private_to_the_environment_and_empty_at_each_run() {
    for _ in 0..2 {
        let (run, function) =
            verify_json(&json!({"action": "tmp"}), &["managed", "--invokes", "2"]);
        run.assert_code(0);
        assert_eq!(function["report"]["private_mount_namespace"], true);
        let invokes = invocations(&function);
        assert_eq!(invokes[0]["response"]["tmp"], json!([]), "{function:#}");
        assert_eq!(invokes[1]["response"]["tmp"], json!(["left-by-managed-fn"]));
    }
    assert!(!std::path::Path::new("/tmp/left-by-managed-fn").exists());
}

fn outcome_kinds(function: &Value) -> Vec<String> {
    let mut kinds: Vec<String> = invocations(function)
        .iter()
        .map(|i| match i["outcome"]["kind"].as_str().unwrap() {
            "function_error" => format!(
                "function_error {}",
                i["outcome"]["error_type"].as_str().unwrap()
            ),
            kind => kind.to_string(),
        })
        .collect();
    kinds.sort();
    kinds
}

#[test]
fn ten_concurrent_invocations_that_fail_or_time_out_are_each_reported() {
    let event = json!({
        "action": "plan",
        "plan": ["ok", "error", "sleep", "ok", "error", "sleep", "ok", "ok", "error", "ok"],
    });
    let started = Instant::now();
    let (run, function) = verify_json(
        &event,
        &[
            "managed",
            "--concurrency",
            "10",
            "--invokes",
            "10",
            "--timeout",
            "1",
        ],
    );
    run.assert_code(10);
    assert!(started.elapsed() < Duration::from_secs(30));
    let mut expected = vec!["response"; 5]
        .into_iter()
        .map(String::from)
        .chain(vec!["function_error PlannedFailure".to_string(); 3])
        .chain(vec!["timeout".to_string(); 2])
        .collect::<Vec<_>>();
    expected.sort();
    assert_eq!(outcome_kinds(&function), expected, "{function:#}");
    assert_eq!(function["report"]["events_not_run"], 0);
}

#[test]
fn a_crash_among_ten_concurrent_invocations_ends_those_in_flight_with_runtime_exit_error() {
    let event = json!({
        "action": "plan",
        "plan": ["ok", "ok", "ok", "crash", "sleep", "sleep", "sleep", "sleep", "sleep", "sleep"],
        "crash_after_ms": 500,
    });
    let (run, function) = verify_json(
        &event,
        &[
            "managed",
            "--concurrency",
            "10",
            "--invokes",
            "10",
            "--timeout",
            "20",
        ],
    );
    run.assert_code(10);
    let mut expected: Vec<String> = vec!["response".to_string(); 3];
    expected.extend(vec!["runtime_exited".to_string(); 7]);
    expected.sort();
    assert_eq!(outcome_kinds(&function), expected, "{function:#}");
    assert_eq!(function["report"]["error_type"], "Runtime.ExitError");
}

#[test]
fn subscribers_that_hang_answer_500_or_are_slow_do_not_hold_verify_up() {
    for (how, error) in [
        ("hang", "no answer within 1500 ms"),
        ("500", "answered HTTP 500"),
        ("slow", "no answer within 1500 ms"),
    ] {
        let started = Instant::now();
        let (run, function) = verify_json(
            &json!({"action": "env"}),
            &[
                "observed",
                "--invokes",
                "2",
                "--env",
                &format!("TELEMETRY_EXT_MISBEHAVE={how}"),
            ],
        );
        run.assert_code(0);
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{how}: {:?}",
            started.elapsed()
        );
        let subscriptions = function["report"]["telemetry_subscriptions"]
            .as_array()
            .unwrap();
        let broken = subscriptions
            .iter()
            .find(|s| s["api"] == "telemetry")
            .unwrap();
        let batches = broken["batches"].as_array().unwrap();
        assert!(!batches.is_empty(), "{how}: {broken:#}");
        assert!(
            batches.iter().all(|b| b["accepted"] == false),
            "{how}: {broken:#}"
        );
        assert!(
            batches[0]["error"].as_str().unwrap().contains(error),
            "{how}: {broken:#}"
        );
        assert_eq!(broken["records_accepted"], 0);
        // The well-behaved Logs API subscriber still got everything.
        let logs = subscriptions.iter().find(|s| s["api"] == "logs").unwrap();
        assert_eq!(logs["records_sent"], logs["records_accepted"], "{logs:#}");
    }
}

#[test]
fn concurrency_is_refused_for_provided_al2() {
    let copy = tempfile::tempdir().unwrap();
    copy_tree(out(), copy.path());
    let manifest_path = copy.path().join("manifest.json");
    let mut manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    for artifact in manifest["artifacts"].as_array_mut().unwrap() {
        if artifact["name"] == "managed" {
            artifact["runtime"] = json!("provided.al2");
        }
    }
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();
    let run = verify_with(
        &verify_functions_workspace(),
        copy.path(),
        &["managed", "--concurrency", "2"],
    );
    run.assert_code(3);
    assert!(
        run.stderr.contains("function managed runs on provided.al2"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("help: pack the function for provided.al2023"),
        "{}",
        run.stderr
    );
    // One at a time is what provided.al2 runs: accepted.
    let run = verify_with(
        &verify_functions_workspace(),
        copy.path(),
        &["managed", "--concurrency", "1"],
    );
    run.assert_code(0);
}

/// The Logs API subscription of `function`'s report: on lambda_extension's fixed port 9002, every
/// record it was sent accepted.
fn assert_logs_delivered_on_9002(function: &Value) {
    let subscription = function["report"]["telemetry_subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["extension"] == "logs")
        .unwrap_or_else(|| panic!("no logs subscription: {function:#}"));
    assert_eq!(
        subscription["destination"], "http://sandbox.localdomain:9002",
        "{subscription:#}"
    );
    assert!(
        subscription["records_sent"].as_u64().unwrap() > 0
            && subscription["records_accepted"] == subscription["records_sent"],
        "{subscription:#}"
    );
}

/// As on Lambda, each environment has its own network: a second verify, started while a first
/// one's invocations sleep, runs a function whose logs extension listens on lambda_extension's
/// fixed port 9002 like the first's; both pass and each extension gets its own records.
#[test]
fn two_verifies_at_once_each_have_their_own_network_for_fixed_ports() {
    let sleeping = json!({"action": "env", "sleep_ms": 2500});
    let reading = json!({
        "action": "read",
        "files": ["/tmp/logs.jsonl"],
        "until": "platform.report",
    });
    let ((first, first_ended), (second, second_ended)) = std::thread::scope(|scope| {
        let first = scope.spawn(|| {
            let run = verify_json(&sleeping, &["observed", "--invokes", "2"]);
            (run, Instant::now())
        });
        // The first run's extensions are up well before its 5 s of invocations end.
        std::thread::sleep(Duration::from_millis(1500));
        let second = verify_json(&reading, &["observed", "--invokes", "2"]);
        let second_ended = Instant::now();
        (first.join().unwrap(), (second, second_ended))
    });
    assert!(
        second_ended < first_ended,
        "the second run ran inside the first"
    );
    let (run, function) = &first;
    run.assert_code(0);
    assert_logs_delivered_on_9002(function);
    let (run, function) = &second;
    run.assert_code(0);
    assert_logs_delivered_on_9002(function);
    let invokes = invocations(function);
    let first_id = invokes[0]["request_id"].as_str().unwrap();
    let logs = &invokes[1]["response"]["files"]["/tmp/logs.jsonl"];
    let line = format!("managed-fn handling {first_id}");
    assert!(
        records(logs, "function")
            .iter()
            .any(|r| r["record"] == line),
        "{logs:#}\n{}",
        run.stderr
    );
}
