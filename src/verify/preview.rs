//! The human preview of a response: JSON is shown compactly, but a string that holds newlines
//! or quotes (an API Gateway response's `body`, a message) is shown as its text, one `| ` line
//! per line, rather than with JSON's `\n` and `\"` escapes.

use serde_json::Value;

/// Bytes of a response shown on the status line.
pub(super) const PREVIEW_BYTES: usize = 200;
/// Lines of one string's text shown under the status line.
const TEXT_LINES: usize = 20;
/// Characters of one string's text shown under the status line.
const TEXT_CHARS: usize = 2000;

/// The status line's rendering of `body` (`len` bytes in all), then the text blocks under it.
pub(super) fn preview(body: &[u8], len: u64) -> String {
    let raw = String::from_utf8_lossy(body);
    let mut blocks: Vec<(String, String)> = Vec::new();
    let line = match serde_json::from_slice::<Value>(body).ok() {
        Some(Value::String(text)) if needs_block(&text) => {
            blocks.push(("text".into(), text));
            format!("a JSON string of {len} bytes")
        }
        Some(Value::Object(map)) => {
            let mut shown = raw.to_string();
            let mut rebuilt = map.clone();
            let mut elided_in_place = true;
            for (key, value) in &map {
                if let Value::String(text) = value
                    && needs_block(text)
                {
                    // Elided in place, so the line keeps the function's own key order; a
                    // string escaped another way than serde's is elided in a re-serialization.
                    let escaped = Value::String(text.clone()).to_string();
                    if shown.contains(&escaped) {
                        shown = shown.replacen(&escaped, "\"…\"", 1);
                    } else {
                        elided_in_place = false;
                    }
                    rebuilt.insert(key.clone(), Value::String("…".into()));
                    blocks.push((key.clone(), text.clone()));
                }
            }
            if !elided_in_place {
                shown = Value::Object(rebuilt).to_string();
            }
            cut(&shown, len, !blocks.is_empty())
        }
        // Other JSON, and text: as the function wrote it, up to the first line's end.
        _ => match raw.split_once('\n') {
            Some((first, _)) => {
                blocks.push(("text".into(), raw.to_string()));
                cut(first, len, true)
            }
            None => cut(&raw, len, false),
        },
    };
    let mut rendered = line;
    for (name, text) in blocks {
        rendered.push_str(&format!("\n{name}:"));
        let lines: Vec<&str> = text.trim_end_matches('\n').lines().collect();
        let mut shown = 0;
        for line in lines.iter().take(TEXT_LINES) {
            let room = TEXT_CHARS.saturating_sub(shown);
            if room == 0 {
                break;
            }
            let part: String = line.chars().take(room).collect();
            shown += part.chars().count();
            rendered.push_str(&format!("\n| {part}"));
        }
        if lines.len() > TEXT_LINES || shown >= TEXT_CHARS {
            rendered.push_str("\n| …");
        }
    }
    rendered
}

/// Whether JSON would show `text` with escapes a person reads badly.
fn needs_block(text: &str) -> bool {
    text.contains('\n') || text.contains('"')
}

/// The first [`PREVIEW_BYTES`] of `text` (on a character boundary), saying how long it was.
fn cut(text: &str, len: u64, elided: bool) -> String {
    let mut end = text.len().min(PREVIEW_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut shown = text[..end].to_string();
    if end < text.len() || (!elided && len as usize > PREVIEW_BYTES) {
        shown.push_str(&format!("… ({len} bytes)"));
    } else if elided {
        shown.push_str(&format!(" ({len} bytes; the text below)"));
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_strings_are_shown_as_text_and_the_line_keeps_the_key_order() {
        let body = br#"{"statusCode":200,"body":"line one\nsaid \"hi\"\n"}"#;
        let shown = preview(body, body.len() as u64);
        assert_eq!(
            shown,
            format!(
                "{{\"statusCode\":200,\"body\":\"…\"}} ({} bytes; the text below)\nbody:\n| line one\n| said \"hi\"",
                body.len()
            )
        );
        assert!(!shown.contains("\\n") && !shown.contains("\\\""), "{shown}");
        // Escaped another way (`\u000a`): the line is rebuilt, still without escapes.
        let other = br#"{"b":"x\u000ay"}"#;
        let shown = preview(other, other.len() as u64);
        assert!(shown.starts_with(r#"{"b":"…"}"#), "{shown}");
        assert!(shown.ends_with("b:\n| x\n| y"), "{shown}");
        // Nothing to show as text: the bytes as the function wrote them.
        assert_eq!(preview(br#"{"z":1,"a":true}"#, 16), r#"{"z":1,"a":true}"#);
        let text = preview(b"not json\nsecond", 15);
        assert_eq!(
            text,
            "not json (15 bytes; the text below)\ntext:\n| not json\n| second"
        );
        let string = preview(br#""a\nb""#, 6);
        assert_eq!(string, "a JSON string of 6 bytes\ntext:\n| a\n| b");
    }

    #[test]
    fn long_responses_are_cut_and_say_their_length() {
        let body = format!("\"{}\"", "x".repeat(300));
        let shown = preview(body.as_bytes(), body.len() as u64);
        assert!(shown.ends_with("… (302 bytes)"), "{shown}");
        // A streamed response's prelude, NULs and body: not JSON, no newline, shown as before.
        let mut streamed = br#"{"statusCode":200}"#.to_vec();
        streamed.extend([0u8; 8]);
        streamed.extend(vec![b'x'; 400]);
        let shown = preview(&streamed, streamed.len() as u64);
        assert!(shown.starts_with(r#"{"statusCode":200}"#), "{shown}");
        assert!(shown.ends_with("… (426 bytes)"), "{shown}");
        let many = format!("\"{}\"", "l\\n".repeat(50));
        let shown = preview(many.as_bytes(), many.len() as u64);
        assert_eq!(shown.lines().count(), 1 + 1 + TEXT_LINES + 1, "{shown}");
    }
}
