//! What the fault, kill and race tests share: the image fixture (`fixtures/basic` with `fn-x86`
//! built into an image on the suite's base), and independent readers of what a run left behind:
//! the output directory checked against its manifest, the registry's repositories read with
//! Python's urllib, the account with boto3.

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::Fixture;
use super::deploy::{Packed, state};

/// `fixtures/basic` with `fn-x86` an image on `base_image`, pushed (with `--push`) to
/// `repository` when one is given.
pub fn image_fixture(base_image: &str, repository: Option<&str>) -> Fixture {
    let fixture = Fixture::copy("basic");
    let mut keys =
        format!("arch = \"x86_64\"\npackage = \"image\"\nbase_image = \"{base_image}\"\n");
    if let Some(repository) = repository {
        keys.push_str(&format!("image_repository = \"{repository}\"\n"));
    }
    let text = fixture
        .read("fn-x86/Cargo.toml")
        .replace("arch = \"x86_64\"\n", &keys);
    fixture.write("fn-x86/Cargo.toml", &text);
    fixture
}

/// Points `fn-x86` at another repository (the image stays the same).
pub fn set_repository(fixture: &Fixture, repository: &str) {
    let text = fixture.read("fn-x86/Cargo.toml");
    let text: String = text
        .lines()
        .filter(|l| !l.starts_with("image_repository"))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        .replace(
            "package = \"image\"\n",
            &format!("package = \"image\"\nimage_repository = \"{repository}\"\n"),
        );
    fixture.write("fn-x86/Cargo.toml", &text);
}

pub fn sha256_file(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    hex(&Sha256::digest(&bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every artifact the manifest lists is there with its hash: a ZIP hashes to its `sha256`, an
/// image's OCI layout holds the manifest blob `image_digest` names, with that digest. No
/// manifest at all is consistent too (nothing is listed).
pub fn assert_out_consistent(out: &Path) {
    let path = out.join("manifest.json");
    let Ok(bytes) = std::fs::read(&path) else {
        return;
    };
    let manifest: Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{} is not whole JSON: {e}", path.display()));
    for artifact in manifest["artifacts"].as_array().unwrap() {
        let file = out.join(artifact["path"].as_str().unwrap());
        match (
            artifact["oci_layout"].as_str(),
            artifact["image_digest"].as_str(),
        ) {
            (Some(layout), Some(digest)) => {
                let hex = digest.strip_prefix("sha256:").unwrap();
                let blob = out.join(layout).join("blobs/sha256").join(hex);
                assert_eq!(sha256_file(&blob), hex, "{} holds its image", layout);
                assert!(file.is_dir(), "{} (the context) exists", file.display());
            }
            _ => assert_eq!(
                sha256_file(&file),
                artifact["sha256"].as_str().unwrap(),
                "{} matches the manifest",
                file.display()
            ),
        }
    }
}

/// Temporaries an interrupted run left (`.<name>.*.tmp`, `.<name>.old-*`).
pub fn temporaries(dir: &Path) -> Vec<String> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp") || n.contains(".old-"))
        .collect()
}

const REGISTRY_READER: &str = r#"
import hashlib, json, sys, urllib.request, urllib.error
host, repo = sys.argv[1], sys.argv[2]
def call(method, path, accept=None):
    r = urllib.request.Request("http://%s%s" % (host, path), method=method)
    if accept:
        r.add_header("Accept", accept)
    try:
        with urllib.request.urlopen(r) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, b""
status, body = call("GET", "/v2/%s/tags/list" % repo)
tags = (json.loads(body).get("tags") or []) if status == 200 else []
out = {"tags": {}, "missing": []}
for tag in tags:
    status, raw = call("GET", "/v2/%s/manifests/%s" % (repo, tag),
                       "application/vnd.oci.image.manifest.v1+json")
    manifest = json.loads(raw)
    out["tags"][tag] = "sha256:" + hashlib.sha256(raw).hexdigest()
    for d in [manifest["config"]] + manifest["layers"]:
        if call("HEAD", "/v2/%s/blobs/%s" % (repo, d["digest"]))[0] != 200:
            out["missing"].append(d["digest"])
print(json.dumps(out))
"#;

/// A repository as the registry serves it: each tag's manifest digest, and the blobs those
/// manifests name that the registry does not have (read directly, not through any proxy).
pub fn registry_repository(host: &str, repository: &str) -> Value {
    let output = Command::new("python3")
        .args(["-c", REGISTRY_READER, host, repository])
        .output()
        .expect("run python3");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// No tag of `repository` names a blob the registry lacks.
pub fn assert_registry_consistent(host: &str, repository: &str) -> Value {
    let read = registry_repository(host, repository);
    assert_eq!(
        read["missing"],
        serde_json::json!([]),
        "a manifest in {repository} names missing blobs: {read}"
    );
    read
}

/// The account as boto3 reads it, without what changes on every write (LastModified), so two
/// states compare equal when the configuration is the same.
pub fn comparable(state: &Value) -> Value {
    let mut state = state.clone();
    if let Some(functions) = state["functions"].as_object_mut() {
        for function in functions.values_mut() {
            if let Some(function) = function.as_object_mut() {
                function.remove("LastModified");
            }
        }
    }
    state
}

/// Each layer's versions hold distinct content: no version was published twice.
pub fn assert_no_duplicate_layer_versions(state: &Value) {
    for (name, versions) in state["layers"].as_object().unwrap() {
        let mut hashes: Vec<&str> = versions
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["CodeSha256"].as_str().unwrap())
            .collect();
        let all = hashes.len();
        hashes.sort();
        hashes.dedup();
        assert_eq!(
            hashes.len(),
            all,
            "layer {name} has a duplicate version: {state}"
        );
    }
}

pub fn image_digest(fixture: &Fixture) -> String {
    super::artifact(&super::manifest(&fixture.out_dir()), "fn-x86")["image_digest"]
        .as_str()
        .unwrap()
        .to_string()
}

/// After a deploy: both functions run the packed code, each layer has exactly one version.
pub fn assert_deployed(packed: &Packed, region: &str) -> Value {
    let account = state(region);
    assert_no_duplicate_layer_versions(&account);
    for layer in ["tools-layer", "recorder"] {
        assert_eq!(
            account["layers"][layer].as_array().unwrap().len(),
            1,
            "{layer}: {account}"
        );
    }
    for function in ["tiny", "tool-user"] {
        assert_eq!(
            account["functions"][function]["CodeSha256"].as_str(),
            Some(packed.code_sha256(function).as_str()),
            "{function}: {account}"
        );
    }
    account
}
