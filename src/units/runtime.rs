//! Custom runtimes and the functions that run on them: a `role = "runtime"` crate becomes a layer
//! whose one binary lands at `/opt/bootstrap`; a `role = "function"` package without a binary is
//! a handler-only function (its includes, e.g. a script or a WebAssembly file, and `handler`).

use super::*;

/// What Lambda passes as `_HANDLER` when a function sets no `handler`: the name OS-only
/// runtimes conventionally get.
pub const DEFAULT_HANDLER: &str = "bootstrap";

/// The runtime layer of `package`, if it has a bin whose role is `runtime`. A runtime layer
/// holds exactly one bootstrap, so several candidates are an error unless `--bin` (on a selected
/// package) picks one; per-bin tables can give the other bins another role.
pub(super) fn runtime_draft(
    package: &Package,
    options: &Options,
    package_tables: &[(&MetadataTable, &'static str)],
    mut candidates: Vec<(String, String)>,
    package_is_runtime: bool,
    narrow_to_selected_bins: bool,
) -> Result<Option<Draft>> {
    if package_is_runtime && package.bins.is_empty() {
        return Err(Error::config(format!(
            "role = \"runtime\" in [package.metadata.lambda-pack] of `{}`: package `{}` has no binary to run as /opt/bootstrap",
            package.manifest_path.display(),
            package.name
        ))
        .with_help("add a binary (src/main.rs) that serves the Lambda Runtime API, e.g. with lambda_runtime, or use role = \"layer\" for a layer of files"));
    }
    if narrow_to_selected_bins && options.selection.names_targets() {
        candidates.retain(|(bin, _)| options.selection.bins.contains(bin));
    }
    match candidates.len() {
        0 => Ok(None),
        1 => {
            let (bin, reason) = candidates.remove(0);
            let empty = MetadataTable::default();
            let bin_table = package.metadata.bins.get(&bin).unwrap_or(&empty);
            let mut tables = vec![(bin_table, "bin table")];
            tables.extend(package_tables.iter().copied());
            let runtime = draft(
                package,
                options,
                &tables,
                Role::Runtime,
                package.name.clone(),
                vec![bin.clone()],
                Vec::new(),
                format!("{reason}: bin `{bin}` is the layer's bootstrap (/opt/bootstrap)"),
            )?;
            Ok(Some(runtime))
        }
        _ => {
            let names: Vec<String> = candidates.iter().map(|(b, _)| format!("`{b}`")).collect();
            Err(Error::config(format!(
                "package `{}` (`{}`) has {} binaries with role = \"runtime\" ({}); a runtime layer holds exactly one bootstrap",
                package.name,
                package.manifest_path.display(),
                candidates.len(),
                names.join(", ")
            ))
            .with_help(format!(
                "pick one with `--bin {}`, or give the others a role of their own in [package.metadata.lambda-pack.bin.<name>] (e.g. role = \"function\")",
                candidates[0].0
            )))
        }
    }
}

/// A handler-only function: `role = "function"` on a package without a bin (cargo needs a
/// target, so it has a `src/lib.rs`, which is not built). It packs its includes only; a runtime
/// layer it attaches provides the bootstrap (the plan checks that one does).
pub(super) fn handler_only_draft(
    package: &Package,
    options: &Options,
    package_tables: &[(&MetadataTable, &'static str)],
    package_role: Option<Role>,
    narrow_to_selected_bins: bool,
) -> Result<Option<Draft>> {
    if package_role != Some(Role::Function) || !package.bins.is_empty() {
        return Ok(None);
    }
    // `--bin`/`--example` name targets; this package has none to offer.
    if narrow_to_selected_bins && options.selection.names_targets() {
        return Ok(None);
    }
    let function = draft(
        package,
        options,
        package_tables,
        Role::Function,
        package.name.clone(),
        Vec::new(),
        Vec::new(),
        "role = \"function\" in [package.metadata.lambda-pack] on a package without a binary: handler-only (its includes; the bootstrap comes from a runtime layer)".to_string(),
    )?;
    Ok(Some(function))
}

/// `handler` for a function (default [`DEFAULT_HANDLER`]); refused on another role's own tables,
/// since Lambda passes a handler to functions only.
pub(super) fn handler_setting(
    package: &Package,
    tables: &[(&MetadataTable, &'static str)],
    role: Role,
    name: &str,
) -> Result<String> {
    let handler = pick(tables, |t| t.handler.clone());
    match handler {
        Some((_, source)) if role != Role::Function => Err(Error::config(format!(
            "`handler` in `{}` ({source}) is set on {} `{name}`",
            package.manifest_path.display(),
            role.name()
        ))
        .with_help(
            "`handler` is what Lambda passes to a function's runtime as _HANDLER: set it on the functions that run on this runtime",
        )),
        Some((handler, _)) => Ok(handler),
        None => Ok(DEFAULT_HANDLER.to_string()),
    }
}
