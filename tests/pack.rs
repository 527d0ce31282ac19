//! End-to-end packing of real fixture workspaces with real cargo, read back with independent readers.

mod common;

use common::*;
use std::process::Command;

/// The plain path: musl targets linked by the toolchain's rust-lld, no zig involved.
#[test]
fn musl_pack_cross_compiles_both_architectures_into_lambda_zips() {
    let fixture = Fixture::copy("basic");
    let run = fixture.pack(&["--compiler", "cargo"]);
    run.assert_success();
    let out = fixture.out_dir();
    let manifest = manifest(&out);
    assert_eq!(manifest["schema_version"], 1);
    let names: Vec<&str> = manifest["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    // `shared` has no binary and is not packed; `multi` gives one function per bin.
    assert_eq!(names, ["fn-x86", "multi-a", "fn-arm", "multi-b"]);

    for (name, arch, machine, triple) in [
        ("fn-x86", "x86_64", EM_X86_64, "x86_64-unknown-linux-musl"),
        ("multi-a", "x86_64", EM_X86_64, "x86_64-unknown-linux-musl"),
        ("fn-arm", "arm64", EM_AARCH64, "aarch64-unknown-linux-musl"),
        ("multi-b", "arm64", EM_AARCH64, "aarch64-unknown-linux-musl"),
    ] {
        let entry = artifact(&manifest, name);
        assert_eq!(entry["arch"], arch);
        assert_eq!(entry["target"], triple);
        assert_eq!(entry["kind"], "function");
        assert_eq!(entry["format"], "zip");
        assert_eq!(entry["runtime"], "provided.al2023");
        assert_eq!(entry["path"], format!("{arch}/{name}.zip"));
        let zip = out.join(entry["path"].as_str().unwrap());
        let bootstrap = python_entry(&zip, "bootstrap");
        assert_eq!(
            bootstrap.elf_machine,
            Some(machine),
            "{name}: bootstrap is built for {arch}"
        );
        assert_eq!(bootstrap.create_system, 3, "{name}: version made by Unix");
        assert_eq!(
            bootstrap.mode, 0o100755,
            "{name}: bootstrap is a regular file 0755"
        );
        assert_eq!(bootstrap.compress_type, 8, "{name}: Deflate");
        assert_eq!(
            bootstrap.extra_len, 0,
            "{name}: no host-dependent extra fields"
        );
        assert_eq!(bootstrap.date_time, [1980, 1, 1, 0, 0, 0]);
        assert_eq!(
            entry["size_zipped"].as_u64().unwrap(),
            std::fs::metadata(&zip).unwrap().len()
        );
        let bytes = std::fs::read(&zip).unwrap();
        assert_eq!(entry["sha256"].as_str().unwrap(), sha256_hex(&bytes));
        assert_eq!(entry["code_sha256"].as_str().unwrap(), code_sha256(&bytes));
    }

    // Info-ZIP agrees on the modes and the Unix origin of every entry.
    let listing = zipinfo(&out.join("x86_64/fn-x86.zip"));
    let line = |name: &str| {
        listing
            .lines()
            .find(|l| l.ends_with(&format!(" {name}")))
            .unwrap_or_else(|| panic!("{name} missing:\n{listing}"))
            .to_string()
    };
    assert!(
        line("bootstrap").starts_with("-rwxr-xr-x") && line("bootstrap").contains(" unx "),
        "{listing}"
    );
    // The include with a rename, and the glob keeping its paths.
    assert!(line("etc/app.toml").starts_with("-rw-r--r--"), "{listing}");
    assert!(
        line("assets/readme.txt").starts_with("-rw-r--r--"),
        "{listing}"
    );
    assert!(line("assets/img/logo.png").contains(" unx "), "{listing}");
    assert!(line("etc/").starts_with("drwxr-xr-x"), "{listing}");
    assert!(
        !listing.contains("config/app.toml"),
        "the renamed include keeps only its destination:\n{listing}"
    );

    // The human summary is on stderr, stdout stays empty without --message-format json.
    assert!(run.stdout.is_empty(), "stdout: {}", run.stdout);
    assert!(
        run.stderr.contains("artifact  kind      arch"),
        "{}",
        run.stderr
    );
}

/// The zig path: gnu targets with glibc pinned to the runtime's (al2 here, 2.26).
#[test]
fn zig_pack_pins_glibc_for_both_architectures() {
    let fixture = Fixture::copy("basic");
    fixture
        .pack(&[
            "--compiler",
            "zig",
            "--runtime",
            "provided.al2",
            "-p",
            "fn-x86",
            "-p",
            "fn-arm",
        ])
        .assert_success();
    let out = fixture.out_dir();
    let manifest = manifest(&out);
    for (name, machine, triple) in [
        ("fn-x86", EM_X86_64, "x86_64-unknown-linux-gnu"),
        ("fn-arm", EM_AARCH64, "aarch64-unknown-linux-gnu"),
    ] {
        let entry = artifact(&manifest, name);
        assert_eq!(entry["target"], triple);
        assert_eq!(entry["runtime"], "provided.al2");
        assert_eq!(entry["glibc"], "2.26");
        let zip = out.join(entry["path"].as_str().unwrap());
        assert_eq!(python_entry(&zip, "bootstrap").elf_machine, Some(machine));
        // The newest glibc symbol version the binary needs is within provided.al2's 2.26.
        let bootstrap = extract(&zip, "bootstrap");
        let newest = newest_glibc(&bootstrap);
        assert!(
            newest <= (2, 26),
            "{name} needs GLIBC_{}.{}",
            newest.0,
            newest.1
        );
    }
    assert_eq!(
        manifest["artifacts"].as_array().unwrap().len(),
        2,
        "-p selects only the named packages"
    );
}

#[test]
fn zips_are_identical_across_clean_target_dirs() {
    let fixture = Fixture::copy("basic");
    let first = fixture.path().join("target-one");
    let second = fixture.path().join("target-two");
    for target in [&first, &second] {
        fixture
            .pack(&[
                "--compiler",
                "cargo",
                "--target-dir",
                target.to_str().unwrap(),
            ])
            .assert_success();
    }
    let one = manifest(&first.join("lambda-pack"));
    let two = manifest(&second.join("lambda-pack"));
    assert_eq!(
        one, two,
        "same sources give byte-identical artifacts and manifest"
    );
    let bytes_one = std::fs::read(first.join("lambda-pack/x86_64/fn-x86.zip")).unwrap();
    let bytes_two = std::fs::read(second.join("lambda-pack/x86_64/fn-x86.zip")).unwrap();
    assert_eq!(bytes_one, bytes_two);
}

#[test]
fn source_date_epoch_sets_every_timestamp() {
    let fixture = Fixture::copy("basic");
    fixture
        .pack_with_env(
            &["--compiler", "cargo", "-p", "fn-x86"],
            &[("SOURCE_DATE_EPOCH", "1700000000")],
        )
        .assert_success();
    for entry in python_entries(&fixture.out_dir().join("x86_64/fn-x86.zip")) {
        assert_eq!(
            entry.date_time,
            [2023, 11, 14, 22, 13, 20],
            "{}",
            entry.name
        );
    }
}

#[test]
fn removed_binary_is_not_packed_again_and_its_zip_is_removed() {
    let fixture = Fixture::copy("basic");
    fixture
        .pack(&["--compiler", "cargo", "-p", "multi"])
        .assert_success();
    assert!(fixture.out_dir().join("arm64/multi-b.zip").is_file());
    // Remove the bin from the package; its old binary stays in target/ from the first build.
    let manifest_text = fixture.read("multi/Cargo.toml");
    let without_b = manifest_text
        .replace(
            "[[bin]]\nname = \"multi-b\"\npath = \"src/bin/multi-b.rs\"\n",
            "",
        )
        .replace(
            "[package.metadata.lambda-pack.bin.multi-b]\narch = \"arm64\"\n",
            "",
        );
    assert_ne!(manifest_text, without_b);
    fixture.write("multi/Cargo.toml", &without_b);
    std::fs::remove_file(fixture.path().join("multi/src/bin/multi-b.rs")).unwrap();
    assert!(
        fixture
            .path()
            .join("target/aarch64-unknown-linux-musl/release/multi-b")
            .is_file(),
        "the stale binary is still in target/"
    );

    let run = fixture.pack(&["--compiler", "cargo", "-p", "multi"]);
    run.assert_success();
    let manifest = manifest(&fixture.out_dir());
    let names: Vec<&str> = manifest["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["multi-a"]);
    assert!(
        !fixture.out_dir().join("arm64/multi-b.zip").exists(),
        "the stale ZIP is removed"
    );
    assert!(run.stderr.contains("Removed"), "{}", run.stderr);
}

#[test]
fn plan_writes_nothing_and_shows_what_pack_does() {
    let fixture = Fixture::copy("basic");
    let out = fixture.out_dir();
    let before = snapshot(&out);
    let run = fixture.pack(&["plan", "--compiler", "cargo", "--message-format", "json"]);
    run.assert_success();
    assert_eq!(
        snapshot(&out),
        before,
        "plan leaves the output directory as it was"
    );
    let plan: serde_json::Value = serde_json::from_str(&run.stdout).expect("plan JSON on stdout");
    let planned: Vec<(String, String)> = plan["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_string(),
                a["path"].as_str().unwrap().to_string(),
            )
        })
        .collect();

    fixture.pack(&["--compiler", "cargo"]).assert_success();
    let manifest = manifest(&out);
    let packed: Vec<(String, String)> = manifest["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_string(),
                a["path"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(planned, packed);
    for (planned, packed) in plan["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .zip(manifest["artifacts"].as_array().unwrap())
    {
        assert_eq!(planned["size_unzipped"], packed["size_unzipped"]);
        assert_eq!(planned["target"], packed["target"]);
    }

    // The human plan names every artifact and its entries.
    let human = fixture.pack(&["plan", "--compiler", "cargo"]);
    human.assert_success();
    assert!(
        human.stderr.contains("fn-x86: function zip x86_64"),
        "{}",
        human.stderr
    );
    assert!(human.stderr.contains("etc/app.toml"), "{}", human.stderr);
    assert!(
        human.stderr.contains("nothing was written"),
        "{}",
        human.stderr
    );
}

#[test]
fn message_format_json_prints_the_manifest_on_stdout() {
    let fixture = Fixture::copy("basic");
    let run = fixture.pack(&[
        "--compiler",
        "cargo",
        "--message-format",
        "json",
        "-p",
        "fn-arm",
    ]);
    run.assert_success();
    let printed: serde_json::Value =
        serde_json::from_str(&run.stdout).expect("only the manifest on stdout");
    assert_eq!(printed, manifest(&fixture.out_dir()));
}

#[test]
fn second_run_leaves_unchanged_artifacts_untouched() {
    let fixture = Fixture::copy("basic");
    fixture.pack(&["--compiler", "cargo"]).assert_success();
    let before = snapshot(&fixture.out_dir());
    std::thread::sleep(std::time::Duration::from_millis(20));
    let run = fixture.pack(&["--compiler", "cargo"]);
    run.assert_success();
    assert_eq!(
        snapshot(&fixture.out_dir()),
        before,
        "same bytes, same mtimes"
    );
    assert!(run.stderr.contains("Fresh"), "{}", run.stderr);
}

fn extract(zip: &std::path::Path, name: &str) -> Vec<u8> {
    let output = std::process::Command::new("unzip")
        .arg("-p")
        .arg(zip)
        .arg(name)
        .output()
        .expect("unzip");
    assert!(output.status.success());
    output.stdout
}

/// The newest `GLIBC_x.y` version string in a binary's bytes (they sit in .dynstr).
fn newest_glibc(bytes: &[u8]) -> (u32, u32) {
    let text = String::from_utf8_lossy(bytes);
    text.match_indices("GLIBC_2.")
        .filter_map(|(at, _)| {
            let rest = &text[at + 8..];
            let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
            digits.parse().ok().map(|minor| (2, minor))
        })
        .max()
        .expect("a dynamically linked gnu binary names GLIBC versions")
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn code_sha256(bytes: &[u8]) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(bytes))
}

/// zig's setup (wrapper scripts, `zig cc -E -v` probes) is remembered in the target directory: a
/// second run starts no zig at all, cargo gets the very same environment (so nothing rebuilds),
/// and a variable that can change the setup makes it run again.
#[test]
fn second_zig_run_reuses_the_setup_and_gives_cargo_the_same_environment() {
    let fixture = Fixture::copy("basic");
    let bin = fixture.path().join("logging-bin");
    std::fs::create_dir_all(&bin).unwrap();
    // zig that logs each call before running the real one (the wrappers call it back for links).
    let real_zig = Command::new("python3")
        .args([
            "-c",
            "import os, ziglang; print(os.path.join(os.path.dirname(ziglang.__file__), 'zig'))",
        ])
        .output()
        .expect("python3 with ziglang (scripts/setup.sh installs it)");
    let real_zig = String::from_utf8(real_zig.stdout).unwrap();
    let zig_log = fixture.path().join("zig.log");
    let logging_zig = bin.join("zig");
    std::fs::write(
        &logging_zig,
        format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
            zig_log.display(),
            real_zig.trim()
        ),
    )
    .unwrap();
    let cargo_log = fixture.path().join("cargo-log");
    let logging_cargo = logging_cargo(&bin, &cargo_log);
    std::fs::set_permissions(
        &logging_zig,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let pack = |extra_env: &[(&str, &str)]| {
        let _ = std::fs::remove_file(&zig_log);
        cargo_builds(&cargo_log);
        let mut env = vec![
            ("CARGO_ZIGBUILD_ZIG_COMMAND", logging_zig.to_str().unwrap()),
            ("CARGO", logging_cargo.to_str().unwrap()),
        ];
        env.extend_from_slice(extra_env);
        let run =
            fixture.pack_with_env(&["--compiler", "zig", "-p", "fn-x86", "-p", "fn-arm"], &env);
        run.assert_success();
        let zig_calls = std::fs::read_to_string(&zig_log).unwrap_or_default();
        let builds = cargo_builds(&cargo_log);
        (run, zig_calls, builds)
    };

    let (_, zig_calls, first_builds) = pack(&[]);
    assert!(
        zig_calls.contains("-E"),
        "the first run sets zig up:\n{zig_calls}"
    );
    assert_eq!(first_builds.len(), 2, "one cargo build per target");
    assert!(
        first_builds[0].contains("CC_x86_64_unknown_linux_gnu="),
        "{}",
        first_builds[0]
    );

    // Unrelated variables (a CI job's id, a benchmark's padding) do not count.
    let (run, zig_calls, builds) = pack(&[("UNRELATED_RUN_ID", "12345")]);
    assert_eq!(
        zig_calls, "",
        "nothing to set up or link, so no zig call at all"
    );
    assert_eq!(builds, first_builds, "cargo sees the same environment");
    assert!(!run.stderr.contains("Compiling"), "{}", run.stderr);
    let cache = fixture.path().join("target/lambda-pack-cache/zig-env.json");
    let remembered: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cache).unwrap()).unwrap();
    assert!(
        remembered["targets"]["x86_64-unknown-linux-gnu.2.34"].is_object(),
        "{remembered:#}"
    );
    assert!(
        remembered["targets"]["aarch64-unknown-linux-gnu.2.34"].is_object(),
        "{remembered:#}"
    );

    // A variable cargo-zigbuild reads (through cargo's configuration) sets zig up again; what
    // comes out is the same, so still nothing rebuilds.
    let (run, zig_calls, builds) = pack(&[("CARGO_ZIGBUILD_CACHE_HINT", "1")]);
    assert!(zig_calls.contains("-E"), "{zig_calls}");
    assert_eq!(builds.len(), 2);
    assert!(!run.stderr.contains("Compiling"), "{}", run.stderr);
}

/// The previous run's first cargo build starts while the workspace is read: adopted when the run
/// needs that very command, and otherwise waited for and ignored, the right build running after.
#[test]
fn the_first_build_starts_early_and_is_used_only_when_it_is_the_same_command() {
    let fixture = Fixture::copy("basic");
    let cargo_log = fixture.path().join("cargo-log");
    let cargo = logging_cargo(&fixture.path().join("logging-bin"), &cargo_log);
    let pack = |args: &[&str]| {
        cargo_builds(&cargo_log);
        let mut all = vec!["--compiler", "cargo", "-v"];
        all.extend_from_slice(args);
        let run = fixture.pack_with_env(&all, &[("CARGO", cargo.to_str().unwrap())]);
        run.assert_success();
        let builds = cargo_builds(&cargo_log);
        (run, builds)
    };

    let (run, builds) = pack(&["-p", "fn-x86"]);
    assert!(!run.stderr.contains("started early"), "{}", run.stderr);
    assert_eq!(builds.len(), 1);
    let records: Vec<_> =
        std::fs::read_dir(fixture.path().join("target/lambda-pack-cache/early-build"))
            .unwrap()
            .collect();
    assert_eq!(records.len(), 1, "one record, this workspace's");

    // Same request: the early build is the run's build; cargo ran once.
    let (run, builds) = pack(&["-p", "fn-x86"]);
    assert!(run.stderr.contains("(started early"), "{}", run.stderr);
    assert_eq!(builds.len(), 1, "{builds:?}");

    // Another request: the early build (fn-x86's) runs to its end unused, then fn-arm's builds.
    let (run, builds) = pack(&["-p", "fn-arm"]);
    assert!(!run.stderr.contains("started early"), "{}", run.stderr);
    assert_eq!(builds.len(), 2, "{builds:?}");
    assert!(builds[0].contains("--package fn-x86"), "{}", builds[0]);
    assert!(builds[1].contains("--package fn-arm"), "{}", builds[1]);
    let manifest = manifest(&fixture.out_dir());
    let zip = fixture
        .out_dir()
        .join(artifact(&manifest, "fn-arm")["path"].as_str().unwrap());
    assert_eq!(
        python_entry(&zip, "bootstrap").elf_machine,
        Some(EM_AARCH64)
    );
    assert!(
        !run.stderr.contains("Blocking"),
        "the unused build finished before the right one started: {}",
        run.stderr
    );

    // Nothing starts early under `plan`, which must not build what the plan does not need.
    cargo_builds(&cargo_log);
    let plan = fixture.pack_with_env(
        &["plan", "--compiler", "cargo", "-p", "fn-x86"],
        &[("CARGO", cargo.to_str().unwrap())],
    );
    assert_eq!(plan.code(), 0, "{}", plan.stderr);
    let builds = cargo_builds(&cargo_log);
    assert_eq!(builds.len(), 1, "{builds:?}");
    assert!(builds[0].contains("--package fn-x86"), "{}", builds[0]);
}

/// A workspace of one function, `fn-<name>` (its role set: the stand-in never reads the Runtime
/// API's variable), whose binary holds `workspace-<name>-code` and
/// whose build script writes `build-script-ran` in the workspace root each time it runs (and,
/// with `LAMBDA_PACK_TEST_GATE` set, waits for that file to exist first, holding cargo's lock).
fn marked_workspace(root: &std::path::Path, name: &str) {
    let package = root.join(format!("fn-{name}"));
    std::fs::create_dir_all(package.join("src")).unwrap();
    std::fs::write(
        root.join("Cargo.toml"),
        format!("[workspace]\nresolver = \"2\"\nmembers = [\"fn-{name}\"]\n"),
    )
    .unwrap();
    std::fs::write(
        package.join("Cargo.toml"),
        format!(
            "[package]\nname = \"fn-{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[package.metadata.lambda-pack]\narch = \"x86_64\"\nrole = \"function\"\n"
        ),
    )
    .unwrap();
    std::fs::write(
        package.join("src/main.rs"),
        format!("fn main() {{ println!(\"workspace-{name}-code\"); }}\n"),
    )
    .unwrap();
    std::fs::write(
        package.join("build.rs"),
        r#"use std::path::PathBuf;
fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("..");
    let marker = root.join("build-script-ran");
    // Runs again whenever the marker is gone or newer than the last run.
    println!("cargo:rerun-if-changed={}", marker.display());
    std::fs::write(&marker, "ran\n").unwrap();
    if let Ok(gate) = std::env::var("LAMBDA_PACK_TEST_GATE") {
        let started = std::time::Instant::now();
        while !std::path::Path::new(&gate).exists() && started.elapsed().as_secs() < 120 {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}
"#,
    )
    .unwrap();
}

/// Every file under `root` but `target/` and the build script's marker, with its bytes.
fn tree_bytes(root: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut files: Vec<_> = walkdir::WalkDir::new(root)
        .into_iter()
        .filter_entry(|e| e.file_name() != "target" && e.file_name() != "build-script-ran")
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| (e.path().to_path_buf(), std::fs::read(e.path()).unwrap()))
        .collect();
    files.sort();
    files
}

/// Two workspaces on one `CARGO_TARGET_DIR`: each keeps its own early-build record, so a pack in
/// B never starts A's build (A's build script, which leaves a marker, does not run), B's own
/// record is adopted on its next pack, and when B's build waits on the build-directory lock that
/// another cargo holds, the pack says so as cargo does, even from the build started early.
#[test]
fn two_workspaces_on_one_target_dir_never_build_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, target) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("shared-target"),
    );
    marked_workspace(&a, "a");
    marked_workspace(&b, "b");
    let pack = |root: &std::path::Path| {
        let mut command = lambda_pack();
        command
            .args(["--compiler", "cargo", "-v", "--out-dir"])
            .arg(root.join("out"))
            .current_dir(root)
            .env("CARGO_TARGET_DIR", &target)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_BUILD_TARGET");
        command
    };
    let a_marker = a.join("build-script-ran");
    run(pack(&a)).assert_success();
    assert!(a_marker.is_file(), "A's build script ran for A's pack");
    std::fs::remove_file(&a_marker).unwrap();
    let a_before = tree_bytes(&a);

    for attempt in ["first", "second"] {
        let packed = run(pack(&b));
        packed.assert_success();
        assert!(
            !a_marker.exists(),
            "B's {attempt} pack ran A's build script: {}",
            packed.stderr
        );
        assert_eq!(
            packed.stderr.contains("(started early"),
            attempt == "second",
            "{}",
            packed.stderr
        );
        let manifest = manifest(&b.join("out"));
        let names: Vec<&str> = manifest["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["fn-b"]);
        // Info-ZIP reads B's bootstrap back: B's code, not A's.
        let zip = b
            .join("out")
            .join(artifact(&manifest, "fn-b")["path"].as_str().unwrap());
        let bootstrap = Command::new("unzip")
            .arg("-p")
            .arg(&zip)
            .arg("bootstrap")
            .output()
            .unwrap();
        assert!(bootstrap.status.success());
        let contains = |needle: &[u8]| bootstrap.stdout.windows(needle.len()).any(|w| w == needle);
        assert!(contains(b"workspace-b-code"));
        assert!(!contains(b"workspace-a-code"));
    }
    assert!(!a_marker.exists());
    assert_eq!(tree_bytes(&a), a_before, "A's files are untouched");
    let records = std::fs::read_dir(target.join("lambda-pack-cache/early-build"))
        .unwrap()
        .count();
    assert_eq!(records, 2, "one record per workspace");

    // A cargo of A holds the build directory's lock (its build script waits on a gate): B's pack,
    // whose build starts early, says it is blocked, then finishes once the lock is released.
    let gate = dir.path().join("gate");
    let mut holder = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        // The pack's profile: cargo locks each profile's build directory.
        .args([
            "check",
            "--release",
            "--target",
            "x86_64-unknown-linux-musl",
        ])
        .current_dir(&a)
        .env("CARGO_TARGET_DIR", &target)
        .env("LAMBDA_PACK_TEST_GATE", &gate)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !a_marker.exists() {
        assert!(
            started.elapsed().as_secs() < 300,
            "A's build script never ran"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let mut blocked = pack(&b)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(blocked.stderr.take().unwrap());
    let seen = read_until_line(
        &mut stderr,
        "waiting for file lock",
        "B's pack says it waits",
    );
    assert!(seen.contains("Blocking"), "{seen}");
    assert!(
        blocked.try_wait().unwrap().is_none(),
        "still waiting: {seen}"
    );
    std::fs::write(&gate, "").unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert!(blocked.wait().unwrap().success(), "{seen}{rest}");
    assert!(holder.wait().unwrap().success());
    assert!(
        format!("{seen}{rest}").contains("(started early"),
        "{seen}{rest}"
    );
}
