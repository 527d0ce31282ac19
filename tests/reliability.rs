//! Nothing half-written: concurrent runs serialize, interrupted runs leave complete files and no
//! temporaries, failed writes leave the previous output, unchanged artifacts are not rewritten.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

/// Every artifact the manifest lists exists, is a readable ZIP, and has the recorded hash.
fn assert_consistent(out: &std::path::Path) {
    let manifest = manifest(out);
    for artifact in manifest["artifacts"].as_array().unwrap() {
        let path = out.join(artifact["path"].as_str().unwrap());
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        use sha2::Digest;
        let digest: String = sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            artifact["sha256"].as_str().unwrap(),
            digest,
            "{} matches the manifest",
            path.display()
        );
        python_entries(&path);
    }
}

fn temporaries(out: &std::path::Path) -> Vec<String> {
    walkdir::WalkDir::new(out)
        .into_iter()
        .map(|e| e.unwrap())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp") || n.contains(".old-"))
        .collect()
}

#[test]
fn a_second_pack_waits_for_the_first_to_release_the_lock() {
    let fixture = Fixture::copy("basic");
    fixture
        .pack(&["--compiler", "cargo", "-p", "fn-arm"])
        .assert_success();
    let mut command = lambda_pack();
    command
        .args(["--compiler", "cargo", "-p", "fn-arm", "--color", "never"])
        .current_dir(fixture.path());
    let (line, rest) = run_while_locked(
        &fixture.out_dir(),
        command,
        "the pack ended without waiting",
    );
    assert!(line.contains("waiting for file lock on"), "{line}");
    assert!(rest.contains("Finished"), "{rest}");
}

#[test]
fn killed_packs_leave_complete_artifacts_and_the_next_run_cleans_up() {
    let fixture = Fixture::copy("basic");
    fixture.pack(&["--compiler", "cargo"]).assert_success();
    let out = fixture.out_dir();
    // A deterministic spread of moments, from "still starting" to "writing archives".
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..6 {
        // Change an input so the run really rewrites archives.
        fixture.write(
            "fn-x86/assets/readme.txt",
            &format!("round {round}\n{}", "x".repeat(round * 50_000)),
        );
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_millis(50 + seed % 900);
        let mut child = lambda_pack()
            .args(["--compiler", "cargo"])
            .current_dir(fixture.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let signal = if round % 2 == 0 {
            libc::SIGKILL
        } else {
            libc::SIGINT
        };
        // SAFETY: sending a signal to our own child process.
        unsafe { libc::kill(child.id() as i32, signal) };
        child.wait().unwrap();
        assert_consistent(&out);
    }
    let run = fixture.pack(&["--compiler", "cargo"]);
    run.assert_success();
    assert_consistent(&out);
    assert_eq!(
        temporaries(&out),
        Vec::<String>::new(),
        "no temporary files after the next run"
    );
}

#[test]
fn a_full_disk_mid_write_leaves_the_previous_output() {
    let fixture = Fixture::copy("basic");
    fixture
        .pack(&["--compiler", "cargo", "-p", "fn-x86"])
        .assert_success();
    let out = fixture.out_dir();
    let before = snapshot(&out);
    // An include larger than the file-size limit below: the archive cannot be written.
    // Incompressible bytes (xorshift), so the archive really is larger than the limit.
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let noise: Vec<u8> = (0..2_000_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    std::fs::write(fixture.path().join("fn-x86/assets/big.bin"), noise).unwrap();
    let binary = env!("CARGO_BIN_EXE_cargo-lambda-pack");
    let output = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "ulimit -f 400 && exec '{binary}' lambda-pack --compiler cargo -p fn-x86"
        ))
        .current_dir(fixture.path())
        .env(
            "CARGO",
            std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()),
        )
        // The fixture's own target directory, as `Fixture::pack` uses: one inherited from the
        // caller would rebuild everything under the file-size limit.
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(7), "{stderr}");
    assert!(stderr.contains("could not write"), "{stderr}");
    assert!(stderr.contains("help:"), "{stderr}");
    assert_eq!(
        snapshot(&out),
        before,
        "the previous artifacts and manifest are untouched"
    );
    assert_eq!(
        temporaries(&out),
        Vec::<String>::new(),
        "the failed run removed its temporary file"
    );
}

#[test]
fn only_artifacts_whose_inputs_changed_are_repacked() {
    let fixture = Fixture::copy("basic");
    fixture.pack(&["--compiler", "cargo"]).assert_success();
    let out = fixture.out_dir();
    let first = manifest(&out);
    let arm_before = snapshot(&out.join("arm64"));
    fixture.write("fn-x86/config/app.toml", "answer = 43\n");
    let started = Instant::now();
    let run = fixture.pack(&["--compiler", "cargo"]);
    run.assert_success();
    assert!(started.elapsed() < Duration::from_secs(600));
    assert!(
        run.stderr.contains("Packed function fn-x86"),
        "{}",
        run.stderr
    );
    for name in ["multi-a", "fn-arm", "multi-b"] {
        assert!(
            run.stderr.contains(&format!("Fresh function {name}")),
            "{name}: {}",
            run.stderr
        );
    }
    assert_eq!(
        snapshot(&out.join("arm64")),
        arm_before,
        "untouched: same bytes, same mtimes"
    );
    let second = manifest(&out);
    assert_ne!(
        artifact(&first, "fn-x86")["inputs_sha256"],
        artifact(&second, "fn-x86")["inputs_sha256"]
    );
    assert_eq!(
        artifact(&first, "fn-arm")["inputs_sha256"],
        artifact(&second, "fn-arm")["inputs_sha256"]
    );
    assert_eq!(
        artifact(&first, "fn-arm")["sha256"],
        artifact(&second, "fn-arm")["sha256"]
    );
}
