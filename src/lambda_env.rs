//! The `.env` file format and `--env KEY=VALUE` flags of `verify`, each variable checked as
//! Lambda checks it.
//!
//! The rules themselves (names, reserved names, values, 4 KB in all) are `lambda_rules`', which
//! the metadata reader and `deploy` use too, so what passes here passes there.

use std::path::Path;

use crate::error::{Error, Result};
use crate::lambda_rules::check_env_key;

/// Parses a dotenv file: `KEY=VALUE` lines, blank lines and `#` comments, an optional `export `
/// prefix, values in single quotes (taken as written) or double quotes (with `\n`, `\t`, `\"`,
/// `\\` escapes), unquoted values trimmed and cut at ` #`. Errors name the file and the line.
pub fn parse_env_file(text: &str, path: &Path) -> Result<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        // Checked on the raw line, before quotes and escapes: a process environment cannot
        // hold a NUL byte, and the terminal should not be sent one either.
        if let Some(at) = raw.find('\0') {
            return Err(Error::config(format!(
                "line {number} of the --env-file `{}` has a NUL byte (column {}), which no process environment can hold",
                path.display(),
                raw[..at].chars().count() + 1
            ))
            .with_note(format!("the line: {}", raw.escape_debug()))
            .with_help("save the file as plain text of KEY=VALUE lines (a binary file is not an env file)"));
        }
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |what: String| {
            Error::config(format!(
                "line {number} of the --env-file `{}` {what}",
                path.display()
            ))
            .with_note(format!("the line: {raw}"))
            .with_help(
                "write one `KEY=VALUE` per line (optionally `export KEY=VALUE`, values in \"double\" \
                 or 'single' quotes); `#` starts a comment",
            )
        };
        let line = line
            .strip_prefix("export ")
            .map(str::trim_start)
            .unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            return Err(bad("has no `=`".into()));
        };
        let key = key.trim();
        check_env_key(key).map_err(|why| bad(format!("names a variable Lambda refuses: {why}")))?;
        let value = unquote(value.trim()).map_err(bad)?;
        pairs.push((key.to_string(), value));
    }
    Ok(pairs)
}

fn unquote(value: &str) -> std::result::Result<String, String> {
    if let Some(rest) = value.strip_prefix('\'') {
        let Some(end) = rest.find('\'') else {
            return Err("has a single quote that is never closed".into());
        };
        check_trailing(&rest[end + 1..])?;
        return Ok(rest[..end].to_string());
    }
    if let Some(rest) = value.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.char_indices();
        while let Some((at, c)) = chars.next() {
            match c {
                '"' => {
                    check_trailing(&rest[at + 1..])?;
                    return Ok(out);
                }
                '\\' => match chars.next().map(|(_, c)| c) {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('r') => out.push('\r'),
                    Some(other) => out.push(other),
                    None => break,
                },
                other => out.push(other),
            }
        }
        return Err("has a double quote that is never closed".into());
    }
    let value = match value.find(" #") {
        Some(comment) => &value[..comment],
        None => value,
    };
    Ok(value.trim_end().to_string())
}

/// After a closing quote only a comment may follow.
fn check_trailing(rest: &str) -> std::result::Result<(), String> {
    let rest = rest.trim_start();
    if rest.is_empty() || rest.starts_with('#') {
        Ok(())
    } else {
        Err(format!("has `{rest}` after the closing quote"))
    }
}

/// Parses one `--env KEY=VALUE` flag (verify's, which exists on Linux only).
#[cfg(any(target_os = "linux", test))]
pub fn parse_env_flag(flag: &str) -> Result<(String, String)> {
    let Some((key, value)) = flag.split_once('=') else {
        return Err(
            Error::config(format!("--env `{flag}` has no `=`: expected KEY=VALUE"))
                .with_help("write `--env TABLE_NAME=orders` (an empty value is `--env KEY=`)"),
        );
    };
    check_env_key(key).map_err(|why| {
        Error::config(format!(
            "--env `{flag}` names a variable Lambda refuses: {why}"
        ))
        .with_help(crate::lambda_rules::env_key_help(key))
    })?;
    Ok((key.to_string(), value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_files_read_like_dotenv() {
        let text = "# settings\n\nTABLE_NAME=orders\nexport STAGE = test # trailing\n\
                    QUOTED=\"a b\\n#c\"\nRAW='$HOME \\n'\nEMPTY=\nURL=http://x/?a=b\n";
        let pairs = parse_env_file(text, Path::new(".env")).unwrap();
        let expected: Vec<(String, String)> = [
            ("TABLE_NAME", "orders"),
            ("STAGE", "test"),
            ("QUOTED", "a b\n#c"),
            ("RAW", "$HOME \\n"),
            ("EMPTY", ""),
            ("URL", "http://x/?a=b"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(pairs, expected);
    }

    #[test]
    fn env_file_errors_name_the_file_and_line() {
        for (text, line, what) in [
            ("AB=1\nnot a pair\n", 2, "has no `=`"),
            ("AWS_REGION=eu-west-1\n", 1, "reserved"),
            ("OK=1\n\nQQ=\"open\n", 3, "never closed"),
            ("QQ='x' y\n", 1, "after the closing quote"),
            ("1X=2\n", 1, "not a valid name"),
            ("OK=1\n# note\nNUL=a\0b\n", 3, "has a NUL byte (column 6)"),
            ("# a \0 in a comment\n", 1, "has a NUL byte"),
        ] {
            let err = parse_env_file(text, Path::new("conf/.env")).unwrap_err();
            let message = err.to_string();
            assert!(
                message.contains(&format!("line {line} of the --env-file `conf/.env`")),
                "{message}"
            );
            assert!(message.contains(what), "{message}");
        }
    }

    #[test]
    fn env_flags_need_a_valid_key_and_an_equals_sign() {
        assert_eq!(
            parse_env_flag("URL=a=b").unwrap(),
            ("URL".into(), "a=b".into())
        );
        assert!(
            parse_env_flag("NOVALUE")
                .unwrap_err()
                .to_string()
                .contains("no `=`")
        );
        assert!(
            parse_env_flag("_HANDLER=x")
                .unwrap_err()
                .to_string()
                .contains("reserved")
        );
    }
}
