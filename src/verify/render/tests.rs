//! verify's human rendering, written through a buffered shell as `verify` writes it.

use super::*;
use crate::output::{Shell, Verbosity};
use crate::target::Arch;
use crate::verify::Containment;

fn result(report: Option<RunReport>, error: Option<&str>) -> FunctionResult {
    FunctionResult {
        name: "orders".into(),
        arch: Arch::Arm64,
        passed: false,
        expect: None,
        report,
        error: error.map(String::from),
        setup_kind: None,
        setup_help: None,
        unmounted_layers: Vec::new(),
    }
}

fn rendered(result: &FunctionResult) -> String {
    let (shell, captured) = Shell::buffered(Verbosity::Normal);
    shell.print_block(&render(result, false));
    let captured = captured.lock().unwrap();
    assert_eq!(
        captured.stdout, "",
        "the rendering is for people: stderr only"
    );
    captured.stderr.clone()
}

#[test]
fn a_function_that_could_not_run_says_why_under_its_status_line() {
    let text = rendered(&result(
        None,
        Some("the ZIP entry `../bootstrap` leaves the task directory"),
    ));
    assert_eq!(
        text,
        "             could not run: the ZIP entry `../bootstrap` leaves the task directory\n"
    );
}

#[test]
fn a_failed_init_shows_the_sandbox_the_init_time_and_lambdas_error() {
    let report = RunReport {
        function_name: "orders".into(),
        arch: Arch::Arm64,
        emulator: Some("/usr/bin/qemu-aarch64".into()),
        private_mount_namespace: true,
        namespace_note: None,
        sandbox: Containment {
            sandboxed: true,
            read_only_root: true,
            uid: Some(993),
            gid: Some(990),
            host_user: Some("host uid 65534 (nobody), never root".into()),
            tmp_mb: Some(512),
            memory_mb: 128,
            memory_enforcement: "watched".into(),
            pid_namespace: true,
            network_namespace: true,
            process_cap: Some(1024),
            not_applied: vec!["memory by the kernel: no cgroup".into()],
        },
        init_duration_ms: 12.34,
        init_error: None,
        invocations: vec![],
        events_not_run: 0,
        extensions: vec![],
        runtime: None,
        error_type: Some("Runtime.ExitError".into()),
        error_message: Some("exit status 1\nmore".into()),
        api_requests: 1,
        stand_in: false,
        image: false,
        concurrency: 1,
        tenant_id: None,
        telemetry_subscriptions: vec![],
    };
    let text = rendered(&result(Some(report), None));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[..4],
        [
            "             emulator: /usr/bin/qemu-aarch64",
            "             sandbox: read-only root, uid 993 gid 990 (sbx_user1051), /tmp 512 MB, \
             memory 128 MB (watched), pid namespace, own network, 1024 processes (function at \
             /var/task, layers at /opt)",
            "             not applied: memory by the kernel: no cgroup",
            "             init: 12.3 ms",
        ]
    );
    assert_eq!(
        lines.last(),
        Some(&"             result: FAILED (Runtime.ExitError: exit status 1)"),
        "{text}"
    );
}

#[test]
fn concurrent_invocations_show_when_they_ran_and_subscribers_what_they_took() {
    use crate::verify::report::InvokeReport;
    use crate::verify::telemetry::{Api, BatchReport, Buffering, SubscriptionReport};
    let invoke = |id: &str, start: f64, end: f64| InvokeReport {
        request_id: id.into(),
        duration_ms: end - start,
        outcome: InvokeOutcome::response(b"{}".to_vec(), 2, false),
        started_at_ms: start,
        ended_at_ms: end,
        response: Some(serde_json::json!({})),
        streamed: false,
        max_memory_used_mb: Some(3),
    };
    let batch = |accepted: bool, error: Option<&str>| BatchReport {
        records: 2,
        bytes: 100,
        types: vec!["function".into()],
        status: accepted.then_some(200),
        accepted,
        error: error.map(String::from),
        elapsed_ms: 1.0,
    };
    let report = RunReport {
        function_name: "orders".into(),
        arch: Arch::X86_64,
        emulator: None,
        private_mount_namespace: false,
        namespace_note: None,
        sandbox: Containment::default(),
        init_duration_ms: 5.0,
        init_error: None,
        invocations: vec![invoke("a", 10.0, 510.0), invoke("b", 11.0, 512.0)],
        events_not_run: 0,
        extensions: vec![],
        runtime: None,
        error_type: None,
        error_message: None,
        api_requests: 9,
        stand_in: false,
        image: false,
        concurrency: 2,
        tenant_id: Some("customer-42".into()),
        telemetry_subscriptions: vec![SubscriptionReport {
            extension: "otel".into(),
            api: Api::Telemetry,
            types: vec!["platform".into(), "function".into()],
            buffering: Buffering {
                timeout_ms: 25,
                max_bytes: 262_144,
                max_items: 1_000,
            },
            destination: "http://sandbox.localdomain:4243".into(),
            records_sent: 4,
            records_accepted: 2,
            records_dropped: 1,
            batches: vec![
                batch(true, None),
                batch(
                    false,
                    Some("no answer within 1500 ms; the batch was dropped"),
                ),
            ],
        }],
    };
    let text = rendered(&result(Some(report), None));
    for line in [
        "invoke 1 (a) [+10 ms to +510 ms]: 500.0 ms, response {}",
        "invoke 2 (b) [+11 ms to +512 ms]: 501.0 ms, response {}",
        "concurrency: up to 2 invocations at once (AWS_LAMBDA_MAX_CONCURRENCY=2)",
        "tenant: customer-42 (Lambda-Runtime-Aws-Tenant-Id)",
        "Telemetry API subscriber otel [platform, function] at http://sandbox.localdomain:4243: \
         4 record(s) in 2 batch(es), 1 accepted, 1 not: no answer within 1500 ms; the batch was \
         dropped, 1 record(s) dropped at shutdown",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
}
