//! A function's own environment variables (`env` in the metadata, `verify --env`/`--env-file`)
//! checked as Lambda checks them, and the `.env` file format.
//!
//! Lambda's rules (UpdateFunctionConfiguration, AWS's "Lambda environment variables" page): a
//! key starts with a letter, has at least two characters, only letters, digits and `_`, is not
//! one of the keys Lambda sets itself (the reserved list below), and all keys and values together
//! take at most 4 KB. `deploy` will send the same table, so what passes here passes there.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};

/// Keys Lambda sets for every function and refuses in a function's configuration. Not reserved
/// (and so allowed): `LANG`, `PATH`, `LD_LIBRARY_PATH`, `TZ`, `AWS_LAMBDA_EXEC_WRAPPER`, ...
pub const RESERVED: [&str; 18] = [
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
];

/// Lambda's limit on all keys and values of one function together.
pub const MAX_TOTAL_BYTES: usize = 4096;

/// Why `key` cannot be a Lambda environment variable, if it cannot.
pub fn check_key(key: &str) -> std::result::Result<(), String> {
    if RESERVED.contains(&key) {
        return Err(format!(
            "`{key}` is reserved: Lambda sets it itself and refuses it in a function's configuration"
        ));
    }
    let mut chars = key.chars();
    let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    if !starts_with_letter
        || key.len() < 2
        || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(format!(
            "`{key}` is not a valid name: Lambda wants a letter first, then at least one more \
             letter, digit or `_`"
        ));
    }
    Ok(())
}

/// The size Lambda counts for a set of variables: every key and value.
pub fn total_bytes(env: &BTreeMap<String, String>) -> usize {
    env.iter().map(|(k, v)| k.len() + v.len()).sum()
}

/// The help line for a bad key.
pub fn key_help(key: &str) -> String {
    if RESERVED.contains(&key) {
        format!(
            "remove `{key}`: verify sets it as Lambda does; use a name of your own (e.g. `APP_{}`) for your setting",
            key.trim_start_matches('_')
        )
    } else {
        "use names like TABLE_NAME: ASCII letters, digits and `_`, starting with a letter".into()
    }
}

/// Parses a dotenv file: `KEY=VALUE` lines, blank lines and `#` comments, an optional `export `
/// prefix, values in single quotes (taken as written) or double quotes (with `\n`, `\t`, `\"`,
/// `\\` escapes), unquoted values trimmed and cut at ` #`. Errors name the file and the line.
pub fn parse_env_file(text: &str, path: &Path) -> Result<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
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
        check_key(key).map_err(|why| bad(format!("sets {why}")))?;
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

/// Parses one `--env KEY=VALUE` flag.
pub fn parse_env_flag(flag: &str) -> Result<(String, String)> {
    let Some((key, value)) = flag.split_once('=') else {
        return Err(
            Error::config(format!("--env `{flag}` has no `=`: expected KEY=VALUE"))
                .with_help("write `--env TABLE_NAME=orders` (an empty value is `--env KEY=`)"),
        );
    };
    check_key(key).map_err(|why| {
        Error::config(format!("--env `{flag}` sets {why}")).with_help(key_help(key))
    })?;
    Ok((key.to_string(), value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_lambdas_rules() {
        assert!(check_key("TABLE_NAME").is_ok());
        assert!(check_key("a1").is_ok());
        assert!(check_key("TZ").is_ok());
        assert!(check_key("AWS_LAMBDA_EXEC_WRAPPER").is_ok());
        for bad in ["", "A", "1ABC", "_X", "WITH-DASH", "WITH SPACE", "É_NAME"] {
            assert!(check_key(bad).is_err(), "{bad}");
        }
        for reserved in [
            "AWS_REGION",
            "_HANDLER",
            "AWS_LAMBDA_FUNCTION_NAME",
            "LAMBDA_TASK_ROOT",
        ] {
            let why = check_key(reserved).unwrap_err();
            assert!(why.contains("reserved"), "{why}");
        }
    }

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
