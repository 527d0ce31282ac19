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

use serde_json::Value;

use crate::error::{Error, Result};

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

/// Lambda's limit on a synchronous invocation's payload, and its refusal of a larger one.
pub const MAX_EVENT_BYTES: u64 = 6_291_456;
const EVENT_TOO_LARGE: &str = "RequestEntityTooLargeException: Request must be smaller than 6291456 bytes for the InvokeFunction operation";

/// Reads a JSON file given to `flag`: its bytes (sent as they are) and its value. Only a regular
/// file is read (a FIFO would block), and no more than Lambda would accept: an event over
/// 6,291,456 bytes is refused as Lambda refuses it; an expected response larger than the most a
/// response may be (and verify keeps) could never match.
pub fn read_json(path: &Path, flag: &str) -> Result<(Vec<u8>, Value)> {
    let cap = if flag == "--event" {
        MAX_EVENT_BYTES
    } else {
        super::MAX_RESPONSE_BYTES as u64
    };
    let bytes = read_capped(path, cap).map_err(|err| {
        let shown = path.display();
        match err {
            InputError::Io(err) => Error::config(format!(
                "could not read the {flag} file `{shown}`: {err}"
            ))
            .with_help(format!("pass a JSON file to {flag}")),
            InputError::NotRegular(what) => Error::config(format!(
                "the {flag} file `{shown}` is {what}, not a regular file; verify reads {flag} only from regular files (a pipe could block it forever)"
            ))
            .with_help(format!("write the JSON to a file first and pass that file to {flag}")),
            InputError::TooLarge(size) if flag == "--event" => Error::config(format!(
                "the --event file `{shown}` is {size} bytes; Lambda refuses it with {EVENT_TOO_LARGE}"
            ))
            .with_help("Lambda accepts synchronous events of at most 6,291,456 bytes (6 MB): pass a smaller event, or put the data in S3 and pass its location"),
            InputError::TooLarge(size) => Error::config(format!(
                "the {flag} file `{shown}` is {size} bytes, more than the {cap} bytes a Lambda response may have, so no response could match it"
            ))
            .with_help(format!("pass the expected response of at most {cap} bytes to {flag}")),
        }
    })?;
    let value = serde_json::from_slice(&bytes).map_err(|err| {
        Error::config(format!(
            "the {flag} file `{}` is not valid JSON: {err}",
            path.display()
        ))
        .with_help(format!("fix the JSON in `{}`", path.display()))
    })?;
    Ok((bytes, value))
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
