//! sccache as the build cache runners share: two packs of `fixtures/basic` (dependency-free; its
//! `shared` library crate is what sccache can cache, bins are never cached) into two clean
//! target directories with `RUSTC_WRAPPER=sccache` and one cache directory, with plain cargo and
//! with zig (through cargo-zigbuild's wrappers). The second hits the cache, by sccache's own
//! statistics, and writes byte-identical ZIPs (read with `sha256sum`; symbols are not stripped, so
//! that a change of cargo's `-C metadata` hashes would show), the same bytes as a pack without
//! sccache by the tool at another path. Once more with the wrapper
//! set only as `build.rustc-wrapper` in the workspace's `.cargo/config.toml`, which the
//! dependency-list wrapper must find as it finds `RUSTC_WRAPPER`.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

/// A private sccache server: its own cache directory and a free loopback port, stopped on drop.
struct Sccache {
    dir: tempfile::TempDir,
    port: u16,
}

impl Sccache {
    fn start() -> Sccache {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Sccache {
            dir: tempfile::tempdir().unwrap(),
            port,
        }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = self.server_env();
        env.push(("RUSTC_WRAPPER", "sccache".into()));
        env
    }

    /// Where the server is, without naming sccache as the wrapper.
    fn server_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("SCCACHE_DIR", self.dir.path().display().to_string()),
            ("SCCACHE_SERVER_PORT", self.port.to_string()),
        ]
    }

    fn command(&self, arg: &str) -> Command {
        let mut command = Command::new("sccache");
        command.arg(arg).envs(self.env());
        command
    }

    /// `Cache hits` from `sccache --show-stats`.
    fn hits(&self) -> u64 {
        let output = self.command("--show-stats").output().expect("run sccache");
        let stats = String::from_utf8_lossy(&output.stdout).into_owned();
        stats
            .lines()
            .find_map(|line| line.strip_prefix("Cache hits "))
            .and_then(|rest| rest.trim().parse().ok())
            .unwrap_or_else(|| panic!("no `Cache hits` in sccache's statistics:\n{stats}"))
    }
}

impl Drop for Sccache {
    fn drop(&mut self) {
        let _ = self.command("--stop-server").output();
    }
}

fn sha256sum(path: &Path) -> String {
    let output = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8(output.stdout).unwrap()[..64].to_string()
}

/// Where the wrapper is set: `RUSTC_WRAPPER`, or only the workspace's cargo configuration.
enum WrapperIn {
    Environment,
    ConfigFile,
}

/// Packs twice with `compiler`, each into a clean target directory, sharing one cache.
fn second_clean_target_dir_hits_the_cache(compiler: &str, wrapper_in: WrapperIn) {
    let fixture = Fixture::copy("basic");
    // Symbols kept, so that the bytes show any change of cargo's `-C metadata` hashes.
    let manifest = fixture.path().join("Cargo.toml");
    let toml = std::fs::read_to_string(&manifest).unwrap();
    assert!(toml.contains("strip = true"), "{toml}");
    std::fs::write(&manifest, toml.replace("strip = true", "strip = false")).unwrap();
    let cache = Sccache::start();
    let env = match wrapper_in {
        WrapperIn::Environment => cache.env(),
        WrapperIn::ConfigFile => {
            let dir = fixture.path().join(".cargo");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(
                dir.join("config.toml"),
                "[build]\nrustc-wrapper = \"sccache\"\n",
            )
            .unwrap();
            cache.server_env()
        }
    };
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut zips = Vec::new();
    let mut hits = Vec::new();
    for run in ["first", "second"] {
        let target = fixture.path().join(format!("target-{run}"));
        let out = fixture.path().join(format!("out-{run}"));
        let args = [
            "--compiler",
            compiler,
            "-p",
            "fn-x86",
            "--target-dir",
            target.to_str().unwrap(),
            "--out-dir",
            out.to_str().unwrap(),
        ];
        // The zig setup is remembered per target directory: each clean one sets zig up again,
        // with the wrapper in its environment.
        fixture.pack_with_env(&args, &env).assert_success();
        hits.push(cache.hits());
        zips.push(sha256sum(&out.join("x86_64/fn-x86.zip")));
    }
    assert_eq!(hits[0], 0, "a cold cache has nothing to hit");
    assert!(
        hits[1] > 0,
        "the second target directory missed the cache: {hits:?}"
    );
    assert_eq!(
        zips[0], zips[1],
        "built through the cache, the ZIP has other bytes"
    );
    if matches!(wrapper_in, WrapperIn::Environment) {
        // Without sccache, and with the tool at another path (installed elsewhere on another
        // runner): the same bytes, so shards built either way merge.
        let elsewhere = fixture.path().join("bin/cargo-lambda-pack");
        std::fs::create_dir_all(elsewhere.parent().unwrap()).unwrap();
        let exe = env!("CARGO_BIN_EXE_cargo-lambda-pack");
        if std::fs::hard_link(exe, &elsewhere).is_err() {
            std::fs::copy(exe, &elsewhere).unwrap();
        }
        let target = fixture.path().join("target-plain");
        let out = fixture.path().join("out-plain");
        let command = lambda_pack();
        let mut plain = Command::new(&elsewhere);
        plain
            .args(command.get_args())
            .args(["--compiler", compiler, "-p", "fn-x86", "--target-dir"])
            .arg(&target)
            .arg("--out-dir")
            .arg(&out)
            .current_dir(fixture.path())
            .env_remove("RUSTC_WRAPPER");
        for (key, value) in command.get_envs() {
            match value {
                Some(value) => plain.env(key, value),
                None => plain.env_remove(key),
            };
        }
        Run::new_from(plain.output().unwrap()).assert_success();
        assert_eq!(
            sha256sum(&out.join("x86_64/fn-x86.zip")),
            zips[0],
            "without sccache, from another path, the unstripped ZIP has other bytes"
        );
    }
    // The dependency list is linked in with sccache in front of rustc too.
    let unzipped = fixture.path().join("unzipped");
    let status = Command::new("unzip")
        .args(["-q", "-o"])
        .arg(fixture.path().join("out-second/x86_64/fn-x86.zip"))
        .arg("bootstrap")
        .arg("-d")
        .arg(&unzipped)
        .status()
        .expect("unzip");
    assert!(status.success());
    let audit = Command::new("rust-audit-info")
        .arg(unzipped.join("bootstrap"))
        .output()
        .expect("rust-audit-info (scripts/setup.sh installs it)");
    let list = String::from_utf8_lossy(&audit.stdout);
    assert!(
        audit.status.success() && list.contains("\"name\":\"fn-x86\""),
        "no dependency list in a bootstrap built through sccache: {list} {}",
        String::from_utf8_lossy(&audit.stderr)
    );
}

#[test]
fn with_cargo_a_second_clean_target_dir_hits_the_shared_cache_and_packs_the_same_bytes() {
    second_clean_target_dir_hits_the_cache("cargo", WrapperIn::Environment);
}

#[test]
fn with_zig_a_second_clean_target_dir_hits_the_shared_cache_and_packs_the_same_bytes() {
    second_clean_target_dir_hits_the_cache("zig", WrapperIn::Environment);
}

#[test]
fn build_rustc_wrapper_in_a_cargo_config_file_is_run_by_the_dependency_list_wrapper() {
    second_clean_target_dir_hits_the_cache("cargo", WrapperIn::ConfigFile);
}
