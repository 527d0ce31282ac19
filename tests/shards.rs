//! `--shard K/N` and `merge`: `fixtures/verify-functions` (functions, attached and standalone
//! extensions, a shared layer, a custom runtime layer) packed whole and as 3 shards, with the
//! target directory the verify tests share, so the crates are compiled once. Hashes are read back
//! with coreutils' `sha256sum`, not the crate's own code.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::*;
use serde_json::Value;

const SHARDS: u32 = 3;

struct Packs {
    workspace: PathBuf,
    root: PathBuf,
    whole: PathBuf,
    shards: Vec<PathBuf>,
}

fn pack_command(workspace: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut command = lambda_pack();
    command
        .args(["--compiler", "cargo", "--profile", "dev", "--locked"])
        .arg("--target-dir")
        .arg(verify_functions_target_dir())
        .arg("--out-dir")
        .arg(out)
        .args(extra)
        .current_dir(workspace)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET");
    command
}

/// The whole workspace packed once, then each shard into its own output directory.
fn packs() -> &'static Packs {
    static PACKS: OnceLock<Packs> = OnceLock::new();
    PACKS.get_or_init(|| {
        let workspace = verify_functions_workspace();
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("shards");
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let whole = root.join("whole");
        run(pack_command(&workspace, &whole, &[])).assert_success();
        let shards = (1..=SHARDS)
            .map(|k| {
                let out = root.join(format!("shard{k}"));
                let shard = format!("{k}/{SHARDS}");
                run(pack_command(&workspace, &out, &["--shard", &shard])).assert_success();
                out
            })
            .collect();
        Packs {
            workspace,
            root,
            whole,
            shards,
        }
    })
}

fn artifacts(out: &Path) -> Vec<Value> {
    manifest(out)["artifacts"].as_array().unwrap().clone()
}

fn sha256sum(path: &Path) -> String {
    let output = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap()[..64].to_string()
}

/// `(arch, name)` → `(path, sha256 of the file on disk)` for the ZIPs of an output directory.
fn zips_on_disk(out: &Path) -> BTreeMap<(String, String), (String, String)> {
    artifacts(out)
        .iter()
        .map(|a| {
            let path = a["path"].as_str().unwrap().to_string();
            let key = (a["arch"].to_string(), a["name"].to_string());
            (key, (path.clone(), sha256sum(&out.join(&path))))
        })
        .collect()
}

fn functions(out: &Path) -> Vec<String> {
    artifacts(out)
        .iter()
        .filter(|a| a["kind"] == "function")
        .map(|a| format!("{}/{}", a["arch"], a["name"]))
        .collect()
}

/// `cargo lambda-pack plan --shard <shard> --message-format <format>`, built like the packs.
fn plan_command(workspace: &Path, shard: &str, format: &str) -> Command {
    let mut command = lambda_pack();
    command
        .arg("plan")
        .args(["--compiler", "cargo", "--profile", "dev", "--locked"])
        .arg("--target-dir")
        .arg(verify_functions_target_dir())
        .args(["--shard", shard, "--message-format", format])
        .current_dir(workspace)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET");
    command
}

fn merge(inputs: &[&Path], out: &Path, extra: &[&str]) -> Run {
    let mut command = lambda_pack();
    command
        .arg("merge")
        .args(inputs)
        .arg("--out-dir")
        .arg(out)
        .args(extra);
    run(command)
}

#[test]
fn shards_split_the_functions_and_cover_the_selection() {
    let packs = packs();
    let whole: BTreeSet<String> = functions(&packs.whole).into_iter().collect();
    assert!(whole.len() >= 5, "{whole:?}");
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut union = BTreeSet::new();
    for (index, shard) in packs.shards.iter().enumerate() {
        for function in functions(shard) {
            if let Some(other) = seen.insert(function.clone(), index + 1) {
                panic!("{function} is in shard {other} and shard {}", index + 1);
            }
        }
        union.extend(artifacts(shard).iter().map(|a| a["name"].to_string()));
    }
    assert_eq!(seen.keys().cloned().collect::<BTreeSet<_>>(), whole);
    let every: BTreeSet<String> = artifacts(&packs.whole)
        .iter()
        .map(|a| a["name"].to_string())
        .collect();
    assert_eq!(
        union, every,
        "layers and extensions travel with their functions"
    );
    // A shard carries the layers its functions attach.
    for shard in &packs.shards {
        let names: BTreeSet<String> = artifacts(shard)
            .iter()
            .map(|a| a["name"].as_str().unwrap().to_string())
            .collect();
        for function in artifacts(shard).iter().filter(|a| a["kind"] == "function") {
            for layer in function["layers"].as_array().unwrap() {
                assert!(
                    names.contains(layer.as_str().unwrap()),
                    "{layer} in {names:?}"
                );
            }
        }
    }
}

#[test]
fn plan_shows_the_split_the_shards_packed() {
    let packs = packs();
    let planned = run(plan_command(&packs.workspace, "2/3", "json"));
    planned.assert_success();
    let plan: Value = serde_json::from_str(&planned.stdout).unwrap();
    let listed = plan["shards"].as_array().unwrap();
    assert_eq!(listed.len(), SHARDS as usize);
    for (listing, shard) in listed.iter().zip(&packs.shards) {
        let names: BTreeSet<String> = listing["functions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_string())
            .collect();
        let packed: BTreeSet<String> = artifacts(shard)
            .iter()
            .filter(|a| a["kind"] == "function")
            .map(|a| a["name"].as_str().unwrap().to_string())
            .collect();
        assert!(packed.is_subset(&names), "{packed:?} vs {names:?}");
    }
    assert_eq!(listed[1]["this_run"], true);

    // For people: a line per shard that has a function, this run's marked.
    let human = run(plan_command(&packs.workspace, "2/3", "human"));
    human.assert_success();
    let names = |k: usize| {
        listed[k]["functions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let this_run = if names(1).is_empty() {
        "(no function)".to_string()
    } else {
        names(1)
    };
    assert!(
        human
            .stderr
            .contains(&format!("shard 2/3: {this_run}  <- this run")),
        "{}",
        human.stderr
    );
    for k in [0, 2] {
        if !names(k).is_empty() {
            assert!(
                human
                    .stderr
                    .contains(&format!("shard {}/3: {}\n", k + 1, names(k))),
                "{}",
                human.stderr
            );
        }
    }
}

#[test]
fn merging_the_shards_gives_the_unsharded_pack() {
    let packs = packs();
    let out = packs.root.join("merged");
    let inputs: Vec<&Path> = packs.shards.iter().map(PathBuf::as_path).collect();
    let run = merge(&inputs, &out, &["--message-format", "json"]);
    run.assert_success();
    assert_eq!(zips_on_disk(&out), zips_on_disk(&packs.whole));
    let printed: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(printed, manifest(&out));
    // The merged entries are the unsharded run's, field for field.
    assert_eq!(manifest(&out), manifest(&packs.whole));
    for artifact in artifacts(&out) {
        if let Some(sbom) = artifact["sbom"].as_str() {
            assert_eq!(
                sha256sum(&out.join(sbom)),
                sha256sum(&packs.whole.join(sbom))
            );
        }
    }
}

/// A copy of the first shard with a function of other bytes (and its entry's sha256 to match).
fn tampered_copy(name: &str) -> (PathBuf, String, String) {
    let packs = packs();
    let copy = packs.root.join(name);
    let _ = std::fs::remove_dir_all(&copy);
    let source = packs
        .shards
        .iter()
        .find(|s| !functions(s).is_empty())
        .unwrap();
    copy_tree(source, &copy);
    let mut manifest = manifest(&copy);
    let entry = manifest["artifacts"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|a| a["kind"] == "function" && a["format"] == "zip")
        .unwrap();
    let zip = copy.join(entry["path"].as_str().unwrap());
    let original = sha256sum(&zip);
    let mut bytes = std::fs::read(&zip).unwrap();
    bytes.extend_from_slice(b"other bytes");
    std::fs::write(&zip, bytes).unwrap();
    let changed = sha256sum(&zip);
    entry["sha256"] = Value::String(changed.clone());
    std::fs::write(
        copy.join("manifest.json"),
        serde_json::to_string_pretty(&manifest).unwrap(),
    )
    .unwrap();
    (copy, original, changed)
}

#[test]
fn a_conflicting_artifact_is_refused_with_both_hashes_and_nothing_changes() {
    let packs = packs();
    let (tampered, original, changed) = tampered_copy("tampered");
    let out = packs.root.join("conflict-out");
    merge(&[&packs.whole], &out, &[]).assert_success();
    let before = snapshot(&out);
    let run = merge(&[&packs.whole, &tampered], &out, &[]);
    run.assert_code(3);
    assert!(
        run.stderr.contains("differs between runs"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(&original), "{}", run.stderr);
    assert!(run.stderr.contains(&changed), "{}", run.stderr);
    assert!(run.stderr.contains("help:"), "{}", run.stderr);
    assert_eq!(snapshot(&out), before);
    // No staging directory is left beside the output.
    let leftovers: Vec<_> = std::fs::read_dir(&packs.root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_file_that_does_not_match_its_entry_is_refused() {
    let packs = packs();
    let (tampered, _, changed) = tampered_copy("mismatch");
    // The entry goes back to the original hash while the file keeps the other bytes.
    let mut manifest = manifest(&tampered);
    let entry = manifest["artifacts"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|a| a["sha256"] == changed.as_str())
        .unwrap();
    entry["sha256"] = Value::String("0".repeat(64));
    std::fs::write(
        tampered.join("manifest.json"),
        serde_json::to_string_pretty(&manifest).unwrap(),
    )
    .unwrap();
    let out = packs.root.join("mismatch-out");
    let run = merge(&[&tampered], &out, &[]);
    run.assert_code(3);
    assert!(run.stderr.contains(&changed), "{}", run.stderr);
    assert!(!out.exists());
}

#[test]
fn conflicting_schema_versions_are_refused() {
    let packs = packs();
    let newer = packs.root.join("schema2");
    let _ = std::fs::remove_dir_all(&newer);
    std::fs::create_dir_all(&newer).unwrap();
    std::fs::write(
        newer.join("manifest.json"),
        r#"{"schema_version": 2, "artifacts": []}"#,
    )
    .unwrap();
    let out = packs.root.join("schema-out");
    let run = merge(&[&packs.shards[0], &newer], &out, &[]);
    run.assert_code(3);
    assert!(
        run.stderr.contains("conflicting manifest schemas")
            && run.stderr.contains("schema_version 1")
            && run.stderr.contains("schema_version 2"),
        "{}",
        run.stderr
    );
    assert!(!out.exists());
}

#[test]
fn merge_refuses_a_manifest_path_leading_out_of_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::write(dir.path().join("secret.zip"), "outside").unwrap();
    let manifest = serde_json::json!({"schema_version": 1, "artifacts": [{
        "name": "x", "package": "x", "bin": "x", "kind": "function", "format": "zip",
        "arch": "x86_64", "runtime": "provided.al2023", "target": "x86_64-unknown-linux-musl",
        "path": "../secret.zip", "sha256": "00", "code_sha256": "AA==", "size_zipped": 1,
        "size_unzipped": 1, "layers": []
    }]});
    std::fs::write(input.join("manifest.json"), manifest.to_string()).unwrap();
    let out = dir.path().join("out");
    let run = merge(&[&input], &out, &[]);
    run.assert_code(3);
    assert!(run.stderr.contains("`..` component"), "{}", run.stderr);
    assert!(!out.exists());
}

#[test]
fn an_empty_shard_says_so_and_writes_an_empty_manifest() {
    let packs = packs();
    // More shards than functions: some shard gets none. Which one is read from the plan.
    let count = 40;
    let planned = run(plan_command(
        &packs.workspace,
        &format!("1/{count}"),
        "json",
    ));
    planned.assert_success();
    let plan: Value = serde_json::from_str(&planned.stdout).unwrap();
    let empty = plan["shards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["functions"].as_array().unwrap().is_empty())
        .expect("a shard without function")["shard"]
        .as_u64()
        .unwrap();
    let out = packs.root.join("empty-shard");
    let shard = format!("{empty}/{count}");
    let run = run(pack_command(&packs.workspace, &out, &["--shard", &shard]));
    run.assert_success();
    assert!(
        run.stderr
            .contains(&format!("shard {shard} has no function")),
        "{}",
        run.stderr
    );
    assert_eq!(manifest(&out)["artifacts"], serde_json::json!([]));
}

#[test]
fn a_bad_shard_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (bad, why) in [
        ("0/3", "K `0` is out of range: K must be between 1 and 3"),
        ("4/3", "K `4` is out of range: K must be between 1 and 3"),
        (
            "1/0",
            "N `0` is out of range: N must be between 1 and 10000",
        ),
        (
            "1/10001",
            "N `10001` is out of range: N must be between 1 and 10000",
        ),
        (
            "1/4294967296",
            "N `4294967296` is out of range: N must be between 1 and 10000",
        ),
        ("two", "expected `K/N`"),
    ] {
        let mut command = lambda_pack();
        command.args(["--shard", bad]).current_dir(dir.path());
        let run = run(command);
        run.assert_code(3);
        assert!(run.stderr.contains(why), "{bad}: {}", run.stderr);
        assert!(run.stderr.contains("--shard"), "{bad}: {}", run.stderr);
        assert!(run.stderr.contains("help:"), "{bad}: {}", run.stderr);
    }
}

/// `plan --shard 1/10000` over two functions (`fixtures/basic`'s `fn-x86` and `fn-arm`), timed
/// once their build is warm: the split no longer costs N per shard (it took 41 s).
#[test]
fn planning_two_functions_in_ten_thousand_shards_takes_no_time() {
    let fixture = Fixture::copy("basic");
    let plan = |format: &str| {
        let mut command = lambda_pack();
        command
            .args([
                "plan",
                "--compiler",
                "cargo",
                "-p",
                "fn-x86",
                "-p",
                "fn-arm",
            ])
            .args(["--shard", "1/10000", "--message-format", format])
            .current_dir(fixture.path())
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_BUILD_TARGET");
        command
    };
    run(plan("json")).assert_success();
    let started = std::time::Instant::now();
    let planned = run(plan("json"));
    let elapsed = started.elapsed();
    eprintln!("plan --shard 1/10000 of two functions: {elapsed:?}");
    planned.assert_success();
    let plan_json: Value = serde_json::from_str(&planned.stdout).unwrap();
    let listed = plan_json["shards"].as_array().unwrap();
    assert_eq!(listed.len(), 10_000);
    let mut names: Vec<&str> = listed
        .iter()
        .flat_map(|s| s["functions"].as_array().unwrap())
        .map(|n| n.as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["fn-arm", "fn-x86"]);
    // Typically well under a second; generous for a machine shared with other builds.
    assert!(elapsed < std::time::Duration::from_secs(5), "{elapsed:?}");
}

/// The split costs the same whatever the number of shards: `plan --shard 1/10000` (the most
/// allowed) over a warm build answers as fast as the packs' plan would.
#[test]
fn the_largest_split_is_planned_at_once() {
    let packs = packs();
    let started = std::time::Instant::now();
    let planned = run(plan_command(&packs.workspace, "1/10000", "json"));
    let elapsed = started.elapsed();
    eprintln!("plan --shard 1/10000: {elapsed:?}");
    planned.assert_success();
    let plan: Value = serde_json::from_str(&planned.stdout).unwrap();
    let listed = plan["shards"].as_array().unwrap();
    assert_eq!(listed.len(), 10_000);
    let split: usize = listed
        .iter()
        .map(|s| s["functions"].as_array().unwrap().len())
        .sum();
    let whole = artifacts(&packs.whole)
        .iter()
        .filter(|a| a["kind"] == "function")
        .map(|a| a["name"].as_str().unwrap().to_string())
        .collect::<BTreeSet<_>>();
    assert!(split >= whole.len(), "{split} < {whole:?}");
    // Generous for a shared, loaded machine; the split itself takes milliseconds.
    assert!(elapsed < std::time::Duration::from_secs(10), "{elapsed:?}");
    let human = run(plan_command(&packs.workspace, "1/10000", "human"));
    human.assert_success();
    assert!(
        human
            .stderr
            .contains("other shards of 10000: (no function)"),
        "{}",
        human.stderr
    );
    assert!(human.stderr.lines().count() < 200, "{}", human.stderr);
}

/// Functions (bins) of the fixture that may become images on `scratch` in `image_shards`, with
/// their packages.
const IMAGE_CANDIDATES: [(&str, &str); 6] = [
    ("echo-fn", "echo"),
    ("graceful-fn", "graceful"),
    ("http-fn", "http-fn"),
    ("inproc-fn", "inproc"),
    ("env-fn", "tables"),
    ("echo-fn", "quote"),
];

/// A copy of the fixture in which two functions that the split puts in different shards are
/// images on `scratch` (the split depends on the names only), and those two shards packed. The
/// copy shares the packs' target directory: only its own crates are compiled again.
fn image_shards() -> (Vec<PathBuf>, Vec<String>) {
    let packs = packs();
    let shard_of = |name: &str| {
        packs
            .shards
            .iter()
            .position(|s| artifacts(s).iter().any(|a| a["name"] == name))
    };
    let mut chosen: Vec<(usize, &str, &str)> = Vec::new();
    for (package, name) in IMAGE_CANDIDATES {
        if let Some(shard) = shard_of(name)
            && chosen.iter().all(|(other, _, _)| *other != shard)
        {
            chosen.push((shard, package, name));
        }
    }
    assert!(
        chosen.len() >= 2,
        "the candidates all fell in one shard: {chosen:?}"
    );
    chosen.truncate(2);
    let workspace = packs.root.join("image-workspace");
    sync_tree(&packs.workspace, &workspace);
    for (_, package, name) in &chosen {
        let path = workspace.join(package).join("Cargo.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let keys = "package = \"image\"\nbase_image = \"scratch\"\n";
        let table = format!("[package.metadata.lambda-pack.bin.{name}]\n");
        let text = if text.contains(&table) {
            text.replacen(&table, &format!("{table}{keys}"), 1)
        } else {
            format!("{text}\n{table}{keys}")
        };
        std::fs::write(&path, text).unwrap();
    }
    let outs = chosen
        .iter()
        .map(|(shard, _, _)| {
            let out = packs.root.join(format!("image-shard{}", shard + 1));
            let _ = std::fs::remove_dir_all(&out);
            let shard = format!("{}/{SHARDS}", shard + 1);
            run(pack_command(&workspace, &out, &["--shard", &shard])).assert_success();
            out
        })
        .collect();
    (
        outs,
        chosen.iter().map(|(_, _, name)| name.to_string()).collect(),
    )
}

/// `relative path` → sha256 of every file under `dir`.
fn tree_hashes(dir: &Path) -> BTreeMap<PathBuf, String> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(Result::unwrap)
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let relative = e.path().strip_prefix(dir).unwrap().to_path_buf();
            (relative, sha256sum(e.path()))
        })
        .collect()
}

#[test]
fn merge_carries_the_image_contexts_and_oci_layouts_of_two_shards_and_checks_them() {
    let (shards, images) = image_shards();
    let root = &packs().root;
    let out = root.join("image-merged");
    let inputs: Vec<&Path> = shards.iter().map(PathBuf::as_path).collect();
    merge(&inputs, &out, &[]).assert_success();
    let merged = artifacts(&out);
    for name in &images {
        let entry = merged.iter().find(|a| a["name"] == name.as_str()).unwrap();
        assert_eq!(entry["format"], "image", "{entry}");
        let shard = shards
            .iter()
            .find(|s| artifacts(s).iter().any(|a| a["name"] == name.as_str()))
            .unwrap();
        // The context and the layout are the shard's, file for file.
        let layout = entry["oci_layout"].as_str().expect("an OCI layout");
        for relative in [entry["path"].as_str().unwrap(), layout] {
            let copied = tree_hashes(&out.join(relative));
            assert!(!copied.is_empty(), "{relative} is empty");
            assert_eq!(copied, tree_hashes(&shard.join(relative)), "{relative}");
        }
        // skopeo reads the merged layout as the image the entry names.
        let output = Command::new("skopeo")
            .arg("inspect")
            .arg(format!("oci:{}", out.join(layout).display()))
            .output()
            .expect("skopeo (scripts/setup.sh installs it)");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let inspected: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(inspected["Digest"], entry["image_digest"], "{name}");
    }

    // A layout whose image manifest no longer matches the entry's digest is refused, naming the
    // image, and the earlier merge is left as it was.
    let tampered = root.join("image-tampered");
    let _ = std::fs::remove_dir_all(&tampered);
    copy_tree(&shards[0], &tampered);
    let entry = artifacts(&tampered)
        .into_iter()
        .find(|a| a["format"] == "image")
        .unwrap();
    let digest = entry["image_digest"].as_str().unwrap();
    let blob = tampered
        .join(entry["oci_layout"].as_str().unwrap())
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap());
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes.push(b'\n');
    std::fs::write(&blob, bytes).unwrap();
    let before = snapshot(&out);
    let run = merge(&[&tampered, &shards[1]], &out, &[]);
    run.assert_code(3);
    assert!(
        run.stderr.contains(entry["name"].as_str().unwrap())
            && run.stderr.contains("does not hold the image manifest")
            && run.stderr.contains(digest),
        "{}",
        run.stderr
    );
    assert_eq!(snapshot(&out), before);
}
