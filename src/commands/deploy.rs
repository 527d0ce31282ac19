//! `cargo lambda-pack deploy`: optionally pack, then deploy the manifest to AWS Lambda. In a build
//! without the `deploy` feature (no AWS SDK) the command still parses and says how to get it.

use crate::cli::DeployArgs;
use crate::error::Result;
use crate::output::Shell;
use crate::settings::Options;

#[cfg(feature = "deploy")]
pub fn run(args: &DeployArgs, options: &Options, shell: &Shell) -> Result<()> {
    use crate::cli::MessageFormat;
    if args.build {
        // The pack's manifest stays in its file: with --message-format json, stdout carries
        // deploy's one document and nothing else.
        let pack_options = Options {
            message_format: MessageFormat::Human,
            ..options.clone()
        };
        super::pack::run(&pack_options, shell)?;
    }
    crate::deploy::run(args, options, shell)
}

#[cfg(not(feature = "deploy"))]
pub fn run(_args: &DeployArgs, _options: &Options, _shell: &Shell) -> Result<()> {
    Err(crate::error::Error::config(
        "this cargo-lambda-pack was built without the `deploy` feature (the AWS SDK)",
    )
    .with_help(
        "install it with its default features (`cargo install cargo-lambda-pack`), or build with `--features deploy`",
    ))
}
