//! The plan rendered through a buffered shell, as `cargo lambda-pack plan` prints it.

use std::collections::BTreeSet;

use super::*;
use crate::facts::BinaryInput;
use crate::facts::builder::{elf, facts, include, unit};
use crate::metadata::Role;
use crate::output::Verbosity;
use crate::plan::PlanInputs;
use crate::target::Arch;

/// `fn-a` needs `libsqlite3.so.0`, which its runtime lacks, and was packed before as `old`.
fn plan_with_a_libs_layer() -> Plan {
    let mut function = facts(
        unit("fn-a", Role::Function, &[Arch::X86_64]),
        Arch::X86_64,
        vec![include("etc/app.toml", 5, false)],
    );
    function.libraries = vec![BinaryInput {
        name: "libsqlite3.so.0".into(),
        path: "/usr/lib/libsqlite3.so.0".into(),
        facts: elf(Arch::X86_64, 2048, true),
    }];
    crate::plan::plan(&PlanInputs {
        units: vec![function],
        builds: vec![],
        source_date_epoch: Some(1_700_000_000),
        previous: vec![("x86_64/old.zip".into(), "pkg-old".into())],
        selected_packages: BTreeSet::new(),
        workspace_packages: BTreeSet::new(),
        compile_flags: Default::default(),
        dependencies: Default::default(),
        library_origins: Default::default(),
    })
    .unwrap()
}

#[test]
fn the_listing_shows_each_artifact_its_reasons_layers_and_removals() {
    let (shell, captured) = Shell::buffered(Verbosity::Normal);
    print(
        &plan_with_a_libs_layer(),
        Path::new("/out"),
        MessageFormat::Human,
        &shell,
    )
    .unwrap();
    let captured = captured.lock().unwrap();
    assert_eq!(captured.stdout, "", "people's listing never goes to stdout");
    assert_eq!(
        captured.stderr,
        "fn-a: function zip x86_64 -> /out/x86_64/fn-a.zip\n\
         \x20   function: test\n\
         \x20   runtime provided.al2023\n\
         \x20   x86_64-unknown-linux-musl linked by rust-lld\n\
         \x20   1 included file(s)\n\
         \x20   bootstrap: /var/task/bootstrap, the function's own binary\n\
         \x20   zip: 3.0 kB unzipped with layers fn-a-libs, within the 250.0 MB limit\n\
         \x20   layers, in merge order: fn-a-libs\n\
         \x20   755     1000 B bootstrap\n\
         \x20   755        0 B etc/\n\
         \x20   644        5 B etc/app.toml\n\
         fn-a-libs: layer zip x86_64 -> /out/x86_64/fn-a-libs.zip\n\
         \x20   layer: shared libraries `fn-a` needs and provided.al2023 lacks: libsqlite3.so.0\n\
         \x20   runtime provided.al2023\n\
         \x20   x86_64-unknown-linux-musl linked by rust-lld\n\
         \x20   755        0 B lib/\n\
         \x20   755     2.0 kB lib/libsqlite3.so.0\n\
         remove /out/x86_64/old.zip (no longer produced)\n"
    );
}

#[test]
fn json_goes_to_stdout_and_nothing_to_stderr() {
    let (shell, captured) = Shell::buffered(Verbosity::Normal);
    print(
        &plan_with_a_libs_layer(),
        Path::new("/out"),
        MessageFormat::Json,
        &shell,
    )
    .unwrap();
    let captured = captured.lock().unwrap();
    assert_eq!(captured.stderr, "");
    let json: serde_json::Value = serde_json::from_str(&captured.stdout).unwrap();
    let names: Vec<&str> = json["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["fn-a", "fn-a-libs"]);
    assert_eq!(
        json["artifacts"][0]["layers"],
        serde_json::json!(["fn-a-libs"])
    );
    assert!(
        json["artifacts"][0].get("upload").is_none(),
        "the plan's JSON shows no upload: {}",
        json["artifacts"][0]
    );
}
