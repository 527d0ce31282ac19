//! The errors a user can cause, each with a message, a `help:` line and a documented exit code.
//!
//! One error type serves the whole pipeline: what differs between failures is their [`ErrorKind`]
//! (which decides the exit code) and their text. Keeping the kind separate from the text lets every
//! stage say precisely what went wrong (the file, the key, the crate) without a variant per sentence.

use std::fmt;
use std::path::Path;

/// What class of failure an [`Error`] is; each maps to one exit code, documented in docs/src/exit-codes.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// A bug or an unexpected I/O failure outside the output directory.
    Internal,
    /// `[package.metadata.lambda-pack]`, a flag's value, an include, or the package selection is wrong.
    Config,
    /// cargo failed to build the workspace (its diagnostics were shown as they came).
    BuildFailed,
    /// The selection contains no crate with a binary to pack.
    NothingToPack,
    /// A toolchain piece is missing: a rustup target, zig, or a linker.
    ToolchainMissing,
    /// Writing an artifact or the manifest failed; nothing already there was replaced.
    WriteFailed,
    /// A binary would fail on Lambda (wrong architecture, glibc too new, a missing library), or
    /// a file given to `inspect` is not a readable ELF binary.
    BinaryCheck,
    /// An artifact breaks one of Lambda's limits (size, layer count) and no other format fits.
    LimitExceeded,
    /// `verify`: a function failed, timed out, crashed, or answered other than expected.
    VerifyFailed,
    /// A registry could not be used: unreachable, access refused, no image for the architecture,
    /// a blob that does not match its digest, or a base image missing from the cache offline.
    Registry,
    /// `deploy`: AWS could not be used: no credentials or region, a refused call (access denied,
    /// a missing role), a function that exists in a form this tool will not change, or a failure
    /// part way (what was done is reported; the next run completes the rest).
    Aws,
}

impl ErrorKind {
    /// The process exit code for this kind. 2 is left to command-line usage errors, as clap uses it.
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorKind::Internal => 1,
            ErrorKind::Config => 3,
            ErrorKind::BuildFailed => 4,
            ErrorKind::NothingToPack => 5,
            ErrorKind::ToolchainMissing => 6,
            ErrorKind::WriteFailed => 7,
            ErrorKind::BinaryCheck => 8,
            ErrorKind::LimitExceeded => 9,
            ErrorKind::VerifyFailed => 10,
            ErrorKind::Registry => 11,
            ErrorKind::Aws => 12,
        }
    }
}

/// A failure with everything a person needs to fix it.
#[derive(Debug)]
pub struct Error {
    pub kind: ErrorKind,
    /// One sentence saying what is wrong, naming the file, key or crate.
    pub message: String,
    /// Further facts, one per line (e.g. the allowed values).
    pub notes: Vec<String>,
    /// What to do about it.
    pub help: Option<String>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            notes: Vec::new(),
            help: None,
        }
    }

    pub fn config(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Config, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Internal, message)
    }

    pub fn toolchain(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::ToolchainMissing, message)
    }

    /// An I/O failure while writing into the output directory.
    pub fn write(path: &Path, err: &std::io::Error) -> Self {
        Error::new(
            ErrorKind::WriteFailed,
            format!("could not write `{}`: {err}", path.display()),
        )
        .with_help(
            "check that the output directory is writable and the disk has room; \
             artifacts from the previous run were left as they were",
        )
    }

    /// An I/O failure while reading an input such as a built binary or an include.
    pub fn read(path: &Path, err: &std::io::Error) -> Self {
        Error::internal(format!("could not read `{}`: {err}", path.display()))
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    pub fn exit_code(&self) -> i32 {
        self.kind.exit_code()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        for note in &self.notes {
            write!(f, "\n  note: {note}")?;
        }
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}
