//! verify's ZIP reader: the bytes are written to a file and extracted into `<root>/dest`, where
//! `<root>` is a fresh temporary directory. Whatever `extract_zip` returns, afterwards:
//! - `<root>` holds nothing but `dest` (nothing was written outside it, not even on error);
//! - every symlink under `dest` leads, as far as it resolves on disk, to a place inside `dest`.
//!
//! Inputs over 1 MB are skipped to keep iterations fast.
#![no_main]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use cargo_lambda_pack::extract_zip;
use libfuzzer_sys::fuzz_target;

const MAX_INPUT: usize = 1024 * 1024;

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INPUT {
        return;
    }
    let work = tempfile::Builder::new()
        .prefix("fuzz-zip-")
        .tempdir_in(scratch())
        .expect("temp dir");
    let zip = work.path().join("input.zip");
    fs::write(&zip, data).expect("write input");
    let root = work.path().join("root");
    fs::create_dir(&root).expect("create root");
    let dest = root.join("dest");

    let result = extract_zip(&zip, &dest);

    let mut outside: Vec<String> = fs::read_dir(&root)
        .expect("read root")
        .map(|entry| {
            entry
                .expect("root entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name != "dest")
        .collect();
    outside.sort();
    let escaped = escaping_links(&dest);
    make_removable(work.path());
    assert!(
        outside.is_empty(),
        "extract_zip wrote outside its destination: {outside:?} (result: {result:?})"
    );
    assert!(
        escaped.is_empty(),
        "extract_zip left symlinks that lead outside its destination: {escaped:?} (result: {result:?})"
    );
    if let Ok(stats) = result {
        assert!(dest.is_dir(), "success without a destination directory");
        let _ = stats;
    }
});

/// Temporary files go to /dev/shm when it is there: thousands of extractions a second.
fn scratch() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// Symlinks under `dest` whose target, resolved on disk one component at a time (following
/// every symlink on the way, as the kernel does), reaches a directory outside `dest`. A dangling
/// link counts by the deepest part of its target that exists.
fn escaping_links(dest: &Path) -> Vec<(PathBuf, PathBuf)> {
    let Ok(dest_real) = fs::canonicalize(dest) else {
        return Vec::new();
    };
    let mut escaped = Vec::new();
    let mut stack = vec![dest.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                stack.push(path);
            } else if meta.file_type().is_symlink() {
                let Ok(target) = fs::read_link(&path) else {
                    continue;
                };
                let Some(mut here) = path.parent().and_then(|p| fs::canonicalize(p).ok()) else {
                    continue;
                };
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
                    escaped.push((path.strip_prefix(dest).unwrap_or(&path).to_path_buf(), here));
                }
            }
        }
    }
    escaped
}

/// Archives may store mode 000 folders; give every folder its bits back so the temporary
/// directory can be removed (needed when not running as root). Links are never followed.
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
