//! Lambda architectures, runtimes and the Rust targets that serve them.
//!
//! Everything here is a fact about AWS Lambda or about Rust's target names; nothing here does I/O.
//! The runtime table (glibc ceiling per runtime) lives in one place so that the planner, the
//! inspector and the Dockerfile writer agree on it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A Lambda instruction-set architecture, spelled the way Lambda spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub enum Arch {
    #[serde(rename = "x86_64")]
    X86_64,
    #[serde(rename = "arm64")]
    Arm64,
}

impl Arch {
    pub const ALL: [Arch; 2] = [Arch::X86_64, Arch::Arm64];

    /// The name Lambda uses (`x86_64`, `arm64`).
    pub fn lambda_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Arm64 => "arm64",
        }
    }

    /// The first component of Rust's target triple (`x86_64`, `aarch64`).
    pub fn rust_arch(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Arm64 => "aarch64",
        }
    }

    /// ELF `e_machine` value of binaries for this architecture.
    pub fn elf_machine(self) -> u16 {
        match self {
            Arch::X86_64 => 62,
            Arch::Arm64 => 183,
        }
    }

    /// The `--platform` value `docker build` takes for images of this architecture.
    pub fn docker_platform(self) -> &'static str {
        match self {
            Arch::X86_64 => "linux/amd64",
            Arch::Arm64 => "linux/arm64",
        }
    }

    /// Parses Lambda's spelling; `aarch64` is accepted as a synonym of `arm64` and `amd64` of `x86_64`
    /// because people type them, but every output uses Lambda's spelling.
    pub fn parse(value: &str) -> Option<Arch> {
        match value {
            "x86_64" | "amd64" => Some(Arch::X86_64),
            "arm64" | "aarch64" => Some(Arch::Arm64),
            _ => None,
        }
    }

    /// The architecture of the machine this program runs on, if Lambda has it.
    pub fn host() -> Option<Arch> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Arch::X86_64),
            "aarch64" => Some(Arch::Arm64),
            _ => None,
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.lambda_name())
    }
}

/// A glibc version such as 2.34.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GlibcVersion {
    pub major: u32,
    pub minor: u32,
}

impl GlibcVersion {
    pub const fn new(major: u32, minor: u32) -> Self {
        GlibcVersion { major, minor }
    }
}

impl fmt::Display for GlibcVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// One of Lambda's OS-only runtimes, the only ones a Rust binary runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub enum Runtime {
    #[serde(rename = "provided.al2023")]
    ProvidedAl2023,
    #[serde(rename = "provided.al2")]
    ProvidedAl2,
}

impl Runtime {
    pub const ALL: [Runtime; 2] = [Runtime::ProvidedAl2023, Runtime::ProvidedAl2];

    pub fn name(self) -> &'static str {
        match self {
            Runtime::ProvidedAl2023 => "provided.al2023",
            Runtime::ProvidedAl2 => "provided.al2",
        }
    }

    pub fn parse(value: &str) -> Option<Runtime> {
        Runtime::ALL.into_iter().find(|r| r.name() == value)
    }

    /// The OS-only runtime with the Amazon Linux (and so the glibc) that the Lambda runtime `id`
    /// runs on: a layer that lists `nodejs18.x` among its compatible runtimes is loaded on Amazon
    /// Linux 2, with glibc 2.26, whatever the runtime of the workspace's functions. `None` for the
    /// runtimes of the first Amazon Linux (glibc 2.17, all deprecated) and names it does not know.
    pub fn of_lambda_runtime(id: &str) -> Option<Runtime> {
        const AMAZON_LINUX_2: [&str; 17] = [
            "nodejs10.x",
            "nodejs12.x",
            "nodejs14.x",
            "nodejs16.x",
            "nodejs18.x",
            "python3.8",
            "python3.9",
            "python3.10",
            "python3.11",
            "java8.al2",
            "java11",
            "java17",
            "ruby2.7",
            "ruby3.2",
            "dotnetcore3.1",
            "dotnet6",
            "provided.al2",
        ];
        const AMAZON_LINUX_2023: [&str; 13] = [
            "nodejs20.x",
            "nodejs22.x",
            "nodejs24.x",
            "python3.12",
            "python3.13",
            "python3.14",
            "java21",
            "java25",
            "ruby3.3",
            "ruby3.4",
            "dotnet8",
            "dotnet10",
            "provided.al2023",
        ];
        if AMAZON_LINUX_2.contains(&id) {
            Some(Runtime::ProvidedAl2)
        } else if AMAZON_LINUX_2023.contains(&id) {
            Some(Runtime::ProvidedAl2023)
        } else {
            None
        }
    }

    /// The glibc the runtime's Amazon Linux ships: the newest `GLIBC_x.y` symbol version a
    /// binary may need and still load there.
    pub fn glibc(self) -> GlibcVersion {
        match self {
            Runtime::ProvidedAl2023 => GlibcVersion::new(2, 34),
            Runtime::ProvidedAl2 => GlibcVersion::new(2, 26),
        }
    }

    /// The tag suffix of the AWS base image (`al2023`, `al2`).
    pub fn image_tag(self) -> &'static str {
        match self {
            Runtime::ProvidedAl2023 => "al2023",
            Runtime::ProvidedAl2 => "al2",
        }
    }

    /// The shared libraries (by soname) that this runtime always has on its loader path; see
    /// [`RUNTIME_LIBRARIES`]. A binary that needs any other soname must bring it along.
    pub fn libraries(self) -> &'static [&'static str] {
        match self {
            Runtime::ProvidedAl2023 => RUNTIME_LIBRARIES.provided_al2023,
            Runtime::ProvidedAl2 => RUNTIME_LIBRARIES.provided_al2,
        }
    }

    /// Whether a binary whose `DT_NEEDED` names `soname` finds it on this runtime without
    /// shipping it. Libraries that are merely seen on the runtime but not promised are `false`.
    pub fn provides_library(self, soname: &str) -> bool {
        self.libraries().contains(&soname)
    }
}

/// Where a runtime is in Lambda's deprecation schedule (dates UTC, `YYYY-MM-DD`): after
/// `deprecated` it gets no more patches, from `create_blocked` Lambda refuses new functions on
/// it, from `update_blocked` it refuses to update existing ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deprecation {
    pub deprecated: &'static str,
    pub create_blocked: &'static str,
    pub update_blocked: &'static str,
}

impl Runtime {
    /// The runtime's deprecation schedule, `None` while Lambda has scheduled none
    /// (`provided.al2023`).
    pub fn deprecation(self) -> Option<Deprecation> {
        match self {
            Runtime::ProvidedAl2023 => None,
            // The deprecation date is the end of support of Lambda's runtime table (Amazon Linux 2
            // itself ended on 2026-06-30). The two block dates follow the table's usual one and
            // two months after it; they could not be read back from AWS's runtime deprecation
            // page when written, so re-check them there.
            Runtime::ProvidedAl2 => Some(Deprecation {
                deprecated: "2026-07-31",
                create_blocked: "2026-08-31",
                update_blocked: "2026-09-30",
            }),
        }
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The C library a Linux target links against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Libc {
    Gnu,
    Musl,
}

/// A Rust target triple that Lambda can run: `{x86_64,aarch64}-unknown-linux-{gnu,musl}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RustTarget {
    pub arch: Arch,
    pub libc: Libc,
}

impl RustTarget {
    pub fn new(arch: Arch, libc: Libc) -> Self {
        RustTarget { arch, libc }
    }

    pub fn triple(self) -> String {
        let libc = match self.libc {
            Libc::Gnu => "gnu",
            Libc::Musl => "musl",
        };
        format!("{}-unknown-linux-{libc}", self.arch.rust_arch())
    }

    /// Parses one of the four triples Lambda can run; anything else is `None`.
    pub fn parse(triple: &str) -> Option<RustTarget> {
        let (arch, rest) = triple.split_once('-')?;
        let arch = match arch {
            "x86_64" => Arch::X86_64,
            "aarch64" => Arch::Arm64,
            _ => return None,
        };
        let libc = match rest {
            "unknown-linux-gnu" => Libc::Gnu,
            "unknown-linux-musl" => Libc::Musl,
            _ => return None,
        };
        Some(RustTarget { arch, libc })
    }

    /// The environment variable cargo reads for this target's linker.
    pub fn linker_env_var(self) -> String {
        format!(
            "CARGO_TARGET_{}_LINKER",
            self.triple().to_uppercase().replace('-', "_")
        )
    }
}

impl fmt::Display for RustTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.triple())
    }
}

/// The sonames each OS-only runtime promises, per runtime.
pub struct RuntimeLibraries {
    pub provided_al2023: &'static [&'static str],
    pub provided_al2: &'static [&'static str],
}

/// The shared libraries the OS-only runtimes always carry: the one table the inspector checks
/// `DT_NEEDED` entries against.
///
/// Sources: the project's design notes, lambda-facts.md, section "The two OS-only runtimes"
/// ("always there: glibc sonames, libgcc_s.so.1, libstdc++.so.6, libz.so.1"; OpenSSL
/// libssl.so.3/libcrypto.so.3 on al2023, libssl.so.10 (1.0.2k) on al2), collected from the AWS
/// base images (aws/aws-lambda-base-images, `public.ecr.aws/lambda/provided:al2023` / `:al2`).
/// That repository holds the image layers as tarballs, so the sonames below were not read from
/// the images' file lists; re-check them against a pulled image when in doubt.
/// Libraries listed there as "seen, not promised" (libcurl.so.4, libzstd.so.1, liblzma.so.5,
/// libsqlite3.so.0, libxml2.so.2, libffi.so.8, libnss3.so, ...) are deliberately absent.
///
/// glibc: both runtimes carry the glibc runtime sonames below, including the stub libraries
/// glibc 2.34 still ships after merging them into libc.so.6 (libpthread, libdl, librt, libutil,
/// libanl). Two glibc sonames differ:
/// - libcrypt: AL2's glibc 2.26 still builds its own libcrypt.so.1. AL2023, like the Fedora it
///   derives from, builds glibc without libcrypt and takes it from libxcrypt, whose soname is
///   libcrypt.so.2; the old libcrypt.so.1 comes only from `libxcrypt-compat`, which Amazon
///   declined to add (amazonlinux/amazon-linux-2023 issue #182, "[Package Request] -
///   libxcrypt-compat", closed: "we aren't going to add this old package"). So al2023 lists
///   libcrypt.so.2 and not libcrypt.so.1.
/// - libnsl.so.1: glibc builds it by default up to 2.27 (AL2 has it); from 2.28 on it needs
///   `--enable-obsolete-nsl` and Fedora moved it to a separate package that the minimal image
///   behind provided.al2023 is not known to carry, so al2023 does not promise it.
///
/// The dynamic loaders of both architectures are listed for both runtimes; a binary for the
/// other architecture is reported as such before its libraries matter.
pub const RUNTIME_LIBRARIES: RuntimeLibraries = RuntimeLibraries {
    provided_al2023: &[
        // glibc 2.34
        "libc.so.6",
        "libm.so.6",
        "libpthread.so.0",
        "libdl.so.2",
        "librt.so.1",
        "libutil.so.1",
        "libresolv.so.2",
        "libanl.so.1",
        "ld-linux-x86-64.so.2",
        "ld-linux-aarch64.so.1",
        // libxcrypt (replaces glibc's libcrypt.so.1)
        "libcrypt.so.2",
        // gcc runtime
        "libgcc_s.so.1",
        "libstdc++.so.6",
        // zlib
        "libz.so.1",
        // OpenSSL 3
        "libssl.so.3",
        "libcrypto.so.3",
    ],
    provided_al2: &[
        // glibc 2.26
        "libc.so.6",
        "libm.so.6",
        "libpthread.so.0",
        "libdl.so.2",
        "librt.so.1",
        "libutil.so.1",
        "libresolv.so.2",
        "libanl.so.1",
        "libnsl.so.1",
        "libcrypt.so.1",
        "ld-linux-x86-64.so.2",
        "ld-linux-aarch64.so.1",
        // gcc runtime
        "libgcc_s.so.1",
        "libstdc++.so.6",
        // zlib
        "libz.so.1",
        // OpenSSL 1.0.2k
        "libssl.so.10",
        "libcrypto.so.10",
    ],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_runtimes_map_to_the_amazon_linux_they_run_on() {
        assert_eq!(
            Runtime::of_lambda_runtime("nodejs18.x"),
            Some(Runtime::ProvidedAl2)
        );
        assert_eq!(
            Runtime::of_lambda_runtime("python3.11"),
            Some(Runtime::ProvidedAl2)
        );
        assert_eq!(
            Runtime::of_lambda_runtime("java17"),
            Some(Runtime::ProvidedAl2)
        );
        assert_eq!(
            Runtime::of_lambda_runtime("nodejs20.x"),
            Some(Runtime::ProvidedAl2023)
        );
        assert_eq!(
            Runtime::of_lambda_runtime("python3.12"),
            Some(Runtime::ProvidedAl2023)
        );
        assert_eq!(
            Runtime::of_lambda_runtime("provided.al2023"),
            Some(Runtime::ProvidedAl2023)
        );
        assert_eq!(Runtime::of_lambda_runtime("python3.7"), None);
        assert_eq!(Runtime::of_lambda_runtime("go1.x"), None);
    }

    #[test]
    fn triples_round_trip() {
        for arch in Arch::ALL {
            for libc in [Libc::Gnu, Libc::Musl] {
                let target = RustTarget::new(arch, libc);
                assert_eq!(RustTarget::parse(&target.triple()), Some(target));
            }
        }
        assert_eq!(RustTarget::parse("x86_64-apple-darwin"), None);
        assert_eq!(RustTarget::parse("riscv64gc-unknown-linux-gnu"), None);
    }

    #[test]
    fn linker_variable_follows_cargo_spelling() {
        let target = RustTarget::new(Arch::Arm64, Libc::Musl);
        assert_eq!(
            target.linker_env_var(),
            "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER"
        );
    }

    #[test]
    fn runtimes_know_their_glibc() {
        assert_eq!(Runtime::ProvidedAl2023.glibc().to_string(), "2.34");
        assert_eq!(Runtime::ProvidedAl2.glibc().to_string(), "2.26");
        assert_eq!(Runtime::parse("provided.al2"), Some(Runtime::ProvidedAl2));
        assert_eq!(Runtime::parse("provided"), None);
    }
}
