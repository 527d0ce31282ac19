//! Reading the files a user hands to `verify` (`--event`, `--expect`): regular files only, opened
//! without blocking, never more than a cap (`regular_file` does the reading).

use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};
pub use crate::regular_file::{InputError, read_capped};

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
