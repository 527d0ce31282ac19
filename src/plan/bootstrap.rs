//! Which bootstrap a function runs, found as Lambda's OS-only runtimes find it:
//! `/var/task/bootstrap` (the function's own binary), else `/opt/bootstrap` as the attached
//! layers leave it (merge order: the last layer writing it wins). Neither is the `no-bootstrap`
//! finding, which stops the pack before anything is written, with the text Lambda would fail with.

use super::attach::Attachable;
use super::*;
use crate::inspect::codes::NO_BOOTSTRAP;

/// What Lambda answers the first invoke of a function without a bootstrap.
pub const LAMBDA_NO_BOOTSTRAP: &str =
    "Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]";

/// Decides the bootstrap of `function` and records why (a reason for `plan`, a warning when a
/// layer's bootstrap is shadowed, the finding when there is none). Returns the layer and its
/// bootstrap entry when that is what runs, for an image, whose base runs only
/// `${LAMBDA_RUNTIME_DIR}/bootstrap`.
pub(super) fn choose_bootstrap<'a>(
    function: &mut PlannedArtifact,
    layers: &[(&'a str, &'a Attachable)],
    warnings: &mut Vec<String>,
) -> Option<(&'a str, &'a Entry)> {
    let own = function
        .entries
        .iter()
        .any(|e| e.path == BOOTSTRAP && e.source.is_some());
    let from_layer = layers.iter().rev().find_map(|(name, layer)| {
        layer
            .entries
            .iter()
            .find(|e| e.path == BOOTSTRAP && e.source.is_some())
            .map(|entry| (*name, entry))
    });
    match (own, from_layer) {
        (true, None) => {
            function
                .reasons
                .push("bootstrap: /var/task/bootstrap, the function's own binary".to_string());
            None
        }
        (true, Some((layer, _))) => {
            function.reasons.push(format!(
                "bootstrap: /var/task/bootstrap, the function's own binary (layer `{layer}`'s /opt/bootstrap is never used)"
            ));
            // A layer that also brings an extension is attached for it: the Lambda Web
            // Adapter's layer holds an exec wrapper at /opt/bootstrap for managed runtimes,
            // unused beside a binary, while its extension serves this function.
            let brings_extension = layers.iter().any(|(name, attached)| {
                *name == layer
                    && attached
                        .entries
                        .iter()
                        .any(|e| e.path.starts_with("extensions/") && e.source.is_some())
            });
            if brings_extension {
                return None;
            }
            warnings.push(format!(
                "function `{}` ({}) has its own bootstrap and attaches layer `{layer}`, which provides /opt/bootstrap: Lambda runs /var/task/bootstrap, so the layer's bootstrap is never used (detach the layer, or make the function handler-only: a package without a binary)",
                function.name, function.arch
            ));
            None
        }
        (false, Some((layer, entry))) => {
            function.reasons.push(format!(
                "bootstrap: /opt/bootstrap from layer `{layer}` (the function has no /var/task/bootstrap); handler `{}`",
                function.handler.as_deref().unwrap_or(crate::units::DEFAULT_HANDLER)
            ));
            Some((layer, entry))
        }
        (false, None) if !function.arn_layers.is_empty() => {
            // The layers attached by ARN are not known here; one of them may bring the runtime.
            function.reasons.push(
                "bootstrap: none among the workspace's layers; /opt/bootstrap must come from a layer attached by ARN".to_string(),
            );
            None
        }
        (false, None) => {
            let finding = no_bootstrap(function);
            function.findings.push(PlannedFinding {
                entry: BOOTSTRAP.into(),
                allowed: function.allow.iter().any(|a| a == NO_BOOTSTRAP),
                finding,
            });
            function.reasons.push(
                "bootstrap: none (no /var/task/bootstrap, no layer provides /opt/bootstrap)"
                    .to_string(),
            );
            None
        }
    }
}

fn no_bootstrap(function: &PlannedArtifact) -> Finding {
    let layers = if function.layers.is_empty() {
        "attaches no layer".to_string()
    } else {
        format!(
            "none of its layers ({}) provides /opt/bootstrap",
            function
                .layers
                .iter()
                .map(|l| format!("`{l}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    Finding {
        code: NO_BOOTSTRAP,
        severity: Severity::Error,
        message: format!(
            "function `{}` has no bootstrap: package `{}` has no binary (/var/task/bootstrap) and it {layers}",
            function.name, function.package
        ),
        lambda_error: Some(LAMBDA_NO_BOOTSTRAP.to_string()),
        help: "attach a custom runtime with `layers = [\"<crate>\"]` (a crate with role = \"runtime\", packed as /opt/bootstrap), or give the package a binary (src/main.rs)".to_string(),
        soname: None,
    }
}
