//! ELF inspector: arbitrary bytes into `inspect_bytes`; whatever it returns goes through
//! `check_binary` for every architecture, runtime, libc and role. Nothing may panic.
#![no_main]

use cargo_lambda_pack::{Arch, Libc, Runtime};
use cargo_lambda_pack::{CheckTarget, check_binary, inspect_bytes};
use libfuzzer_sys::fuzz_target;

const ROLE_PATHS: [&str; 3] = [
    "/var/task/bootstrap",
    "/opt/extensions/telemetry",
    "/opt/lib/libfoo.so.1",
];

fuzz_target!(|data: &[u8]| {
    let Ok(facts) = inspect_bytes(data) else {
        return;
    };
    assert_eq!(
        facts.size,
        data.len() as u64,
        "size must be the input's length"
    );
    assert!(facts.elf_class == 32 || facts.elf_class == 64);
    let _ = facts.max_glibc_name();
    let _ = serde_json::to_string(&facts).expect("facts serialize");
    for arch in Arch::ALL {
        for runtime in Runtime::ALL {
            for libc in [Libc::Gnu, Libc::Musl] {
                for role_path in ROLE_PATHS {
                    let findings = check_binary(
                        &facts,
                        CheckTarget {
                            arch,
                            runtime,
                            libc,
                            role_path: role_path.to_string(),
                            host_linker: false,
                        },
                    );
                    for finding in &findings {
                        assert!(!finding.code.is_empty());
                        assert!(!finding.message.is_empty());
                    }
                    let _ = serde_json::to_string(&findings).expect("findings serialize");
                }
            }
        }
    }
});
