//! `required-features`, as cargo applies them: a bin or example whose required features are not
//! all enabled is left out of a build of its package, and naming it with `--bin`/`--example` is
//! an error. Passing such a target to cargo by name would stop the whole build, so the units
//! leave it out first and say why.
//!
//! The enabled features are computed from the package's own `[features]` table and the run's
//! feature flags: `default` unless `--no-default-features`, every feature with `--all-features`,
//! and each `-F` name (bare, for every selected package that has it, or `package/feature`),
//! expanded through the table. Features that other members' dependency declarations would switch
//! on through cargo's unification are not seen; a target they would enable is reported skipped,
//! and `-F package/feature` brings it in.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Error, Result};
use crate::settings::Options;
use crate::workspace::Package;

/// The features of `package` that a build with the run's feature flags enables.
pub fn enabled(package: &Package, options: &Options) -> BTreeSet<String> {
    let mut wanted: Vec<String> = Vec::new();
    if options.all_features {
        wanted.extend(package.features.keys().cloned());
    }
    if !options.no_default_features && package.features.contains_key("default") {
        wanted.push("default".into());
    }
    for flag in options
        .features
        .iter()
        .flat_map(|f| f.split([',', ' ']))
        .filter(|f| !f.is_empty())
    {
        match flag.split_once('/') {
            Some((pkg, feature)) if pkg == package.name => wanted.push(feature.to_string()),
            Some(_) => {}
            None => wanted.push(flag.to_string()),
        }
    }
    expand(&package.features, wanted)
}

/// Follows the features table from `wanted` to every feature it switches on. Entries naming
/// another crate's feature (`dep/feature`, `dep?/feature`) enable the dependency's implicit
/// feature when there is one; `dep:name` enables nothing of this package's own.
fn expand(table: &BTreeMap<String, Vec<String>>, wanted: Vec<String>) -> BTreeSet<String> {
    let mut enabled = BTreeSet::new();
    let mut queue = wanted;
    while let Some(feature) = queue.pop() {
        let name = match feature.split_once('/') {
            Some((dep, _)) if !dep.ends_with('?') => dep.to_string(),
            Some(_) => continue,
            None if feature.starts_with("dep:") => continue,
            None => feature.clone(),
        };
        if feature.contains('/') {
            enabled.insert(feature.clone());
        }
        if !table.contains_key(&name) || !enabled.insert(name.clone()) {
            continue;
        }
        queue.extend(table[&name].iter().cloned());
    }
    enabled
}

/// What a target needs and does not have: its required features that are not enabled.
fn missing<'a>(package: &'a Package, target: &str, enabled: &BTreeSet<String>) -> Vec<&'a str> {
    package
        .required_features
        .get(target)
        .map(|required| {
            required
                .iter()
                .filter(|f| !enabled.contains(f.as_str()))
                .map(String::as_str)
                .collect()
        })
        .unwrap_or_default()
}

/// The package as this run builds it: bins and examples whose required features are off are
/// left out, each with a warning (or an error when `--bin`/`--example` names it, as cargo).
pub fn buildable(
    package: &Package,
    options: &Options,
    warnings: &mut Vec<String>,
) -> Result<Package> {
    if package.required_features.is_empty() {
        return Ok(package.clone());
    }
    let enabled = enabled(package, options);
    let mut kept = package.clone();
    for (kind, targets, named) in [
        ("bin", &mut kept.bins, &options.selection.bins),
        ("example", &mut kept.examples, &options.selection.examples),
    ] {
        let mut left_out = Vec::new();
        targets.retain(|target| {
            let missing = missing(package, target, &enabled);
            if missing.is_empty() {
                return true;
            }
            left_out.push((target.clone(), missing));
            false
        });
        for (target, missing) in left_out {
            let features = missing
                .iter()
                .map(|f| format!("`{f}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let flag = missing
                .iter()
                .map(|f| format!("{}/{f}", package.name))
                .collect::<Vec<_>>()
                .join(",");
            if named.contains(&target) {
                return Err(Error::config(format!(
                    "{kind} `{target}` of package `{}` requires the features: {features}",
                    package.name
                ))
                .with_note(format!(
                    "`required-features` in `{}`",
                    package.manifest_path.display()
                ))
                .with_help(format!("enable them with `-F {flag}`")));
            }
            warnings.push(format!(
                "{kind} `{target}` of package `{}` is skipped: it requires the features {features} (`required-features` in `{}`); pack it with `-F {flag}`",
                package.name,
                package.manifest_path.display()
            ));
        }
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(entries: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn features_expand_through_the_table_and_stop_at_other_crates() {
        let t = table(&[
            ("default", &["json"]),
            ("json", &["dep:serde_json", "tokio/fs"]),
            ("extra", &["json"]),
            ("tokio", &[]),
        ]);
        let on = expand(&t, vec!["default".into()]);
        assert_eq!(
            on.iter().map(String::as_str).collect::<Vec<_>>(),
            ["default", "json", "tokio", "tokio/fs"]
        );
        assert!(!on.contains("extra"));
        assert!(expand(&t, vec!["nope".into()]).is_empty());
    }
}
