//! `cargo lambda-pack verify`: optionally pack, then run the manifest's functions.

use crate::cli::{MessageFormat, VerifyArgs};
use crate::error::Result;
use crate::output::Shell;
use crate::settings::Options;

pub fn run(args: &VerifyArgs, options: &Options, shell: &Shell) -> Result<()> {
    if args.build {
        // The pack's manifest stays in its file: with --message-format json, stdout carries
        // verify's one document and nothing else.
        let pack_options = Options {
            message_format: MessageFormat::Human,
            ..options.clone()
        };
        super::pack::run(&pack_options, shell)?;
    }
    crate::verify::command::run(args, options, shell)
}
