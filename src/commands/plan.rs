//! `cargo lambda-pack plan`: the pack's stages up to the plan, printed; nothing is written.

use std::path::Path;

use super::pack::{Mode, check_findings, plan_run};
use crate::cli::MessageFormat;
use crate::error::Result;
use crate::output::{Shell, stdout_error};
use crate::plan::Plan;
use crate::report;
use crate::settings::Options;

pub fn run(options: &Options, shell: &Shell) -> Result<()> {
    let planned = plan_run(options, shell, Mode::Plan)?;
    let plan = &planned.plan;
    print(plan, &planned.out_dir, options.message_format, shell)?;
    check_findings(plan)?;
    shell.status(
        "Planned",
        format!("{} artifact(s); nothing was written", plan.artifacts.len()),
    );
    Ok(())
}

/// The plan as JSON on stdout, or as the listing for people on stderr.
fn print(plan: &Plan, out_dir: &Path, format: MessageFormat, shell: &Shell) -> Result<()> {
    if format == MessageFormat::Json {
        let json = serde_json::to_string_pretty(plan).expect("the plan always serializes");
        shell.print_data(&json).map_err(stdout_error)?;
    } else {
        shell.print_block(&report::plan_listing(plan, out_dir));
        if let Some(shards) = &plan.shards {
            shell.print_block(&crate::shard::listing_text(shards));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
