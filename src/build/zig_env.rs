//! cargo-zigbuild's environment for one zig target, remembered between runs.
//!
//! Setting zig up costs several times a no-op `cargo build`, every run and every target:
//! cargo-zigbuild asks `rustc -vV` and `zig version`, writes its wrapper scripts, then runs
//! `zig cc -E -v` and `zig c++ -E -v` through those wrappers (each again asking `rustc -vV`) to
//! hand zig's include paths to bindgen. What comes out is a set of environment variables for
//! cargo (`CC_<target>`, `CARGO_TARGET_<TARGET>_LINKER`, `BINDGEN_EXTRA_CLANG_ARGS_<target>`, ...).
//! Those must come out the same every run anyway, since cargo fingerprints them (build scripts'
//! `rerun-if-env-changed`), so they are kept in the target directory and reused while
//! everything they are derived from is unchanged: the [`key`] hashes all of it, and the files
//! they name (the wrapper scripts) must still exist.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Bumped whenever what is hashed or stored changes meaning.
const FORMAT: u32 = 1;

/// Prefixes (and whole names) of the environment variables that can change cargo-zigbuild's setup:
/// what it reads itself (`CARGO_ZIGBUILD_*`, `CC_*`, `CXX_*`, `AR_*`, `RANLIB_*`, `CMAKE_*`,
/// `BINDGEN_EXTRA_CLANG_ARGS*`, `SDKROOT`, `MACOSX_DEPLOYMENT_TARGET`, `PKG_CONFIG_SYSROOT_DIR`,
/// `MSYSTEM`, `OHOS_NDK_HOME`), cargo's configuration through the environment (`CARGO_*`,
/// `RUSTFLAGS`), which rustc and zig run (`PATH`, `RUST*`, `ZIG_*`), what clang reads while zig
/// probes its include paths (`CPATH`, `C_INCLUDE_PATH`, ...), and where the wrappers are
/// written (`HOME`, `XDG_CACHE_HOME`). Everything else is left out on purpose, so that
/// variables that change on every invocation (a CI job's id, a benchmark harness's padding)
/// do not force the setup again.
const SETUP_VARIABLES: &[&str] = &[
    "AR",
    "BINDGEN",
    "CARGO",
    "CC",
    "CFLAGS",
    "CMAKE",
    "CPATH",
    "CPLUS_INCLUDE_PATH",
    "CXX",
    "C_INCLUDE_PATH",
    "HOME",
    "HOST_",
    "LIBRARY_PATH",
    "MACOSX",
    "MSYSTEM",
    "OBJC_INCLUDE_PATH",
    "OHOS",
    "PATH",
    "PKG_CONFIG",
    "RANLIB",
    "RUST",
    "SDKROOT",
    "TARGET_",
    "XDG_CACHE_HOME",
    "ZIG",
];

/// Variables that match [`SETUP_VARIABLES`] but only describe this invocation (cargo's jobserver).
const INVOCATION_VARIABLES: &[&str] = &["CARGO_MAKEFLAGS"];

fn affects_setup(name: &std::ffi::OsStr) -> bool {
    let Some(name) = name.to_str() else {
        return true;
    };
    SETUP_VARIABLES
        .iter()
        .any(|prefix| name.starts_with(prefix))
        && !INVOCATION_VARIABLES.contains(&name)
}

/// What one target's setup produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    /// [`key`] of the inputs it was made from.
    key: String,
    /// Variables set on the cargo command.
    set: BTreeMap<String, String>,
    /// Variables removed from the cargo command's environment.
    removed: Vec<String>,
    /// Files the variables name (wrapper scripts, CMake toolchain files); all must still exist.
    files: Vec<PathBuf>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct CacheFile {
    format: u32,
    /// By zig target (`x86_64-unknown-linux-gnu.2.34`).
    targets: BTreeMap<String, Entry>,
}

/// The remembered environments, read once per run and written back when one changed.
#[derive(Debug)]
pub struct ZigEnvCache {
    path: PathBuf,
    file: CacheFile,
    changed: bool,
}

impl ZigEnvCache {
    /// Reads the cache at `path`; a missing, unreadable or older-format file is an empty cache.
    pub fn load(path: PathBuf) -> ZigEnvCache {
        let file = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<CacheFile>(&bytes).ok())
            .filter(|file| file.format == FORMAT)
            .unwrap_or_default();
        ZigEnvCache {
            path,
            file,
            changed: false,
        }
    }

    /// The cargo command for `build` linked by zig for `zig_target`: cargo-zigbuild's own
    /// environment, remembered when `key` matches, set up by cargo-zigbuild (and remembered)
    /// otherwise.
    pub fn command(
        &mut self,
        build: cargo_options::Build,
        zig_target: &str,
        key: &str,
    ) -> anyhow::Result<Command> {
        if let Some(entry) = self.remembered(zig_target, key) {
            let mut command = build.command();
            apply(&mut command, entry);
            return Ok(command);
        }
        let (command, entry) = set_up(build, key)?;
        if let Some(entry) = entry {
            self.file.targets.insert(zig_target.to_string(), entry);
            self.changed = true;
        }
        Ok(command)
    }

    /// The entry for `zig_target` if it was made from the same inputs and its files still exist.
    fn remembered(&self, zig_target: &str, key: &str) -> Option<&Entry> {
        self.file
            .targets
            .get(zig_target)
            .filter(|entry| entry.key == key && entry.files.iter().all(|file| file.is_file()))
    }

    /// Writes the cache back if a target was set up in this run. Best effort: a cache that
    /// cannot be written only costs the next run the setup again.
    pub fn save(&mut self) {
        if !std::mem::take(&mut self.changed) {
            return;
        }
        self.file.format = FORMAT;
        // Temp file then rename: a concurrent reader sees the old file or the new one, never half.
        if let Ok(bytes) = serde_json::to_vec_pretty(&self.file) {
            crate::cache::remember(&self.path, &bytes);
        }
    }
}

fn apply(command: &mut Command, entry: &Entry) {
    for (name, value) in &entry.set {
        command.env(name, value);
    }
    for name in &entry.removed {
        command.env_remove(name);
    }
}

/// Runs cargo-zigbuild's setup and captures what it did, as an [`Entry`] when every variable is
/// valid UTF-8 (otherwise the command is still returned, and nothing is remembered).
///
/// cargo-zigbuild puts most variables on the command but sets bindgen's in this process's own
/// environment. Those are moved onto the command and taken back out of the process, so one
/// target's variables do not leak into the next target's build, and a run that reuses remembered
/// variables starts cargo with exactly the environment a fresh setup would.
fn set_up(build: cargo_options::Build, key: &str) -> anyhow::Result<(Command, Option<Entry>)> {
    let before: BTreeMap<OsString, OsString> = std::env::vars_os().collect();
    let result = cargo_zigbuild::Build {
        cargo: build,
        ..Default::default()
    }
    .build_command();
    let after: BTreeMap<OsString, OsString> = std::env::vars_os().collect();
    let mut moved = Vec::new();
    for (name, value) in &after {
        if before.get(name) != Some(value) {
            moved.push((name.clone(), Some(value.clone())));
        }
    }
    for name in before.keys().filter(|name| !after.contains_key(*name)) {
        moved.push((name.clone(), None));
    }
    for (name, _) in &moved {
        // SAFETY: the build runs from the main thread while no other thread is running (the
        // progress and stderr threads start after the command is made), and cargo-zigbuild
        // itself has just written these variables the same way.
        unsafe {
            match before.get(name) {
                Some(value) => std::env::set_var(name, value),
                None => std::env::remove_var(name),
            }
        }
    }
    let mut command = result?;
    for (name, value) in &moved {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }

    let mut entry = Entry {
        key: key.to_string(),
        set: BTreeMap::new(),
        removed: Vec::new(),
        files: Vec::new(),
    };
    for (name, value) in command.get_envs() {
        let Some(name) = name.to_str() else {
            return Ok((command, None));
        };
        match value {
            Some(value) => {
                let Some(value) = value.to_str() else {
                    return Ok((command, None));
                };
                entry.files.extend(super::named_file(value));
                entry.set.insert(name.to_string(), value.to_string());
            }
            None => entry.removed.push(name.to_string()),
        }
    }
    entry.files.sort();
    entry.files.dedup();
    Ok((command, Some(entry)))
}

/// What cargo-zigbuild's setup for one zig target depends on, hashed.
pub struct KeyInputs<'a> {
    pub zig_target: &'a str,
    /// `--manifest-path`, which cargo-zigbuild reads.
    pub manifest_path: Option<&'a Path>,
    pub workspace_root: &'a Path,
    /// The compiler cargo runs (its version is passed to the wrappers).
    pub rustc: &'a Path,
}

/// The key: this program (the wrappers call it back), the zig target, the directories whose
/// cargo configuration cargo-zigbuild reads, the environment variables in [`SETUP_VARIABLES`],
/// zig, rustc, and the configuration files' contents. Binaries are identified by path, size and
/// modification time, as cargo identifies rustc in its own cache; an update replaces the file.
pub fn key(inputs: &KeyInputs) -> String {
    let mut hasher = Sha256::new();
    let mut field = |name: &str, value: &[u8]| {
        hasher.update(name.as_bytes());
        hasher.update((value.len() as u64).to_le_bytes());
        hasher.update(value);
    };
    field("format", &FORMAT.to_le_bytes());
    field("version", env!("CARGO_PKG_VERSION").as_bytes());
    if let Ok(exe) = std::env::current_exe() {
        field("exe", identity(&exe).as_bytes());
    }
    field("zig-target", inputs.zig_target.as_bytes());
    if let Some(path) = inputs.manifest_path {
        field("manifest-path", path.as_os_str().as_encoded_bytes());
    }
    let current_dir = std::env::current_dir().unwrap_or_default();
    field("cwd", current_dir.as_os_str().as_encoded_bytes());
    let mut variables: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter(|(name, _)| affects_setup(name))
        .collect();
    variables.sort();
    for (name, value) in &variables {
        field("env", name.as_encoded_bytes());
        field("=", value.as_encoded_bytes());
    }
    if let Some(zig) = zig_binary() {
        field("zig", identity(&zig).as_bytes());
    }
    field("rustc", identity(inputs.rustc).as_bytes());
    for config in cargo_config_files(&current_dir, inputs.workspace_root) {
        field("config", config.as_os_str().as_encoded_bytes());
        field("contents", &std::fs::read(&config).unwrap_or_default());
    }
    let digest = hasher.finalize();
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// `path size mtime`, or just the path when it cannot be read.
fn identity(path: &Path) -> String {
    let resolved = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    match std::fs::metadata(&resolved) {
        Ok(metadata) => {
            let modified = metadata
                .modified()
                .ok()
                .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |duration| duration.as_nanos());
            format!("{} {} {modified}", resolved.display(), metadata.len())
        }
        Err(_) => resolved.display().to_string(),
    }
}

/// The zig cargo-zigbuild will run: `CARGO_ZIGBUILD_ZIG_COMMAND` (which
/// [`crate::toolchain::detect_zig`] sets for PyPI's zig), else `zig` on `PATH`.
fn zig_binary() -> Option<PathBuf> {
    if let Some(command) = std::env::var_os("CARGO_ZIGBUILD_ZIG_COMMAND") {
        return Some(PathBuf::from(command));
    }
    let name = std::env::var_os("CARGO_ZIGBUILD_ZIG_PATH").unwrap_or_else(|| "zig".into());
    if Path::new(&name).components().count() > 1 {
        return Some(PathBuf::from(name));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(&name))
        .find(|candidate| candidate.is_file())
}

/// Cargo configuration files that exist, as cargo (and cargo-zigbuild, which reads the same
/// files through `cargo-config2`) finds them: `.cargo/config.toml` and `.cargo/config` in every
/// ancestor of the current directory and of the workspace, and in `$CARGO_HOME`.
fn cargo_config_files(current_dir: &Path, workspace_root: &Path) -> Vec<PathBuf> {
    let mut directories: Vec<PathBuf> = current_dir
        .ancestors()
        .chain(workspace_root.ancestors())
        .map(|dir| dir.join(".cargo"))
        .collect();
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::home_dir().map(|home| home.join(".cargo")));
    directories.extend(cargo_home);
    let mut files = Vec::new();
    for directory in directories {
        for name in ["config.toml", "config"] {
            let file = directory.join(name);
            if file.is_file() && !files.contains(&file) {
                files.push(file);
            }
        }
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs<'a>(zig_target: &'a str, root: &'a Path, rustc: &'a Path) -> KeyInputs<'a> {
        KeyInputs {
            zig_target,
            manifest_path: None,
            workspace_root: root,
            rustc,
        }
    }

    #[test]
    fn key_depends_on_the_target_and_the_compiler() {
        let dir = tempfile::tempdir().unwrap();
        let rustc = dir.path().join("rustc");
        std::fs::write(&rustc, "one").unwrap();
        let x86 = key(&inputs("x86_64-unknown-linux-gnu.2.34", dir.path(), &rustc));
        assert_eq!(
            x86,
            key(&inputs("x86_64-unknown-linux-gnu.2.34", dir.path(), &rustc)),
            "the same inputs give the same key"
        );
        assert_ne!(
            x86,
            key(&inputs("x86_64-unknown-linux-gnu.2.26", dir.path(), &rustc))
        );
        // A compiler update replaces the file: another size.
        std::fs::write(&rustc, "another").unwrap();
        assert_ne!(
            x86,
            key(&inputs("x86_64-unknown-linux-gnu.2.34", dir.path(), &rustc))
        );
    }

    #[test]
    fn key_depends_on_cargo_configuration_in_the_workspace() {
        let dir = tempfile::tempdir().unwrap();
        let rustc = dir.path().join("rustc");
        std::fs::write(&rustc, "rustc").unwrap();
        let before = key(&inputs(
            "aarch64-unknown-linux-gnu.2.26",
            dir.path(),
            &rustc,
        ));
        std::fs::create_dir(dir.path().join(".cargo")).unwrap();
        std::fs::write(
            dir.path().join(".cargo/config.toml"),
            "[target.aarch64-unknown-linux-gnu]\nrustflags = [\"-Ctarget-cpu=neoverse-n1\"]\n",
        )
        .unwrap();
        let with_config = key(&inputs(
            "aarch64-unknown-linux-gnu.2.26",
            dir.path(),
            &rustc,
        ));
        assert_ne!(before, with_config);
        std::fs::write(
            dir.path().join(".cargo/config.toml"),
            "[target.aarch64-unknown-linux-gnu]\nrustflags = [\"-Ctarget-cpu=neoverse-v1\"]\n",
        )
        .unwrap();
        assert_ne!(
            with_config,
            key(&inputs(
                "aarch64-unknown-linux-gnu.2.26",
                dir.path(),
                &rustc
            ))
        );
    }

    #[test]
    fn remembered_environment_needs_its_key_and_its_files() {
        let dir = tempfile::tempdir().unwrap();
        let wrapper = dir.path().join("zigcc.sh");
        std::fs::write(&wrapper, "#!/bin/sh\n").unwrap();
        let path = dir.path().join("cache/zig-env.json");
        let mut cache = ZigEnvCache::load(path.clone());
        cache.file.targets.insert(
            "x86_64-unknown-linux-gnu.2.34".into(),
            Entry {
                key: "k1".into(),
                set: BTreeMap::from([(
                    "CC_x86_64_unknown_linux_gnu".to_string(),
                    wrapper.display().to_string(),
                )]),
                removed: vec!["CARGO_ZIGBUILD_TARGET".into()],
                files: vec![wrapper.clone()],
            },
        );
        cache.changed = true;
        cache.save();

        let mut cache = ZigEnvCache::load(path.clone());
        let build = cargo_options::Build::default();
        let command = cache
            .command(build, "x86_64-unknown-linux-gnu.2.34", "k1")
            .unwrap();
        let envs: Vec<_> = command.get_envs().collect();
        assert!(envs.contains(&(
            std::ffi::OsStr::new("CC_x86_64_unknown_linux_gnu"),
            Some(wrapper.as_os_str())
        )));
        assert!(envs.contains(&(std::ffi::OsStr::new("CARGO_ZIGBUILD_TARGET"), None)));

        assert!(
            cache
                .remembered("x86_64-unknown-linux-gnu.2.34", "k2")
                .is_none()
        );
        assert!(
            cache
                .remembered("aarch64-unknown-linux-gnu.2.34", "k1")
                .is_none()
        );
        // A wrapper script that is gone means the setup runs again.
        std::fs::remove_file(&wrapper).unwrap();
        assert!(
            cache
                .remembered("x86_64-unknown-linux-gnu.2.34", "k1")
                .is_none()
        );
    }

    #[test]
    fn only_variables_that_can_change_the_setup_are_keyed() {
        for name in [
            "CC_x86_64_unknown_linux_gnu",
            "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS",
            "CARGO_ZIGBUILD_ZIG_COMMAND",
            "RUSTFLAGS",
            "PATH",
            "ZIG_LIB_DIR",
            "CPATH",
        ] {
            assert!(affects_setup(name.as_ref()), "{name}");
        }
        for name in [
            "HYPERFINE_RANDOMIZED_ENVIRONMENT_OFFSET",
            "GITHUB_RUN_ID",
            "TERM",
            "CARGO_MAKEFLAGS",
            "SHLVL",
        ] {
            assert!(!affects_setup(name.as_ref()), "{name}");
        }
    }

    #[test]
    fn unreadable_or_older_cache_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("zig-env.json");
        std::fs::write(&path, "{not json").unwrap();
        assert!(ZigEnvCache::load(path.clone()).file.targets.is_empty());
        std::fs::write(&path, r#"{"format": 0, "targets": {}}"#).unwrap();
        assert!(ZigEnvCache::load(path).file.targets.is_empty());
    }
}
