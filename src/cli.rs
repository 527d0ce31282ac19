//! Command-line types, mirroring cargo's flag names and help headings. No logic lives here:
//! The settings stage turns these raw values into validated settings.

use std::path::PathBuf;

use clap::builder::styling::{AnsiColor, Effects, Styles};
use clap::{Args, Parser, Subcommand, ValueEnum};

const PACKAGE_SELECTION: &str = "Package Selection";
const TARGET_SELECTION: &str = "Target Selection";
const FEATURE_SELECTION: &str = "Feature Selection";
const COMPILATION_OPTIONS: &str = "Compilation Options";
const LAMBDA_OPTIONS: &str = "Lambda Options";
const MANIFEST_OPTIONS: &str = "Manifest Options";
const VERIFY_OPTIONS: &str = "Verify Options";
const DEPLOY_OPTIONS: &str = "Deploy Options";

/// cargo's own help colours, so `cargo lambda-pack --help` reads like `cargo build --help`.
fn cargo_styles() -> Styles {
    Styles::styled()
        .header(AnsiColor::Green.on_default().effects(Effects::BOLD))
        .usage(AnsiColor::Green.on_default().effects(Effects::BOLD))
        .literal(AnsiColor::Cyan.on_default().effects(Effects::BOLD))
        .placeholder(AnsiColor::Cyan.on_default())
        .error(AnsiColor::Red.on_default().effects(Effects::BOLD))
        .valid(AnsiColor::Cyan.on_default().effects(Effects::BOLD))
        .invalid(AnsiColor::Yellow.on_default().effects(Effects::BOLD))
}

/// cargo runs a subcommand `cargo-X` as `cargo-X X <args>`; this outer level absorbs the `X`.
#[derive(Debug, Parser)]
#[command(name = "cargo", bin_name = "cargo", styles = cargo_styles())]
pub enum CargoCli {
    #[command(name = "lambda-pack", version, about, long_about = None)]
    LambdaPack(Box<LambdaPackCli>),
    /// The linker wrapper scripts written for zig call back into this binary as `zig cc -- ...`.
    #[command(subcommand, hide = true)]
    Zig(cargo_zigbuild::Zig),
}

/// Cross-compile the workspace for AWS Lambda and write each crate's artifact.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct LambdaPackCli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub pack: PackArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build and measure, then show every artifact that a pack would write, and why; writes nothing
    /// under the output directory.
    Plan(PackArgs),
    /// Run packaged functions, with their layers and extensions, against a local Lambda Runtime and
    /// Extensions API (offline, no Docker).
    Verify(VerifyArgs),
    /// Print what cargo-lambda-pack reads from binaries: architecture, linkage, needed libraries,
    /// glibc versions; with --runtime, the findings against that runtime.
    Inspect(InspectArgs),
    /// Publish the manifest's layers and extensions and create or update its functions in the AWS
    /// account, changing only what differs.
    Deploy(DeployArgs),
    /// Join the output directories of several runs (the shards of --shard K/N) into one output
    /// directory and one manifest, checking every artifact's sha256.
    Merge(MergeArgs),
}

/// `cargo lambda-pack merge <OUT-DIR|MANIFEST>... --out-dir DIR`
#[derive(Clone, Debug, Args)]
pub struct MergeArgs {
    /// Output directories of earlier runs, or their manifest.json files
    #[arg(value_name = "OUT-DIR|MANIFEST", required = true)]
    pub inputs: Vec<PathBuf>,

    /// Directory to write the merged artifacts and manifest.json to (replaced whole)
    #[arg(long, value_name = "PATH", required = true)]
    pub out_dir: PathBuf,

    /// Output format: `json` prints the merged manifest on stdout
    #[arg(long, value_enum, value_name = "FMT")]
    pub message_format: Option<MessageFormat>,

    /// Coloring
    #[arg(long, value_enum, value_name = "WHEN")]
    pub color: Option<ColorChoice>,
}

/// `cargo lambda-pack deploy [FUNCTION]...`
#[derive(Clone, Debug, Args)]
pub struct DeployArgs {
    /// Functions to deploy, by artifact name, with the layers they attach [default: every
    /// artifact of this workspace in the manifest]
    #[arg(value_name = "FUNCTION")]
    pub functions: Vec<String>,

    /// Execution role for functions that do not exist yet (over the `iam_role` metadata key)
    #[arg(long, value_name = "ARN", help_heading = DEPLOY_OPTIONS)]
    pub iam_role: Option<String>,

    /// Bucket that ZIPs too large to send inline go through (over the `s3_bucket` metadata key)
    #[arg(long, value_name = "BUCKET", help_heading = DEPLOY_OPTIONS)]
    pub s3_bucket: Option<String>,

    /// Read the account and print what would be published, created and updated, and why;
    /// change nothing
    #[arg(long, help_heading = DEPLOY_OPTIONS)]
    pub dry_run: bool,

    /// Publish a version of each deployed function
    #[arg(long, help_heading = DEPLOY_OPTIONS)]
    pub publish: bool,

    /// Point this alias at the published version (implies --publish)
    #[arg(long, value_name = "NAME", help_heading = DEPLOY_OPTIONS)]
    pub alias: Option<String>,

    /// Pack first (with the same package, feature and Lambda options), then deploy
    #[arg(long, help_heading = DEPLOY_OPTIONS)]
    pub build: bool,

    /// After deploying, delete the functions tagged as this workspace's that its manifest no
    /// longer lists (never an untagged function or another workspace's); each is printed
    #[arg(long, help_heading = DEPLOY_OPTIONS)]
    pub prune: bool,

    /// With --prune: also delete this workspace's layer versions that no version of any function
    /// in the account attaches
    #[arg(long, requires = "prune", help_heading = DEPLOY_OPTIONS)]
    pub prune_layers: bool,

    #[command(flatten)]
    pub pack: PackArgs,
}

/// `cargo lambda-pack verify [FUNCTION]...`
#[derive(Clone, Debug, Args)]
pub struct VerifyArgs {
    /// Functions to run, by artifact name [default: every function in the manifest]
    #[arg(value_name = "FUNCTION")]
    pub functions: Vec<String>,

    /// JSON event to invoke with [default: {}]
    #[arg(long, value_name = "FILE", help_heading = VERIFY_OPTIONS)]
    pub event: Option<PathBuf>,

    /// JSON the response must equal (compared as JSON, not as text)
    #[arg(long, value_name = "FILE", help_heading = VERIFY_OPTIONS)]
    pub expect: Option<PathBuf>,

    /// Number of invokes per function
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000), help_heading = VERIFY_OPTIONS)]
    pub invokes: u32,

    /// Seconds an invoke may take before it counts as timed out
    #[arg(long, value_name = "SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=900), help_heading = VERIFY_OPTIONS)]
    pub timeout: u64,

    /// Pack first (with the same package, feature and Lambda options), then verify
    #[arg(long, help_heading = VERIFY_OPTIONS)]
    pub build: bool,

    /// Set an environment variable for the function (repeatable; wins over --env-file and the
    /// metadata's `env`)
    #[arg(long = "env", value_name = "KEY=VALUE", help_heading = VERIFY_OPTIONS)]
    pub env: Vec<String>,

    /// Read environment variables from a dotenv file (KEY=VALUE lines; repeatable), over the
    /// metadata's `env`
    #[arg(long, value_name = "FILE", help_heading = VERIFY_OPTIONS)]
    pub env_file: Vec<PathBuf>,

    /// Run up to N invocations at once, as Lambda Managed Instances do (sets
    /// AWS_LAMBDA_MAX_CONCURRENCY=N; provided.al2023 only) [default: one at a time]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64), help_heading = VERIFY_OPTIONS)]
    pub concurrency: Option<u32>,

    /// Send this tenant id with every invocation (Lambda-Runtime-Aws-Tenant-Id, the handler's
    /// context.tenant_id), as tenant isolation mode does
    #[arg(long, value_name = "ID", help_heading = VERIFY_OPTIONS)]
    pub tenant_id: Option<String>,

    /// Memory the function may use in this run, in MB, over its `memory` key (128-10240)
    /// [default: the key, else 128]
    #[arg(long, value_name = "MB", value_parser = clap::value_parser!(u32).range(128..=10_240), help_heading = VERIFY_OPTIONS)]
    pub memory: Option<u32>,

    /// Size of /tmp in this run, in MB, over its `ephemeral_storage` key (512-10240)
    /// [default: the key, else 512]
    #[arg(long, value_name = "MB", value_parser = clap::value_parser!(u32).range(512..=10_240), help_heading = VERIFY_OPTIONS)]
    pub ephemeral_storage: Option<u32>,

    /// Run without the sandbox (where the kernel refuses user namespaces): ZIP functions run as
    /// your user with the host's file system writable, no /tmp, memory or process limits, and
    /// their processes may outlive verify; images cannot run
    #[arg(long, help_heading = VERIFY_OPTIONS)]
    pub no_sandbox: bool,

    /// The environment's network: `own` (a loopback of its own: the function reaches nothing
    /// outside verify, and fixed ports never collide between verifies) or `host` (the host's
    /// network, to reach a local DynamoDB, LocalStack or moto while verifying)
    #[arg(long, value_enum, value_name = "MODE", default_value_t = NetworkArg::Own, help_heading = VERIFY_OPTIONS)]
    pub network: NetworkArg,

    #[command(flatten)]
    pub pack: PackArgs,
}

/// `cargo lambda-pack inspect <FILE>...`
#[derive(Clone, Debug, Args)]
pub struct InspectArgs {
    /// Binaries or shared libraries to read
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,

    /// Also check each file against this runtime
    #[arg(long, value_enum, value_name = "RUNTIME")]
    pub runtime: Option<RuntimeArg>,

    /// Architecture to check against with --runtime [default: the file's own]
    #[arg(long, value_enum, value_name = "ARCH", requires = "runtime")]
    pub arch: Option<ArchArg>,

    /// Output format: `json` prints the facts (and findings) on stdout
    #[arg(long, value_enum, value_name = "FMT")]
    pub message_format: Option<MessageFormat>,

    /// Coloring
    #[arg(long, value_enum, value_name = "WHEN")]
    pub color: Option<ColorChoice>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MessageFormat {
    Human,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum CompilerChoice {
    #[default]
    /// zig (pinned glibc) when it is installed, else musl linked by rust-lld
    Auto,
    /// zig through cargo-zigbuild; an error when zig is missing
    Zig,
    /// plain cargo: rust-lld for musl targets, the host linker for a host gnu target
    Cargo,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ArchArg {
    #[value(name = "x86_64")]
    X86_64,
    #[value(name = "arm64")]
    Arm64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum NetworkArg {
    Own,
    Host,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RuntimeArg {
    #[value(name = "provided.al2023")]
    ProvidedAl2023,
    #[value(name = "provided.al2")]
    ProvidedAl2,
}

/// Everything a pack (or a plan) takes.
#[derive(Clone, Debug, Default, Args)]
pub struct PackArgs {
    /// Output format for data on stdout: `json` prints the manifest (the plan for `plan`, the
    /// results for `verify`, the report (or with --dry-run the plan) for `deploy`)
    #[arg(long, value_enum, value_name = "FMT")]
    pub message_format: Option<MessageFormat>,

    /// Use verbose output (-vv very verbose)
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Do not print cargo log messages or progress
    #[arg(short, long)]
    pub quiet: bool,

    /// Coloring
    #[arg(long, value_enum, value_name = "WHEN")]
    pub color: Option<ColorChoice>,

    /// Package(s) to pack
    #[arg(short, long = "package", value_name = "SPEC", help_heading = PACKAGE_SELECTION)]
    pub packages: Vec<String>,

    /// Pack all packages in the workspace
    #[arg(long, help_heading = PACKAGE_SELECTION)]
    pub workspace: bool,

    /// Exclude packages from the pack (with --workspace)
    #[arg(long, value_name = "SPEC", help_heading = PACKAGE_SELECTION)]
    pub exclude: Vec<String>,

    /// Pack only shard K of N: a deterministic split of the selected functions (with what they
    /// attach) across N runs, e.g. one per CI runner
    #[arg(long, value_name = "K/N", help_heading = PACKAGE_SELECTION)]
    pub shard: Option<String>,

    /// Pack only the specified binary
    #[arg(long = "bin", value_name = "NAME", help_heading = TARGET_SELECTION)]
    pub bins: Vec<String>,

    /// Pack only the specified example, as a function
    #[arg(long = "example", value_name = "NAME", help_heading = TARGET_SELECTION)]
    pub examples: Vec<String>,

    /// Pack all examples of the selected packages, as functions
    #[arg(long = "examples", help_heading = TARGET_SELECTION)]
    pub all_examples: bool,

    /// Space or comma separated list of features to activate
    #[arg(short = 'F', long, value_name = "FEATURES", help_heading = FEATURE_SELECTION)]
    pub features: Vec<String>,

    /// Activate all available features
    #[arg(long, help_heading = FEATURE_SELECTION)]
    pub all_features: bool,

    /// Do not activate the `default` feature
    #[arg(long, help_heading = FEATURE_SELECTION)]
    pub no_default_features: bool,

    /// Build artifacts with the specified profile [default: release]
    #[arg(long, value_name = "PROFILE-NAME", help_heading = COMPILATION_OPTIONS)]
    pub profile: Option<String>,

    /// Number of parallel jobs, defaults to # of CPUs
    #[arg(short, long, value_name = "N", help_heading = COMPILATION_OPTIONS)]
    pub jobs: Option<u32>,

    /// Build for this exact Rust target triple (e.g. x86_64-unknown-linux-gnu) for every crate
    #[arg(long, value_name = "TRIPLE", conflicts_with = "arch", help_heading = COMPILATION_OPTIONS)]
    pub target: Option<String>,

    /// Directory for all generated artifacts
    #[arg(long, value_name = "DIRECTORY", help_heading = COMPILATION_OPTIONS)]
    pub target_dir: Option<PathBuf>,

    /// Lambda architecture for every crate, overriding the metadata
    #[arg(long, value_enum, value_name = "ARCH", help_heading = LAMBDA_OPTIONS)]
    pub arch: Option<ArchArg>,

    /// Lambda runtime for every crate, overriding the metadata
    #[arg(long, value_enum, value_name = "RUNTIME", help_heading = LAMBDA_OPTIONS)]
    pub runtime: Option<RuntimeArg>,

    /// How to compile and link
    #[arg(long, value_enum, value_name = "COMPILER", default_value = "auto", help_heading = LAMBDA_OPTIONS)]
    pub compiler: CompilerChoice,

    /// Downgrade a binary-check finding to a warning (e.g. glibc-too-new)
    #[arg(long, value_name = "FINDING", value_parser = clap::builder::PossibleValuesParser::new(crate::inspect::codes::ALL), help_heading = LAMBDA_OPTIONS)]
    pub allow: Vec<String>,

    /// Push every image whose function sets image_repository, tagged <version>-<arch>
    #[arg(long, help_heading = LAMBDA_OPTIONS)]
    pub push: bool,

    /// Where to write artifacts and manifest.json [default: <target-dir>/lambda-pack]
    #[arg(long, value_name = "PATH", help_heading = LAMBDA_OPTIONS)]
    pub out_dir: Option<PathBuf>,

    /// Path to Cargo.toml
    #[arg(long, value_name = "PATH", help_heading = MANIFEST_OPTIONS)]
    pub manifest_path: Option<PathBuf>,

    /// Assert that `Cargo.lock` will remain unchanged
    #[arg(long, help_heading = MANIFEST_OPTIONS)]
    pub locked: bool,

    /// Run without accessing the network
    #[arg(long, help_heading = MANIFEST_OPTIONS)]
    pub offline: bool,

    /// Equivalent to specifying both --locked and --offline
    #[arg(long, help_heading = MANIFEST_OPTIONS)]
    pub frozen: bool,
}

/// Parses argv as cargo hands it over (`cargo-lambda-pack lambda-pack ...`). When the binary is
/// run directly (`cargo-lambda-pack --help`), the missing subcommand name is supplied.
pub fn parse_from<I, T>(args: I) -> Result<CargoCli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let mut args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    let first = args.get(1).and_then(|a| a.to_str());
    if !matches!(first, Some("lambda-pack" | "zig")) {
        args.insert(1.min(args.len()), "lambda-pack".into());
    }
    CargoCli::try_parse_from(args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        CargoCli::command().debug_assert();
    }

    #[test]
    fn cargo_style_invocation_parses() {
        let CargoCli::LambdaPack(cli) = parse_from([
            "cargo-lambda-pack",
            "lambda-pack",
            "-p",
            "orders",
            "--arch",
            "arm64",
            "-F",
            "a,b",
        ])
        .unwrap() else {
            panic!("expected lambda-pack")
        };
        assert_eq!(cli.pack.packages, ["orders"]);
        assert_eq!(cli.pack.arch, Some(ArchArg::Arm64));
        assert!(cli.command.is_none());
    }

    #[test]
    fn direct_invocation_and_plan_subcommand_parse() {
        let CargoCli::LambdaPack(cli) =
            parse_from(["cargo-lambda-pack", "plan", "--runtime", "provided.al2"]).unwrap()
        else {
            panic!("expected lambda-pack")
        };
        let Some(Command::Plan(args)) = cli.command else {
            panic!("expected plan")
        };
        assert_eq!(args.runtime, Some(RuntimeArg::ProvidedAl2));
    }

    #[test]
    fn target_excludes_arch() {
        let err = parse_from([
            "cargo-lambda-pack",
            "--arch",
            "arm64",
            "--target",
            "x86_64-unknown-linux-gnu",
        ])
        .unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
    }
}
