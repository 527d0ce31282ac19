//! `inspect` prints the dependency list cargo-auditable embeds in a binary (`.dep-v0`), as
//! rust-audit-info, the reference reader, reads it.

mod common;

use std::process::Command;

use common::*;

#[test]
fn inspect_prints_the_embedded_dependency_list_and_nothing_for_a_binary_without_one() {
    let fixture = Fixture::copy("basic");
    let build = |args: &[&str], target_dir: &str| {
        let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(args)
            .args(["-p", "fn-x86", "--target-dir", target_dir])
            .current_dir(fixture.path())
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_TARGET_DIR")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        fixture.path().join(target_dir).join("debug/fn-x86")
    };
    let audited = build(&["auditable", "build"], "audited");
    let plain = build(&["build"], "plain");

    let inspect = |file: &std::path::Path| {
        let mut command = lambda_pack();
        command
            .arg("inspect")
            .arg(file)
            .args(["--message-format", "json"]);
        let run = run(command);
        run.assert_success();
        serde_json::from_str::<serde_json::Value>(&run.stdout).unwrap()
    };
    let shown = inspect(&audited);
    let mut ours: Vec<(String, String, bool)> = shown[0]["dependencies"]
        .as_array()
        .expect("a dependency list")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["version"].as_str().unwrap().to_string(),
                c["root"].as_bool().unwrap(),
            )
        })
        .collect();
    ours.sort();
    assert_eq!(
        ours,
        [
            ("fn-x86".to_string(), "0.1.0".to_string(), true),
            ("shared".to_string(), "0.1.0".to_string(), false)
        ]
    );

    // The reference reader agrees.
    let reference = Command::new("rust-audit-info")
        .arg(&audited)
        .output()
        .expect("rust-audit-info (scripts/setup.sh installs it)");
    assert!(reference.status.success());
    let reference: serde_json::Value = serde_json::from_slice(&reference.stdout).unwrap();
    let mut theirs: Vec<(String, String, bool)> = reference["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["version"].as_str().unwrap().to_string(),
                p["root"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    theirs.sort();
    assert_eq!(ours, theirs);

    let mut command = lambda_pack();
    command.arg("inspect").arg(&audited);
    let listing = run(command);
    assert!(
        listing
            .stdout
            .contains("dependencies: 2 crate(s) embedded (.dep-v0)")
            && listing.stdout.contains("    fn-x86 0.1.0 (local, root)"),
        "{}",
        listing.stdout
    );

    // A binary built without cargo-auditable has no list, and inspect says nothing about one.
    assert!(inspect(&plain)[0].get("dependencies").is_none());
}
