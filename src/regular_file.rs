//! Files a user names on the command line (`inspect`'s binaries, `verify`'s `--event`): regular
//! files only, opened without blocking, never more than a cap.
//!
//! A FIFO with no writer would block `open` forever, and `/dev/zero` would fill memory, so the
//! file is opened with `O_NONBLOCK`, its type checked on the open descriptor (no race with a
//! rename), and at most `cap` bytes are read or mapped.

use std::fs::File;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Why a user's file could not be used.
#[derive(Debug)]
pub enum InputError {
    /// Opening or reading failed.
    Io(std::io::Error),
    /// Not a regular file; the text names what it is (`a FIFO`, `a directory`, ...).
    NotRegular(&'static str),
    /// Larger than the cap; the size when known (else the cap + 1 bytes that were read).
    TooLarge(u64),
}

/// The regular file at `path`, open for reading, and its size, refused above `cap` bytes.
fn open_regular(path: &Path, cap: u64) -> Result<(File, u64), InputError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(InputError::Io)?;
    let meta = file.metadata().map_err(InputError::Io)?;
    let kind = meta.file_type();
    if !kind.is_file() {
        return Err(InputError::NotRegular(if kind.is_fifo() {
            "a FIFO (named pipe)"
        } else if kind.is_dir() {
            "a directory"
        } else if kind.is_socket() {
            "a socket"
        } else if kind.is_char_device() {
            "a character device"
        } else if kind.is_block_device() {
            "a block device"
        } else {
            "not a regular file"
        }));
    }
    if meta.len() > cap {
        return Err(InputError::TooLarge(meta.len()));
    }
    Ok((file, meta.len()))
}

/// The bytes of the regular file at `path`, at most `cap` of them. verify's (Linux only).
#[cfg(any(target_os = "linux", test))]
pub fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>, InputError> {
    use std::io::Read;
    let (file, _) = open_regular(path, cap)?;
    // A file that grew past the cap since `metadata` is still refused.
    let mut bytes = Vec::new();
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(InputError::Io)?;
    if bytes.len() as u64 > cap {
        return Err(InputError::TooLarge(bytes.len() as u64));
    }
    Ok(bytes)
}

/// The regular file at `path`, at most `cap` bytes, mapped into memory rather than read: a large
/// binary costs address space, not memory.
pub struct Mapped(Option<memmap2::Mmap>);

impl std::ops::Deref for Mapped {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.0.as_deref().unwrap_or_default()
    }
}

/// Maps the regular file at `path` (see [`Mapped`]), refused above `cap` bytes.
pub fn map_capped(path: &Path, cap: u64) -> Result<Mapped, InputError> {
    let (file, len) = open_regular(path, cap)?;
    if len == 0 {
        // An empty mapping is an error to the kernel; an empty file is simply no bytes.
        return Ok(Mapped(None));
    }
    // SAFETY: the map is only read. A file truncated by another process while it is mapped
    // would fault the reader; that is the price of not copying a binary of gigabytes, the same
    // one every tool that maps files (linkers, debuggers) pays.
    let map = unsafe { memmap2::MmapOptions::new().len(len as usize).map(&file) }
        .map_err(InputError::Io)?;
    Ok(Mapped(Some(map)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_are_read_and_mapped_up_to_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("event.json");
        std::fs::write(&path, b"{\"a\":1}").unwrap();
        assert_eq!(read_capped(&path, 7).unwrap(), b"{\"a\":1}");
        assert_eq!(&*map_capped(&path, 7).unwrap(), b"{\"a\":1}");
        assert!(matches!(
            read_capped(&path, 6),
            Err(InputError::TooLarge(7))
        ));
        assert!(matches!(map_capped(&path, 6), Err(InputError::TooLarge(7))));
        let empty = dir.path().join("empty");
        std::fs::write(&empty, b"").unwrap();
        assert!(map_capped(&empty, 6).unwrap().is_empty());
    }

    #[test]
    fn fifos_devices_and_directories_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        for read in [
            |p: &Path| read_capped(p, 10).map(drop),
            |p: &Path| map_capped(p, 10).map(drop),
        ] {
            assert!(matches!(
                read(&fifo),
                Err(InputError::NotRegular("a FIFO (named pipe)"))
            ));
            assert!(matches!(
                read(dir.path()),
                Err(InputError::NotRegular("a directory"))
            ));
            assert!(matches!(
                read(Path::new("/dev/zero")),
                Err(InputError::NotRegular("a character device"))
            ));
            assert!(matches!(
                read(&dir.path().join("missing")),
                Err(InputError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound
            ));
        }
    }
}
