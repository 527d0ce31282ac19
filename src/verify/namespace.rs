//! The root file system of the execution environment, built as Lambda's: only what Lambda has is
//! visible, and only `/tmp` is writable.
//!
//! For a ZIP function the new root is a fresh tmpfs holding read-only binds of the host's system
//! folders that stand in for the runtime's OS (`/usr`, `/lib*`, `/bin`, `/sbin`, `/etc`), the task
//! folder at `/var/task`, the layers at `/opt`, an empty `/var/runtime`, a fresh `/proc`, a minimal
//! `/dev` and `/tmp` a tmpfs of the function's ephemeral storage; nothing else of the host. An
//! image keeps its own root (read-only) with the same `/proc`, `/dev` and `/tmp`. The plan is
//! computed beforehand and [`NsPlan::run`] only issues raw system calls on prepared C strings,
//! because it runs in the environment's init right after `clone`, in a multi-threaded program.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use libc::c_ulong;

/// The host folders bound read-only into a ZIP function's root, when the host has them.
const SYSTEM_DIRS: &[&str] = &[
    "usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc",
];
/// The device nodes bound from the host's `/dev` (Lambda's `/dev` has these and no others of note).
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom"];
/// Where a foreign-architecture emulator outside the system folders is bound in the root.
pub(crate) const EMULATOR_DIR: &str = ".lambda-pack-verify";

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const AT_RECURSIVE: libc::c_uint = 0x8000;

/// `struct mount_attr` of `mount_setattr(2)`.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

enum Op {
    Mount {
        source: Option<CString>,
        target: CString,
        fstype: Option<CString>,
        flags: c_ulong,
        data: Option<CString>,
    },
    /// Read-only and nosuid for the whole tree under the target (`mount_setattr`), or for its
    /// top mount by remount where the kernel lacks that call.
    ReadOnly {
        target: CString,
        recursive: bool,
    },
    Mkdir(CString, libc::mode_t),
    Touch(CString),
    Symlink {
        target: CString,
        link: CString,
    },
    /// `chdir(root)`, `pivot_root(".", ".")`, detach the old root, `chdir("/")`: the host's
    /// mounts leave the namespace altogether.
    PivotRoot(CString),
}

/// The sizes the root's tmpfs mounts get.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RootSizes {
    /// `/tmp`, MB (the function's ephemeral storage).
    pub tmp_mb: u32,
    /// `/dev/shm`, MB (shared memory counts against the function's memory on Lambda).
    pub shm_mb: u32,
}

/// The system calls that build the root, in order.
pub(crate) struct NsPlan {
    ops: Vec<Op>,
    descriptions: Vec<String>,
    /// The folders of the caller bound into the root: opened by the init (`O_PATH`) while it
    /// still has verify's user, at fixed descriptors, and bound from `/proc/self/fd/N` after it
    /// became the sandbox user, which need not be able to walk to them.
    held: Vec<(CString, i32)>,
}

/// The descriptor the init holds the first held folder at (then the next ones).
const FIRST_HELD_FD: i32 = 900;

fn cstr(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a path"))
}

fn cpath(path: &Path) -> io::Result<CString> {
    cstr(path.as_os_str().as_bytes())
}

impl NsPlan {
    /// Plans a ZIP function's root at `root` (an empty folder of ours): `task` at `/var/task`,
    /// `opt` at `/opt`, `emulator` (a static qemu) reachable at the path it returns.
    pub fn build(
        root: &Path,
        task: &Path,
        opt: &Path,
        sizes: RootSizes,
        emulator: Option<&Path>,
    ) -> io::Result<(NsPlan, Option<PathBuf>)> {
        let mut plan = NsPlan::private()?;
        plan.mount(
            Some("tmpfs"),
            root,
            Some("tmpfs"),
            0,
            Some("mode=0755,size=1m"),
        )?;
        for name in SYSTEM_DIRS {
            let host = Path::new("/").join(name);
            let Ok(meta) = std::fs::symlink_metadata(&host) else {
                continue;
            };
            let inside = root.join(name);
            if meta.file_type().is_symlink() {
                plan.symlink(&std::fs::read_link(&host)?, &inside)?;
            } else if meta.is_dir() {
                plan.read_only_bind(&host, &inside)?;
            }
        }
        plan.mkdir(&root.join("var"), 0o755)?;
        let task = plan.hold(task)?;
        let opt = plan.hold(opt)?;
        plan.read_only_bind(&task, &root.join("var/task"))?;
        plan.mkdir(&root.join("var/runtime"), 0o755)?;
        plan.read_only_bind(&opt, &root.join("opt"))?;
        plan.dns(root)?;
        let emulator_at = match emulator {
            Some(program) if !under_system_dirs(program) => {
                let name = program.file_name().unwrap_or_default();
                let dir = root.join(EMULATOR_DIR);
                plan.mkdir(&dir, 0o755)?;
                let at = dir.join(name);
                plan.touch(&at)?;
                plan.bind(program, &at)?;
                plan.read_only(&at, false)?;
                Some(Path::new("/").join(EMULATOR_DIR).join(name))
            }
            Some(program) => Some(program.to_path_buf()),
            None => None,
        };
        plan.kernel_dirs(root, sizes, true, true, true)?;
        // The root's own tmpfs last: every mount point above is in place.
        plan.remount_read_only(root)?;
        plan.push(
            format!("pivot_root {}", root.display()),
            Op::PivotRoot(cpath(root)?),
        );
        Ok((plan, emulator_at))
    }

    /// Plans an image's root: `root` (its unpacked file system) becomes `/`, read-only as on
    /// Lambda, with a fresh `/proc`, a minimal `/dev` and a tmpfs `/tmp`, and `emulator` (qemu,
    /// static) bound at `at` (an empty file already in the root). Mount points the image lacks,
    /// or holds as something other than a directory, are left alone.
    pub fn build_image(
        root: &Path,
        emulator: Option<(&Path, &Path)>,
        sizes: RootSizes,
    ) -> io::Result<NsPlan> {
        let mut plan = NsPlan::private()?;
        // The root must be a mount point of its own to become `/` and to be made read-only.
        let held = plan.hold(root)?;
        plan.bind(&held, root)?;
        let real_dir = |name: &str| {
            std::fs::symlink_metadata(root.join(name)).is_ok_and(|m| m.file_type().is_dir())
        };
        if let Some((program, at)) = emulator {
            plan.bind(program, at)?;
        }
        plan.kernel_dirs(
            root,
            sizes,
            real_dir("proc"),
            real_dir("dev"),
            real_dir("tmp"),
        )?;
        // Only the top mount: /tmp under it stays writable (/dev was made read-only).
        plan.read_only(root, false)?;
        plan.push(
            format!("pivot_root {}", root.display()),
            Op::PivotRoot(cpath(root)?),
        );
        Ok(plan)
    }

    fn private() -> io::Result<NsPlan> {
        let mut plan = NsPlan {
            ops: Vec::new(),
            descriptions: Vec::new(),
            held: Vec::new(),
        };
        plan.mount(
            None,
            Path::new("/"),
            None,
            libc::MS_REC | libc::MS_PRIVATE,
            None,
        )?;
        Ok(plan)
    }

    /// `/proc` (of the environment's own pid namespace), `/dev` (a few nodes and `/dev/shm`) and
    /// `/tmp` (a tmpfs of `sizes.tmp_mb`).
    fn kernel_dirs(
        &mut self,
        root: &Path,
        sizes: RootSizes,
        proc: bool,
        dev: bool,
        tmp: bool,
    ) -> io::Result<()> {
        let (nosuid, nodev, noexec) = (libc::MS_NOSUID, libc::MS_NODEV, libc::MS_NOEXEC);
        if proc {
            let at = root.join("proc");
            self.mkdir(&at, 0o555)?;
            self.mount(
                Some("proc"),
                &at,
                Some("proc"),
                nosuid | nodev | noexec,
                None,
            )?;
        }
        if dev {
            let at = root.join("dev");
            self.mkdir(&at, 0o755)?;
            self.mount(
                Some("tmpfs"),
                &at,
                Some("tmpfs"),
                nosuid | noexec,
                Some("mode=0755,size=64k"),
            )?;
            for name in DEVICES {
                let host = Path::new("/dev").join(name);
                if host.exists() {
                    self.touch(&at.join(name))?;
                    self.bind(&host, &at.join(name))?;
                }
            }
            for (name, target) in [
                ("fd", "/proc/self/fd"),
                ("stdin", "/proc/self/fd/0"),
                ("stdout", "/proc/self/fd/1"),
                ("stderr", "/proc/self/fd/2"),
            ] {
                self.symlink(Path::new(target), &at.join(name))?;
            }
            let shm = at.join("shm");
            self.mkdir(&shm, 0o1777)?;
            let data = format!("mode=1777,size={}m", sizes.shm_mb);
            self.mount(
                Some("tmpfs"),
                &shm,
                Some("tmpfs"),
                nosuid | nodev,
                Some(&data),
            )?;
            self.remount_read_only(&at)?;
        }
        if tmp {
            let at = root.join("tmp");
            self.mkdir(&at, 0o1777)?;
            let data = format!("mode=1777,size={}m", sizes.tmp_mb);
            self.mount(
                Some("tmpfs"),
                &at,
                Some("tmpfs"),
                nosuid | nodev,
                Some(&data),
            )?;
        }
        Ok(())
    }

    /// DNS as the host resolves it: when `/etc/resolv.conf` is a link into `/run`, that one file
    /// (read-only) at the same place; the rest of `/run` stays out.
    fn dns(&mut self, root: &Path) -> io::Result<()> {
        let Ok(target) = std::fs::canonicalize("/etc/resolv.conf") else {
            return Ok(());
        };
        let Ok(relative) = target.strip_prefix("/run") else {
            return Ok(());
        };
        let mut dir = root.join("run");
        self.mkdir(&dir, 0o755)?;
        let parents: Vec<_> = relative
            .parent()
            .into_iter()
            .flat_map(Path::components)
            .collect();
        for part in parents {
            dir = dir.join(part);
            self.mkdir(&dir, 0o755)?;
        }
        let at = root.join("run").join(relative);
        self.touch(&at)?;
        self.bind(&target, &at)?;
        self.read_only(&at, false)
    }

    /// Plans holding `dir` and returns the path the init reaches it by.
    fn hold(&mut self, dir: &Path) -> io::Result<PathBuf> {
        let fd = FIRST_HELD_FD + self.held.len() as i32;
        self.held.push((cpath(dir)?, fd));
        Ok(PathBuf::from(format!("/proc/self/fd/{fd}")))
    }

    /// Opens the held folders at their descriptors, before the init changes its user. Only
    /// raw system calls. The error's index is past the plan's steps (see [`NsPlan::step`]).
    pub fn hold_folders(&self) -> Result<(), (usize, i32)> {
        for (index, (path, fd)) in self.held.iter().enumerate() {
            // SAFETY: `path` is a C string owned by `self`; open, dup2 and close have no other
            // memory preconditions.
            let failed = unsafe {
                let opened = libc::open(path.as_ptr(), libc::O_PATH | libc::O_DIRECTORY);
                opened < 0 || libc::dup2(opened, *fd) < 0 || libc::close(opened) != 0
            };
            if failed {
                // SAFETY: reading errno right after the failing call.
                return Err((self.ops.len() + index, unsafe { *libc::__errno_location() }));
            }
        }
        Ok(())
    }

    fn push(&mut self, description: impl Into<String>, op: Op) {
        self.descriptions.push(description.into());
        self.ops.push(op);
    }

    fn mkdir(&mut self, path: &Path, mode: libc::mode_t) -> io::Result<()> {
        self.push(
            format!("mkdir {}", path.display()),
            Op::Mkdir(cpath(path)?, mode),
        );
        Ok(())
    }

    fn touch(&mut self, path: &Path) -> io::Result<()> {
        self.push(format!("touch {}", path.display()), Op::Touch(cpath(path)?));
        Ok(())
    }

    fn symlink(&mut self, target: &Path, link: &Path) -> io::Result<()> {
        let op = Op::Symlink {
            target: cpath(target)?,
            link: cpath(link)?,
        };
        self.push(format!("symlink {}", link.display()), op);
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

    /// Binds `source` (with what is mounted under it) at `target`, all of it read-only.
    fn read_only_bind(&mut self, source: &Path, target: &Path) -> io::Result<()> {
        self.mkdir(target, 0o755)?;
        self.bind(source, target)?;
        self.read_only(target, true)
    }

    /// `target`'s mount (with those under it when `recursive`) read-only and nosuid.
    fn read_only(&mut self, target: &Path, recursive: bool) -> io::Result<()> {
        let op = Op::ReadOnly {
            target: cpath(target)?,
            recursive,
        };
        self.push(format!("read-only {}", target.display()), op);
        Ok(())
    }

    /// A tmpfs of ours made read-only (its own flags: nothing is locked).
    fn remount_read_only(&mut self, target: &Path) -> io::Result<()> {
        let flags = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_NOSUID;
        self.mount(None, target, None, flags, None)
    }

    /// The step `index` names, for an error.
    pub fn step(&self, index: usize) -> &str {
        if index == usize::MAX {
            return "become the sandbox user (uid 993, gid 990)";
        }
        if let Some((path, _)) = index
            .checked_sub(self.ops.len())
            .and_then(|held| self.held.get(held))
        {
            return path.to_str().unwrap_or("open a folder to bind");
        }
        self.descriptions
            .get(index)
            .map_or("a step", String::as_str)
    }

    /// Runs the plan in the environment's init. Only raw system calls: no allocation, no locks.
    pub fn run(&self) -> Result<(), (usize, i32)> {
        for (index, op) in self.ops.iter().enumerate() {
            // SAFETY: every pointer comes from a CString owned by `self` or a local, alive for
            // the whole call; the calls have no other memory preconditions.
            let failed = unsafe { run_op(op) };
            if failed {
                // SAFETY: reading errno right after the failing call.
                return Err((index, unsafe { *libc::__errno_location() }));
            }
        }
        Ok(())
    }
}

/// True when `program` is under a folder bound into every ZIP root.
fn under_system_dirs(program: &Path) -> bool {
    let Ok(real) = std::fs::canonicalize(program) else {
        return false;
    };
    SYSTEM_DIRS
        .iter()
        .any(|dir| real.starts_with(Path::new("/").join(dir)))
}

/// One step; true when it failed (errno set).
///
/// # Safety
/// Only raw system calls on the op's own C strings.
unsafe fn run_op(op: &Op) -> bool {
    // SAFETY: see the function's contract.
    unsafe {
        match op {
            Op::Mount {
                source,
                target,
                fstype,
                flags,
                data,
            } => {
                let ptr = |s: &Option<CString>| s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
                libc::mount(
                    ptr(source),
                    target.as_ptr(),
                    ptr(fstype),
                    *flags,
                    ptr(data).cast(),
                ) != 0
            }
            Op::ReadOnly { target, recursive } => {
                let attr = MountAttr {
                    attr_set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID,
                    attr_clr: 0,
                    propagation: 0,
                    userns_fd: 0,
                };
                let done = libc::syscall(
                    libc::SYS_mount_setattr,
                    libc::AT_FDCWD,
                    target.as_ptr(),
                    if *recursive { AT_RECURSIVE } else { 0 },
                    &attr as *const MountAttr,
                    std::mem::size_of::<MountAttr>(),
                );
                if done == 0 {
                    return false;
                }
                if *libc::__errno_location() != libc::ENOSYS {
                    return true;
                }
                let locked = locked_flags(target);
                let flags =
                    libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_NOSUID | locked;
                libc::mount(
                    std::ptr::null(),
                    target.as_ptr(),
                    std::ptr::null(),
                    flags,
                    std::ptr::null(),
                ) != 0
            }
            Op::Mkdir(path, mode) => {
                if libc::mkdir(path.as_ptr(), *mode) != 0 {
                    return *libc::__errno_location() != libc::EEXIST;
                }
                // The umask would have cut the sticky, world-writable bits.
                libc::chmod(path.as_ptr(), *mode) != 0
            }
            Op::Touch(path) => {
                let fd = libc::open(
                    path.as_ptr(),
                    libc::O_WRONLY | libc::O_CREAT | libc::O_CLOEXEC,
                    0o644,
                );
                fd < 0 || libc::close(fd) != 0
            }
            Op::Symlink { target, link } => libc::symlink(target.as_ptr(), link.as_ptr()) != 0,
            Op::PivotRoot(root) => {
                let dot = c".".as_ptr();
                libc::chdir(root.as_ptr()) != 0
                    || libc::syscall(libc::SYS_pivot_root, dot, dot) != 0
                    || libc::umount2(dot, libc::MNT_DETACH) != 0
                    || libc::chdir(c"/".as_ptr()) != 0
            }
        }
    }
}

/// The mount flags of `path`'s file system that a user namespace may not drop on remount.
///
/// # Safety
/// Raw `statvfs` only.
unsafe fn locked_flags(path: &CString) -> c_ulong {
    // SAFETY: `stat` is plain old data, filled in by statvfs before being read; `path` is a
    // valid C string.
    let stat = unsafe {
        let mut stat: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(path.as_ptr(), &mut stat) != 0 {
            return 0;
        }
        stat
    };
    let pairs = [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ];
    pairs
        .iter()
        .filter(|(st, _)| stat.f_flag & st != 0)
        .fold(0, |flags, (_, ms)| flags | ms)
}
