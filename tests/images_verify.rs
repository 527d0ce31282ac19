//! `cargo lambda-pack verify` on container images: the OCI image this tool wrote, on the suite's
//! stand-in for Lambda's base image (pulled from the suite's own registry), unpacked and run with
//! its root file system as `/`, answers like its ZIP twin: the same function packed as a ZIP and
//! verified with the same `--expect`.
//!
//! Uses a copy of `fixtures/verify-functions` of its own (so the other verify tests' copy is never
//! edited under them) built in the shared target directory, where the expensive dependencies are
//! already compiled.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::registry::registry;
use common::*;
use serde_json::{Value, json};

/// How large the include that pushes `tool-user` over the ZIP limit is: 300 MB, as a user's data
/// file would be (sparse on disk; the image still holds and unpacks all of it).
const BIG_INCLUDE_BYTES: u64 = 300_000_000;

struct Twins {
    workspace: PathBuf,
    /// The functions packed as ZIPs.
    zips: PathBuf,
    /// The same functions packed as images.
    images: PathBuf,
}

/// `tool-user` (x86_64: a shared-code layer and the `recorder` extension attached) and an arm64
/// function (`event-arm`, the tiny runtime answering its event, with the shared-code layer),
/// packed once as ZIPs, then again as images on the suite's base image: `tool-user` with a
/// 300 MB include (too large for a ZIP), `event-arm` with `package = "image"`; and `event-scratch`
/// (x86_64), the same runtime as an image on `scratch`.
fn twins() -> &'static Twins {
    static TWINS: OnceLock<Twins> = OnceLock::new();
    TWINS.get_or_init(|| {
        let registry = registry();
        let workspace = Path::new(env!("CARGO_TARGET_TMPDIR")).join("images-verify/workspace");
        sync_tree(&fixtures_dir().join("verify-functions"), &workspace);
        let package = workspace.join("tiny-fn");
        // Under qemu without binfmt_misc an arm64 process cannot start another (tool-user runs
        // lp-tool), so the arm64 function answers with the event and its architecture.
        let event_runtime = "#[allow(dead_code)]\n#[path = \"../main.rs\"]\nmod tiny;\n\nfn main() {\n    tiny::serve(\"event\");\n}\n";
        for bin in ["event-arm", "event-scratch"] {
            std::fs::write(package.join(format!("src/bin/{bin}.rs")), event_runtime).unwrap();
        }
        let fixture_toml =
            std::fs::read_to_string(fixtures_dir().join("verify-functions/tiny-fn/Cargo.toml"))
                .unwrap();
        let zip_toml = format!(
            "{fixture_toml}\n[package.metadata.lambda-pack.bin.event-arm]\narch = \"arm64\"\nlayers = [\"tools-layer\"]\n\n[package.metadata.lambda-pack.bin.event-scratch]\narch = \"x86_64\"\n"
        );
        std::fs::write(package.join("Cargo.toml"), &zip_toml).unwrap();
        let target_dir = verify_functions_target_dir();
        let zips = Path::new(env!("CARGO_TARGET_TMPDIR")).join("images-verify/zips");
        let images = Path::new(env!("CARGO_TARGET_TMPDIR")).join("images-verify/images");
        let pack = |out: &Path| {
            let mut command = lambda_pack();
            command
                .args(["--compiler", "cargo", "--profile", "dev", "--locked"])
                .args(["-p", "tiny-fn", "--target-dir"])
                .arg(&target_dir)
                .arg("--out-dir")
                .arg(out)
                .current_dir(&workspace)
                .env_remove("RUSTFLAGS")
                .env_remove("CARGO_BUILD_TARGET");
            run(command).assert_success();
        };
        pack(&zips);

        let big = std::fs::File::create(package.join("big.bin")).unwrap();
        big.set_len(BIG_INCLUDE_BYTES).unwrap();
        let image_toml = zip_toml
            .replace(
                "[package.metadata.lambda-pack.bin.tool-user]\n",
                &format!(
                    "[package.metadata.lambda-pack.bin.tool-user]\ninclude = [\"big.bin\"]\nbase_image = \"{}\"\n",
                    registry.base("x86_64")
                ),
            )
            .replace(
                "[package.metadata.lambda-pack.bin.event-arm]\n",
                &format!(
                    "[package.metadata.lambda-pack.bin.event-arm]\npackage = \"image\"\nbase_image = \"{}\"\n",
                    registry.base("arm64")
                ),
            )
            .replace(
                "[package.metadata.lambda-pack.bin.event-scratch]\n",
                "[package.metadata.lambda-pack.bin.event-scratch]\npackage = \"image\"\nbase_image = \"scratch\"\n",
            );
        std::fs::write(package.join("Cargo.toml"), image_toml).unwrap();
        pack(&images);
        // Back to the fixture's own state for the next run's sync.
        std::fs::remove_file(package.join("big.bin")).unwrap();
        Twins {
            workspace,
            zips,
            images,
        }
    })
}

fn verify(out: &Path, args: &[&str]) -> Run {
    verify_with(&twins().workspace, out, args)
}

fn function_result(run: &Run, name: &str) -> Value {
    let document: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{e}\n{}\n{}", run.stdout, run.stderr));
    document["functions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {document:#}"))
        .clone()
}

/// The expected answer of both twins: the tool of the shared-code layer, found on `PATH`.
fn expect_file() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tool.json");
    std::fs::write(&path, r#"{"tool": "tool-from-layer"}"#).unwrap();
    let text = path.display().to_string();
    (dir, text)
}

#[test]
fn an_x86_64_image_with_a_300_mb_include_and_an_extension_answers_like_its_zip_twin() {
    let twins = twins();
    let manifest = manifest(&twins.images);
    let entry = artifact(&manifest, "tool-user");
    assert_eq!(entry["format"], "image", "{entry:#}");
    assert!(entry["size_unzipped"].as_u64().unwrap() > BIG_INCLUDE_BYTES);
    assert_eq!(entry["layers"], json!(["tools-layer", "recorder"]));
    let (_dir, expect) = expect_file();

    let zip = verify(&twins.zips, &["tool-user", "--expect", &expect]);
    zip.assert_code(0);

    let image = verify(
        &twins.images,
        &["tool-user", "--expect", &expect, "--invokes", "2", "-v"],
    );
    image.assert_code(0);
    for expected in [
        "Verifying tool-user (x86_64, image)",
        r#"response {"tool":"tool-from-layer"}"#,
        "expect: every response equals",
        "sandbox: read-only root, uid 993 gid 990 (sbx_user1051), /tmp 512 MB, memory 128 MB \
         (watched), pid namespace, own network, 1024 processes (the image's root file system as /)",
        "extension recorder: registered for [INVOKE, SHUTDOWN], received [INVOKE, INVOKE, SHUTDOWN], finished shutdown",
    ] {
        assert!(
            image.stderr.contains(expected),
            "{expected}\n{}",
            image.stderr
        );
    }

    // The report: the entrypoint of the base ran (no qemu, no note), in the image's root.
    let json = verify(
        &twins.images,
        &["tool-user", "--expect", &expect, "--message-format", "json"],
    );
    json.assert_code(0);
    let result = function_result(&json, "tool-user");
    assert_eq!(result["passed"], true);
    assert_eq!(result["report"]["image"], true);
    assert_eq!(result["report"]["emulator"], Value::Null);
    assert_eq!(result["report"]["namespace_note"], Value::Null);
}

#[test]
fn an_arm64_image_runs_under_qemu_and_answers_like_its_zip_twin() {
    let twins = twins();
    let manifest = manifest(&twins.images);
    assert_eq!(artifact(&manifest, "event-arm")["format"], "image");
    let dir = tempfile::tempdir().unwrap();
    let event = dir.path().join("event.json");
    std::fs::write(&event, r#"{"on": "arm64"}"#).unwrap();
    let expect = dir.path().join("expect.json");
    std::fs::write(&expect, r#"{"event": {"on": "arm64"}, "arch": "aarch64"}"#).unwrap();
    let args = [
        "event-arm",
        "--event",
        event.to_str().unwrap(),
        "--expect",
        expect.to_str().unwrap(),
    ];

    verify(&twins.zips, &args).assert_code(0);

    let image = verify(
        &twins.images,
        &[&args[..], &["--message-format", "json"]].concat(),
    );
    image.assert_code(0);
    assert!(
        image
            .stderr
            .contains("Verifying event-arm (arm64, image, qemu)"),
        "{}",
        image.stderr
    );
    let report = &function_result(&image, "event-arm")["report"];
    assert!(
        report["emulator"]
            .as_str()
            .is_some_and(|e| e.ends_with("qemu-aarch64-static")),
        "{report:#}"
    );
    // The stand-in base's entrypoint is a script that would exec the arm64 runtime: the note
    // says the runtime ran directly.
    let note = report["namespace_note"].as_str().unwrap_or_default();
    assert!(
        note.contains("the entrypoint `/lambda-entrypoint.sh` is a script")
            && note.contains("ran the runtime it execs, `/var/runtime/bootstrap`, directly"),
        "{report:#}"
    );
}

#[test]
fn an_image_on_scratch_runs_its_bootstrap_as_the_entrypoint_like_its_zip_twin() {
    let twins = twins();
    let dir = tempfile::tempdir().unwrap();
    let event = dir.path().join("event.json");
    std::fs::write(&event, r#"{"from": "scratch"}"#).unwrap();
    let expect = dir.path().join("expect.json");
    std::fs::write(
        &expect,
        r#"{"event": {"from": "scratch"}, "arch": "x86_64"}"#,
    )
    .unwrap();
    let args = [
        "event-scratch",
        "--event",
        event.to_str().unwrap(),
        "--expect",
        expect.to_str().unwrap(),
    ];
    verify(&twins.zips, &args).assert_code(0);
    let image = verify(&twins.images, &[&args[..], &["-v"]].concat());
    image.assert_code(0);
    assert!(
        image
            .stderr
            .contains("runtime /var/runtime/bootstrap stopped at shutdown"),
        "{}",
        image.stderr
    );
}

/// A private copy of the images' manifest and of `event-scratch`'s layout, to tamper with.
fn scratch_layout_copy() -> (tempfile::TempDir, PathBuf) {
    let out = tempfile::tempdir().unwrap();
    std::fs::copy(
        twins().images.join("manifest.json"),
        out.path().join("manifest.json"),
    )
    .unwrap();
    let layout = out.path().join("x86_64/event-scratch.oci");
    copy_tree(&twins().images.join("x86_64/event-scratch.oci"), &layout);
    (out, layout)
}

#[test]
fn an_image_changed_since_it_was_packed_is_refused_before_it_runs() {
    // index.json naming another image: refused like a ZIP whose hash changed.
    let (out, layout) = scratch_layout_copy();
    let index = std::fs::read_to_string(layout.join("index.json")).unwrap();
    let digest = function_entry_digest(out.path(), "event-scratch");
    let other = format!("sha256:{}", "1".repeat(64));
    std::fs::write(layout.join("index.json"), index.replace(&digest, &other)).unwrap();
    let run = verify(out.path(), &["event-scratch"]);
    run.assert_code(3);
    assert!(
        run.stderr.contains("changed since it was packed")
            && run.stderr.contains(&other)
            && run.stderr.contains(&digest),
        "{}",
        run.stderr
    );

    // A layer blob whose bytes no longer match its digest: the function does not run.
    let (out, layout) = scratch_layout_copy();
    let manifest_blob = layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    let manifest: Value = serde_json::from_slice(&std::fs::read(manifest_blob).unwrap()).unwrap();
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let blob = layout
        .join("blobs/sha256")
        .join(layer.trim_start_matches("sha256:"));
    let mut bytes = std::fs::read(&blob).unwrap();
    let last = bytes.len() - 9; // inside the gzip trailer's CRC: the tar itself still reads
    bytes[last] ^= 0xff;
    std::fs::write(&blob, bytes).unwrap();
    let run = verify(out.path(), &["event-scratch"]);
    run.assert_code(10);
    assert!(
        run.stderr.contains(&format!("layer {layer}")) && run.stderr.contains("help:"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("Passed event-scratch"),
        "{}",
        run.stderr
    );
}

fn function_entry_digest(out: &Path, name: &str) -> String {
    artifact(&manifest(out), name)["image_digest"]
        .as_str()
        .unwrap()
        .to_string()
}
