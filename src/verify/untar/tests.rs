//! Layers applied over each other: whiteouts, links resolved inside the image, and the entries
//! an image may not hold, each built as a real tar+gzip blob.

use super::*;

#[test]
fn entry_names_stay_in_the_root() {
    assert_eq!(entry_path(b"./a/b").unwrap(), Some(PathBuf::from("a/b")));
    assert_eq!(entry_path(b"/etc/x").unwrap(), Some(PathBuf::from("etc/x")));
    assert_eq!(entry_path(b"./").unwrap(), None);
    assert!(entry_path(b"a/../../x").is_err());
}

#[test]
fn links_resolve_inside_the_root_never_on_the_host() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    fs::create_dir_all(r.join("usr/bin")).unwrap();
    std::os::unix::fs::symlink("/usr/bin", r.join("bin")).unwrap();
    std::os::unix::fs::symlink("../../..", r.join("usr/bin/up")).unwrap();
    std::os::unix::fs::symlink("/conf", r.join("etc")).unwrap();
    let resolve = |p: &str| resolve_in_root(r, Path::new(p), false).unwrap();
    assert_eq!(resolve("bin/sh"), PathBuf::from("usr/bin/sh"));
    // `..` stops at the image's root, and `/etc` is the image's, not the host's.
    assert_eq!(resolve("bin/up/x"), PathBuf::from("x"));
    assert_eq!(resolve("etc/passwd"), PathBuf::from("conf/passwd"));
    std::os::unix::fs::symlink("loop", r.join("loop")).unwrap();
    assert!(resolve_in_root(r, Path::new("loop/x"), false).is_err());
    // Creating parents through an absolute link lands inside the root.
    let made = resolve_in_root(r, Path::new("etc/app"), true).unwrap();
    assert_eq!(made, PathBuf::from("conf/app"));
    assert!(r.join("conf/app").is_dir());
    assert!(
        fs::symlink_metadata(r.join("etc"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

/// A layer blob of `entries` (path, kind) in `dir`, with its digest and diff id.
struct Built {
    blob: PathBuf,
    digest: String,
    diff_id: String,
}

enum Item<'a> {
    Dir,
    File(&'a [u8]),
    Link(&'a str),
    Hard(&'a str),
    Device,
    /// A regular file header that claims `size` bytes and holds none.
    Claims(u64),
}

fn build(dir: &Path, name: &str, entries: &[(&str, Item<'_>)]) -> Built {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, item) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o755);
        // Names are written raw: the builder itself refuses `..`, which an attacker's would not.
        let raw = path.as_bytes();
        header.as_old_mut().name[..raw.len()].copy_from_slice(raw);
        let data: &[u8] = match item {
            Item::Dir => {
                header.set_entry_type(tar::EntryType::Directory);
                &[]
            }
            Item::File(data) => {
                header.set_entry_type(tar::EntryType::Regular);
                data
            }
            Item::Link(target) | Item::Hard(target) => {
                header.set_entry_type(if matches!(item, Item::Link(_)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                });
                header.set_link_name(target).unwrap();
                &[]
            }
            Item::Device => {
                header.set_entry_type(tar::EntryType::Char);
                &[]
            }
            Item::Claims(size) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(*size);
                header.set_cksum();
                tar.append(&header, &[][..]).unwrap();
                continue;
            }
        };
        header.set_size(data.len() as u64);
        header.set_cksum();
        tar.append(&header, data).unwrap();
    }
    let tar_bytes = tar.into_inner().unwrap();
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gzip, &tar_bytes).unwrap();
    let blob_bytes = gzip.finish().unwrap();
    let blob = dir.join(name);
    fs::write(&blob, &blob_bytes).unwrap();
    let digest = |bytes: &[u8]| {
        let mut hasher = Sha256::new();
        hasher.update(bytes);
        hex_digest(hasher)
    };
    Built {
        blob,
        digest: digest(&blob_bytes),
        diff_id: digest(&tar_bytes),
    }
}

fn apply(root: &Path, built: &Built, unpacked: &mut Unpacked) -> Result<(), VerifyError> {
    let layer = LayerBlob {
        blob: &built.blob,
        media_type: "application/vnd.oci.image.layer.v1.tar+gzip",
        digest: &built.digest,
        diff_id: &built.diff_id,
    };
    apply_layer(root, &layer, unpacked)
}

#[test]
fn whiteouts_remove_what_lower_layers_hold() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    fs::create_dir(&root).unwrap();
    let lower = build(
        work.path(),
        "lower",
        &[
            ("a/", Item::Dir),
            ("a/gone", Item::File(b"1")),
            ("a/kept", Item::File(b"2")),
            ("b/", Item::Dir),
            ("b/old", Item::File(b"3")),
            ("abs", Item::Link("/a/kept")),
        ],
    );
    let upper = build(
        work.path(),
        "upper",
        &[
            ("a/.wh.gone", Item::File(b"")),
            ("b/new", Item::File(b"4")),
            ("b/.wh..wh..opq", Item::File(b"")),
            ("c/hard", Item::Hard("abs")),
        ],
    );
    let mut unpacked = Unpacked::default();
    apply(&root, &lower, &mut unpacked).unwrap();
    apply(&root, &upper, &mut unpacked).unwrap();
    unpacked.finish(&root).unwrap();
    assert!(!root.join("a/gone").exists());
    assert_eq!(fs::read(root.join("a/kept")).unwrap(), b"2");
    // The opaque directory keeps only what its own layer put there, whatever the order.
    let mut b: Vec<_> = fs::read_dir(root.join("b"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    b.sort();
    assert_eq!(b, ["new"]);
    // A hard link through an absolute symlink finds the image's file, not the host's.
    assert_eq!(fs::read(root.join("c/hard")).unwrap(), b"2");
    assert!(!root.join("a/.wh.gone").exists() && !root.join("b/.wh..wh..opq").exists());
}

#[test]
fn writing_through_an_absolute_symlink_stays_in_the_root() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    let outside = work.path().join("outside");
    fs::create_dir_all(&root).unwrap();
    fs::create_dir_all(&outside).unwrap();
    let evil = build(
        work.path(),
        "evil",
        &[
            ("escape", Item::Link(outside.to_str().unwrap())),
            ("escape/planted", Item::File(b"x")),
        ],
    );
    apply(&root, &evil, &mut Unpacked::default()).unwrap();
    assert!(!outside.join("planted").exists(), "nothing lands outside");
    let inside = root
        .join(outside.strip_prefix("/").unwrap())
        .join("planted");
    assert_eq!(fs::read(inside).unwrap(), b"x");
}

#[test]
fn escapes_devices_absurd_sizes_and_wrong_digests_are_refused() {
    let work = tempfile::tempdir().unwrap();
    type Case<'a> = (&'a str, Vec<(&'a str, Item<'a>)>, &'a str);
    let cases: [Case<'_>; 4] = [
        (
            "dotdot",
            vec![("a/../../x", Item::File(b"x"))],
            "climbs out of the root",
        ),
        (
            "device",
            vec![("dev/null", Item::Device)],
            "is a device node",
        ),
        (
            "hard",
            vec![("h", Item::Hard("/etc/passwd"))],
            "not a file of the image",
        ),
        (
            "huge",
            vec![("big", Item::Claims(MAX_IMAGE_BYTES + 1))],
            "over the",
        ),
    ];
    for (name, entries, expected) in cases {
        let root = work.path().join(format!("root-{name}"));
        fs::create_dir(&root).unwrap();
        let built = build(work.path(), name, &entries);
        let error = apply(&root, &built, &mut Unpacked::default()).unwrap_err();
        assert!(error.to_string().contains(expected), "{name}: {error}");
    }
    // A blob whose bytes are not the digest the manifest names.
    let root = work.path().join("root-digest");
    fs::create_dir(&root).unwrap();
    let mut built = build(work.path(), "digest", &[("f", Item::File(b"x"))]);
    built.digest = format!("sha256:{}", "0".repeat(64));
    let error = apply(&root, &built, &mut Unpacked::default()).unwrap_err();
    assert!(error.to_string().contains("not the manifest's"), "{error}");
}
