//! A private user + mount namespace in which the function sits at `/var/task` and the layers at
//! `/opt`, without touching the host's `/var` or `/opt`.
//!
//! The child builds a new root on a tmpfs: every top-level entry of the host's `/` (and of `/var`)
//! is bind-mounted or re-linked into it, `/var/task` and `/opt` are read-only binds of the task
//! and layer folders, `/var/runtime` is empty; then it `chroot`s there. All of that runs between
//! `fork` and `exec`, so the plan is computed beforehand and [`NsPlan::enter`] only issues raw
//! system calls on prepared C strings.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use libc::c_ulong;

enum Op {
    Unshare(libc::c_int),
    /// Writes to a /proc file; `optional` ones may be missing on old kernels.
    Write {
        path: CString,
        data: Vec<u8>,
        optional: bool,
    },
    Mount {
        source: Option<CString>,
        target: CString,
        fstype: Option<CString>,
        flags: c_ulong,
        data: Option<CString>,
    },
    Mkdir(CString),
    Touch(CString),
    Symlink {
        target: CString,
        link: CString,
    },
    /// `chdir(path)` then `chroot(".")`.
    Chroot(CString),
    Chdir(CString),
}

/// The system calls that set up the namespace, in order.
pub(crate) struct NsPlan {
    ops: Vec<Op>,
    descriptions: Vec<String>,
}

fn cstr(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a path"))
}

fn cpath(path: &Path) -> io::Result<CString> {
    cstr(path.as_os_str().as_bytes())
}

impl NsPlan {
    /// Plans a root at `root` (an empty folder of ours) with `task` at `/var/task` and `opt` at
    /// `/opt`. Without `user_ns` only a mount namespace is made (needs real root).
    pub fn build(
        root: &Path,
        task: &Path,
        opt: &Path,
        tmp: &Path,
        user_ns: bool,
    ) -> io::Result<NsPlan> {
        let mut plan = NsPlan::unshared(user_ns)?;
        plan.mount(Some("tmpfs"), root, Some("tmpfs"), 0, Some("mode=0755"))?;
        plan.mirror(Path::new("/"), root, &["opt", "var", "tmp"])?;
        // The environment's own /tmp, shared by every process of the run (not the host's).
        plan.mkdir(&root.join("tmp"))?;
        plan.bind(tmp, &root.join("tmp"))?;
        let var = root.join("var");
        plan.mkdir(&var)?;
        if Path::new("/var").is_dir() && !Path::new("/var").is_symlink() {
            plan.mirror(Path::new("/var"), &var, &["task", "runtime"])?;
        }
        plan.mkdir(&var.join("runtime"))?;
        plan.read_only_bind(task, &var.join("task"))?;
        plan.read_only_bind(opt, &root.join("opt"))?;
        plan.push(
            format!("chroot {}", root.display()),
            Op::Chroot(cpath(root)?),
        );
        plan.push("chdir /var/task", Op::Chdir(cstr(b"/var/task")?));
        Ok(plan)
    }

    /// Plans an image's root: `root` (its unpacked file system) becomes `/`, read-only as on
    /// Lambda, with the host's `/proc` and `/dev`, `tmp` (the run's own, shared by every
    /// process) on `/tmp`, `emulator` (qemu,
    /// static) bound at `emulator_at` (an empty file already in the root) and `working_dir` as
    /// the current directory. Mount points the image lacks, or holds as something other than a
    /// directory, are left alone.
    pub fn build_image(
        root: &Path,
        emulator: Option<(&Path, &Path)>,
        working_dir: &str,
        tmp: &Path,
        user_ns: bool,
    ) -> io::Result<NsPlan> {
        let mut plan = NsPlan::unshared(user_ns)?;
        // The root must be a mount point of its own to be remounted read-only.
        plan.bind(root, root)?;
        let real_dir = |name: &str| {
            std::fs::symlink_metadata(root.join(name)).is_ok_and(|m| m.file_type().is_dir())
        };
        for name in ["proc", "dev"] {
            if real_dir(name) {
                plan.bind(&Path::new("/").join(name), &root.join(name))?;
            }
        }
        if real_dir("tmp") {
            plan.bind(tmp, &root.join("tmp"))?;
        }
        if let Some((program, at)) = emulator {
            plan.bind(program, at)?;
        }
        let locked = locked_flags(root)?;
        plan.mount(
            None,
            root,
            None,
            libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | locked,
            None,
        )?;
        plan.push(
            format!("chroot {}", root.display()),
            Op::Chroot(cpath(root)?),
        );
        plan.push(
            format!("chdir {working_dir}"),
            Op::Chdir(cstr(working_dir.as_bytes())?),
        );
        Ok(plan)
    }

    /// The first steps of every plan: the namespaces, and `/` made private.
    fn unshared(user_ns: bool) -> io::Result<NsPlan> {
        let mut plan = NsPlan {
            ops: Vec::new(),
            descriptions: Vec::new(),
        };
        if user_ns {
            // SAFETY: getuid/getgid have no preconditions.
            let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
            plan.push(
                "unshare(user|mount)",
                Op::Unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS),
            );
            plan.write("/proc/self/setgroups", b"deny".to_vec(), true)?;
            plan.write(
                "/proc/self/uid_map",
                format!("0 {uid} 1").into_bytes(),
                false,
            )?;
            plan.write(
                "/proc/self/gid_map",
                format!("0 {gid} 1").into_bytes(),
                false,
            )?;
        } else {
            plan.push("unshare(mount)", Op::Unshare(libc::CLONE_NEWNS));
        }
        plan.mount(
            None,
            Path::new("/"),
            None,
            libc::MS_REC | libc::MS_PRIVATE,
            None,
        )?;
        Ok(plan)
    }

    fn push(&mut self, description: impl Into<String>, op: Op) {
        self.descriptions.push(description.into());
        self.ops.push(op);
    }

    fn write(&mut self, path: &str, data: Vec<u8>, optional: bool) -> io::Result<()> {
        let description = format!("write {path}");
        let path = cstr(path.as_bytes())?;
        self.push(
            description,
            Op::Write {
                path,
                data,
                optional,
            },
        );
        Ok(())
    }

    fn mkdir(&mut self, path: &Path) -> io::Result<()> {
        self.push(format!("mkdir {}", path.display()), Op::Mkdir(cpath(path)?));
        Ok(())
    }

    fn mount(
        &mut self,
        source: Option<&str>,
        target: &Path,
        fstype: Option<&str>,
        flags: c_ulong,
        data: Option<&str>,
    ) -> io::Result<()> {
        let description = format!("mount {} on {}", source.unwrap_or("-"), target.display());
        let op = Op::Mount {
            source: source.map(|s| cstr(s.as_bytes())).transpose()?,
            target: cpath(target)?,
            fstype: fstype.map(|s| cstr(s.as_bytes())).transpose()?,
            flags,
            data: data.map(|s| cstr(s.as_bytes())).transpose()?,
        };
        self.push(description, op);
        Ok(())
    }

    fn bind(&mut self, source: &Path, target: &Path) -> io::Result<()> {
        let description = format!("bind {} on {}", source.display(), target.display());
        let op = Op::Mount {
            source: Some(cpath(source)?),
            target: cpath(target)?,
            fstype: None,
            flags: libc::MS_BIND | libc::MS_REC,
            data: None,
        };
        self.push(description, op);
        Ok(())
    }

    /// Binds `source` at `target` and makes it read-only, keeping the flags the kernel locks
    /// for mounts inherited into a user namespace (nosuid, nodev, noexec, atime).
    fn read_only_bind(&mut self, source: &Path, target: &Path) -> io::Result<()> {
        self.mkdir(target)?;
        self.bind(source, target)?;
        let locked = locked_flags(source)?;
        let flags = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | locked;
        self.mount(None, target, None, flags, None)
    }

    /// Recreates each entry of `from` under `to` (binds for folders and files, copies of links).
    fn mirror(&mut self, from: &Path, to: &Path, skip: &[&str]) -> io::Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(from)?.filter_map(Result::ok).collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name();
            if skip.iter().any(|s| name.as_bytes() == s.as_bytes()) {
                continue;
            }
            let (source, target) = (entry.path(), to.join(&name));
            let Ok(meta) = std::fs::symlink_metadata(&source) else {
                continue;
            };
            if meta.file_type().is_symlink() {
                let link = std::fs::read_link(&source)?;
                let op = Op::Symlink {
                    target: cpath(&link)?,
                    link: cpath(&target)?,
                };
                self.push(format!("symlink {}", target.display()), op);
            } else if meta.is_dir() {
                self.mkdir(&target)?;
                self.bind(&source, &target)?;
            } else if meta.is_file() {
                self.push(
                    format!("touch {}", target.display()),
                    Op::Touch(cpath(&target)?),
                );
                self.bind(&source, &target)?;
            }
        }
        Ok(())
    }

    /// Runs the plan in a freshly forked child. Only raw system calls: no allocation, no locks.
    pub fn enter(&self) -> io::Result<()> {
        self.run().map_err(|(_, error)| error)
    }

    fn run(&self) -> Result<(), (usize, io::Error)> {
        for (index, op) in self.ops.iter().enumerate() {
            // SAFETY: every pointer comes from a CString or Vec owned by `self`, alive for the
            // whole call; the calls have no other memory preconditions.
            let failed = unsafe {
                match op {
                    Op::Unshare(flags) => libc::unshare(*flags) != 0,
                    Op::Write {
                        path,
                        data,
                        optional,
                    } => {
                        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                        if fd < 0 {
                            !*optional
                        } else {
                            let written = libc::write(fd, data.as_ptr().cast(), data.len());
                            libc::close(fd);
                            written != data.len() as isize && !*optional
                        }
                    }
                    Op::Mount {
                        source,
                        target,
                        fstype,
                        flags,
                        data,
                    } => {
                        let ptr = |s: &Option<CString>| {
                            s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr())
                        };
                        libc::mount(
                            ptr(source),
                            target.as_ptr(),
                            ptr(fstype),
                            *flags,
                            ptr(data).cast(),
                        ) != 0
                    }
                    Op::Mkdir(path) => {
                        libc::mkdir(path.as_ptr(), 0o755) != 0
                            && *libc::__errno_location() != libc::EEXIST
                    }
                    Op::Touch(path) => {
                        let fd = libc::open(
                            path.as_ptr(),
                            libc::O_WRONLY | libc::O_CREAT | libc::O_CLOEXEC,
                            0o644,
                        );
                        fd < 0 || libc::close(fd) != 0
                    }
                    Op::Symlink { target, link } => {
                        libc::symlink(target.as_ptr(), link.as_ptr()) != 0
                    }
                    Op::Chroot(path) => {
                        libc::chdir(path.as_ptr()) != 0 || libc::chroot(c".".as_ptr()) != 0
                    }
                    Op::Chdir(path) => libc::chdir(path.as_ptr()) != 0,
                }
            };
            if failed {
                return Err((index, io::Error::last_os_error()));
            }
        }
        Ok(())
    }
}

/// Runs the plan in a throw-away child that exits right after; the error names the failing step.
pub(crate) fn probe(plan: &Arc<NsPlan>) -> Result<(), String> {
    let mut command = Command::new("/bin/true");
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let child_plan = plan.clone();
    // SAFETY: the child only reads the plan and reports a failure as 16 raw bytes on its stderr
    // before `_exit`: no allocation, no locks.
    unsafe {
        command.pre_exec(move || {
            let code = match child_plan.run() {
                Ok(()) => 0,
                Err((index, error)) => {
                    let mut report = [0u8; 16];
                    report[..8].copy_from_slice(&(index as u64).to_le_bytes());
                    let errno = error.raw_os_error().unwrap_or(0) as i64;
                    report[8..].copy_from_slice(&errno.to_le_bytes());
                    libc::write(2, report.as_ptr().cast(), report.len());
                    1
                }
            };
            libc::_exit(code)
        });
    }
    let output = command
        .output()
        .map_err(|e| format!("cannot fork a probe: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    let report = output.stderr;
    if report.len() == 16 {
        let index = u64::from_le_bytes(report[..8].try_into().unwrap_or([0; 8])) as usize;
        let errno = i64::from_le_bytes(report[8..].try_into().unwrap_or([0; 8])) as i32;
        let step = plan
            .descriptions
            .get(index)
            .map_or("a step", String::as_str);
        return Err(format!("{step}: {}", io::Error::from_raw_os_error(errno)));
    }
    Err(format!("the probe child ended with {}", output.status))
}

/// The mount flags of `path`'s file system that a user namespace may not drop on remount.
fn locked_flags(path: &Path) -> io::Result<c_ulong> {
    let c = cpath(path)?;
    // SAFETY: `stat` is plain old data, filled in by statvfs before being read.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid C string and `stat` a valid out-pointer.
    if unsafe { libc::statvfs(c.as_ptr(), &mut stat) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let pairs = [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ];
    Ok(pairs
        .iter()
        .filter(|(st, _)| stat.f_flag & st != 0)
        .fold(0, |flags, (_, ms)| flags | ms))
}
