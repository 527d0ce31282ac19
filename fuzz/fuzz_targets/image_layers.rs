//! verify's image reader over layer tars: an OCI layout whose layers are the input, unpacked by
//! `verify::unpack_image` (`verify::untar`: whiteouts, opaque directories, symlinks resolved
//! inside the image, hard links, device nodes, `..`).
//!
//! Input: byte 0's low two bits pick the layers' media type (OCI or Docker, gzip or plain tar);
//! the rest is split at `LAYER--` into up to four layer blobs. The layout around them is correct
//! (blob digests, and diff ids of the decompressed tars when they decompress), so the entries,
//! not the bookkeeping, are what is fuzzed.
//!
//! The image root is `<work>/outer/root`; `<work>/outer/victim` and `<work>/victim` sit outside
//! it. Whatever `unpack_image` returns, afterwards `<work>` holds only `layout`, `outer` and
//! `victim`, `outer` only `root` and `victim`, both victims keep their content and are not hard
//! linked from anywhere (link count 1), and no layer blob of the layout gained a link either.
#![no_main]

use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use cargo_lambda_pack::{Arch, unpack_image};
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

const MEDIA_TYPES: [&str; 4] = [
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar",
];
const VICTIM: &[u8] = b"outside the image root";
const MAX_INPUT: usize = 1024 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    if rest.len() > MAX_INPUT {
        return;
    }
    let Some(arch) = Arch::host() else {
        return;
    };
    let oci_arch = if arch == Arch::X86_64 {
        "amd64"
    } else {
        "arm64"
    };
    let media_type = MEDIA_TYPES[usize::from(flags & 3)];
    let gzip = media_type.ends_with("gzip");
    let layers: Vec<&[u8]> = split(rest, b"LAYER--").into_iter().take(4).collect();

    let work = tempfile::Builder::new()
        .prefix("fuzz-untar-")
        .tempdir_in(scratch())
        .expect("temp dir");
    let layout = work.path().join("layout");
    let blobs = layout.join("blobs/sha256");
    fs::create_dir_all(&blobs).expect("blobs");
    let outer = work.path().join("outer");
    fs::create_dir(&outer).expect("outer");
    for victim in [work.path().join("victim"), outer.join("victim")] {
        fs::write(victim, VICTIM).expect("victim");
    }
    let store = |bytes: &[u8]| -> String {
        let digest = sha256(bytes);
        fs::write(blobs.join(&digest[7..]), bytes).expect("blob");
        digest
    };
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    for layer in &layers {
        let digest = store(layer);
        let diff_id = if gzip {
            let mut tar = Vec::new();
            match flate2::read::MultiGzDecoder::new(*layer).read_to_end(&mut tar) {
                Ok(_) => sha256(&tar),
                Err(_) => digest.clone(),
            }
        } else {
            digest.clone()
        };
        descriptors.push(serde_json::json!({
            "mediaType": media_type, "digest": digest, "size": layer.len()
        }));
        diff_ids.push(diff_id);
    }
    let config = serde_json::json!({
        "architecture": oci_arch, "os": "linux",
        "config": {"Cmd": ["bootstrap"], "Entrypoint": ["/lambda-entrypoint.sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config_bytes = serde_json::to_vec(&config).expect("config");
    let config_digest = store(&config_bytes);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest, "size": config_bytes.len()
        },
        "layers": descriptors,
    });
    let manifest_digest = store(&serde_json::to_vec(&manifest).expect("manifest"));
    let root = outer.join("root");

    let result = unpack_image(&layout, &manifest_digest, &root, arch);

    let names = |dir: &Path| -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let outcome = result.as_ref().map(|_| ()).map_err(ToString::to_string);
    let work_names = names(work.path());
    let outer_names = names(&outer);
    let mut blob_links = Vec::new();
    for entry in fs::read_dir(&blobs).expect("blobs").flatten() {
        let links = entry.metadata().map(|m| m.nlink()).unwrap_or(0);
        if links != 1 {
            blob_links.push((entry.file_name(), links));
        }
    }
    make_removable(work.path());
    assert_eq!(work_names, ["layout", "outer", "victim"], "{outcome:?}");
    assert_eq!(outer_names, ["root", "victim"], "{outcome:?}");
    for victim in [work.path().join("victim"), outer.join("victim")] {
        let meta = fs::symlink_metadata(&victim).expect("victim is there");
        assert!(
            meta.is_file(),
            "{} is no longer a file ({outcome:?})",
            victim.display()
        );
        assert_eq!(
            meta.nlink(),
            1,
            "{} was hard linked ({outcome:?})",
            victim.display()
        );
        assert_eq!(fs::read(&victim).expect("victim"), VICTIM, "{outcome:?}");
    }
    assert!(
        blob_links.is_empty(),
        "layout blobs were hard linked: {blob_links:?} ({outcome:?})"
    );
    if let Ok(image) = result {
        assert_eq!(image.root, root);
        assert!(root.is_dir(), "success without a root");
    }
});

fn sha256(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

fn split<'a>(data: &'a [u8], separator: &[u8]) -> Vec<&'a [u8]> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut at = 0;
    while at + separator.len() <= data.len() {
        if &data[at..at + separator.len()] == separator {
            parts.push(&data[start..at]);
            at += separator.len();
            start = at;
        } else {
            at += 1;
        }
    }
    parts.push(&data[start..]);
    parts
}

/// Images may hold mode 000 directories; give every directory its bits back so the temporary
/// directory can be removed. Links are never followed.
fn make_removable(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if let Ok(meta) = fs::symlink_metadata(&path)
            && meta.is_dir()
        {
            let _ = fs::set_permissions(&path, fs::Permissions::from_mode(0o755));
            make_removable(&path);
        }
    }
}

/// Temporary files go to /dev/shm when it is there: thousands of images a second.
fn scratch() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}
