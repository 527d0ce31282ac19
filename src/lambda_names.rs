//! Lambda's naming rules, applied at pack time: a name Lambda refuses would otherwise pack
//! silently and fail only at deploy time.
//!
//! - function names (`CreateFunction`'s `FunctionName`, name form): 1–64 characters of
//!   `[a-zA-Z0-9-_]`;
//! - layer names (`PublishLayerVersion`'s `LayerName`, which extensions are published under too):
//!   1–140 characters of `[a-zA-Z0-9-_]`.

use crate::inspect::{Finding, Severity};
use crate::lambda_rules::{NameKind, check_name, name_char};
use crate::metadata::Role;

/// The finding's code, for `--allow` and `allow = [...]`.
pub const INVALID_NAME: &str = crate::inspect::codes::INVALID_NAME;

/// Which of Lambda's names an artifact of `role` is published under.
fn kind(role: Role) -> NameKind {
    match role {
        Role::Function => NameKind::Function,
        Role::Extension | Role::Layer | Role::Runtime => NameKind::Layer,
    }
}

/// A finding when `name`, the artifact name of a `role` from `package` (bin `bin`), breaks
/// Lambda's naming rule (`lambda_rules`, which deploy checks again before sending a name).
pub fn check(role: Role, name: &str, package: &str, bin: Option<&str>) -> Option<Finding> {
    let kind = kind(role);
    let Err(message) = check_name(kind, name) else {
        return None;
    };
    let max = kind.max_chars();
    let suggestion: String = name
        .chars()
        .map(|c| if name_char(c) { c } else { '-' })
        .take(max)
        .collect();
    let help = match (role, bin) {
        (Role::Layer | Role::Runtime, _) => format!(
            "rename the package `{package}` (`name` in its [package] table) to at most {max} such characters, e.g. \"{suggestion}\""
        ),
        (_, Some(bin)) => format!(
            "rename the binary `{bin}` of package `{package}` with [[bin]] name = \"{suggestion}\" (keeping its `path`), or allow the finding if the name is set elsewhere at deploy time"
        ),
        (_, None) => format!("rename `{name}` to at most {max} such characters"),
    };
    Some(Finding {
        code: INVALID_NAME,
        severity: Severity::Error,
        message,
        // Lambda refuses such a name with a ValidationException at deploy time; its exact text
        // differs by operation, so none is quoted.
        lambda_error: None,
        help,
        soname: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_are_1_to_64_and_layer_names_1_to_140_safe_characters() {
        let ok64 = "a".repeat(64);
        assert!(check(Role::Function, &ok64, "p", Some(&ok64)).is_none());
        assert!(check(Role::Function, "orders_v2-Fn", "p", Some("orders_v2-Fn")).is_none());
        let long = "a".repeat(65);
        let finding = check(Role::Function, &long, "p", Some(&long)).unwrap();
        assert_eq!(finding.code, INVALID_NAME);
        assert!(
            finding.message.contains("65 characters"),
            "{}",
            finding.message
        );
        assert!(
            finding.help.contains("[[bin]] name = \""),
            "{}",
            finding.help
        );
        assert!(finding.help.contains(&"a".repeat(64)), "{}", finding.help);
        assert!(check(Role::Layer, &long, "p", None).is_none());
        assert!(check(Role::Extension, &"e".repeat(140), "p", Some("e")).is_none());
        assert!(check(Role::Extension, &"e".repeat(141), "p", Some("e")).is_some());
        let dotted = check(Role::Layer, "my.layer", "my.layer", None).unwrap();
        assert!(dotted.message.contains("\".\""), "{}", dotted.message);
        assert!(dotted.help.contains("\"my-layer\""), "{}", dotted.help);
    }
}
