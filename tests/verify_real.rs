//! `cargo lambda-pack verify` on what real projects do, with the real `lambda_runtime` and
//! `lambda-extension` crates (`fixtures/verify-functions`): functions that read their
//! configuration from the environment (`env`, `--env`, `--env-file`), lambda_runtime's
//! `graceful-shutdown` feature and an extension run inside the function's own process (internal
//! extensions), a standalone extension run against a stand-in function, and `-v` showing what the
//! function wrote.
//!
//! Packs the fixture into the same workspace copy and target directory as `tests/verify_cli.rs`,
//! so whichever test binary runs second finds everything built.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::*;
use serde_json::{Value, json};
use tempfile::TempDir;

struct Packed {
    workspace: PathBuf,
    out: PathBuf,
}

fn packed() -> &'static Packed {
    static PACKED: OnceLock<Packed> = OnceLock::new();
    PACKED.get_or_init(|| {
        let workspace = verify_functions_workspace();
        let target_dir = verify_functions_target_dir();
        let mut command = lambda_pack();
        command
            .args(["--compiler", "cargo", "--profile", "dev", "--locked"])
            .arg("--target-dir")
            .arg(&target_dir)
            .current_dir(&workspace)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_BUILD_TARGET");
        run(command).assert_success();
        Packed {
            workspace,
            out: target_dir.join("lambda-pack"),
        }
    })
}

/// `cargo lambda-pack verify --out-dir <out> <args>` in the packed workspace.
fn verify_in(out: &Path, args: &[&str]) -> Run {
    verify_with(&packed().workspace, out, args)
}

fn verify(args: &[&str]) -> Run {
    verify_in(&packed().out, args)
}

/// The one document `--message-format json` prints, and the named function's entry in it.
fn result_of(run: &Run, name: &str) -> Value {
    let document: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|err| {
        panic!(
            "stdout is not one JSON document ({err})\n{}\n{}",
            run.stdout, run.stderr
        )
    });
    document["functions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {document:#}"))
        .clone()
}

fn extension<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["extensions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no extension {name} in {report:#}"))
}

fn write_file(name: &str, contents: &str) -> (TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    fs::write(&path, contents).unwrap();
    (dir, path.display().to_string())
}

#[test]
fn graceful_shutdown_registers_an_internal_extension_and_the_runtime_gets_sigterm() {
    // Before: `could not register no-op extension for graceful shutdown: ... 403 Forbidden`.
    let run = verify(&["graceful", "--invokes", "2", "--message-format", "json"]);
    run.assert_code(0);
    let result = result_of(&run, "graceful");
    assert_eq!(result["passed"], true, "{result:#}");
    let report = &result["report"];
    let helper = extension(
        report,
        "_lambda-rust-runtime-no-op-graceful-shutdown-helper",
    );
    assert_eq!(helper["internal"], true);
    assert_eq!(helper["registered"], true);
    assert_eq!(helper["subscribed"], json!([]));
    assert_eq!(helper["received"], json!([]));
    // An extension registered, so Lambda sends SIGTERM: the crate's handler runs the hook and
    // exits 0 within the 500 ms an internal-only environment gets.
    let runtime = &report["runtime"];
    assert_eq!(runtime["exit"], "exit status 0", "{runtime:#}");
    let stderr = runtime["stderr"].as_str().unwrap();
    assert!(stderr.contains("[runtime] SIGTERM received"), "{stderr}");
    assert!(
        stderr.contains("graceful-fn: shutdown hook ran"),
        "{stderr}"
    );
    assert_eq!(helper["shutdown"], "exited");
    assert_eq!(report["invocations"].as_array().unwrap().len(), 2);

    let run = verify(&["graceful"]);
    run.assert_code(0);
    assert!(
        run.stderr.contains(
            "internal extension _lambda-rust-runtime-no-op-graceful-shutdown-helper: registered for [], received [], inside the function's process, which exited at shutdown"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn an_in_process_extension_gets_invoke_events_but_not_shutdown() {
    let run = verify(&["inproc", "--invokes", "2", "--message-format", "json"]);
    run.assert_code(0);
    let result = result_of(&run, "inproc");
    let report = &result["report"];
    let audit = extension(report, "inproc-audit");
    assert_eq!(audit["internal"], true);
    assert_eq!(audit["subscribed"], json!(["INVOKE"]));
    assert_eq!(audit["received"], json!(["INVOKE", "INVOKE"]));
    // The extension saw each invoke's request id, inside the function's process.
    let stdout = report["runtime"]["stdout"].as_str().unwrap();
    for (n, invoke) in report["invocations"].as_array().unwrap().iter().enumerate() {
        let line = format!(
            "inproc-audit: invoke {} ({})",
            n + 1,
            invoke["request_id"].as_str().unwrap()
        );
        assert!(stdout.contains(&line), "{line} not in {stdout}");
    }

    // Lambda refuses SHUTDOWN to internal extensions: the registration fails, so does init.
    let run = verify(&["inproc", "--env", "AUDIT_SUBSCRIBE_SHUTDOWN=1"]);
    run.assert_code(10);
    assert!(run.stderr.contains("Runtime.ExitError"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("could not register the internal extension inproc-audit"),
        "{}",
        run.stderr
    );
}

#[test]
fn function_env_comes_from_the_metadata_then_env_files_then_env_flags() {
    // The manifest records the merged table: workspace → package → bin.
    let manifest = manifest(&packed().out);
    let tables = artifact(&manifest, "tables");
    assert_eq!(
        tables["env"],
        json!({"PAGE_SIZE": "25", "REGION_HINT": "eu", "STAGE": "test", "TABLE_NAME": "orders"})
    );
    // Functions without `env` of their own get the workspace's; extensions get none.
    assert_eq!(
        artifact(&manifest, "echo")["env"],
        json!({"REGION_HINT": "eu", "STAGE": "dev"})
    );
    assert!(artifact(&manifest, "recorder").get("env").is_none());

    // HOME is set on this host but not by Lambda: nothing is inherited.
    let (_a, expect) = write_file(
        "expect.json",
        r#"{"table": "orders", "stage": "test", "region_hint": "eu", "page_size": "25",
            "queue_url": null, "home": null}"#,
    );
    verify(&["tables", "--expect", &expect]).assert_code(0);

    let (_b, env_file) = write_file(
        "dev.env",
        "# local settings\nexport STAGE=from-file\nQUEUE_URL='https://sqs.local/q 1'\n",
    );
    let (_c, expect) = write_file(
        "expect.json",
        r#"{"table": "orders-copy", "stage": "from-flag", "region_hint": "eu",
            "page_size": "25", "queue_url": "https://sqs.local/q 1", "home": null}"#,
    );
    let run = verify(&[
        "tables",
        "--env-file",
        &env_file,
        "--env",
        "STAGE=from-flag",
        "--env",
        "TABLE_NAME=orders-copy",
        "--expect",
        &expect,
    ]);
    run.assert_code(0);
}

#[test]
fn a_function_missing_its_env_fails_with_its_own_message() {
    // What a pack before `env` wrote: the same artifacts, no `env` in the manifest.
    let out = tempfile::tempdir().unwrap();
    copy_tree(&packed().out, out.path());
    let path = out.path().join("manifest.json");
    let mut manifest: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    for artifact in manifest["artifacts"].as_array_mut().unwrap() {
        artifact.as_object_mut().unwrap().remove("env");
    }
    fs::write(&path, serde_json::to_string_pretty(&manifest).unwrap()).unwrap();

    let run = verify_in(out.path(), &["tables"]);
    run.assert_code(10);
    assert!(run.stderr.contains("Runtime.ExitError"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("TABLE_NAME is not set: this function needs the name of its DynamoDB table"),
        "{}",
        run.stderr
    );
    // --env supplies it.
    verify_in(out.path(), &["tables", "--env", "TABLE_NAME=orders"]).assert_code(0);
}

#[test]
fn bad_env_flags_and_env_files_are_configuration_errors() {
    for (args, wanted) in [
        (vec!["--env", "TABLE_NAME"], "--env `TABLE_NAME` has no `=`"),
        (
            vec!["--env", "AWS_REGION=eu-west-1"],
            "--env `AWS_REGION=eu-west-1` names a variable Lambda refuses: `AWS_REGION` is reserved",
        ),
        (vec!["--env", "9LIVES=1"], "`9LIVES` is not a valid name"),
    ] {
        let mut all = vec!["tables"];
        all.extend(args);
        let run = verify(&all);
        run.assert_code(3);
        assert!(run.stderr.contains(wanted), "{}", run.stderr);
        assert!(run.stderr.contains("help:"), "{}", run.stderr);
        assert!(!run.stderr.contains("Verifying"), "{}", run.stderr);
    }
    let (_dir, env_file) = write_file("bad.env", "OK=1\nthis line has no equals sign\n");
    let run = verify(&["tables", "--env-file", &env_file]);
    run.assert_code(3);
    assert!(
        run.stderr
            .contains(&format!("line 2 of the --env-file `{env_file}` has no `=`")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("help:"), "{}", run.stderr);
    let run = verify(&["tables", "--env-file", "/nonexistent/dev.env"]);
    run.assert_code(3);
    assert!(
        run.stderr.contains("/nonexistent/dev.env"),
        "{}",
        run.stderr
    );
    // A NUL byte can be in no process environment: refused naming the file, line and column
    // (it used to reach the sandbox and end as Extension.LaunchError, exit 10).
    let (_nul_dir, nul_file) = write_file("nul.env", "OK=1\n# fine\nTOKEN=ab\0cd\n");
    let run = verify(&["tables", "--env-file", &nul_file]);
    run.assert_code(3);
    assert!(
        run.stderr.contains(&format!(
            "line 3 of the --env-file `{nul_file}` has a NUL byte (column 9)"
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("the line: TOKEN=ab\\0cd"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains('\0'), "{}", run.stderr);
    assert!(!run.stderr.contains("Verifying"), "{}", run.stderr);
    // More than Lambda's 4 KB of variables.
    let (_big_dir, big_file) = write_file("big.env", &format!("BIG={}\n", "x".repeat(5000)));
    let run = verify(&["tables", "--env-file", &big_file]);
    run.assert_code(3);
    assert!(
        run.stderr
            .contains("--env-file and --env set more than Lambda takes: the variables take 5010 bytes as Lambda measures them (the JSON object {\"KEY\":\"value\",...}); Lambda allows 4096 bytes"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_standalone_extension_runs_against_a_stand_in_function() {
    // Before: "`audit` is an extension, not a function; verify runs functions with their layers".
    let (_dir, event) = write_file("event.json", r#"{"order": 7}"#);
    let run = verify(&[
        "audit",
        "--invokes",
        "2",
        "--event",
        &event,
        "--message-format",
        "json",
    ]);
    run.assert_code(0);
    let result = result_of(&run, "audit");
    assert_eq!(result["passed"], true, "{result:#}");
    let report = &result["report"];
    assert_eq!(report["stand_in"], true);
    assert_eq!(report["runtime"], Value::Null);
    for invoke in report["invocations"].as_array().unwrap() {
        assert_eq!(invoke["outcome"]["preview"], r#"{"order": 7}"#);
    }
    let audit = extension(report, "audit");
    assert_eq!(audit["internal"], false);
    assert_eq!(audit["subscribed"], json!(["INVOKE", "SHUTDOWN"]));
    assert_eq!(audit["received"], json!(["INVOKE", "INVOKE", "SHUTDOWN"]));
    assert_eq!(audit["shutdown"], "finished", "{audit:#}");
    let stderr = audit["process"]["stderr"].as_str().unwrap();
    assert!(stderr.contains("audit: SHUTDOWN spindown"), "{stderr}");

    let run = verify(&["audit"]);
    run.assert_code(0);
    for wanted in [
        "Verifying audit (x86_64, extension, stand-in function)",
        "extension audit: registered for [INVOKE, SHUTDOWN], received [INVOKE, SHUTDOWN], finished shutdown",
        "runtime: stand-in function",
    ] {
        assert!(run.stderr.contains(wanted), "{wanted}\n{}", run.stderr);
    }

    // Its manifest entry lists the runtimes of its metadata; an attached extension without the
    // key keeps the runtimes of the functions attaching it.
    let manifest = manifest(&packed().out);
    assert_eq!(
        artifact(&manifest, "audit")["compatible_runtimes"],
        json!(["python3.13", "nodejs22.x", "provided.al2023"])
    );
    assert_eq!(
        artifact(&manifest, "recorder")["compatible_runtimes"],
        json!(["provided.al2023"])
    );
}

#[test]
fn a_lone_standalone_extension_runs_without_being_named() {
    // Before: exit 3, "lists no function", in an output folder holding only the extension.
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&packed().out, dir.path());
    let mut document = manifest(dir.path());
    document["artifacts"]
        .as_array_mut()
        .unwrap()
        .retain(|a| a["name"] == "audit");
    fs::write(
        dir.path().join("manifest.json"),
        serde_json::to_vec_pretty(&document).unwrap(),
    )
    .unwrap();
    let run = verify_in(dir.path(), &[]);
    run.assert_code(0);
    assert!(
        run.stderr
            .contains("Verifying audit (x86_64, extension, stand-in function)"),
        "{}",
        run.stderr
    );
}

#[test]
fn verbose_output_shows_what_the_function_wrote_on_stderr() {
    let run = verify(&["inproc"]);
    run.assert_code(0);
    assert!(
        !run.stderr.contains("inproc-audit: invoke 1"),
        "{}",
        run.stderr
    );

    let run = verify(&["inproc", "-v"]);
    run.assert_code(0);
    assert!(run.stdout.is_empty(), "stdout is for data: {}", run.stdout);
    assert!(run.stderr.contains("stdout of runtime:"), "{}", run.stderr);
    assert!(
        run.stderr.contains("| inproc-audit: invoke 1"),
        "{}",
        run.stderr
    );

    // With JSON on stdout, the output goes to the document only.
    let run = verify(&["graceful", "-v", "--message-format", "json"]);
    run.assert_code(0);
    let result = result_of(&run, "graceful");
    assert!(
        result["report"]["runtime"]["stderr"]
            .as_str()
            .unwrap()
            .contains("SIGTERM received")
    );
}

/// A copy of `fixtures/basic` whose `fn-arm` package table gets `extra` lines.
fn basic_with(extra: &str) -> (Fixture, String) {
    let fixture = Fixture::copy("basic");
    let text = fixture.read("fn-arm/Cargo.toml") + extra;
    fixture.write("fn-arm/Cargo.toml", &text);
    let manifest = fixture
        .path()
        .join("fn-arm/Cargo.toml")
        .display()
        .to_string();
    (fixture, manifest)
}

#[test]
fn bad_env_and_compatible_runtimes_metadata_name_the_key_and_the_fix() {
    let cases = [
        (
            "env = { TABLE_NAME = 5 }\n",
            vec![
                "`env.TABLE_NAME`",
                "must be a string, found 5",
                "help: quote the value",
            ],
        ),
        (
            "env = { AWS_REGION = \"eu-west-1\" }\n",
            vec![
                "`env.AWS_REGION`",
                "is reserved",
                "help: remove `AWS_REGION`",
            ],
        ),
        (
            "env = { \"BAD-NAME\" = \"x\" }\n",
            vec!["`env.BAD-NAME`", "not a valid name"],
        ),
        (
            "env = \"TABLE_NAME=x\"\n",
            vec!["key `env`", "must be a table of strings"],
        ),
        (
            "compatible_runtimes = [\"nodejs22\"]\n",
            vec![
                "invalid value \"nodejs22\" in key `compatible_runtimes`",
                "did you mean \"nodejs22.x\"?",
            ],
        ),
        (
            "compatible_runtimes = [\"python3.13\"]\n",
            vec!["`compatible_runtimes`", "is set on function `fn-arm`"],
        ),
    ];
    for (extra, wanted) in cases {
        let (fixture, manifest) = basic_with(extra);
        let run = fixture.pack(&["--compiler", "cargo"]);
        run.assert_code(3);
        assert!(run.stderr.contains(&manifest), "{extra}{}", run.stderr);
        assert!(run.stderr.contains("help:"), "{extra}{}", run.stderr);
        for wanted in wanted {
            assert!(
                run.stderr.contains(wanted),
                "{extra}: {wanted}\n{}",
                run.stderr
            );
        }
        assert!(!fixture.out_dir().exists(), "nothing written for {extra}");
    }
}
