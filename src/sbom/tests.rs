use super::*;

/// A workspace of path crates, resolved by the real cargo: `fn-a` and `fn-b` share `common`;
/// only `fn-a` uses `only-a` (through a target-specific table for Linux) and the proc-macro
/// `derive-it`; `fn-b` has a build dependency and a dev-dependency; `win-only` is for Windows.
fn workspace() -> (tempfile::TempDir, cargo_metadata::Metadata) {
    let dir = tempfile::tempdir().unwrap();
    let write = |path: &str, text: &str| {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        "Cargo.toml",
        "[workspace]\nresolver = \"2\"\nmembers = [\"fn-a\", \"fn-b\", \"common\", \"only-a\", \"derive-it\", \"build-helper\", \"test-helper\", \"win-only\"]\n",
    );
    let lib = |name: &str, extra: &str| {
        write(
            &format!("{name}/Cargo.toml"),
            &format!(
                "[package]\nname = \"{name}\"\nversion = \"0.2.0\"\nedition = \"2021\"\nlicense = \"MIT\"\n{extra}"
            ),
        );
        write(&format!("{name}/src/lib.rs"), "");
    };
    lib("common", "");
    lib("only-a", "");
    lib("derive-it", "[lib]\nproc-macro = true\n");
    lib("build-helper", "");
    lib("test-helper", "");
    lib("win-only", "");
    write(
        "fn-a/Cargo.toml",
        "[package]\nname = \"fn-a\"\nversion = \"1.0.0\"\nedition = \"2021\"\n[dependencies]\ncommon = { path = \"../common\" }\nderive-it = { path = \"../derive-it\" }\n\
         [target.'cfg(target_os = \"linux\")'.dependencies]\nonly-a = { path = \"../only-a\" }\n\
         [target.'cfg(windows)'.dependencies]\nwin-only = { path = \"../win-only\" }\n",
    );
    write("fn-a/src/main.rs", "fn main() {}");
    write(
        "fn-b/Cargo.toml",
        "[package]\nname = \"fn-b\"\nversion = \"1.0.0\"\nedition = \"2021\"\n[dependencies]\ncommon = { path = \"../common\" }\n\
         [build-dependencies]\nbuild-helper = { path = \"../build-helper\" }\n[dev-dependencies]\ntest-helper = { path = \"../test-helper\" }\n",
    );
    write("fn-b/src/main.rs", "fn main() {}");
    let metadata = cargo_metadata::MetadataCommand::new()
        .manifest_path(dir.path().join("Cargo.toml"))
        .other_options(vec![
            "--filter-platform".to_string(),
            "x86_64-unknown-linux-gnu".to_string(),
            "--offline".to_string(),
        ])
        .exec()
        .unwrap();
    (dir, metadata)
}

fn names(unit: &UnitCrates) -> Vec<&str> {
    unit.crates.iter().map(|c| c.name.as_str()).collect()
}

#[test]
fn each_member_ships_only_its_own_normal_dependencies() {
    let (_dir, metadata) = workspace();
    let graph = DependencyGraph::from_metadata(&metadata, "");
    let a = graph.member_closure("fn-a").unwrap();
    assert_eq!(a.root.name, "fn-a");
    // No proc-macro, no crate for another platform.
    assert_eq!(names(&a), ["common", "only-a"]);
    let b = graph.member_closure("fn-b").unwrap();
    // No build dependency, no dev-dependency, nothing of fn-a's.
    assert_eq!(names(&b), ["common"]);
    assert!(b.crates[0].workspace);
    assert_eq!(b.crates[0].license.as_deref(), Some("MIT"));
    assert_eq!(
        b.edges["pkg:cargo/fn-b@1.0.0"],
        BTreeSet::from(["pkg:cargo/common@0.2.0".to_string()])
    );
    assert!(graph.member_closure("no-such-member").is_none());
}

#[test]
fn registry_checksums_come_from_the_lock_file() {
    let lock = "version = 4\n\n[[package]]\nname = \"itoa\"\nversion = \"1.0.15\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"4a5f13b858c8d314ee3e8f639011f7ccefe71f97f96e50151fb991f267928e2c\"\n\n[[package]]\nname = \"local\"\nversion = \"0.1.0\"\n";
    let checksums = lock_checksums(lock);
    assert_eq!(checksums.len(), 1);
    assert_eq!(
        checksums[&(
            "itoa".to_string(),
            "1.0.15".to_string(),
            "registry+https://github.com/rust-lang/crates.io-index".to_string()
        )],
        "4a5f13b858c8d314ee3e8f639011f7ccefe71f97f96e50151fb991f267928e2c"
    );
    assert!(lock_checksums("not toml [").is_empty());
}

#[test]
fn the_document_is_reproducible_and_dated_only_by_source_date_epoch() {
    let (_dir, metadata) = workspace();
    let graph = DependencyGraph::from_metadata(&metadata, "");
    let contents = cyclonedx::Contents {
        artifact: "fn-a".into(),
        version: "1.0.0".into(),
        crates: graph.member_closure("fn-a"),
        libraries: vec![cyclonedx::Library {
            soname: "libz.so.1".into(),
            sha256: "00".repeat(32),
            deb: Some(deb::DebPackage {
                distro: "debian".into(),
                name: "zlib1g".into(),
                version: "1:1.3.dfsg+really1.3.1-1+b1".into(),
                arch: "amd64".into(),
            }),
        }],
    };
    assert_eq!(contents.component_count(), 3);
    let rfc3339: fn(u64) -> String = |epoch| format!("epoch {epoch}");
    let first = cyclonedx::render(&contents, None, rfc3339);
    assert_eq!(first, cyclonedx::render(&contents, None, rfc3339));
    let json: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert!(json["metadata"].get("timestamp").is_none());
    let serial = json["serialNumber"].as_str().unwrap();
    assert!(
        serial.starts_with("urn:uuid:") && serial.as_bytes()[23] == b'5',
        "{serial}"
    );
    assert_eq!(json["metadata"]["component"]["type"], "application");
    assert_eq!(
        json["components"][2]["purl"],
        "pkg:deb/debian/zlib1g@1%3A1.3.dfsg%2Breally1.3.1-1%2Bb1?arch=amd64"
    );
    let dated = cyclonedx::render(&contents, Some(1_700_000_000), rfc3339);
    let dated: serde_json::Value = serde_json::from_str(&dated).unwrap();
    assert_eq!(dated["metadata"]["timestamp"], "epoch 1700000000");
    assert_ne!(dated["serialNumber"], json["serialNumber"]);
}

#[test]
fn the_embedded_list_is_the_members_closure_in_cargo_auditable_s_format() {
    let (_dir, metadata) = workspace();
    let graph = DependencyGraph::from_metadata(&metadata, "");
    let json = graph.version_info("fn-a").expect("fn-a is a member");
    assert_eq!(Some(json.clone()), graph.version_info("fn-a"));
    let info: auditable_serde::VersionInfo = json.parse().unwrap();
    let listed: Vec<(&str, bool)> = info
        .packages
        .iter()
        .map(|p| (p.name.as_str(), p.root))
        .collect();
    assert_eq!(
        listed,
        [("common", false), ("fn-a", true), ("only-a", false)]
    );
    let root = &info.packages[1];
    assert_eq!(root.dependencies, [0, 2]);
    assert_eq!(String::from(root.source.clone()), "local");
    assert!(graph.version_info("not-a-member").is_none());
}

/// `fn-a` uses `lib-x` without its optional `opt-y`; a build script's helper switches `y` on for
/// the build machine. `cargo metadata` unifies the features and lists `opt-y` for `fn-a`; the
/// build for the target never compiles it.
fn workspace_with_an_optional_crate() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let write = |path: &str, text: &str| {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        "Cargo.toml",
        "[workspace]\nresolver = \"2\"\nmembers = [\"fn-a\", \"lib-x\", \"opt-y\", \"helper\"]\n",
    );
    let package = |name: &str| {
        format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n")
    };
    write("opt-y/Cargo.toml", &package("opt-y"));
    write("opt-y/src/lib.rs", "");
    write(
        "lib-x/Cargo.toml",
        &format!(
            "{}[dependencies]\nopt-y = {{ path = \"../opt-y\", optional = true }}\n[features]\ny = [\"dep:opt-y\"]\n",
            package("lib-x")
        ),
    );
    write("lib-x/src/lib.rs", "");
    write(
        "helper/Cargo.toml",
        &format!(
            "{}[dependencies]\nlib-x = {{ path = \"../lib-x\", features = [\"y\"] }}\n",
            package("helper")
        ),
    );
    write("helper/src/lib.rs", "");
    write(
        "fn-a/Cargo.toml",
        &format!(
            "{}[dependencies]\nlib-x = {{ path = \"../lib-x\" }}\n[build-dependencies]\nhelper = {{ path = \"../helper\" }}\n",
            package("fn-a")
        ),
    );
    write("fn-a/src/main.rs", "fn main() {}");
    write("fn-a/build.rs", "fn main() {}");
    dir
}

#[test]
fn an_optional_crate_whose_feature_is_off_for_the_target_is_not_shipped_and_the_graph_is_remembered()
 {
    let dir = workspace_with_an_optional_crate();
    let cargo = std::path::PathBuf::from(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    let manifest = dir.path().join("Cargo.toml");
    let lock = dir.path().join("Cargo.lock");
    let cache = dir
        .path()
        .join("target/lambda-pack-cache/dependency-graph/x86_64.json");
    let flags = FeatureFlags {
        features: &[],
        all_features: false,
        no_default_features: false,
    };
    let load = || {
        DependencyGraph::load(GraphQuery {
            cargo: &cargo,
            manifest_path: &manifest,
            lock_file: &lock,
            triple: "x86_64-unknown-linux-gnu",
            features: flags,
            packages: &["fn-a".to_string()],
            cargo_flags: &["--offline"],
            cache_file: &cache,
        })
        .unwrap()
    };
    // What `cargo metadata` alone says: opt-y would be listed.
    let unified = cargo_metadata::MetadataCommand::new()
        .manifest_path(&manifest)
        .other_options(vec![
            "--filter-platform".to_string(),
            "x86_64-unknown-linux-gnu".to_string(),
            "--offline".to_string(),
        ])
        .exec()
        .unwrap();
    let unified = DependencyGraph::from_metadata(&unified, "");
    assert_eq!(
        names(&unified.member_closure("fn-a").unwrap()),
        ["lib-x", "opt-y"]
    );

    let graph = load();
    assert_eq!(names(&graph.member_closure("fn-a").unwrap()), ["lib-x"]);
    assert!(cache.is_file());

    // A second run reads the remembered graph: a record changed behind the key is what it gets.
    let mut record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cache).unwrap()).unwrap();
    let crates = record["graph"]["crates"].as_object_mut().unwrap();
    let (id, krate) = crates
        .iter()
        .find(|(_, c)| c["name"] == "lib-x")
        .map(|(id, c)| (id.clone(), c.clone()))
        .unwrap();
    let mut renamed = krate;
    renamed["license"] = serde_json::json!("remembered");
    crates.insert(id, renamed);
    std::fs::write(&cache, serde_json::to_vec(&record).unwrap()).unwrap();
    let remembered = load();
    let lib_x = remembered.member_closure("fn-a").unwrap().crates[0].clone();
    assert_eq!(lib_x.license.as_deref(), Some("remembered"));

    // A manifest that changes is a new graph.
    let fn_a = dir.path().join("fn-a/Cargo.toml");
    let text = std::fs::read_to_string(&fn_a).unwrap();
    std::fs::write(
        &fn_a,
        text.replace(
            "lib-x = { path = \"../lib-x\" }",
            "lib-x = { path = \"../lib-x\", features = [\"y\"] }",
        ),
    )
    .unwrap();
    let changed = load();
    assert_eq!(
        names(&changed.member_closure("fn-a").unwrap()),
        ["lib-x", "opt-y"]
    );
    assert_eq!(
        changed.member_closure("fn-a").unwrap().crates[0].license,
        None
    );
}
