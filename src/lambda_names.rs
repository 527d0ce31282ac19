//! Lambda's naming rules, applied at pack time: a name Lambda refuses would otherwise pack
//! silently and fail only at deploy time.
//!
//! - function names (`CreateFunction`'s `FunctionName`, name form): 1–64 characters of
//!   `[a-zA-Z0-9-_]`;
//! - layer names (`PublishLayerVersion`'s `LayerName`, which extensions are published under too):
//!   1–140 characters of `[a-zA-Z0-9-_]`.

use crate::inspect::{Finding, Severity};
use crate::metadata::Role;

/// The finding's code, for `--allow` and `allow = [...]`.
pub const INVALID_NAME: &str = crate::inspect::codes::INVALID_NAME;

/// The longest name Lambda accepts for an artifact of `role`, and what Lambda calls it.
fn rule(role: Role) -> (usize, &'static str) {
    match role {
        Role::Function => (64, "function name"),
        Role::Extension | Role::Layer | Role::Runtime => (140, "layer name"),
    }
}

fn allowed_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// A finding when `name`, the artifact name of a `role` from `package` (bin `bin`), breaks
/// Lambda's naming rule.
pub fn check(role: Role, name: &str, package: &str, bin: Option<&str>) -> Option<Finding> {
    let (max, what) = rule(role);
    let length = name.chars().count();
    let bad: String = name.chars().filter(|c| !allowed_char(*c)).collect();
    if (1..=max).contains(&length) && bad.is_empty() {
        return None;
    }
    let mut problems = Vec::new();
    if length > max {
        problems.push(format!("it has {length} characters"));
    }
    if length == 0 {
        problems.push("it is empty".to_string());
    }
    if !bad.is_empty() {
        problems.push(format!("it contains {bad:?}"));
    }
    let suggestion: String = name
        .chars()
        .map(|c| if allowed_char(c) { c } else { '-' })
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
        message: format!(
            "`{name}` is not a valid Lambda {what} ({}): {what}s are 1 to {max} characters of a-z, A-Z, 0-9, `-` and `_`",
            problems.join(", ")
        ),
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
