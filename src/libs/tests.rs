use super::*;

const HOST_LIBS: &str = "/usr/lib/x86_64-linux-gnu";
const CROSS_ARM64_LIBS: &str = "/usr/aarch64-linux-gnu/lib";

/// Facts of a real host executable, with the `DT_NEEDED` list a test wants.
fn root(needed: &[&str]) -> BinaryFacts {
    let mut facts = inspect::inspect_file(Path::new("/bin/sh")).expect("inspect /bin/sh");
    facts.needed = needed.iter().map(|s| s.to_string()).collect();
    facts.soname = None;
    facts
}

/// Facts of a real aarch64 library from the cross sysroot, as an arm64 root.
fn arm64_root(needed: &[&str]) -> BinaryFacts {
    let mut facts = inspect::inspect_file(&Path::new(CROSS_ARM64_LIBS).join("libc.so.6"))
        .expect("inspect the arm64 libc (libc6-arm64-cross)");
    facts.needed = needed.iter().map(|s| s.to_string()).collect();
    facts.soname = None;
    facts
}

/// The real file behind a host library.
fn host_lib(soname: &str) -> PathBuf {
    std::fs::canonicalize(Path::new(HOST_LIBS).join(soname))
        .unwrap_or_else(|err| panic!("{soname} on the host: {err}"))
}

/// Copies `from` into `dir` under its own file name and links `soname` to it through an
/// intermediate symlink, as `ldconfig` and package layouts do:
/// `soname` → `soname.current` → `<real file>`. Returns the copied real file.
fn install_chain(dir: &Path, soname: &str, from: &Path) -> PathBuf {
    let real = dir.join(from.file_name().unwrap());
    std::fs::copy(from, &real).unwrap();
    let middle = format!("{soname}.current");
    std::os::unix::fs::symlink(real.file_name().unwrap(), dir.join(&middle)).unwrap();
    std::os::unix::fs::symlink(&middle, dir.join(soname)).unwrap();
    real
}

fn copy_as(dir: &Path, soname: &str, from: &Path) -> PathBuf {
    let to = dir.join(soname);
    std::fs::copy(from, &to).unwrap();
    to
}

fn sonames(libs: &[BundledLibrary]) -> Vec<&str> {
    libs.iter().map(|l| l.soname.as_str()).collect()
}

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("lambda-pack-libs-")
        .tempdir()
        .unwrap()
}

#[test]
fn host_search_path_keeps_existing_dirs_of_the_architecture() {
    let extra = tempdir();
    let missing = extra.path().join("does-not-exist");
    let x86 = SearchPath::host(Arch::X86_64, &[extra.path().to_path_buf(), missing.clone()]);
    assert_eq!(x86.dirs[0], extra.path(), "extra dirs come first");
    assert!(!x86.dirs.contains(&missing));
    assert!(x86.dirs.contains(&PathBuf::from(HOST_LIBS)));
    assert!(x86.dirs.contains(&PathBuf::from("/usr/lib")));
    assert!(
        x86.dirs
            .iter()
            .all(|d| !d.to_string_lossy().contains("aarch64"))
    );
    // /lib is a symlink to /usr/lib on merged-/usr systems: listed once.
    let canonical: BTreeSet<_> = x86
        .dirs
        .iter()
        .map(|d| std::fs::canonicalize(d).unwrap())
        .collect();
    assert_eq!(canonical.len(), x86.dirs.len());

    let arm = SearchPath::host(Arch::Arm64, &[]);
    assert!(arm.dirs.contains(&PathBuf::from(CROSS_ARM64_LIBS)));
    for dir in &arm.dirs {
        let text = dir.to_string_lossy();
        assert!(text.contains("aarch64"), "{text} is not an arm64 directory");
    }
    assert_eq!(
        SearchPath::split_list("/a::/b"),
        vec![PathBuf::from("/a"), PathBuf::from("/b")]
    );
}

#[test]
fn finds_a_library_behind_a_symlink_chain() {
    let dir = tempdir();
    let real = install_chain(dir.path(), "libsqlite3.so.0", &host_lib("libsqlite3.so.0"));
    let search = SearchPath::existing([dir.path().to_path_buf()]);
    let bootstrap = root(&["libsqlite3.so.0", "libgcc_s.so.1", "libc.so.6"]);
    let libs = bundle(
        &[("bootstrap".to_string(), &bootstrap)],
        Arch::X86_64,
        Runtime::ProvidedAl2023,
        &search,
    )
    .unwrap();
    assert_eq!(sonames(&libs), ["libsqlite3.so.0"]);
    let lib = &libs[0];
    assert_eq!(lib.path, std::fs::canonicalize(&real).unwrap());
    assert!(!std::fs::symlink_metadata(&lib.path).unwrap().is_symlink());
    assert_eq!(lib.needed_by, "bootstrap");
    assert_eq!(lib.facts.soname.as_deref(), Some("libsqlite3.so.0"));
    assert_eq!(lib.facts.arch, Some(Arch::X86_64));
    assert!(lib.facts.max_glibc.is_some());
}

#[test]
fn follows_needed_transitively_and_deduplicates() {
    let dir = tempdir();
    for soname in [
        "libxml2.so.2",
        "libicuuc.so.72",
        "libicudata.so.72",
        "liblzma.so.5",
        "libz.so.1",
        "libstdc++.so.6",
    ] {
        install_chain(dir.path(), soname, &host_lib(soname));
    }
    let search = SearchPath::existing([dir.path().to_path_buf()]);
    let first = root(&["libxml2.so.2", "libc.so.6"]);
    let second = root(&["liblzma.so.5", "libxml2.so.2", "libz.so.1"]);
    let libs = bundle(
        &[
            ("first".to_string(), &first),
            ("second".to_string(), &second),
        ],
        Arch::X86_64,
        Runtime::ProvidedAl2023,
        &search,
    )
    .unwrap();
    assert_eq!(
        sonames(&libs),
        [
            "libicudata.so.72",
            "libicuuc.so.72",
            "liblzma.so.5",
            "libxml2.so.2"
        ]
    );
    let by: BTreeMap<_, _> = libs
        .iter()
        .map(|l| (l.soname.as_str(), l.needed_by.as_str()))
        .collect();
    assert_eq!(by["libxml2.so.2"], "first");
    assert_eq!(by["liblzma.so.5"], "second");
    assert_eq!(by["libicuuc.so.72"], "libxml2.so.2");
    assert_eq!(by["libicudata.so.72"], "libicuuc.so.72");
    // libicuuc needs libstdc++, libgcc_s, libm, libc and the loader; libxml2 needs libz:
    // all provided by the runtime, so none is bundled although libz and libstdc++ are there.
    for lib in &libs {
        assert!(!Runtime::ProvidedAl2023.provides_library(&lib.soname));
        assert!(!lib.path.is_symlink());
    }
}

#[test]
fn each_soname_is_probed_once() {
    let dir = tempdir();
    for soname in [
        "libxml2.so.2",
        "libicuuc.so.72",
        "libicudata.so.72",
        "liblzma.so.5",
    ] {
        copy_as(dir.path(), soname, &host_lib(soname));
    }
    let search = SearchPath::existing([dir.path().to_path_buf()]);
    let a = root(&["libxml2.so.2", "liblzma.so.5"]);
    let b = root(&["libicuuc.so.72", "libxml2.so.2"]);
    let mut probed = Vec::new();
    let libs = bundle_with(
        &[("a".to_string(), &a), ("b".to_string(), &b)],
        Arch::X86_64,
        Runtime::ProvidedAl2023,
        &search,
        |path| {
            probed.push(path.file_name().unwrap().to_string_lossy().into_owned());
            probe_file(path)
        },
    )
    .unwrap();
    assert_eq!(libs.len(), 4);
    probed.sort();
    assert_eq!(
        probed,
        [
            "libicudata.so.72",
            "libicuuc.so.72",
            "liblzma.so.5",
            "libxml2.so.2"
        ]
    );
}

#[test]
fn skips_files_of_another_machine() {
    let x86 = tempdir();
    let arm = tempdir();
    // The same file name in both directories: an x86_64 and an aarch64 shared library.
    copy_as(x86.path(), "libdemo.so.1", &host_lib("libsqlite3.so.0"));
    copy_as(
        arm.path(),
        "libdemo.so.1",
        &Path::new(CROSS_ARM64_LIBS).join("libBrokenLocale.so.1"),
    );
    let x86_first = SearchPath::existing([x86.path().to_path_buf(), arm.path().to_path_buf()]);
    let arm_first = SearchPath::existing([arm.path().to_path_buf(), x86.path().to_path_buf()]);

    let function = arm64_root(&["libdemo.so.1"]);
    let roots = [("bootstrap".to_string(), &function)];
    let libs = bundle(&roots, Arch::Arm64, Runtime::ProvidedAl2023, &x86_first).unwrap();
    assert_eq!(sonames(&libs), ["libdemo.so.1"]);
    assert!(
        libs[0]
            .path
            .starts_with(std::fs::canonicalize(arm.path()).unwrap())
    );
    assert_eq!(libs[0].facts.machine, Arch::Arm64.elf_machine());

    let function = root(&["libdemo.so.1"]);
    let roots = [("bootstrap".to_string(), &function)];
    let libs = bundle(&roots, Arch::X86_64, Runtime::ProvidedAl2023, &arm_first).unwrap();
    assert!(
        libs[0]
            .path
            .starts_with(std::fs::canonicalize(x86.path()).unwrap())
    );
    assert_eq!(libs[0].facts.machine, Arch::X86_64.elf_machine());

    // Only the wrong machine there: not found, and the note says why the file was skipped.
    let only_arm = SearchPath::existing([arm.path().to_path_buf()]);
    let err = bundle(&roots, Arch::X86_64, Runtime::ProvidedAl2023, &only_arm).unwrap_err();
    assert!(matches!(err, LibsError::NotFound { .. }), "{err}");
    let notes = err.notes().join("\n");
    assert!(notes.contains("libdemo.so.1"), "{notes}");
    assert!(notes.contains("EM_AARCH64"), "{notes}");
    assert!(notes.contains("not x86_64"), "{notes}");
}

#[test]
fn skips_unusable_files_and_dangling_symlinks() {
    let first = tempdir();
    let second = tempdir();
    let third = tempdir();
    std::fs::write(
        first.path().join("liblzma.so.5"),
        "INPUT ( liblzma.so.5.4 )\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("gone.so", second.path().join("liblzma.so.5")).unwrap();
    let real = install_chain(third.path(), "liblzma.so.5", &host_lib("liblzma.so.5"));
    let search = SearchPath::existing([&first, &second, &third].map(|d| d.path().to_path_buf()));
    let function = root(&["liblzma.so.5"]);
    let roots = [("bootstrap".to_string(), &function)];
    let libs = bundle(&roots, Arch::X86_64, Runtime::ProvidedAl2023, &search).unwrap();
    assert_eq!(libs[0].path, std::fs::canonicalize(real).unwrap());
}

#[test]
fn not_found_names_soname_needer_dirs_and_package() {
    let dir = tempdir();
    let search = SearchPath::existing([dir.path().to_path_buf()]);
    let function = root(&["libc.so.6", "libsqlite3.so.0"]);
    let roots = [("orders".to_string(), &function)];
    let err = bundle(&roots, Arch::X86_64, Runtime::ProvidedAl2023, &search).unwrap_err();
    assert_eq!(err.soname(), "libsqlite3.so.0");
    let message = err.to_string();
    for part in [
        "`libsqlite3.so.0`",
        "`orders`",
        "provided.al2023",
        "x86_64",
        &dir.path().display().to_string(),
    ] {
        assert!(message.contains(part), "{part} missing from: {message}");
    }
    let help = err.help();
    assert!(help.contains("apt-get install libsqlite3-0"), "{help}");
    assert!(help.contains("libsqlite3-dev"), "{help}");

    // arm64: the multiarch package.
    let function = arm64_root(&["libsqlite3.so.0"]);
    let roots = [("orders".to_string(), &function)];
    let err = bundle(&roots, Arch::Arm64, Runtime::ProvidedAl2023, &search).unwrap_err();
    let help = err.help();
    assert!(
        help.contains("apt-get install libsqlite3-0:arm64"),
        "{help}"
    );
    assert!(help.contains("dpkg --add-architecture arm64"), "{help}");

    // The project's error carries the same text, as a binary-check failure.
    let error = Error::from(err);
    assert_eq!(error.kind, ErrorKind::BinaryCheck);
    assert!(error.help.unwrap().contains("libsqlite3-0:arm64"));
}

#[test]
fn not_found_deep_in_the_tree_names_the_whole_chain() {
    let dir = tempdir();
    for soname in ["libxml2.so.2", "libicuuc.so.72", "liblzma.so.5"] {
        copy_as(dir.path(), soname, &host_lib(soname));
    }
    let search = SearchPath::existing([dir.path().to_path_buf()]);
    let function = root(&["libxml2.so.2"]);
    let roots = [("bootstrap".to_string(), &function)];
    let err = bundle(&roots, Arch::X86_64, Runtime::ProvidedAl2023, &search).unwrap_err();
    assert_eq!(err.soname(), "libicudata.so.72");
    let message = err.to_string();
    assert!(
        message.contains("`libicuuc.so.72` ← `libxml2.so.2` ← `bootstrap`"),
        "{message}"
    );
    assert!(err.help().contains("libicu72"), "{}", err.help());
}

#[test]
fn runtime_libraries_are_never_bundled() {
    // Every one of these is in the host directory, and each runtime has its own set.
    let search = SearchPath::existing([PathBuf::from(HOST_LIBS)]);
    let needed = [
        "libc.so.6",
        "libm.so.6",
        "libpthread.so.0",
        "libdl.so.2",
        "ld-linux-x86-64.so.2",
        "libgcc_s.so.1",
        "libstdc++.so.6",
        "libz.so.1",
        "libssl.so.3",
        "libcrypto.so.3",
    ];
    let function = root(&needed);
    let roots = [("bootstrap".to_string(), &function)];
    let libs = bundle(&roots, Arch::X86_64, Runtime::ProvidedAl2023, &search).unwrap();
    assert!(libs.is_empty(), "{:?}", sonames(&libs));

    // provided.al2 has OpenSSL 1.0 only: OpenSSL 3 comes along, nothing of glibc does.
    let libs = bundle(&roots, Arch::X86_64, Runtime::ProvidedAl2, &search).unwrap();
    assert_eq!(sonames(&libs), ["libcrypto.so.3", "libssl.so.3"]);
    let ssl = libs.iter().find(|l| l.soname == "libssl.so.3").unwrap();
    assert!(ssl.facts.needed.iter().any(|n| n == "libc.so.6"));
    let crypto = libs.iter().find(|l| l.soname == "libcrypto.so.3").unwrap();
    assert_eq!(crypto.needed_by, "bootstrap");
}

#[test]
fn glibc_parts_the_runtime_lacks_are_an_error_not_a_copy() {
    let search = SearchPath::existing([PathBuf::from(HOST_LIBS)]);
    assert!(search.dirs[0].join("libnsl.so.1").exists());
    let function = root(&["libnsl.so.1"]);
    let roots = [("bootstrap".to_string(), &function)];
    let err = bundle(&roots, Arch::X86_64, Runtime::ProvidedAl2023, &search).unwrap_err();
    assert!(matches!(err, LibsError::GlibcPart { .. }), "{err}");
    assert!(err.to_string().contains("`libnsl.so.1`"));
    assert!(err.to_string().contains("part of glibc"));
    // provided.al2's glibc still has it.
    let libs = bundle(&roots, Arch::X86_64, Runtime::ProvidedAl2, &search).unwrap();
    assert!(libs.is_empty());
}

#[test]
fn a_library_packed_alongside_is_not_looked_up() {
    let dir = tempdir();
    let search = SearchPath::existing([dir.path().to_path_buf()]);
    let mut layer = root(&["libc.so.6"]);
    layer.soname = Some("libshared.so".to_string());
    let function = root(&["libshared.so", "libc.so.6"]);
    let libs = bundle(
        &[
            ("bootstrap".to_string(), &function),
            ("libshared.so".to_string(), &layer),
        ],
        Arch::X86_64,
        Runtime::ProvidedAl2023,
        &search,
    )
    .unwrap();
    assert!(libs.is_empty());
}

#[test]
fn debian_packages_of_common_sonames() {
    let pkg = |s| debian_package(s).map(|p| p.runtime);
    assert_eq!(pkg("libsqlite3.so.0"), Some("libsqlite3-0"));
    assert_eq!(pkg("libssl.so.1.1"), Some("libssl1.1"));
    assert_eq!(pkg("libcrypto.so.3"), Some("libssl3"));
    assert_eq!(pkg("libpq.so.5"), Some("libpq5"));
    assert_eq!(pkg("libicuuc.so.72"), Some("libicu72"));
    assert_eq!(pkg("libicuuc.so.x"), None);
    assert_eq!(pkg("libunknown.so.9"), None);
    let sqlite = debian_package("libsqlite3.so.0").unwrap();
    assert_eq!(sqlite.to_string(), "libsqlite3-0 / libsqlite3-dev");
    assert_eq!(sqlite.for_arch(Arch::Arm64), "libsqlite3-0:arm64");
    assert!(is_glibc_part("libnss_dns.so.2"));
    assert!(!is_glibc_part("libcrypt.so.1"));
}
