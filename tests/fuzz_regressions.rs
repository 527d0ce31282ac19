//! Inputs that broke a parser, each kept as the exact bytes that did it (inline or under
//! `tests/fuzz-regressions/`). `scripts/fuzz.sh` runs the fuzz targets these came from.

use std::fs;
use std::path::{Component, Path, PathBuf};

use cargo_lambda_pack::extract_zip;

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
