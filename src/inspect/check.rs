//! Checking a binary's facts against the Lambda runtime it will run on. Pure: no I/O.

use std::fmt;

use serde::Serialize;

use super::{BinaryFacts, ElfKind, Linkage};
use crate::target::{Arch, GlibcVersion, Libc, Runtime, RustTarget};

/// What a binary is meant to be: the architecture, runtime and libc it was built for, and the
/// path it has on Lambda (quoted in messages, the way Lambda quotes it).
///
/// A `role_path` whose file name contains `.so` (e.g. `/opt/lib/libfoo.so.1`) is taken to be a
/// library; anything else must be an executable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckTarget {
    pub arch: Arch,
    pub runtime: Runtime,
    pub libc: Libc,
    /// e.g. `/var/task/bootstrap` or `/opt/extensions/telemetry`.
    pub role_path: String,
    /// Linked by the build host's own linker (a pack with `--compiler cargo` for a gnu target),
    /// so against the host's glibc. `false` when unknown (`inspect` of any file): the glibc
    /// versions the file needs then tell how it was linked.
    pub host_linker: bool,
}

impl CheckTarget {
    fn expects_library(&self) -> bool {
        let file_name = self.role_path.rsplit('/').next().unwrap_or(&self.role_path);
        file_name.ends_with(".so") || file_name.contains(".so.")
    }
}

/// How bad a finding is: errors stop the function from starting, warnings do not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One problem [`check_binary`] found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable kebab-case id, see [`codes`].
    pub code: &'static str,
    pub severity: Severity,
    /// One line: what is wrong.
    pub message: String,
    /// What Lambda prints when the function starts, for problems that stop it.
    pub lambda_error: Option<String>,
    /// How to fix it.
    pub help: String,
    /// For `missing-library`: the soname that is missing, so a bundled layer can satisfy it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub soname: Option<String>,
}

/// The stable ids of [`Finding::code`].
pub mod codes {
    pub const ELF_32_BIT: &str = "32-bit";
    pub const WRONG_ARCHITECTURE: &str = "wrong-architecture";
    pub const NOT_EXECUTABLE_ELF: &str = "not-executable-elf";
    pub const NOT_SHARED_OBJECT: &str = "not-shared-object";
    pub const DYNAMIC_MUSL: &str = "dynamic-musl";
    pub const FOREIGN_INTERPRETER: &str = "foreign-interpreter";
    pub const MISSING_LIBRARY: &str = "missing-library";
    pub const GLIBC_TOO_NEW: &str = "glibc-too-new";
    pub const UNEXPECTED_LIBC: &str = "unexpected-libc";
    pub const DEBUG_INFO: &str = "debug-info";
    /// Not about a binary: the artifact's name breaks Lambda's naming rules (`lambda_names`).
    pub const INVALID_NAME: &str = "invalid-name";
    /// Not from the binary alone: a dynamically linked file in an image on `scratch` (`plan`).
    pub const DYNAMIC_ON_SCRATCH: &str = "dynamic-on-scratch";
    /// Not about a binary: the build's flags target a CPU newer than Lambda's hosts
    /// (`plan::cpu_floor`).
    pub const CPU_TOO_NEW: &str = "cpu-too-new";
    /// Not about a binary: a function with no `/var/task/bootstrap` and no layer providing
    /// `/opt/bootstrap` (`plan::bootstrap`).
    pub const NO_BOOTSTRAP: &str = "no-bootstrap";
    /// Not from the ELF structure: a bin with no role set that never reads
    /// `AWS_LAMBDA_RUNTIME_API`, named with `--bin` (`plan::lambda_binary`).
    pub const NOT_LAMBDA_BINARY: &str = "not-lambda-binary";
    /// Not about a binary: `deploy` creating a function on a runtime past its end of support
    /// (`provided.al2`).
    pub const DEPRECATED_RUNTIME: &str = "deprecated-runtime";
    /// Not about a binary: a function attaching more than Lambda's 5 layers when some are
    /// attached by ARN, which a container image cannot carry instead (`plan::attach`).
    pub const TOO_MANY_LAYERS: &str = "too-many-layers";

    /// Every code, for validating `--allow` and `allow = [...]`.
    pub const ALL: [&str; 17] = [
        ELF_32_BIT,
        WRONG_ARCHITECTURE,
        NOT_EXECUTABLE_ELF,
        NOT_SHARED_OBJECT,
        DYNAMIC_MUSL,
        FOREIGN_INTERPRETER,
        MISSING_LIBRARY,
        GLIBC_TOO_NEW,
        UNEXPECTED_LIBC,
        DEBUG_INFO,
        INVALID_NAME,
        DYNAMIC_ON_SCRATCH,
        CPU_TOO_NEW,
        NO_BOOTSTRAP,
        NOT_LAMBDA_BINARY,
        DEPRECATED_RUNTIME,
        TOO_MANY_LAYERS,
    ];
}

/// The interpreter paths glibc's loader has on Amazon Linux for each architecture.
fn lambda_interpreters(arch: Arch) -> &'static [&'static str] {
    match arch {
        Arch::X86_64 => &[
            "/lib64/ld-linux-x86-64.so.2",
            "/usr/lib64/ld-linux-x86-64.so.2",
        ],
        Arch::Arm64 => &[
            "/lib/ld-linux-aarch64.so.1",
            "/lib64/ld-linux-aarch64.so.1",
            "/usr/lib/ld-linux-aarch64.so.1",
            "/usr/lib64/ld-linux-aarch64.so.1",
        ],
    }
}

fn libc_name(libc: Libc) -> &'static str {
    match libc {
        Libc::Gnu => "glibc",
        Libc::Musl => "musl",
    }
}

/// Checks one binary's facts against what it is meant to run on. Pure: no I/O.
///
/// Findings come in the order Lambda would hit them: the kernel's checks first (class,
/// architecture, file kind, interpreter), then the loader's (missing libraries, then glibc
/// versions), then warnings.
pub fn check_binary(facts: &BinaryFacts, expected: CheckTarget) -> Vec<Finding> {
    let mut findings = Vec::new();
    let role = expected.role_path.as_str();
    let runtime = expected.runtime;
    let target = RustTarget::new(expected.arch, expected.libc);
    let exec_format_error = || Some("exec format error".to_string());
    let no_such_file = || Some(format!("fork/exec {role}: no such file or directory"));

    if facts.elf_class == 32 {
        findings.push(Finding {
            code: codes::ELF_32_BIT,
            severity: Severity::Error,
            message: format!(
                "`{role}` is a 32-bit ELF binary ({}); Lambda runs 64-bit binaries only",
                facts.machine_name
            ),
            lambda_error: exec_format_error(),
            help: format!("build for the 64-bit target {target}"),
            soname: None,
        });
    }
    if facts.machine != expected.arch.elf_machine() {
        let built_for = match facts.arch {
            Some(arch) => format!("{arch} (e_machine {})", facts.machine),
            None => format!("{} (e_machine {})", facts.machine_name, facts.machine),
        };
        let help = match facts.arch {
            Some(arch) => format!(
                "build for {target}, or deploy the function with architecture {}",
                arch.lambda_name()
            ),
            None => format!("build for {target}"),
        };
        findings.push(Finding {
            code: codes::WRONG_ARCHITECTURE,
            severity: Severity::Error,
            message: format!(
                "`{role}` is built for {built_for}, but the function runs on {} (e_machine {})",
                expected.arch,
                expected.arch.elf_machine()
            ),
            lambda_error: exec_format_error(),
            help,
            soname: None,
        });
    }

    if expected.expects_library() {
        if facts.kind != ElfKind::SharedObject {
            findings.push(Finding {
                code: codes::NOT_SHARED_OBJECT,
                severity: Severity::Error,
                message: format!(
                    "`{role}` is {}, not a shared library",
                    facts.kind.describe()
                ),
                lambda_error: None,
                help: "build the crate as a `cdylib` to ship it as a library".to_string(),
                soname: None,
            });
        }
    } else if !facts.kind.is_executable() {
        let lambda_error = match facts.kind {
            // The kernel maps a library without an interpreter and jumps to its entry point.
            ElfKind::SharedObject => None,
            _ => exec_format_error(),
        };
        findings.push(Finding {
            code: codes::NOT_EXECUTABLE_ELF,
            severity: Severity::Error,
            message: format!("`{role}` is {}, not an executable", facts.kind.describe()),
            lambda_error,
            help: "package the crate's `bin` target, not a library or object file".to_string(),
            soname: None,
        });
    }

    let musl_loader = facts.interpreter.as_deref().is_some_and(|path| {
        path.rsplit('/')
            .next()
            .unwrap_or(path)
            .starts_with("ld-musl-")
    });
    let dynamic_musl =
        facts.libc == Some(Libc::Musl) && facts.linkage == Linkage::Dynamic || musl_loader;
    if dynamic_musl {
        let loader = facts
            .interpreter
            .as_deref()
            .map(|path| format!(" through {path}"))
            .unwrap_or_default();
        findings.push(Finding {
            code: codes::DYNAMIC_MUSL,
            severity: Severity::Error,
            message: format!(
                "`{role}` is linked dynamically against musl{loader}; Lambda has no musl loader"
            ),
            lambda_error: no_such_file(),
            help: "link musl statically: build for *-unknown-linux-musl without \
                   `-C target-feature=-crt-static`"
                .to_string(),
            soname: None,
        });
    } else if let Some(interpreter) = facts.interpreter.as_deref()
        && facts.arch == Some(expected.arch)
        && !lambda_interpreters(expected.arch).contains(&interpreter)
    {
        findings.push(Finding {
            code: codes::FOREIGN_INTERPRETER,
            severity: Severity::Error,
            message: format!(
                "`{role}` asks for the loader {interpreter}, which does not exist on {runtime}"
            ),
            lambda_error: no_such_file(),
            help: format!(
                "link with the standard loader {} (binaries built on NixOS or Guix carry a \
                 store path): use --compiler zig or musl",
                lambda_interpreters(expected.arch)[0]
            ),
            soname: None,
        });
    }

    if !dynamic_musl {
        for soname in &facts.needed {
            if runtime.provides_library(soname) {
                continue;
            }
            findings.push(Finding {
                code: codes::MISSING_LIBRARY,
                severity: Severity::Error,
                message: format!(
                    "`{role}` needs {soname}, which {runtime} does not promise to provide"
                ),
                lambda_error: Some(format!(
                    "error while loading shared libraries: {soname}: cannot open shared object \
                     file: No such file or directory"
                )),
                help: format!(
                    "ship {soname} in a layer's lib/ (on LD_LIBRARY_PATH as /opt/lib), or link \
                     the dependency statically (e.g. a `vendored`/`bundled` crate feature)"
                ),
                soname: Some(soname.to_string()),
            });
        }
    }

    if let (Some(needs), Some(name)) = (facts.max_glibc, facts.max_glibc_name()) {
        let has = runtime.glibc();
        if needs > has {
            findings.push(Finding {
                code: codes::GLIBC_TOO_NEW,
                severity: Severity::Error,
                message: format!(
                    "`{role}` needs glibc {needs} ({name}), but {runtime} has glibc {has}"
                ),
                lambda_error: Some(format!("version `{name}' not found (required by {role})")),
                help: glibc_help(needs, runtime, expected.host_linker),
                soname: None,
            });
        }
    }

    if let Some(libc) = facts.libc
        && libc != expected.libc
        && !dynamic_musl
    {
        findings.push(Finding {
            code: codes::UNEXPECTED_LIBC,
            severity: Severity::Warning,
            message: format!(
                "`{role}` is linked against {}, but it was meant for {} ({target})",
                libc_name(libc),
                libc_name(expected.libc)
            ),
            lambda_error: None,
            help: format!("check that the packaged file is the one built for {target}"),
            soname: None,
        });
    }

    if facts.debug_info {
        findings.push(Finding {
            code: codes::DEBUG_INFO,
            severity: Severity::Warning,
            message: format!(
                "`{role}` carries debug info ({} bytes in all), which Lambda never uses",
                facts.size
            ),
            lambda_error: None,
            help: "set `strip = true` (or `debug = false`) in [profile.release] to shrink the \
                   package"
                .to_string(),
            soname: None,
        });
    }

    findings
}

/// The fix for a binary whose glibc is too new depends on how it was linked. A binary that needs
/// no more than another Lambda runtime's glibc is pinned for that runtime (as zig pins it) and
/// runs there: packing it for this runtime pins this runtime's glibc instead, with no change of
/// compiler. A binary that needs more than every runtime has was linked against a newer glibc,
/// the build host's: it needs zig (which pins the runtime's glibc) or musl.
fn glibc_help(needs: GlibcVersion, runtime: Runtime, host_linker: bool) -> String {
    let has = runtime.glibc();
    let runs_on = Runtime::ALL
        .iter()
        .filter(|other| !host_linker && **other != runtime && needs <= other.glibc())
        .min_by_key(|other| other.glibc());
    match runs_on {
        Some(other) => format!(
            "needs GLIBC_{needs}, {runtime} has {has}; it is pinned for {other} (glibc {}): pack it for {runtime} (`--runtime {runtime}` pins glibc {has}), or build for musl",
            other.glibc()
        ),
        None => format!(
            "needs GLIBC_{needs}, {runtime} has {has}{} (linked against the build host's glibc): use --compiler zig or musl",
            if host_linker {
                String::new()
            } else {
                format!(", no Lambda runtime has {needs}")
            }
        ),
    }
}
