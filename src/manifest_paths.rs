//! The one place where a path read from a manifest becomes a file path.
//!
//! A manifest is data anyone with write access to the output directory can change (a restored
//! CI cache, a shared target directory, an artifact bundle from elsewhere), so its `path` values
//! are never joined to the output directory as they are. [`resolve`] accepts only a relative,
//! normalised path without `..`, whose every directory on the way is a real directory inside the
//! output directory (never a symlink), and whose last component is not a symlink either. The
//! stale clean-up of a pack, `verify`, `deploy` and `merge` (every input path, and the staged
//! copy's) read paths through it.
//!
//! [`removable`] adds what the clean-up needs on top: only the artifact kinds and name patterns
//! this tool writes (`<arch>/<name>.zip` files and `<arch>/<name>/` image contexts holding a
//! Dockerfile) are ever deleted.

use std::path::{Path, PathBuf};

use crate::manifest::{Format, ManifestArtifact};
use crate::target::Arch;

/// Why a manifest path was refused, for a message that names the manifest and the entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The path's components, when it has the shape of a path this tool writes: relative,
/// `/`-separated, no empty, `.` or `..` component, no backslash or NUL. Pure.
pub fn components(relative: &str) -> Result<Vec<&str>, Refused> {
    if relative.is_empty() {
        return Err(Refused("the path is empty".into()));
    }
    if relative.starts_with('/') {
        return Err(Refused("the path is absolute".into()));
    }
    if relative.contains(['\\', '\0']) {
        return Err(Refused(
            "the path holds a backslash or a NUL character".into(),
        ));
    }
    let parts: Vec<&str> = relative.split('/').collect();
    if parts.contains(&"..") {
        return Err(Refused(
            "the path has a `..` component, which leads out of the output directory".into(),
        ));
    }
    if parts.iter().any(|p| p.is_empty() || *p == ".") {
        return Err(Refused(
            "the path is not normalised (an empty or `.` component)".into(),
        ));
    }
    Ok(parts)
}

/// Turns `relative`, a path read from a manifest in `out_dir`, into a file path inside `out_dir`.
///
/// Refused: anything [`components`] refuses, and a path where a directory on the way or the last
/// component is a symlink (which could lead anywhere). A last component that does not exist is
/// accepted (the caller reports it missing or has nothing to remove).
pub fn resolve(out_dir: &Path, relative: &str) -> Result<PathBuf, Refused> {
    let parts = components(relative)?;
    let mut path = out_dir.to_path_buf();
    for (index, part) in parts.iter().enumerate() {
        path.push(part);
        let last = index + 1 == parts.len();
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(Refused(format!(
                    "`{}` is a symlink, which could lead out of the output directory",
                    parts[..=index].join("/")
                )));
            }
            Ok(meta) if !last && !meta.is_dir() => {
                return Err(Refused(format!(
                    "`{}` is not a directory",
                    parts[..=index].join("/")
                )));
            }
            Ok(_) => {}
            // Nothing further down can exist either.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(out_dir.join(relative));
            }
            Err(err) => {
                return Err(Refused(format!(
                    "`{}` cannot be examined: {err}",
                    parts[..=index].join("/")
                )));
            }
        }
    }
    Ok(path)
}

/// What the clean-up may delete for a manifest entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Removable {
    /// A ZIP: a regular file.
    File(PathBuf),
    /// An image's build context: a real directory holding a `Dockerfile`.
    Context(PathBuf),
    /// Nothing is there any more.
    Gone,
}

/// Checks that `artifact` names something this tool writes — `<arch>/<name>.zip` for a ZIP,
/// `<arch>/<name>` for an image context, `arch` one of Lambda's and `name` a single component —
/// without asking the file system. Pure; the checks on disk are in [`removable`].
pub fn has_our_shape(artifact: &ManifestArtifact) -> Result<(), Refused> {
    components(&artifact.path)?;
    if components(&artifact.name).map(|p| p.len()) != Ok(1) {
        return Err(Refused(format!(
            "`{}` is not an artifact name this tool writes",
            artifact.name
        )));
    }
    let expected = match artifact.format {
        Format::Zip => format!("{}/{}.zip", artifact.arch, artifact.name),
        Format::Image => format!("{}/{}", artifact.arch, artifact.name),
    };
    if artifact.path != expected {
        return Err(Refused(format!(
            "this tool writes a {} `{}` ({}) to `{expected}`, not elsewhere",
            artifact.format, artifact.name, artifact.arch
        )));
    }
    Ok(())
}

/// What may be deleted for `artifact`, an entry of the manifest in `out_dir`: its shape checked
/// ([`has_our_shape`]), its path resolved ([`resolve`]), and the thing on disk of the kind its
/// format says (a regular file for a ZIP, a directory with a `Dockerfile` for an image).
pub fn removable(out_dir: &Path, artifact: &ManifestArtifact) -> Result<Removable, Refused> {
    has_our_shape(artifact)?;
    let path = resolve(out_dir, &artifact.path)?;
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Removable::Gone),
        Err(err) => return Err(Refused(format!("it cannot be examined: {err}"))),
    };
    match artifact.format {
        Format::Zip if meta.is_file() => Ok(Removable::File(path)),
        Format::Image
            if meta.is_dir()
                && std::fs::symlink_metadata(path.join("Dockerfile"))
                    .is_ok_and(|m| m.is_file()) =>
        {
            Ok(Removable::Context(path))
        }
        Format::Zip => Err(Refused("it is not a regular file".into())),
        _ => Err(Refused(
            "it is not a build context this tool wrote (a directory with a Dockerfile)".into(),
        )),
    }
}

/// The previous manifest of an output directory, sorted for a pack.
#[derive(Debug, Default)]
pub struct Screened {
    /// Entries whose path is safe to use: the only ones a pack may remove, reuse or keep.
    pub trusted: Vec<ManifestArtifact>,
    /// `(path, package)` of the trusted entries this run may find stale: its own workspace's,
    /// for the architectures it builds.
    pub candidates: Vec<(String, String)>,
    /// One warning per refused entry, naming the manifest and the entry.
    pub warnings: Vec<String>,
}

/// Sorts the entries of the manifest at `manifest_path` (in `out_dir`): entries this tool could
/// not have written, or whose path leaves the output directory, are refused with a warning and
/// never touched; of the others, only those of the workspace at `workspace_root` and of an
/// architecture in `covered` (`None`: every architecture) may turn out stale.
pub fn screen(
    out_dir: &Path,
    manifest_path: &Path,
    artifacts: Vec<ManifestArtifact>,
    workspace_root: &Path,
    covered: Option<&std::collections::BTreeSet<Arch>>,
) -> Screened {
    let mut screened = Screened::default();
    for artifact in artifacts {
        let checked = has_our_shape(&artifact).and_then(|()| resolve(out_dir, &artifact.path));
        if let Err(refused) = checked {
            screened
                .warnings
                .push(refused_entry(manifest_path, &artifact, &refused));
            continue;
        }
        let arch_covered = covered.is_none_or(|covered| covered.contains(&artifact.arch));
        if arch_covered && crate::manifest::Manifest::belongs_to(&artifact, workspace_root) {
            screened
                .candidates
                .push((artifact.path.clone(), artifact.package.clone()));
        }
        screened.trusted.push(artifact);
    }
    screened
}

/// The warning for an entry left alone: the manifest, the entry, its path and why.
pub fn refused_entry(manifest_path: &Path, artifact: &ManifestArtifact, why: &Refused) -> String {
    format!(
        "ignoring entry `{}` ({}, path `{}`) of `{}`: {why}; it was left alone",
        artifact.name,
        artifact.arch,
        artifact.path,
        manifest_path.display()
    )
}

/// The message for an entry a command stops on (`merge`): the manifest, the entry, the field
/// that is bad with its value, and why. (A pack's clean-up, which goes on without the entry, says
/// [`refused_entry`] instead.)
pub fn bad_field(
    manifest_path: &Path,
    artifact: &ManifestArtifact,
    field: &str,
    value: &str,
    why: &Refused,
) -> String {
    format!(
        "entry `{}` ({}) of `{}`: its `{field}` `{value}` is refused: {why}",
        artifact.name,
        artifact.arch,
        manifest_path.display()
    )
}

/// The SBOM written beside an artifact, `<arch>/<name>.cdx.json`, when it is there as a regular
/// file (no symlink on the way); the path is derived from the checked name, never the
/// manifest's `sbom` text.
fn sbom_beside(out_dir: &Path, artifact: &ManifestArtifact) -> Option<PathBuf> {
    let path = resolve(
        out_dir,
        &format!("{}/{}.cdx.json", artifact.arch, artifact.name),
    )
    .ok()?;
    std::fs::symlink_metadata(&path)
        .is_ok_and(|m| m.is_file())
        .then_some(path)
}

/// The OCI image layout written beside an image's build context, `<arch>/<name>.oci`, when it is
/// there as this tool writes it: a real directory (no symlink on the way) holding `oci-layout`.
/// Its path comes from the entry's checked name and architecture, never from the manifest's
/// `oci_layout` text.
fn image_layout_beside(out_dir: &Path, artifact: &ManifestArtifact) -> Option<PathBuf> {
    let path = resolve(out_dir, &format!("{}/{}.oci", artifact.arch, artifact.name)).ok()?;
    let is_dir = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
    let marked = std::fs::symlink_metadata(path.join("oci-layout")).is_ok_and(|m| m.is_file());
    (is_dir && marked).then_some(path)
}

/// What the clean-up did with one stale entry.
#[derive(Debug)]
pub enum Cleaned {
    Removed(PathBuf),
    /// Refused on disk (its message names the manifest and the entry); left alone.
    Refused(String),
}

/// Removes the artifacts of `stale` entries of the manifest at `manifest_path`, each checked again
/// just before (the build may have taken minutes): only a regular file for a ZIP and a real
/// directory with a Dockerfile for an image, never through a symlink. An entry already gone is
/// skipped silently.
pub fn remove_stale(
    out_dir: &Path,
    manifest_path: &Path,
    stale: &[&ManifestArtifact],
) -> crate::error::Result<Vec<Cleaned>> {
    let mut cleaned = Vec::new();
    for artifact in stale {
        // The SBOM goes with its artifact (or after it, when the artifact is already gone); a
        // refused artifact keeps it.
        let removable = removable(out_dir, artifact);
        if removable.is_ok()
            && let Some(sbom) = sbom_beside(out_dir, artifact)
        {
            std::fs::remove_file(&sbom).map_err(|e| crate::error::Error::write(&sbom, &e))?;
            cleaned.push(Cleaned::Removed(sbom));
        }
        let removed = match removable {
            Ok(Removable::Gone) => continue,
            Ok(Removable::File(path)) => std::fs::remove_file(&path).map(|()| path),
            // remove_dir_all does not follow symlinks inside the directory.
            Ok(Removable::Context(path)) => {
                if let Some(layout) = image_layout_beside(out_dir, artifact) {
                    std::fs::remove_dir_all(&layout)
                        .map_err(|e| crate::error::Error::write(&layout, &e))?;
                    cleaned.push(Cleaned::Removed(layout));
                }
                std::fs::remove_dir_all(&path).map(|()| path)
            }
            Err(refused) => {
                cleaned.push(Cleaned::Refused(refused_entry(
                    manifest_path,
                    artifact,
                    &refused,
                )));
                continue;
            }
        };
        match removed {
            Ok(path) => cleaned.push(Cleaned::Removed(path)),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => {
                return Err(crate::error::Error::write(
                    &out_dir.join(&artifact.path),
                    &err,
                ));
            }
        }
    }
    Ok(cleaned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_relative_normalised_paths_have_components() {
        assert_eq!(
            components("x86_64/orders.zip").unwrap(),
            ["x86_64", "orders.zip"]
        );
        for bad in [
            "",
            "/etc/passwd",
            "../victim/keep.zip",
            "..",
            "x86_64/../../x.zip",
            "./x.zip",
            "x86_64//x.zip",
            "x86_64/",
            "a\\..\\b",
            "a\0b",
        ] {
            assert!(components(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn resolve_refuses_symlinks_on_the_way_and_at_the_end() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("out");
        let outside = root.path().join("outside");
        std::fs::create_dir_all(out.join("x86_64")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("a.zip"), b"keep").unwrap();
        std::os::unix::fs::symlink(&outside, out.join("arm64")).unwrap();
        std::os::unix::fs::symlink(outside.join("a.zip"), out.join("x86_64/a.zip")).unwrap();

        assert_eq!(
            resolve(&out, "x86_64/new.zip").unwrap(),
            out.join("x86_64/new.zip")
        );
        assert_eq!(
            resolve(&out, "missing/dir/x.zip").unwrap(),
            out.join("missing/dir/x.zip")
        );
        let through_dir = resolve(&out, "arm64/a.zip").unwrap_err();
        assert!(
            through_dir.0.contains("`arm64` is a symlink"),
            "{through_dir}"
        );
        let at_end = resolve(&out, "x86_64/a.zip").unwrap_err();
        assert!(at_end.0.contains("`x86_64/a.zip` is a symlink"), "{at_end}");
        std::fs::write(out.join("file"), b"").unwrap();
        assert!(
            resolve(&out, "file/x.zip")
                .unwrap_err()
                .0
                .contains("not a directory")
        );
    }

    fn artifact(name: &str, arch: &str, path: &str, root: Option<&str>) -> ManifestArtifact {
        serde_json::from_value(serde_json::json!({
            "name": name, "package": "pkg", "bin": name, "kind": "function", "format": "zip",
            "arch": arch, "runtime": "provided.al2023", "target": "t", "path": path,
            "sha256": "", "code_sha256": "", "size_zipped": 0, "size_unzipped": 0,
            "layers": [], "workspace_root": root
        }))
        .unwrap()
    }

    #[test]
    fn a_stale_zip_takes_its_sbom_along_but_never_through_a_symlink() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("out");
        std::fs::create_dir_all(out.join("x86_64")).unwrap();
        std::fs::create_dir_all(out.join("arm64")).unwrap();
        for file in ["x86_64/old.zip", "x86_64/old.cdx.json", "arm64/old.zip"] {
            std::fs::write(out.join(file), b"x").unwrap();
        }
        let outside = root.path().join("outside.cdx.json");
        std::fs::write(&outside, b"keep").unwrap();
        std::os::unix::fs::symlink(&outside, out.join("arm64/old.cdx.json")).unwrap();
        let stale = [
            artifact("old", "x86_64", "x86_64/old.zip", None),
            artifact("old", "arm64", "arm64/old.zip", None),
        ];
        let refs: Vec<&ManifestArtifact> = stale.iter().collect();
        remove_stale(&out, &out.join("manifest.json"), &refs).unwrap();
        assert!(!out.join("x86_64/old.cdx.json").exists());
        assert!(!out.join("x86_64/old.zip").exists());
        assert!(!out.join("arm64/old.zip").exists());
        assert!(out.join("arm64/old.cdx.json").is_symlink());
        assert_eq!(std::fs::read(&outside).unwrap(), b"keep");
    }

    #[test]
    fn a_stale_image_takes_its_oci_layout_along_but_never_through_a_symlink() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("out");
        let outside = root.path().join("outside");
        for dir in ["x86_64/big", "x86_64/big.oci", "arm64/big"] {
            std::fs::create_dir_all(out.join(dir)).unwrap();
        }
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(out.join("x86_64/big/Dockerfile"), b"FROM scratch\n").unwrap();
        std::fs::write(out.join("x86_64/big.oci/oci-layout"), b"{}").unwrap();
        std::fs::write(out.join("arm64/big/Dockerfile"), b"FROM scratch\n").unwrap();
        std::fs::write(outside.join("oci-layout"), b"{}").unwrap();
        std::os::unix::fs::symlink(&outside, out.join("arm64/big.oci")).unwrap();
        let image = |arch: &str| {
            let mut entry = artifact("big", arch, &format!("{arch}/big"), None);
            entry.format = Format::Image;
            entry
        };
        let (x86, arm) = (image("x86_64"), image("arm64"));
        let cleaned = remove_stale(&out, &out.join("manifest.json"), &[&x86, &arm]).unwrap();
        let removed: Vec<PathBuf> = cleaned
            .iter()
            .filter_map(|c| match c {
                Cleaned::Removed(path) => Some(path.clone()),
                Cleaned::Refused(_) => None,
            })
            .collect();
        assert_eq!(
            removed,
            [
                out.join("x86_64/big.oci"),
                out.join("x86_64/big"),
                out.join("arm64/big")
            ]
        );
        // The symlinked layout is not followed: what it points at is still there.
        assert!(outside.join("oci-layout").is_file());
        assert!(out.join("arm64/big.oci").is_symlink());
    }

    #[test]
    fn only_this_workspaces_entries_of_covered_architectures_may_be_stale() {
        let out = tempfile::tempdir().unwrap();
        let entries = vec![
            artifact("a", "x86_64", "x86_64/a.zip", Some("/ws/one")),
            artifact("b", "arm64", "arm64/b.zip", Some("/ws/one")),
            artifact("c", "x86_64", "x86_64/c.zip", Some("/ws/two")),
            artifact("d", "x86_64", "x86_64/d.zip", None),
            artifact("e", "x86_64", "../e.zip", Some("/ws/one")),
            artifact("f", "x86_64", "x86_64/other-name.zip", Some("/ws/one")),
        ];
        let manifest = out.path().join("manifest.json");
        let covered: std::collections::BTreeSet<Arch> = [Arch::X86_64].into();
        let screened = screen(
            out.path(),
            &manifest,
            entries.clone(),
            Path::new("/ws/one"),
            Some(&covered),
        );
        let candidates: Vec<&str> = screened
            .candidates
            .iter()
            .map(|(p, _)| p.as_str())
            .collect();
        assert_eq!(candidates, ["x86_64/a.zip", "x86_64/d.zip"]);
        let trusted: Vec<&str> = screened.trusted.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(trusted, ["a", "b", "c", "d"]);
        assert_eq!(screened.warnings.len(), 2, "{:?}", screened.warnings);
        assert!(screened.warnings[0].contains("entry `e` (x86_64, path `../e.zip`)"));
        assert!(
            screened.warnings[1].contains("not elsewhere"),
            "{}",
            screened.warnings[1]
        );
        // Without --arch every architecture is covered.
        let all = screen(out.path(), &manifest, entries, Path::new("/ws/one"), None);
        assert_eq!(all.candidates.len(), 3);
    }
}
