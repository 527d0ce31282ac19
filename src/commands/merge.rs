//! `cargo lambda-pack merge <OUT-DIR|MANIFEST>... --out-dir DIR`: joins the outputs of several
//! runs (the shards of `--shard K/N`) into one output directory and one manifest, as if one run
//! had packed them.
//!
//! Every input manifest is untrusted: each of its paths goes through `manifest_paths::resolve`
//! and must be where a pack writes it, every artifact is copied and its copy hashed against its
//! entry, and the same artifact (name, architecture, workspace) from several inputs is kept once
//! only when the hashes agree.
//!
//! The target must be this tool's (`out_dir::claim_output`: new, empty, or an earlier output of
//! this tool) and may neither be nor contain an input: an input inside it is refused, never
//! copied over itself. Merge writes only the files it produces: each artifact is copied to a
//! temporary name beside its place in the target (never through a link,
//! `files::create_dir_within`) and checked; only when all are, they are renamed into place and the
//! manifest follows (temporary file and rename). The artifacts an earlier merge's manifest listed
//! and this one does not are removed through the pack's confined clean-up
//! (`manifest_paths::remove_stale`); nothing else in the target is touched.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use crate::cli::{MergeArgs, MessageFormat};
use crate::emit::Pending;
use crate::error::{Error, Result};
use crate::files::sha256_hex;
use crate::manifest::{Format, GENERATOR, MANIFEST_FILE, Manifest, ManifestArtifact, ReadError};
use crate::manifest_paths::{self, Cleaned, Refused};
use crate::output::{Shell, stdout_error};
use crate::target::Arch;

/// One run's output: its directory and its manifest.
struct Input {
    dir: PathBuf,
    manifest_path: PathBuf,
    manifest: Manifest,
}

pub fn run(args: &MergeArgs, shell: &Shell) -> Result<()> {
    let out_dir = &args.out_dir;
    if out_dir.exists() && !out_dir.is_dir() {
        return Err(Error::config(format!(
            "--out-dir `{}` is not a directory",
            out_dir.display()
        ))
        .with_help(
            "pass a new or empty directory, or an earlier output directory of cargo-lambda-pack",
        ));
    }
    let input_dirs: Vec<PathBuf> = args.inputs.iter().map(|p| input_dir(p)).collect();
    let protected: Vec<(&Path, &str)> = input_dirs
        .iter()
        .map(|dir| (dir.as_path(), "the input"))
        .collect();
    let created = !out_dir.exists();
    // The target is written as a pack writes its output directory: once it is known to be this
    // tool's, under its lock, so a pack or another merge into it waits (and `verify`/`deploy`
    // never read it half-written).
    let target_lock = crate::emit::claim_and_lock(out_dir, "--out-dir", &protected, || {
        shell.status(
            "Blocking",
            format!("waiting for file lock on {}", out_dir.display()),
        )
    })?;
    let merged = merge_locked(args, shell, &input_dirs);
    if merged.is_err() && created {
        // Taking the lock created the directory; a failed merge leaves nothing behind. Only
        // empty directories are removed: whatever else appeared meanwhile stays.
        for arch in Arch::ALL {
            let _ = std::fs::remove_dir(out_dir.join(arch.lambda_name()));
        }
        let _ = std::fs::remove_file(out_dir.join(crate::emit::LOCK_FILE));
        let _ = std::fs::remove_dir(out_dir);
    }
    drop(target_lock);
    merged
}

/// The merge, once the target's lock is taken.
fn merge_locked(args: &MergeArgs, shell: &Shell, input_dirs: &[PathBuf]) -> Result<()> {
    let out_dir = &args.out_dir;
    // Each input is read under its shared lock: a shard still packing into it is waited for,
    // never copied half-written.
    let mut _input_locks = Vec::new();
    for dir in input_dirs {
        _input_locks.push(crate::emit::lock_out_dir_shared(dir, || {
            shell.status(
                "Blocking",
                format!("waiting for a pack to finish in {}", dir.display()),
            )
        })?);
    }
    let inputs = args
        .inputs
        .iter()
        .map(|path| read_input(path))
        .collect::<Result<Vec<Input>>>()?;
    let schema_version = common_schema(&inputs)?;
    let chosen = choose(&inputs)?;
    crate::emit::remove_leftovers(out_dir)?;
    let manifest_path = out_dir.join(MANIFEST_FILE);
    // The claim established that a manifest here is this tool's.
    let previous = Manifest::read(&manifest_path).ok();
    let mut pending = Vec::new();
    for (input, artifact) in &chosen {
        pending.extend(stage(&inputs[*input], artifact, out_dir)?);
    }
    let mut artifacts: Vec<ManifestArtifact> = chosen.into_iter().map(|(_, a)| a).collect();
    artifacts.sort_by_cached_key(|a| (a.arch, a.name.clone(), a.workspace_root.clone()));
    let manifest = Manifest {
        schema_version,
        generator: Some(GENERATOR.to_string()),
        artifacts,
    };
    let json = manifest.to_json();
    let cleaned = write_merged(out_dir, previous, &manifest, &json, pending)?;
    for cleaned in cleaned {
        match cleaned {
            Cleaned::Removed(path) => shell.status(
                "Removed",
                format!("{} (an earlier merge's, not in this one)", path.display()),
            ),
            Cleaned::Refused(warning) => shell.warn(warning),
        }
    }
    if shell_format(args) == MessageFormat::Json {
        shell.print_data(json.trim_end()).map_err(stdout_error)?;
    }
    shell.status(
        "Merged",
        format!(
            "{} artifact(s) from {} run(s); manifest: {}",
            manifest.artifacts.len(),
            inputs.len(),
            manifest_path.display()
        ),
    );
    Ok(())
}

/// Renames the staged artifacts into place, writes the manifest, then removes what an earlier
/// merge's manifest (`previous`) listed and this one does not. While the renames happen the
/// manifest lists only entries whose files they do not touch, so a kill leaves every listed file
/// matching its hash, as in a pack's transaction.
fn write_merged(
    out_dir: &Path,
    previous: Option<Manifest>,
    manifest: &Manifest,
    json: &str,
    pending: Vec<Pending>,
) -> Result<Vec<Cleaned>> {
    let manifest_path = out_dir.join(MANIFEST_FILE);
    let previous = previous.map(|m| m.artifacts).unwrap_or_default();
    let written: HashSet<(Arch, &str)> = manifest
        .artifacts
        .iter()
        .map(|a| (a.arch, a.name.as_str()))
        .collect();
    let written_paths: HashSet<&str> = manifest.artifacts.iter().map(|a| a.path.as_str()).collect();
    // An earlier entry of an artifact this merge writes again (even at another path) is not
    // removed: its SBOM's name is the new one's.
    let stale: Vec<&ManifestArtifact> = previous
        .iter()
        .filter(|a| !written_paths.contains(a.path.as_str()))
        .filter(|a| !written.contains(&(a.arch, a.name.as_str())))
        .collect();
    let replaced: BTreeSet<&Path> = pending.iter().map(Pending::dest).collect();
    if !replaced.is_empty() && manifest_path.exists() {
        let touches = |a: &ManifestArtifact| {
            std::iter::once(&a.path)
                .chain(a.sbom.as_ref())
                .chain(a.oci_layout.as_ref())
                .any(|p| replaced.contains(out_dir.join(p).as_path()))
        };
        let untouched = Manifest {
            schema_version: manifest.schema_version,
            generator: manifest.generator.clone(),
            artifacts: previous.iter().filter(|a| !touches(a)).cloned().collect(),
        };
        crate::files::write_atomic(&manifest_path, untouched.to_json().as_bytes())?;
    }
    crate::emit::commit(pending)?;
    crate::files::write_atomic(&manifest_path, json.as_bytes())?;
    manifest_paths::remove_stale(out_dir, &manifest_path, &stale)
}

pub fn shell_format(args: &MergeArgs) -> MessageFormat {
    args.message_format.unwrap_or(MessageFormat::Human)
}

/// The directory of an input: the output directory itself, or the one holding the manifest.
fn input_dir(path: &Path) -> PathBuf {
    if path.is_dir() {
        return path.to_path_buf();
    }
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// An output directory, or a manifest file whose directory holds its artifacts.
fn read_input(path: &Path) -> Result<Input> {
    let (dir, manifest_path) = if path.is_dir() {
        (path.to_path_buf(), path.join(MANIFEST_FILE))
    } else {
        let dir = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        (dir, path.to_path_buf())
    };
    let manifest = Manifest::read(&manifest_path).map_err(|err| {
        let why = match err {
            ReadError::Missing => "it does not exist".to_string(),
            ReadError::Io(err) => err.to_string(),
            ReadError::Invalid(err) => format!("it is not a lambda-pack manifest: {err}"),
        };
        Error::config(format!("cannot read `{}`: {why}", manifest_path.display())).with_help(
            "pass the output directories of `cargo lambda-pack` runs (or their manifest.json)",
        )
    })?;
    Ok(Input {
        dir,
        manifest_path,
        manifest,
    })
}

/// The inputs' schema version, when they all agree on one this version can write.
fn common_schema(inputs: &[Input]) -> Result<u32> {
    let first = &inputs[0];
    for other in &inputs[1..] {
        if other.manifest.schema_version != first.manifest.schema_version {
            return Err(Error::config(format!(
                "conflicting manifest schemas: `{}` has schema_version {}, `{}` has schema_version {}",
                first.manifest_path.display(),
                first.manifest.schema_version,
                other.manifest_path.display(),
                other.manifest.schema_version
            ))
            .with_help("merge the outputs of runs of the same cargo-lambda-pack version"));
        }
    }
    let version = first.manifest.schema_version;
    if version != crate::manifest::SCHEMA_VERSION {
        return Err(Error::config(format!(
            "`{}` has schema_version {version}; this cargo-lambda-pack writes schema_version {}",
            first.manifest_path.display(),
            crate::manifest::SCHEMA_VERSION
        ))
        .with_help("merge with the cargo-lambda-pack version that packed the inputs"));
    }
    Ok(version)
}

/// Each artifact once, from the first input that has it; an artifact that two inputs hold with
/// different hashes is refused.
fn choose(inputs: &[Input]) -> Result<Vec<(usize, ManifestArtifact)>> {
    type Key = (Arch, String, Option<String>);
    let mut chosen: BTreeMap<Key, (usize, ManifestArtifact)> = BTreeMap::new();
    let mut by_path: BTreeMap<String, usize> = BTreeMap::new();
    for (index, input) in inputs.iter().enumerate() {
        for artifact in &input.manifest.artifacts {
            let key = (
                artifact.arch,
                artifact.name.clone(),
                artifact.workspace_root.clone(),
            );
            if let Some((first, kept)) = chosen.get(&key) {
                if kept.sha256 != artifact.sha256 || kept.path != artifact.path {
                    return Err(conflict(&inputs[*first], kept, input, artifact));
                }
                continue;
            }
            if let Some(first) = by_path.get(&artifact.path) {
                let kept = &inputs[*first]
                    .manifest
                    .artifacts
                    .iter()
                    .find(|a| a.path == artifact.path)
                    .expect("recorded from this manifest");
                return Err(conflict(&inputs[*first], kept, input, artifact));
            }
            by_path.insert(artifact.path.clone(), index);
            chosen.insert(key, (index, artifact.clone()));
        }
    }
    Ok(chosen.into_values().collect())
}

fn conflict(
    first: &Input,
    kept: &ManifestArtifact,
    other: &Input,
    artifact: &ManifestArtifact,
) -> Error {
    Error::config(format!(
        "artifact `{}` ({}) differs between runs: `{}` has sha256 {} (path `{}`), `{}` has sha256 {} (path `{}`)",
        artifact.name,
        artifact.arch,
        first.manifest_path.display(),
        kept.sha256,
        kept.path,
        other.manifest_path.display(),
        artifact.sha256,
        artifact.path
    ))
    .with_help("pack every shard from the same commit with the same flags and toolchain (the builds are reproducible), then merge again; nothing was written")
}

/// Where a pack writes each path field of `artifact`: `(field, value, expected)` for the fields
/// that name files (the Dockerfile lies inside the context and is carried with it).
fn path_fields(artifact: &ManifestArtifact) -> Vec<(&'static str, &str, String)> {
    let base = format!("{}/{}", artifact.arch, artifact.name);
    let mut fields = vec![("path", artifact.path.as_str(), artifact.path.clone())];
    if let Some(dockerfile) = &artifact.dockerfile {
        fields.push((
            "dockerfile",
            dockerfile,
            format!("{}/Dockerfile", artifact.path),
        ));
    }
    if let Some(layout) = &artifact.oci_layout {
        fields.push(("oci_layout", layout, format!("{base}.oci")));
    }
    if let Some(sbom) = &artifact.sbom {
        fields.push(("sbom", sbom, format!("{base}.cdx.json")));
    }
    fields
}

/// Copies one artifact (and its image layout and SBOM) from its input to temporary names beside
/// their places in `out_dir`, and checks the copies against the entry. Every path is checked
/// before the first copy, so a refused entry writes nothing; dropping the result deletes the
/// copies.
fn stage(input: &Input, artifact: &ManifestArtifact, out_dir: &Path) -> Result<Vec<Pending>> {
    let refused = |field: &str, value: &str, why: Refused| {
        Error::config(format!(
            "cannot merge {}",
            manifest_paths::bad_field(&input.manifest_path, artifact, field, value, &why)
        ))
        .with_help("merge only the output directories of cargo-lambda-pack runs, unchanged; nothing was written")
    };
    manifest_paths::has_our_shape(artifact).map_err(|why| refused("path", &artifact.path, why))?;
    let mut copies = Vec::new();
    for (field, value, expected) in path_fields(artifact) {
        if value != expected {
            let why = Refused(format!(
                "cargo-lambda-pack writes the {field} of {} `{}` ({}) at `{expected}`",
                artifact.format, artifact.name, artifact.arch
            ));
            return Err(refused(field, value, why));
        }
        let from =
            manifest_paths::resolve(&input.dir, value).map_err(|why| refused(field, value, why))?;
        if field != "dockerfile" {
            copies.push((value, from));
        }
    }
    let mut pending = Vec::new();
    for (relative, from) in copies {
        let dest = out_dir.join(relative);
        let parent = dest.parent().unwrap_or(out_dir);
        crate::files::create_dir_within(out_dir, parent)?;
        let staged = copy_beside(&from, &dest).map_err(|err| {
            Error::config(format!(
                "cannot copy `{relative}` of `{}` ({}): {err}",
                input.manifest_path.display(),
                artifact.name
            ))
            .with_help(
                "the output directory is incomplete: pack that shard again; nothing was written",
            )
        })?;
        pending.push(staged);
    }
    let staged_at = |relative: &str| {
        pending.iter().find_map(|p| match p {
            Pending::File { temp, dest } if *dest == out_dir.join(relative) => {
                Some(temp.path().to_path_buf())
            }
            Pending::Dir { temp, dest } if *dest == out_dir.join(relative) => {
                Some(temp.path().to_path_buf())
            }
            _ => None,
        })
    };
    if let (Some(layout), Some(digest)) = (&artifact.oci_layout, &artifact.image_digest) {
        let staged = staged_at(layout).expect("the layout was staged");
        check_image_manifest(input, artifact, &staged, layout, digest)?;
    }
    if artifact.format == Format::Zip {
        let copied = staged_at(&artifact.path).expect("the artifact was staged");
        let found = sha256_hex(&copied).map_err(|e| Error::write(&copied, &e))?;
        if found != artifact.sha256 {
            return Err(Error::config(format!(
                "`{}` of `{}` has sha256 {found}, but its manifest entry `{}` says {}",
                artifact.path,
                input.manifest_path.display(),
                artifact.name,
                artifact.sha256
            ))
            .with_help(
                "the file changed after it was packed: pack that shard again; nothing was written",
            ));
        }
    }
    Ok(pending)
}

/// An image's context has no single file to hash; its OCI layout does: the image manifest blob
/// named by `image_digest` must be there (in the staged copy, `staged`) with that digest.
fn check_image_manifest(
    input: &Input,
    artifact: &ManifestArtifact,
    staged: &Path,
    layout: &str,
    digest: &str,
) -> Result<()> {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    let blob = manifest_paths::resolve(staged, &format!("blobs/sha256/{hex}")).map_err(|why| {
        Error::config(format!(
            "cannot merge {}",
            manifest_paths::bad_field(&input.manifest_path, artifact, "image_digest", digest, &why)
        ))
        .with_help("merge only the output directories of cargo-lambda-pack runs, unchanged; nothing was written")
    })?;
    let found = sha256_hex(&blob).ok();
    if found.as_deref() != Some(hex) {
        return Err(Error::config(format!(
            "image `{}` of `{}`: its OCI layout `{layout}` does not hold the image manifest {digest} (found {})",
            artifact.name,
            input.manifest_path.display(),
            found.map_or_else(|| "no such blob".to_string(), |f| format!("sha256:{f}"))
        ))
        .with_help("the image changed after it was packed: pack that shard again; nothing was written"));
    }
    Ok(())
}

/// Copies a regular file or a directory tree at `from` to a temporary name beside `dest`
/// (`.<name>.*.tmp`, the shape a later run's clean-up removes if this one is killed), ready to be
/// renamed over it.
fn copy_beside(from: &Path, dest: &Path) -> std::io::Result<Pending> {
    let parent = dest.parent().unwrap_or(Path::new("."));
    let name = dest
        .file_name()
        .map_or_else(|| "artifact".into(), |n| n.to_string_lossy().into_owned());
    let name = name.strip_suffix(".zip").unwrap_or(&name);
    let prefix = format!(".{name}.");
    let meta = std::fs::symlink_metadata(from)?;
    if meta.is_file() {
        let temp = tempfile::Builder::new()
            .prefix(&prefix)
            .suffix(".tmp")
            .permissions(crate::files::created_file_mode())
            .tempfile_in(parent)?;
        std::io::copy(&mut std::fs::File::open(from)?, &mut temp.as_file())?;
        temp.as_file().sync_all()?;
        return Ok(Pending::File {
            temp,
            dest: dest.to_path_buf(),
        });
    }
    if !meta.is_dir() {
        return Err(std::io::Error::other(format!(
            "`{}` is neither a regular file nor a directory",
            from.display()
        )));
    }
    let temp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        .tempdir_in(parent)?;
    copy_contents(from, temp.path())?;
    std::fs::set_permissions(temp.path(), meta.permissions())?;
    Ok(Pending::Dir {
        temp,
        dest: dest.to_path_buf(),
    })
}

/// Copies what the directory `from` holds into the existing directory `to`: regular files and
/// directories only; a symlink anywhere is refused, since it could lead out of the input.
fn copy_contents(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        let meta = std::fs::symlink_metadata(&source)?;
        if meta.is_file() {
            std::fs::copy(&source, &target)?;
        } else if meta.is_dir() {
            std::fs::create_dir(&target)?;
            copy_contents(&source, &target)?;
            std::fs::set_permissions(&target, meta.permissions())?;
        } else {
            return Err(std::io::Error::other(format!(
                "`{}` is neither a regular file nor a directory",
                source.display()
            )));
        }
    }
    Ok(())
}
