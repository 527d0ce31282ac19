//! Every packed binary carries its dependency list as cargo-auditable embeds it (`.dep-v0`),
//! unless `auditable = false`; rust-audit-info, the reference reader, and `inspect` read it back.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// The `bootstrap` of a packed ZIP, extracted by Info-ZIP's unzip.
fn bootstrap(zip: &Path, into: &Path) -> PathBuf {
    std::fs::create_dir_all(into).unwrap();
    let status = Command::new("unzip")
        .args(["-o", "-q"])
        .arg(zip)
        .arg("bootstrap")
        .arg("-d")
        .arg(into)
        .status()
        .expect("unzip");
    assert!(status.success(), "unzip {}", zip.display());
    into.join("bootstrap")
}

/// (name, version, root) of each crate rust-audit-info reads, sorted; `None` when it finds no
/// list.
fn reference_list(binary: &Path) -> Option<Vec<(String, String, bool)>> {
    let output = Command::new("rust-audit-info")
        .arg(binary)
        .output()
        .expect("rust-audit-info (scripts/setup.sh installs it)");
    if !output.status.success() {
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("No audit data found"),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        return None;
    }
    let parsed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let mut list: Vec<(String, String, bool)> = parsed["packages"]
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
    list.sort();
    Some(list)
}

fn inspect_json(file: &Path) -> serde_json::Value {
    let mut command = lambda_pack();
    command
        .arg("inspect")
        .arg(file)
        .args(["--message-format", "json"]);
    let run = run(command);
    run.assert_success();
    serde_json::from_str::<serde_json::Value>(&run.stdout).unwrap()
}

fn owned(list: &[(&str, &str, bool)]) -> Vec<(String, String, bool)> {
    list.iter()
        .map(|(n, v, r)| (n.to_string(), v.to_string(), *r))
        .collect()
}

/// The basic fixture with `auditable = false` on one bin (`multi-a`) and not on its sibling.
fn fixture_with_one_bin_off() -> Fixture {
    let fixture = Fixture::copy("basic");
    let manifest = fixture.read("multi/Cargo.toml");
    fixture.write(
        "multi/Cargo.toml",
        &manifest.replace(
            "[package.metadata.lambda-pack.bin.multi-b]",
            "[package.metadata.lambda-pack.bin.multi-a]\nauditable = false\n\n[package.metadata.lambda-pack.bin.multi-b]",
        ),
    );
    fixture
}

#[test]
fn packed_binaries_carry_their_dependency_list_unless_auditable_is_false() {
    let fixture = fixture_with_one_bin_off();
    fixture.pack(&[]).assert_success();
    let out = fixture.out_dir();
    let scratch = tempfile::tempdir().unwrap();
    let extract = |zip: &str| bootstrap(&out.join(zip), &scratch.path().join(zip));

    // fn-x86 depends on the path crate `shared`: both listed, fn-x86 the root.
    let fn_x86 = extract("x86_64/fn-x86.zip");
    let expected = owned(&[("fn-x86", "0.1.0", true), ("shared", "0.1.0", false)]);
    assert_eq!(reference_list(&fn_x86), Some(expected.clone()));
    // arm64 (linked by zig for aarch64, or rust-lld on the musl path) too.
    let multi_b = extract("arm64/multi-b.zip");
    assert_eq!(
        reference_list(&multi_b),
        Some(owned(&[("multi", "0.1.0", true)]))
    );
    // `auditable = false` on the bin: no list.
    let multi_a = extract("x86_64/multi-a.zip");
    assert_eq!(reference_list(&multi_a), None);
    assert!(inspect_json(&multi_a)[0].get("dependencies").is_none());

    // inspect reads the packed bootstrap as the reference reader does.
    let shown = inspect_json(&fn_x86);
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
    assert_eq!(ours, expected);
    let mut command = lambda_pack();
    command.arg("inspect").arg(&fn_x86);
    let listing = run(command);
    assert!(
        listing
            .stdout
            .contains("dependencies: 2 crate(s) embedded (.dep-v0)")
            && listing.stdout.contains("    fn-x86 0.1.0 (local, root)"),
        "{}",
        listing.stdout
    );

    // Turning it off for the whole package rebuilds its binaries without the list (cargo is
    // told the lists are an input), and on again puts it back.
    let manifest = fixture.read("fn-x86/Cargo.toml");
    let off = manifest.replace(
        "[package.metadata.lambda-pack]\n",
        "[package.metadata.lambda-pack]\nauditable = false\n",
    );
    assert_ne!(off, manifest);
    fixture.write("fn-x86/Cargo.toml", &off);
    fixture.pack(&["-p", "fn-x86"]).assert_success();
    let again = scratch.path().join("off");
    assert_eq!(
        reference_list(&bootstrap(&out.join("x86_64/fn-x86.zip"), &again)),
        None
    );
    fixture.write("fn-x86/Cargo.toml", &manifest);
    fixture.pack(&["-p", "fn-x86"]).assert_success();
    let back = scratch.path().join("back");
    assert_eq!(
        reference_list(&bootstrap(&out.join("x86_64/fn-x86.zip"), &back)),
        Some(expected)
    );
}

#[test]
fn the_list_is_linked_by_rust_lld_and_through_the_user_s_own_workspace_wrapper() {
    let fixture = Fixture::copy("basic");
    let scratch = tempfile::tempdir().unwrap();
    // musl without zig: rust-lld is the linker itself (no C compiler driver in between).
    fixture
        .pack(&["--compiler", "cargo", "-p", "fn-arm"])
        .assert_success();
    let fn_arm = bootstrap(
        &fixture.out_dir().join("arm64/fn-arm.zip"),
        &scratch.path().join("musl"),
    );
    assert_eq!(
        reference_list(&fn_arm),
        Some(owned(&[("fn-arm", "0.1.0", true)]))
    );

    // A RUSTC_WORKSPACE_WRAPPER the user set still runs rustc (ours runs it).
    let log = scratch.path().join("wrapper.log");
    let wrapper = scratch.path().join("wrapper.sh");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho \"$CARGO_CRATE_NAME\" >> '{}'\nexec \"$@\"\n",
            log.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    fixture
        .pack_with_env(
            &["-p", "fn-x86"],
            &[("RUSTC_WORKSPACE_WRAPPER", wrapper.to_str().unwrap())],
        )
        .assert_success();
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        logged.contains("fn_x86"),
        "the user's wrapper ran: {logged:?}"
    );
    let fn_x86 = bootstrap(
        &fixture.out_dir().join("x86_64/fn-x86.zip"),
        &scratch.path().join("wrapped"),
    );
    assert_eq!(
        reference_list(&fn_x86),
        Some(owned(&[
            ("fn-x86", "0.1.0", true),
            ("shared", "0.1.0", false)
        ]))
    );
}

#[test]
fn archives_with_embedded_lists_are_byte_identical_across_clean_builds() {
    let first = fixture_with_one_bin_off();
    let second = fixture_with_one_bin_off();
    first.pack(&[]).assert_success();
    second.pack(&[]).assert_success();
    for zip in [
        "x86_64/fn-x86.zip",
        "x86_64/multi-a.zip",
        "arm64/fn-arm.zip",
        "arm64/multi-b.zip",
    ] {
        let bytes = std::fs::read(first.out_dir().join(zip)).unwrap();
        assert!(!bytes.is_empty());
        assert_eq!(
            bytes,
            std::fs::read(second.out_dir().join(zip)).unwrap(),
            "{zip} differs between two clean builds"
        );
    }
}
