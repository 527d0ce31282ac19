//! `cargo lambda-pack verify` end to end: `fixtures/verify-functions` is packed by the real binary
//! (musl linked by rust-lld, `--compiler cargo`), then the packed functions, layers and extensions
//! are run through the command line and judged by exit code and output.
//!
//! Needs the musl targets (`rustup target add x86_64-unknown-linux-musl
//! aarch64-unknown-linux-musl`) and, for the arm64 function, `qemu-user-static`.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tempfile::TempDir;
use zip::write::SimpleFileOptions;

/// The fixture, packed once per test binary.
struct Packed {
    workspace: PathBuf,
    out: PathBuf,
}

fn packed() -> &'static Packed {
    static PACKED: OnceLock<Packed> = OnceLock::new();
    PACKED.get_or_init(|| {
        let workspace = verify_functions_workspace();
        let target_dir = verify_functions_target_dir();
        let out = target_dir.join("lambda-pack");
        // `verify --build` with no --out-dir: packs every crate into <target-dir>/lambda-pack,
        // then finds the manifest there. The dev profile aborts on panic (see the fixture).
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
            .arg("quote")
            .current_dir(&workspace)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_BUILD_TARGET");
        let run = run(command);
        assert_eq!(
            run.code(),
            0,
            "packing fixtures/verify-functions failed (are the musl targets installed? `rustup \
             target add x86_64-unknown-linux-musl aarch64-unknown-linux-musl`)\n{}",
            run.stderr
        );
        assert!(
            run.stderr.contains("Packed function quote")
                || run.stderr.contains("Fresh function quote"),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr
                .contains("Finished 1 function(s): 1 passed, 0 failed"),
            "{}",
            run.stderr
        );
        assert!(out.join("manifest.json").is_file());
        Packed { workspace, out }
    })
}

/// `cargo lambda-pack verify --out-dir <out> <args>` in the packed workspace.
fn verify_in(out: &Path, args: &[&str]) -> Run {
    verify_with(&packed().workspace, out, args)
}

fn verify(args: &[&str]) -> Run {
    verify_in(&packed().out, args)
}

/// The single JSON document `--message-format json` prints; panics if stdout holds anything else.
fn json_document(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|err| {
        panic!(
            "stdout is not one JSON document ({err})\n--- stdout\n{}\n--- stderr\n{}",
            run.stdout, run.stderr
        )
    })
}

fn function<'a>(document: &'a Value, name: &str) -> &'a Value {
    document["functions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no function {name} in {document:#}"))
}

/// A temporary folder holding `files` (name, contents); returns it and the path of each file.
fn files(files: &[(&str, &str)]) -> (TempDir, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let paths = files
        .iter()
        .map(|(name, contents)| {
            let path = dir.path().join(name);
            fs::write(&path, contents).unwrap();
            path.display().to_string()
        })
        .collect();
    (dir, paths)
}

/// A private copy of the packed output, for tests that tamper with artifacts.
fn out_copy() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&packed().out, dir.path());
    dir
}

/// The path of `name`'s (x86_64) ZIP inside an output folder.
fn zip_path(out: &Path, name: &str) -> PathBuf {
    let manifest = manifest(out);
    out.join(artifact(&manifest, name)["path"].as_str().unwrap())
}

/// Rewrites a ZIP entry by entry: `mode` may change each entry's mode, `extra` entries are added.
fn rewrite_zip(path: &Path, mode: impl Fn(&str, u32) -> u32, extra: &[(&str, &[u8])]) {
    let mut entries = Vec::new();
    {
        let mut archive = zip::ZipArchive::new(fs::File::open(path).unwrap()).unwrap();
        for index in 0..archive.len() {
            let mut entry = archive.by_index(index).unwrap();
            let name = entry.name().unwrap().into_owned();
            let entry_mode = entry.unix_mode().unwrap_or(0o644) & 0o7777;
            let is_dir = entry.is_dir();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            entries.push((name, entry_mode, is_dir, data));
        }
    }
    let mut writer = zip::ZipWriter::new(fs::File::create(path).unwrap());
    for (name, entry_mode, is_dir, data) in entries {
        let options = SimpleFileOptions::default().unix_permissions(mode(&name, entry_mode));
        if is_dir {
            writer.add_directory(name.as_str(), options).unwrap();
        } else {
            writer.start_file(name.as_str(), options).unwrap();
            writer.write_all(&data).unwrap();
        }
    }
    for (name, data) in extra {
        writer
            .start_file(*name, SimpleFileOptions::default())
            .unwrap();
        writer.write_all(data).unwrap();
    }
    writer.finish().unwrap();
}

/// Records the file's new SHA-256 in the manifest, as if it had been packed that way.
fn update_sha256(out: &Path, name: &str) {
    let mut manifest = manifest(out);
    let artifact = manifest["artifacts"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|a| a["name"] == name)
        .unwrap();
    let bytes = fs::read(out.join(artifact["path"].as_str().unwrap())).unwrap();
    let hex: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    artifact["sha256"] = Value::String(hex);
    fs::write(
        out.join("manifest.json"),
        serde_json::to_string_pretty(&manifest).unwrap(),
    )
    .unwrap();
}

const ORDER: &str = r#"{"id": "A-1", "items": [{"sku": "pen", "qty": 3, "price_cents": 250},
                        {"sku": "pad", "qty": 1, "price_cents": 400}]}"#;

#[test]
fn json_function_answers_and_expect_passes_or_fails() {
    let (_dir, paths) = files(&[
        ("order.json", ORDER),
        // Same JSON as the answer, written differently: compared as JSON, not as text.
        (
            "quote.json",
            "{\n  \"total_cents\": 1150,\n  \"items\": 2,\n  \"order\": \"A-1\"\n}\n",
        ),
        (
            "wrong.json",
            r#"{"order": "A-1", "items": 2, "total_cents": 999}"#,
        ),
    ]);
    let (order, quote, wrong) = (&paths[0], &paths[1], &paths[2]);

    let run = verify(&[
        "quote",
        "--event",
        order,
        "--expect",
        quote,
        "--invokes",
        "2",
    ]);
    run.assert_code(0);
    assert!(
        run.stderr.contains("Verifying quote (x86_64)"),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.stderr.matches(r#"response {"items":2"#).count(),
        2,
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("expect: every response equals"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("Finished 1 function(s): 1 passed, 0 failed"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "{}", run.stdout);

    let run = verify(&["quote", "--event", order, "--expect", wrong]);
    run.assert_code(10);
    for shown in [
        "does not match",
        "differs at $.total_cents",
        r#"expected: {"items":2,"order":"A-1","total_cents":999}"#,
        r#"actual:   {"items":2,"order":"A-1","total_cents":1150}"#,
        "Finished 1 function(s): 0 passed, 1 failed",
        "error: 1 of 1 function(s) failed verification",
        "help:",
    ] {
        assert!(
            run.stderr.contains(shown),
            "{shown:?} missing:\n{}",
            run.stderr
        );
    }

    let run = verify(&[
        "quote",
        "--event",
        order,
        "--expect",
        wrong,
        "--message-format",
        "json",
    ]);
    run.assert_code(10);
    let document = json_document(&run);
    let expect = &function(&document, "quote")["expect"];
    assert_eq!(expect["matched"], false);
    assert_eq!(expect["mismatches"][0]["path"], "$.total_cents");
    assert_eq!(expect["mismatches"][0]["actual"]["total_cents"], 1150);
    assert_eq!(function(&document, "quote")["passed"], false);
    assert_eq!(document["failed"], 1);
}

#[test]
fn http_function_answers_an_api_gateway_v2_event() {
    let event = api_gateway_v2_event();
    let (_dir, paths) = files(&[("apigw.json", &event.to_string())]);
    let run = verify(&["http-fn", "--event", &paths[0], "--message-format", "json"]);
    run.assert_code(0);
    let document = json_document(&run);
    let outcome = &function(&document, "http-fn")["report"]["invocations"][0]["outcome"];
    assert_eq!(outcome["kind"], "response");
    let preview = outcome["preview"].as_str().unwrap();
    assert!(outcome["len"].as_u64().unwrap() < 200, "{outcome}");
    let answer: Value = serde_json::from_str(preview).unwrap();
    assert_eq!(answer["statusCode"], 200, "{answer}");
    assert_eq!(answer["body"], "hello /pets", "{answer}");
    assert_eq!(answer["headers"]["content-type"], "text/plain", "{answer}");

    // The same function with the default event `{}`: lambda_http refuses it, the invoke fails.
    let run = verify(&["http-fn"]);
    run.assert_code(10);
    assert!(run.stderr.contains("DeserializeError"), "{}", run.stderr);
}

#[test]
fn extension_layer_registers_and_receives_invoke_then_shutdown() {
    // The extension prints `INVOKE <request id>` for each event on its stdout (and writes it to
    // the environment's own /tmp, which the host never sees).
    let run = verify(&["tool-user", "--invokes", "2", "--message-format", "json"]);
    run.assert_code(0);
    let document = json_document(&run);
    let result = function(&document, "tool-user");
    assert_eq!(result["passed"], true);
    let report = &result["report"];
    assert_eq!(report["error_type"], Value::Null);
    let extensions = report["extensions"].as_array().unwrap();
    assert_eq!(extensions.len(), 1, "{report:#}");
    let recorder = &extensions[0];
    assert_eq!(recorder["name"], "recorder");
    assert_eq!(recorder["registered"], true);
    assert_eq!(recorder["subscribed"], json!(["INVOKE", "SHUTDOWN"]));
    assert_eq!(
        recorder["received"],
        json!(["INVOKE", "INVOKE", "SHUTDOWN"])
    );
    assert_eq!(recorder["shutdown"], "finished", "{recorder:#}");
    // With an extension registered, Lambda stops the runtime with SIGTERM.
    assert_eq!(report["runtime"]["signal"], libc::SIGTERM, "{report:#}");

    // The extension itself saw both invokes.
    let recorded = recorder["process"]["stdout"].as_str().unwrap();
    for invoke in report["invocations"].as_array().unwrap() {
        let line = format!("INVOKE {}", invoke["request_id"].as_str().unwrap());
        assert!(recorded.lines().any(|l| l == line), "{line} not recorded");
    }

    // People get the same facts on stderr.
    let run = verify(&["tool-user"]);
    run.assert_code(0);
    assert!(
        run.stderr
            .contains("Verifying tool-user (x86_64, 2 layers)"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(
            "extension recorder: registered for [INVOKE, SHUTDOWN], received [INVOKE, SHUTDOWN], finished shutdown"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn function_finds_a_tool_from_a_shared_code_layer_on_path() {
    let (_dir, paths) = files(&[("tool.json", r#"{"tool": "tool-from-layer"}"#)]);
    let run = verify(&["tool-user", "--expect", &paths[0]]);
    run.assert_code(0);
    assert!(
        run.stderr
            .contains(r#"response {"tool":"tool-from-layer"}"#),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("expect: every response equals"),
        "{}",
        run.stderr
    );
    let manifest = manifest(&packed().out);
    assert_eq!(
        artifact(&manifest, "tool-user")["layers"],
        json!(["tools-layer", "recorder"])
    );
}

#[test]
fn panicking_function_is_a_runtime_exit_error() {
    let run = verify(&["panicky", "--invokes", "2"]);
    run.assert_code(10);
    for shown in [
        "Runtime.ExitError",
        "signal: aborted",
        "1 invoke(s) not run",
        "this function always panics",
        "0 passed, 1 failed",
    ] {
        assert!(
            run.stderr.contains(shown),
            "{shown:?} missing:\n{}",
            run.stderr
        );
    }
}

#[test]
fn never_answering_function_times_out() {
    let started = Instant::now();
    let run = verify(&["stuck", "--timeout", "1", "--message-format", "json"]);
    run.assert_code(10);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let document = json_document(&run);
    let report = &function(&document, "stuck")["report"];
    assert_eq!(report["error_type"], "Sandbox.Timeout");
    assert_eq!(report["invocations"][0]["outcome"]["kind"], "timeout");
    assert_eq!(report["invocations"][0]["outcome"]["timeout_ms"], 1000);
    assert!(run.stderr.contains("Sandbox.Timeout"), "{}", run.stderr);
}

#[test]
fn bootstrap_without_exec_bit_is_an_invalid_entrypoint() {
    let out = out_copy();
    let zip = zip_path(out.path(), "echo");
    rewrite_zip(
        &zip,
        |name, mode| if name == "bootstrap" { 0o644 } else { mode },
        &[],
    );
    update_sha256(out.path(), "echo");
    let run = verify_in(out.path(), &["echo"]);
    run.assert_code(10);
    assert!(
        run.stderr.contains("Runtime.InvalidEntrypoint"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("bootstrap: permission denied"),
        "{}",
        run.stderr
    );
}

#[test]
fn artifact_changed_since_packing_is_refused() {
    let out = out_copy();
    let zip = zip_path(out.path(), "echo");
    rewrite_zip(&zip, |_, mode| mode, &[("extra.txt", b"added later")]);
    let run = verify_in(out.path(), &["echo"]);
    run.assert_code(3);
    assert!(
        run.stderr.contains("changed since it was packed"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("echo.zip"), "{}", run.stderr);
    assert!(
        run.stderr.contains("help: re-run the pack"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("Verifying"),
        "nothing ran:\n{}",
        run.stderr
    );
}

#[test]
fn zip_with_a_parent_dir_entry_is_refused() {
    let out = out_copy();
    let zip = zip_path(out.path(), "echo");
    rewrite_zip(&zip, |_, mode| mode, &[("../escape.txt", b"evil")]);
    update_sha256(out.path(), "echo");
    let run = verify_in(out.path(), &["echo", "quote"]);
    run.assert_code(10);
    assert!(run.stderr.contains("`../escape.txt`"), "{}", run.stderr);
    assert!(run.stderr.contains("refusing to extract"), "{}", run.stderr);
    // The other function still ran and passed.
    assert!(
        run.stderr.contains("2 function(s): 1 passed, 1 failed"),
        "{}",
        run.stderr
    );
}

#[test]
fn arm64_function_runs_under_qemu() {
    let (_dir, paths) = files(&[("event.json", r#"{"on": "arm64"}"#)]);
    let run = verify(&["tiny", "--event", &paths[0], "--message-format", "json"]);
    run.assert_code(0);
    assert!(
        run.stderr.contains("Verifying tiny (arm64, qemu)"),
        "{}",
        run.stderr
    );
    let document = json_document(&run);
    let result = function(&document, "tiny");
    assert_eq!(result["arch"], "arm64");
    let report = &result["report"];
    assert!(
        report["emulator"]
            .as_str()
            .is_some_and(|e| e.ends_with("qemu-aarch64-static")),
        "{report:#}"
    );
    let preview = report["invocations"][0]["outcome"]["preview"]
        .as_str()
        .unwrap();
    let seen: Value = serde_json::from_str(preview).unwrap();
    assert_eq!(seen["arch"], "aarch64");
    assert_eq!(seen["event"], json!({"on": "arm64"}));
}

#[test]
fn every_function_runs_by_default_and_json_is_the_only_stdout() {
    let run = verify(&["--timeout", "1", "--message-format", "json"]);
    run.assert_code(10);
    let document = json_document(&run);
    let mut names: Vec<&str> = document["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "echo",
            "failing",
            "graceful",
            "hello-script",
            "http-fn",
            "inproc",
            "managed",
            "observed",
            "panicky",
            "probe",
            "quote",
            "streamer",
            "stuck",
            "tables",
            "tiny",
            "tool-user"
        ]
    );
    let failed: Vec<&str> = document["functions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["passed"] == false)
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    // `{}` is no API Gateway event, `failing` returns an error; the others crash or hang.
    assert_eq!(failed.len(), 4, "{failed:?}");
    for name in ["failing", "http-fn", "panicky", "stuck"] {
        assert!(failed.contains(&name), "{failed:?}");
    }
    assert_eq!(document["passed"], 12);
    assert_eq!(document["failed"], 4);
    assert_eq!(
        function(&document, "failing")["report"]["error_type"],
        "OrderNotFound"
    );
    // Layers and extensions are not functions: they run attached, or (a standalone extension)
    // when named.
    assert!(
        document["functions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["name"] != "recorder"
                && f["name"] != "tools-layer"
                && f["name"] != "audit"
                && f["name"] != "script-runtime"
                && f["name"] != "telemetry"
                && f["name"] != "logs")
    );
    assert!(
        run.stderr
            .contains("Finished 16 function(s): 12 passed, 4 failed"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("error: 4 of 16 function(s) failed verification"),
        "{}",
        run.stderr
    );
}

/// lambda_runtime and lambda-extension in one crate: a function with an internal extension,
/// packed as `bootstrap` (it used to become an extension layer, `extensions/inproc`).
#[test]
fn a_crate_with_a_runtime_and_lambda_extension_is_a_function() {
    let out = &packed().out;
    let manifest = manifest(out);
    let entry = artifact(&manifest, "inproc");
    assert_eq!(entry["kind"], "function", "{entry:#}");
    assert_eq!(entry["path"], "x86_64/inproc.zip");
    let listing = zipinfo(&out.join("x86_64/inproc.zip"));
    assert!(listing.contains(" bootstrap"), "{listing}");
    assert!(!listing.contains("extensions/"), "{listing}");
    let mut command = lambda_pack();
    command
        .args([
            "plan",
            "-p",
            "inproc-fn",
            "--compiler",
            "cargo",
            "--profile",
            "dev",
        ])
        .args(["--locked", "--target-dir"])
        .arg(verify_functions_target_dir())
        .current_dir(&packed().workspace);
    let plan = run(command);
    plan.assert_code(0);
    assert!(
        plan.stderr.contains(
            "function: a binary that depends on lambda_runtime and lambda-extension (an internal extension, run in the function's process)"
        ),
        "{}",
        plan.stderr
    );
    // It serves its events like any function.
    let run = verify(&["inproc", "--message-format", "json"]);
    run.assert_code(0);
    let document = json_document(&run);
    assert_eq!(
        function(&document, "inproc")["passed"],
        true,
        "{document:#}"
    );
}

#[test]
fn manifest_in_the_default_out_dir_is_found_through_the_workspace() {
    let mut command = lambda_pack();
    command
        .args(["verify", "quote", "--target-dir"])
        .arg(verify_functions_target_dir())
        .current_dir(&packed().workspace);
    let run = run(command);
    run.assert_code(0);
    assert!(run.stderr.contains("1 passed, 0 failed"), "{}", run.stderr);
}

#[test]
fn bad_input_is_a_configuration_error() {
    // An unknown function: named, with the functions there are.
    let run = verify(&["quote", "nope", "qoute"]);
    run.assert_code(3);
    assert!(
        run.stderr.contains("no function `nope`, `qoute`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("did you mean `quote`?"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(
            "functions in the manifest: echo, failing, graceful, hello-script, http-fn, inproc, managed, observed, panicky, probe, quote, streamer, stuck, tables, tiny, tool-user"
        ),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("Verifying"),
        "nothing ran:\n{}",
        run.stderr
    );

    // A layer is not a function.
    let run = verify(&["tools-layer"]);
    run.assert_code(3);
    assert!(run.stderr.contains("not a function"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("verify a function that attaches it: tool-user"),
        "{}",
        run.stderr
    );

    // A missing event file, and one that is not JSON.
    let (dir, paths) = files(&[("broken.json", "{\"id\": ")]);
    let missing = dir.path().join("missing.json").display().to_string();
    let run = verify(&["quote", "--event", &missing]);
    run.assert_code(3);
    assert!(run.stderr.contains("missing.json"), "{}", run.stderr);
    let run = verify(&["quote", "--event", &paths[0]]);
    run.assert_code(3);
    assert!(
        run.stderr.contains("broken.json") && run.stderr.contains("not valid JSON"),
        "{}",
        run.stderr
    );
    let run = verify(&["quote", "--expect", &paths[0]]);
    run.assert_code(3);
    assert!(run.stderr.contains("--expect"), "{}", run.stderr);

    // No manifest: say how to get one.
    let empty = tempfile::tempdir().unwrap();
    let run = verify_in(empty.path(), &[]);
    run.assert_code(3);
    assert!(run.stderr.contains("no manifest at"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("run `cargo lambda-pack` first, or pass --build"),
        "{}",
        run.stderr
    );
}

#[test]
fn verify_waits_while_a_pack_holds_the_output_lock() {
    let out = out_copy();
    let mut command = lambda_pack();
    command
        .args(["verify", "quote", "--color", "never", "--out-dir"])
        .arg(out.path())
        .current_dir(&packed().workspace);
    let (line, rest) = run_while_locked(out.path(), command, "verify ran without waiting");
    assert!(line.contains("waiting for a pack to finish"), "{line}");
    assert!(rest.contains("Passed quote"), "{rest}");
}

#[test]
fn arch_narrows_verify_as_it_narrows_deploy() {
    // Before: `--arch arm64` was accepted and every architecture ran, x86_64 first.
    let run = verify(&["--arch", "arm64", "--message-format", "json"]);
    run.assert_code(0);
    let document = json_document(&run);
    let functions = document["functions"].as_array().unwrap();
    assert!(!functions.is_empty());
    for function in functions {
        assert_eq!(function["arch"], "arm64", "{function}");
    }
    assert!(functions.iter().any(|f| f["name"] == "tiny"));

    let run = verify(&["--arch", "arm64", "echo"]);
    run.assert_code(3);
    assert!(
        run.stderr
            .contains("nothing to verify for --arch arm64: the selected artifacts are built for other architectures: echo (x86_64)"),
        "{}",
        run.stderr
    );
}

/// Host pids whose `/proc/<pid>/ns/pid` is `namespace`, with their start times.
fn processes_in(namespace: &Path) -> Vec<(u32, String)> {
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| fs::read_link(format!("/proc/{pid}/ns/pid")).is_ok_and(|l| l == namespace))
        .filter_map(|pid| Some((pid, start_time(pid)?)))
        .collect()
}

/// Field 22 of `/proc/<pid>/stat`: with the pid, names one process for good.
fn start_time(pid: u32) -> Option<String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    after_name.split_whitespace().nth(19).map(String::from)
}

#[test]
fn sigterm_mid_invoke_leaves_no_process_and_no_temporary_folder() {
    interrupt_mid_invoke(&[libc::SIGTERM], 3);
}

#[test]
fn a_second_signal_ends_verify_at_once_and_still_leaves_no_process() {
    interrupt_mid_invoke(&[libc::SIGHUP, libc::SIGINT], 4);
}

/// Runs the probe with a `setsid` child and a long pause, sends `signals` to verify mid-invoke
/// and checks that no process of the run is left; after one signal, no temporary folder either.
fn interrupt_mid_invoke(signals: &[i32], tag: u32) {
    let tmp = tempfile::tempdir().unwrap();
    let seconds = format!("{}.{tag}", 7200 + std::process::id() % 1000);
    let event = tmp.path().join("event.json");
    let body = json!({ "setsid": ["sleep", seconds], "sleep_ms": 60_000 });
    fs::write(&event, body.to_string()).unwrap();
    let scratch = tmp.path().join("scratch");
    fs::create_dir(&scratch).unwrap();
    let mut command = lambda_pack();
    command
        .arg("verify")
        .arg("--out-dir")
        .arg(&packed().out)
        .args(["probe", "--timeout", "120", "--event"])
        .arg(&event)
        .current_dir(&packed().workspace)
        .env("TMPDIR", &scratch)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut verify = command.spawn().unwrap();
    // The run's processes: everything in the pid namespace of the `setsid` child, found by its
    // command line.
    let wanted = format!("sleep\0{seconds}\0");
    let deadline = Instant::now() + Duration::from_secs(60);
    let namespace = loop {
        let found = fs::read_dir("/proc").unwrap().flatten().find_map(|e| {
            let pid = e.file_name().to_str()?.parse::<u32>().ok()?;
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            (cmdline == wanted.as_bytes())
                .then(|| fs::read_link(format!("/proc/{pid}/ns/pid")).ok())?
        });
        if let Some(namespace) = found {
            break namespace;
        }
        assert!(
            Instant::now() < deadline,
            "the probe never started its setsid child"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let running = processes_in(&namespace);
    // The init, the runtime and the setsid child at least.
    assert!(running.len() >= 3, "{running:?}");
    let temporary: Vec<PathBuf> = fs::read_dir(&scratch)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(
        !temporary.is_empty(),
        "verify made no temporary folder in TMPDIR"
    );

    for signal in signals {
        // SAFETY: kill has no memory preconditions; the pid is our own child.
        unsafe { libc::kill(verify.id() as i32, *signal) };
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = verify.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "verify did not end after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    use std::os::unix::process::ExitStatusExt;
    // It dies of the first (its clean-up done) or of the second (at once).
    assert!(
        status.signal().is_some_and(|s| signals.contains(&s)),
        "{status:?}"
    );
    // Killed processes are gone once reaped; give the kernel a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left: Vec<&(u32, String)> = running
            .iter()
            .filter(|(pid, started)| start_time(*pid).as_ref() == Some(started))
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still running after verify ended: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    if signals.len() == 1 {
        for path in &temporary {
            assert!(!path.exists(), "{} is left behind", path.display());
        }
        assert_eq!(fs::read_dir(&scratch).unwrap().count(), 0);
    }
}

#[test]
fn the_functions_memory_and_ephemeral_storage_hold_and_flags_override_them() {
    let dir = tempfile::tempdir().unwrap();
    let event = dir.path().join("event.json");
    fs::write(
        &event,
        json!({ "fill_tmp_mb": 600, "alloc_mb": 300 }).to_string(),
    )
    .unwrap();
    let event = event.display().to_string();
    // The metadata's `memory = 512` and `ephemeral_storage = 1024`: both fit.
    let run = verify(&["probe", "--event", &event, "--message-format", "json"]);
    run.assert_code(0);
    let document = json_document(&run);
    let report = &function(&document, "probe")["report"];
    assert_eq!(report["sandbox"]["memory_mb"], 512, "{report:#}");
    assert_eq!(report["sandbox"]["tmp_mb"], 1024, "{report:#}");
    assert_eq!(report["sandbox"]["uid"], 993);
    assert_eq!(report["sandbox"]["pid_namespace"], true);
    assert_eq!(report["sandbox"]["network_namespace"], true);
    assert_eq!(report["sandbox"]["process_cap"], 1024);
    assert_eq!(report["invocations"][0]["response"]["fill_tmp"], "ok");

    // The manifest records both, so a copy of the artifacts verified far from any workspace (a
    // CI artifact) is held to them too.
    let recorded = manifest(&packed().out);
    assert_eq!(artifact(&recorded, "probe")["memory"], 512);
    assert_eq!(artifact(&recorded, "probe")["ephemeral_storage"], 1024);
    let elsewhere = tempfile::tempdir().unwrap();
    let copy = elsewhere.path().join("artifacts");
    copy_tree(&packed().out, &copy);
    let mut command = lambda_pack();
    command
        .args(["verify", "--out-dir"])
        .arg(&copy)
        .args(["probe", "--event", &event, "--message-format", "json"])
        .current_dir(elsewhere.path());
    let far = common::run(command);
    far.assert_code(0);
    let far_document = json_document(&far);
    let report = &function(&far_document, "probe")["report"];
    assert_eq!(report["sandbox"]["memory_mb"], 512, "{report:#}");
    assert_eq!(report["sandbox"]["tmp_mb"], 1024, "{report:#}");

    // Lambda's defaults through the flags: /tmp full, then the memory exceeded.
    let run = verify(&[
        "probe",
        "--event",
        &event,
        "--memory",
        "128",
        "--ephemeral-storage",
        "512",
    ]);
    run.assert_code(10);
    for wanted in [
        "sandbox: read-only root, uid 993 gid 990 (sbx_user1051), /tmp 512 MB, memory 128 MB \
         (watched), pid namespace, own network, 1024 processes (function at /var/task, layers at /opt)",
        "not applied: memory by the kernel (cgroup memory.max)",
        "Runtime.OutOfMemory: the runtime exited (signal: killed)",
        "Error: Runtime exited with error: signal: killed",
    ] {
        assert!(run.stderr.contains(wanted), "{wanted}\n{}", run.stderr);
    }
    let run = verify(&["probe", "--memory", "64"]);
    run.assert_code(2);
    assert!(run.stderr.contains("--memory"), "{}", run.stderr);
}

#[test]
fn no_sandbox_says_what_it_gives_up() {
    let run = verify(&["echo", "--no-sandbox", "--message-format", "json"]);
    run.assert_code(0);
    let document = json_document(&run);
    let sandbox = &function(&document, "echo")["report"]["sandbox"];
    assert_eq!(sandbox["sandboxed"], false, "{sandbox}");
    assert_eq!(sandbox["memory_enforcement"], "none");
    assert_eq!(sandbox["uid"], Value::Null);
    let run = verify(&["echo", "--no-sandbox"]);
    run.assert_code(0);
    assert!(
        run.stderr.contains(
            "sandbox: none (--no-sandbox): the processes ran as verify's own user with the host's \
             whole file system writable"
        ),
        "{}",
        run.stderr
    );
    let help = verify(&["--help"]);
    assert!(
        help.stdout.contains("--no-sandbox") && help.stdout.contains("host's file system writable"),
        "{}",
        help.stdout
    );
}

/// `cargo lambda-pack verify <args>` run by `sh -c script` (which ends `exec "$@"`) in a user
/// namespace of its own, root there: the script may lower the namespace's limits.
fn verify_in_user_namespace(script: &str, args: &[&str]) -> Run {
    let mut command = std::process::Command::new("unshare");
    command
        .args(["--user", "--map-root-user", "sh", "-c", script, "sh"])
        .arg(env!("CARGO_BIN_EXE_cargo-lambda-pack"))
        .args(["lambda-pack", "verify", "--out-dir"])
        .arg(&packed().out)
        .args(args)
        .current_dir(&packed().workspace)
        .env(
            "CARGO",
            std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()),
        );
    run(command)
}

/// `cargo lambda-pack verify <args>` in a user namespace of its own in which no further user
/// namespace may be made: a kernel that refuses them, as far as verify can tell.
fn verify_without_user_namespaces(args: &[&str]) -> Run {
    verify_in_user_namespace(
        "echo 0 > /proc/sys/user/max_user_namespaces && exec \"$@\"",
        args,
    )
}

/// `cargo lambda-pack verify <args>` as a user other than root (uid 65534 of a user namespace
/// whose root may make no network namespace): a kernel that allows user namespaces but refuses
/// network ones, as far as verify can tell.
fn verify_without_network_namespaces(args: &[&str]) -> Run {
    verify_in_user_namespace(
        "echo 0 > /proc/sys/user/max_net_namespaces && \
         exec unshare --user --map-user=65534 --map-group=65534 \"$@\"",
        args,
    )
}

#[test]
fn without_network_namespaces_the_environment_shares_the_hosts_network_and_says_so() {
    let run = verify_without_network_namespaces(&["echo", "--message-format", "json"]);
    run.assert_code(0);
    let document = json_document(&run);
    let sandbox = &document["functions"][0]["report"]["sandbox"];
    assert_eq!(sandbox["sandboxed"], true, "{sandbox:#}");
    assert_eq!(sandbox["pid_namespace"], true, "{sandbox:#}");
    assert_eq!(sandbox["network_namespace"], false, "{sandbox:#}");
    assert!(
        sandbox["not_applied"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().starts_with(
                "own network: the kernel refused a network namespace (No space left on device"
            )),
        "{sandbox:#}"
    );
}

#[test]
fn without_user_namespaces_verify_refuses_unless_no_sandbox() {
    let run = verify_without_user_namespaces(&["echo"]);
    run.assert_code(1);
    for wanted in [
        "cannot hold the function as Lambda does: the kernel refused the environment's user, \
         mount and pid namespaces (clone(user|mount|pid): No space left on device",
        "help: allow user namespaces",
        "or pass --no-sandbox",
    ] {
        assert!(run.stderr.contains(wanted), "{wanted}\n{}", run.stderr);
    }
    let run = verify_without_user_namespaces(&["echo", "--no-sandbox"]);
    run.assert_code(0);
    assert!(
        run.stderr.contains("sandbox: none (--no-sandbox)"),
        "{}",
        run.stderr
    );
}
