use super::*;
use crate::target::Arch;

fn file(path: &str, text: &str) -> ConfigFile {
    ConfigFile {
        path: PathBuf::from(path),
        table: text.parse().unwrap(),
    }
}

const X86_GNU: RustTarget = RustTarget {
    arch: Arch::X86_64,
    libc: Libc::Gnu,
};

fn all_flags(sources: &[FlagSource]) -> Vec<String> {
    sources.iter().flat_map(|s| s.flags.clone()).collect()
}

#[test]
fn environment_wins_over_configuration_as_in_cargo() {
    let files = [file(
        "/w/.cargo/config.toml",
        "[build]\nrustflags = [\"-Ctarget-cpu=native\"]\n",
    )];
    let flags = resolve(X86_GNU, &files, |name| {
        (name == "RUSTFLAGS").then(|| "-C opt-level=3".to_string())
    });
    assert_eq!(all_flags(&flags.rustflags), ["-C", "opt-level=3"]);
    assert_eq!(flags.rustflags[0].origin, "RUSTFLAGS");
    let encoded = resolve(X86_GNU, &files, |name| match name {
        "CARGO_ENCODED_RUSTFLAGS" => Some("-C\x1ftarget-cpu=native".into()),
        "RUSTFLAGS" => Some("-Ctarget-cpu=x86-64".into()),
        _ => None,
    });
    assert_eq!(all_flags(&encoded.rustflags), ["-C", "target-cpu=native"]);
    let config = resolve(X86_GNU, &files, |_| None);
    assert_eq!(all_flags(&config.rustflags), ["-Ctarget-cpu=native"]);
    assert!(
        config.rustflags[0]
            .origin
            .contains("[build] rustflags in `/w/.cargo/config.toml`")
    );
}

#[test]
fn target_tables_replace_build_rustflags_and_cfg_keys_are_evaluated() {
    let files = [
        file(
            "/home/u/.cargo/config.toml",
            "[build]\nrustflags = \"-Cdebuginfo=1\"\n",
        ),
        file(
            "/w/.cargo/config.toml",
            "[target.'cfg(all(target_arch = \"x86_64\", target_os = \"linux\"))']\nrustflags = [\"-Ctarget-cpu=native\"]\n\
             [target.'cfg(target_arch = \"aarch64\")']\nrustflags = [\"-Ctarget-cpu=neoverse-v1\"]\n\
             [target.x86_64-unknown-linux-gnu]\nrustflags = [\"-Cforce-frame-pointers\"]\n",
        ),
    ];
    let flags = resolve(X86_GNU, &files, |_| None);
    let mut joined = all_flags(&flags.rustflags);
    joined.sort();
    assert_eq!(joined, ["-Cforce-frame-pointers", "-Ctarget-cpu=native"]);
    let arm = resolve(
        RustTarget {
            arch: Arch::Arm64,
            libc: Libc::Musl,
        },
        &files,
        |_| None,
    );
    assert_eq!(all_flags(&arm.rustflags), ["-Ctarget-cpu=neoverse-v1"]);
    let musl_only = RustTarget {
        arch: Arch::X86_64,
        libc: Libc::Musl,
    };
    assert!(cfg_matches("cfg(target_env = \"musl\")", musl_only));
    assert!(!cfg_matches("cfg(target_env = \"musl\")", X86_GNU));
    assert!(cfg_matches("cfg(not(windows))", X86_GNU));
    assert!(cfg_matches("cfg(unix)", X86_GNU));
    assert!(!cfg_matches(
        "cfg(any(windows, target_os = \"macos\"))",
        X86_GNU
    ));
}

#[test]
fn c_flags_come_from_cc_variables_and_cargo_env_table() {
    let files = [file(
        "/w/.cargo/config.toml",
        "[env]\nCFLAGS = { value = \"-O2 -march=native\", force = true }\n",
    )];
    let flags = resolve(X86_GNU, &files, |name| {
        (name == "CFLAGS_x86_64_unknown_linux_gnu").then(|| "-mcpu=native".to_string())
    });
    let origins: Vec<&str> = flags.cflags.iter().map(|s| s.origin.as_str()).collect();
    assert_eq!(
        origins,
        [
            "CFLAGS_x86_64_unknown_linux_gnu",
            "[env] CFLAGS in `/w/.cargo/config.toml`"
        ]
    );
    assert_eq!(flags.cflags[1].flags, ["-O2", "-march=native"]);
}

#[test]
fn files_are_found_from_the_root_down_nearest_last() {
    let dir = tempfile::tempdir().unwrap();
    let inner = dir.path().join("a/b");
    std::fs::create_dir_all(inner.join(".cargo")).unwrap();
    std::fs::create_dir_all(dir.path().join("a/.cargo")).unwrap();
    std::fs::write(inner.join(".cargo/config.toml"), "").unwrap();
    std::fs::write(dir.path().join("a/.cargo/config"), "").unwrap();
    std::fs::write(dir.path().join("a/.cargo/config.toml"), "").unwrap();
    let files = config_files(&inner);
    let ours: Vec<&PathBuf> = files.iter().filter(|f| f.starts_with(dir.path())).collect();
    assert_eq!(
        ours,
        [
            &dir.path().join("a/.cargo/config"),
            &inner.join(".cargo/config.toml")
        ]
    );
}
