//! A pack never trusts the `manifest.json` it finds: entries pointing outside the output
//! directory or at things this tool does not write are left alone with a warning, and links or
//! files of someone else's inside the output directory make it refuse before writing anything; artifacts and the manifest get the modes `File::create` would give them; Lambda's
//! naming rules apply at pack time; and the environment problems that used to surface as opaque
//! failures name their cause. `fixtures/basic` is dependency-free, so each test packs its own copy.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::{Value, json};

fn entry(name: &str, format: &str, arch: &str, path: &str) -> Value {
    json!({
        "name": name, "package": "fn-x86", "bin": name, "kind": "function", "format": format,
        "arch": arch, "runtime": "provided.al2023", "target": "x86_64-unknown-linux-musl",
        "path": path, "sha256": "00", "code_sha256": "AA==", "size_zipped": 1,
        "size_unzipped": 1, "layers": []
    })
}

/// Replaces the manifest's entries, keeping what says that the tool wrote it (`generator`): the
/// manifest of an output directory of ours, tampered with.
fn write_manifest(out: &Path, artifacts: Vec<Value>) {
    let generator = manifest(out)["generator"].clone();
    let manifest = json!({"schema_version": 1, "generator": generator, "artifacts": artifacts});
    std::fs::write(
        out.join("manifest.json"),
        serde_json::to_string_pretty(&manifest).unwrap(),
    )
    .unwrap();
}

fn write(path: &Path, contents: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}

#[test]
fn outside_and_foreign_manifest_entries_are_left_alone_with_a_warning() {
    let fixture = Fixture::copy("basic");
    let args = ["--compiler", "cargo", "-p", "fn-x86"];
    fixture.pack(&args).assert_success();
    let out = fixture.out_dir();
    let target = fixture.path().join("target");
    let outside = tempfile::tempdir().unwrap();

    // Files and directories a crafted manifest points at, outside the output directory.
    let victim = target.join("victim/keep.zip");
    write(&victim, "victim");
    let absolute = outside.path().join("abs.zip");
    write(&absolute, "absolute");
    let victim_dir = target.join("victimdir");
    write(&victim_dir.join("Dockerfile"), "FROM scratch\n");
    write(&victim_dir.join("data.txt"), "data");
    // A real stale artifact of the packed package: the one thing the clean-up should remove.
    write(&out.join("x86_64/old-bin.zip"), "stale");

    let fn_x86 = artifact(&manifest(&out), "fn-x86").clone();
    write_manifest(
        &out,
        vec![
            fn_x86,
            entry("keep", "zip", "x86_64", "../victim/keep.zip"),
            entry("abs", "zip", "x86_64", absolute.to_str().unwrap()),
            entry("parent", "image", "x86_64", ".."),
            entry("victimdir", "image", "x86_64", "../victimdir"),
            entry("notes", "zip", "x86_64", "x86_64/notes.txt"),
            entry("old-bin", "zip", "x86_64", "x86_64/old-bin.zip"),
        ],
    );
    let outside_before = tree_state(outside.path());
    let victims_before = [tree_state(&victim), tree_state(&victim_dir)];

    let run = fixture.pack(&args);
    run.assert_success();
    assert_eq!(tree_state(outside.path()), outside_before, "{}", run.stderr);
    assert_eq!(
        [tree_state(&victim), tree_state(&victim_dir)],
        victims_before,
        "{}",
        run.stderr
    );
    assert!(
        !out.join("x86_64/old-bin.zip").exists(),
        "the genuine stale ZIP is removed\n{}",
        run.stderr
    );
    assert!(run.stderr.contains("Removed"), "{}", run.stderr);

    // One warning per refused entry, naming the manifest and the entry.
    let manifest_path = out.join("manifest.json");
    for (name, path) in [
        ("keep", "../victim/keep.zip"),
        ("abs", absolute.to_str().unwrap()),
        ("parent", ".."),
        ("victimdir", "../victimdir"),
        ("notes", "x86_64/notes.txt"),
    ] {
        let line = run
            .stderr
            .lines()
            .find(|l| l.contains(&format!("entry `{name}` ")))
            .unwrap_or_else(|| panic!("no warning for `{name}`:\n{}", run.stderr));
        assert!(line.starts_with("warning: "), "{line}");
        assert!(line.contains(&format!("path `{path}`")), "{line}");
        assert!(
            line.contains(&manifest_path.display().to_string()),
            "{line}"
        );
        assert!(line.contains("left alone"), "{line}");
    }

    // The pack's own output is complete, and the new manifest lists only what is safe.
    let written = manifest(&out);
    let names: Vec<&str> = written["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["fn-x86"]);
    let zip = out.join("x86_64/fn-x86.zip");
    assert_eq!(
        artifact(&written, "fn-x86")["sha256"],
        sha256_hex(&std::fs::read(&zip).unwrap())
    );
    python_entry(&zip, "bootstrap");
    assert_eq!(
        artifact(&written, "fn-x86")["workspace_root"],
        fixture.path().canonicalize().unwrap().display().to_string()
    );
}

/// Links and files of someone else's inside the output directory make it not the tool's: the
/// pack refuses before writing anything, naming the entry, and nothing changes on either side.
#[test]
fn links_and_foreign_files_inside_the_output_directory_are_refused_by_name() {
    let fixture = Fixture::copy("basic");
    let args = ["--compiler", "cargo", "-p", "fn-x86"];
    fixture.pack(&args).assert_success();
    let out = fixture.out_dir();
    let outside = tempfile::tempdir().unwrap();
    let linked_file = outside.path().join("linked.zip");
    write(&linked_file, "through a file symlink");
    let linked_dir = outside.path().join("arm-outside");
    write(
        &linked_dir.join("fn-gone.zip"),
        "through a directory symlink",
    );
    let image_outside = outside.path().join("ctx");
    write(&image_outside.join("Dockerfile"), "FROM scratch\n");

    // Each entry: a link to something outside, or (None) a file of someone else's.
    let cases: [(&str, Option<&Path>); 4] = [
        ("x86_64/link.zip", Some(&linked_file)),
        ("arm64", Some(&linked_dir)),
        ("x86_64/img", Some(&image_outside)),
        ("x86_64/notes.txt", None),
    ];
    for (entry, link_to) in cases {
        match link_to {
            Some(target) => std::os::unix::fs::symlink(target, out.join(entry)).unwrap(),
            None => write(&out.join(entry), "notes"),
        }
        let before = (tree_state(&out), tree_state(outside.path()));
        let run = fixture.pack(&args);
        run.assert_code(3);
        assert!(
            run.stderr.contains(&format!(
                "the output directory `{}` is not cargo-lambda-pack's to write: `{entry}`",
                out.display()
            )),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("help: "), "{}", run.stderr);
        assert_eq!((tree_state(&out), tree_state(outside.path())), before);
        std::fs::remove_file(out.join(entry)).unwrap();
    }
    // With the foreign entries gone, the directory is the tool's again.
    fixture.pack(&args).assert_success();
}

/// Runs the binary under `umask`, as a shell would.
fn pack_with_umask(fixture: &Fixture, umask: &str, args: &[&str]) -> Run {
    let command = lambda_pack();
    let program = command.get_program().to_owned();
    let mut shell = Command::new("sh");
    shell
        .arg("-c")
        .arg(format!("umask {umask}; exec \"$0\" \"$@\""))
        .arg(program)
        .args(command.get_args())
        .args(args)
        .current_dir(fixture.path());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => shell.env(key, value),
            None => shell.env_remove(key),
        };
    }
    Run::new_from(shell.output().unwrap())
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn artifacts_and_the_manifest_are_created_with_the_umask_applied_to_0666() {
    for (umask, expected) in [("022", 0o644), ("077", 0o600)] {
        let fixture = Fixture::copy("basic");
        let run = pack_with_umask(&fixture, umask, &["--compiler", "cargo", "-p", "fn-x86"]);
        run.assert_success();
        let out = fixture.out_dir();
        for file in ["x86_64/fn-x86.zip", "manifest.json"] {
            assert_eq!(
                mode(&out.join(file)),
                expected,
                "{file} under umask {umask}"
            );
        }
    }
}

#[test]
fn a_name_lambda_refuses_is_an_error_finding_that_allow_downgrades() {
    let fixture = Fixture::copy("basic");
    let long = format!("orders-{}", "x".repeat(73));
    assert_eq!(long.len(), 80);
    let manifest_text = fixture.read("fn-x86/Cargo.toml");
    fixture.write(
        "fn-x86/Cargo.toml",
        &format!("{manifest_text}\n[[bin]]\nname = \"{long}\"\npath = \"src/main.rs\"\n"),
    );
    let run = fixture.pack(&["--compiler", "cargo", "-p", "fn-x86"]);
    run.assert_code(8);
    assert!(
        run.stderr.contains("error: 1 name check(s) failed"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("[invalid-name]"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("1 to 64 characters of a-z, A-Z, 0-9, `-` and `_`"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("80 characters"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("[[bin]] name = \"{}\"", &long[..64])),
        "{}",
        run.stderr
    );
    assert!(!fixture.out_dir().join("manifest.json").exists());

    let run = fixture.pack(&[
        "--compiler",
        "cargo",
        "-p",
        "fn-x86",
        "--allow",
        "invalid-name",
    ]);
    run.assert_success();
    let written = manifest(&fixture.out_dir());
    let warnings = artifact(&written, &long)["warnings"].to_string();
    assert!(warnings.contains("invalid-name"), "{warnings}");
}

#[test]
fn an_include_matching_a_broken_symlink_is_a_configuration_error() {
    let fixture = Fixture::copy("basic");
    std::os::unix::fs::symlink(
        "does-not-exist.txt",
        fixture.path().join("fn-x86/assets/dangling.txt"),
    )
    .unwrap();
    let run = fixture.pack(&["--compiler", "cargo", "-p", "fn-x86"]);
    run.assert_code(3);
    assert!(
        run.stderr.contains("include \"assets/**\""),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("fn-x86/Cargo.toml"), "{}", run.stderr);
    assert!(run.stderr.contains("dangling.txt"), "{}", run.stderr);
    assert!(run.stderr.contains("does-not-exist.txt"), "{}", run.stderr);
    assert!(run.stderr.contains("help: "), "{}", run.stderr);
}

#[test]
fn a_rustc_wrapper_that_fails_is_named_not_reported_as_zig() {
    let fixture = Fixture::copy("basic");
    let run = fixture.pack_with_env(
        &["--compiler", "zig", "-p", "fn-x86"],
        &[("RUSTC_WRAPPER", "false")],
    );
    run.assert_code(3);
    assert!(
        run.stderr.contains("RUSTC_WRAPPER=`false`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("help: fix the wrapper or unset RUSTC_WRAPPER"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("could not set up zig"),
        "{}",
        run.stderr
    );
}

#[test]
fn zig_without_home_names_home_and_zig_global_cache_dir() {
    let fixture = Fixture::copy("basic");
    let mut command = lambda_pack();
    command
        .args(["--compiler", "zig", "-p", "fn-x86"])
        .current_dir(fixture.path())
        .env_remove("HOME")
        .env_remove("ZIG_GLOBAL_CACHE_DIR")
        .env_remove("XDG_CACHE_HOME")
        // cargo and rustup find their homes through HOME unless told: tell them.
        .env("CARGO_HOME", env_or_home("CARGO_HOME", ".cargo"))
        .env("RUSTUP_HOME", env_or_home("RUSTUP_HOME", ".rustup"));
    let run = Run::new_from(command.output().unwrap());
    run.assert_code(3);
    assert!(run.stderr.contains("HOME is not set"), "{}", run.stderr);
    assert!(
        run.stderr.contains("ZIG_GLOBAL_CACHE_DIR"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("help: set HOME, or set ZIG_GLOBAL_CACHE_DIR"),
        "{}",
        run.stderr
    );
}

fn env_or_home(name: &str, under_home: &str) -> std::path::PathBuf {
    match std::env::var_os(name) {
        Some(value) => value.into(),
        None => Path::new(&std::env::var_os("HOME").expect("the tests run with HOME set"))
            .join(under_home),
    }
}

#[test]
fn inspect_on_a_missing_file_is_an_io_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-bootstrap");
    let mut command = lambda_pack();
    command.arg("inspect").arg(&missing);
    let run = Run::new_from(command.output().unwrap());
    run.assert_code(3);
    assert!(
        run.stderr
            .contains(&format!("could not read `{}`", missing.display())),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("NotFound"), "{}", run.stderr);
    assert!(!run.stderr.contains("not an ELF"), "{}", run.stderr);
    assert!(run.stderr.contains("help: "), "{}", run.stderr);
}

#[test]
fn arm64_after_x86_64_keeps_both() {
    let fixture = Fixture::copy("basic");
    for arch in ["x86_64", "arm64"] {
        fixture
            .pack(&["--compiler", "cargo", "-p", "fn-x86", "--arch", arch])
            .assert_success();
    }
    let out = fixture.out_dir();
    let written = manifest(&out);
    let paths: Vec<&str> = written["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["x86_64/fn-x86.zip", "arm64/fn-x86.zip"]);
    for (path, machine) in [
        ("x86_64/fn-x86.zip", EM_X86_64),
        ("arm64/fn-x86.zip", EM_AARCH64),
    ] {
        let zip = out.join(path);
        assert_eq!(python_entry(&zip, "bootstrap").elf_machine, Some(machine));
        let recorded = written["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["path"] == path)
            .unwrap();
        assert_eq!(
            recorded["sha256"],
            sha256_hex(&std::fs::read(&zip).unwrap())
        );
    }
    // Without --arch the package's own architecture is all it produces: arm64 is stale again.
    let run = fixture.pack(&["--compiler", "cargo", "-p", "fn-x86"]);
    run.assert_success();
    assert!(!out.join("arm64/fn-x86.zip").exists(), "{}", run.stderr);
    assert!(out.join("x86_64/fn-x86.zip").is_file());
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
