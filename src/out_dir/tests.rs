use super::*;

fn write(path: &Path, contents: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}

fn ours(generator: &str) -> String {
    serde_json::json!({"schema_version": 1, "generator": generator, "artifacts": []}).to_string()
}

fn first_foreign(dir: &Path) -> Option<(String, String)> {
    foreign_output_entry(dir)
        .unwrap()
        .map(|f| (f.entry.display().to_string(), f.why))
}

#[test]
fn missing_empty_and_locked_directories_are_ours() {
    let root = tempfile::tempdir().unwrap();
    assert_eq!(first_foreign(&root.path().join("missing")), None);
    assert_eq!(first_foreign(root.path()), None);
    write(&root.path().join(LOCK_FILE), "");
    write(&root.path().join("x86_64/a.zip"), "zip");
    assert_eq!(first_foreign(root.path()), None);
}

#[test]
fn a_manifest_of_ours_with_its_artifacts_and_temporaries_is_ours() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path();
    write(&dir.join(MANIFEST_FILE), &ours("cargo-lambda-pack 0.1.0"));
    for file in [
        "x86_64/a.zip",
        "x86_64/a.cdx.json",
        "x86_64/.a.x1y2.tmp",
        "x86_64/img/Dockerfile",
        "x86_64/img/bootstrap",
        "x86_64/img.oci/oci-layout",
        "arm64/b.zip",
        ".manifest.abc.tmp",
        DEPLOY_LOCK_FILE,
    ] {
        write(&dir.join(file), "x");
    }
    assert_eq!(first_foreign(dir), None);
}

#[test]
fn anything_else_is_named() {
    let cases: &[(&[&str], &str)] = &[
        (&["src/main.rs"], "src"),
        (&[".git/HEAD"], ".git"),
        (&["Cargo.toml"], "Cargo.toml"),
        (&["x86_64/notes.txt"], "x86_64/notes.txt"),
        (&["x86_64/ctx/file"], "x86_64/ctx"),
        (&["x86_64/x.oci/blobs"], "x86_64/x.oci"),
    ];
    for (files, named) in cases {
        let root = tempfile::tempdir().unwrap();
        write(
            &root.path().join(MANIFEST_FILE),
            &ours("cargo-lambda-pack 0.1.0"),
        );
        for file in *files {
            write(&root.path().join(file), "x");
        }
        let (entry, _) = first_foreign(root.path()).expect("foreign");
        assert_eq!(entry, *named, "{files:?}");
    }
    // Without a manifest or a lock file, even artifact-shaped files prove nothing.
    let root = tempfile::tempdir().unwrap();
    write(&root.path().join("x86_64/a.zip"), "zip");
    let (entry, why) = first_foreign(root.path()).unwrap();
    assert_eq!(entry, "x86_64");
    assert!(why.contains("neither a manifest.json nor"), "{why}");
}

#[test]
fn symlinks_are_never_ours() {
    let root = tempfile::tempdir().unwrap();
    let (dir, victim) = (root.path().join("out"), root.path().join("victim"));
    std::fs::create_dir_all(&victim).unwrap();
    write(&dir.join(MANIFEST_FILE), &ours("cargo-lambda-pack 0.1.0"));
    std::os::unix::fs::symlink(&victim, dir.join("x86_64")).unwrap();
    let (entry, why) = first_foreign(&dir).unwrap();
    assert_eq!(entry, "x86_64");
    assert!(why.contains("symlink"), "{why}");
    std::fs::remove_file(dir.join("x86_64")).unwrap();
    std::fs::create_dir(dir.join("x86_64")).unwrap();
    std::os::unix::fs::symlink(victim.join("a.zip"), dir.join("x86_64/a.zip")).unwrap();
    assert_eq!(first_foreign(&dir).unwrap().0, "x86_64/a.zip");
}

#[test]
fn only_manifests_this_tool_wrote_are_ours() {
    assert!(manifest_is_ours(ours("cargo-lambda-pack 9.9.9").as_bytes()).is_ok());
    let web = manifest_is_ours(br#"{"name": "My PWA"}"#).unwrap_err();
    assert!(
        web.contains("is not a manifest cargo-lambda-pack writes"),
        "{web}"
    );
    let other = manifest_is_ours(ours("webpack 5").as_bytes()).unwrap_err();
    assert!(other.contains("written by `webpack 5`"), "{other}");
    // Written before `generator` existed: ours when schema 1 and every entry has our shape.
    let entry = |path: &str| {
        serde_json::json!({
            "name": "a", "package": "a", "bin": "a", "kind": "function", "format": "zip",
            "arch": "x86_64", "runtime": "provided.al2023", "target": "t", "path": path,
            "sha256": "", "code_sha256": "", "size_zipped": 0, "size_unzipped": 0, "layers": []
        })
    };
    let old = |version: u32, path: &str| {
        serde_json::json!({"schema_version": version, "artifacts": [entry(path)]}).to_string()
    };
    assert!(manifest_is_ours(old(1, "x86_64/a.zip").as_bytes()).is_ok());
    let odd = manifest_is_ours(old(1, "../a.zip").as_bytes()).unwrap_err();
    assert!(odd.contains("`../a.zip`"), "{odd}");
    assert!(manifest_is_ours(old(2, "x86_64/a.zip").as_bytes()).is_err());
}

#[test]
fn a_directory_holding_a_protected_path_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let input = root.path().join("dist/a");
    std::fs::create_dir_all(&input).unwrap();
    let dist = root.path().join("dist");
    for (dir, relation) in [(&dist, "contains"), (&input, "is")] {
        let err = refuse_holding(dir, "--out-dir", &[(&input, "the input")]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&format!("{relation} the input `{}`", input.display())),
            "{text}"
        );
    }
    assert!(refuse_holding(&input.join("out"), "--out-dir", &[(&input, "the input")]).is_ok());
}

#[test]
fn the_base_cache_holds_an_oci_layout_only() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path();
    for file in [
        "oci-layout",
        "index.json",
        ".index.lock",
        "blobs/sha256/abc",
        "blobs/sha256/.download.x",
        "sizes/abc",
        ".tmp.x",
    ] {
        write(&dir.join(file), "x");
    }
    assert_eq!(foreign_cache_entry(dir).unwrap(), None);
    std::os::unix::fs::symlink(root.path(), dir.join("blobs/sha256/def")).unwrap();
    let found = foreign_cache_entry(dir).unwrap().unwrap();
    assert_eq!(found.entry, Path::new("blobs/sha256/def"));
    assert!(claim_base_cache(dir).is_err());
}
