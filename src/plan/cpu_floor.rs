//! Lambda's CPU floor: flags that let the compiler use instructions some Lambda hosts lack.
//!
//! Lambda runs x86_64 functions on hosts from Haswell-era Intel and AMD parts up, and arm64
//! functions on Graviton2 (Neoverse N1) and up: code built for `x86-64-v3`/`haswell` or
//! `neoverse-n1` runs everywhere, anything newer may die with SIGILL on the first host that lacks
//! an instruction. `target-cpu=native` is the usual culprit: it means "the build machine's CPU",
//! which on a developer laptop or a CI runner is newer than the floor. The flags come from
//! `rustflags::effective` (the environment and cargo's configuration); this check is pure and
//! needs no build, so a pack refuses before compiling anything.

use crate::inspect::{Finding, Severity, codes};
use crate::rustflags::{CompileFlags, FlagSource};
use crate::target::Arch;

/// CPUs whose instruction set stays within the floor (LLVM's names).
fn cpu_within_floor(arch: Arch, cpu: &str) -> bool {
    match arch {
        Arch::X86_64 => matches!(
            cpu,
            "x86-64"
                | "x86-64-v2"
                | "x86-64-v3"
                | "generic"
                | "core2"
                | "penryn"
                | "nehalem"
                | "corei7"
                | "westmere"
                | "sandybridge"
                | "corei7-avx"
                | "ivybridge"
                | "core-avx-i"
                | "haswell"
                | "core-avx2"
        ),
        Arch::Arm64 => matches!(
            cpu,
            "generic"
                | "neoverse-n1"
                | "cortex-a53"
                | "cortex-a55"
                | "cortex-a57"
                | "cortex-a72"
                | "cortex-a73"
                | "cortex-a75"
                | "cortex-a76"
        ),
    }
}

/// Target features the floor CPU has (LLVM's names); enabling any other may emit instructions
/// Lambda's oldest hosts lack. `crt-static` is a linking mode, not an instruction set.
fn feature_within_floor(arch: Arch, feature: &str) -> bool {
    feature == "crt-static"
        || match arch {
            Arch::X86_64 => matches!(
                feature,
                "sse"
                    | "sse2"
                    | "sse3"
                    | "ssse3"
                    | "sse4.1"
                    | "sse4.2"
                    | "popcnt"
                    | "cx16"
                    | "cmpxchg16b"
                    | "sahf"
                    | "avx"
                    | "avx2"
                    | "bmi1"
                    | "bmi2"
                    | "fma"
                    | "f16c"
                    | "lzcnt"
                    | "movbe"
                    | "xsave"
                    | "xsaveopt"
                    | "fxsr"
                    | "pclmulqdq"
                    | "aes"
                    | "rdrand"
                    | "mmx"
                    | "x87"
                    | "cmov"
                    | "cx8"
                    | "fsgsbase"
            ),
            Arch::Arm64 => matches!(
                feature,
                "neon"
                    | "fp-armv8"
                    | "crc"
                    | "lse"
                    | "rdm"
                    | "fp16"
                    | "fullfp16"
                    | "dotprod"
                    | "rcpc"
                    | "aes"
                    | "sha2"
                    | "crypto"
                    | "ssbs"
                    | "v8a"
                    | "v8.1a"
                    | "v8.2a"
                    | "ras"
                    | "lor"
                    | "pan"
                    | "pan-rwv"
                    | "vh"
                    | "uaops"
                    | "ccpp"
                    | "spe"
                    | "outline-atomics"
                    | "pmuv3"
                    | "perfmon"
            ),
        }
}

/// The floor as people name it, for messages.
fn floor_name(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "x86-64-v3 (haswell)",
        Arch::Arm64 => "neoverse-n1 (Graviton2)",
    }
}

/// What Lambda reports when a function hits an instruction its host lacks.
pub const LAMBDA_ERROR: &str =
    "Runtime.ExitError: RequestId: … Error: Runtime exited with error: signal: illegal instruction";

/// `-C name=value` settings in a rustflags list, in any of rustc's spellings
/// (`-Cname=v`, `-C name=v`, `--codegen name=v`, `--codegen=name=v`).
fn codegen_options(flags: &[String]) -> Vec<(&str, &str)> {
    let mut options = Vec::new();
    let mut iter = flags.iter().map(String::as_str);
    while let Some(flag) = iter.next() {
        let option = match flag {
            "-C" | "--codegen" => iter.next(),
            _ => flag
                .strip_prefix("--codegen=")
                .or_else(|| flag.strip_prefix("-C")),
        };
        if let Some((name, value)) = option.and_then(|o| o.split_once('=')) {
            options.push((name, value));
        }
    }
    options
}

/// Every flag of `flags` that lets code use more than `arch`'s floor, as findings.
pub fn findings(flags: &CompileFlags, arch: Arch) -> Vec<Finding> {
    let mut found = Vec::new();
    for source in &flags.rustflags {
        for (name, value) in codegen_options(&source.flags) {
            match name {
                "target-cpu" if !cpu_within_floor(arch, value) => {
                    found.push(rust_finding(source, arch, &format!("target-cpu={value}")));
                }
                "target-feature" => {
                    let beyond: Vec<&str> = value
                        .split(',')
                        .filter_map(|f| f.strip_prefix('+'))
                        .filter(|f| !feature_within_floor(arch, f))
                        .collect();
                    if !beyond.is_empty() {
                        let named = beyond
                            .iter()
                            .map(|f| format!("+{f}"))
                            .collect::<Vec<_>>()
                            .join(",");
                        found.push(rust_finding(
                            source,
                            arch,
                            &format!("target-feature={named}"),
                        ));
                    }
                }
                _ => {}
            }
        }
    }
    for source in &flags.cflags {
        for flag in &source.flags {
            if matches!(flag.as_str(), "-march=native" | "-mcpu=native") {
                found.push(c_finding(source, arch, flag));
            }
        }
    }
    found
}

fn rust_finding(source: &FlagSource, arch: Arch, setting: &str) -> Finding {
    let what = if setting == "target-cpu=native" {
        "the build machine's CPU, whatever it is".to_string()
    } else {
        format!("a CPU beyond Lambda's {arch} floor, {}", floor_name(arch))
    };
    let replacement = match arch {
        Arch::X86_64 => "-Ctarget-cpu=x86-64-v3",
        Arch::Arm64 => "-Ctarget-cpu=neoverse-n1",
    };
    Finding {
        code: codes::CPU_TOO_NEW,
        severity: Severity::Error,
        message: format!(
            "`-C {setting}` from {} builds for {what}: the function may use instructions some Lambda {arch} hosts lack",
            source.origin
        ),
        lambda_error: Some(LAMBDA_ERROR.to_string()),
        help: format!(
            "remove `{setting}` from {} (at most `{replacement}` is safe on Lambda {arch})",
            source.origin
        ),
        soname: None,
    }
}

fn c_finding(source: &FlagSource, arch: Arch, flag: &str) -> Finding {
    let replacement = match arch {
        Arch::X86_64 => "-march=x86-64-v3",
        Arch::Arm64 => "-mcpu=neoverse-n1",
    };
    Finding {
        code: codes::CPU_TOO_NEW,
        severity: Severity::Error,
        message: format!(
            "`{flag}` from {} makes C code built by `cc` use the build machine's CPU: the function may use instructions some Lambda {arch} hosts lack",
            source.origin
        ),
        lambda_error: Some(LAMBDA_ERROR.to_string()),
        help: format!(
            "remove `{flag}` from {} (at most `{replacement}` is safe on Lambda {arch})",
            source.origin
        ),
        soname: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rust(origin: &str, flags: &[&str]) -> CompileFlags {
        CompileFlags {
            rustflags: vec![FlagSource {
                origin: origin.into(),
                flags: flags.iter().map(|f| f.to_string()).collect(),
            }],
            cflags: Vec::new(),
        }
    }

    #[test]
    fn native_and_cpus_beyond_the_floor_are_found_in_every_spelling() {
        for flags in [
            &["-Ctarget-cpu=native"][..],
            &["-C", "target-cpu=native"],
            &["--codegen", "target-cpu=native"],
            &["--codegen=target-cpu=native"],
        ] {
            let found = findings(&rust("RUSTFLAGS", flags), Arch::X86_64);
            assert_eq!(found.len(), 1, "{flags:?}");
            assert_eq!(found[0].code, "cpu-too-new");
            assert!(
                found[0].message.contains("from RUSTFLAGS"),
                "{}",
                found[0].message
            );
            assert!(
                found[0]
                    .lambda_error
                    .as_ref()
                    .unwrap()
                    .contains("signal: illegal instruction")
            );
        }
        let v4 = findings(&rust("R", &["-Ctarget-cpu=x86-64-v4"]), Arch::X86_64);
        assert!(
            v4[0].message.contains("x86-64-v3 (haswell)"),
            "{}",
            v4[0].message
        );
        assert!(findings(&rust("R", &["-Ctarget-cpu=x86-64-v3"]), Arch::X86_64).is_empty());
        assert!(findings(&rust("R", &["-Ctarget-cpu=haswell"]), Arch::X86_64).is_empty());
        assert!(findings(&rust("R", &["-Ctarget-cpu=neoverse-n1"]), Arch::Arm64).is_empty());
        assert_eq!(
            findings(&rust("R", &["-Ctarget-cpu=neoverse-v1"]), Arch::Arm64).len(),
            1
        );
    }

    #[test]
    fn features_beyond_the_floor_are_named_and_crt_static_is_not_one() {
        let found = findings(
            &rust("R", &["-Ctarget-feature=+crt-static,+avx2,+avx512f,-sse4a"]),
            Arch::X86_64,
        );
        assert_eq!(found.len(), 1);
        assert!(
            found[0].message.contains("target-feature=+avx512f`"),
            "{}",
            found[0].message
        );
        assert!(findings(&rust("R", &["-Ctarget-feature=+crt-static"]), Arch::Arm64).is_empty());
        assert_eq!(
            findings(&rust("R", &["-Ctarget-feature=+sve2"]), Arch::Arm64).len(),
            1
        );
    }

    #[test]
    fn march_native_in_c_flags_is_found() {
        let flags = CompileFlags {
            rustflags: Vec::new(),
            cflags: vec![FlagSource {
                origin: "CFLAGS".into(),
                flags: vec!["-O2".into(), "-march=native".into()],
            }],
        };
        let found = findings(&flags, Arch::Arm64);
        assert_eq!(found.len(), 1);
        assert!(
            found[0].help.contains("-mcpu=neoverse-n1"),
            "{}",
            found[0].help
        );
    }
}
