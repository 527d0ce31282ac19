//! Running a container image: its OCI layout read back (every blob checked against its digest),
//! its layers unpacked into a root file system ([`super::untar`]) and its configuration turned
//! into what runs: the entrypoint and command, the environment and the working directory.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::VerifyError;
use super::untar::{self, LayerBlob, Unpacked, resolve_in_root};
use crate::target::Arch;

/// The manifest, the config and `index.json` are small; anything larger is not ours.
const MAX_JSON_BYTES: u64 = 4 * 1024 * 1024;

/// An image unpacked and ready to run.
#[derive(Clone, Debug)]
pub struct ImageRoot {
    /// The unpacked root file system: `/` of every process.
    pub root: PathBuf,
    /// What runs: the configuration's entrypoint followed by its command.
    pub argv: Vec<String>,
    /// The configuration's `Env`, in order.
    pub env: Vec<(String, String)>,
    /// The configuration's `WorkingDir`, else `/`.
    pub working_dir: String,
    /// `_HANDLER`: the first word of the command (`CMD ["bootstrap"]`), as Lambda sets it.
    pub handler: String,
    /// A caveat about how the image ran (the runtime run directly under qemu).
    pub note: Option<String>,
}

/// Reads the image `digest` from the OCI layout `layout` and unpacks it into `root` (an empty
/// directory of ours).
pub fn unpack_image(
    layout: &Path,
    digest: &str,
    root: &Path,
    arch: Arch,
) -> Result<ImageRoot, VerifyError> {
    let manifest = read_json_blob(layout, digest, "the image manifest")?;
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .ok_or_else(|| bad(layout, "its manifest names no config"))?;
    let config = read_json_blob(layout, config_digest, "the image config")?;
    let expected_arch = crate::image::config::oci_arch(arch);
    if config["architecture"] != expected_arch {
        return Err(bad(
            layout,
            &format!(
                "its config is for architecture {}, not {expected_arch} ({arch})",
                config["architecture"]
            ),
        ));
    }
    let layers = manifest["layers"].as_array().cloned().unwrap_or_default();
    let diff_ids = config["rootfs"]["diff_ids"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if layers.len() != diff_ids.len() {
        return Err(bad(
            layout,
            &format!(
                "its manifest has {} layers but its config {} diff ids",
                layers.len(),
                diff_ids.len()
            ),
        ));
    }
    std::fs::create_dir_all(root).map_err(|e| VerifyError::io("create", root, e))?;
    let mut unpacked = Unpacked::default();
    for (layer, diff_id) in layers.iter().zip(&diff_ids) {
        let layer_digest = layer["digest"].as_str().unwrap_or_default();
        let blob = blob_path(layout, layer_digest)?;
        let blob_layer = LayerBlob {
            blob: &blob,
            media_type: layer["mediaType"].as_str().unwrap_or_default(),
            digest: layer_digest,
            diff_id: diff_id.as_str().unwrap_or_default(),
        };
        untar::apply_layer(root, &blob_layer, &mut unpacked)?;
    }
    unpacked.finish(root)?;
    add_mount_points(root)?;
    let inner = &config["config"];
    let strings = |value: &Value| -> Vec<String> {
        value
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let cmd = strings(&inner["Cmd"]);
    let handler = cmd.first().cloned().unwrap_or_default();
    let mut argv = strings(&inner["Entrypoint"]);
    argv.extend(cmd);
    if argv.is_empty() {
        return Err(bad(
            layout,
            "its config has neither an entrypoint nor a command",
        ));
    }
    let env: Vec<(String, String)> = strings(&inner["Env"])
        .into_iter()
        .filter_map(|item| {
            item.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    let working_dir = inner["WorkingDir"]
        .as_str()
        .filter(|dir| dir.starts_with('/'))
        .unwrap_or("/")
        .to_string();
    let mut image = ImageRoot {
        root: root.to_path_buf(),
        argv,
        env,
        working_dir,
        handler,
        note: None,
    };
    if Arch::host() != Some(arch) {
        run_runtime_directly(&mut image, arch);
    }
    Ok(image)
}

/// Lambda gives every function `/proc`, `/dev` and a writable `/tmp`, whatever its image holds
/// (as container runtimes do, the mount points are made when missing; a name the image uses for
/// something else is left alone and not mounted over).
fn add_mount_points(root: &Path) -> Result<(), VerifyError> {
    for name in ["proc", "dev", "tmp"] {
        let path = root.join(name);
        if std::fs::symlink_metadata(&path).is_err() {
            std::fs::create_dir(&path).map_err(|e| VerifyError::io("create", &path, e))?;
        }
    }
    Ok(())
}

/// Under qemu without binfmt_misc, a script entrypoint cannot exec the foreign-architecture
/// runtime it hands over to (the kernel does not know how to run it). Lambda's entrypoint only
/// sets `_HANDLER` and execs `$LAMBDA_RUNTIME_DIR/bootstrap`, so that runtime runs directly,
/// with the handler in `_HANDLER`, and the report says so.
fn run_runtime_directly(image: &mut ImageRoot, arch: Arch) {
    let entry = &image.argv[0];
    let Ok(resolved) = resolve_in_root(&image.root, Path::new(entry), false) else {
        return;
    };
    let mut head = [0u8; 2];
    let is_script = std::fs::File::open(image.root.join(resolved))
        .and_then(|mut file| std::io::Read::read_exact(&mut file, &mut head))
        .is_ok()
        && &head == b"#!";
    if !is_script {
        return;
    }
    let runtime_dir = image
        .env
        .iter()
        .rev()
        .find(|(k, _)| k == "LAMBDA_RUNTIME_DIR")
        .map_or("/var/runtime", |(_, v)| v.as_str());
    let runtime = format!("{}/bootstrap", runtime_dir.trim_end_matches('/'));
    image.note = Some(format!(
        "the entrypoint `{entry}` is a script that would exec the {arch} runtime, which qemu cannot \
         follow on a host without binfmt_misc; ran the runtime it execs, `{runtime}`, directly"
    ));
    image.argv = vec![runtime];
}

fn bad(layout: &Path, reason: &str) -> VerifyError {
    VerifyError::BadImage {
        what: layout.display().to_string(),
        reason: reason.to_string(),
    }
}

/// `blobs/sha256/<hex>` of the layout; a digest that is not a SHA-256 is refused (it would name
/// a path of its choosing).
fn blob_path(layout: &Path, digest: &str) -> Result<PathBuf, VerifyError> {
    let hex = digest
        .strip_prefix("sha256:")
        .filter(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| {
            bad(
                layout,
                &format!("it names a blob `{digest}` that is not a sha256 digest"),
            )
        })?;
    Ok(layout.join("blobs/sha256").join(hex))
}

/// A JSON blob of the layout, checked against its digest.
fn read_json_blob(layout: &Path, digest: &str, what: &str) -> Result<Value, VerifyError> {
    let path = blob_path(layout, digest)?;
    let bytes = read_small(&path)?;
    let actual = crate::image::base::sha256_hex(&bytes);
    if actual != digest {
        return Err(bad(
            layout,
            &format!(
                "{what} `{}` holds content with digest {actual}, not {digest}",
                path.display()
            ),
        ));
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        bad(
            layout,
            &format!("{what} `{}` is not JSON ({e})", path.display()),
        )
    })
}

fn read_small(path: &Path) -> Result<Vec<u8>, VerifyError> {
    let file = std::fs::File::open(path).map_err(|e| VerifyError::io("open", path, e))?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_JSON_BYTES), &mut bytes)
        .map_err(|e| VerifyError::io("read", path, e))?;
    Ok(bytes)
}

/// The image digest `index.json` of the layout names (the manifest's `image_digest` must be it).
pub fn indexed_digest(layout: &Path) -> Result<String, VerifyError> {
    let path = layout.join("index.json");
    let index: Value = serde_json::from_slice(&read_small(&path)?)
        .map_err(|e| bad(layout, &format!("its index.json is not JSON ({e})")))?;
    index["manifests"][0]["digest"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| bad(layout, "its index.json names no image"))
}

/// The extensions of the image: the regular files of `/opt/extensions` (resolved inside the
/// image), by name, with their paths on the host.
pub fn extensions(root: &Path) -> Vec<(String, PathBuf)> {
    let Ok(dir) = resolve_in_root(root, Path::new("opt/extensions"), false) else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(root.join(&dir)) else {
        return Vec::new();
    };
    let mut found: Vec<(String, PathBuf)> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let resolved = resolve_in_root(root, &dir.join(&name), false).ok()?;
            let host = root.join(resolved);
            std::fs::symlink_metadata(&host)
                .is_ok_and(|m| m.is_file())
                .then_some((name, host))
        })
        .collect();
    found.sort();
    found
}

/// The host path of a file the image names by its absolute path (resolved inside the image).
pub fn host_path(root: &Path, in_image: &str) -> PathBuf {
    match resolve_in_root(root, Path::new(in_image), false) {
        Ok(resolved) => root.join(resolved),
        Err(_) => root.join(in_image.trim_start_matches('/')),
    }
}

/// Removes an unpacked root even where the image made directories read-only.
pub fn remove_root(root: &Path) {
    untar::make_removable(root);
    let _ = std::fs::remove_dir_all(root);
}
