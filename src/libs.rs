//! The shared libraries a Lambda binary needs but its runtime lacks, found on the build host.
//!
//! A function whose `DT_NEEDED` list names a soname the runtime does not promise (see
//! [`Runtime::provides_library`]) must bring that library along: cargo-lambda-pack ships such
//! libraries in a generated layer, `<function>-libs`, at `lib/<soname>`, because Lambda puts
//! `/opt/lib` on `LD_LIBRARY_PATH`.
//!
//! [`bundle`] walks the `DT_NEEDED` lists of the packed binaries, and then of every library it
//! picks, looking each missing soname up in a [`SearchPath`] the way the dynamic loader would: the
//! first file of that name, in directory order, built for the right machine. Files for another
//! machine (an x86_64 library seen while packing for arm64) are skipped, symlink chains are
//! resolved to the real file, and the sonames of glibc itself are never taken from the host.
//! [`bundle_with`] does the same over any [`Probe`] function, so the walk can be tested without a
//! file system.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, ErrorKind};
use crate::inspect::{self, BinaryFacts, ElfKind};
use crate::target::{Arch, Runtime};

/// Where to look for libraries of one architecture, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SearchPath {
    pub dirs: Vec<PathBuf>,
}

impl SearchPath {
    /// The build host's library directories for `arch`, after the `extra` directories (searched
    /// first, as the loader searches `LD_LIBRARY_PATH` first). Only directories that exist are
    /// kept, each once (`/lib/x86_64-linux-gnu` is dropped when it is a symlink to
    /// `/usr/lib/x86_64-linux-gnu`, already listed).
    ///
    /// - x86_64: `/usr/lib/x86_64-linux-gnu`, `/lib/x86_64-linux-gnu`, the cross sysroot
    ///   `/usr/x86_64-linux-gnu/lib`, then, on an x86_64 host, `/usr/lib64`, `/lib64`,
    ///   `/usr/lib`, `/lib`, `/usr/local/lib`.
    /// - arm64: `/usr/lib/aarch64-linux-gnu`, `/lib/aarch64-linux-gnu`, the cross sysroot
    ///   `/usr/aarch64-linux-gnu/lib`, then, on an arm64 host, the generic directories above.
    ///
    /// The generic directories hold the host's own architecture, so they are searched only for
    /// it; the directories of another architecture's multiarch triple are never searched.
    pub fn host(arch: Arch, extra: &[PathBuf]) -> SearchPath {
        let triple = format!("{}-linux-gnu", arch.rust_arch());
        let mut candidates: Vec<PathBuf> = extra.to_vec();
        candidates.push(PathBuf::from(format!("/usr/lib/{triple}")));
        candidates.push(PathBuf::from(format!("/lib/{triple}")));
        candidates.push(PathBuf::from(format!("/usr/{triple}/lib")));
        if Arch::host() == Some(arch) {
            for dir in ["/usr/lib64", "/lib64", "/usr/lib", "/lib", "/usr/local/lib"] {
                candidates.push(PathBuf::from(dir));
            }
        }
        SearchPath::existing(candidates)
    }

    /// The given directories, in order, keeping only those that exist, each once.
    pub fn existing(dirs: impl IntoIterator<Item = PathBuf>) -> SearchPath {
        let mut seen = BTreeSet::new();
        let dirs = dirs
            .into_iter()
            .filter(|dir| dir.is_dir())
            .filter(|dir| seen.insert(std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone())))
            .collect();
        SearchPath { dirs }
    }

    /// Splits a `PATH`-style list (`LIBRARY_PATH`, `LD_LIBRARY_PATH`) into directories, for the
    /// `extra` argument of [`SearchPath::host`]. Empty entries are dropped.
    pub fn split_list(value: &str) -> Vec<PathBuf> {
        std::env::split_paths(value)
            .filter(|dir| !dir.as_os_str().is_empty())
            .collect()
    }
}

/// A library to ship in the function's `-libs` layer, at `lib/<soname>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BundledLibrary {
    /// The name the binaries ask for, and the name to store the file under.
    pub soname: String,
    /// The real file, symlinks resolved (e.g. `/usr/lib/x86_64-linux-gnu/libsqlite3.so.0.8.6`).
    pub path: PathBuf,
    /// The library's own facts, for the glibc floor and machine checks.
    pub facts: BinaryFacts,
    /// The binary or library whose `DT_NEEDED` list first named it.
    pub needed_by: String,
}

/// What a [`Probe`] found at one candidate path (`<dir>/<soname>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    /// Nothing by that name.
    Missing,
    /// An ELF file: `path` is the real file behind any symlinks.
    Found { path: PathBuf, facts: BinaryFacts },
    /// Something by that name that the loader could not use (not ELF, unreadable, a dangling
    /// symlink, a directory). It is skipped, and named if the soname is not found elsewhere.
    Unusable { reason: String },
}

/// Looks at one candidate path on the real file system.
pub fn probe_file(candidate: &Path) -> Probe {
    match std::fs::symlink_metadata(candidate) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Probe::Missing,
        Err(err) => {
            return Probe::Unusable {
                reason: err.to_string(),
            };
        }
        Ok(_) => {}
    }
    let real = match std::fs::canonicalize(candidate) {
        Ok(real) => real,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Probe::Unusable {
                reason: "a dangling symlink".to_string(),
            };
        }
        Err(err) => {
            return Probe::Unusable {
                reason: err.to_string(),
            };
        }
    };
    if !real.is_file() {
        return Probe::Unusable {
            reason: format!("`{}` is not a regular file", real.display()),
        };
    }
    match inspect::inspect_file(&real) {
        Ok(facts) => Probe::Found { path: real, facts },
        Err(err) => Probe::Unusable {
            reason: err.to_string(),
        },
    }
}

/// A candidate file passed over while looking for a soname, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}

/// Why the libraries of a function could not be gathered.
#[derive(Debug, thiserror::Error)]
pub enum LibsError {
    /// No usable file by that name in any searched directory.
    #[error(
        "`{soname}`, needed by {chain}, is not provided by {runtime} and no {arch} build of it was found on this host (searched: {searched})",
        chain = chain_text(.chain),
        searched = searched_text(.searched),
    )]
    NotFound {
        soname: String,
        /// Who needs it, nearest first: `["libicuuc.so.72", "libxml2.so.2", "bootstrap"]`.
        chain: Vec<String>,
        arch: Arch,
        runtime: Runtime,
        searched: Vec<PathBuf>,
        /// Files of that name that were passed over (another machine, not ELF, ...).
        skipped: Vec<Skipped>,
    },
    /// A library built as part of glibc that the runtime does not carry. Such libraries call
    /// `GLIBC_PRIVATE` symbols of the exact glibc build they came with, so a copy from the build
    /// host would not load next to the runtime's glibc.
    #[error(
        "`{soname}`, needed by {chain}, is part of glibc, and {runtime} does not carry it; a copy from this host's glibc would not load next to the runtime's",
        chain = chain_text(.chain),
    )]
    GlibcPart {
        soname: String,
        chain: Vec<String>,
        runtime: Runtime,
    },
}

impl LibsError {
    /// The soname the error is about.
    pub fn soname(&self) -> &str {
        match self {
            LibsError::NotFound { soname, .. } | LibsError::GlibcPart { soname, .. } => soname,
        }
    }

    /// The Debian packages that usually provide the missing soname, if known.
    pub fn package(&self) -> Option<DebianPackage> {
        debian_package(self.soname())
    }

    /// Lines of detail beyond the message: the files passed over.
    pub fn notes(&self) -> Vec<String> {
        match self {
            LibsError::NotFound { skipped, .. } => skipped
                .iter()
                .map(|s| format!("skipped `{}`: {}", s.path.display(), s.reason))
                .collect(),
            LibsError::GlibcPart { .. } => Vec::new(),
        }
    }

    /// What to do about it.
    pub fn help(&self) -> String {
        match self {
            LibsError::NotFound { soname, arch, .. } => {
                let dirs = format!(
                    "add the directory holding an {arch} build of `{soname}` to the library search path"
                );
                match self.package() {
                    Some(package) => {
                        let runtime = package.for_arch(*arch);
                        let mut help =
                            format!("install Debian's `{runtime}` (apt-get install {runtime})");
                        if *arch == Arch::Arm64 {
                            help.push_str(
                                " after `dpkg --add-architecture arm64 && apt-get update`",
                            );
                        }
                        help.push_str(&format!(", or {dirs}"));
                        if let Some(dev) = package.dev {
                            help.push_str(&format!(
                                "; linking against it also needs `{}`",
                                package_for_arch(dev, *arch)
                            ));
                        }
                        help
                    }
                    None => format!(
                        "install the package that provides `{soname}` for {arch} (on Debian: apt-file search {soname}), or {dirs}"
                    ),
                }
            }
            LibsError::GlibcPart { runtime, .. } => format!(
                "stop depending on it (it is usually pulled in by an old C library or a linker flag), or run on a container image built from the {runtime} base image with the library installed there"
            ),
        }
    }
}

impl From<LibsError> for Error {
    fn from(err: LibsError) -> Self {
        let help = err.help();
        let mut error = Error::new(ErrorKind::BinaryCheck, err.to_string());
        for note in err.notes() {
            error = error.with_note(note);
        }
        error.with_help(help)
    }
}

fn chain_text(chain: &[String]) -> String {
    chain
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(" ← ")
}

fn searched_text(dirs: &[PathBuf]) -> String {
    if dirs.is_empty() {
        return "no library directory for this architecture exists".to_string();
    }
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The Debian packages that usually provide a soname: the runtime package, and the `-dev`
/// package that adds the `lib<name>.so` symlink the linker needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DebianPackage {
    pub runtime: &'static str,
    pub dev: Option<&'static str>,
}

impl DebianPackage {
    /// The runtime package's name for `arch`: plain for x86_64 (the usual build host),
    /// `name:arm64` (Debian multiarch) for arm64.
    pub fn for_arch(&self, arch: Arch) -> String {
        package_for_arch(self.runtime, arch)
    }
}

impl fmt::Display for DebianPackage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.runtime)?;
        if let Some(dev) = self.dev {
            write!(f, " / {dev}")?;
        }
        Ok(())
    }
}

fn package_for_arch(name: &str, arch: Arch) -> String {
    match arch {
        Arch::X86_64 => name.to_string(),
        Arch::Arm64 => format!("{name}:arm64"),
    }
}

/// sonames → (Debian runtime package, `-dev` package), for the libraries Rust crates link most.
const DEBIAN_PACKAGES: &[(&str, &str, Option<&str>)] = &[
    ("libsqlite3.so.0", "libsqlite3-0", Some("libsqlite3-dev")),
    ("libssl.so.3", "libssl3", Some("libssl-dev")),
    ("libcrypto.so.3", "libssl3", Some("libssl-dev")),
    ("libssl.so.1.1", "libssl1.1", Some("libssl-dev")),
    ("libcrypto.so.1.1", "libssl1.1", Some("libssl-dev")),
    ("libpq.so.5", "libpq5", Some("libpq-dev")),
    ("libz.so.1", "zlib1g", Some("zlib1g-dev")),
    ("libzstd.so.1", "libzstd1", Some("libzstd-dev")),
    ("liblzma.so.5", "liblzma5", Some("liblzma-dev")),
    ("libbz2.so.1.0", "libbz2-1.0", Some("libbz2-dev")),
    ("libcurl.so.4", "libcurl4", Some("libcurl4-openssl-dev")),
    (
        "libcurl-gnutls.so.4",
        "libcurl3-gnutls",
        Some("libcurl4-gnutls-dev"),
    ),
    ("libxml2.so.2", "libxml2", Some("libxml2-dev")),
    ("libxslt.so.1", "libxslt1.1", Some("libxslt1-dev")),
    ("libffi.so.8", "libffi8", Some("libffi-dev")),
    ("libffi.so.7", "libffi7", None),
    ("libgomp.so.1", "libgomp1", None),
    ("libatomic.so.1", "libatomic1", None),
    ("libgfortran.so.5", "libgfortran5", None),
    ("libquadmath.so.0", "libquadmath0", None),
    ("libmariadb.so.3", "libmariadb3", Some("libmariadb-dev")),
    (
        "libmysqlclient.so.21",
        "libmysqlclient21",
        Some("libmysqlclient-dev"),
    ),
    ("libpcre2-8.so.0", "libpcre2-8-0", Some("libpcre2-dev")),
    ("libonig.so.5", "libonig5", Some("libonig-dev")),
    ("libsodium.so.23", "libsodium23", Some("libsodium-dev")),
    ("libgmp.so.10", "libgmp10", Some("libgmp-dev")),
    ("libexpat.so.1", "libexpat1", Some("libexpat1-dev")),
    ("libuuid.so.1", "libuuid1", Some("uuid-dev")),
    ("libcap.so.2", "libcap2", Some("libcap-dev")),
    ("libdbus-1.so.3", "libdbus-1-3", Some("libdbus-1-dev")),
    ("libudev.so.1", "libudev1", Some("libudev-dev")),
    ("libunwind.so.8", "libunwind8", Some("libunwind-dev")),
    ("libpng16.so.16", "libpng16-16", Some("libpng-dev")),
    (
        "libjpeg.so.62",
        "libjpeg62-turbo",
        Some("libjpeg62-turbo-dev"),
    ),
    ("libnghttp2.so.14", "libnghttp2-14", Some("libnghttp2-dev")),
    ("libidn2.so.0", "libidn2-0", Some("libidn2-dev")),
    ("libssh2.so.1", "libssh2-1", Some("libssh2-1-dev")),
    ("libpsl.so.5", "libpsl5", Some("libpsl-dev")),
    ("librtmp.so.1", "librtmp1", Some("librtmp-dev")),
    ("libbrotlidec.so.1", "libbrotli1", Some("libbrotli-dev")),
    ("libbrotlicommon.so.1", "libbrotli1", Some("libbrotli-dev")),
    (
        "libgssapi_krb5.so.2",
        "libgssapi-krb5-2",
        Some("libkrb5-dev"),
    ),
    ("libkrb5.so.3", "libkrb5-3", Some("libkrb5-dev")),
    ("libk5crypto.so.3", "libk5crypto3", Some("libkrb5-dev")),
    ("libkrb5support.so.0", "libkrb5support0", None),
    ("libcom_err.so.2", "libcom-err2", Some("comerr-dev")),
    ("libkeyutils.so.1", "libkeyutils1", Some("libkeyutils-dev")),
    ("libldap-2.5.so.0", "libldap-2.5-0", Some("libldap-dev")),
    ("liblber-2.5.so.0", "libldap-2.5-0", Some("libldap-dev")),
    ("libsasl2.so.2", "libsasl2-2", Some("libsasl2-dev")),
    ("libgnutls.so.30", "libgnutls30", Some("libgnutls28-dev")),
    ("libcrypt.so.1", "libcrypt1", Some("libcrypt-dev")),
    ("libnsl.so.2", "libnsl2", Some("libnsl-dev")),
    ("libtirpc.so.3", "libtirpc3", Some("libtirpc-dev")),
];

/// The Debian packages that usually provide `soname`, when known.
pub fn debian_package(soname: &str) -> Option<DebianPackage> {
    if let Some((_, runtime, dev)) = DEBIAN_PACKAGES.iter().find(|(name, ..)| *name == soname) {
        return Some(DebianPackage { runtime, dev: *dev });
    }
    icu_package(soname)
}

/// ICU's sonames carry its major version, and so does its package: `libicuuc.so.72` → `libicu72`.
fn icu_package(soname: &str) -> Option<DebianPackage> {
    const ICU: &[&str] = &["uc", "data", "i18n", "io", "tu", "test"];
    let rest = soname.strip_prefix("libicu")?;
    let (component, version) = rest.split_once(".so.")?;
    if !ICU.contains(&component)
        || version.is_empty()
        || !version.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let runtime: &'static str = match version {
        "67" => "libicu67",
        "70" => "libicu70",
        "72" => "libicu72",
        "74" => "libicu74",
        "76" => "libicu76",
        _ => return None,
    };
    Some(DebianPackage {
        runtime,
        dev: Some("libicu-dev"),
    })
}

/// Whether `soname` is one of the libraries glibc itself builds. These depend on the exact glibc
/// build (`GLIBC_PRIVATE`), so they are never copied from the build host: the runtime has them
/// or the binary cannot run there.
pub fn is_glibc_part(soname: &str) -> bool {
    const GLIBC: &[&str] = &[
        "libc.so.6",
        "libm.so.6",
        "libmvec.so.1",
        "libpthread.so.0",
        "libdl.so.2",
        "librt.so.1",
        "libutil.so.1",
        "libresolv.so.2",
        "libanl.so.1",
        "libnsl.so.1",
        "libBrokenLocale.so.1",
        "libthread_db.so.1",
        "libc_malloc_debug.so.0",
        "libmemusage.so",
        "libpcprofile.so",
        "libSegFault.so",
        "ld-linux-x86-64.so.2",
        "ld-linux-aarch64.so.1",
    ];
    GLIBC.contains(&soname) || (soname.starts_with("libnss_") && soname.ends_with(".so.2"))
}

/// Starting from the `DT_NEEDED` lists of `roots` (name, facts), returns every soname the runtime
/// does not provide, transitively (a bundled library's own `DT_NEEDED` are followed too), each
/// found in `search` as an ELF file whose machine and class match `arch`, deduplicated and sorted
/// by soname.
///
/// A soname that one of the roots itself carries as its `DT_SONAME` (a layer's cdylib packed
/// alongside) is not looked up. A soname that cannot be found is a [`LibsError::NotFound`] naming
/// it, who needs it, the directories searched and the Debian package that usually provides it.
pub fn bundle(
    roots: &[(String, &BinaryFacts)],
    arch: Arch,
    runtime: Runtime,
    search: &SearchPath,
) -> Result<Vec<BundledLibrary>, LibsError> {
    bundle_with(roots, arch, runtime, search, probe_file)
}

/// [`bundle`] over any `probe`, which is asked about `<dir>/<soname>` paths in search order.
pub fn bundle_with(
    roots: &[(String, &BinaryFacts)],
    arch: Arch,
    runtime: Runtime,
    search: &SearchPath,
    mut probe: impl FnMut(&Path) -> Probe,
) -> Result<Vec<BundledLibrary>, LibsError> {
    let carried: BTreeSet<&str> = roots
        .iter()
        .filter_map(|(_, facts)| facts.soname.as_deref())
        .collect();
    // soname → who first needed it (a root's name or another soname), for error chains.
    let mut parent: BTreeMap<String, String> = BTreeMap::new();
    let mut queue: VecDeque<(String, String)> = VecDeque::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for (name, facts) in roots {
        for soname in &facts.needed {
            queue.push_back((soname.clone(), name.clone()));
        }
    }
    let mut found: BTreeMap<String, BundledLibrary> = BTreeMap::new();
    while let Some((soname, needed_by)) = queue.pop_front() {
        if !seen.insert(soname.clone()) {
            continue;
        }
        if runtime.provides_library(&soname) || carried.contains(soname.as_str()) {
            continue;
        }
        parent.insert(soname.clone(), needed_by.clone());
        if is_glibc_part(&soname) {
            return Err(LibsError::GlibcPart {
                chain: chain(&parent, &soname),
                soname,
                runtime,
            });
        }
        let mut skipped = Vec::new();
        let mut hit = None;
        for dir in &search.dirs {
            let candidate = dir.join(&soname);
            match probe(&candidate) {
                Probe::Missing => {}
                Probe::Unusable { reason } => skipped.push(Skipped {
                    path: candidate,
                    reason,
                }),
                Probe::Found { path, facts } => match unfit(&facts, arch) {
                    Some(reason) => skipped.push(Skipped {
                        path: candidate,
                        reason,
                    }),
                    None => {
                        hit = Some((path, facts));
                        break;
                    }
                },
            }
        }
        let Some((path, facts)) = hit else {
            return Err(LibsError::NotFound {
                chain: chain(&parent, &soname),
                soname,
                arch,
                runtime,
                searched: search.dirs.clone(),
                skipped,
            });
        };
        for next in &facts.needed {
            queue.push_back((next.clone(), soname.clone()));
        }
        found.insert(
            soname.clone(),
            BundledLibrary {
                soname,
                path,
                facts,
                needed_by,
            },
        );
    }
    Ok(found.into_values().collect())
}

/// Why a file found under a soname cannot serve `arch`, if it cannot.
fn unfit(facts: &BinaryFacts, arch: Arch) -> Option<String> {
    if facts.machine != arch.elf_machine() {
        return Some(format!(
            "built for {} (e_machine {}), not {arch}",
            facts.machine_name, facts.machine
        ));
    }
    if facts.elf_class != 64 {
        return Some(format!("a {}-bit ELF file, not 64-bit", facts.elf_class));
    }
    if facts.kind != ElfKind::SharedObject && facts.kind != ElfKind::PieExecutable {
        return Some(format!("not a shared library ({:?})", facts.kind));
    }
    None
}

/// Who needs `soname`, nearest first, up to the root binary.
fn chain(parent: &BTreeMap<String, String>, soname: &str) -> Vec<String> {
    let mut chain = Vec::new();
    let mut current = soname;
    while let Some(up) = parent.get(current) {
        chain.push(up.clone());
        if chain.len() > parent.len() {
            break;
        }
        current = up;
    }
    chain
}

#[cfg(test)]
mod tests;
