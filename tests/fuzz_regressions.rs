//! Inputs that broke a parser, each kept as the exact bytes that did it (inline or under
//! `tests/fuzz-regressions/`). `scripts/fuzz.sh` runs the fuzz targets these came from.

use std::fs;
use std::path::{Component, Path, PathBuf};

use cargo_lambda_pack::fuzzing::{BaseOutcome, base_image_offline};
use cargo_lambda_pack::{Arch, extract_zip, unpack_image};
use sha2::{Digest, Sha256};

fn regression_input(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz-regressions")
        .join(name)
}

/// Every entry of `root` other than `dest`: what an extraction into `root/dest` left outside it.
fn outside_dest(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(root)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != "dest")
        .collect();
    names.sort();
    names
}

/// Symlinks under `dest` that lead (following links on disk, as the kernel does) outside it.
fn links_leaving(dest: &Path) -> Vec<(PathBuf, PathBuf)> {
    let dest_real = fs::canonicalize(dest).unwrap();
    let mut leaving = Vec::new();
    let mut stack = vec![dest.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path);
            } else if meta.file_type().is_symlink() {
                let target = fs::read_link(&path).unwrap();
                let mut here = fs::canonicalize(path.parent().unwrap()).unwrap();
                for component in target.components() {
                    match component {
                        Component::RootDir | Component::Prefix(_) => here = PathBuf::from("/"),
                        Component::CurDir => {}
                        Component::ParentDir => {
                            here.pop();
                        }
                        Component::Normal(part) => match fs::canonicalize(here.join(part)) {
                            Ok(next) => here = next,
                            Err(_) => break,
                        },
                    }
                }
                if !here.starts_with(&dest_real) {
                    leaving.push((path, here));
                }
            }
        }
    }
    leaving
}

/// `check_link` resolves a symlink's target lexically and refuses `..` only right after a
/// component that is itself a symlink of the archive. `s -> d` and `d/x -> ..` make `s/x` an
/// alias of the destination that is not, by name, a symlink, so `t -> s/x/..` is accepted and
/// points at the destination's parent; `t/escaped` is then created through it, outside.
/// (src/verify/extract.rs, `check_link`; caught by the `verify_zip` fuzz target's oracle.)
#[test]
fn extract_zip_symlink_through_aliased_link_escapes_dest() {
    let root = tempfile::tempdir().unwrap();
    let dest = root.path().join("dest");
    let result = extract_zip(&regression_input("symlink-alias-escape.zip"), &dest);
    let outside = outside_dest(root.path());
    let leaving = if dest.is_dir() {
        links_leaving(&dest)
    } else {
        Vec::new()
    };
    assert!(
        outside.is_empty() && leaving.is_empty(),
        "extract_zip returned {result:?}, left {outside:?} outside the destination and \
         symlinks leading out of it: {leaving:?}"
    );
    assert!(result.is_err(), "the archive must be refused: {result:?}");
}

/// Layers are extracted one after the other into the same `/opt` (verify's `command.rs`), but
/// each archive's symlinks are checked only against that archive's own symlinks. Layer 1 leaves
/// `a/b -> ..` (inside), layer 2's `c -> a/b/..` looks like `a` lexically and is the
/// destination's parent on disk, and layer 3's `c/escaped.txt` is written there.
/// (src/verify/extract.rs, `check_link` / `write_file`; the same oracle, over three extractions.)
#[test]
fn extract_zip_layer_symlink_through_earlier_layer_escapes_dest() {
    let root = tempfile::tempdir().unwrap();
    let dest = root.path().join("dest");
    let results: Vec<_> = [
        "layer-1-link-to-dest.zip",
        "layer-2-link-through-layer-1.zip",
        "layer-3-file-through-layer-2.zip",
    ]
    .into_iter()
    .map(|name| extract_zip(&regression_input(name), &dest).map(|_| ()))
    .collect();
    let outside = outside_dest(root.path());
    let leaving = links_leaving(&dest);
    assert!(
        outside.is_empty() && leaving.is_empty(),
        "extract_zip returned {results:?}, left {outside:?} outside the destination and \
         symlinks leading out of it: {leaving:?}"
    );
}

fn sha256_digest(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

fn split_at(data: &[u8], separator: &[u8]) -> Vec<Vec<u8>> {
    let mut parts = vec![Vec::new()];
    let mut at = 0;
    while at < data.len() {
        if data[at..].starts_with(separator) {
            parts.push(Vec::new());
            at += separator.len();
        } else {
            parts.last_mut().unwrap().push(data[at]);
            at += 1;
        }
    }
    parts
}

/// The `oci_base` fuzz target's harness: `<work>/cache` filled from an input (after its first
/// byte: `index.json`, then blobs, `@N` standing for document N's digest), `<work>/victim`
/// beside it. Returns what resolving `registry.example/base:1` for x86_64 offline gave.
fn resolve_oci_input(name: &str, work: &Path) -> Result<BaseOutcome, String> {
    let data = fs::read(regression_input(name)).unwrap();
    let mut docs = split_at(&data[1..], b"\n--\n");
    let mut digests = vec![String::new(); docs.len()];
    for index in (0..docs.len()).rev() {
        for (later, digest) in digests.iter().enumerate().skip(index + 1) {
            let text = split_at(&docs[index], format!("@{later}").as_bytes());
            docs[index] = text.join(digest.as_bytes());
        }
        digests[index] = sha256_digest(&docs[index]);
    }
    let blobs = work.join("cache/blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    fs::write(work.join("victim"), b"outside the cache").unwrap();
    fs::write(work.join("cache/index.json"), &docs[0]).unwrap();
    for (doc, digest) in docs.iter().zip(&digests).skip(1) {
        fs::write(blobs.join(&digest[7..]), doc).unwrap();
    }
    base_image_offline(&work.join("cache"), "registry.example/base:1", Arch::X86_64)
}

/// The base image cache maps a digest to `blobs/sha256/<hex>` by cutting `sha256:`, so an
/// `index.json` entry (or a registry's manifest) naming `sha256:../../../victim` named a file
/// outside the cache; it failed the digest check and, as a corrupt cache entry, was deleted.
/// (src/image/base.rs, `blob_path` / `read_verified`; the `oci_base` target's oracle.)
#[test]
fn base_image_digest_naming_a_path_outside_the_cache_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let result = resolve_oci_input("oci-digest-path-traversal.bin", work.path());
    assert_eq!(
        fs::read(work.path().join("victim")).ok().as_deref(),
        Some(&b"outside the cache"[..]),
        "the file outside the cache was removed ({:?})",
        result.as_ref().err()
    );
    let error = result.err().expect("a malformed digest is refused");
    assert!(
        error.contains("`sha256:../../../victim`, which is not a sha256 digest"),
        "{error}"
    );
}

/// Base image configs the image config is built on: `"config": null` and a `history` that is not
/// a list made `image::config::image_config` panic (`expect("config.config is an object")`,
/// `expect("history is an array")`); they now read as absent. A `rootfs` that is not an object
/// panicked too, and a config with fewer diff ids than its manifest has layers gave an image
/// config that misdescribes the layers; both are now refused by name.
#[test]
fn base_image_configs_of_unusual_shapes_neither_panic_nor_misdescribe_layers() {
    for input in ["oci-config-null.bin", "oci-history-not-a-list.bin"] {
        let work = tempfile::tempdir().unwrap();
        let outcome =
            resolve_oci_input(input, work.path()).unwrap_or_else(|e| panic!("{input}: {e}"));
        let config: serde_json::Value = serde_json::from_slice(&outcome.config.unwrap()).unwrap();
        assert_eq!(
            config["config"]["Cmd"],
            serde_json::json!(["bootstrap"]),
            "{input}"
        );
        assert_eq!(
            config["rootfs"]["diff_ids"],
            serde_json::json!([]),
            "{input}"
        );
    }
    for (input, expected) in [
        (
            "oci-rootfs-not-an-object.bin",
            "has a `rootfs` that is not an object",
        ),
        (
            "oci-diff-ids-fewer-than-layers.bin",
            "lists 0 diff ids in `rootfs.diff_ids` for the 1 layers of its manifest",
        ),
    ] {
        let work = tempfile::tempdir().unwrap();
        let error = resolve_oci_input(input, work.path())
            .err()
            .unwrap_or_else(|| panic!("{input} must be refused"));
        assert!(error.contains(expected), "{input}: {error}");
    }
}

/// A layer entry named `.wh...` is a whiteout of `..`: `untar` joined the hidden name to the
/// entry's directory and removed it, so at the top of the image it removed the root's parent
/// (with everything beside the root). (src/verify/untar.rs, `apply_entry`; the `image_layers`
/// target's oracle: nothing outside `<work>/outer/root` changes.)
#[test]
fn image_layer_whiteout_of_dotdot_removes_nothing_outside_the_root() {
    let data = fs::read(regression_input("untar-whiteout-dotdot.bin")).unwrap();
    let layer = &data[1..]; // byte 0 = 1: a plain OCI tar
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let blobs = layout.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let store = |bytes: &[u8]| {
        let digest = sha256_digest(bytes);
        fs::write(blobs.join(&digest[7..]), bytes).unwrap();
        digest
    };
    let layer_digest = store(layer);
    let arch = Arch::host().expect("an x86_64 or arm64 host");
    let oci_arch = if arch == Arch::X86_64 {
        "amd64"
    } else {
        "arm64"
    };
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": oci_arch, "os": "linux", "config": {"Cmd": ["bootstrap"]},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    }))
    .unwrap();
    let config_digest = store(&config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest, "size": layer.len()}],
    }))
    .unwrap();
    let manifest_digest = store(&manifest);
    let outer = work.path().join("outer");
    fs::create_dir(&outer).unwrap();
    fs::write(outer.join("victim"), b"beside the root").unwrap();

    let result = unpack_image(&layout, &manifest_digest, &outer.join("root"), arch);

    assert_eq!(
        fs::read(outer.join("victim")).ok().as_deref(),
        Some(&b"beside the root"[..]),
        "the whiteout removed the root's parent ({:?})",
        result.as_ref().err().map(ToString::to_string)
    );
    let error = result.expect_err("the layer is refused").to_string();
    assert!(error.contains("is a whiteout of `.` or `..`"), "{error}");
}
