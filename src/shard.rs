//! `--shard K/N`: which functions a CI runner packs when the work is split across N runners.
//!
//! Assignment is rendezvous (highest-random-weight) hashing: each function goes to the shard
//! whose SHA-256 of `<artifact name>\0<shard number>` is largest. It needs no build and no shared
//! state, gives the same split on every machine, and is stable: adding or removing a function
//! moves only that function (every other function's weights are unchanged). It balances the
//! number of functions per shard in expectation, not their build time; balancing by a measure
//! such as source size would have to give up this stability (a bounded-load scheme moves other
//! functions when one is added), so the count is the measure.
//!
//! Which units are split and what travels with them is `units::shard`'s business.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// `K/N`: this run is shard `index` (1-based) of `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// Parses `--shard K/N` (1 ≤ K ≤ N).
    pub fn parse(text: &str) -> Result<Shard> {
        let invalid = |why: &str| {
            Error::config(format!("invalid value `{text}` for --shard: {why}"))
                .with_help("pass `K/N`, this runner's shard K (from 1) of N, e.g. `--shard 2/4`")
        };
        let (k, n) = text
            .split_once('/')
            .ok_or_else(|| invalid("expected `K/N`"))?;
        let number = |part: &str, what: &str| {
            part.trim()
                .parse::<u32>()
                .map_err(|_| invalid(&format!("{what} `{part}` is not a whole number")))
        };
        let (index, count) = (number(k, "K")?, number(n, "N")?);
        if count == 0 {
            return Err(invalid("N must be at least 1"));
        }
        if index == 0 || index > count {
            return Err(invalid(&format!("K must be between 1 and {count}")));
        }
        Ok(Shard { index, count })
    }
}

/// The shard (1-based) of `count` that the artifact `name` belongs to.
pub fn assign(name: &str, count: u32) -> u32 {
    (1..=count)
        .max_by_key(|shard| {
            let mut hasher = Sha256::new();
            hasher.update(name.as_bytes());
            hasher.update(b"\0");
            hasher.update(shard.to_string().as_bytes());
            <[u8; 32]>::from(hasher.finalize())
        })
        .unwrap_or(1)
}

/// One shard's roots, for `plan --shard`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ShardListing {
    pub shard: u32,
    pub functions: Vec<String>,
    /// Whether this run is this shard.
    pub this_run: bool,
}

/// The split for people: one line per shard, this run's marked.
pub fn listing_text(listing: &[ShardListing]) -> String {
    let count = listing.len();
    listing
        .iter()
        .map(|s| {
            let names = if s.functions.is_empty() {
                "(no function)".to_string()
            } else {
                s.functions.join(", ")
            };
            let marker = if s.this_run { "  <- this run" } else { "" };
            format!("shard {}/{count}: {names}{marker}", s.shard)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_k_of_n_and_refuses_the_rest() {
        assert_eq!(Shard::parse("2/4").unwrap(), Shard { index: 2, count: 4 });
        assert_eq!(Shard::parse("1/1").unwrap(), Shard { index: 1, count: 1 });
        for (bad, why) in [
            ("0/3", "K must be between 1 and 3"),
            ("4/3", "K must be between 1 and 3"),
            ("1/0", "N must be at least 1"),
            ("3", "expected `K/N`"),
            ("a/3", "K `a` is not a whole number"),
            ("1/-2", "N `-2` is not a whole number"),
        ] {
            let err = Shard::parse(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
            assert!(err.contains(&format!("`{bad}`")), "{bad}: {err}");
        }
    }

    fn names(count: usize) -> Vec<String> {
        (0..count).map(|i| format!("function-{i}")).collect()
    }

    #[test]
    fn adding_a_function_moves_only_that_function() {
        let before = names(60);
        let mut after = before.clone();
        after.insert(17, "a-new-function".into());
        let split = |list: &[String]| -> Vec<(String, u32)> {
            list.iter().map(|n| (n.clone(), assign(n, 4))).collect()
        };
        let (old, new) = (split(&before), split(&after));
        let moved: Vec<&(String, u32)> = new.iter().filter(|pair| !old.contains(pair)).collect();
        assert_eq!(moved.len(), 1, "{moved:?}");
        assert_eq!(moved[0].0, "a-new-function");
    }

    #[test]
    fn every_function_lands_in_exactly_one_shard_and_the_split_is_even_enough() {
        let all = names(200);
        let mut sizes = [0usize; 4];
        for name in &all {
            let shard = assign(name, 4);
            assert!((1..=4).contains(&shard));
            sizes[(shard - 1) as usize] += 1;
        }
        assert_eq!(sizes.iter().sum::<usize>(), 200);
        // Expectation 50 each; rendezvous hashing keeps each shard near it.
        assert!(sizes.iter().all(|&s| (30..=70).contains(&s)), "{sizes:?}");
        // One shard means everything in it.
        assert!(all.iter().all(|n| assign(n, 1) == 1));
    }
}
