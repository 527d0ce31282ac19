//! `cargo lambda-pack verify`: optionally pack, then run the manifest's functions. It runs the
//! packaged Linux binaries in Linux namespaces, so on other systems it only says so.

use crate::cli::VerifyArgs;
use crate::error::Result;
use crate::output::Shell;
use crate::settings::Options;

#[cfg(target_os = "linux")]
pub fn run(args: &VerifyArgs, options: &Options, shell: &Shell) -> Result<()> {
    use crate::cli::MessageFormat;
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

#[cfg(not(target_os = "linux"))]
pub fn run(_args: &VerifyArgs, _options: &Options, _shell: &Shell) -> Result<()> {
    // Before any pack (`--build`): nothing is built that could not be run here.
    Err(crate::error::Error::new(
        crate::error::ErrorKind::ToolchainMissing,
        format!(
            "`verify` needs Linux: it runs the packaged functions' Linux binaries in Linux \
             namespaces, and this machine runs {}",
            std::env::consts::OS
        ),
    )
    .with_note("pack, plan, inspect, deploy and merge work on this machine")
    .with_help(
        "run `cargo lambda-pack verify` on Linux (a Linux VM, container or CI runner): copy the \
         output directory there, or pack there with `verify --build`",
    ))
}
