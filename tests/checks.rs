//! Binary checks before upload, container-image routing, and `inspect`.

mod common;

use common::*;

#[test]
fn host_gnu_build_is_rejected_for_al2_and_the_zig_build_is_accepted() {
    let fixture = Fixture::copy("basic");
    // The host's linker: this machine's glibc is newer than provided.al2's 2.26.
    let host = fixture.pack(&[
        "-p",
        "fn-x86",
        "--target",
        "x86_64-unknown-linux-gnu",
        "--compiler",
        "cargo",
        "--runtime",
        "provided.al2",
    ]);
    host.assert_code(8);
    for text in [
        "[glibc-too-new]",
        "provided.al2 has 2.26 (linked against the build host's glibc): use --compiler zig or musl",
        "not found (required by /var/task/bootstrap)",
        "help:",
    ] {
        assert!(
            host.stderr.contains(text),
            "{text:?} missing from:\n{}",
            host.stderr
        );
    }
    assert!(
        !fixture.out_dir().join("manifest.json").exists(),
        "nothing written"
    );

    // The same crate through zig's pinned glibc, with the warning that provided.al2 is deprecated.
    let zig_args = [
        "-p",
        "fn-x86",
        "--compiler",
        "zig",
        "--runtime",
        "provided.al2",
    ];
    let zig = fixture.pack(&zig_args);
    zig.assert_success();
    let zig_manifest = manifest(&fixture.out_dir());
    assert_eq!(artifact(&zig_manifest, "fn-x86")["glibc"], "2.26");
    let deprecated = "warning: `fn-x86` (x86_64): built for provided.al2, which Lambda deprecated \
                      on 2026-07-31; it blocks creating functions on it from 2026-08-31 and \
                      updating them from 2026-09-30; help: --runtime provided.al2023";
    assert!(zig.stderr.contains(deprecated), "{}", zig.stderr);
    // The plan's JSON has every warning the human output has.
    let mut plan_args = vec!["plan", "--message-format", "json"];
    plan_args.extend(zig_args);
    let plan = fixture.pack(&plan_args);
    plan.assert_success();
    let plan: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
    assert_eq!(
        plan["warnings"],
        serde_json::json!([deprecated.strip_prefix("warning: ").unwrap()]),
        "{plan:#}"
    );
    // provided.al2023 has no such warning.
    let current = fixture.pack(&["plan", "-p", "fn-x86", "--compiler", "zig"]);
    current.assert_success();
    assert!(!current.stderr.contains("deprecated"), "{}", current.stderr);

    // People who know better can downgrade the finding.
    let allowed = fixture.pack(&[
        "-p",
        "fn-x86",
        "--target",
        "x86_64-unknown-linux-gnu",
        "--compiler",
        "cargo",
        "--runtime",
        "provided.al2",
        "--allow",
        "glibc-too-new",
    ]);
    allowed.assert_success();
    let manifest = manifest(&fixture.out_dir());
    let warnings = artifact(&manifest, "fn-x86")["warnings"]
        .as_array()
        .unwrap()
        .clone();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("[glibc-too-new]")
                && w.as_str().unwrap().ends_with("(allowed)")),
        "{warnings:?}"
    );
}

#[test]
fn a_function_over_the_zip_limit_becomes_a_dockerfile_and_context() {
    let fixture = Fixture::copy("basic");
    // A sparse file: measured at its full size, stored in almost no space.
    let big = std::fs::File::create(fixture.path().join("fn-x86/assets/model.bin")).unwrap();
    big.set_len(262_144_001).unwrap();
    drop(big);

    let plan = fixture.pack(&["plan", "--compiler", "cargo", "-p", "fn-x86"]);
    plan.assert_success();
    assert!(
        plan.stderr.contains("fn-x86: function image x86_64"),
        "{}",
        plan.stderr
    );
    assert!(
        plan.stderr
            .contains("image (250.4 MB unzipped > 250.0 MB limit)"),
        "{}",
        plan.stderr
    );

    // The image is built on AWS's base, which the test takes from the suite's registry into the
    // cache (tests contact only loopback addresses); --offline then uses the cache alone.
    common::registry::fill_cache(
        &fixture.path().join("target"),
        &common::registry::registry().reference("lambda/provided:al2023"),
        "public.ecr.aws/lambda/provided:al2023-x86_64",
    );
    let run = fixture.pack(&["--compiler", "cargo", "-p", "fn-x86", "--offline"]);
    run.assert_success();
    let out = fixture.out_dir();
    let manifest = manifest(&out);
    let entry = artifact(&manifest, "fn-x86");
    assert_eq!(entry["format"], "image");
    assert_eq!(entry["oci_layout"], "x86_64/fn-x86.oci");
    assert_eq!(entry["path"], "x86_64/fn-x86");
    assert_eq!(entry["dockerfile"], "x86_64/fn-x86/Dockerfile");
    assert_eq!(
        entry["build_command"],
        "docker build --platform linux/amd64 --provenance=false -t fn-x86 x86_64/fn-x86"
    );
    let context = out.join("x86_64/fn-x86");
    let image_size: u64 = walkdir::WalkDir::new(&context)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| {
            e.file_type().is_file()
                && e.file_name() != "Dockerfile"
                && e.file_name() != ".dockerignore"
        })
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert_eq!(entry["image_size"].as_u64(), Some(image_size));
    assert!(
        run.stderr
            .contains("image: docker build --platform linux/amd64"),
        "{}",
        run.stderr
    );

    // The bootstrap keeps its mode and machine; includes sit under task/.
    use std::os::unix::fs::PermissionsExt;
    let bootstrap = context.join("bootstrap");
    assert_eq!(
        std::fs::metadata(&bootstrap).unwrap().permissions().mode() & 0o777,
        0o755
    );
    assert_eq!(
        u16::from_le_bytes(
            std::fs::read(&bootstrap).unwrap()[18..20]
                .try_into()
                .unwrap()
        ),
        EM_X86_64
    );
    assert_eq!(
        std::fs::metadata(context.join("task/assets/model.bin"))
            .unwrap()
            .len(),
        262_144_001
    );
    assert_eq!(
        std::fs::read_to_string(context.join("task/etc/app.toml")).unwrap(),
        "answer = 42\n"
    );

    // Every COPY source is in the context, and everything in the context is copied.
    let dockerfile = std::fs::read_to_string(context.join("Dockerfile")).unwrap();
    assert!(
        dockerfile.contains("\nFROM public.ecr.aws/lambda/provided:al2023-x86_64\n"),
        "{dockerfile}"
    );
    assert!(
        dockerfile.ends_with("CMD [\"bootstrap\"]\n"),
        "{dockerfile}"
    );
    let sources: Vec<&str> = dockerfile
        .lines()
        .filter_map(|l| l.strip_prefix("COPY "))
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(sources, ["task/", "bootstrap"]);
    for source in &sources {
        assert!(
            context.join(source).exists(),
            "{source} missing from the context"
        );
    }
    let mut top: Vec<String> = std::fs::read_dir(&context)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            if e.file_type().unwrap().is_dir() {
                format!("{name}/")
            } else {
                name
            }
        })
        .filter(|n| n != "Dockerfile" && n != ".dockerignore")
        .collect();
    top.sort();
    let mut copied: Vec<String> = sources.iter().map(|s| s.to_string()).collect();
    copied.sort();
    assert_eq!(top, copied);
    assert_eq!(
        std::fs::read_to_string(context.join(".dockerignore")).unwrap(),
        "*\n!bootstrap\n!task/\n!opt/\n"
    );

    // Unchanged inputs leave the context as it was.
    let before = snapshot(&context);
    let again = fixture.pack(&["--compiler", "cargo", "-p", "fn-x86", "--offline"]);
    again.assert_success();
    assert!(
        again.stderr.contains("Fresh function fn-x86"),
        "{}",
        again.stderr
    );
    assert_eq!(snapshot(&context), before);

    // package = "zip" refuses the image and names both sizes.
    let text = fixture
        .read("fn-x86/Cargo.toml")
        .replace("arch = \"x86_64\"", "arch = \"x86_64\"\npackage = \"zip\"");
    fixture.write("fn-x86/Cargo.toml", &text);
    let refused = fixture.pack(&["--compiler", "cargo", "-p", "fn-x86"]);
    refused.assert_code(9);
    assert!(refused.stderr.contains("bytes unzipped with its layers (250.4 MB), over Lambda's 262144000-byte (250.0 MB) limit"), "{}", refused.stderr);
    assert_eq!(
        snapshot(&context),
        before,
        "a refused run leaves the previous output intact"
    );
}

#[test]
fn inspect_reports_facts_and_refuses_what_is_not_elf() {
    let json = lambda_pack()
        .args([
            "inspect",
            "/bin/ls",
            "--runtime",
            "provided.al2023",
            "--message-format",
            "json",
        ])
        .output()
        .unwrap();
    let reports: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON on stdout");
    assert_eq!(reports[0]["facts"]["machine"], EM_X86_64);
    assert_eq!(reports[0]["facts"]["linkage"], "dynamic");
    assert!(
        reports[0]["facts"]["needed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "libc.so.6")
    );

    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not a binary\n").unwrap();
    let truncated = dir.path().join("truncated");
    std::fs::write(&truncated, &std::fs::read("/bin/ls").unwrap()[..200]).unwrap();
    for (file, expected) in [(&text, "is not an ELF binary"), (&truncated, "truncated")] {
        let output = lambda_pack().arg("inspect").arg(file).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(8), "{stderr}");
        assert!(
            stderr.contains(expected),
            "{expected:?} missing from: {stderr}"
        );
        assert!(stderr.contains(&file.display().to_string()), "{stderr}");
        assert!(stderr.contains("help:"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn missing_shared_libraries_go_into_a_generated_layer() {
    let fixture = Fixture::copy("sqlite-fn");
    let args = [
        "--target",
        "x86_64-unknown-linux-gnu",
        "--compiler",
        "cargo",
    ];
    let run = fixture.pack(&args);
    run.assert_success();
    let out = fixture.out_dir();
    let manifest = manifest(&out);
    let function = artifact(&manifest, "sqlite-fn");
    assert_eq!(function["layers"], serde_json::json!(["sqlite-fn-libs"]));
    let layer = artifact(&manifest, "sqlite-fn-libs");
    assert_eq!(layer["kind"], "layer");
    assert_eq!(
        layer["compatible_architectures"],
        serde_json::json!(["x86_64"])
    );
    let entries = python_entries(&out.join(layer["path"].as_str().unwrap()));
    let library = entries
        .iter()
        .find(|e| e.name == "lib/libsqlite3.so.0")
        .expect("libsqlite3 bundled");
    assert_eq!(
        library.mode, 0o100755,
        "the real file under its soname, not a symlink"
    );
    assert_eq!(library.elf_machine, Some(EM_X86_64));
    assert_eq!(
        function["size_unzipped_with_layers"].as_u64().unwrap(),
        function["size_unzipped"].as_u64().unwrap() + layer["size_unzipped"].as_u64().unwrap()
    );

    // libxml2 pulls in more libraries the runtime lacks: all of them come along.
    let xml_layer = artifact(&manifest, "xml-fn-libs");
    let names: Vec<String> = python_entries(&out.join(xml_layer["path"].as_str().unwrap()))
        .into_iter()
        .map(|e| e.name)
        .collect();
    for soname in [
        "lib/libxml2.so.2",
        "lib/liblzma.so.5",
        "lib/libicuuc.so.72",
        "lib/libicudata.so.72",
    ] {
        assert!(
            names.iter().any(|n| n == soname),
            "{soname} missing from {names:?}"
        );
    }

    // The layer's SBOM lists each bundled library with its hash and, as dpkg knows it, the
    // Debian package it came from.
    let sbom: serde_json::Value =
        serde_json::from_str(&fixture.read("target/lambda-pack/x86_64/sqlite-fn-libs.cdx.json"))
            .unwrap();
    assert_eq!(layer["sbom"], "x86_64/sqlite-fn-libs.cdx.json");
    assert_eq!(layer["sbom_components"], 1);
    let component = &sbom["components"][0];
    assert_eq!(component["name"], "libsqlite3.so.0");
    let bytes = std::process::Command::new("unzip")
        .arg("-p")
        .arg(out.join(layer["path"].as_str().unwrap()))
        .arg("lib/libsqlite3.so.0")
        .output()
        .unwrap()
        .stdout;
    use sha2::Digest;
    let digest: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(component["hashes"][0]["content"], digest.as_str());
    let dpkg = std::process::Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", "libsqlite3-0:amd64"])
        .output()
        .unwrap();
    let version = String::from_utf8(dpkg.stdout).unwrap();
    assert_eq!(component["version"], version.as_str());
    let purl = component["purl"].as_str().unwrap();
    assert!(
        purl.starts_with("pkg:deb/")
            && purl.contains("/libsqlite3-0@")
            && purl.ends_with("?arch=amd64"),
        "{purl}"
    );

    // Laid out as Lambda would, the loader resolves every soname, libsqlite3 from the layer.
    for (function, layer) in [("sqlite-fn", "sqlite-fn-libs"), ("xml-fn", "xml-fn-libs")] {
        let sandbox = tempfile::tempdir().unwrap();
        for (zip, dir) in [
            (format!("x86_64/{function}.zip"), "task"),
            (format!("x86_64/{layer}.zip"), "opt"),
        ] {
            let status = std::process::Command::new("unzip")
                .args(["-q", "-o"])
                .arg(out.join(zip))
                .arg("-d")
                .arg(sandbox.path().join(dir))
                .status()
                .unwrap();
            assert!(status.success());
        }
        let listing = std::process::Command::new("/lib64/ld-linux-x86-64.so.2")
            .arg("--library-path")
            .arg(sandbox.path().join("opt/lib"))
            .arg("--list")
            .arg(sandbox.path().join("task/bootstrap"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&listing.stdout);
        assert!(listing.status.success(), "{text}");
        assert!(!text.contains("not found"), "{text}");
        let opt_lib = sandbox.path().join("opt/lib").display().to_string();
        let wanted = if function == "sqlite-fn" {
            "libsqlite3.so.0"
        } else {
            "libxml2.so.2"
        };
        assert!(
            text.lines()
                .any(|l| l.contains(wanted) && l.contains(&opt_lib)),
            "{wanted} resolves into the layer:\n{text}"
        );
        let ran = std::process::Command::new(sandbox.path().join("task/bootstrap"))
            .env("LD_LIBRARY_PATH", sandbox.path().join("opt/lib"))
            .output()
            .unwrap();
        assert!(
            ran.status.success(),
            "{}",
            String::from_utf8_lossy(&ran.stderr)
        );
    }

    // Turned off, the missing library is a finding that stops the pack.
    let text =
        fixture.read("Cargo.toml") + "\n[package.metadata.lambda-pack]\nbundle_libs = false\n";
    fixture.write("Cargo.toml", &text);
    let refused = fixture.pack(&args);
    refused.assert_code(8);
    assert!(
        refused.stderr.contains("[missing-library]") && refused.stderr.contains("libsqlite3.so.0"),
        "{}",
        refused.stderr
    );
}

#[test]
fn inspect_refuses_pipes_devices_and_directories_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("bootstrap.fifo");
    // mkfifo(1), not the crate's code: a FIFO with no writer, which would block a plain `open`.
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    for (path, what) in [
        (fifo.as_path(), "a FIFO (named pipe)"),
        (std::path::Path::new("/dev/zero"), "a character device"),
        (dir.path(), "a directory"),
    ] {
        let mut command = lambda_pack();
        command.arg("inspect").arg(path);
        let started = std::time::Instant::now();
        let run = run_within(command, std::time::Duration::from_secs(20));
        eprintln!("inspect {}: {:?}", path.display(), started.elapsed());
        run.assert_code(3);
        assert!(
            run.stderr.contains(&format!(
                "`{}` is {what}, not a regular file",
                path.display()
            )),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("help:"), "{}", run.stderr);
    }
    // A file larger than Lambda's largest artifact (sparse: it takes no disk) is refused by its
    // size, before a byte of it is read.
    let huge = dir.path().join("huge");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(10 * 1024 * 1024 * 1024 + 1)
        .unwrap();
    let mut command = lambda_pack();
    command.arg("inspect").arg(&huge);
    let run = run_within(command, std::time::Duration::from_secs(20));
    run.assert_code(3);
    assert!(
        run.stderr.contains(&format!(
            "`{}` is 10737418241 bytes, more than the 10737418240 bytes (10 GiB)",
            huge.display()
        )),
        "{}",
        run.stderr
    );
}
