//! `--env-file` (dotenv) files: the bytes as the file's text → `lambda_env::parse_env_file`.
//!
//! Besides no panic: an error names the file and a line; every key parsed is a name Lambda takes
//! (ASCII letters, digits and `_`, starting with a letter); and the pairs written back as
//! `KEY="value"` lines (escaping `\`, `"`, newline, tab and carriage return) parse to the same
//! pairs, so nothing a value holds is lost or changed by quoting.
#![no_main]

use std::path::Path;

use cargo_lambda_pack::fuzzing::parse_env_file;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/work/app/.env");
    let pairs = match parse_env_file(text, path) {
        Ok(pairs) => pairs,
        Err(message) => {
            assert!(
                message.contains("/work/app/.env") && message.contains("line "),
                "an error that names no file or line: {message}"
            );
            return;
        }
    };
    for (key, _) in &pairs {
        let mut chars = key.chars();
        assert!(
            chars.next().is_some_and(|c| c.is_ascii_alphabetic())
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "accepted the key `{key}`"
        );
    }
    let mut written = String::new();
    for (key, value) in &pairs {
        written.push_str(key);
        written.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => written.push_str("\\\\"),
                '"' => written.push_str("\\\""),
                '\n' => written.push_str("\\n"),
                '\t' => written.push_str("\\t"),
                '\r' => written.push_str("\\r"),
                other => written.push(other),
            }
        }
        written.push_str("\"\n");
    }
    let again = parse_env_file(&written, path)
        .unwrap_or_else(|e| panic!("the pairs written back do not parse: {e}\n{written}"));
    assert_eq!(
        again, pairs,
        "the pairs written back parse differently:\n{written}"
    );
});
