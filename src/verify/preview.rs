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
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let mut blocks: Vec<(String, String)> = Vec::new();
    let line = match parsed {
        Some(Value::String(text)) if needs_block(&text) => {
            blocks.push(("text".into(), text));
            format!("a JSON string of {len} bytes")
        }
        Some(Value::Object(mut map)) => {
            for (key, value) in map.iter_mut() {
                if let Value::String(text) = value
                    && needs_block(text)
                {
                    blocks.push((key.clone(), std::mem::take(text)));
                    *text = "…".into();
                }
            }
            cut(&Value::Object(map).to_string(), len, !blocks.is_empty())
        }
        Some(other) => cut(&other.to_string(), len, false),
        None => {
            let text = String::from_utf8_lossy(body).into_owned();
            if needs_block(&text) {
                blocks.push(("text".into(), text));
                format!("{len} bytes of text")
            } else {
                cut(&text, len, false)
            }
        }
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
        shown.push_str(&format!(" ({len} bytes; the text of each … below)"));
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_strings_are_shown_as_text() {
        let body = br#"{"statusCode":200,"body":"line one\nsaid \"hi\"\n"}"#;
        let shown = preview(body, body.len() as u64);
        assert_eq!(
            shown,
            format!(
                "{{\"body\":\"…\",\"statusCode\":200}} ({} bytes; the text of each … below)\nbody:\n| line one\n| said \"hi\"",
                body.len()
            )
        );
        assert!(!shown.contains("\\n") && !shown.contains("\\\""), "{shown}");
        let plain = preview(b"{\"ok\":true}", 11);
        assert_eq!(plain, "{\"ok\":true}");
        let text = preview(b"not json\nsecond", 15);
        assert_eq!(text, "15 bytes of text\ntext:\n| not json\n| second");
        let string = preview(br#""a\nb""#, 6);
        assert_eq!(string, "a JSON string of 6 bytes\ntext:\n| a\n| b");
    }

    #[test]
    fn long_responses_are_cut_and_say_their_length() {
        let body = format!("\"{}\"", "x".repeat(300));
        let shown = preview(body.as_bytes(), body.len() as u64);
        assert!(shown.ends_with("… (302 bytes)"), "{shown}");
        let many = format!("\"{}\"", "l\\n".repeat(50));
        let shown = preview(many.as_bytes(), many.len() as u64);
        assert_eq!(shown.lines().count(), 1 + 1 + TEXT_LINES + 1, "{shown}");
    }
}
