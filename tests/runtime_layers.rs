//! Custom runtimes (`role = "runtime"`: one binary packed as `bootstrap` at the root of a layer)
//! and handler-only functions (a package without a binary: its includes and `handler`), through
//! the CLI.
//!
//! The real runtime on `lambda_runtime` lives in `fixtures/verify-functions` (`script-runtime`,
//! attached by `hello-script`), packed once per test binary into the workspace copy and target
//! directory `tests/verify_cli.rs` and `tests/verify_real.rs` use. The refusals and the warning
//! use copies of the dependency-free `fixtures/basic` with a std-only runtime crate added.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::*;
use serde_json::{Value, json};

/// What Lambda answers a function with neither `/var/task/bootstrap` nor `/opt/bootstrap`.
const LAMBDA_NO_BOOTSTRAP: &str =
    "Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]";

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

/// The `zipinfo` line of `name` in `listing`.
fn zipinfo_line<'a>(listing: &'a str, name: &str) -> &'a str {
    listing
        .lines()
        .find(|line| line.split_whitespace().last() == Some(name))
        .unwrap_or_else(|| panic!("no `{name}` in\n{listing}"))
}

#[test]
fn a_runtime_crate_is_a_layer_with_bootstrap_at_its_root_and_the_function_has_none() {
    let packed = packed();
    let manifest = manifest(&packed.out);

    let layer = artifact(&manifest, "script-runtime");
    assert_eq!(layer["kind"], "layer", "{layer:#}");
    assert_eq!(layer["layer_type"], "runtime", "{layer:#}");
    assert_eq!(layer["bin"], "script-runtime");
    assert!(layer.get("handler").is_none(), "{layer:#}");
    let layer_zip = packed.out.join(layer["path"].as_str().unwrap());
    let listing = zipinfo(&layer_zip);
    assert!(
        zipinfo_line(&listing, "bootstrap").starts_with("-rwxr-xr-x"),
        "{listing}"
    );
    // Its includes sit beside it, at the layer's root (/opt/RUNTIME.txt).
    assert!(
        zipinfo_line(&listing, "RUNTIME.txt").starts_with("-rw-r--r--"),
        "{listing}"
    );
    let bootstrap = python_entry(&layer_zip, "bootstrap");
    assert_eq!(bootstrap.mode & 0o777, 0o755);
    assert_eq!(bootstrap.elf_machine, Some(62), "an x86_64 ELF binary");
    assert!(
        !listing.contains("bin/"),
        "not a shared-code layer: {listing}"
    );

    let function = artifact(&manifest, "hello-script");
    assert_eq!(function["kind"], "function");
    assert_eq!(function["bin"], Value::Null);
    assert_eq!(function["handler"], "hello.txt");
    assert_eq!(function["layers"], json!(["script-runtime"]));
    assert!(function.get("layer_type").is_none(), "{function:#}");
    let function_zip = packed.out.join(function["path"].as_str().unwrap());
    let names: Vec<String> = python_entries(&function_zip)
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["hello.txt"], "the handler file and nothing else");
    // The functions with binaries keep theirs, and their handler is Lambda's default.
    assert_eq!(artifact(&manifest, "echo")["handler"], "bootstrap");
}

#[test]
fn plan_says_which_bootstrap_each_function_runs_and_why() {
    let packed = packed();
    let mut command = lambda_pack();
    // The packed run's selection: another (`-p`) would resolve features anew and rebuild.
    command
        .args([
            "plan",
            "--compiler",
            "cargo",
            "--profile",
            "dev",
            "--locked",
        ])
        .arg("--target-dir")
        .arg(verify_functions_target_dir())
        .current_dir(&packed.workspace)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET");
    let run = run(command);
    run.assert_success();
    assert!(
        run.stderr.contains(
            "bootstrap: /opt/bootstrap from layer `script-runtime` (the function has no /var/task/bootstrap); handler `hello.txt`"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("bootstrap: /var/task/bootstrap, the function's own binary"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("script-runtime: runtime layer zip x86_64"),
        "{}",
        run.stderr
    );
}

#[test]
fn verify_runs_the_layers_bootstrap_with_the_functions_handler() {
    let packed = packed();
    let dir = tempfile::tempdir().unwrap();
    let event = dir.path().join("event.json");
    std::fs::write(&event, r#"{"name": "Ferris"}"#).unwrap();
    let run = verify_with(
        &packed.workspace,
        &packed.out,
        &[
            "hello-script",
            "--event",
            event.to_str().unwrap(),
            "--message-format",
            "json",
        ],
    );
    run.assert_code(0);
    let document: Value = serde_json::from_str(&run.stdout).unwrap();
    let result = &document["functions"][0];
    assert_eq!(result["name"], "hello-script", "{document:#}");
    assert_eq!(result["passed"], true, "{document:#}");
    let preview = result["report"]["invocations"][0]["outcome"]["preview"]
        .as_str()
        .unwrap_or_else(|| panic!("{document:#}"));
    let answer: Value = serde_json::from_str(preview).unwrap();
    assert_eq!(
        answer,
        json!({
            "handler": "hello.txt",
            "template": "Hello from a handler file\n",
            "event": {"name": "Ferris"},
        })
    );
}

/// A member crate to add: its name, its Cargo.toml's text, and its files `(path, contents)`.
type Crate<'a> = (&'a str, String, &'a [(&'a str, &'a str)]);

/// A copy of `fixtures/basic` with more member crates.
fn basic_with(crates: &[Crate]) -> Fixture {
    let fixture = Fixture::copy("basic");
    let mut members = vec![
        "fn-x86".to_string(),
        "fn-arm".into(),
        "multi".into(),
        "shared".into(),
    ];
    for (name, manifest, files) in crates {
        members.push(name.to_string());
        fixture.write(&format!("{name}/Cargo.toml"), manifest);
        for (path, contents) in *files {
            fixture.write(&format!("{name}/{path}"), contents);
        }
    }
    let root = fixture.read("Cargo.toml").replace(
        "members = [\"fn-x86\", \"fn-arm\", \"multi\", \"shared\"]",
        &format!(
            "members = [{}]",
            members
                .iter()
                .map(|m| format!("\"{m}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    fixture.write("Cargo.toml", &root);
    fixture
}

/// A std-only runtime crate `rt` (role = "runtime"): packing it needs no dependency.
fn runtime_crate() -> Crate<'static> {
    (
        "rt",
        "[package]\nname = \"rt\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
         [package.metadata.lambda-pack]\nrole = \"runtime\"\n"
            .to_string(),
        &[("src/main.rs", "fn main() {}\n")],
    )
}

/// A handler-only function crate `script-fn` with `extra` metadata lines.
fn handler_only_crate(extra: &str) -> Crate<'static> {
    (
        "script-fn",
        format!(
            "[package]\nname = \"script-fn\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [package.metadata.lambda-pack]\nrole = \"function\"\nhandler = \"main.js\"\n\
             include = [\"main.js\"]\n{extra}"
        ),
        &[
            ("src/lib.rs", ""),
            ("main.js", "export const handler = async () => 'hi';\n"),
        ],
    )
}

#[test]
fn a_function_without_any_bootstrap_is_refused_with_lambdas_text_and_nothing_written() {
    let fixture = basic_with(&[handler_only_crate("")]);
    fixture
        .pack(&["--compiler", "cargo", "-p", "fn-x86"])
        .assert_success();
    let before = snapshot(&fixture.out_dir());

    let run = fixture.pack(&["--compiler", "cargo", "-p", "script-fn"]);
    run.assert_code(8);
    assert!(
        run.stderr
            .contains("script-fn (x86_64) bootstrap: [no-bootstrap]"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(&format!("Lambda would fail with: {LAMBDA_NO_BOOTSTRAP}")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(
            "package `script-fn` has no binary (/var/task/bootstrap) and it attaches no layer"
        ),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("help: "), "{}", run.stderr);
    assert_eq!(
        snapshot(&fixture.out_dir()),
        before,
        "nothing written or removed"
    );

    // Allowed (the bootstrap comes from a layer deployed another way), it packs with a warning.
    fixture
        .pack(&[
            "--compiler",
            "cargo",
            "-p",
            "script-fn",
            "--allow",
            "no-bootstrap",
        ])
        .assert_success();
    let manifest = manifest(&fixture.out_dir());
    let function = artifact(&manifest, "script-fn");
    assert!(
        function["warnings"][0]
            .as_str()
            .is_some_and(|w| w.contains("[no-bootstrap]") && w.ends_with("(allowed)")),
        "{function:#}"
    );
}

#[test]
fn a_function_with_its_own_bootstrap_and_a_runtime_layer_gets_a_warning() {
    let fixture = basic_with(&[runtime_crate()]);
    let function = fixture.read("fn-x86/Cargo.toml").replace(
        "arch = \"x86_64\"\n",
        "arch = \"x86_64\"\nlayers = [\"rt\"]\n",
    );
    fixture.write("fn-x86/Cargo.toml", &function);
    let run = fixture.pack(&["--compiler", "cargo", "-p", "fn-x86"]);
    run.assert_success();
    assert!(
        run.stderr.contains(
            "warning: function `fn-x86` (x86_64) has its own bootstrap and attaches layer `rt`, which provides /opt/bootstrap: Lambda runs /var/task/bootstrap, so the layer's bootstrap is never used"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("Packed runtime layer rt (x86_64, "),
        "{}",
        run.stderr
    );
    let manifest = manifest(&fixture.out_dir());
    assert_eq!(artifact(&manifest, "rt")["layer_type"], "runtime");
    let listing = zipinfo(&fixture.out_dir().join("x86_64/rt.zip"));
    assert!(
        zipinfo_line(&listing, "bootstrap").starts_with("-rwxr-xr-x"),
        "{listing}"
    );
}

#[test]
fn a_runtime_crate_with_two_binaries_names_them_unless_bin_picks_one() {
    let (name, cargo_toml, _) = runtime_crate();
    let fixture = basic_with(&[(
        name,
        cargo_toml,
        &[
            ("src/bin/fast.rs", "fn main() {}\n"),
            ("src/bin/slow.rs", "fn main() {}\n"),
        ],
    )]);
    let run = fixture.pack(&["--compiler", "cargo", "-p", "rt"]);
    run.assert_code(3);
    assert!(
        run.stderr.contains(
            "package `rt` (`") && run.stderr.contains("has 2 binaries with role = \"runtime\" (`fast`, `slow`); a runtime layer holds exactly one bootstrap"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("help: pick one with `--bin fast`"),
        "{}",
        run.stderr
    );
    assert!(!fixture.out_dir().join("manifest.json").exists());

    fixture
        .pack(&["--compiler", "cargo", "-p", "rt", "--bin", "slow"])
        .assert_success();
    let manifest = manifest(&fixture.out_dir());
    assert_eq!(artifact(&manifest, "rt")["bin"], "slow");
}

#[test]
fn the_image_of_a_handler_only_function_runs_its_runtime_layers_bootstrap() {
    // `package = "image"` routes it as an oversized function would be; scratch needs no registry
    // and takes the static (musl) bootstrap `--compiler cargo` builds.
    let fixture = basic_with(&[
        runtime_crate(),
        handler_only_crate("layers = [\"rt\"]\npackage = \"image\"\nbase_image = \"scratch\"\n"),
    ]);
    fixture
        .pack(&["--compiler", "cargo", "-p", "script-fn"])
        .assert_success();
    let out = fixture.out_dir();
    let dockerfile = std::fs::read_to_string(out.join("x86_64/script-fn/Dockerfile")).unwrap();
    assert!(
        dockerfile.contains(
            "# layer `rt`\nCOPY opt/01-rt/ /opt/\nCOPY task/ ${LAMBDA_TASK_ROOT}/\n\
             # the bootstrap of runtime layer `rt` (/opt/bootstrap): the base image runs ${LAMBDA_RUNTIME_DIR}/bootstrap\n\
             COPY bootstrap ${LAMBDA_RUNTIME_DIR}/bootstrap\n\
             ENTRYPOINT [\"/var/runtime/bootstrap\"]\nCMD [\"main.js\"]\n"
        ),
        "{dockerfile}"
    );
    let context = out.join("x86_64/script-fn");
    let copied = std::fs::read(context.join("bootstrap")).unwrap();
    assert_eq!(
        copied,
        std::fs::read(context.join("opt/01-rt/bootstrap")).unwrap()
    );
    assert_eq!(&copied[..4], b"\x7fELF");
    assert!(context.join("task/main.js").is_file());
    let manifest = manifest(&out);
    let function = artifact(&manifest, "script-fn");
    assert_eq!(function["format"], "image");
    // The OCI image has the bootstrap layer (→ /var/runtime/bootstrap) beside /opt and the task.
    let index: Value = serde_json::from_slice(
        &std::fs::read(out.join("x86_64/script-fn.oci/index.json")).unwrap(),
    )
    .unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap();
    let image: Value = serde_json::from_slice(
        &std::fs::read(blob(&out.join("x86_64/script-fn.oci"), digest)).unwrap(),
    )
    .unwrap();
    assert_eq!(image["layers"].as_array().unwrap().len(), 3, "{image:#}");
    // Its CMD is the handler, which the entrypoint passes to the runtime as `_HANDLER`.
    let config: Value = serde_json::from_slice(
        &std::fs::read(blob(
            &out.join("x86_64/script-fn.oci"),
            image["config"]["digest"].as_str().unwrap(),
        ))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(config["config"]["Cmd"], json!(["main.js"]), "{config:#}");
}

#[test]
fn an_arm64_handler_only_function_runs_its_runtime_layer_under_qemu() {
    // The runtime is the std-only Runtime API client of `fixtures/verify-functions/tiny-fn`
    // (quick to build for aarch64): for a handler it does not know, it answers what it saw.
    let tiny = std::fs::read_to_string(fixtures_dir().join("verify-functions/tiny-fn/src/main.rs"))
        .unwrap();
    let (name, cargo_toml, _) = runtime_crate();
    let fixture = basic_with(&[
        (name, cargo_toml, &[]),
        handler_only_crate("arch = \"arm64\"\nlayers = [\"rt\"]\n"),
    ]);
    fixture.write("rt/src/main.rs", &tiny);
    fixture
        .pack(&["--compiler", "cargo", "-p", "script-fn"])
        .assert_success();
    let out = fixture.out_dir();
    let bootstrap = python_entry(&out.join("arm64/rt.zip"), "bootstrap");
    assert_eq!(bootstrap.elf_machine, Some(183), "an aarch64 ELF binary");
    assert_eq!(bootstrap.mode & 0o777, 0o755);
    let dir = tempfile::tempdir().unwrap();
    let event = dir.path().join("event.json");
    std::fs::write(&event, r#"{"on": "arm64"}"#).unwrap();
    let run = verify_with(
        fixture.path(),
        &out,
        &[
            "script-fn",
            "--event",
            event.to_str().unwrap(),
            "--message-format",
            "json",
        ],
    );
    run.assert_code(0);
    assert!(
        run.stderr
            .contains("Verifying script-fn (arm64, 1 layer, qemu)"),
        "{}",
        run.stderr
    );
    let document: Value = serde_json::from_str(&run.stdout).unwrap();
    let preview = document["functions"][0]["report"]["invocations"][0]["outcome"]["preview"]
        .as_str()
        .unwrap_or_else(|| panic!("{document:#}"));
    let seen: Value = serde_json::from_str(preview).unwrap();
    assert_eq!(seen["arch"], "aarch64");
    assert_eq!(seen["event"], json!({"on": "arm64"}));
}

fn blob(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap())
}
