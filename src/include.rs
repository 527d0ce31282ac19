//! Resolving `include` entries to files on disk.
//!
//! This is the one place that walks package directories: the planner receives the result as
//! plain facts (source, destination, size, exec bit) and stays free of I/O.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::metadata::IncludeSpec;

/// A file to copy into an artifact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IncludedFile {
    pub source: PathBuf,
    /// Path inside the artifact, `/`-separated, relative to its root.
    pub dest: String,
    pub size: u64,
    /// Whether any exec bit is set on disk; decides 0755 versus 0644 in the archive.
    pub executable: bool,
    /// The include entry that produced it, as written, for messages.
    pub spec: String,
}

/// Expands every include of one package. `manifest_path` is only used in messages.
pub fn resolve(
    package_dir: &Path,
    manifest_path: &Path,
    specs: &[IncludeSpec],
) -> Result<Vec<IncludedFile>> {
    let root = package_dir
        .canonicalize()
        .map_err(|e| Error::read(package_dir, &e))?;
    let mut by_dest: BTreeMap<String, IncludedFile> = BTreeMap::new();
    for spec in specs {
        let files = resolve_one(&root, manifest_path, spec)?;
        if files.is_empty() {
            return Err(Error::config(format!(
                "include \"{}\" in `{}` matched no files",
                spec.display(),
                manifest_path.display()
            ))
            .with_note(format!("paths and globs are relative to the package directory `{}`", root.display()))
            .with_help("fix the path or glob, or remove the entry; an include that matches nothing is treated as a mistake"));
        }
        for file in files {
            if let Some(other) = by_dest.get(&file.dest)
                && other.source != file.source
            {
                return Err(Error::config(format!(
                    "includes \"{}\" and \"{}\" in `{}` both write `{}`",
                    other.spec,
                    file.spec,
                    manifest_path.display(),
                    file.dest
                ))
                .with_help("give one of them another destination with `source:destination`"));
            }
            by_dest.insert(file.dest.clone(), file);
        }
    }
    Ok(by_dest.into_values().collect())
}

fn resolve_one(root: &Path, manifest_path: &Path, spec: &IncludeSpec) -> Result<Vec<IncludedFile>> {
    let (base, has_glob) = literal_base(&spec.pattern);
    let base_dir = root.join(&base);
    if !has_glob {
        let meta = match std::fs::symlink_metadata(&base_dir) {
            Ok(meta) => meta,
            Err(_) => return Ok(Vec::new()),
        };
        if meta.is_dir() {
            let dest_root = spec.dest.clone().unwrap_or_else(|| to_slash(&base));
            return walk(
                root,
                manifest_path,
                spec,
                &base_dir,
                |_| true,
                |rel_to_base| join_dest(&dest_root, rel_to_base),
            );
        }
        let dest = spec.dest.clone().unwrap_or_else(|| to_slash(&base));
        return Ok(vec![file_entry(
            root,
            manifest_path,
            spec,
            &base_dir,
            dest,
        )?]);
    }
    let glob = globset::GlobBuilder::new(&spec.pattern)
        .literal_separator(true)
        .build()
        .map_err(|err| {
            Error::config(format!(
                "include \"{}\" in `{}` is not a valid glob: {}",
                spec.display(),
                manifest_path.display(),
                err.kind()
            ))
        })?
        .compile_matcher();
    if !base_dir.is_dir() {
        return Ok(Vec::new());
    }
    walk(
        root,
        manifest_path,
        spec,
        &base_dir,
        |rel_to_root| glob.is_match(rel_to_root),
        |rel_to_base| match &spec.dest {
            Some(dest) => join_dest(dest, rel_to_base),
            None => join_dest(&to_slash(&base), rel_to_base),
        },
    )
}

/// Walks `dir`, keeping files whose path relative to the package matches `keep`.
fn walk(
    root: &Path,
    manifest_path: &Path,
    spec: &IncludeSpec,
    dir: &Path,
    keep: impl Fn(&str) -> bool,
    dest_for: impl Fn(&str) -> String,
) -> Result<Vec<IncludedFile>> {
    let mut files = Vec::new();
    let walker = walkdir::WalkDir::new(dir)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|entry| !is_skipped_dir(entry));
    for entry in walker {
        let entry = entry.map_err(|err| {
            Error::config(format!(
                "could not read include \"{}\" of `{}`: {err}",
                spec.display(),
                manifest_path.display()
            ))
        })?;
        if entry.file_type().is_dir() {
            continue;
        }
        let path = entry.path();
        let rel_to_root = to_slash(path.strip_prefix(root).unwrap_or(path));
        if !keep(&rel_to_root) {
            continue;
        }
        // A symlink to a directory is not followed: it could loop or leave the package.
        if entry.file_type().is_symlink() && path.is_dir() {
            continue;
        }
        let rel_to_base = to_slash(path.strip_prefix(dir).unwrap_or(path));
        files.push(file_entry(
            root,
            manifest_path,
            spec,
            path,
            dest_for(&rel_to_base),
        )?);
    }
    Ok(files)
}

/// Cargo target directories (tagged with CACHEDIR.TAG) and VCS metadata are never included.
fn is_skipped_dir(entry: &walkdir::DirEntry) -> bool {
    entry.file_type().is_dir()
        && (entry.file_name() == ".git" || entry.path().join("CACHEDIR.TAG").is_file())
}

fn file_entry(
    root: &Path,
    manifest_path: &Path,
    spec: &IncludeSpec,
    path: &Path,
    dest: String,
) -> Result<IncludedFile> {
    // Resolve symlinks and insist the real file lives inside the package: an include must not
    // smuggle files from elsewhere on the build machine into an artifact.
    let real = path.canonicalize().map_err(|err| {
        let broken_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
        if broken_link {
            let target = std::fs::read_link(path)
                .map(|t| t.display().to_string())
                .unwrap_or_default();
            let what = if err.kind() == std::io::ErrorKind::NotFound {
                "which does not exist"
            } else {
                "which cannot be followed"
            };
            Error::config(format!(
                "include \"{}\" in `{}` matches `{}`, a symlink to `{target}`, {what} ({err})",
                spec.display(),
                manifest_path.display(),
                path.display()
            ))
            .with_help(
                "fix or remove the broken symlink, or narrow the include so it does not match it",
            )
        } else {
            Error::read(path, &err)
        }
    })?;
    if !real.starts_with(root) {
        return Err(Error::config(format!(
            "include \"{}\" in `{}` reaches `{}`, outside the package directory, through a symlink",
            spec.display(),
            manifest_path.display(),
            real.display()
        ))
        .with_help("copy the file into the package, or include it from the package that owns it"));
    }
    let meta = std::fs::metadata(&real).map_err(|e| Error::read(&real, &e))?;
    if !meta.is_file() {
        return Err(Error::config(format!(
            "include \"{}\" in `{}` matches `{}`, which is not a regular file",
            spec.display(),
            manifest_path.display(),
            path.display()
        ))
        .with_help("include regular files or directories of them"));
    }
    Ok(IncludedFile {
        source: real,
        dest,
        size: meta.len(),
        executable: meta.permissions().mode() & 0o111 != 0,
        spec: spec.display(),
    })
}

/// The leading components of a pattern that contain no glob characters, and whether any did.
fn literal_base(pattern: &str) -> (PathBuf, bool) {
    let mut base = PathBuf::new();
    for part in pattern.split('/') {
        if part.contains(['*', '?', '[', '{']) {
            return (base, true);
        }
        if !part.is_empty() && part != "." {
            base.push(part);
        }
    }
    (base, false)
}

fn join_dest(dir: &str, rel: &str) -> String {
    let dir = dir.trim_end_matches('/');
    if dir.is_empty() {
        rel.to_string()
    } else if rel.is_empty() {
        dir.to_string()
    } else {
        format!("{dir}/{rel}")
    }
}

fn to_slash(path: &Path) -> String {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(part.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> IncludeSpec {
        match text.split_once(':') {
            Some((p, d)) => IncludeSpec {
                pattern: p.into(),
                dest: Some(d.into()),
            },
            None => IncludeSpec {
                pattern: text.into(),
                dest: None,
            },
        }
    }

    fn package() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("assets/img")).unwrap();
        std::fs::create_dir_all(root.join("config")).unwrap();
        std::fs::write(root.join("assets/a.txt"), "a").unwrap();
        std::fs::write(root.join("assets/img/b.png"), "bb").unwrap();
        std::fs::write(root.join("config/app.toml"), "x = 1").unwrap();
        std::fs::write(root.join("run.sh"), "#!/bin/sh").unwrap();
        std::fs::set_permissions(root.join("run.sh"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        dir
    }

    fn dests(files: &[IncludedFile]) -> Vec<&str> {
        files.iter().map(|f| f.dest.as_str()).collect()
    }

    #[test]
    fn globs_directories_files_and_renames() {
        let dir = package();
        let manifest = dir.path().join("Cargo.toml");
        let files = resolve(
            dir.path(),
            &manifest,
            &[
                spec("assets/**"),
                spec("config/app.toml:etc/app.toml"),
                spec("run.sh"),
            ],
        )
        .unwrap();
        assert_eq!(
            dests(&files),
            ["assets/a.txt", "assets/img/b.png", "etc/app.toml", "run.sh"]
        );
        assert!(files[3].executable);
        assert!(!files[0].executable);
        assert_eq!(files[1].size, 2);

        let files = resolve(dir.path(), &manifest, &[spec("assets:static")]).unwrap();
        assert_eq!(dests(&files), ["static/a.txt", "static/img/b.png"]);
        let files = resolve(dir.path(), &manifest, &[spec("assets/*.txt:txt")]).unwrap();
        assert_eq!(dests(&files), ["txt/a.txt"]);
    }

    #[test]
    fn matching_nothing_is_an_error() {
        let dir = package();
        let err = resolve(
            dir.path(),
            &dir.path().join("Cargo.toml"),
            &[spec("missing/**")],
        )
        .unwrap_err();
        assert!(err.to_string().contains("include \"missing/**\""), "{err}");
        assert!(err.to_string().contains("matched no files"), "{err}");
    }

    #[test]
    fn symlink_out_of_the_package_is_refused() {
        let dir = package();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret"),
            dir.path().join("assets/link"),
        )
        .unwrap();
        let err = resolve(
            dir.path(),
            &dir.path().join("Cargo.toml"),
            &[spec("assets/**")],
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("outside the package directory"),
            "{err}"
        );
    }

    #[test]
    fn two_includes_writing_one_path_collide() {
        let dir = package();
        let err = resolve(
            dir.path(),
            &dir.path().join("Cargo.toml"),
            &[spec("run.sh:x"), spec("config/app.toml:x")],
        )
        .unwrap_err();
        assert!(err.to_string().contains("both write `x`"), "{err}");
    }
}
