//! Container images: the OCI image this tool writes, read back with independent tools (skopeo,
//! umoci) against a real registry (Debian's `docker-registry`) holding the suite's stand-in for
//! Lambda's base image.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::Fixture;
use common::registry::{
    AUTH_PASSWORD, auth_registry, blob_puts, fill_cache, registry, skopeo_inspect,
};

#[test]
fn the_suites_registry_serves_the_stand_in_base_for_both_architectures() {
    let registry = registry();
    for (arch, oci_arch) in [("x86_64", "amd64"), ("arm64", "arm64")] {
        let inspected = skopeo_inspect(&format!("docker://{}", registry.base(arch)), false);
        assert_eq!(inspected["Architecture"], oci_arch, "{inspected}");
        assert!(
            inspected["Env"]
                .as_array()
                .unwrap()
                .contains(&"LAMBDA_TASK_ROOT=/var/task".into()),
            "{inspected}"
        );
    }
    let index = skopeo_inspect(
        &format!("docker://{}", registry.reference("lambda/provided:al2023")),
        true,
    );
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let platforms: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(platforms, ["amd64", "arm64"]);
}

/// fixtures/basic with `fn-x86` routed to a container image built on the suite's base image.
fn image_fixture(base_image: &str) -> Fixture {
    let fixture = Fixture::copy("basic");
    let text = fixture.read("fn-x86/Cargo.toml").replace(
        "arch = \"x86_64\"\n",
        &format!("arch = \"x86_64\"\npackage = \"image\"\nbase_image = \"{base_image}\"\n"),
    );
    fixture.write("fn-x86/Cargo.toml", &text);
    fixture
}

fn pack_image(fixture: &Fixture) -> serde_json::Value {
    fixture
        .pack(&["--compiler", "cargo", "-p", "fn-x86"])
        .assert_success();
    function_entry(fixture)
}

/// `fn-x86`'s entry in the fixture's manifest.json.
fn function_entry(fixture: &Fixture) -> serde_json::Value {
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture.out_dir().join("manifest.json")).unwrap())
            .unwrap();
    manifest["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "fn-x86")
        .expect("fn-x86 in the manifest")
        .clone()
}

fn run_tool(command: &mut Command) -> String {
    let output = command
        .output()
        .expect("tool installed by scripts/setup.sh");
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Every regular file and directory under `root`: relative path → (mode, content).
fn tree(root: &Path) -> BTreeMap<String, (u32, Option<Vec<u8>>)> {
    use std::os::unix::fs::PermissionsExt;
    let mut files = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root).min_depth(1) {
        let entry = entry.unwrap();
        let relative = entry.path().strip_prefix(root).unwrap();
        let mode = entry.metadata().unwrap().permissions().mode() & 0o7777;
        let content = entry
            .file_type()
            .is_file()
            .then(|| std::fs::read(entry.path()).unwrap());
        files.insert(relative.to_string_lossy().into_owned(), (mode, content));
    }
    files
}

#[test]
fn an_image_function_gets_an_oci_image_that_skopeo_and_umoci_read_like_its_context() {
    let registry = registry();
    let fixture = image_fixture(&registry.base("x86_64"));
    let artifact = pack_image(&fixture);
    assert_eq!(artifact["format"], "image");
    assert_eq!(artifact["oci_layout"], "x86_64/fn-x86.oci");
    let layout = fixture.out_dir().join("x86_64/fn-x86.oci");
    let base = skopeo_inspect(&format!("docker://{}", registry.base("x86_64")), false);
    assert_eq!(artifact["base_image_digest"], base["Digest"]);

    // skopeo reads the layout: the manifest digest is the one recorded, for amd64.
    let inspected = skopeo_inspect(&format!("oci:{}", layout.display()), false);
    assert_eq!(inspected["Digest"], artifact["image_digest"], "{inspected}");
    assert_eq!(inspected["Architecture"], "amd64");
    assert_eq!(inspected["Os"], "linux");
    let manifest = skopeo_inspect(&format!("oci:{}", layout.display()), true);
    assert_eq!(
        manifest["mediaType"], "application/vnd.oci.image.manifest.v1+json",
        "a single image manifest, never an index"
    );
    let layers = manifest["layers"].as_array().unwrap();
    let base_layers = base["Layers"].as_array().unwrap();
    // The base's layers, then includes and bootstrap (this function attaches no layer).
    assert_eq!(layers.len(), base_layers.len() + 2, "{manifest}");
    for (ours, theirs) in layers.iter().zip(base_layers) {
        assert_eq!(&ours["digest"], theirs);
    }

    // The configuration: the base's entrypoint and env, Lambda's variables, CMD, fixed time.
    let config: serde_json::Value = serde_json::from_str(&run_tool(
        Command::new("skopeo")
            .args(["inspect", "--config"])
            .arg(format!("oci:{}", layout.display())),
    ))
    .unwrap();
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/lambda-entrypoint.sh"])
    );
    assert_eq!(config["config"]["Cmd"], serde_json::json!(["bootstrap"]));
    let env = config["config"]["Env"].as_array().unwrap();
    for expected in [
        "LAMBDA_TASK_ROOT=/var/task",
        "LAMBDA_RUNTIME_DIR=/var/runtime",
        "PATH=/usr/local/bin:/usr/bin:/bin:/opt/bin",
    ] {
        assert!(env.contains(&expected.into()), "{expected} in {env:?}");
    }
    assert_eq!(config["created"], "1970-01-01T00:00:00Z");

    // umoci unpacks the same files, modes and contents as the Dockerfile context holds.
    let unpacked = tempfile::tempdir().unwrap();
    let bundle = unpacked.path().join("bundle");
    run_tool(
        Command::new("umoci")
            .args(["unpack", "--rootless", "--image"])
            .arg(format!("{}:latest", layout.display()))
            .arg(&bundle),
    );
    let rootfs = bundle.join("rootfs");
    let context = tree(&fixture.out_dir().join("x86_64/fn-x86"));
    let image = tree(&rootfs);
    let mut compared = 0;
    for (path, expected) in &context {
        let in_image = if path == "bootstrap" {
            "var/runtime/bootstrap".to_string()
        } else if let Some(rest) = path.strip_prefix("task") {
            format!("var/task{rest}")
        } else {
            assert!(
                matches!(path.as_str(), "Dockerfile" | ".dockerignore"),
                "{path}"
            );
            continue;
        };
        assert_eq!(
            image.get(&in_image),
            Some(expected),
            "{in_image} vs context {path}"
        );
        compared += 1;
    }
    assert!(compared >= 5, "bootstrap, task/, includes: {context:?}");
    assert!(
        image.contains_key("lambda-entrypoint.sh"),
        "base files are there"
    );
    assert!(image.contains_key("lib64/libc.so.6"));
}

/// The digests of the image manifest's layers, read by skopeo.
fn layer_digests(layout: &Path) -> Vec<String> {
    let manifest = skopeo_inspect(&format!("oci:{}", layout.display()), true);
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_same_sources_give_the_same_image_and_one_include_changes_one_layer() {
    let registry = registry();
    let first = image_fixture(&registry.base("x86_64"));
    let second = image_fixture(&registry.base("x86_64"));
    let a = pack_image(&first);
    let b = pack_image(&second);
    assert_eq!(
        a["image_digest"], b["image_digest"],
        "two clean target dirs"
    );
    let layout = first.out_dir().join("x86_64/fn-x86.oci");
    let before = layer_digests(&layout);

    first.write("fn-x86/assets/readme.txt", "changed\n");
    let c = pack_image(&first);
    assert_ne!(a["image_digest"], c["image_digest"]);
    let after = layer_digests(&layout);
    assert_eq!(before.len(), after.len());
    let changed: Vec<usize> = (0..before.len())
        .filter(|&i| before[i] != after[i])
        .collect();
    // The includes layer is the one before the bootstrap's, which is last.
    assert_eq!(changed, [before.len() - 2], "{before:?}\n{after:?}");
}

#[test]
fn offline_uses_only_the_cache_and_says_how_to_fill_it() {
    let registry = registry();
    let reference = registry.reference("lambda/provided:al2023");
    let online = image_fixture(&reference);
    let pulled = pack_image(&online);

    let offline = image_fixture(&reference);
    let run = offline.pack(&["--compiler", "cargo", "-p", "fn-x86", "--offline"]);
    run.assert_code(11);
    assert!(
        run.stderr.contains(&format!(
            "base image `{reference}` (x86_64) is not in the cache"
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!(
            "help: run once without --offline/--frozen to fill the cache, or fill it with `skopeo copy --all docker://{reference} oci:"
        )),
        "{}",
        run.stderr
    );
    assert!(!offline.out_dir().join("manifest.json").exists());

    // Filled as the help says (from the index: the platform is chosen from it), --offline works
    // and gives the image the online run gave.
    fill_cache(&offline.path().join("target"), &reference, &reference);
    let run = offline.pack(&["--compiler", "cargo", "-p", "fn-x86", "--offline"]);
    run.assert_success();
    let artifact = function_entry(&offline);
    assert_eq!(artifact["image_digest"], pulled["image_digest"]);
    assert_eq!(artifact["base_image_digest"], pulled["base_image_digest"]);
}

#[test]
fn registry_failures_name_the_reference_and_write_nothing() {
    let registry = registry();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let cases = [
        (
            format!("127.0.0.1:{closed_port}/lambda/provided:al2023-x86_64"),
            format!("registry 127.0.0.1:{closed_port} is unreachable"),
        ),
        (
            registry.base("arm64"),
            format!(
                "base image `{}` is for arm64, not x86_64 (amd64)",
                registry.base("arm64")
            ),
        ),
        (
            registry.reference("lambda/provided:no-such-tag"),
            format!(
                "registry {} has no image `{}`",
                registry.host,
                registry.reference("lambda/provided:no-such-tag")
            ),
        ),
    ];
    for (base_image, expected) in cases {
        let fixture = image_fixture(&base_image);
        let run = fixture.pack(&["--compiler", "cargo", "-p", "fn-x86"]);
        run.assert_code(11);
        assert!(run.stderr.contains(&expected), "{expected}\n{}", run.stderr);
        assert!(run.stderr.contains("help:"), "{}", run.stderr);
        assert!(!fixture.out_dir().join("manifest.json").exists());
        assert!(!fixture.out_dir().join("x86_64/fn-x86.oci").exists());
        // The context needs no base: it is there all the same, and the error says so.
        assert!(
            fixture.out_dir().join("x86_64/fn-x86/Dockerfile").is_file(),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr
                .contains("the Docker build context of `fn-x86` (x86_64) is written all the same"),
            "{}",
            run.stderr
        );
    }
}

/// A loopback address nobody listens on: a registry that cannot be reached.
fn closed_registry() -> String {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    format!("127.0.0.1:{port}")
}

/// Everything in the fixture but its target directory (cargo's and, below it, the tool's output
/// directory and caches).
fn outside_state(fixture: &Fixture) -> BTreeMap<std::path::PathBuf, String> {
    let mut state = common::tree_state(fixture.path());
    state.retain(|path, _| !path.starts_with(fixture.path().join("target")));
    state
}

/// The entries of a directory, by name, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn an_unreachable_base_leaves_a_context_buildah_builds_and_no_empty_folder() {
    let registry = registry();
    let unreachable = format!("{}/lambda/provided:al2023-x86_64", closed_registry());
    let fixture = image_fixture(&unreachable);
    let both = ["--compiler", "cargo", "-p", "fn-x86", "-p", "fn-arm"];
    let outside = outside_state(&fixture);
    let run = fixture.pack(&both);
    run.assert_code(11);
    let out = fixture.out_dir();
    let context = out.join("x86_64/fn-x86");
    for expected in [
        "is unreachable".to_string(),
        format!(
            "note: the Docker build context of `fn-x86` (x86_64) is written all the same, at `{}`",
            context.display()
        ),
        format!(
            "`docker build --platform linux/amd64 --provenance=false -t fn-x86 {}`",
            context.display()
        ),
        format!(
            "`buildah bud --platform linux/amd64 -t fn-x86 {}`",
            context.display()
        ),
        "help:".to_string(),
    ] {
        assert!(run.stderr.contains(&expected), "{expected}\n{}", run.stderr);
    }
    // Only the context: no OCI layout, no ZIP of the other function, no manifest, no
    // temporaries, and no `arm64/` folder left empty.
    assert_eq!(names(&out.join("x86_64")), ["fn-x86"], "{}", run.stderr);
    assert!(!out.join("arm64").exists(), "{:?}", names(&out));
    assert!(!out.join("manifest.json").exists());
    assert_eq!(
        outside_state(&fixture),
        outside,
        "files outside the output directory"
    );
    let dockerfile = std::fs::read_to_string(context.join("Dockerfile")).unwrap();
    assert!(
        dockerfile.contains(&format!("FROM {unreachable}\n")),
        "{dockerfile}"
    );

    // The context builds, against the suite's stand-in for the base it names, and the image
    // holds the context's bootstrap.
    let work = tempfile::tempdir().unwrap();
    let storage = |command: &mut Command| {
        command
            .arg("--storage-driver=vfs")
            .arg("--root")
            .arg(work.path().join("root"))
            .arg("--runroot")
            .arg(work.path().join("runroot"));
    };
    let mut bud = Command::new("buildah");
    storage(&mut bud);
    bud.args(["bud", "--isolation=chroot", "--tls-verify=false", "-q"])
        .args([
            "--platform",
            "linux/amd64",
            "--from",
            &registry.base("x86_64"),
        ])
        .args(["-t", "fn-x86"])
        .arg(&context);
    run_tool(&mut bud);
    let built = work.path().join("built.oci");
    let mut push = Command::new("buildah");
    storage(&mut push);
    push.args(["push", "-q", "fn-x86"])
        .arg(format!("oci:{}:latest", built.display()));
    run_tool(&mut push);
    let rootfs = unpack(&built, "latest", &work.path().join("unpacked"));
    let bootstrap = std::fs::read(context.join("bootstrap")).unwrap();
    assert_eq!(
        rootfs
            .get("var/runtime/bootstrap")
            .and_then(|(_, bytes)| bytes.clone()),
        Some(bootstrap)
    );
    assert!(
        rootfs.contains_key("lambda-entrypoint.sh"),
        "the stand-in base's files"
    );

    // With the base reachable the pack completes; the image entry's `code_sha256` is what
    // Lambda reports for an image function: the image digest's hex.
    let text = fixture
        .read("fn-x86/Cargo.toml")
        .replace(&unreachable, &registry.base("x86_64"));
    fixture.write("fn-x86/Cargo.toml", &text);
    fixture.pack(&both).assert_success();
    let entry = function_entry(&fixture);
    let digest = entry["image_digest"].as_str().unwrap();
    assert_eq!(
        skopeo_inspect(
            &format!("oci:{}", out.join("x86_64/fn-x86.oci").display()),
            false
        )["Digest"],
        digest
    );
    assert_eq!(
        entry["code_sha256"],
        digest.strip_prefix("sha256:").unwrap()
    );
    let layout_before = common::tree_state(&out.join("x86_64/fn-x86.oci"));

    // Unreachable again: the new context replaces the listed one, so its entry leaves the
    // manifest; the other function's entry and the OCI layout stay as they were.
    let text = text.replace(&registry.base("x86_64"), &unreachable);
    fixture.write("fn-x86/Cargo.toml", &text);
    fixture.pack(&both).assert_code(11);
    let manifest = common::manifest(&out);
    let listed: Vec<&str> = manifest["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["fn-arm"]);
    assert!(
        std::fs::read_to_string(context.join("Dockerfile"))
            .unwrap()
            .contains(&format!("FROM {unreachable}\n"))
    );
    assert_eq!(
        common::tree_state(&out.join("x86_64/fn-x86.oci")),
        layout_before
    );
}

#[test]
fn push_uploads_only_what_the_registry_lacks_and_records_the_image_uri() {
    let registry = registry();
    let repository = registry.reference("pushed/fn-x86");
    let fixture = image_fixture(&registry.base("x86_64"));
    let text = fixture.read("fn-x86/Cargo.toml").replace(
        "package = \"image\"\n",
        &format!("package = \"image\"\nimage_repository = \"{repository}\"\n"),
    );
    fixture.write("fn-x86/Cargo.toml", &text);
    // 10 MB that gzip cannot shrink: the includes layer is uploaded from its file in several
    // 4 MiB pieces, which the registry checks against the digest when the upload completes.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let noise: Vec<u8> = (0..10_000_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    std::fs::write(fixture.path().join("fn-x86/assets/noise.bin"), &noise).unwrap();

    let puts_before = blob_puts(registry);
    let run = fixture.pack(&["--compiler", "cargo", "-p", "fn-x86", "--push"]);
    run.assert_success();
    let artifact = function_entry(&fixture);
    let digest = artifact["image_digest"].as_str().unwrap();
    assert_eq!(artifact["image_uri"], format!("{repository}@{digest}"));
    assert!(run.stderr.contains("Pushed fn-x86 as"), "{}", run.stderr);
    let first_puts = blob_puts(registry) - puts_before;
    let layers = skopeo_inspect(
        &format!(
            "oci:{}",
            fixture.out_dir().join("x86_64/fn-x86.oci").display()
        ),
        true,
    )["layers"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(first_puts, layers + 1, "every layer and the config, once");
    let manifest = skopeo_inspect(
        &format!(
            "oci:{}",
            fixture.out_dir().join("x86_64/fn-x86.oci").display()
        ),
        true,
    );
    let largest = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["size"].as_u64().unwrap())
        .max()
        .unwrap();
    assert!(
        largest > 8 * 1024 * 1024,
        "a layer of several pieces: {largest}"
    );
    let patches = std::fs::read_to_string(registry.dir.join("registry.log"))
        .unwrap()
        .lines()
        .filter(|l| l.contains("\"PATCH /v2/pushed/fn-x86/blobs/uploads/"))
        .count();
    assert!(
        patches > layers + 1,
        "uploaded in pieces: {patches} PATCH requests"
    );

    // The registry serves it by digest and by the tag <version>-<arch>.
    let by_digest = skopeo_inspect(&format!("docker://{repository}@{digest}"), false);
    assert_eq!(by_digest["Digest"], digest);
    assert_eq!(by_digest["Architecture"], "amd64");
    let by_tag = skopeo_inspect(&format!("docker://{repository}:0.1.0-x86_64"), false);
    assert_eq!(by_tag["Digest"], digest);

    // Pushing the same image again uploads no blob.
    let puts_before = blob_puts(registry);
    let again = fixture.pack(&["--compiler", "cargo", "-p", "fn-x86", "--push"]);
    again.assert_success();
    assert!(again.stderr.contains("0 blob(s)"), "{}", again.stderr);
    assert_eq!(
        blob_puts(registry),
        puts_before,
        "no blob uploaded the second time"
    );
}

#[test]
fn push_without_any_image_repository_names_the_key() {
    let registry = registry();
    let fixture = image_fixture(&registry.base("x86_64"));
    let run = fixture.pack(&["--compiler", "cargo", "-p", "fn-x86", "--push"]);
    run.assert_code(3);
    assert!(
        run.stderr.contains("no function sets `image_repository`"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("help:"), "{}", run.stderr);
    assert!(!fixture.out_dir().join("manifest.json").exists());
}

#[test]
fn push_to_a_registry_demanding_credentials_uses_the_docker_config_and_leaks_nothing() {
    let open = registry();
    let private = auth_registry();
    let repository = private.reference("private/fn-x86");
    let fixture = image_fixture(&open.base("x86_64"));
    let text = fixture.read("fn-x86/Cargo.toml").replace(
        "package = \"image\"\n",
        &format!("package = \"image\"\nimage_repository = \"{repository}\"\n"),
    );
    fixture.write("fn-x86/Cargo.toml", &text);
    let docker_config = tempfile::tempdir().unwrap();
    let config_dir = docker_config.path().display().to_string();
    let env = [
        ("DOCKER_CONFIG", config_dir.as_str()),
        ("REGISTRY_AUTH_FILE", ""),
    ];
    let creds = format!("--creds=pusher:{AUTH_PASSWORD}");
    let tagged = format!("docker://{repository}:0.1.0-x86_64");

    // No credentials anywhere: refused, naming the registry and what was tried; nothing
    // written locally and no manifest in the registry.
    let run = fixture.pack_with_env(&["--compiler", "cargo", "-p", "fn-x86", "--push"], &env);
    run.assert_code(11);
    assert!(
        run.stderr.contains(&format!("registry {} refused access to `{repository}:0.1.0-x86_64` (credentials tried: anonymous", private.host)),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("help:"), "{}", run.stderr);
    assert!(!fixture.out_dir().join("manifest.json").exists());
    assert!(!fixture.out_dir().join("x86_64/fn-x86.oci").exists());
    let inspect = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", &creds, &tagged])
        .output()
        .unwrap();
    assert!(!inspect.status.success(), "no manifest was pushed");

    // With the password in the Docker config's `auths` (base64 user:password, as docker login
    // writes it), the push goes through; the secret appears nowhere in the output or manifest.
    let encoded = std::process::Command::new("python3")
        .args([
            "-c",
            &format!("import base64; print(base64.b64encode(b'pusher:{AUTH_PASSWORD}').decode())"),
        ])
        .output()
        .unwrap();
    let encoded = String::from_utf8(encoded.stdout).unwrap();
    std::fs::write(
        docker_config.path().join("config.json"),
        format!(
            r#"{{"auths": {{"{}": {{"auth": "{}"}}}}}}"#,
            private.host,
            encoded.trim()
        ),
    )
    .unwrap();
    let run = fixture.pack_with_env(&["--compiler", "cargo", "-p", "fn-x86", "--push"], &env);
    run.assert_success();
    let artifact = function_entry(&fixture);
    let digest = artifact["image_digest"].as_str().unwrap();
    assert_eq!(artifact["image_uri"], format!("{repository}@{digest}"));
    let pushed: serde_json::Value = serde_json::from_str(&run_tool(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        &creds,
        &tagged,
    ])))
    .unwrap();
    assert_eq!(pushed["Digest"], digest);
    let manifest = std::fs::read_to_string(fixture.out_dir().join("manifest.json")).unwrap();
    for text in [&run.stderr, &run.stdout, &manifest] {
        assert!(!text.contains(AUTH_PASSWORD) && !text.contains(encoded.trim()));
    }
}

#[test]
fn scratch_takes_static_binaries_only_and_runs_the_bootstrap_as_its_entrypoint() {
    // A static (musl) bootstrap: the image is this tool's layers alone, with no base.
    let fixture = image_fixture("scratch");
    let artifact = pack_image(&fixture);
    assert!(artifact.get("base_image_digest").is_none(), "{artifact}");
    let layout = fixture.out_dir().join("x86_64/fn-x86.oci");
    assert_eq!(
        layer_digests(&layout).len(),
        2,
        "includes and bootstrap only"
    );
    let config: serde_json::Value = serde_json::from_str(&run_tool(
        Command::new("skopeo")
            .args(["inspect", "--config"])
            .arg(format!("oci:{}", layout.display())),
    ))
    .unwrap();
    assert_eq!(config["architecture"], "amd64");
    // No /lambda-entrypoint.sh on scratch: the runtime itself is the entrypoint, and Lambda's
    // directories are in the environment, as AWS's base images have them.
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/var/runtime/bootstrap"])
    );
    assert_eq!(config["config"]["Cmd"], serde_json::json!(["bootstrap"]));
    assert_eq!(
        config["config"]["Env"],
        serde_json::json!([
            "LAMBDA_TASK_ROOT=/var/task",
            "LAMBDA_RUNTIME_DIR=/var/runtime"
        ])
    );
    // The Dockerfile builds the same: the variables its COPY lines use, and the entrypoint.
    let dockerfile = fixture.read("target/lambda-pack/x86_64/fn-x86/Dockerfile");
    assert!(
        dockerfile.contains(
            "FROM scratch\nENV LAMBDA_TASK_ROOT=/var/task LAMBDA_RUNTIME_DIR=/var/runtime\n"
        ),
        "{dockerfile}"
    );
    assert!(
        dockerfile.ends_with(
            "COPY bootstrap ${LAMBDA_RUNTIME_DIR}/bootstrap\nENTRYPOINT [\"/var/runtime/bootstrap\"]\nCMD [\"bootstrap\"]\n"
        ),
        "{dockerfile}"
    );
}

#[test]
fn scratch_with_compiler_auto_builds_that_function_static_and_plan_says_so() {
    // `--compiler auto` builds glibc targets with zig, but a function on scratch has no loader
    // to run one: it alone is built for musl, and the plan says why.
    let fixture = image_fixture("scratch");
    let plan = common::run({
        let mut command = common::lambda_pack();
        command
            .arg("plan")
            .args(["--compiler", "auto", "-p", "fn-x86", "-p", "fn-arm"])
            .current_dir(fixture.path());
        command
    });
    plan.assert_success();
    let shown = format!("{}{}", plan.stdout, plan.stderr);
    for line in [
        "build x86_64-unknown-linux-musl with zig: packages fn-x86; bins fn-x86",
        "built static (x86_64-unknown-linux-musl): base_image = \"scratch\" has no loader or shared libraries",
        "aarch64-unknown-linux-gnu linked by zig against glibc",
    ] {
        assert!(shown.contains(line), "{line}\n{shown}");
    }
    assert!(!shown.contains("dynamic-on-scratch"), "{shown}");

    fixture
        .pack(&["--compiler", "auto", "-p", "fn-x86"])
        .assert_success();
    let entry = function_entry(&fixture);
    assert_eq!(entry["target"], "x86_64-unknown-linux-musl");
    // Read back by `file`: the bootstrap in the context and in the image is static.
    let bootstrap = fixture.out_dir().join("x86_64/fn-x86/bootstrap");
    let described = run_tool(Command::new("file").arg("-b").arg(&bootstrap));
    assert!(
        described.contains("statically linked") || described.contains("static-pie linked"),
        "{described}"
    );
    assert!(!described.contains("interpreter"), "{described}");
    let work = tempfile::tempdir().unwrap();
    let rootfs = unpack(
        &fixture.out_dir().join("x86_64/fn-x86.oci"),
        "latest",
        work.path(),
    );
    assert_eq!(
        rootfs
            .get("var/runtime/bootstrap")
            .and_then(|(_, bytes)| bytes.clone()),
        Some(std::fs::read(&bootstrap).unwrap())
    );
}

#[test]
fn a_dynamic_binary_on_scratch_is_a_finding_plan_shows_and_nothing_is_written() {
    // A dynamic (glibc) bootstrap cannot start on scratch: `plan` shows the finding, and the
    // pack stops on it before writing anything.
    let dynamic = image_fixture("scratch");
    let gnu = ["--target", "x86_64-unknown-linux-gnu"];
    let plan = common::run({
        let mut command = common::lambda_pack();
        command
            .arg("plan")
            .args(["--compiler", "cargo", "-p", "fn-x86"])
            .args(gnu)
            .current_dir(dynamic.path());
        command
    });
    plan.assert_code(8);
    let line = "fn-x86 (x86_64) bootstrap: [dynamic-on-scratch] is dynamically linked (needs /lib64/ld-linux-x86-64.so.2";
    assert!(
        plan.stdout.contains(line) || plan.stderr.contains(line),
        "{}\n{}",
        plan.stdout,
        plan.stderr
    );
    assert!(
        plan.stderr.contains("but the image is built on base_image = \"scratch\", which has no loader or shared libraries"),
        "{}",
        plan.stderr
    );

    let run = dynamic.pack(&["--compiler", "cargo", "-p", "fn-x86", gnu[0], gnu[1]]);
    run.assert_code(8);
    assert!(run.stderr.contains(line), "{}", run.stderr);
    assert!(
        run.stderr.contains("help: build it statically"),
        "{}",
        run.stderr
    );
    assert!(!dynamic.out_dir().join("manifest.json").exists());
    assert!(
        !dynamic.out_dir().join("x86_64").exists(),
        "nothing written"
    );
}

#[test]
fn an_arm64_function_gets_the_arm64_image_of_an_index() {
    let registry = registry();
    let index = registry.reference("lambda/provided:al2023");
    let fixture = Fixture::copy("basic");
    let text = fixture.read("fn-arm/Cargo.toml").replace(
        "arch = \"arm64\"\n",
        &format!("arch = \"arm64\"\npackage = \"image\"\nbase_image = \"{index}\"\n"),
    );
    fixture.write("fn-arm/Cargo.toml", &text);
    fixture
        .pack(&["--compiler", "cargo", "-p", "fn-arm"])
        .assert_success();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture.out_dir().join("manifest.json")).unwrap())
            .unwrap();
    let artifact = &manifest["artifacts"][0];
    assert_eq!(artifact["oci_layout"], "arm64/fn-arm.oci");
    let arm64_base = skopeo_inspect(&format!("docker://{}", registry.base("arm64")), false);
    assert_eq!(artifact["base_image_digest"], arm64_base["Digest"]);
    let layout = fixture.out_dir().join("arm64/fn-arm.oci");
    let inspected = skopeo_inspect(&format!("oci:{}", layout.display()), false);
    assert_eq!(inspected["Architecture"], "arm64");
    assert_eq!(inspected["Digest"], artifact["image_digest"]);
}

/// The root file system of an image in an OCI layout, unpacked by umoci.
fn unpack(layout: &Path, tag: &str, into: &Path) -> BTreeMap<String, (u32, Option<Vec<u8>>)> {
    run_tool(
        Command::new("umoci")
            .args(["unpack", "--rootless", "--image"])
            .arg(format!("{}:{tag}", layout.display()))
            .arg(into),
    );
    tree(&into.join("rootfs"))
}

#[test]
fn buildah_building_the_dockerfile_gives_the_same_root_file_system() {
    let registry = registry();
    let fixture = image_fixture(&registry.base("x86_64"));
    pack_image(&fixture);
    let out = fixture.out_dir();
    let work = tempfile::tempdir().unwrap();
    let storage = |command: &mut Command| {
        command
            .arg("--storage-driver=vfs")
            .arg("--root")
            .arg(work.path().join("root"))
            .arg("--runroot")
            .arg(work.path().join("runroot"));
    };
    // buildah builds the emitted Dockerfile from its context (COPY only: no container runs).
    let mut bud = Command::new("buildah");
    storage(&mut bud);
    bud.args([
        "bud",
        "--isolation=chroot",
        "--tls-verify=false",
        "-q",
        "-t",
        "fn-x86",
    ])
    .arg(out.join("x86_64/fn-x86"));
    run_tool(&mut bud);
    let built = work.path().join("built.oci");
    let mut push = Command::new("buildah");
    storage(&mut push);
    push.args(["push", "-q", "fn-x86"])
        .arg(format!("oci:{}:latest", built.display()));
    run_tool(&mut push);

    let theirs = unpack(&built, "latest", &work.path().join("theirs"));
    let ours = unpack(
        &out.join("x86_64/fn-x86.oci"),
        "latest",
        &work.path().join("ours"),
    );
    assert!(
        ours.contains_key("var/runtime/bootstrap") && ours.contains_key("lambda-entrypoint.sh")
    );
    let differences: Vec<&String> = ours
        .keys()
        .chain(theirs.keys())
        .filter(|path| ours.get(*path) != theirs.get(*path))
        .collect();
    assert!(differences.is_empty(), "paths that differ: {differences:?}");
}

/// A `docker-credential-<name>` helper in `dir`, speaking Docker's protocol: `get` reads the
/// registry on stdin and answers `{"Username", "Secret"}` for `registry`, "credentials not found"
/// (exit 1) for any other. Each question is logged to `<dir>/<name>.log`.
fn credential_helper(dir: &Path, name: &str, registry: &str) {
    let log = dir.join(format!("{name}.log"));
    let script = format!(
        "#!/bin/sh\n\
         [ \"$1\" = get ] || exit 2\n\
         read -r asked\n\
         echo \"$asked\" >> '{}'\n\
         if [ \"$asked\" = '{registry}' ]; then\n\
         printf '{{\"ServerURL\":\"%s\",\"Username\":\"pusher\",\"Secret\":\"{AUTH_PASSWORD}\"}}' \"$asked\"\n\
         else\n\
         echo 'credentials not found in native keychain'; exit 1\n\
         fi\n",
        log.display()
    );
    let path = dir.join(format!("docker-credential-{name}"));
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn push_takes_credentials_from_a_cred_helper_or_the_creds_store() {
    let open = registry();
    let private = auth_registry();
    let helpers = tempfile::tempdir().unwrap();
    credential_helper(helpers.path(), "lp-helper", &private.host);
    credential_helper(helpers.path(), "lp-store", &private.host);
    let path = format!(
        "{}:{}",
        helpers.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let configs = [
        (
            "lp-helper",
            format!(r#"{{"credHelpers": {{"{}": "lp-helper"}}}}"#, private.host),
        ),
        ("lp-store", r#"{"credsStore": "lp-store"}"#.to_string()),
    ];
    for (helper, config) in configs {
        let repository = private.reference(&format!("{helper}/fn-x86"));
        let fixture = image_fixture(&open.base("x86_64"));
        let text = fixture.read("fn-x86/Cargo.toml").replace(
            "package = \"image\"\n",
            &format!("package = \"image\"\nimage_repository = \"{repository}\"\n"),
        );
        fixture.write("fn-x86/Cargo.toml", &text);
        let docker_config = tempfile::tempdir().unwrap();
        std::fs::write(docker_config.path().join("config.json"), config).unwrap();
        let config_dir = docker_config.path().display().to_string();
        let env = [
            ("DOCKER_CONFIG", config_dir.as_str()),
            ("REGISTRY_AUTH_FILE", ""),
            ("PATH", path.as_str()),
        ];
        let run = fixture.pack_with_env(&["--compiler", "cargo", "-p", "fn-x86", "--push"], &env);
        run.assert_success();
        let digest = function_entry(&fixture)["image_digest"]
            .as_str()
            .unwrap()
            .to_string();
        let pushed = skopeo_inspect_with_creds(&format!("docker://{repository}@{digest}"));
        assert_eq!(pushed["Digest"], digest.as_str(), "{helper}");
        // The helper was asked for the private registry; a store answers for every registry, so
        // it was asked for the base's too and said "not found" (anonymous then).
        let asked = std::fs::read_to_string(helpers.path().join(format!("{helper}.log"))).unwrap();
        assert!(
            asked.lines().any(|l| l == private.host),
            "{helper}: {asked}"
        );
        if helper == "lp-store" {
            assert!(asked.lines().any(|l| l == open.host), "{asked}");
        }
        assert!(!run.stderr.contains(AUTH_PASSWORD), "{}", run.stderr);
    }
}

fn skopeo_inspect_with_creds(reference: &str) -> serde_json::Value {
    serde_json::from_str(&run_tool(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        &format!("--creds=pusher:{AUTH_PASSWORD}"),
        reference,
    ])))
    .unwrap()
}

/// Every file of the fixture outside `target/` (what the tool does not own), with its hash.
fn sources(fixture: &Fixture) -> BTreeMap<String, String> {
    walkdir::WalkDir::new(fixture.path())
        .into_iter()
        .filter_entry(|e| e.file_name() != "target")
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let relative = e.path().strip_prefix(fixture.path()).unwrap();
            (
                relative.display().to_string(),
                common::surfaces::sha256_file(e.path()),
            )
        })
        .collect()
}

#[test]
fn a_layout_blob_changed_by_hand_is_written_again_not_fresh() {
    let registry = registry();
    let repository = registry.reference("damaged/fn-x86");
    let fixture = common::surfaces::image_fixture(&registry.base("x86_64"), Some(&repository));
    let before = pack_image(&fixture);
    let layout = fixture.out_dir().join("x86_64/fn-x86.oci");
    // The includes layer: this tool's own blob (the base's are hard links into the cache).
    let layers = layer_digests(&layout);
    let includes = &layers[layers.len() - 2];
    let blob = layout
        .join("blobs/sha256")
        .join(includes.strip_prefix("sha256:").unwrap());
    let mut bytes = std::fs::read(&blob).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&blob, &bytes).unwrap();
    let sources_before = sources(&fixture);

    let run = fixture.pack(&["--compiler", "cargo", "-p", "fn-x86", "--push"]);
    run.assert_success();
    assert!(
        run.stderr.contains(&format!(
            "the image layout `{}` was changed after it was written: blob `{}` hashes to",
            layout.display(),
            blob.display()
        )),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr
            .lines()
            .any(|l| l.contains("Fresh") && l.contains("fn-x86")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("Pushed fn-x86 as"), "{}", run.stderr);
    // The same image as before the damage, whole again: skopeo reads every blob of it.
    let after = function_entry(&fixture);
    assert_eq!(after["image_digest"], before["image_digest"]);
    assert_eq!(
        common::surfaces::sha256_file(&blob),
        includes.strip_prefix("sha256:").unwrap()
    );
    common::surfaces::assert_out_consistent(&fixture.out_dir());
    assert_eq!(sources(&fixture), sources_before);
}

#[test]
fn a_bad_image_repository_is_refused_when_the_metadata_is_read() {
    for (bad, why) in [
        ("127.0.0.1:5000/Team/fn", "`Team` has uppercase letters"),
        (
            "127.0.0.1:5000/../fn",
            "`..` is not a repository path component",
        ),
        ("https://127.0.0.1:5000/fn", "`https://` is a URL scheme"),
    ] {
        let fixture = common::surfaces::image_fixture("scratch", Some(bad));
        let sources_before = sources(&fixture);
        let run = fixture.pack(&["--compiler", "cargo", "-p", "fn-x86", "--push"]);
        run.assert_code(3);
        assert!(
            run.stderr.contains("key `image_repository`") && run.stderr.contains(why),
            "{bad}: {}",
            run.stderr
        );
        assert!(run.stderr.contains("fn-x86/Cargo.toml"), "{}", run.stderr);
        assert!(run.stderr.contains("help:"), "{}", run.stderr);
        // Refused before any build.
        assert!(!run.stderr.contains("Compiling"), "{}", run.stderr);
        assert!(!fixture.out_dir().exists());
        assert_eq!(sources(&fixture), sources_before);
    }
}
