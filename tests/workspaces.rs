//! Workspaces laid out as real projects are: a root library with the functions in member crates,
//! a function published for both architectures, a crate configured the cargo-lambda way, a
//! function kept as an example (`fixtures/mixed`, dependency-free).

mod common;

use common::*;

#[test]
fn a_root_library_names_the_members_that_have_binaries() {
    let fixture = Fixture::copy("mixed");
    let run = fixture.pack(&["--compiler", "cargo"]);
    run.assert_code(5);
    for text in [
        "nothing to pack: no binary or cdylib target in `mixed-app`",
        "note: members with binaries: `orders` (bin orders), `reports` (bin reports)",
        "help: pack them all with `--workspace`, or one with `-p <member>` (e.g. `-p orders`)",
    ] {
        assert!(
            run.stderr.contains(text),
            "{text:?} missing from:\n{}",
            run.stderr
        );
    }
    assert!(!fixture.out_dir().join("manifest.json").exists());
    // The suggestion works.
    let run = fixture.pack(&["--workspace", "--compiler", "cargo"]);
    run.assert_success();
    let manifest = manifest(&fixture.out_dir());
    let mut names: Vec<(&str, &str)> = manifest["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["name"].as_str().unwrap(), a["arch"].as_str().unwrap()))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            ("orders", "arm64"),
            ("orders", "x86_64"),
            ("reports", "x86_64")
        ]
    );
}

#[test]
fn an_arch_list_packs_one_artifact_per_architecture() {
    let fixture = Fixture::copy("mixed");
    let run = fixture.pack(&["-p", "orders", "--compiler", "cargo"]);
    run.assert_success();
    let out = fixture.out_dir();
    let manifest = manifest(&out);
    let entries: Vec<&serde_json::Value> =
        manifest["artifacts"].as_array().unwrap().iter().collect();
    assert_eq!(entries.len(), 2, "{manifest:#}");
    for (arch, machine, triple) in [
        ("x86_64", EM_X86_64, "x86_64-unknown-linux-musl"),
        ("arm64", EM_AARCH64, "aarch64-unknown-linux-musl"),
    ] {
        let entry = entries
            .iter()
            .find(|e| e["arch"] == arch)
            .unwrap_or_else(|| panic!("no {arch} entry in {manifest:#}"));
        assert_eq!(entry["name"], "orders");
        assert_eq!(entry["kind"], "function");
        assert_eq!(entry["target"], triple);
        assert_eq!(entry["path"], format!("{arch}/orders.zip"));
        let zip = out.join(entry["path"].as_str().unwrap());
        let bootstrap = python_entry(&zip, "bootstrap");
        assert_eq!(
            bootstrap.elf_machine,
            Some(machine),
            "{arch}: the bootstrap's e_machine"
        );
        assert!(zipinfo(&zip).contains("bootstrap"));
    }
    // --arch still overrides the list.
    let run = fixture.pack(&[
        "plan",
        "-p",
        "orders",
        "--arch",
        "arm64",
        "--compiler",
        "cargo",
        "--message-format",
        "json",
    ]);
    run.assert_success();
    let plan: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let archs: Vec<&str> = plan["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["arch"].as_str().unwrap())
        .collect();
    assert_eq!(archs, ["arm64"], "{}", run.stdout);
}

#[test]
fn cargo_lambda_settings_are_honoured_or_noted() {
    let fixture = Fixture::copy("mixed");
    // cargo-lambda's workspace-level variables and a per-bin table, as its users write them.
    let mut root = fixture.read("Cargo.toml");
    root.push_str("\n[workspace.metadata.lambda.env]\nSTAGE = \"prod\"\n\n[workspace.metadata.lambda.watch]\nport = 9000\n");
    fixture.write("Cargo.toml", &root);
    let mut reports = fixture.read("functions/reports/Cargo.toml");
    reports.push_str("\n[package.metadata.lambda.bin.reports.env]\nREPORT_FORMAT = \"pdf\"\n");
    // cargo-lambda's deploy.layers: layer version ARNs, attached in order.
    let observability = "arn:aws:lambda:eu-west-1:123456789012:layer:observability:7";
    let reports = reports.replace(
        "timeout = 30\n",
        &format!("timeout = 30\nlayers = [\"{observability}\"]\n"),
    );
    fixture.write("functions/reports/Cargo.toml", &reports);
    let run = fixture.pack(&["-p", "reports", "--compiler", "cargo"]);
    run.assert_success();
    let out = fixture.out_dir();
    let manifest = manifest(&out);
    let zip = out.join(artifact(&manifest, "reports")["path"].as_str().unwrap());
    // `include = ["templates"]` of [package.metadata.lambda.build] is honoured.
    let names: Vec<String> = python_entries(&zip).into_iter().map(|e| e.name).collect();
    assert!(
        names.contains(&"templates/report.html".to_string()),
        "{names:?}"
    );
    let manifest_path = fixture.path().join("functions/reports/Cargo.toml");
    let file = manifest_path.display();
    for text in [
        format!(
            "note: `arm64` in [package.metadata.lambda.build] in `{file}` (cargo-lambda) is not read; lambda-pack equivalent: `arch = \"arm64\"` in [package.metadata.lambda-pack], or --arch arm64"
        ),
        format!(
            "note: `flavour` in [package.metadata.lambda.build] in `{file}` (cargo-lambda) is not a key lambda-pack knows and is not read"
        ),
        format!(
            "note: [workspace.metadata.lambda] watch in `{}` (cargo-lambda) is not read; lambda-pack equivalent: `cargo lambda-pack verify` runs the packed functions locally",
            fixture.path().join("Cargo.toml").display()
        ),
        format!(
            "note: `{}` is cargo-lambda's configuration file and is not read",
            fixture.path().join("CargoLambda.toml").display()
        ),
    ] {
        assert!(
            run.stderr.contains(&text),
            "{text:?} missing from:\n{}",
            run.stderr
        );
    }
    // One note per key not taken (deploy's memory and timeout are taken), and none claiming
    // the variables are ignored.
    assert_eq!(
        run.stderr.matches("(cargo-lambda)").count(),
        3,
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("`memory`"), "{}", run.stderr);
    assert!(!run.stderr.contains("env"), "{}", run.stderr);
    // The variables of [workspace.metadata.lambda.env], [package.metadata.lambda.env],
    // [package.metadata.lambda.deploy] env and the bin's table become the function's `env`, as
    // if set with lambda-pack's own keys at those levels.
    assert_eq!(
        artifact(&manifest, "reports")["env"],
        serde_json::json!({
            "REPORT_BUCKET": "reports",
            "REPORT_FORMAT": "pdf",
            "RUST_LOG": "info",
            "STAGE": "prod"
        })
    );
    // deploy.memory is the function's memory, recorded for verify and deploy alike.
    assert_eq!(artifact(&manifest, "reports")["memory"], 256);
    assert_eq!(
        artifact(&manifest, "reports")["arn_layers"],
        serde_json::json!([{ "arn": observability, "position": 0 }])
    );
}

#[test]
fn examples_are_packed_as_functions() {
    let fixture = Fixture::copy("mixed");
    let run = fixture.pack(&[
        "-p",
        "reports",
        "--example",
        "nightly",
        "--compiler",
        "cargo",
    ]);
    run.assert_success();
    let out = fixture.out_dir();
    let manifest = manifest(&out);
    let names: Vec<&str> = manifest["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["nightly"],
        "--example narrows like cargo's target selection"
    );
    let entry = artifact(&manifest, "nightly");
    assert_eq!(entry["kind"], "function");
    assert_eq!(entry["path"], "x86_64/nightly.zip");
    let zip = out.join("x86_64/nightly.zip");
    assert_eq!(python_entry(&zip, "bootstrap").elf_machine, Some(EM_X86_64));
    assert!(
        run.stderr.contains("Packed function nightly"),
        "{}",
        run.stderr
    );

    // --examples with --bin: every example, and the named bin.
    let run = fixture.pack(&[
        "plan",
        "-p",
        "reports",
        "--examples",
        "--bin",
        "reports",
        "--compiler",
        "cargo",
    ]);
    run.assert_success();
    assert!(
        run.stderr
            .contains("example `nightly` selected with --example/--examples"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("x86_64/reports.zip"), "{}", run.stderr);

    let run = fixture.pack(&[
        "-p",
        "reports",
        "--example",
        "weekly",
        "--compiler",
        "cargo",
    ]);
    run.assert_code(3);
    assert!(
        run.stderr
            .contains("no example target named `weekly` in the selected packages"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("available examples: nightly"),
        "{}",
        run.stderr
    );
}

/// Each glibc pin keeps its own build state: after al2023 → al2, switching back to al2023 (and
/// to al2 again) compiles nothing. Before, every switch recompiled every crate.
#[test]
fn switching_the_runtime_back_compiles_nothing() {
    let fixture = Fixture::copy("mixed");
    let pack = |runtime: &str| {
        let run = fixture.pack(&[
            "-p",
            "orders",
            "--arch",
            "x86_64",
            "--compiler",
            "zig",
            "--runtime",
            runtime,
        ]);
        run.assert_success();
        let manifest = manifest(&fixture.out_dir());
        let glibc = artifact(&manifest, "orders")["glibc"]
            .as_str()
            .unwrap()
            .to_string();
        (run.stderr, glibc)
    };
    let (first, glibc) = pack("provided.al2023");
    assert!(first.contains("Compiling orders"), "{first}");
    assert_eq!(glibc, "2.34");
    // That binary, pinned for provided.al2023, checked against provided.al2: the fix is to pack
    // it for provided.al2, not another compiler.
    let pinned = fixture
        .path()
        .join("target/x86_64-unknown-linux-gnu/release/orders");
    let mut inspect = lambda_pack();
    inspect
        .arg("inspect")
        .arg(&pinned)
        .args(["--runtime", "provided.al2"]);
    let output = inspect.output().unwrap();
    // The listing (findings and their help) is stdout's data; the closing error is stderr's.
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(8), "{stdout}{stderr}");
    assert!(
        stdout.contains(
            "help: needs GLIBC_2.34, provided.al2 has 2.26; it is pinned for provided.al2023 (glibc 2.34): pack it for provided.al2 (`--runtime provided.al2` pins glibc 2.26), or build for musl"
        ),
        "{stdout}"
    );
    let (switch, glibc) = pack("provided.al2");
    assert!(switch.contains("Compiling orders"), "{switch}");
    assert_eq!(glibc, "2.26");
    // The 2.26 build lives in its own target directory; the 2.34 one where cargo puts it.
    let target = fixture.path().join("target");
    assert!(
        target
            .join("lambda-pack-glibc-2.26/x86_64-unknown-linux-gnu/release/orders")
            .is_file()
    );
    assert!(
        target
            .join("x86_64-unknown-linux-gnu/release/orders")
            .is_file()
    );
    for (runtime, glibc_wanted) in [("provided.al2023", "2.34"), ("provided.al2", "2.26")] {
        let (back, glibc) = pack(runtime);
        assert_eq!(glibc, glibc_wanted);
        assert!(
            !back.contains("Compiling"),
            "switching back to {runtime} compiled again:\n{back}"
        );
        assert!(back.contains("Finished `release` profile"), "{back}");
    }
}

/// A bin that needs a feature (`required-features`), as projects keep set-up tools beside their
/// functions: cargo builds it only with the feature on, and so does the pack.
#[test]
fn a_bin_with_required_features_is_skipped_until_they_are_enabled() {
    let fixture = Fixture::copy("mixed");
    let manifest_path = "functions/orders/Cargo.toml";
    let mut toml = fixture.read(manifest_path);
    toml.push_str(
        "\n[features]\n__prepare = []\n\n[[bin]]\nname = \"prepare\"\npath = \"src/bin/prepare.rs\"\nrequired-features = [\"__prepare\"]\n",
    );
    fixture.write(manifest_path, &toml);
    fixture.write(
        "functions/orders/src/bin/prepare.rs",
        "fn main() { println!(\"creating tables\"); }\n",
    );
    let args = ["-p", "orders", "--arch", "x86_64", "--compiler", "cargo"];
    let run = fixture.pack(&args);
    run.assert_success();
    let warning =
        "bin `prepare` of package `orders` is skipped: it requires the features `__prepare`";
    assert!(run.stderr.contains(warning), "{}", run.stderr);
    assert!(
        run.stderr.contains("pack it with `-F orders/__prepare`"),
        "{}",
        run.stderr
    );
    assert_eq!(artifact_names(&fixture.out_dir()), ["orders"]);

    // The plan says the same, in its JSON too.
    let mut plan_args = vec!["plan", "--message-format", "json"];
    plan_args.extend(args);
    let plan = fixture.pack(&plan_args);
    plan.assert_success();
    let plan: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
    let warnings = plan["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains(warning)),
        "{warnings:?}"
    );

    // Naming it without the feature is cargo's error; with the feature it is packed.
    let run = fixture.pack(&["-p", "orders", "--bin", "prepare", "--compiler", "cargo"]);
    run.assert_code(3);
    assert!(
        run.stderr
            .contains("bin `prepare` of package `orders` requires the features: `__prepare`"),
        "{}",
        run.stderr
    );
    let mut with_feature = args.to_vec();
    with_feature.extend(["-F", "orders/__prepare"]);
    fixture.pack(&with_feature).assert_success();
    assert_eq!(artifact_names(&fixture.out_dir()), ["orders", "prepare"]);
}

/// A local development server beside the Lambda bin, as web projects keep one: it never reads
/// `AWS_LAMBDA_RUNTIME_API`, so it is not packed unless its role says so.
#[test]
fn a_bin_that_is_not_a_lambda_binary_is_skipped_refused_by_name_and_packed_when_its_role_says() {
    let fixture = Fixture::copy("mixed");
    fixture.write(
        "functions/reports/src/bin/local.rs",
        "fn main() { println!(\"serving on 127.0.0.1:3000\"); }\n",
    );
    let args = ["-p", "reports", "--arch", "x86_64", "--compiler", "cargo"];
    let run = fixture.pack(&args);
    run.assert_success();
    let warning = "bin `local` of package `reports` (x86_64) is skipped: it is not a Lambda binary (it never reads AWS_LAMBDA_RUNTIME_API";
    assert!(run.stderr.contains(warning), "{}", run.stderr);
    assert!(!run.stderr.contains("bin `reports`"), "{}", run.stderr);
    assert_eq!(artifact_names(&fixture.out_dir()), ["reports"]);
    let mut plan_args = vec!["plan", "--message-format", "json"];
    plan_args.extend(args);
    let plan = fixture.pack(&plan_args);
    plan.assert_success();
    let plan: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
    assert!(
        plan["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains(warning)),
        "{plan:#}"
    );

    // Named, it is a finding that stops the pack.
    let run = fixture.pack(&[
        "-p",
        "reports",
        "--bin",
        "local",
        "--arch",
        "x86_64",
        "--compiler",
        "cargo",
    ]);
    run.assert_code(8);
    assert!(run.stderr.contains("not-lambda-binary"), "{}", run.stderr);

    // Its role set, it is packed as a function.
    let mut toml = fixture.read("functions/reports/Cargo.toml");
    toml.push_str("\n[package.metadata.lambda-pack.bin.local]\nrole = \"function\"\n");
    fixture.write("functions/reports/Cargo.toml", &toml);
    fixture.pack(&args).assert_success();
    assert_eq!(artifact_names(&fixture.out_dir()), ["local", "reports"]);
}

#[test]
fn a_library_that_keeps_its_function_as_an_example_is_told_to_ask_for_it() {
    // A library crate whose Lambda function is `examples/demo.rs` (as axum integration crates
    // ship theirs): nothing to pack by default, and the error says how to pack the example.
    let fixture = Fixture::copy("basic");
    fixture.write(
        "shared/examples/demo.rs",
        "fn main() {\n    println!(\"{:?}\", std::env::var(\"AWS_LAMBDA_RUNTIME_API\"));\n}\n",
    );
    let run = fixture.pack(&["-p", "shared", "--compiler", "cargo"]);
    run.assert_code(5);
    assert!(
        run.stderr.contains(
            "note: examples of the selection: `demo` (package `shared`), built only when asked for, as cargo builds them (`--example demo`, or `--examples` for all)"
        ),
        "{}",
        run.stderr
    );
    assert!(!fixture.out_dir().join("manifest.json").exists());
    // What it says works; plan's build line names the example (it listed an empty `bins `).
    let plan = fixture.pack(&[
        "plan",
        "-p",
        "shared",
        "--example",
        "demo",
        "--compiler",
        "cargo",
    ]);
    plan.assert_success();
    assert!(
        plan.stderr.contains(": packages shared; examples demo\n"),
        "{}",
        plan.stderr
    );
    let run = fixture.pack(&["-p", "shared", "--example", "demo", "--compiler", "cargo"]);
    run.assert_success();
    assert_eq!(artifact_names(&fixture.out_dir()), ["demo"]);
}
