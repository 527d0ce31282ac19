use super::facts_builder::FactsBuilder;
use super::*;
use crate::target::Runtime;

fn glibc_binary() -> BinaryFacts {
    FactsBuilder::glibc_x86_64().build()
}

fn static_musl_binary(arch: Arch) -> BinaryFacts {
    FactsBuilder::static_musl(arch).build()
}

fn target(arch: Arch, runtime: Runtime, libc: Libc) -> CheckTarget {
    CheckTarget {
        arch,
        runtime,
        libc,
        role_path: "/var/task/bootstrap".to_string(),
        host_linker: false,
    }
}

fn codes_of(findings: &[Finding]) -> Vec<&'static str> {
    findings.iter().map(|f| f.code).collect()
}

#[test]
fn a_fitting_binary_has_no_findings() {
    for runtime in Runtime::ALL {
        let findings = check_binary(&glibc_binary(), target(Arch::X86_64, runtime, Libc::Gnu));
        assert_eq!(findings, Vec::new(), "{runtime}");
        for arch in Arch::ALL {
            let findings =
                check_binary(&static_musl_binary(arch), target(arch, runtime, Libc::Musl));
            assert_eq!(findings, Vec::new(), "{runtime} {arch}");
        }
    }
}

#[test]
fn glibc_newer_than_the_runtime_is_an_error_quoting_the_loader() {
    let facts = BinaryFacts {
        max_glibc: Some(GlibcVersion::new(2, 36)),
        glibc_versions: vec![
            "GLIBC_2.2.5".to_string(),
            "GLIBC_2.34".to_string(),
            "GLIBC_2.36".to_string(),
        ],
        ..glibc_binary()
    };
    let findings = check_binary(
        &facts,
        target(Arch::X86_64, Runtime::ProvidedAl2, Libc::Gnu),
    );
    assert_eq!(codes_of(&findings), ["glibc-too-new"]);
    let finding = &findings[0];
    assert_eq!(finding.severity, Severity::Error);
    assert_eq!(
        finding.lambda_error.as_deref(),
        Some("version `GLIBC_2.36' not found (required by /var/task/bootstrap)")
    );
    assert_eq!(
        finding.help,
        "needs GLIBC_2.36, provided.al2 has 2.26, no Lambda runtime has 2.36 (linked against the build host's glibc): use --compiler zig or musl"
    );

    let findings = check_binary(
        &facts,
        target(Arch::X86_64, Runtime::ProvidedAl2023, Libc::Gnu),
    );
    assert_eq!(
        findings[0].help,
        "needs GLIBC_2.36, provided.al2023 has 2.34, no Lambda runtime has 2.36 (linked against the build host's glibc): use --compiler zig or musl"
    );

    // Exactly at the ceiling is fine.
    let facts = BinaryFacts {
        max_glibc: Some(GlibcVersion::new(2, 34)),
        glibc_versions: vec!["GLIBC_2.34".to_string()],
        ..glibc_binary()
    };
    let al2023 = target(Arch::X86_64, Runtime::ProvidedAl2023, Libc::Gnu);
    assert_eq!(check_binary(&facts, al2023), Vec::new());
    let al2 = target(Arch::X86_64, Runtime::ProvidedAl2, Libc::Gnu);
    let findings = check_binary(&facts, al2);
    assert_eq!(codes_of(&findings), ["glibc-too-new"]);
    // Pinned for provided.al2023 (as zig pins it): the fix is the runtime, not the compiler.
    assert_eq!(
        findings[0].help,
        "needs GLIBC_2.34, provided.al2 has 2.26; it is pinned for provided.al2023 (glibc 2.34): pack it for provided.al2 (`--runtime provided.al2` pins glibc 2.26), or build for musl"
    );
    // The same needs from the host's linker (a pack with --compiler cargo): another runtime would
    // not help, the linker must change.
    let host = CheckTarget {
        host_linker: true,
        ..target(Arch::X86_64, Runtime::ProvidedAl2, Libc::Gnu)
    };
    assert_eq!(
        check_binary(&facts, host)[0].help,
        "needs GLIBC_2.34, provided.al2 has 2.26 (linked against the build host's glibc): use --compiler zig or musl"
    );
}

#[test]
fn glibc_versions_compare_numerically() {
    let mut needs: Vec<(GlibcNeed, String)> = [
        "GLIBC_2.34",
        "GLIBC_2.9",
        "GLIBC_2.17",
        "GLIBC_2.2.5",
        "GLIBC_2.3",
        "GLIBC_ABI_DT_RELR",
        "GLIBC_2.36",
    ]
    .into_iter()
    .map(|name| (glibc_version_need(name).unwrap(), name.to_string()))
    .collect();
    needs.sort_by(compare_glibc_needs);
    let names: Vec<&str> = needs.iter().map(|(_, name)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "GLIBC_2.2.5",
            "GLIBC_2.3",
            "GLIBC_2.9",
            "GLIBC_2.17",
            "GLIBC_2.34",
            "GLIBC_ABI_DT_RELR",
            "GLIBC_2.36"
        ]
    );
    assert!(glibc_version_need("GLIBC_2.9") < glibc_version_need("GLIBC_2.17"));
    assert_eq!(
        glibc_version_need("GLIBC_2.2.5").unwrap().effective(),
        GlibcVersion::new(2, 2)
    );
    assert_eq!(glibc_version_need("GLIBC_PRIVATE"), None);
    assert_eq!(glibc_version_need("GCC_3.0"), None);
    assert_eq!(glibc_version_need("GLIBCXX_3.4.30"), None);
}

#[test]
fn relr_marker_alone_means_glibc_2_36() {
    let facts = BinaryFacts {
        max_glibc: Some(GlibcVersion::new(2, 36)),
        glibc_versions: vec!["GLIBC_2.2.5".to_string(), "GLIBC_ABI_DT_RELR".to_string()],
        ..glibc_binary()
    };
    let findings = check_binary(
        &facts,
        target(Arch::X86_64, Runtime::ProvidedAl2023, Libc::Gnu),
    );
    assert_eq!(codes_of(&findings), ["glibc-too-new"]);
    assert_eq!(
        findings[0].lambda_error.as_deref(),
        Some("version `GLIBC_ABI_DT_RELR' not found (required by /var/task/bootstrap)")
    );
    assert!(
        findings[0]
            .help
            .starts_with("needs GLIBC_2.36, provided.al2023 has 2.34")
    );
}

#[test]
fn wrong_architecture_is_an_exec_format_error() {
    let findings = check_binary(
        &static_musl_binary(Arch::Arm64),
        target(Arch::X86_64, Runtime::ProvidedAl2023, Libc::Musl),
    );
    assert_eq!(codes_of(&findings), ["wrong-architecture"]);
    let finding = &findings[0];
    assert_eq!(finding.lambda_error.as_deref(), Some("exec format error"));
    assert_eq!(
        finding.message,
        "`/var/task/bootstrap` is built for arm64 (e_machine 183), but the function runs \
         on x86_64 (e_machine 62)"
    );
    assert!(finding.help.contains("x86_64-unknown-linux-musl"));
    assert!(finding.help.contains("architecture arm64"));
}

#[test]
fn a_32_bit_binary_is_reported() {
    let facts = BinaryFacts {
        elf_class: 32,
        machine: 3,
        machine_name: "EM_386".to_string(),
        arch: None,
        ..static_musl_binary(Arch::X86_64)
    };
    let findings = check_binary(
        &facts,
        target(Arch::X86_64, Runtime::ProvidedAl2023, Libc::Musl),
    );
    assert_eq!(codes_of(&findings), ["32-bit", "wrong-architecture"]);
    assert!(findings[1].message.contains("EM_386 (e_machine 3)"));
}

#[test]
fn dynamic_musl_cannot_start() {
    let facts = BinaryFacts {
        interpreter: Some("/lib/ld-musl-x86_64.so.1".to_string()),
        linkage: Linkage::Dynamic,
        needed: vec!["libc.so".to_string()],
        ..static_musl_binary(Arch::X86_64)
    };
    let findings = check_binary(
        &facts,
        target(Arch::X86_64, Runtime::ProvidedAl2023, Libc::Musl),
    );
    // The musl libc.so is not reported on top: the loader itself is missing.
    assert_eq!(codes_of(&findings), ["dynamic-musl"]);
    assert_eq!(
        findings[0].lambda_error.as_deref(),
        Some("fork/exec /var/task/bootstrap: no such file or directory")
    );
}

#[test]
fn each_missing_library_is_named() {
    let mut facts = glibc_binary();
    facts.needed = vec![
        "libssl.so.1.1".to_string(),
        "libc.so.6".to_string(),
        "libsqlite3.so.0".to_string(),
        "libssl.so.3".to_string(),
    ];
    let findings = check_binary(
        &facts,
        target(Arch::X86_64, Runtime::ProvidedAl2023, Libc::Gnu),
    );
    assert_eq!(codes_of(&findings), ["missing-library", "missing-library"]);
    assert_eq!(
        findings[0].lambda_error.as_deref(),
        Some(
            "error while loading shared libraries: libssl.so.1.1: cannot open shared object \
             file: No such file or directory"
        )
    );
    assert!(findings[1].message.contains("libsqlite3.so.0"));

    // provided.al2 has OpenSSL 1.0: libssl.so.3 is missing there instead.
    let findings = check_binary(
        &facts,
        target(Arch::X86_64, Runtime::ProvidedAl2, Libc::Gnu),
    );
    let missing: Vec<bool> = ["libssl.so.1.1", "libsqlite3.so.0", "libssl.so.3"]
        .iter()
        .map(|soname| findings.iter().any(|f| f.message.contains(soname)))
        .collect();
    assert_eq!(missing, [true, true, true]);
}

#[test]
fn foreign_interpreter_is_reported() {
    let facts = BinaryFacts {
        interpreter: Some("/nix/store/abc-glibc-2.39/lib/ld-linux-x86-64.so.2".to_string()),
        ..glibc_binary()
    };
    let findings = check_binary(
        &facts,
        target(Arch::X86_64, Runtime::ProvidedAl2023, Libc::Gnu),
    );
    assert_eq!(codes_of(&findings), ["foreign-interpreter"]);
}

#[test]
fn kinds_are_checked_against_the_role() {
    let library = BinaryFacts {
        kind: ElfKind::SharedObject,
        interpreter: None,
        soname: Some("libfoo.so".to_string()),
        ..glibc_binary()
    };
    let findings = check_binary(
        &library,
        target(Arch::X86_64, Runtime::ProvidedAl2023, Libc::Gnu),
    );
    assert_eq!(codes_of(&findings), ["not-executable-elf"]);

    let mut in_layer = target(Arch::X86_64, Runtime::ProvidedAl2023, Libc::Gnu);
    in_layer.role_path = "/opt/lib/libfoo.so".to_string();
    assert_eq!(check_binary(&library, in_layer.clone()), Vec::new());
    assert_eq!(
        codes_of(&check_binary(&glibc_binary(), in_layer)),
        ["not-shared-object"]
    );

    let object_file = BinaryFacts {
        kind: ElfKind::Relocatable,
        ..static_musl_binary(Arch::X86_64)
    };
    let findings = check_binary(
        &object_file,
        target(Arch::X86_64, Runtime::ProvidedAl2023, Libc::Musl),
    );
    assert_eq!(codes_of(&findings), ["not-executable-elf"]);
    assert_eq!(
        findings[0].lambda_error.as_deref(),
        Some("exec format error")
    );
}

#[test]
fn warnings_do_not_block() {
    let facts = BinaryFacts {
        debug_info: true,
        stripped: false,
        ..static_musl_binary(Arch::X86_64)
    };
    let findings = check_binary(
        &facts,
        target(Arch::X86_64, Runtime::ProvidedAl2023, Libc::Gnu),
    );
    assert_eq!(codes_of(&findings), ["unexpected-libc", "debug-info"]);
    assert!(findings.iter().all(|f| f.severity == Severity::Warning));
    assert!(findings.iter().all(|f| f.lambda_error.is_none()));
}

#[test]
fn findings_serialize_with_stable_names() {
    let mut facts = glibc_binary();
    facts.needed.push("libsqlite3.so.0".to_string());
    let findings = check_binary(
        &facts,
        target(Arch::X86_64, Runtime::ProvidedAl2023, Libc::Gnu),
    );
    let json = serde_json::to_value(&findings).unwrap();
    assert_eq!(json[0]["code"], "missing-library");
    assert_eq!(json[0]["severity"], "error");
    for key in ["message", "lambda_error", "help"] {
        assert!(json[0][key].is_string(), "{key}");
    }
    let json = serde_json::to_value(glibc_binary()).unwrap();
    assert_eq!(json["kind"], "pie_executable");
    assert_eq!(json["linkage"], "dynamic");
    assert_eq!(json["arch"], "x86_64");
    assert_eq!(json["libc"], "gnu");
    assert_eq!(json["max_glibc"]["minor"], 17);
}

#[test]
fn runtime_library_table() {
    for runtime in Runtime::ALL {
        for soname in [
            "libc.so.6",
            "libm.so.6",
            "libpthread.so.0",
            "libdl.so.2",
            "librt.so.1",
            "libutil.so.1",
            "libresolv.so.2",
            "ld-linux-x86-64.so.2",
            "ld-linux-aarch64.so.1",
            "libgcc_s.so.1",
            "libstdc++.so.6",
            "libz.so.1",
        ] {
            assert!(runtime.provides_library(soname), "{runtime} {soname}");
        }
        // Seen on the images, never promised.
        for soname in [
            "libsqlite3.so.0",
            "libcurl.so.4",
            "libzstd.so.1",
            "liblzma.so.5",
            "libssl.so.1.1",
        ] {
            assert!(!runtime.provides_library(soname), "{runtime} {soname}");
        }
    }
    let (al2023, al2) = (Runtime::ProvidedAl2023, Runtime::ProvidedAl2);
    assert!(al2023.provides_library("libssl.so.3"));
    assert!(al2023.provides_library("libcrypto.so.3"));
    assert!(!al2023.provides_library("libssl.so.10"));
    assert!(al2.provides_library("libssl.so.10"));
    assert!(al2.provides_library("libcrypto.so.10"));
    assert!(!al2.provides_library("libssl.so.3"));
    // libxcrypt on al2023, glibc's own libcrypt on al2.
    assert!(al2023.provides_library("libcrypt.so.2"));
    assert!(!al2023.provides_library("libcrypt.so.1"));
    assert!(al2.provides_library("libcrypt.so.1"));
    assert!(!al2.provides_library("libcrypt.so.2"));
}

#[test]
fn non_elf_inputs_are_described() {
    let cases: [(&[u8], &str); 6] = [
        (b"hello world\n", "a text file"),
        (&[0xcf, 0xfa, 0xed, 0xfe, 7, 0, 0, 1], "Mach-O"),
        (b"MZ\x90\x00", "PE executable"),
        (b"#!/bin/sh\necho hi\n", "script"),
        (
            &[0x00, 0xff, 0xfe, 0x80, 0x81],
            "unrecognised data (first bytes 00 ff fe 80)",
        ),
        (b"\x7fEL", "unrecognised data"),
    ];
    for (bytes, expected) in cases {
        let error = inspect_bytes(bytes).unwrap_err();
        assert!(matches!(error, InspectError::NotElf { .. }), "{error}");
        assert!(error.to_string().contains(expected), "{error}");
    }
    assert!(matches!(
        inspect_bytes(b""),
        Err(InspectError::Empty { path: None })
    ));
    let error = inspect_bytes(b"\x7fELF").unwrap_err();
    assert!(matches!(error, InspectError::Malformed { .. }), "{error}");
}
