//! The inspector against real binaries: the host's own programs and libraries, and binaries
//! built here with rustc (musl, both architectures) and gcc.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use cargo_lambda_pack::{Arch, GlibcVersion, Libc, Runtime};
use cargo_lambda_pack::{
    BinaryFacts, CheckTarget, ElfKind, Finding, InspectError, Linkage, Severity, check_binary,
    inspect_bytes, inspect_file,
};

const BOOTSTRAP: &str = "/var/task/bootstrap";

/// Binaries built once for all tests in this file.
struct Built {
    _dir: tempfile::TempDir,
    /// Static musl, x86_64, with symbols.
    musl_x86_64: PathBuf,
    /// Static musl, x86_64, `-C strip=symbols`.
    musl_x86_64_stripped: PathBuf,
    /// Static musl, aarch64.
    musl_aarch64: PathBuf,
    /// gcc, dynamic glibc, calls arc4random (GLIBC_2.36).
    glibc_2_36: PathBuf,
    /// gcc, static glibc.
    glibc_static: PathBuf,
    /// gcc, glibc code but asking for the musl loader.
    musl_interpreter: PathBuf,
    /// gcc, a shared library with soname libpackdemo.so.1.
    demo_library: PathBuf,
    /// gcc, an executable that needs libpackdemo.so.1.
    needs_demo_library: PathBuf,
}

fn run(command: &mut Command) {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("cannot run {command:?}: {error}"));
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn rustc_musl(dir: &Path, source: &Path, triple: &str, out: &str, extra: &[&str]) -> PathBuf {
    let output = dir.join(out);
    run(Command::new("rustc")
        .args([
            "--edition",
            "2021",
            "--target",
            triple,
            "-C",
            "linker=rust-lld",
        ])
        .args(extra)
        .arg(source)
        .arg("-o")
        .arg(&output));
    output
}

fn gcc(dir: &Path, args: &[&str], out: &str) -> PathBuf {
    let output = dir.join(out);
    run(Command::new("gcc")
        .current_dir(dir)
        .args(args)
        .arg("-o")
        .arg(&output));
    output
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path();
        let main_rs = path.join("main.rs");
        std::fs::write(&main_rs, "fn main() { println!(\"hello\"); }\n").unwrap();
        std::fs::write(
            path.join("random.c"),
            "#include <stdio.h>\n#include <stdlib.h>\n\
             int main(void) { printf(\"%u\\n\", arc4random()); return 0; }\n",
        )
        .unwrap();
        std::fs::write(
            path.join("hello.c"),
            "#include <stdio.h>\nint main(void) { puts(\"hello\"); return 0; }\n",
        )
        .unwrap();
        std::fs::write(path.join("demo.c"), "int demo(void) { return 42; }\n").unwrap();
        std::fs::write(
            path.join("use_demo.c"),
            "int demo(void);\nint main(void) { return demo() == 42 ? 0 : 1; }\n",
        )
        .unwrap();
        let demo_library = gcc(
            path,
            &["-shared", "-fPIC", "-Wl,-soname,libpackdemo.so.1", "demo.c"],
            "libpackdemo.so.1",
        );
        Built {
            musl_x86_64: rustc_musl(path, &main_rs, "x86_64-unknown-linux-musl", "musl64", &[]),
            musl_x86_64_stripped: rustc_musl(
                path,
                &main_rs,
                "x86_64-unknown-linux-musl",
                "musl64-stripped",
                &["-C", "strip=symbols"],
            ),
            musl_aarch64: rustc_musl(
                path,
                &main_rs,
                "aarch64-unknown-linux-musl",
                "musl-arm64",
                &[],
            ),
            glibc_2_36: gcc(path, &["random.c"], "random"),
            glibc_static: gcc(path, &["-static", "hello.c"], "hello-static"),
            musl_interpreter: gcc(
                path,
                &["-Wl,--dynamic-linker=/lib/ld-musl-x86_64.so.1", "hello.c"],
                "hello-musl-loader",
            ),
            needs_demo_library: gcc(path, &["use_demo.c", "./libpackdemo.so.1"], "use-demo"),
            demo_library,
            _dir: dir,
        }
    })
}

fn target(arch: Arch, runtime: Runtime, libc: Libc) -> CheckTarget {
    CheckTarget {
        arch,
        runtime,
        libc,
        role_path: BOOTSTRAP.to_string(),
        host_linker: false,
    }
}

fn codes(findings: &[Finding]) -> Vec<&'static str> {
    findings.iter().map(|f| f.code).collect()
}

fn errors(findings: &[Finding]) -> Vec<&Finding> {
    findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .collect()
}

fn host_arch() -> Arch {
    Arch::host().expect("tests run on x86_64 or aarch64")
}

/// The `NEEDED` entries readelf reports, in order: an independent reading of the same file.
fn readelf_needed(path: &Path) -> Vec<String> {
    let output = Command::new("readelf")
        .args(["-d", "-W"])
        .arg(path)
        .output()
        .expect("readelf (binutils, installed with gcc)");
    assert!(output.status.success());
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.contains("(NEEDED)"))
        .filter_map(|line| {
            let start = line.find('[')? + 1;
            let end = line.rfind(']')?;
            Some(line[start..end].to_string())
        })
        .collect()
}

fn assert_glibc_versions_sorted(facts: &BinaryFacts) {
    let parsed: Vec<Vec<u32>> = facts
        .glibc_versions
        .iter()
        .map(|name| {
            let rest = name.strip_prefix("GLIBC_").unwrap();
            rest.split('.').map(|part| part.parse().unwrap()).collect()
        })
        .collect();
    let mut sorted = parsed.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(parsed, sorted, "{:?}", facts.glibc_versions);
    let last = parsed.last().unwrap();
    assert_eq!(
        facts.max_glibc,
        Some(GlibcVersion::new(last[0], last[1])),
        "{:?}",
        facts.glibc_versions
    );
}

#[test]
fn host_programs_are_dynamic_glibc_executables() {
    let arch = host_arch();
    for path in ["/bin/ls", "/usr/bin/env"] {
        let path = Path::new(path);
        let facts = inspect_file(path).unwrap();
        assert_eq!(facts.elf_class, 64);
        assert_eq!(facts.machine, arch.elf_machine());
        assert_eq!(facts.arch, Some(arch));
        assert_eq!(
            facts.machine_name,
            match arch {
                Arch::X86_64 => "EM_X86_64",
                Arch::Arm64 => "EM_AARCH64",
            }
        );
        assert_eq!(facts.kind, ElfKind::PieExecutable);
        assert_eq!(facts.linkage, Linkage::Dynamic);
        let interpreter = facts.interpreter.as_deref().unwrap();
        assert!(interpreter.contains("ld-linux"), "{interpreter}");
        assert_eq!(facts.libc, Some(Libc::Gnu));
        assert!(facts.needed.contains(&"libc.so.6".to_string()));
        assert_eq!(facts.needed, readelf_needed(path));
        assert_eq!(facts.soname, None);
        assert!(
            facts.max_glibc.unwrap() > GlibcVersion::new(2, 26),
            "{facts:?}"
        );
        assert!(facts.glibc_versions.len() > 1);
        assert_glibc_versions_sorted(&facts);
        assert!(facts.stripped, "Debian ships stripped programs");
        assert!(!facts.debug_info);
        assert_eq!(facts.size, std::fs::metadata(path).unwrap().len());

        // Newer than provided.al2's glibc 2.26.
        let findings = check_binary(&facts, target(arch, Runtime::ProvidedAl2, Libc::Gnu));
        let glibc = findings
            .iter()
            .find(|f| f.code == "glibc-too-new")
            .expect("glibc-too-new");
        let needs = facts.max_glibc.unwrap();
        let expected = if needs <= GlibcVersion::new(2, 34) {
            format!(
                "needs GLIBC_{needs}, provided.al2 has 2.26; it is pinned for provided.al2023 (glibc 2.34): pack it for provided.al2 (`--runtime provided.al2` pins glibc 2.26), or build for musl"
            )
        } else {
            format!(
                "needs GLIBC_{needs}, provided.al2 has 2.26, no Lambda runtime has {needs} (linked against the build host's glibc): use --compiler zig or musl"
            )
        };
        assert_eq!(glibc.help, expected);
        assert_eq!(
            glibc.lambda_error.as_deref().unwrap(),
            format!(
                "version `{}' not found (required by /var/task/bootstrap)",
                facts.glibc_versions.last().unwrap()
            )
        );
    }

    // ls also needs libselinux, which no runtime promises.
    let facts = inspect_file(Path::new("/bin/ls")).unwrap();
    assert!(facts.needed.contains(&"libselinux.so.1".to_string()));
    let findings = check_binary(&facts, target(arch, Runtime::ProvidedAl2023, Libc::Gnu));
    let missing: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.code == "missing-library")
        .collect();
    assert_eq!(missing.len(), 1, "{findings:#?}");
    assert_eq!(
        missing[0].lambda_error.as_deref(),
        Some(
            "error while loading shared libraries: libselinux.so.1: cannot open shared object \
             file: No such file or directory"
        )
    );
}

#[test]
fn static_musl_x86_64_fits_every_runtime() {
    let built = built();
    let facts = inspect_file(&built.musl_x86_64).unwrap();
    assert_eq!(facts.elf_class, 64);
    assert_eq!(facts.machine, 62);
    assert_eq!(facts.arch, Some(Arch::X86_64));
    // rustc links musl programs as static-pie.
    assert_eq!(facts.kind, ElfKind::PieExecutable);
    assert_eq!(facts.linkage, Linkage::Static);
    assert_eq!(facts.interpreter, None);
    assert_eq!(facts.needed, Vec::<String>::new());
    assert_eq!(facts.max_glibc, None);
    assert_eq!(facts.glibc_versions, Vec::<String>::new());
    assert_eq!(facts.libc, Some(Libc::Musl));
    assert!(
        facts
            .libc_evidence
            .as_deref()
            .unwrap()
            .starts_with("symbol ")
    );
    assert!(!facts.stripped);

    for runtime in Runtime::ALL {
        let findings = check_binary(&facts, target(Arch::X86_64, runtime, Libc::Musl));
        assert!(errors(&findings).is_empty(), "{findings:#?}");
        // A glibc target gets only a warning: the binary still runs.
        let findings = check_binary(&facts, target(Arch::X86_64, runtime, Libc::Gnu));
        assert!(errors(&findings).is_empty(), "{findings:#?}");
        assert!(codes(&findings).contains(&"unexpected-libc"));
    }

    let stripped = inspect_file(&built.musl_x86_64_stripped).unwrap();
    assert!(stripped.stripped);
    assert!(!stripped.debug_info);
    assert_eq!(stripped.linkage, Linkage::Static);
    assert!(stripped.size < facts.size);
    // Nothing certain is left to tell musl apart.
    assert_eq!(stripped.libc, None);
    let findings = check_binary(
        &stripped,
        target(Arch::X86_64, Runtime::ProvidedAl2, Libc::Musl),
    );
    assert_eq!(findings, Vec::new());
}

#[test]
fn aarch64_binary_is_machine_183_and_wrong_on_x86_64() {
    let facts = inspect_file(&built().musl_aarch64).unwrap();
    assert_eq!(facts.machine, 183);
    assert_eq!(facts.machine_name, "EM_AARCH64");
    assert_eq!(facts.arch, Some(Arch::Arm64));
    assert_eq!(facts.linkage, Linkage::Static);
    assert!(facts.kind.is_executable());
    assert_eq!(facts.libc, Some(Libc::Musl));

    let findings = check_binary(
        &facts,
        target(Arch::Arm64, Runtime::ProvidedAl2023, Libc::Musl),
    );
    assert!(errors(&findings).is_empty(), "{findings:#?}");

    let findings = check_binary(
        &facts,
        target(Arch::X86_64, Runtime::ProvidedAl2023, Libc::Musl),
    );
    let errors = errors(&findings);
    assert_eq!(errors.len(), 1, "{findings:#?}");
    assert_eq!(errors[0].code, "wrong-architecture");
    assert_eq!(errors[0].lambda_error.as_deref(), Some("exec format error"));
    assert!(errors[0].message.contains("arm64 (e_machine 183)"));
    assert!(errors[0].message.contains("x86_64 (e_machine 62)"));
}

#[test]
fn glibc_2_36_binary_is_too_new_for_al2023() {
    let facts = inspect_file(&built().glibc_2_36).unwrap();
    assert_eq!(facts.max_glibc, Some(GlibcVersion::new(2, 36)));
    assert_eq!(facts.glibc_versions.last().unwrap(), "GLIBC_2.36");
    assert_glibc_versions_sorted(&facts);
    let findings = check_binary(
        &facts,
        target(host_arch(), Runtime::ProvidedAl2023, Libc::Gnu),
    );
    assert_eq!(codes(&findings), ["glibc-too-new"]);
    assert_eq!(
        findings[0].help,
        "needs GLIBC_2.36, provided.al2023 has 2.34, no Lambda runtime has 2.36 (linked against the build host's glibc): use --compiler zig or musl"
    );
    assert_eq!(
        findings[0].lambda_error.as_deref(),
        Some("version `GLIBC_2.36' not found (required by /var/task/bootstrap)")
    );
}

#[test]
fn static_glibc_is_recognised() {
    let facts = inspect_file(&built().glibc_static).unwrap();
    assert_eq!(facts.kind, ElfKind::Executable);
    assert_eq!(facts.linkage, Linkage::Static);
    assert_eq!(facts.interpreter, None);
    assert!(facts.needed.is_empty());
    assert_eq!(facts.libc, Some(Libc::Gnu));
    let findings = check_binary(&facts, target(host_arch(), Runtime::ProvidedAl2, Libc::Gnu));
    assert!(errors(&findings).is_empty(), "{findings:#?}");
}

#[test]
fn musl_loader_means_dynamic_musl() {
    let facts = inspect_file(&built().musl_interpreter).unwrap();
    assert_eq!(
        facts.interpreter.as_deref(),
        Some("/lib/ld-musl-x86_64.so.1")
    );
    assert_eq!(facts.libc, Some(Libc::Musl));
    assert_eq!(facts.linkage, Linkage::Dynamic);
    let findings = check_binary(
        &facts,
        target(host_arch(), Runtime::ProvidedAl2023, Libc::Musl),
    );
    assert_eq!(codes(&findings), ["dynamic-musl"]);
    assert_eq!(
        findings[0].lambda_error.as_deref(),
        Some("fork/exec /var/task/bootstrap: no such file or directory")
    );
}

#[test]
fn shared_objects_report_their_soname() {
    let arch = host_arch();
    let libz = PathBuf::from(format!("/usr/lib/{}-linux-gnu/libz.so.1", arch.rust_arch()));
    let facts = inspect_file(&libz).unwrap();
    assert_eq!(facts.kind, ElfKind::SharedObject);
    assert_eq!(facts.soname.as_deref(), Some("libz.so.1"));
    assert_eq!(facts.needed, ["libc.so.6"]);
    assert_eq!(facts.interpreter, None);
    assert_eq!(facts.linkage, Linkage::Dynamic);
    assert_eq!(facts.libc, Some(Libc::Gnu));
    assert_eq!(facts.machine, arch.elf_machine());

    // As a bootstrap it cannot run; as a library in a layer it is fine on al2023.
    let findings = check_binary(&facts, target(arch, Runtime::ProvidedAl2023, Libc::Gnu));
    assert_eq!(codes(&findings), ["not-executable-elf"]);
    let mut layer = target(arch, Runtime::ProvidedAl2023, Libc::Gnu);
    layer.role_path = "/opt/lib/libz.so.1".to_string();
    assert!(errors(&check_binary(&facts, layer)).is_empty());

    let built = built();
    let demo = inspect_file(&built.demo_library).unwrap();
    assert_eq!(demo.kind, ElfKind::SharedObject);
    assert_eq!(demo.soname.as_deref(), Some("libpackdemo.so.1"));
}

#[test]
fn unpromised_library_is_a_missing_library() {
    let built = built();
    let facts = inspect_file(&built.needs_demo_library).unwrap();
    assert_eq!(facts.needed, ["libpackdemo.so.1", "libc.so.6"]);
    assert_eq!(facts.needed, readelf_needed(&built.needs_demo_library));
    for runtime in Runtime::ALL {
        let findings = check_binary(&facts, target(host_arch(), runtime, Libc::Gnu));
        // Any program gcc links on this glibc 2.36 host needs GLIBC_2.34
        // (`__libc_start_main`): newer than provided.al2's 2.26. The loader reports the missing
        // library first.
        let expected: &[&str] = match runtime {
            Runtime::ProvidedAl2023 => &["missing-library"],
            Runtime::ProvidedAl2 => &["missing-library", "glibc-too-new"],
        };
        assert_eq!(codes(&findings), expected, "{runtime}");
        assert!(findings[0].message.contains("libpackdemo.so.1"));
        assert_eq!(
            findings[0].lambda_error.as_deref(),
            Some(
                "error while loading shared libraries: libpackdemo.so.1: cannot open shared \
                 object file: No such file or directory"
            )
        );
    }
}

#[test]
fn non_elf_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "just some text\n").unwrap();
    let error = inspect_file(&text).unwrap_err();
    assert!(matches!(error, InspectError::NotElf { .. }), "{error}");
    assert_eq!(error.path(), Some(text.as_path()));
    assert_eq!(
        error.to_string(),
        format!(
            "`{}` is not an ELF binary: it looks like a text file",
            text.display()
        )
    );

    let empty = dir.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    let error = inspect_file(&empty).unwrap_err();
    assert!(matches!(error, InspectError::Empty { .. }), "{error}");
    assert!(error.to_string().contains(&empty.display().to_string()));

    let script = dir.path().join("bootstrap");
    std::fs::write(&script, "#!/bin/sh\nexec ./app\n").unwrap();
    let error = inspect_file(&script).unwrap_err();
    assert!(error.to_string().contains("script"), "{error}");

    let missing = dir.path().join("nope");
    let error = inspect_file(&missing).unwrap_err();
    assert!(matches!(error, InspectError::Read { .. }), "{error}");
    assert!(error.to_string().contains("nope"), "{error}");

    // Not a regular file: refused by what it is, on the open descriptor.
    let error = inspect_file(dir.path()).unwrap_err();
    assert!(
        matches!(
            error,
            InspectError::NotRegular {
                what: "a directory",
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(error.path(), Some(dir.path()));
    let error = inspect_file(Path::new("/dev/zero")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "`/dev/zero` is a character device, not a regular file"
    );
}

#[test]
fn truncated_elf_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    for source in [Path::new("/bin/ls"), built().musl_x86_64.as_path()] {
        let bytes = std::fs::read(source).unwrap();
        for length in [100, 5000, bytes.len() / 2, bytes.len() - 1] {
            let cut = dir.path().join(format!("cut-{length}"));
            std::fs::write(&cut, &bytes[..length]).unwrap();
            let error = inspect_file(&cut).unwrap_err();
            assert!(
                matches!(error, InspectError::Malformed { .. }),
                "{length}: {error}"
            );
            let message = error.to_string();
            assert!(
                message.contains(&format!(
                    "`{}` is a truncated or malformed ELF file",
                    cut.display()
                )),
                "{message}"
            );
        }
        // Every prefix fails cleanly, none panics.
        let mut length = 0;
        while length < bytes.len() {
            assert!(inspect_bytes(&bytes[..length]).is_err(), "{length}");
            length += if length < 8192 { 7 } else { 4099 };
        }
        assert!(inspect_bytes(&bytes).is_ok());
    }
}

#[test]
fn corrupted_elf_files_never_panic() {
    let original = std::fs::read("/bin/ls").unwrap();
    // Deterministic xorshift so a failure reproduces.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let header_end = 4096.min(original.len());
    for _ in 0..3000 {
        let mut bytes = original.clone();
        for _ in 0..1 + next() % 8 {
            // Mostly the headers and tables at the start, sometimes anywhere.
            let at = if next() % 4 == 0 {
                (next() as usize) % bytes.len()
            } else {
                4 + (next() as usize) % (header_end - 4)
            };
            bytes[at] = next() as u8;
        }
        let _ = inspect_bytes(&bytes);
    }
}

#[test]
fn binaries_without_section_headers_are_read_through_segments() {
    // What `sstrip` leaves: no section header table, so only the program headers remain.
    let musl = std::fs::read(&built().musl_x86_64).unwrap();
    for bytes in [std::fs::read("/bin/ls").unwrap(), musl] {
        let original = inspect_bytes(&bytes).unwrap();
        let mut headless = bytes.clone();
        // ELF64: e_shoff at 0x28 (8 bytes), e_shnum at 0x3c, e_shstrndx at 0x3e (2 bytes each).
        headless[0x28..0x30].fill(0);
        headless[0x3c..0x40].fill(0);
        let facts = inspect_bytes(&headless).unwrap();
        assert_eq!(facts.needed, original.needed);
        assert_eq!(facts.soname, original.soname);
        assert_eq!(facts.glibc_versions, original.glibc_versions);
        assert_eq!(facts.max_glibc, original.max_glibc);
        assert_eq!(facts.kind, original.kind);
        assert_eq!(facts.linkage, original.linkage);
        assert_eq!(facts.interpreter, original.interpreter);
        assert!(facts.stripped);
        assert!(!facts.debug_info);
    }
}

#[test]
fn facts_serialize_to_json() {
    let facts = inspect_file(Path::new("/bin/ls")).unwrap();
    let json = serde_json::to_value(&facts).unwrap();
    assert_eq!(json["elf_class"], 64);
    assert_eq!(json["machine"], host_arch().elf_machine());
    assert_eq!(json["kind"], "pie_executable");
    assert_eq!(json["linkage"], "dynamic");
    assert_eq!(json["libc"], "gnu");
    assert_eq!(json["stripped"], true);
    assert!(
        json["needed"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("libc.so.6"))
    );
    assert!(
        json["glibc_versions"][0]
            .as_str()
            .unwrap()
            .starts_with("GLIBC_")
    );
}
