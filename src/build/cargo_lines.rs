//! Lines of cargo's stderr that this tool treats apart: its status lines (dropped while the
//! progress bar shows them in its own way) and the one saying it waits on a lock (always shown,
//! even from a build whose other output is dropped).

/// Whether a line of cargo's stderr says it waits on a lock (`Blocking waiting for file lock on
/// build directory`): shown even from a build whose other output is dropped, so that a run that
/// waits says why.
pub fn is_lock_wait(line: &str) -> bool {
    line.contains("Blocking") && line.contains("waiting for file lock")
}

/// Whether a line of cargo's stderr is one of its status lines (`   Compiling a v0.1.0`: a
/// capitalised word right-aligned in 12 columns, then a space), colours aside; diagnostics never
/// start that way.
pub fn is_status(line: &str) -> bool {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // An SGR sequence: ESC [ ... m
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    let Some((head, _)) = plain.split_at_checked(12) else {
        return false;
    };
    let word = head.trim_start();
    plain[12..].starts_with(' ')
        && word.len() >= 2
        && word.starts_with(|c: char| c.is_ascii_uppercase())
        && word.chars().all(|c| c.is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_are_told_from_diagnostics() {
        for status in [
            "   Compiling a v0.1.0 (/w/a)",
            "    Finished `dev` profile [unoptimized] target(s) in 0.1s",
            "    Blocking waiting for file lock on build directory",
            "\x1b[1m\x1b[32m   Compiling\x1b[0m a v0.1.0",
        ] {
            assert!(is_status(status), "{status}");
        }
        for other in [
            "warning: unused variable: `x`",
            "  --> src/main.rs:1:5",
            "   |",
            "12 |     let x = 1;",
            "   = note: `#[warn(unused_variables)]` on by default",
            "error[E0425]: cannot find value `y` in this scope",
            "",
        ] {
            assert!(!is_status(other), "{other}");
        }
        assert!(is_lock_wait(
            "    Blocking waiting for file lock on build directory"
        ));
        assert!(is_lock_wait(
            "\x1b[1m\x1b[36m    Blocking\x1b[0m waiting for file lock on package cache"
        ));
        assert!(!is_lock_wait("   Compiling blocking v1.0.0"));
    }
}
