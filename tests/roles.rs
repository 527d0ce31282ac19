//! Crate roles: extension layers, shared-code layers, and functions that attach them.

mod common;

use common::*;

#[test]
fn every_role_packs_in_one_run_for_both_architectures() {
    let fixture = Fixture::copy("roles");
    // zig (auto): the layer's cdylib needs a gnu target.
    let run = fixture.pack(&[]);
    run.assert_success();
    let out = fixture.out_dir();
    let manifest = manifest(&out);
    let listed: Vec<(String, String, String)> = manifest["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap().into(),
                a["arch"].as_str().unwrap().into(),
                a["kind"].as_str().unwrap().into(),
            )
        })
        .collect();
    let expected = [
        ("hello", "x86_64", "function"),
        ("tools", "x86_64", "layer"),
        ("audit", "arm64", "extension"),
        ("orders", "arm64", "function"),
        ("tools", "arm64", "layer"),
    ];
    assert_eq!(
        listed,
        expected.map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    );
    let find = |name: &str, arch: &str| {
        manifest["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name && a["arch"] == arch)
            .unwrap()
            .clone()
    };

    // The shared-code layer: bins on PATH, cdylibs on LD_LIBRARY_PATH, assets under the root;
    // once per architecture of the functions attaching it, each ELF for its machine.
    for (arch, machine) in [("x86_64", EM_X86_64), ("arm64", EM_AARCH64)] {
        let layer = find("tools", arch);
        assert_eq!(layer["compatible_architectures"], serde_json::json!([arch]));
        assert_eq!(
            layer["compatible_runtimes"],
            serde_json::json!(["provided.al2023"])
        );
        assert_eq!(layer["bin"], serde_json::Value::Null);
        let zip = out.join(layer["path"].as_str().unwrap());
        let entries = python_entries(&zip);
        let tree: Vec<(&str, u32)> = entries.iter().map(|e| (e.name.as_str(), e.mode)).collect();
        assert_eq!(
            tree,
            [
                ("bin/", 0o40755),
                ("bin/tool-echo", 0o100755),
                ("lib/", 0o40755),
                ("lib/libtools.so", 0o100755),
                ("share/", 0o40755),
                ("share/tools/", 0o40755),
                ("share/tools/prices.csv", 0o100644),
            ]
        );
        for entry in entries
            .iter()
            .filter(|e| e.name == "bin/tool-echo" || e.name == "lib/libtools.so")
        {
            assert_eq!(entry.elf_machine, Some(machine), "{arch} {}", entry.name);
        }
        let listing = zipinfo(&zip);
        assert!(
            listing.lines().any(|l| l.starts_with("-rwxr-xr-x")
                && l.contains(" unx ")
                && l.ends_with(" lib/libtools.so")),
            "{listing}"
        );
    }

    // The extension layer: the binary under extensions/, named as it registers.
    let audit = find("audit", "arm64");
    assert_eq!(audit["bin"], "audit");
    assert_eq!(
        audit["compatible_architectures"],
        serde_json::json!(["arm64"])
    );
    let zip = out.join(audit["path"].as_str().unwrap());
    let tree: Vec<(String, u32, Option<u16>)> = python_entries(&zip)
        .into_iter()
        .map(|e| (e.name, e.mode, e.elf_machine))
        .collect();
    assert_eq!(
        tree,
        [
            ("extensions/".to_string(), 0o40755, None),
            ("extensions/audit".to_string(), 0o100755, Some(EM_AARCH64))
        ]
    );
    let listing = zipinfo(&zip);
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("drwxr-xr-x") && l.ends_with(" extensions/")),
        "{listing}"
    );

    // Functions list what they attach, in order, and their size with it.
    let orders = find("orders", "arm64");
    assert_eq!(orders["layers"], serde_json::json!(["tools", "audit"]));
    let with_layers = orders["size_unzipped"].as_u64().unwrap()
        + find("tools", "arm64")["size_unzipped"].as_u64().unwrap()
        + audit["size_unzipped"].as_u64().unwrap();
    assert_eq!(
        orders["size_unzipped_with_layers"].as_u64(),
        Some(with_layers)
    );
    assert_eq!(orders["upload"], "direct");
    assert_eq!(orders.get("compatible_architectures"), None);
    let hello = find("hello", "x86_64");
    assert_eq!(hello["layers"], serde_json::json!(["tools"]));
    assert_eq!(
        python_entry(&out.join(hello["path"].as_str().unwrap()), "bootstrap").elf_machine,
        Some(EM_X86_64)
    );

    // One cargo invocation per Rust target, however many crates and roles.
    assert_eq!(
        run.stderr.matches("    Building ").count(),
        2,
        "{}",
        run.stderr
    );

    // plan explains each role.
    let plan = fixture.pack(&["plan"]);
    plan.assert_success();
    for reason in [
        "audit: extension zip arm64",
        "extension: depends on lambda-extension",
        "layer: role = \"layer\" in [package.metadata.lambda-pack]",
        "attached by hello, orders: built for x86_64, arm64",
        "layers, in merge order: tools, audit",
    ] {
        assert!(
            plan.stderr.contains(reason),
            "{reason:?} missing from:\n{}",
            plan.stderr
        );
    }
}

#[test]
fn a_cdylib_layer_without_zig_is_refused_before_building() {
    let fixture = Fixture::copy("roles");
    let run = fixture.pack(&["--compiler", "cargo"]);
    run.assert_code(6);
    assert!(
        run.stderr.contains("layer `tools` has a cdylib"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("pip install ziglang"), "{}", run.stderr);
    assert!(
        !run.stderr.contains("Compiling"),
        "nothing was built:\n{}",
        run.stderr
    );
}

/// Adds data-only layer crates to a copy of `fixtures/basic` and makes `fn-x86` attach them.
fn basic_with_layers(layers: &[(&str, &[(&str, &str)])], attach: &[&str]) -> Fixture {
    let fixture = Fixture::copy("basic");
    let mut members: Vec<String> = vec![
        "fn-x86".into(),
        "fn-arm".into(),
        "multi".into(),
        "shared".into(),
    ];
    for (name, files) in layers {
        members.push(name.to_string());
        fixture.write(
            &format!("{name}/Cargo.toml"),
            &format!(
                "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[package.metadata.lambda-pack]\nrole = \"layer\"\ninclude = [\"data/**:share\"]\n"
            ),
        );
        fixture.write(&format!("{name}/src/lib.rs"), "");
        for (path, contents) in *files {
            fixture.write(&format!("{name}/data/{path}"), contents);
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
    let list = attach
        .iter()
        .map(|a| format!("\"{a}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let function = fixture.read("fn-x86/Cargo.toml").replace(
        "arch = \"x86_64\"\n",
        &format!("arch = \"x86_64\"\nlayers = [{list}]\n"),
    );
    fixture.write("fn-x86/Cargo.toml", &function);
    fixture
}

#[test]
fn six_layers_are_more_than_a_zip_allows() {
    let names = ["l1", "l2", "l3", "l4", "l5", "l6"];
    let layers: Vec<(&str, &[(&str, &str)])> =
        names.iter().map(|n| (*n, &[("x.txt", "x")][..])).collect();

    // With package = "zip", six layers is an error: Lambda takes at most five.
    let fixture = basic_with_layers(&layers, &names);
    let text = fixture
        .read("fn-x86/Cargo.toml")
        .replace("arch = \"x86_64\"", "arch = \"x86_64\"\npackage = \"zip\"");
    fixture.write("fn-x86/Cargo.toml", &text);
    let run = fixture.pack(&["--compiler", "cargo", "-p", "fn-x86"]);
    run.assert_code(9);
    assert!(
        run.stderr.contains(
            "function `fn-x86` attaches 6 layers (l1, l2, l3, l4, l5, l6); Lambda allows at most 5"
        ),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("help:"), "{}", run.stderr);
    assert!(
        !fixture.out_dir().join("manifest.json").exists(),
        "nothing written"
    );

    // Left to choose, the function becomes a container image holding all six (built on the
    // suite's registry's base image: tests contact only loopback addresses).
    let auto = basic_with_layers(&layers, &names);
    let text = auto.read("fn-x86/Cargo.toml").replace(
        "arch = \"x86_64\"",
        &format!(
            "arch = \"x86_64\"\nbase_image = \"{}\"",
            common::registry::registry().base("x86_64")
        ),
    );
    auto.write("fn-x86/Cargo.toml", &text);
    let run = auto.pack(&["--compiler", "cargo", "-p", "fn-x86"]);
    run.assert_success();
    let manifest = manifest(&auto.out_dir());
    assert_eq!(artifact(&manifest, "fn-x86")["format"], "image");
    let dockerfile =
        std::fs::read_to_string(auto.out_dir().join("x86_64/fn-x86/Dockerfile")).unwrap();
    assert_eq!(dockerfile.matches("\nCOPY opt/").count(), 6, "{dockerfile}");
    // The OCI image has the same layers: the base's, one per Lambda layer, includes, bootstrap.
    let base = common::registry::skopeo_inspect(
        &format!("docker://{}", common::registry::registry().base("x86_64")),
        false,
    );
    let image = common::registry::skopeo_inspect(
        &format!("oci:{}", auto.out_dir().join("x86_64/fn-x86.oci").display()),
        true,
    );
    assert_eq!(
        image["layers"].as_array().unwrap().len(),
        base["Layers"].as_array().unwrap().len() + 6 + 2,
        "{image}"
    );
    let plan = auto.pack(&["plan", "--compiler", "cargo", "-p", "fn-x86"]);
    assert!(
        plan.stderr.contains("image (6 layers > 5 limit)"),
        "{}",
        plan.stderr
    );

    let five = basic_with_layers(&layers[..5], &names[..5]);
    five.pack(&["--compiler", "cargo", "-p", "fn-x86"])
        .assert_success();
    assert_eq!(artifact(&manifest_of(&five), "fn-x86")["format"], "zip");
}

fn manifest_of(fixture: &Fixture) -> serde_json::Value {
    manifest(&fixture.out_dir())
}

#[test]
fn attaching_a_missing_crate_or_a_function_is_an_error() {
    for (attach, expected) in [
        (
            "nope",
            "names `nope`, which is not a crate of this workspace",
        ),
        (
            "fn-arm",
            "attaches `fn-arm`, which is a function, not a layer or extension",
        ),
        (
            "shared",
            "attaches `shared`, which has no binary or cdylib to pack",
        ),
    ] {
        let fixture = basic_with_layers(&[], &[attach]);
        let run = fixture.pack(&["--compiler", "cargo"]);
        run.assert_code(3);
        assert!(run.stderr.contains(expected), "{attach}: {}", run.stderr);
        assert!(run.stderr.contains("fn-x86/Cargo.toml"), "{}", run.stderr);
        assert!(run.stderr.contains("help:"), "{}", run.stderr);
    }
}

#[test]
fn layers_writing_the_same_path_warn_and_the_later_wins() {
    let fixture = basic_with_layers(
        &[
            ("base", &[("config.json", "{}"), ("a.txt", "a")]),
            ("overrides", &[("config.json", "{\"debug\":true}")]),
        ],
        &["base", "overrides"],
    );
    let run = fixture.pack(&["--compiler", "cargo", "-p", "fn-x86"]);
    run.assert_success();
    assert!(
        run.stderr.contains("warning: layers `base` and `overrides` of function `fn-x86` (x86_64) all write /opt/share/config.json; `overrides` wins because it is attached last"),
        "{}",
        run.stderr
    );
    let manifest = manifest(&fixture.out_dir());
    assert_eq!(
        artifact(&manifest, "fn-x86")["layers"],
        serde_json::json!(["base", "overrides"])
    );
    // Data-only layers follow the function's architecture.
    assert_eq!(artifact(&manifest, "base")["arch"], "x86_64");
}

#[test]
fn a_binary_without_a_runtime_crate_that_reads_the_runtime_api_is_packed_without_a_doubt() {
    // fn-arm depends on no Lambda crate and sets no role, but its binary reads
    // AWS_LAMBDA_RUNTIME_API (as a hand-written runtime client does): the binary settles it.
    let fixture = Fixture::copy("basic");
    let run = fixture.pack(&["--compiler", "cargo", "-p", "fn-arm"]);
    run.assert_success();
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);
    let manifest = manifest(&fixture.out_dir());
    assert_eq!(artifact(&manifest, "fn-arm")["kind"], "function");
}

#[test]
fn an_extension_listing_an_amazon_linux_2_runtime_is_built_for_its_glibc() {
    // An extension meant for Node.js 18 and Python 3.13 functions: Node.js 18 runs on Amazon
    // Linux 2 (glibc 2.26), so a binary linked for provided.al2023's glibc 2.34 (the workspace's
    // runtime) would stop there with "version `GLIBC_2.34' not found".
    let fixture = Fixture::copy("basic");
    let root = fixture.read("Cargo.toml").replace(
        "members = [\"fn-x86\", \"fn-arm\", \"multi\", \"shared\"]",
        "members = [\"fn-x86\", \"fn-arm\", \"multi\", \"shared\", \"node-ext\"]",
    );
    fixture.write("Cargo.toml", &root);
    fixture.write(
        "node-ext/Cargo.toml",
        "[package]\nname = \"node-ext\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
         [package.metadata.lambda-pack]\nrole = \"extension\"\n\
         compatible_runtimes = [\"nodejs18.x\", \"python3.13\"]\n",
    );
    fixture.write(
        "node-ext/src/main.rs",
        "fn main() {\n    println!(\"{:?}\", std::env::var(\"AWS_LAMBDA_RUNTIME_API\"));\n}\n",
    );
    let run = fixture.pack(&["-p", "node-ext", "--compiler", "zig", "-v"]);
    run.assert_success();
    assert!(
        run.stderr.contains("glibc 2.26"),
        "the build names its glibc pin: {}",
        run.stderr
    );
    let out = fixture.out_dir();
    let manifest = manifest(&out);
    let entry = artifact(&manifest, "node-ext");
    assert_eq!(entry["kind"], "extension");
    assert_eq!(
        entry["compatible_runtimes"],
        serde_json::json!(["nodejs18.x", "python3.13"])
    );
    let binary = fixture.path().join("node-ext.elf");
    unzip_entry(
        &out.join(entry["path"].as_str().unwrap()),
        "extensions/node-ext",
        &binary,
    );
    let newest = newest_glibc_by_objdump(&binary).expect("a glibc binary");
    assert!(newest <= (2, 26), "needs GLIBC_{}.{}", newest.0, newest.1);

    // plan says why, and lists both runtimes it checked the binary against.
    let plan = fixture.pack(&["plan", "-p", "node-ext", "--compiler", "zig"]);
    plan.assert_success();
    assert!(
        plan.stderr.contains(
            "nodejs18.x runs on the Amazon Linux of provided.al2 (glibc 2.26): built and checked for it too"
        ),
        "{}",
        plan.stderr
    );
    assert!(
        plan.stderr
            .contains("runtime provided.al2023, provided.al2"),
        "{}",
        plan.stderr
    );
}

#[test]
fn a_bin_that_registers_as_an_extension_is_a_function_with_a_warning_until_its_role_says() {
    // Shaped like a Runtime API proxy extension: no Lambda crate, a binary that reads
    // AWS_LAMBDA_RUNTIME_API and registers with the Extensions API under its own name.
    let fixture = Fixture::copy("basic");
    let root = fixture.read("Cargo.toml").replace(
        "members = [\"fn-x86\", \"fn-arm\", \"multi\", \"shared\"]",
        "members = [\"fn-x86\", \"fn-arm\", \"multi\", \"shared\", \"proxy\"]",
    );
    fixture.write("Cargo.toml", &root);
    let manifest_text = "[package]\nname = \"proxy\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
                         [[bin]]\nname = \"lrap\"\npath = \"src/main.rs\"\n";
    fixture.write("proxy/Cargo.toml", manifest_text);
    fixture.write(
        "proxy/src/main.rs",
        "fn main() {\n    let api = std::env::var(\"AWS_LAMBDA_RUNTIME_API\").unwrap_or_default();\n    \
         println!(\"POST http://{api}/2020-01-01/extension/register Lambda-Extension-Name: lrap\");\n}\n",
    );
    let plan = fixture.pack(&[
        "plan",
        "-p",
        "proxy",
        "--compiler",
        "cargo",
        "--message-format",
        "json",
    ]);
    plan.assert_success();
    let warning = "bin `lrap` of package `proxy` is packed as a function, but its binary registers with the Extensions API (it sends `Lambda-Extension-Name`), as an external extension does; if it runs from /opt/extensions, set role = \"extension\" in [package.metadata.lambda-pack.bin.lrap]";
    assert!(plan.stderr.contains(warning), "{}", plan.stderr);
    let document: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
    let warnings = document["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains(warning)),
        "{warnings:?}"
    );

    // Its role written down: an extension layer, `extensions/lrap`, and nothing to warn of.
    fixture.write(
        "proxy/Cargo.toml",
        &format!(
            "{manifest_text}\n[package.metadata.lambda-pack.bin.lrap]\nrole = \"extension\"\n"
        ),
    );
    let run = fixture.pack(&["-p", "proxy", "--compiler", "cargo"]);
    run.assert_success();
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);
    let manifest = manifest(&fixture.out_dir());
    let entry = artifact(&manifest, "lrap");
    assert_eq!(entry["kind"], "extension");
    let zip = fixture.out_dir().join(entry["path"].as_str().unwrap());
    let names: Vec<String> = python_entries(&zip).into_iter().map(|e| e.name).collect();
    assert_eq!(names, ["extensions/", "extensions/lrap"]);
}

#[test]
fn a_web_server_without_a_lambda_crate_that_attaches_a_layer_is_a_function() {
    // Shaped like a web app behind the Lambda Web Adapter: a plain HTTP server (no Lambda crate,
    // never reads AWS_LAMBDA_RUNTIME_API) that attaches the adapter's layer with `layers`. It was
    // skipped as "not a Lambda binary" while the layer it attaches was still packed for it.
    let fixture = Fixture::copy("basic");
    let root = fixture.read("Cargo.toml").replace(
        "members = [\"fn-x86\", \"fn-arm\", \"multi\", \"shared\"]",
        "members = [\"fn-x86\", \"fn-arm\", \"multi\", \"shared\", \"web\", \"adapter\"]",
    );
    fixture.write("Cargo.toml", &root);
    fixture.write(
        "web/Cargo.toml",
        "[package]\nname = \"web\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
         [package.metadata.lambda-pack]\nlayers = [\"adapter\"]\n",
    );
    fixture.write(
        "web/src/main.rs",
        "fn main() {\n    println!(\"listening on 0.0.0.0:8080\");\n}\n",
    );
    fixture.write(
        "adapter/Cargo.toml",
        "[package]\nname = \"adapter\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
         [package.metadata.lambda-pack]\nrole = \"layer\"\ninclude = [\"bootstrap\", \"extensions/*\"]\n",
    );
    fixture.write("adapter/src/lib.rs", "");
    // As the adapter's layer: an exec wrapper at /opt/bootstrap (for managed runtimes, unused
    // beside the function's own binary, so no warning) and the extension itself.
    fixture.write("adapter/bootstrap", "#!/bin/sh\nexec \"$@\"\n");
    fixture.write("adapter/extensions/adapter", "#!/bin/sh\nexit 0\n");
    let plan = fixture.pack(&["plan", "-p", "web", "--compiler", "cargo"]);
    plan.assert_success();
    assert!(!plan.stderr.contains("skipped"), "{}", plan.stderr);
    assert!(
        plan.stderr.contains(
            "function: a binary that attaches layers (`layers`), with no Lambda crate among its dependencies: its Runtime API client may come from a layer"
        ),
        "{}",
        plan.stderr
    );
    let run = fixture.pack(&["-p", "web", "--compiler", "cargo"]);
    run.assert_success();
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);
    let manifest = manifest(&fixture.out_dir());
    assert_eq!(artifact(&manifest, "web")["kind"], "function");
    assert_eq!(
        artifact(&manifest, "web")["layers"],
        serde_json::json!(["adapter"])
    );
    assert_eq!(artifact(&manifest, "adapter")["kind"], "layer");
}
