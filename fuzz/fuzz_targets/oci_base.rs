//! The base image as read from the OCI cache a registry pull fills: the cache's `index.json`, the
//! index or manifest a reference names, the platform's manifest, its config and layers, resolved
//! with `--offline` (`image::base`), then the image config built over the base's
//! (`image::config::image_config`).
//!
//! Input: byte 0 picks the architecture (bit 0: x86_64 or arm64); the rest is split at `\n--\n`
//! into documents: the first is the cache's `index.json`, the others are stored as blobs under
//! their sha256. `@1`..`@7` in a document is replaced by `sha256:<hex>` of document N (only
//! documents after it, so every digest can be computed), which lets inputs name real blobs.
//!
//! The cache is `<work>/cache`; `<work>/victim` and `<work>/keep/file` sit beside it. Whatever
//! the result, afterwards both are intact and `<work>` holds nothing else (nothing outside the
//! cache is read-then-removed or written). On success every layer blob is a file under
//! `cache/blobs/sha256/` named by 64 hex digits, and the config written is a JSON object for the
//! architecture, for linux, with one diff id per base layer and `Cmd` = `["bootstrap"]`.
#![no_main]

use std::fs;
use std::path::{Path, PathBuf};

use cargo_lambda_pack::Arch;
use cargo_lambda_pack::fuzzing::base_image_offline;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sha2::{Digest, Sha256};

const REFERENCE: &str = "registry.example/base:1";
const VICTIM: &[u8] = b"outside the cache";

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    if rest.len() > 256 * 1024 {
        return;
    }
    let (arch, oci_arch) = if flags & 1 == 0 {
        (Arch::X86_64, "amd64")
    } else {
        (Arch::Arm64, "arm64")
    };
    let mut docs: Vec<Vec<u8>> = split(rest, b"\n--\n").into_iter().take(8).collect();
    // Digests from the last document to the first, each replacing its placeholder in the
    // documents before it.
    let mut digests: Vec<String> = vec![String::new(); docs.len()];
    for index in (0..docs.len()).rev() {
        for later in index + 1..docs.len() {
            let placeholder = format!("@{later}");
            docs[index] = replace(
                &docs[index],
                placeholder.as_bytes(),
                digests[later].as_bytes(),
            );
        }
        digests[index] = format!("sha256:{}", hex(&Sha256::digest(&docs[index])));
    }

    let work = tempfile::Builder::new()
        .prefix("fuzz-oci-")
        .tempdir_in(scratch())
        .expect("temp dir");
    let cache = work.path().join("cache");
    let blobs = cache.join("blobs/sha256");
    fs::create_dir_all(&blobs).expect("cache");
    fs::write(work.path().join("victim"), VICTIM).expect("victim");
    fs::create_dir(work.path().join("keep")).expect("keep");
    fs::write(work.path().join("keep/file"), VICTIM).expect("keep/file");
    if let Some(index) = docs.first() {
        fs::write(cache.join("index.json"), index).expect("index.json");
    }
    for (doc, digest) in docs.iter().zip(&digests).skip(1) {
        let hex = digest.strip_prefix("sha256:").expect("ours");
        fs::write(blobs.join(hex), doc).expect("blob");
    }

    let result = base_image_offline(&cache, REFERENCE, arch);

    let mut left: Vec<String> = fs::read_dir(work.path())
        .expect("read work")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["cache", "keep", "victim"],
        "something outside the cache changed (result: {:?})",
        result.as_ref().err()
    );
    for file in ["victim", "keep/file"] {
        assert_eq!(
            fs::read(work.path().join(file)).ok().as_deref(),
            Some(VICTIM),
            "`{file}` outside the cache was removed or changed (result: {:?})",
            result.as_ref().err()
        );
    }
    let Ok(outcome) = result else {
        return;
    };
    for blob in &outcome.layer_blobs {
        let name = blob.file_name().and_then(|n| n.to_str()).unwrap_or("");
        assert!(
            blob.parent() == Some(blobs.as_path())
                && name.len() == 64
                && name.bytes().all(|b| b.is_ascii_hexdigit()),
            "a layer blob outside the cache's blobs: {}",
            blob.display()
        );
        assert!(
            blob.is_file(),
            "a layer blob that is not a file: {}",
            blob.display()
        );
    }
    let config: Value =
        serde_json::from_slice(&outcome.config.expect("a base has a config")).expect("JSON");
    assert_eq!(config["architecture"], oci_arch, "{config}");
    assert_eq!(config["os"], "linux", "{config}");
    assert_eq!(
        config["config"]["Cmd"],
        serde_json::json!(["bootstrap"]),
        "{config}"
    );
    let diff_ids = config["rootfs"]["diff_ids"].as_array().map(Vec::len);
    assert_eq!(
        diff_ids,
        Some(outcome.layer_blobs.len()),
        "the image config's diff ids do not line up with the base's layers: {config}"
    );
});

fn split(data: &[u8], separator: &[u8]) -> Vec<Vec<u8>> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut at = 0;
    while at + separator.len() <= data.len() {
        if &data[at..at + separator.len()] == separator {
            parts.push(data[start..at].to_vec());
            at += separator.len();
            start = at;
        } else {
            at += 1;
        }
    }
    parts.push(data[start..].to_vec());
    parts
}

fn replace(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let parts = split(data, from);
    parts.join(to)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Temporary files go to /dev/shm when it is there: thousands of caches a second.
fn scratch() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}
