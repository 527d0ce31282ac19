//! A pack and `merge` write only into directories that are the tool's (new, empty, or holding
//! nothing but what the tool writes there) and never through a link: every refusal names the
//! directory and the entry, exits non-zero, and leaves every file byte-identical (the trees are
//! hashed before and after). `fixtures/basic` is dependency-free, so each test packs its own copy.

mod common;

use std::path::{Path, PathBuf};

use common::surfaces::temporaries;
use common::*;
use serde_json::{Value, json};

const PACK: [&str; 4] = ["--compiler", "cargo", "-p", "fn-x86"];

/// A fixture packed once: its output directory is an earlier output of the tool.
fn packed() -> Fixture {
    let fixture = Fixture::copy("basic");
    fixture.pack(&PACK).assert_success();
    fixture
}

fn merge(inputs: &[&Path], out: &Path) -> Run {
    let mut command = lambda_pack();
    command.arg("merge").args(inputs).arg("--out-dir").arg(out);
    run(command)
}

fn write(path: &Path, contents: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}

/// A web app's folder: its own `manifest.json`, sources and a git repository.
fn web_app(dir: &Path) {
    write(&dir.join("manifest.json"), r#"{"name": "My PWA"}"#);
    write(&dir.join("src/main.js"), "console.log('hi')\n");
    write(&dir.join(".git/HEAD"), "ref: refs/heads/main\n");
}

#[track_caller]
fn assert_refused(run: &Run, dir: &Path, entry: &str) {
    run.assert_code(3);
    let line = run
        .stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line:\n{}", run.stderr));
    assert!(
        line.contains(&format!("`{}`", dir.display())) && line.contains(&format!("`{entry}`")),
        "the refusal names `{}` and `{entry}`:\n{}",
        dir.display(),
        run.stderr
    );
    assert!(run.stderr.contains("help: "), "{}", run.stderr);
}

#[test]
fn merge_into_a_folder_with_a_foreign_manifest_sources_and_git_is_refused() {
    let fixture = packed();
    let root = tempfile::tempdir().unwrap();
    let webapp = root.path().join("webapp");
    web_app(&webapp);
    let before = tree_state(root.path());
    let input_before = tree_state(&fixture.out_dir());
    let run = merge(&[&fixture.out_dir()], &webapp);
    assert_refused(&run, &webapp, "manifest.json");
    assert!(
        run.stderr
            .contains("is not a manifest cargo-lambda-pack writes"),
        "{}",
        run.stderr
    );
    assert_eq!(tree_state(root.path()), before);
    assert_eq!(tree_state(&fixture.out_dir()), input_before);

    // The same folder without its manifest: `src` is what is foreign.
    std::fs::remove_file(webapp.join("manifest.json")).unwrap();
    let before = tree_state(root.path());
    let run = merge(&[&fixture.out_dir()], &webapp);
    assert_refused(&run, &webapp, ".git");
    assert_eq!(tree_state(root.path()), before);

    // The workspace root (Cargo.toml, sources) is never a merge target either.
    let workspace_before = tree_state(fixture.path());
    let run = merge(&[&fixture.out_dir()], fixture.path());
    run.assert_code(3);
    assert!(
        run.stderr
            .contains(&format!("`{}`", fixture.path().display())),
        "{}",
        run.stderr
    );
    assert_eq!(tree_state(fixture.path()), workspace_before);
}

#[test]
fn merge_with_an_input_inside_or_equal_to_the_out_dir_is_refused() {
    let fixture = packed();
    let root = tempfile::tempdir().unwrap();
    let dist = root.path().join("dist");
    let inner = dist.join("a");
    copy_tree(&fixture.out_dir(), &inner);
    let before = tree_state(root.path());
    let run = merge(&[&inner], &dist);
    assert_refused(&run, &dist, &inner.display().to_string());
    assert!(run.stderr.contains("contains the input"), "{}", run.stderr);
    assert_eq!(tree_state(root.path()), before);

    // An output directory merged into itself, with a file of its owner's beside the artifacts.
    let shard = root.path().join("s1");
    copy_tree(&fixture.out_dir(), &shard);
    write(&shard.join("NOTES.txt"), "mine\n");
    let before = tree_state(root.path());
    let run = merge(&[&shard], &shard);
    assert_refused(&run, &shard, &shard.display().to_string());
    assert!(run.stderr.contains("is the input"), "{}", run.stderr);
    assert_eq!(tree_state(root.path()), before);
}

#[test]
fn merge_writes_only_its_files_and_removes_only_an_earlier_merges() {
    let fixture = packed();
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("merged");
    merge(&[&fixture.out_dir()], &out).assert_success();
    let written = manifest(&out);
    assert!(
        written["generator"]
            .as_str()
            .unwrap()
            .starts_with("cargo-lambda-pack "),
        "{written}"
    );
    let zip = out.join("x86_64/fn-x86.zip");
    assert_eq!(
        std::fs::read(&zip).unwrap(),
        std::fs::read(fixture.out_dir().join("x86_64/fn-x86.zip")).unwrap()
    );
    assert!(temporaries(&out).is_empty(), "{:?}", temporaries(&out));

    // A second input packed from another package: merged alone into the same directory, the
    // first merge's artifact goes (its manifest listed it), the second's arrives.
    let other = Fixture::copy("basic");
    other
        .pack(&["--compiler", "cargo", "-p", "fn-arm"])
        .assert_success();
    let lock = out.join(".lambda-pack.lock");
    let run = merge(&[&other.out_dir()], &out);
    run.assert_success();
    assert!(!zip.exists(), "{}", run.stderr);
    assert!(out.join("arm64/fn-arm.zip").is_file());
    assert!(lock.is_file(), "the lock file stays");
    let names: Vec<String> = manifest(&out)["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["fn-arm"]);
}

#[test]
fn merge_names_the_bad_field_and_says_it_stops() {
    let fixture = packed();
    let root = tempfile::tempdir().unwrap();
    let input = root.path().join("in");
    copy_tree(&fixture.out_dir(), &input);
    let mut document = manifest(&input);
    document["artifacts"][0]["sbom"] = Value::String("../elsewhere.cdx.json".into());
    write(
        &input.join("manifest.json"),
        &serde_json::to_string_pretty(&document).unwrap(),
    );
    let out = root.path().join("out");
    let run = merge(&[&input], &out);
    run.assert_code(3);
    assert!(
        run.stderr
            .contains("its `sbom` `../elsewhere.cdx.json` is refused"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("ignoring") && !run.stderr.contains("left alone"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("nothing was written"), "{}", run.stderr);
    assert!(!out.exists());
}

#[test]
fn a_symlinked_architecture_directory_in_the_out_dir_is_refused_by_name() {
    let fixture = packed();
    let out = fixture.out_dir();
    let victim = fixture.path().join("victim");
    write(&victim.join("fn-x86.zip"), "the victim's own file");
    write(&victim.join("notes.txt"), "keep");
    std::fs::rename(out.join("x86_64"), fixture.path().join("moved")).unwrap();
    std::os::unix::fs::symlink(&victim, out.join("x86_64")).unwrap();
    for _ in 0..2 {
        let victim_before = tree_state(&victim);
        let out_before = tree_state(&out);
        let run = fixture.pack(&PACK);
        assert_refused(&run, &out, "x86_64");
        assert!(run.stderr.contains("symlink"), "{}", run.stderr);
        assert_eq!(tree_state(&victim), victim_before);
        assert_eq!(tree_state(&out), out_before);
        assert!(
            temporaries(&victim).is_empty(),
            "{:?}",
            temporaries(&victim)
        );
        // A link inside the architecture directory is refused the same way.
        std::fs::remove_file(out.join("x86_64")).unwrap();
        std::fs::create_dir(out.join("x86_64")).unwrap();
        std::os::unix::fs::symlink(victim.join("fn-x86.zip"), out.join("x86_64/fn-x86.zip"))
            .unwrap();
        let run = fixture.pack(&PACK);
        assert_refused(&run, &out, "x86_64/fn-x86.zip");
        assert_eq!(tree_state(&victim), victim_before);
        std::fs::remove_dir_all(out.join("x86_64")).unwrap();
        std::os::unix::fs::symlink(&victim, out.join("x86_64")).unwrap();
    }
    // Into a new directory whose only entry is the link: refused as well.
    let fresh = fixture.path().join("fresh");
    std::fs::create_dir(&fresh).unwrap();
    std::os::unix::fs::symlink(&victim, fresh.join("x86_64")).unwrap();
    let victim_before = tree_state(&victim);
    let mut args = PACK.to_vec();
    args.extend(["--out-dir", fresh.to_str().unwrap()]);
    let run = fixture.pack(&args);
    assert_refused(&run, &fresh, "x86_64");
    assert_eq!(tree_state(&victim), victim_before);
}

#[test]
fn a_pack_into_a_folder_with_someone_elses_manifest_is_refused() {
    let fixture = Fixture::copy("basic");
    let root = tempfile::tempdir().unwrap();
    for (name, text, says) in [
        (
            "webapp",
            r#"{"name": "My PWA"}"#.to_string(),
            "is not a manifest cargo-lambda-pack writes",
        ),
        (
            "other-tool",
            json!({"schema_version": 1, "generator": "webpack 5", "artifacts": []}).to_string(),
            "was written by `webpack 5`",
        ),
    ] {
        let dir = root.path().join(name);
        write(&dir.join("manifest.json"), &text);
        let before = tree_state(root.path());
        let mut args = PACK.to_vec();
        args.extend(["--out-dir", dir.to_str().unwrap()]);
        let run = fixture.pack(&args);
        assert_refused(&run, &dir, "manifest.json");
        assert!(run.stderr.contains(says), "{}", run.stderr);
        assert!(
            !run.stderr.contains("Building"),
            "refused before building: {}",
            run.stderr
        );
        assert_eq!(tree_state(root.path()), before);
    }
    // The workspace root itself is never an output directory.
    let before = tree_state(fixture.path());
    let run = fixture.pack(&["--compiler", "cargo", "-p", "fn-x86", "--out-dir", "."]);
    run.assert_code(3);
    assert!(
        run.stderr.contains("is the workspace root"),
        "{}",
        run.stderr
    );
    assert_eq!(tree_state(fixture.path()), before);
}

/// One entry of a previous manifest whose package has left the workspace: stale.
fn stale_entry(index: usize) -> Value {
    json!({
        "name": format!("gone-{index}"), "package": format!("gone-{index}"), "bin": "gone",
        "kind": "function", "format": "zip", "arch": "x86_64", "runtime": "provided.al2023",
        "target": "x86_64-unknown-linux-musl", "path": format!("x86_64/gone-{index}.zip"),
        "sha256": "00", "code_sha256": "AA==", "size_zipped": 1, "size_unzipped": 1, "layers": []
    })
}

#[test]
fn a_pack_over_a_previous_manifest_of_100000_entries_is_linear() {
    let fixture = packed();
    let out = fixture.out_dir();
    let mut document = manifest(&out);
    let entries = document["artifacts"].as_array_mut().unwrap();
    entries.extend((0..100_000).map(stale_entry));
    std::fs::write(out.join("manifest.json"), document.to_string()).unwrap();
    // A few of them are on disk: the clean-up removes exactly those.
    let on_disk: Vec<PathBuf> = (0..5)
        .map(|i| out.join(format!("x86_64/gone-{i}.zip")))
        .collect();
    for path in &on_disk {
        write(path, "stale");
    }
    let mut command = lambda_pack();
    command.args(PACK).current_dir(fixture.path());
    let (run, wall, cpu) = run_measured(command);
    run.assert_success();
    println!(
        "a pack over a previous manifest of 100,000 entries: {wall:?} wall-clock, {cpu:?} of CPU"
    );
    // The bound is on CPU time, which the other tests running beside this one do not inflate.
    assert!(
        cpu.as_secs() < 10,
        "took {cpu:?} of CPU (a quadratic clean-up?)\n{}",
        run.stderr
    );
    for path in &on_disk {
        assert!(
            !path.exists(),
            "{} is stale\n{}",
            path.display(),
            run.stderr
        );
    }
    let names: Vec<String> = manifest(&out)["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["fn-x86"]);
}

#[test]
fn a_manifest_written_before_generator_existed_is_still_ours() {
    let fixture = packed();
    let out = fixture.out_dir();
    let mut document = manifest(&out);
    document.as_object_mut().unwrap().remove("generator");
    std::fs::write(out.join("manifest.json"), document.to_string()).unwrap();
    let run = fixture.pack(&PACK);
    run.assert_success();
    assert!(
        manifest(&out)["generator"]
            .as_str()
            .is_some_and(|g| g.starts_with("cargo-lambda-pack ")),
        "the next manifest says who wrote it\n{}",
        run.stderr
    );

    // Without `generator`, an entry of a shape the tool never writes makes it someone else's.
    let mut document = manifest(&out);
    document.as_object_mut().unwrap().remove("generator");
    document["artifacts"][0]["path"] = Value::String("x86_64/site.webmanifest".into());
    std::fs::write(out.join("manifest.json"), document.to_string()).unwrap();
    let before = tree_state(&out);
    let run = fixture.pack(&PACK);
    assert_refused(&run, &out, "manifest.json");
    assert!(
        run.stderr.contains("`x86_64/site.webmanifest`"),
        "{}",
        run.stderr
    );
    assert_eq!(tree_state(&out), before);
}

#[test]
fn a_base_image_cache_holding_a_link_is_refused_and_nothing_is_written_through_it() {
    let registry = common::registry::registry();
    let reference = registry.reference("lambda/provided:al2023");
    let fixture = common::surfaces::image_fixture(&reference, None);
    fixture.pack(&PACK).assert_success();
    let cache = fixture.path().join("target/lambda-pack-cache/oci");
    assert!(
        cache.join("blobs/sha256").is_dir(),
        "the pack filled the cache"
    );
    // `sizes/` (where layer sizes are remembered) made a link to someone else's directory.
    let victim = fixture.path().join("victim");
    write(&victim.join("notes.txt"), "keep");
    std::fs::remove_dir_all(cache.join("sizes")).unwrap();
    std::os::unix::fs::symlink(&victim, cache.join("sizes")).unwrap();
    let before = (tree_state(&cache), tree_state(&victim));
    let run = fixture.pack(&PACK);
    run.assert_code(3);
    assert!(
        run.stderr.contains(&format!(
            "the base image cache `{}` is not cargo-lambda-pack's to write: `sizes` is a symlink",
            cache.display()
        )),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("help: delete"), "{}", run.stderr);
    assert_eq!((tree_state(&cache), tree_state(&victim)), before);
}
