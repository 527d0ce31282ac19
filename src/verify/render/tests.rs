//! verify's human rendering, written through a buffered shell as `verify` writes it.

use super::*;
use crate::output::{Shell, Verbosity};
use crate::target::Arch;

fn result(report: Option<RunReport>, error: Option<&str>) -> FunctionResult {
    FunctionResult {
        name: "orders".into(),
        arch: Arch::Arm64,
        passed: false,
        expect: None,
        report,
        error: error.map(String::from),
        setup_kind: None,
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
        private_mount_namespace: false,
        namespace_note: None,
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
        lines[..3],
        [
            "             emulator: /usr/bin/qemu-aarch64",
            "             sandbox: no private mount namespace: ran from the temporary directories",
            "             init: 12.3 ms",
        ]
    );
    assert_eq!(
        lines.last(),
        Some(&"             result: FAILED (Runtime.ExitError: exit status 1)"),
        "{text}"
    );
}
