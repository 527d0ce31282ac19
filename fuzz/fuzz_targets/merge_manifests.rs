//! `merge` over shard manifests (`commands::merge`, `manifest`, `manifest_paths`): the input is
//! the `manifest.json` of two shard output directories that hold real files, merged into a new
//! `--out-dir`.
//!
//! Input: split at the first `\n--\n` into the two manifests (a missing second is `{}`). In both,
//! `@A`, `@B` and `@M` are replaced by the sha256 hex of the shards' `x86_64/a.zip`,
//! `x86_64/b.zip` and of the image manifest blob in `x86_64/img.oci`, so entries can match.
//! Each shard also holds an image context `x86_64/img/Dockerfile`, an SBOM `x86_64/a.cdx.json`,
//! a symlink `x86_64/link.zip -> ../../victim` and a symlinked directory `arm64 -> ../victim-dir`.
//!
//! Whatever `merge` returns, afterwards: the shards, `<work>/victim` and `<work>/victim-dir` are
//! byte for byte as before, and `<work>` holds nothing new but `out` (no stage left behind). On
//! error `out` does not exist (nothing half-written); on success `out` holds no symlink, its
//! manifest parses, and every zip it lists is there with the sha256 the entry records.
#![no_main]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use cargo_lambda_pack::fuzzing::merge;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sha2::{Digest, Sha256};

const ZIP_A: &[u8] = b"PK\x05\x06 shard zip a";
const ZIP_B: &[u8] = b"PK\x05\x06 shard zip b";
const IMAGE_MANIFEST: &[u8] = br#"{"schemaVersion":2,"layers":[]}"#;

fuzz_target!(|data: &[u8]| {
    if data.len() > 64 * 1024 {
        return;
    }
    let (first, second) = match data.windows(4).position(|w| w == b"\n--\n") {
        Some(at) => (&data[..at], &data[at + 4..]),
        None => (data, &b"{}"[..]),
    };
    let work = tempfile::Builder::new()
        .prefix("fuzz-merge-")
        .tempdir_in(scratch())
        .expect("temp dir");
    let w = work.path();
    fs::write(w.join("victim"), b"victim").expect("victim");
    fs::create_dir(w.join("victim-dir")).expect("victim-dir");
    fs::write(w.join("victim-dir/a.zip"), ZIP_A).expect("victim-dir/a.zip");
    let placeholders = [
        (&b"@A"[..], hex(ZIP_A)),
        (&b"@B"[..], hex(ZIP_B)),
        (&b"@M"[..], hex(IMAGE_MANIFEST)),
    ];
    let mut shards = Vec::new();
    for (name, manifest) in [("shard-1", first), ("shard-2", second)] {
        let dir = w.join(name);
        shard(&dir);
        let mut manifest = manifest.to_vec();
        for (from, to) in &placeholders {
            manifest = replace(&manifest, from, to.as_bytes());
        }
        fs::write(dir.join("manifest.json"), manifest).expect("manifest.json");
        shards.push(dir);
    }
    let before = snapshot(w);
    let out = w.join("out");

    let result = merge(&shards, &out);

    let mut after = snapshot(w);
    let made: Vec<PathBuf> = after
        .keys()
        .filter(|p| p.starts_with("out"))
        .cloned()
        .collect();
    for path in &made {
        after.remove(path);
    }
    let changed: Vec<&PathBuf> = before
        .iter()
        .filter(|(p, v)| after.get(*p) != Some(v))
        .map(|(p, _)| p)
        .chain(after.keys().filter(|p| !before.contains_key(*p)))
        .collect();
    assert!(
        changed.is_empty(),
        "merge changed {changed:?} outside --out-dir ({result:?})"
    );
    if result.is_err() {
        assert!(made.is_empty(), "a failed merge left {made:?} ({result:?})");
        return;
    }
    for path in &made {
        let meta = fs::symlink_metadata(w.join(path)).expect("made");
        assert!(
            !meta.file_type().is_symlink(),
            "merge wrote the symlink {}",
            path.display()
        );
    }
    let manifest: Value =
        serde_json::from_slice(&fs::read(out.join("manifest.json")).expect("manifest"))
            .expect("JSON");
    for artifact in manifest["artifacts"].as_array().expect("artifacts") {
        if artifact["format"] == "zip" {
            let path = out.join(artifact["path"].as_str().expect("path"));
            let bytes = fs::read(&path).expect("a listed zip is there");
            assert_eq!(
                Some(hex(&bytes).as_str()),
                artifact["sha256"].as_str(),
                "{} does not hash to its entry",
                path.display()
            );
        }
    }
});

/// A shard output directory with real files, a symlink out, and a symlinked directory.
fn shard(dir: &Path) {
    let x86 = dir.join("x86_64");
    fs::create_dir_all(x86.join("img")).expect("img");
    fs::write(x86.join("a.zip"), ZIP_A).expect("a.zip");
    fs::write(x86.join("b.zip"), ZIP_B).expect("b.zip");
    fs::write(x86.join("a.cdx.json"), b"{}").expect("sbom");
    fs::write(x86.join("img/Dockerfile"), b"FROM scratch\n").expect("Dockerfile");
    let blobs = x86.join("img.oci/blobs/sha256");
    fs::create_dir_all(&blobs).expect("blobs");
    fs::write(blobs.join(hex(IMAGE_MANIFEST)), IMAGE_MANIFEST).expect("blob");
    fs::write(x86.join("img.oci/index.json"), b"{}").expect("index.json");
    std::os::unix::fs::symlink("../../victim", x86.join("link.zip")).expect("link");
    std::os::unix::fs::symlink("../victim-dir", dir.join("arm64")).expect("arm64");
}

/// Every path under `dir` (relative, links not followed) with what it is: a file's bytes, a
/// link's target, or a directory marker.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut seen = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(here) = stack.pop() {
        for entry in fs::read_dir(&here).expect("read dir").flatten() {
            let path = entry.path();
            let relative = path.strip_prefix(dir).expect("under dir").to_path_buf();
            let meta = fs::symlink_metadata(&path).expect("meta");
            let value = if meta.file_type().is_symlink() {
                let mut v = b"link:".to_vec();
                v.extend(
                    fs::read_link(&path)
                        .expect("link")
                        .as_os_str()
                        .as_encoded_bytes(),
                );
                v
            } else if meta.is_dir() {
                stack.push(path);
                b"dir".to_vec()
            } else {
                fs::read(&path).expect("file")
            };
            seen.insert(relative, value);
        }
    }
    seen
}

fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn replace(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut at = 0;
    while at < data.len() {
        if data[at..].starts_with(from) {
            out.extend_from_slice(to);
            at += from.len();
        } else {
            out.push(data[at]);
            at += 1;
        }
    }
    out
}

/// Temporary files go to /dev/shm when it is there: thousands of merges a second.
fn scratch() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}
