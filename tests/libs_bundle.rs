//! Gathering a function's shared libraries from the build host, end to end: the `sqlite-fn`
//! fixture is built with real cargo and the host linker, its binaries are read with the inspector,
//! [`bundle`] finds what the runtime lacks on the host, and the dynamic loader itself
//! (`ld.so --list`) confirms that a task directory plus `/opt/lib` holding only the bundled files
//! resolves every library, with the bundled ones taken from `/opt/lib`.
//!
//! Needs Debian's `libsqlite3-dev` (to link `-lsqlite3`) and `libxml2` (which brings ICU and
//! liblzma).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use cargo_lambda_pack::{Arch, Runtime};
use cargo_lambda_pack::{BinaryFacts, inspect_file};
use cargo_lambda_pack::{BundledLibrary, SearchPath, bundle};

const TRIPLE: &str = "x86_64-unknown-linux-gnu";
const LOADER: &str = "/lib64/ld-linux-x86-64.so.2";

/// The fixture's two binaries, built once for all tests in this file.
struct Built {
    _fixture: common::Fixture,
    sqlite_fn: PathBuf,
    xml_fn: PathBuf,
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let fixture = common::Fixture::copy("sqlite-fn");
        let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("libs-bundle-sqlite-fn");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let linker_var = format!(
            "CARGO_TARGET_{}_LINKER",
            TRIPLE.to_uppercase().replace('-', "_")
        );
        let output = Command::new(cargo)
            .args(["build", "--release", "--locked", "--offline", "--target", TRIPLE])
            .current_dir(fixture.path())
            .env("CARGO_TARGET_DIR", &target_dir)
            .env_remove(linker_var)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_BUILD_TARGET")
            .output()
            .expect("run cargo");
        assert!(
            output.status.success(),
            "building fixtures/sqlite-fn failed (it needs Debian's libsqlite3-dev and libxml2):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let release = target_dir.join(TRIPLE).join("release");
        Built {
            _fixture: fixture,
            sqlite_fn: release.join("sqlite-fn"),
            xml_fn: release.join("xml-fn"),
        }
    })
}

fn bundle_for(binary: &Path) -> (BinaryFacts, Vec<BundledLibrary>) {
    let facts = inspect_file(binary).expect("inspect the built binary");
    let search = SearchPath::host(Arch::X86_64, &[]);
    let libs = bundle(
        &[("bootstrap".to_string(), &facts)],
        Arch::X86_64,
        Runtime::ProvidedAl2023,
        &search,
    )
    .unwrap_or_else(|err| panic!("{err}\n  help: {}", err.help()));
    (facts, libs)
}

/// Every soname needed by the binary or a bundled library is either the runtime's or bundled;
/// every bundled file is a real x86_64 file, not a symlink, carrying the soname it is stored as.
fn assert_closed(facts: &BinaryFacts, libs: &[BundledLibrary]) {
    let bundled: BTreeMap<&str, &BundledLibrary> =
        libs.iter().map(|l| (l.soname.as_str(), l)).collect();
    assert_eq!(bundled.len(), libs.len(), "deduplicated");
    let names: Vec<&str> = libs.iter().map(|l| l.soname.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "sorted by soname");
    let all_needed = facts
        .needed
        .iter()
        .chain(libs.iter().flat_map(|l| l.facts.needed.iter()));
    for soname in all_needed {
        assert!(
            Runtime::ProvidedAl2023.provides_library(soname)
                || bundled.contains_key(soname.as_str()),
            "{soname} is neither provided by provided.al2023 nor bundled: {names:?}"
        );
    }
    for lib in libs {
        assert!(!Runtime::ProvidedAl2023.provides_library(&lib.soname));
        let meta = std::fs::symlink_metadata(&lib.path).unwrap();
        assert!(
            meta.file_type().is_file(),
            "{} is not a regular file",
            lib.path.display()
        );
        assert_eq!(lib.facts.arch, Some(Arch::X86_64));
        assert_eq!(lib.facts.soname.as_deref(), Some(lib.soname.as_str()));
        assert_eq!(lib.facts.size, meta.len());
    }
}

/// A Lambda-like layout: `task/bootstrap` and `opt/lib/<soname>` for each bundled library,
/// stored as plain files under their soname, as the `-libs` layer stores them.
struct Layout {
    dir: tempfile::TempDir,
}

impl Layout {
    fn new(binary: &Path, libs: &[BundledLibrary]) -> Layout {
        let dir = tempfile::Builder::new()
            .prefix("lambda-pack-libs-layout-")
            .tempdir()
            .unwrap();
        std::fs::create_dir_all(dir.path().join("task")).unwrap();
        std::fs::create_dir_all(dir.path().join("opt/lib")).unwrap();
        std::fs::copy(binary, dir.path().join("task/bootstrap")).unwrap();
        for lib in libs {
            std::fs::copy(&lib.path, dir.path().join("opt/lib").join(&lib.soname)).unwrap();
        }
        Layout { dir }
    }

    fn bootstrap(&self) -> PathBuf {
        self.dir.path().join("task/bootstrap")
    }

    fn opt_lib(&self) -> PathBuf {
        self.dir.path().join("opt/lib")
    }

    /// The loader's own resolution of every library, `soname → path`, with `opt/lib` as the
    /// library path (as `LD_LIBRARY_PATH=/opt/lib` on Lambda).
    fn resolve(&self) -> BTreeMap<String, String> {
        let output = Command::new(LOADER)
            .arg("--library-path")
            .arg(self.opt_lib())
            .arg("--list")
            .arg(self.bootstrap())
            .env_remove("LD_LIBRARY_PATH")
            .env_remove("LD_PRELOAD")
            .output()
            .unwrap_or_else(|err| panic!("run {LOADER}: {err}"));
        let listing = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "{LOADER} --list failed:\n{listing}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            !listing.contains("not found"),
            "unresolved libraries:\n{listing}"
        );
        let mut resolved = BTreeMap::new();
        for line in listing.lines() {
            if let Some((name, rest)) = line.trim().split_once(" => ") {
                let path = rest.split(" (").next().unwrap_or(rest).trim();
                resolved.insert(name.trim().to_string(), path.to_string());
            }
        }
        assert!(!resolved.is_empty(), "no libraries listed:\n{listing}");
        resolved
    }

    /// Runs the binary with `LD_LIBRARY_PATH=opt/lib`.
    fn run(&self) -> String {
        let output = Command::new(self.bootstrap())
            .env("LD_LIBRARY_PATH", self.opt_lib())
            .output()
            .expect("run bootstrap");
        assert!(
            output.status.success(),
            "bootstrap failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

/// Every bundled soname resolves into `opt/lib`; everything else the loader found on the host is
/// a library the runtime provides, so the same layout resolves on Lambda.
fn assert_loader_uses_bundle(layout: &Layout, libs: &[BundledLibrary]) {
    let resolved = layout.resolve();
    let opt_lib = layout.opt_lib();
    for lib in libs {
        let path = resolved.get(&lib.soname).unwrap_or_else(|| {
            panic!(
                "{} is not in the loader's listing: {resolved:?}",
                lib.soname
            )
        });
        assert_eq!(Path::new(path), opt_lib.join(&lib.soname), "{}", lib.soname);
    }
    for (soname, path) in &resolved {
        if !Path::new(path).starts_with(&opt_lib) {
            assert!(
                Runtime::ProvidedAl2023.provides_library(soname),
                "{soname} came from the host ({path}) but provided.al2023 does not have it"
            );
        }
    }
}

#[test]
fn sqlite_fn_gets_libsqlite3_from_the_host() {
    let built = built();
    let (facts, libs) = bundle_for(&built.sqlite_fn);
    assert!(
        facts.needed.iter().any(|n| n == "libsqlite3.so.0"),
        "{:?}",
        facts.needed
    );

    let sqlite = libs
        .iter()
        .find(|l| l.soname == "libsqlite3.so.0")
        .expect("libsqlite3.so.0 is bundled");
    assert_eq!(sqlite.needed_by, "bootstrap");
    // The real file behind the libsqlite3.so.0 symlink, not the symlink.
    let link = Path::new("/usr/lib/x86_64-linux-gnu/libsqlite3.so.0");
    assert!(link.is_symlink());
    assert_eq!(sqlite.path, std::fs::canonicalize(link).unwrap());
    assert_ne!(sqlite.path.file_name().unwrap(), "libsqlite3.so.0");
    assert_closed(&facts, &libs);

    let layout = Layout::new(&built.sqlite_fn, &libs);
    assert_loader_uses_bundle(&layout, &libs);
    let out = layout.run();
    assert!(out.starts_with("sqlite 3."), "{out}");
}

#[test]
fn xml_fn_gets_libxml2_and_what_libxml2_needs() {
    let built = built();
    let (facts, libs) = bundle_for(&built.xml_fn);
    assert!(
        facts.needed.iter().any(|n| n == "libxml2.so.2"),
        "{:?}",
        facts.needed
    );
    let by: BTreeMap<&str, &str> = libs
        .iter()
        .map(|l| (l.soname.as_str(), l.needed_by.as_str()))
        .collect();
    assert_eq!(by.get("libxml2.so.2"), Some(&"bootstrap"), "{by:?}");
    // libxml2.so.2 needs ICU and liblzma (and libz, libm, libc, which the runtime has);
    // ICU's common library needs its data library.
    assert_eq!(by.get("liblzma.so.5"), Some(&"libxml2.so.2"), "{by:?}");
    let icuuc = by
        .keys()
        .find(|s| s.starts_with("libicuuc.so."))
        .unwrap_or_else(|| panic!("no ICU in {by:?}"));
    assert_eq!(by[icuuc], "libxml2.so.2");
    let icudata = icuuc.replace("libicuuc", "libicudata");
    assert_eq!(by.get(icudata.as_str()), Some(icuuc), "{by:?}");
    assert!(!by.contains_key("libz.so.1"));
    assert_closed(&facts, &libs);

    let layout = Layout::new(&built.xml_fn, &libs);
    assert_loader_uses_bundle(&layout, &libs);
    let out = layout.run();
    assert!(out.starts_with("libxml2 2"), "{out}");
}

#[test]
fn the_fixture_cannot_be_bundled_from_arm64_directories() {
    // An x86_64 binary's libraries looked up for arm64: the x86_64 directories are never
    // searched, so libsqlite3.so.0 is not found and the error says which package to install.
    let built = built();
    let facts = inspect_file(&built.sqlite_fn).unwrap();
    let search = SearchPath::host(Arch::Arm64, &[]);
    let err = bundle(
        &[("bootstrap".to_string(), &facts)],
        Arch::Arm64,
        Runtime::ProvidedAl2023,
        &search,
    )
    .unwrap_err();
    assert_eq!(err.soname(), "libsqlite3.so.0");
    assert!(err.to_string().contains("`bootstrap`"), "{err}");
    assert!(err.help().contains("libsqlite3-0:arm64"), "{}", err.help());
}
