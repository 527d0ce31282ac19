//! Reading the files a user hands to `verify` (`--event`, `--expect`): regular files only, opened
//! without blocking, never more than a cap.
//!
//! A FIFO with no writer would block `open` forever, and `/dev/zero` would fill memory, so the
//! file is opened with `O_NONBLOCK`, its type checked on the open descriptor (no race with a
//! rename), and at most `cap + 1` bytes are read.

use std::fs::File;
use std::io::Read;
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

/// The bytes of the regular file at `path`, at most `cap` of them.
pub fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>, InputError> {
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
    read_at_most(file, cap)
}

/// Reads up to `cap` bytes; a file that grew past it since `metadata` is still refused.
fn read_at_most(file: File, cap: u64) -> Result<Vec<u8>, InputError> {
    let mut bytes = Vec::new();
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(InputError::Io)?;
    if bytes.len() as u64 > cap {
        return Err(InputError::TooLarge(bytes.len() as u64));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_are_read_up_to_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("event.json");
        std::fs::write(&path, b"{\"a\":1}").unwrap();
        assert_eq!(read_capped(&path, 7).unwrap(), b"{\"a\":1}");
        assert!(matches!(
            read_capped(&path, 6),
            Err(InputError::TooLarge(7))
        ));
    }

    #[test]
    fn fifos_and_directories_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        assert!(matches!(
            read_capped(&fifo, 10),
            Err(InputError::NotRegular("a FIFO (named pipe)"))
        ));
        assert!(matches!(
            read_capped(dir.path(), 10),
            Err(InputError::NotRegular("a directory"))
        ));
        assert!(matches!(
            read_capped(&dir.path().join("missing"), 10),
            Err(InputError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound
        ));
    }
}
