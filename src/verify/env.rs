//! The environment verify gives a function on top of Lambda's own variables: the manifest's
//! `env` (from the metadata), then each `--env-file`, then each `--env`, the later winning.
//! Nothing comes from the host's environment: the sandbox starts every process from an empty one.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::lambda_env;

/// `--env-file` and `--env`, read and checked before any function runs.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pairs: Vec<(String, String)>,
}

impl Overrides {
    pub fn read(env_files: &[PathBuf], env_flags: &[String]) -> Result<Overrides> {
        let mut pairs = Vec::new();
        for path in env_files {
            let text = std::fs::read_to_string(path).map_err(|err| {
                Error::config(format!(
                    "could not read the --env-file `{}`: {err}",
                    path.display()
                ))
                .with_help("pass the path of a readable file of KEY=VALUE lines")
            })?;
            pairs.extend(lambda_env::parse_env_file(&text, path)?);
        }
        for flag in env_flags {
            pairs.push(lambda_env::parse_env_flag(flag)?);
        }
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
