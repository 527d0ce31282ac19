//! `cpu-too-new`: flags that build for a CPU newer than Lambda's hosts are refused before
//! anything is compiled or written.

mod common;

use common::*;

/// No build started and nothing written: the refusal comes before cargo runs.
#[track_caller]
fn assert_nothing_built_or_written(fixture: &Fixture) {
    assert!(!fixture.out_dir().exists(), "nothing written");
    for triple in ["x86_64-unknown-linux-gnu", "x86_64-unknown-linux-musl"] {
        assert!(
            !fixture.path().join("target").join(triple).exists(),
            "nothing built for {triple}"
        );
    }
}

#[test]
fn target_cpu_native_in_cargo_config_is_refused_and_allow_lets_it_through() {
    let fixture = Fixture::copy("basic");
    fixture.write(
        ".cargo/config.toml",
        "[target.'cfg(target_arch = \"x86_64\")']\nrustflags = [\"-C\", \"target-cpu=native\"]\n",
    );
    let refused = fixture.pack(&["-p", "fn-x86"]);
    refused.assert_code(8);
    for text in [
        "CPU check(s) failed",
        "fn-x86 (x86_64) build flags: [cpu-too-new] `-C target-cpu=native` from [target.cfg(target_arch = \"x86_64\")] rustflags in `",
        ".cargo/config.toml`",
        "Runtime.ExitError",
        "signal: illegal instruction",
        "help: remove `target-cpu=native`",
        "--allow cpu-too-new",
    ] {
        assert!(
            refused.stderr.contains(text),
            "{text:?} missing from:\n{}",
            refused.stderr
        );
    }
    assert!(!refused.stderr.contains("Compiling"), "{}", refused.stderr);
    assert_nothing_built_or_written(&fixture);

    // `plan` shows the finding on the artifact and exits with the same code.
    let plan = fixture.pack(&["plan", "-p", "fn-x86", "--message-format", "json"]);
    plan.assert_code(8);
    let shown: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
    let findings = &shown["artifacts"][0]["findings"];
    assert_eq!(findings[0]["code"], "cpu-too-new", "{findings}");
    assert_eq!(findings[0]["entry"], "build flags", "{findings}");
    assert!(!fixture.out_dir().exists(), "plan writes nothing");

    fixture
        .pack(&["-p", "fn-x86", "--allow", "cpu-too-new"])
        .assert_success();
    let manifest = manifest(&fixture.out_dir());
    let warnings = artifact(&manifest, "fn-x86")["warnings"]
        .as_array()
        .unwrap()
        .clone();
    assert!(
        warnings.iter().any(|w| {
            let w = w.as_str().unwrap();
            w.contains("[cpu-too-new]")
                && w.contains("target-cpu=native")
                && w.ends_with("(allowed)")
        }),
        "{warnings:?}"
    );
}

#[test]
fn target_cpu_native_in_rustflags_and_march_native_in_cflags_are_refused() {
    let fixture = Fixture::copy("basic");
    let refused = fixture.pack_with_env(&["-p", "fn-x86"], &[("RUSTFLAGS", "-Ctarget-cpu=native")]);
    refused.assert_code(8);
    assert!(
        refused
            .stderr
            .contains("[cpu-too-new] `-C target-cpu=native` from RUSTFLAGS"),
        "{}",
        refused.stderr
    );
    assert_nothing_built_or_written(&fixture);

    let c = fixture.pack_with_env(&["-p", "fn-x86"], &[("CFLAGS", "-O2 -march=native")]);
    c.assert_code(8);
    assert!(
        c.stderr
            .contains("[cpu-too-new] `-march=native` from CFLAGS makes C code built by `cc`"),
        "{}",
        c.stderr
    );
    assert_nothing_built_or_written(&fixture);

    // Within the floor: packs.
    fixture
        .pack_with_env(
            &["-p", "fn-x86"],
            &[("RUSTFLAGS", "-Ctarget-cpu=x86-64-v3")],
        )
        .assert_success();
}
