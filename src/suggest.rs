//! "Did you mean": the one way the crate suggests a name for a mistyped one (metadata keys,
//! workspace members, Lambda runtime identifiers, functions in a manifest).

/// How similar a name must be to be suggested: Jaro-Winkler similarity, which favours a shared
/// beginning (`nodejs22` → `nodejs22.x`, not `nodejs`) and forgives a transposition (`qoute`).
pub const NEAR: f64 = 0.8;

/// The candidate most similar to `typed`, if one scores above `min_score`; on a tie the earlier
/// candidate wins.
pub fn nearest<'a>(
    typed: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    min_score: f64,
) -> Option<&'a str> {
    let mut best: Option<(&str, f64)> = None;
    for candidate in candidates {
        let score = strsim::jaro_winkler(typed, candidate);
        if score > min_score && best.is_none_or(|(_, top)| score > top) {
            best = Some((candidate, score));
        }
    }
    best.map(|(candidate, _)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_nearest_name_or_none() {
        let functions = [
            "echo",
            "failing",
            "panicky",
            "quote",
            "stuck",
            "tables",
            "graceful",
            "inproc",
            "tiny",
            "tool-user",
        ];
        assert_eq!(nearest("qoute", functions, NEAR), Some("quote"));
        assert_eq!(nearest("nope", functions, NEAR), None);
        assert_eq!(
            nearest("fn-x87", ["fn-arm64", "fn-x86", "layer"], NEAR),
            Some("fn-x86")
        );
        assert_eq!(
            nearest("arhc", ["arch", "role", "runtime"], NEAR),
            Some("arch")
        );
        assert_eq!(
            nearest("nodejs22", ["nodejs", "nodejs20.x", "nodejs22.x"], 0.0),
            Some("nodejs22.x")
        );
        // On a tie the earlier candidate wins.
        assert_eq!(nearest("ab", ["ax", "ay"], 0.0), Some("ax"));
    }
}
