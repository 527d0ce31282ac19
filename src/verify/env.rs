//! The environment verify gives a function on top of Lambda's own variables: the manifest's
//! `env` (from the metadata), then each `--env-file`, then each `--env`, the later winning.
//! Nothing comes from the host's environment: the sandbox starts every process from an empty one.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::{lambda_env, lambda_rules};

use super::input_file::{InputError, read_capped};

/// More than any set of variables Lambda takes (4 KB in all), with room for comments.
const MAX_ENV_FILE_BYTES: u64 = 1024 * 1024;

/// `--env-file` and `--env`, read and checked before any function runs.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pairs: Vec<(String, String)>,
}

impl Overrides {
    pub fn read(env_files: &[PathBuf], env_flags: &[String]) -> Result<Overrides> {
        let mut pairs = Vec::new();
        for path in env_files {
            // Like --event: a regular file only (a FIFO is refused, not waited on), and capped.
            let bytes = read_capped(path, MAX_ENV_FILE_BYTES).map_err(|err| {
                let why = match err {
                    InputError::Io(err) => err.to_string(),
                    InputError::NotRegular(what) => format!("it is {what}, not a regular file"),
                    InputError::TooLarge(size) => format!(
                        "it is {size} bytes, more than the {MAX_ENV_FILE_BYTES} read for variables"
                    ),
                };
                Error::config(format!(
                    "could not read the --env-file `{}`: {why}",
                    path.display()
                ))
                .with_help("pass the path of a readable file of KEY=VALUE lines")
            })?;
            let text = String::from_utf8(bytes).map_err(|_| {
                Error::config(format!("the --env-file `{}` is not UTF-8", path.display()))
                    .with_help("save it as UTF-8 text of KEY=VALUE lines")
            })?;
            pairs.extend(lambda_env::parse_env_file(&text, path)?);
        }
        for flag in env_flags {
            pairs.push(lambda_env::parse_env_flag(flag)?);
        }
        // What the overrides alone set must fit Lambda's 4 KB, as the metadata's `env` must.
        let set: BTreeMap<&String, &String> = pairs.iter().map(|(k, v)| (k, v)).collect();
        lambda_rules::check_env_bytes(lambda_rules::env_bytes(set)).map_err(|why| {
            Error::config(format!(
                "--env-file and --env set more than Lambda takes: {why}"
            ))
            .with_help("set only what the run needs; Lambda would refuse this environment")
        })?;
        Ok(Overrides { pairs })
    }

    /// The function's variables: `base` (the manifest's `env`) with the overrides on top.
    pub fn apply(&self, base: &BTreeMap<String, String>) -> Vec<(String, String)> {
        let mut env = base.clone();
        for (key, value) in &self.pairs {
            env.insert(key.clone(), value.clone());
        }
        env.into_iter().collect()
    }
}
