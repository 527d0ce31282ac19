//! Runs real Lambda functions (built from `fixtures/verify-functions` with the real runtime
//! crates) through the local Runtime API emulator, and checks ZIP extraction.
//!
//! Needs the musl targets (`rustup target add x86_64-unknown-linux-musl
//! aarch64-unknown-linux-musl`) and, for the arm64 test, `qemu-user-static`.

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use cargo_lambda_pack::{
    Arch, InvokeOutcome, NamespaceMode, RunReport, ShutdownStatus, VerifyError, extract_zip,
    run_function,
};
use common::verify_bins::{Layout, bins, x86};
use serde_json::{Value, json};
use zip::write::SimpleFileOptions;

fn response_json(report: &RunReport, index: usize) -> Value {
    let invoke = &report.invocations[index];
    let body = invoke
        .outcome
        .body()
        .unwrap_or_else(|| panic!("invoke {index} did not answer: {report:#?}"));
    serde_json::from_slice(body).unwrap()
}

fn assert_success(report: &RunReport) {
    assert!(report.is_success(), "the run failed: {report:#?}");
}

#[test]
fn json_function_answers_each_event() {
    let layout = Layout::new();
    Layout::install(&layout.task, "bootstrap", &x86("echo"));
    let events = [json!({"hello": "world"}), json!({"n": 2})];
    let report = run_function(&layout.run("echo-fn", &events)).unwrap();
    assert_success(&report);
    assert_eq!(report.invocations.len(), 2);
    for (i, event) in events.iter().enumerate() {
        let answer = response_json(&report, i);
        assert_eq!(answer["echo"], *event);
        assert_eq!(answer["function"], "echo-fn");
        assert_eq!(answer["request_id"], report.invocations[i].request_id);
    }
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["error_type"], Value::Null);
    assert_eq!(json["invocations"][0]["outcome"]["kind"], "response");
    let preview = json["invocations"][0]["outcome"]["preview"]
        .as_str()
        .unwrap();
    assert!(preview.contains("\"hello\":\"world\""), "{preview}");
    // Without extensions the runtime is killed outright at shutdown.
    let runtime = report.runtime.as_ref().unwrap();
    assert_eq!(runtime.signal, Some(libc::SIGKILL), "{runtime:#?}");
}

#[test]
fn http_function_answers_api_gateway_v2_event() {
    let layout = Layout::new();
    Layout::install(&layout.task, "bootstrap", &x86("http-fn"));
    let event = common::api_gateway_v2_event();
    let report = run_function(&layout.run("http-fn", &[event])).unwrap();
    assert_success(&report);
    let answer = response_json(&report, 0);
    assert_eq!(answer["statusCode"], 200, "{answer}");
    assert_eq!(answer["body"], "hello /pets", "{answer}");
}

#[test]
fn extension_registers_and_receives_invoke_then_shutdown() {
    let layout = Layout::new();
    Layout::install(&layout.task, "bootstrap", &x86("echo"));
    Layout::install(&layout.opt, "extensions/recorder", &x86("recorder"));
    // What the extension records, read from its stdout: the environment has a /tmp of its own,
    // and a path of the host's may be under /tmp too (a checkout there).
    let run = layout.run("with-extension", &[json!({"a": 1}), json!({"a": 2})]);
    let report = run_function(&run).unwrap();
    assert_success(&report);

    let ids: Vec<&str> = report
        .invocations
        .iter()
        .map(|i| i.request_id.as_str())
        .collect();
    let lines = &report.extensions[0].process.stdout;
    let expected = format!(
        "START\nINVOKE {}\nINVOKE {}\nSHUTDOWN spindown\n",
        ids[0], ids[1]
    );
    assert_eq!(*lines, expected);

    let ext = &report.extensions[0];
    assert_eq!(ext.name, "recorder");
    assert!(ext.registered);
    assert_eq!(ext.subscribed, ["INVOKE", "SHUTDOWN"]);
    assert_eq!(ext.received, ["INVOKE", "INVOKE", "SHUTDOWN"]);
    // The crate asks for the next event after SHUTDOWN instead of exiting: done, then killed.
    assert_eq!(ext.shutdown, ShutdownStatus::Finished, "{ext:#?}");
    // With an extension registered, the runtime gets SIGTERM rather than SIGKILL.
    let runtime = report.runtime.as_ref().unwrap();
    assert_eq!(runtime.signal, Some(libc::SIGTERM), "{runtime:#?}");
}

#[test]
fn function_finds_a_tool_on_path_from_opt_bin() {
    let layout = Layout::new();
    Layout::install(&layout.task, "bootstrap", &bins().x86_64.join("tiny"));
    let tool = layout.opt.join("bin/lp-tool");
    fs::create_dir_all(tool.parent().unwrap()).unwrap();
    fs::write(&tool, "#!/bin/sh\necho tool-from-layer\n").unwrap();
    fs::set_permissions(&tool, fs::Permissions::from_mode(0o755)).unwrap();
    let mut run = layout.run("tool-user", &[json!({})]);
    run.handler = "tool".into();
    let report = run_function(&run).unwrap();
    assert_success(&report);
    assert_eq!(response_json(&report, 0)["tool"], "tool-from-layer");
}

#[test]
fn private_namespace_shows_var_task_and_the_fallback_does_not() {
    let layout = Layout::new();
    Layout::install(&layout.task, "bootstrap", &bins().x86_64.join("tiny"));
    fs::create_dir_all(layout.opt.join("bin")).unwrap();
    let run = layout.run("where-am-i", &[json!({"k": "v"})]);

    let report = run_function(&run).unwrap();
    assert_success(&report);
    let seen = response_json(&report, 0);
    assert_eq!(seen["event"], json!({"k": "v"}));
    // The environment is there, or verify refuses to run (see verify_cli).
    assert!(report.private_mount_namespace);
    assert_eq!(seen["task_root"], "/var/task");
    assert_eq!(seen["cwd"], "/var/task");
    assert_eq!(seen["var_task_bootstrap"], true);
    assert_eq!(seen["opt_bin"], true);
    assert_eq!(report.runtime.as_ref().unwrap().path, "/var/task/bootstrap");

    let mut fallback = run.clone();
    fallback.namespace = NamespaceMode::Disabled;
    let report = run_function(&fallback).unwrap();
    assert_success(&report);
    assert!(!report.private_mount_namespace);
    assert!(report.namespace_note.is_some());
    let seen = response_json(&report, 0);
    let task_root = layout.task.display().to_string();
    assert_eq!(seen["task_root"], task_root.as_str());
    assert_eq!(seen["cwd"], task_root.as_str());
}

#[test]
fn panic_is_a_runtime_exit_error() {
    let layout = Layout::new();
    Layout::install(&layout.task, "bootstrap", &x86("panicky"));
    let report = run_function(&layout.run("panicky", &[json!({}), json!({})])).unwrap();
    assert_eq!(
        report.error_type.as_deref(),
        Some("Runtime.ExitError"),
        "{report:#?}"
    );
    let message = report.error_message.as_deref().unwrap();
    assert!(
        message.contains("Runtime exited with error: signal: aborted"),
        "{message}"
    );
    assert!(matches!(
        report.invocations[0].outcome,
        InvokeOutcome::RuntimeExited { .. }
    ));
    assert_eq!(report.events_not_run, 1);
    let stderr = &report.runtime.as_ref().unwrap().stderr;
    assert!(stderr.contains("this function always panics"), "{stderr}");
}

#[test]
fn handled_error_is_the_functions_error_not_a_crash() {
    let layout = Layout::new();
    Layout::install(&layout.task, "bootstrap", &x86("failing"));
    let report = run_function(&layout.run("failing", &[json!({}), json!({})])).unwrap();
    assert_eq!(
        report.error_type.as_deref(),
        Some("OrderNotFound"),
        "{report:#?}"
    );
    assert_eq!(
        report.invocations.len(),
        2,
        "the runtime survives a handled error"
    );
    for invoke in &report.invocations {
        match &invoke.outcome {
            InvokeOutcome::FunctionError {
                error_type,
                error_message,
                ..
            } => {
                assert_eq!(error_type, "OrderNotFound");
                assert_eq!(error_message.as_deref(), Some("no order 42"));
            }
            other => panic!("expected a function error, got {other:?}"),
        }
    }
}

#[test]
fn never_answering_function_times_out() {
    let layout = Layout::new();
    Layout::install(&layout.task, "bootstrap", &x86("stuck"));
    let mut run = layout.run("stuck", &[json!({}), json!({})]);
    run.invoke_timeout = Duration::from_secs(1);
    let started = Instant::now();
    let report = run_function(&run).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        report.error_type.as_deref(),
        Some("Sandbox.Timeout"),
        "{report:#?}"
    );
    assert!(matches!(
        report.invocations[0].outcome,
        InvokeOutcome::Timeout { timeout_ms: 1000 }
    ));
    assert!(report.invocations[0].duration_ms >= 1000.0);
    assert_eq!(report.events_not_run, 1);
}

#[test]
fn missing_bootstrap_is_an_invalid_entrypoint() {
    let layout = Layout::new();
    let report = run_function(&layout.run("empty", &[json!({})])).unwrap();
    assert_eq!(
        report.error_type.as_deref(),
        Some("Runtime.InvalidEntrypoint")
    );
    assert_eq!(
        report.error_message.as_deref(),
        Some("Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]")
    );
    assert!(report.invocations.is_empty());
    assert_eq!(report.events_not_run, 1);
}

#[test]
fn bootstrap_from_a_zip_without_exec_bit_is_an_invalid_entrypoint() {
    let layout = Layout::new();
    let zip = layout.dir.path().join("function.zip");
    let echo = fs::read(x86("echo")).unwrap();
    write_zip(&zip, |w| {
        let options = SimpleFileOptions::default().unix_permissions(0o644);
        w.start_file("bootstrap", options).unwrap();
        w.write_all(&echo).unwrap();
    });
    extract_zip(&zip, &layout.task).unwrap();
    let report = run_function(&layout.run("no-exec", &[json!({})])).unwrap();
    assert_eq!(
        report.error_type.as_deref(),
        Some("Runtime.InvalidEntrypoint")
    );
    let message = report.error_message.unwrap();
    assert!(
        message.ends_with("bootstrap: permission denied"),
        "{message}"
    );
}

#[test]
fn bootstrap_that_is_not_a_program_is_an_exec_format_error() {
    let layout = Layout::new();
    let bootstrap = layout.task.join("bootstrap");
    fs::write(&bootstrap, [0u8, 1, 2, 3, 4, 5, 6, 7]).unwrap();
    fs::set_permissions(&bootstrap, fs::Permissions::from_mode(0o755)).unwrap();
    let report = run_function(&layout.run("garbage", &[json!({})])).unwrap();
    assert_eq!(
        report.error_type.as_deref(),
        Some("Runtime.InvalidEntrypoint")
    );
    let message = report.error_message.unwrap();
    assert!(
        message.ends_with("bootstrap: exec format error"),
        "{message}"
    );
}

#[test]
fn arm64_function_runs_under_qemu() {
    let layout = Layout::new();
    Layout::install(&layout.task, "bootstrap", &bins().aarch64.join("tiny"));
    let mut run = layout.run("arm-fn", &[json!({"on": "arm64"})]);
    run.arch = Arch::Arm64;
    let report = match run_function(&run) {
        Err(error @ VerifyError::EmulatorMissing { .. }) => {
            panic!("{error} (this test needs it)")
        }
        other => other.unwrap(),
    };
    assert_success(&report);
    assert!(
        report
            .emulator
            .as_deref()
            .unwrap()
            .ends_with("qemu-aarch64-static")
    );
    let seen = response_json(&report, 0);
    assert_eq!(seen["arch"], "aarch64");
    assert_eq!(seen["event"], json!({"on": "arm64"}));
}

fn write_zip(path: &Path, fill: impl FnOnce(&mut zip::ZipWriter<fs::File>)) {
    let mut writer = zip::ZipWriter::new(fs::File::create(path).unwrap());
    fill(&mut writer);
    writer.finish().unwrap();
}

/// Extracts a crafted ZIP, expecting a refusal that wrote nothing.
fn refused(fill: impl FnOnce(&mut zip::ZipWriter<fs::File>)) -> VerifyError {
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("bad.zip");
    write_zip(&zip, fill);
    let dest = dir.path().join("out");
    let error = extract_zip(&zip, &dest).unwrap_err();
    assert!(
        !dest.exists(),
        "nothing may be written before every entry is checked"
    );
    assert!(!dir.path().join("escape.txt").exists());
    error
}

#[test]
fn zip_with_parent_dir_entry_is_refused_before_writing() {
    let options = SimpleFileOptions::default();
    let error = refused(|w| {
        w.start_file("bootstrap", options).unwrap();
        w.write_all(b"fine").unwrap();
        w.start_file("../escape.txt", options).unwrap();
        w.write_all(b"evil").unwrap();
    });
    let text = error.to_string();
    assert!(matches!(error, VerifyError::UnsafeEntry { .. }), "{text}");
    assert!(
        text.contains("`../escape.txt`") && text.contains(".."),
        "{text}"
    );
}

#[test]
fn zip_with_absolute_entry_is_refused() {
    let error = refused(|w| {
        w.start_file("/etc/lambda-verify-test", SimpleFileOptions::default())
            .unwrap();
        w.write_all(b"evil").unwrap();
    });
    assert!(error.to_string().contains("absolute path"), "{error}");
}

#[test]
fn zip_with_symlink_pointing_out_is_refused() {
    let error = refused(|w| {
        let options = SimpleFileOptions::default();
        w.add_symlink("lib/libssl.so", "../../../etc/passwd", options)
            .unwrap();
    });
    let text = error.to_string();
    assert!(
        text.contains("`lib/libssl.so`") && text.contains("outside"),
        "{text}"
    );
}

#[test]
fn zip_keeps_exec_bits_and_inside_symlinks() {
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("layer.zip");
    write_zip(&zip, |w| {
        let exec = SimpleFileOptions::default().unix_permissions(0o755);
        w.start_file("bin/tool", exec).unwrap();
        w.write_all(b"#!/bin/sh\necho hi\n").unwrap();
        let plain = SimpleFileOptions::default().unix_permissions(0o644);
        w.start_file("lib/libx.so.1", plain).unwrap();
        w.write_all(b"not really a library").unwrap();
        w.add_symlink("lib/libx.so", "libx.so.1", plain).unwrap();
    });
    let dest = dir.path().join("opt");
    let stats = extract_zip(&zip, &dest).unwrap();
    assert_eq!((stats.files, stats.symlinks), (2, 1));
    let mode = |p: &str| fs::metadata(dest.join(p)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("bin/tool"), 0o755);
    assert_eq!(mode("lib/libx.so.1"), 0o644);
    assert_eq!(
        fs::read_link(dest.join("lib/libx.so")).unwrap(),
        Path::new("libx.so.1")
    );
    assert_eq!(
        fs::read_to_string(dest.join("lib/libx.so")).unwrap(),
        "not really a library"
    );
}

fn script(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn extension_that_never_registers_times_out_init() {
    let layout = Layout::new();
    Layout::install(&layout.task, "bootstrap", &x86("echo"));
    script(
        &layout.opt.join("extensions/sleepy"),
        "#!/bin/sh\nexec sleep 60\n",
    );
    let mut run = layout.run("sleepy-ext", &[json!({})]);
    run.init_timeout = Duration::from_secs(1);
    let started = Instant::now();
    let report = run_function(&run).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        report.error_type.as_deref(),
        Some("Sandbox.Timeout"),
        "{report:#?}"
    );
    assert!(
        report.runtime.is_none(),
        "the runtime starts only after extensions registered"
    );
    let ext = &report.extensions[0];
    assert!(!ext.registered);
    assert_eq!(ext.shutdown, ShutdownStatus::Killed);
    assert_eq!(ext.process.signal, Some(libc::SIGKILL));
}

#[test]
fn extension_exiting_during_init_is_an_extension_crash() {
    let layout = Layout::new();
    Layout::install(&layout.task, "bootstrap", &x86("echo"));
    script(
        &layout.opt.join("extensions/crashy"),
        "#!/bin/sh\necho cannot start >&2\nexit 3\n",
    );
    let report = run_function(&layout.run("crashy-ext", &[json!({})])).unwrap();
    assert_eq!(
        report.error_type.as_deref(),
        Some("Extension.Crash"),
        "{report:#?}"
    );
    assert_eq!(
        report.error_message.as_deref(),
        Some("extension crashy exited: exit status 3")
    );
    let ext = &report.extensions[0];
    assert_eq!(ext.shutdown, ShutdownStatus::ExitedEarly);
    assert_eq!(ext.process.stderr, "cannot start\n");
    assert!(report.invocations.is_empty());
}

#[test]
fn two_runs_at_once_do_not_clash() {
    let runs: Vec<_> = (0..2)
        .map(|i| {
            std::thread::spawn(move || {
                let layout = Layout::new();
                Layout::install(&layout.task, "bootstrap", &x86("echo"));
                let report = run_function(&layout.run("twin", &[json!({ "twin": i })])).unwrap();
                assert_success(&report);
                response_json(&report, 0)["echo"]["twin"].as_i64().unwrap()
            })
        })
        .collect();
    let seen: Vec<i64> = runs.into_iter().map(|r| r.join().unwrap()).collect();
    assert_eq!(seen, [0, 1]);
}

#[test]
fn zip_bomb_is_refused() {
    let error = refused(|w| {
        let options =
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        w.start_file("zeros.bin", options).unwrap();
        w.write_all(&vec![0u8; 16 * 1024 * 1024]).unwrap();
    });
    assert!(
        matches!(error, VerifyError::CompressionRatio { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("`zeros.bin`"), "{error}");
}

#[test]
fn a_runtime_flooding_the_api_is_contained_and_killed() {
    let layout = Layout::new();
    Layout::install(&layout.task, "bootstrap", &x86("tiny"));
    let mut run = layout.run("flood", &[json!({})]);
    run.handler = "flood".into();
    run.invoke_timeout = Duration::from_secs(3);
    let started = Instant::now();
    let report = run_function(&run).unwrap();
    // A guard against a hang, not a speed goal: the deadline plus the shutdown budget.
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(
            report.error_type.as_deref(),
            Some("Sandbox.Timeout" | "Function.ResponseSizeTooLarge")
        ),
        "{report:#?}"
    );
    assert!(
        report.api_requests > 1000,
        "the flood reached the API: {} requests",
        report.api_requests
    );
    assert!(report.runtime.is_some(), "{report:#?}");
}
