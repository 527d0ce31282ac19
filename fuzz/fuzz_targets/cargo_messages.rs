//! cargo's JSON message stream: the first byte picks the Rust target, the rest is fed to
//! `parse_messages` as cargo's stdout. Every binary it returns must belong to a known package
//! and carry the target it was asked for.
#![no_main]

use std::collections::BTreeMap;

use cargo_lambda_pack::parse_messages;
use cargo_lambda_pack::{Arch, Libc, RustTarget};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, stream)) = data.split_first() else {
        return;
    };
    let arch = if selector & 1 == 0 {
        Arch::X86_64
    } else {
        Arch::Arm64
    };
    let libc = if selector & 2 == 0 {
        Libc::Gnu
    } else {
        Libc::Musl
    };
    let target = RustTarget::new(arch, libc);
    let packages: BTreeMap<String, String> = [
        ("path+file:///ws/fn-x86#0.1.0", "fn-x86"),
        ("path+file:///ws/shared#0.1.0", "shared"),
        ("path+file:///ws/tools-layer#0.1.0", "tools-layer"),
        ("fn-x86 0.1.0 (path+file:///ws/fn-x86)", "fn-x86"),
    ]
    .into_iter()
    .map(|(id, name)| (id.to_string(), name.to_string()))
    .collect();
    let mut seen = 0usize;
    if let Ok(built) = parse_messages(stream, &packages, target, |_name| seen += 1) {
        assert!(
            built.len() <= seen,
            "more binaries than compiler-artifact messages"
        );
        for binary in &built {
            assert!(packages.values().any(|name| *name == binary.package));
            assert_eq!(binary.target, target);
        }
    }
});
