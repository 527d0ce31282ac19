//! Where and how the function's processes run: Lambda's variables, the environment that holds
//! them (`environment.rs`, with the root of `namespace.rs`: the function at `/var/task` and the
//! layers at `/opt`), the user-mode emulator for a foreign architecture, and capture of what the
//! processes write.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};

use super::environment::Environment;
use super::limits::Containment;
use super::namespace::{EMULATOR_DIR, NsPlan, RootSizes};
use super::{FunctionRun, ImageRoot, NamespaceMode, VerifyError};
use crate::target::Arch;

/// Each of a process's stdout and stderr keeps at most this much.
const CAPTURE_BYTES: usize = 256 * 1024;
/// A line longer than this is cut into records of this size (Lambda cuts at 256 KiB).
const LINE_BYTES: usize = 256 * 1024;

/// Called with each line a process writes (without its newline), for the Logs/Telemetry APIs.
pub(crate) type LineSink = Arc<dyn Fn(&str) + Send + Sync>;

/// A user-mode emulator (qemu) that runs binaries of a foreign architecture.
pub(crate) struct Emulator {
    pub program: PathBuf,
    /// `-L` root for dynamically linked guests, when the cross sysroot is installed.
    pub sysroot: Option<PathBuf>,
}

pub(crate) struct Sandbox {
    pub task_dir: PathBuf,
    pub opt_dir: PathBuf,
    /// The environment holding the processes (absent with `--no-sandbox`).
    pub environment: Option<Environment>,
    /// Where processes start, inside the environment's root.
    cwd: String,
    pub note: Option<String>,
    pub emulator: Option<Emulator>,
    /// What holds, as the report states it.
    pub containment: Containment,
    env: Vec<(String, String)>,
}

/// The environment's private `/tmp` when it runs without a sandbox: an empty folder of this run,
/// shared by the function and its extensions (`TMPDIR` points at it).
fn private_tmp(workdir: &Path) -> Result<PathBuf, VerifyError> {
    let tmp = workdir.join("tmp");
    std::fs::create_dir_all(&tmp).map_err(|e| VerifyError::io("create", &tmp, e))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777))
        .map_err(|e| VerifyError::io("set the permissions of", &tmp, e))?;
    Ok(tmp)
}

/// The sizes of the root's tmpfs mounts for `run`.
fn sizes(run: &FunctionRun) -> RootSizes {
    RootSizes {
        tmp_mb: run.ephemeral_storage_mb,
        shm_mb: run.memory_mb,
    }
}

impl Sandbox {
    /// Starts the environment (or, with `--no-sandbox`, lays out the temporary directories),
    /// finds the emulator and builds Lambda's variables. `workdir` is a private scratch folder;
    /// `api` is `127.0.0.1:PORT`.
    pub fn prepare(run: &FunctionRun, workdir: &Path, api: &str) -> Result<Sandbox, VerifyError> {
        let emulator = find_emulator(run.arch)?;
        if let Some(image) = &run.image {
            return Sandbox::for_image(run, image, emulator, api);
        }
        let runtime_dir = workdir.join("runtime");
        std::fs::create_dir_all(&runtime_dir)
            .map_err(|e| VerifyError::io("create", &runtime_dir, e))?;
        let mut sandbox = Sandbox {
            task_dir: run.task_dir.clone(),
            opt_dir: run.opt_dir.clone(),
            environment: None,
            cwd: "/var/task".into(),
            note: None,
            emulator,
            containment: Containment::unsandboxed(run),
            env: Vec::new(),
        };
        if run.namespace == NamespaceMode::Disabled {
            sandbox.note = Some(NO_SANDBOX_NOTE.to_string());
            let tmp = private_tmp(workdir)?;
            sandbox.env = lambda_env(
                run,
                api,
                &run.task_dir.display().to_string(),
                &run.opt_dir.display().to_string(),
                &runtime_dir.display().to_string(),
            );
            // Without a sandbox /tmp is the host's; programs that honour TMPDIR still get
            // the environment's own.
            sandbox
                .env
                .push(("TMPDIR".into(), tmp.display().to_string()));
            return Ok(sandbox);
        }
        let root = workdir.join("root");
        std::fs::create_dir_all(&root).map_err(|e| VerifyError::io("create", &root, e))?;
        let emulator_program = sandbox.emulator.as_ref().map(|e| e.program.clone());
        let (plan, emulator_at) = NsPlan::build(
            &root,
            &run.task_dir,
            &run.opt_dir,
            sizes(run),
            emulator_program.as_deref(),
        )
        .map_err(|e| VerifyError::NoNamespace {
            why: format!("cannot plan the root: {e}"),
        })?;
        if let (Some(emulator), Some(at)) = (&mut sandbox.emulator, emulator_at) {
            emulator.program = at;
        }
        let environment = Environment::start(&plan, run.namespace == NamespaceMode::Auto)
            .map_err(|why| VerifyError::NoNamespace { why })?;
        sandbox.containment = Containment::sandboxed(run, &environment);
        sandbox.environment = Some(environment);
        sandbox.env = lambda_env(run, api, "/var/task", "/opt", "/var/runtime");
        Ok(sandbox)
    }

    /// An image runs only inside its own root: without the environment there is no `/` to
    /// give it.
    fn for_image(
        run: &FunctionRun,
        image: &ImageRoot,
        emulator: Option<Emulator>,
        api: &str,
    ) -> Result<Sandbox, VerifyError> {
        let mut emulator = emulator;
        let mut bound = None;
        if let Some(emulator) = &mut emulator {
            // qemu is static: bound onto an empty file of the root, it runs inside the image,
            // where the image's own loader and libraries are the guest's (no `-L`).
            let dir = image.root.join(EMULATOR_DIR);
            std::fs::create_dir_all(&dir).map_err(|e| VerifyError::io("create", &dir, e))?;
            let name = emulator.program.file_name().unwrap_or_default();
            let at = dir.join(name);
            std::fs::File::create(&at).map_err(|e| VerifyError::io("create", &at, e))?;
            bound = Some((emulator.program.clone(), at));
            emulator.program = Path::new("/").join(EMULATOR_DIR).join(name);
            emulator.sysroot = None;
        }
        if run.namespace == NamespaceMode::Disabled {
            return Err(VerifyError::NoNamespace {
                why: "--no-sandbox was given".into(),
            });
        }
        let plan = NsPlan::build_image(
            &image.root,
            bound
                .as_ref()
                .map(|(program, at)| (program.as_path(), at.as_path())),
            sizes(run),
        )
        .map_err(|e| VerifyError::NoNamespace {
            why: format!("cannot plan the root: {e}"),
        })?;
        let environment = Environment::start(&plan, run.namespace == NamespaceMode::Auto)
            .map_err(|why| VerifyError::NoNamespace { why })?;
        let mut sandbox = Sandbox {
            task_dir: run.task_dir.clone(),
            opt_dir: run.opt_dir.clone(),
            containment: Containment::sandboxed(run, &environment),
            environment: Some(environment),
            cwd: image.working_dir.clone(),
            note: image.note.clone(),
            emulator,
            env: Vec::new(),
        };
        let mut env = lambda_env(run, api, "/var/task", "/opt", "/var/runtime");
        // The image's own variables (PATH, LD_LIBRARY_PATH, its ENV lines) as the image sets
        // them; Lambda's reserved ones keep Lambda's values; the function's `env` wins over both.
        for (key, value) in &image.env {
            let reserved = key.starts_with("AWS_")
                || matches!(
                    key.as_str(),
                    "_HANDLER" | "LAMBDA_TASK_ROOT" | "LAMBDA_RUNTIME_DIR"
                );
            let overridden = run.extra_env.iter().any(|(k, _)| k == key);
            if !reserved && !overridden {
                env.retain(|(k, _)| k != key);
                env.push((key.clone(), value.clone()));
            }
        }
        sandbox.env = env;
        Ok(sandbox)
    }

    /// The path a process sees for a file under the task directory (`/var/task/...`).
    pub fn visible_task(&self, relative: &str) -> PathBuf {
        match self.environment {
            Some(_) => Path::new("/var/task").join(relative),
            None => self.task_dir.join(relative),
        }
    }

    /// The path a process sees for a file under the layers directory (`/opt/...`).
    pub fn visible_opt(&self, relative: &str) -> PathBuf {
        match self.environment {
            Some(_) => Path::new("/opt").join(relative),
            None => self.opt_dir.join(relative),
        }
    }

    /// Starts `visible` (a path as the process sees it; `host` is the same file from here) with
    /// no arguments, Lambda's environment, its own process group and captured output.
    pub fn spawn(
        &self,
        host: &Path,
        visible: &Path,
        args: &[String],
        lines: LineSink,
    ) -> io::Result<Spawned> {
        let mut command = match &self.emulator {
            Some(emulator) => {
                let mut command = Command::new(&emulator.program);
                if let Some(sysroot) = emulator.sysroot.as_ref().filter(|_| is_dynamic(host)) {
                    command.arg("-L").arg(sysroot);
                }
                command.arg(visible);
                command
            }
            None => Command::new(visible),
        };
        command
            .args(args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        match &self.environment {
            Some(environment) => {
                let entry = environment.entry(&self.cwd)?;
                // SAFETY: `enter` only issues raw system calls on memory prepared before the
                // fork; it neither allocates nor takes locks.
                unsafe { command.pre_exec(move || entry.enter()) };
            }
            None => {
                command.current_dir(&self.task_dir);
            }
        }
        let mut child = command.spawn()?;
        let stdout = Arc::new(Mutex::new(Captured::default()));
        let stderr = Arc::new(Mutex::new(Captured::default()));
        let readers = vec![
            tokio::spawn(drain(child.stdout.take(), stdout.clone(), lines.clone())),
            tokio::spawn(drain(child.stderr.take(), stderr.clone(), lines)),
        ];
        let pid = child.id().map(|id| id as i32).unwrap_or(0);
        Ok(Spawned {
            child: Some(child),
            pid,
            stdout,
            stderr,
            readers,
        })
    }

    /// Ends every process of the environment at once (its init's death takes them all).
    pub fn end(&mut self) {
        if let Some(environment) = &mut self.environment {
            environment.end();
        }
    }
}

/// What the report says when `--no-sandbox` was given.
const NO_SANDBOX_NOTE: &str = "the processes ran as verify's own user with the \
     host's whole file system writable, from the temporary directories (/var/task and /opt do \
     not exist), with no /tmp size, memory or process limit, and may outlive verify";

/// A started process and the capture of its output.
pub(crate) struct Spawned {
    pub child: Option<Child>,
    pub pid: i32,
    pub stdout: Arc<Mutex<Captured>>,
    pub stderr: Arc<Mutex<Captured>>,
    pub readers: Vec<tokio::task::JoinHandle<()>>,
}

#[derive(Default)]
pub(crate) struct Captured {
    pub data: Vec<u8>,
    pub total: u64,
}

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }

    pub fn truncated(&self) -> bool {
        self.total > self.data.len() as u64
    }
}

async fn drain(
    reader: Option<impl AsyncRead + Unpin>,
    into: Arc<Mutex<Captured>>,
    lines: LineSink,
) {
    let Some(mut reader) = reader else { return };
    let mut buffer = vec![0u8; 16 * 1024];
    let mut line: Vec<u8> = Vec::new();
    while let Ok(n) = reader.read(&mut buffer).await {
        if n == 0 {
            break;
        }
        {
            let mut captured = into.lock().unwrap_or_else(|p| p.into_inner());
            captured.total += n as u64;
            let room = CAPTURE_BYTES.saturating_sub(captured.data.len());
            captured.data.extend_from_slice(&buffer[..n.min(room)]);
        }
        for &byte in &buffer[..n] {
            if byte == b'\n' {
                lines(String::from_utf8_lossy(&line).trim_end_matches('\r'));
                line.clear();
            } else {
                line.push(byte);
                if line.len() == LINE_BYTES {
                    lines(&String::from_utf8_lossy(&line));
                    line.clear();
                }
            }
        }
    }
    if !line.is_empty() {
        lines(&String::from_utf8_lossy(&line));
    }
}

/// Sends `signal` to the process group led by `pid`.
pub(crate) fn signal_group(pid: i32, signal: i32) {
    if pid > 0 {
        // SAFETY: kill has no memory preconditions; a stale group only yields ESRCH.
        unsafe {
            libc::kill(-pid, signal);
        }
    }
}

/// The environment Lambda gives every process of an OS-only runtime (never the host's).
fn lambda_env(
    run: &FunctionRun,
    api: &str,
    task: &str,
    opt: &str,
    rt: &str,
) -> Vec<(String, String)> {
    let name = &run.function_name;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let (y, m, d) = crate::plan::civil_from_days((now.as_secs() / 86_400) as i64);
    let stream_id: String = super::state::uuid_v4().replace('-', "");
    let mut env: Vec<(String, String)> = vec![
        ("AWS_LAMBDA_RUNTIME_API".into(), api.into()),
        ("AWS_LAMBDA_FUNCTION_NAME".into(), name.clone()),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(),
            run.memory_mb.to_string(),
        ),
        ("AWS_LAMBDA_FUNCTION_VERSION".into(), "$LATEST".into()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE".into(), "on-demand".into()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME".into(),
            format!("/aws/lambda/{name}"),
        ),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME".into(),
            format!("{y:04}/{m:02}/{d:02}/[$LATEST]{stream_id}"),
        ),
        ("AWS_REGION".into(), run.region.clone()),
        ("AWS_DEFAULT_REGION".into(), run.region.clone()),
        ("_HANDLER".into(), run.handler.clone()),
        ("LAMBDA_TASK_ROOT".into(), task.into()),
        ("LAMBDA_RUNTIME_DIR".into(), rt.into()),
        ("LANG".into(), "en_US.UTF-8".into()),
        ("TZ".into(), ":UTC".into()),
        (
            "PATH".into(),
            format!("/usr/local/bin:/usr/bin/:/bin:{opt}/bin"),
        ),
        (
            "LD_LIBRARY_PATH".into(),
            format!("/lib64:/usr/lib64:{rt}:{rt}/lib:{task}:{task}/lib:{opt}/lib"),
        ),
        // Credentials that look real but grant nothing: SDK clients start, calls fail offline.
        ("AWS_ACCESS_KEY_ID".into(), "AKIAVERIFYLOCAL00000".into()),
        (
            "AWS_SECRET_ACCESS_KEY".into(),
            "verify/local/not/a/real/secret/key000000".into(),
        ),
        (
            "AWS_SESSION_TOKEN".into(),
            "verify-local-session-token".into(),
        ),
    ];
    if let Some(concurrency) = run.concurrency {
        // Lambda Managed Instances: how many invocations the runtime may take at once.
        env.push(("AWS_LAMBDA_MAX_CONCURRENCY".into(), concurrency.to_string()));
    }
    for (key, value) in &run.extra_env {
        env.retain(|(k, _)| k != key);
        env.push((key.clone(), value.clone()));
    }
    env
}

/// Finds `qemu-<arch>-static` on `PATH` (or in /usr/bin) when `arch` is not the host's.
fn find_emulator(arch: Arch) -> Result<Option<Emulator>, VerifyError> {
    if Arch::host() == Some(arch) {
        return Ok(None);
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend([PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin")]);
    find_emulator_in(arch, &dirs)
}

fn find_emulator_in(arch: Arch, dirs: &[PathBuf]) -> Result<Option<Emulator>, VerifyError> {
    let host = std::env::consts::ARCH;
    let program = format!("qemu-{}-static", arch.rust_arch());
    let found = dirs.iter().map(|d| d.join(&program)).find(|p| p.is_file());
    let Some(found) = found else {
        return Err(VerifyError::EmulatorMissing {
            arch,
            host: host.to_string(),
            program,
        });
    };
    let sysroot = PathBuf::from(format!("/usr/{}-linux-gnu", arch.rust_arch()));
    Ok(Some(Emulator {
        program: found,
        sysroot: sysroot.is_dir().then_some(sysroot),
    }))
}

/// True for an ELF with a program interpreter (dynamically linked).
fn is_dynamic(path: &Path) -> bool {
    let Ok(bytes) = std::fs::read(path) else {
        return false;
    };
    let (Ok(elf), Some(class)) = (object::FileKind::parse(&*bytes), bytes.get(4)) else {
        return false;
    };
    if !matches!(elf, object::FileKind::Elf64) || *class != 2 {
        return false;
    }
    let u16_at = |o: usize| {
        bytes
            .get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u64_at = |o: usize| {
        bytes
            .get(o..o + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
    };
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    (0..usize::from(phnum)).any(|i| {
        let at = phoff as usize + i * usize::from(phentsize);
        bytes.get(at..at + 4) == Some(&3u32.to_le_bytes()[..])
    })
}

/// What `execve` would say about `host` on a machine that runs `machine` (ELF `e_machine`), in
/// Lambda's wording (`fork/exec PATH: permission denied`). Checked up front because the C
/// library's `execvp` hands a file that is not a program to `/bin/sh` instead of failing.
pub(super) fn executable(host: &Path, visible: &Path, machine: u16) -> Result<(), String> {
    let fail = |what: &str| Err(format!("fork/exec {}: {what}", visible.display()));
    let Ok(meta) = std::fs::metadata(host) else {
        return fail("no such file or directory");
    };
    let mode = meta.permissions().mode();
    if mode & 0o111 == 0 {
        return fail("permission denied");
    }
    let mut head = [0u8; 20];
    let read = std::fs::File::open(host).and_then(|mut file| {
        use std::io::Read;
        file.read(&mut head)
    });
    let Ok(read) = read else {
        return fail("permission denied");
    };
    if head[..read].starts_with(b"#!") {
        return Ok(());
    }
    if read < 20 || !head.starts_with(b"\x7fELF") {
        return fail("exec format error");
    }
    if u16::from_le_bytes([head[18], head[19]]) != machine {
        return fail("exec format error");
    }
    Ok(())
}

pub(super) fn exec_error(visible: &Path, error: &std::io::Error) -> String {
    let what = match error.raw_os_error() {
        Some(libc::EACCES) => "permission denied".to_string(),
        Some(libc::ENOEXEC) => "exec format error".to_string(),
        Some(libc::ENOENT) => "no such file or directory".to_string(),
        _ => error.to_string(),
    };
    format!("fork/exec {}: {what}", visible.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_emulator_names_the_debian_package() {
        let error = find_emulator_in(Arch::Arm64, &[]).err().unwrap();
        let text = error.to_string();
        assert!(text.contains("qemu-aarch64-static"), "{text}");
        assert!(text.contains("apt-get install qemu-user-static"), "{text}");
    }

    #[test]
    fn lambda_environment_is_complete_and_overridable() {
        let mut run = FunctionRun::new("f", Arch::X86_64, "/t", "/o");
        run.extra_env.push(("TZ".into(), "Europe/Paris".into()));
        let env = lambda_env(&run, "127.0.0.1:9", "/var/task", "/opt", "/var/runtime");
        let get = |k: &str| {
            env.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("AWS_LAMBDA_RUNTIME_API"), Some("127.0.0.1:9"));
        assert_eq!(get("AWS_LAMBDA_FUNCTION_VERSION"), Some("$LATEST"));
        assert_eq!(get("AWS_LAMBDA_INITIALIZATION_TYPE"), Some("on-demand"));
        assert_eq!(get("PATH"), Some("/usr/local/bin:/usr/bin/:/bin:/opt/bin"));
        assert_eq!(
            get("LD_LIBRARY_PATH"),
            Some(
                "/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib"
            )
        );
        assert_eq!(get("TZ"), Some("Europe/Paris"));
        assert!(
            get("HOME").is_none(),
            "the host environment is not inherited"
        );
    }
}
