//! Two workspaces sharing one target directory (a shared `CARGO_TARGET_DIR`), and what `verify`
//! refuses to read from a manifest. The functions are the std-only runtime of
//! `fixtures/verify-functions/tiny-fn`, in two generated one-crate workspaces, so they build in
//! about a second and really run under `verify`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

struct Shared {
    _root: tempfile::TempDir,
    target: PathBuf,
    one: PathBuf,
    two: PathBuf,
}

/// A workspace with one function crate `name`, whose bin is `name` too.
fn tiny_workspace(dir: &Path, name: &str) {
    let crate_dir = dir.join("fn");
    std::fs::create_dir_all(crate_dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        "[workspace]\nresolver = \"3\"\nmembers = [\"fn\"]\n\n[profile.release]\nstrip = true\n",
    )
    .unwrap();
    std::fs::write(
        crate_dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n\
             [[bin]]\nname = \"{name}\"\npath = \"src/main.rs\"\n\n\
             [package.metadata.lambda-pack]\nrole = \"function\"\narch = \"x86_64\"\n"
        ),
    )
    .unwrap();
    std::fs::copy(
        fixtures_dir().join("verify-functions/tiny-fn/src/main.rs"),
        crate_dir.join("src/main.rs"),
    )
    .unwrap();
}

fn in_workspace(workspace: &Path, target: &Path, args: &[&str]) -> Run {
    let mut command = lambda_pack();
    command
        .args(args)
        .current_dir(workspace)
        .env("CARGO_TARGET_DIR", target);
    Run::new_from(command.output().unwrap())
}

/// Both workspaces packed, one after the other, into the one target directory.
fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let root = tempfile::tempdir().unwrap();
        let (one, two, target) = (
            root.path().join("ws-one"),
            root.path().join("ws-two"),
            root.path().join("shared-target"),
        );
        tiny_workspace(&one, "one");
        tiny_workspace(&two, "two");
        for workspace in [&one, &two] {
            in_workspace(workspace, &target, &["--compiler", "cargo"]).assert_success();
        }
        Shared {
            target,
            one: one.canonicalize().unwrap(),
            two: two.canonicalize().unwrap(),
            _root: root,
        }
    })
}

fn out() -> PathBuf {
    shared().target.join("lambda-pack")
}

fn verify_json(workspace: &Path, out_dir: &Path, args: &[&str]) -> Run {
    let mut command = lambda_pack();
    command
        .args(["verify", "--message-format", "json", "--out-dir"])
        .arg(out_dir)
        .args(args)
        .current_dir(workspace);
    Run::new_from(command.output().unwrap())
}

fn ran(run: &Run) -> Vec<String> {
    let document: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{e}\n{}\n{}", run.stdout, run.stderr));
    document["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn two_workspaces_on_one_target_dir_keep_both_sets_and_verify_only_their_own() {
    let shared = shared();
    let out = out();
    // Pack the first workspace again: the second's artifact is not its to remove.
    let run = in_workspace(&shared.one, &shared.target, &["--compiler", "cargo"]);
    run.assert_success();
    assert!(!run.stderr.contains("Removed"), "{}", run.stderr);
    let written = manifest(&out);
    for (name, root) in [("one", &shared.one), ("two", &shared.two)] {
        let entry = artifact(&written, name);
        assert_eq!(entry["workspace_root"], root.display().to_string());
        assert!(
            out.join(entry["path"].as_str().unwrap()).is_file(),
            "{name}"
        );
    }

    for (workspace, own, other) in [(&shared.one, "one", "two"), (&shared.two, "two", "one")] {
        // Without --out-dir: the default output directory is found through CARGO_TARGET_DIR.
        let mut command = lambda_pack();
        command
            .args(["verify", "--message-format", "json"])
            .current_dir(workspace)
            .env("CARGO_TARGET_DIR", &shared.target);
        let run = Run::new_from(command.output().unwrap());
        run.assert_success();
        assert_eq!(ran(&run), [own], "{}", run.stderr);
        let note = run
            .stderr
            .lines()
            .find(|l| l.starts_with("note: not running 1 function(s) of other workspaces"))
            .unwrap_or_else(|| panic!("{}", run.stderr));
        assert!(note.contains(&format!("{other} (x86_64, ")), "{note}");
    }
    // Named, another workspace's function runs.
    let run = verify_json(&shared.one, &out, &["two"]);
    run.assert_success();
    assert_eq!(ran(&run), ["two"]);
}

/// A private copy of the shared output directory, for tests that tamper with its manifest.
fn out_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("out");
    copy_tree(&out(), &copy);
    (dir, copy)
}

fn set_path(out: &Path, name: &str, path: &str) {
    let mut written = manifest(out);
    for entry in written["artifacts"].as_array_mut().unwrap() {
        if entry["name"] == name {
            entry["path"] = Value::String(path.into());
        }
    }
    std::fs::write(
        out.join("manifest.json"),
        serde_json::to_string_pretty(&written).unwrap(),
    )
    .unwrap();
}

#[test]
fn verify_refuses_a_manifest_path_outside_the_output_directory() {
    let (dir, out) = out_copy();
    let outside = dir.path().join("outside.zip");
    // The same bytes, so the recorded SHA-256 matches: only the path is wrong.
    std::fs::copy(out.join("x86_64/one.zip"), &outside).unwrap();
    for path in ["../outside.zip".to_string(), outside.display().to_string()] {
        set_path(&out, "one", &path);
        let run = verify_json(&shared().one, &out, &["one"]);
        run.assert_code(3);
        assert!(
            run.stderr.contains(&format!(
                "function `one` (x86_64) in `{}` has path `{path}`, which verify refuses",
                out.join("manifest.json").display()
            )),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("help: "), "{}", run.stderr);
        assert!(!run.stderr.contains("Verifying"), "{}", run.stderr);
    }
    // A symlink inside the output directory that leads out is refused the same way.
    std::fs::remove_file(out.join("x86_64/one.zip")).unwrap();
    std::os::unix::fs::symlink(&outside, out.join("x86_64/one.zip")).unwrap();
    set_path(&out, "one", "x86_64/one.zip");
    let run = verify_json(&shared().one, &out, &["one"]);
    run.assert_code(3);
    assert!(
        run.stderr.contains("`x86_64/one.zip` is a symlink"),
        "{}",
        run.stderr
    );
}

/// A JSON document of exactly `size` bytes.
fn event_of(size: usize) -> Vec<u8> {
    let mut event = b"{\"pad\":\"".to_vec();
    event.resize(size - 2, b'x');
    event.extend_from_slice(b"\"}");
    assert_eq!(event.len(), size);
    event
}

#[test]
fn an_event_over_6291456_bytes_is_refused_as_lambda_refuses_it() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.json");
    std::fs::write(&big, event_of(8_300_000)).unwrap();
    let run = verify_json(
        &shared().one,
        &out(),
        &["one", "--event", big.to_str().unwrap()],
    );
    run.assert_code(3);
    assert!(
        run.stderr.contains(&format!(
            "the --event file `{}` is 8300000 bytes; Lambda refuses it with RequestEntityTooLargeException: Request must be smaller than 6291456 bytes for the InvokeFunction operation",
            big.display()
        )),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("help: "), "{}", run.stderr);
    assert!(!run.stderr.contains("Verifying"), "{}", run.stderr);

    // At the limit the event is delivered (the echoing function's answer is then too large).
    let limit = dir.path().join("limit.json");
    std::fs::write(&limit, event_of(6_291_456)).unwrap();
    let run = verify_json(
        &shared().one,
        &out(),
        &["one", "--event", limit.to_str().unwrap()],
    );
    assert!(
        !run.stderr.contains("RequestEntityTooLarge"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("Verifying"), "{}", run.stderr);
}

#[test]
fn an_event_fifo_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("event.json");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let mut command = lambda_pack();
    command
        .args(["verify", "--out-dir"])
        .arg(out())
        .args(["one", "--event"])
        .arg(&fifo)
        .current_dir(&shared().one)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let started = Instant::now();
    let mut child = command.spawn().unwrap();
    // Nobody ever writes to the FIFO: a reader that opens it blocking would wait forever.
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("verify blocked on the FIFO");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let run = Run::new_from(child.wait_with_output().unwrap());
    run.assert_code(3);
    assert!(
        run.stderr.contains(&format!(
            "the --event file `{}` is a FIFO (named pipe), not a regular file",
            fifo.display()
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("help: write the JSON to a file first"),
        "{}",
        run.stderr
    );
}
