//! One file per subcommand, each returning a `Result`; `lib.rs` turns an error into its exit code.

pub mod deploy;
pub mod inspect;
pub mod merge;
pub mod pack;
pub mod plan;
pub mod verify;
