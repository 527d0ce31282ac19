//! `--shard K/N`: which functions a CI runner packs when the work is split across N runners.
//!
//! Assignment is jump consistent hashing (Lamping and Veach, 2014) of the SHA-256 of the
//! artifact's name: a function's shard depends only on its own name and N. It needs no build and
//! no shared state, gives the same split on every machine, and is stable: adding or removing a
//! function moves only that function, and going from N to N + 1 shards moves only the functions
//! the new shard takes. It costs O(log N) per function, so a split costs O(units) whatever N is;
//! N is still bounded ([`MAX_SHARDS`]) because the listing has one entry per shard. It balances
//! the number of functions per shard in expectation, not their build time; balancing by a
//! measure such as source size would have to give up this stability (a bounded-load scheme moves
//! other functions when one is added), so the count is the measure.
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
    /// Parses `--shard K/N` (1 ≤ K ≤ N ≤ [`MAX_SHARDS`]).
    pub fn parse(text: &str) -> Result<Shard> {
        let invalid = |why: &str| {
            Error::config(format!("invalid value `{text}` for --shard: {why}"))
                .with_help("pass `K/N`, this runner's shard K (from 1) of N, e.g. `--shard 2/4`")
        };
        let (k, n) = text
            .split_once('/')
            .ok_or_else(|| invalid("expected `K/N`"))?;
        // Digits that overflow are a number out of range, not something else than a number.
        let number = |part: &str, what: &str| {
            let part = part.trim();
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid(&format!("{what} `{part}` is not a whole number")));
            }
            Ok(part.parse::<u64>().unwrap_or(u64::MAX))
        };
        let (index, count) = (number(k, "K")?, number(n, "N")?);
        if count == 0 || count > u64::from(MAX_SHARDS) {
            return Err(invalid(&format!(
                "N `{}` is out of range: N must be between 1 and {MAX_SHARDS}",
                n.trim()
            )));
        }
        if index == 0 || index > count {
            return Err(invalid(&format!(
                "K `{}` is out of range: K must be between 1 and {count}",
                k.trim()
            )));
        }
        let (index, count) = (index as u32, count as u32);
        Ok(Shard { index, count })
    }
}

/// The most shards a split may have: far more runners than any CI gives one job, and few enough
/// that the listing (one entry per shard) stays small.
pub const MAX_SHARDS: u32 = 10_000;

/// The shard (1-based) of `count` that the artifact `name` belongs to: jump consistent hashing
/// of the first 8 bytes of the name's SHA-256, O(log count).
pub fn assign(name: &str, count: u32) -> u32 {
    let digest = Sha256::digest(name.as_bytes());
    let mut key = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    let (mut bucket, mut next): (i64, i64) = (-1, 0);
    while next < i64::from(count) {
        bucket = next;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        // The published algorithm, in the same floating-point steps (IEEE 754: the same result
        // on every machine).
        next = ((bucket + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    bucket.max(0) as u32 + 1
}

/// Every shard's listing from each root's shard, computed once per root: O(roots + count).
pub fn split<'a>(roots: impl IntoIterator<Item = &'a str>, shard: Shard) -> Vec<ShardListing> {
    let mut listing: Vec<ShardListing> = (1..=shard.count)
        .map(|k| ShardListing {
            shard: k,
            functions: Vec::new(),
            this_run: k == shard.index,
        })
        .collect();
    for name in roots {
        let k = assign(name, shard.count);
        listing[(k - 1) as usize].functions.push(name.to_string());
    }
    listing
}

/// One shard's roots, for `plan --shard`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ShardListing {
    pub shard: u32,
    pub functions: Vec<String>,
    /// Whether this run is this shard.
    pub this_run: bool,
}

/// The split for people: one line per shard that has a function and one for this run's (marked),
/// then how many other shards got none (with thousands of shards, a line each would bury the rest).
pub fn listing_text(listing: &[ShardListing]) -> String {
    let count = listing.len();
    let mut lines: Vec<String> = listing
        .iter()
        .filter(|s| s.this_run || !s.functions.is_empty())
        .map(|s| {
            let names = if s.functions.is_empty() {
                "(no function)".to_string()
            } else {
                s.functions.join(", ")
            };
            let marker = if s.this_run { "  <- this run" } else { "" };
            format!("shard {}/{count}: {names}{marker}", s.shard)
        })
        .collect();
    let empty = count - lines.len();
    if empty > 0 {
        let shards = if empty == 1 { "shard" } else { "shards" };
        lines.push(format!("{empty} other {shards} of {count}: (no function)"));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_k_of_n_and_refuses_the_rest() {
        assert_eq!(Shard::parse("2/4").unwrap(), Shard { index: 2, count: 4 });
        assert_eq!(Shard::parse("1/1").unwrap(), Shard { index: 1, count: 1 });
        assert_eq!(
            Shard::parse("10000/10000").unwrap(),
            Shard {
                index: 10_000,
                count: 10_000
            }
        );
        for (bad, why) in [
            ("0/3", "K `0` is out of range: K must be between 1 and 3"),
            ("4/3", "K `4` is out of range: K must be between 1 and 3"),
            (
                "1/0",
                "N `0` is out of range: N must be between 1 and 10000",
            ),
            (
                "1/10001",
                "N `10001` is out of range: N must be between 1 and 10000",
            ),
            (
                "1/4294967296",
                "N `4294967296` is out of range: N must be between 1 and 10000",
            ),
            (
                "99999999999999999999999/3",
                "K `99999999999999999999999` is out of range: K must be between 1 and 3",
            ),
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
        // Expectation 50 each; the hash keeps each shard near it.
        assert!(sizes.iter().all(|&s| (30..=70).contains(&s)), "{sizes:?}");
        // One shard means everything in it.
        assert!(all.iter().all(|n| assign(n, 1) == 1));
    }

    #[test]
    fn one_more_shard_takes_functions_only_into_itself() {
        let all = names(500);
        for count in [1, 2, 3, 7, 100] {
            let mut moved = 0;
            for name in &all {
                let (before, after) = (assign(name, count), assign(name, count + 1));
                assert!(
                    after == before || after == count + 1,
                    "{name}: {before} -> {after}"
                );
                moved += usize::from(after != before);
            }
            // About 500 / (count + 1) move, never most of them.
            assert!(
                moved < 500 / (count as usize + 1) * 2 + 10,
                "{count}: {moved}"
            );
        }
    }

    #[test]
    fn the_largest_split_is_listed_in_one_pass() {
        let all = names(200);
        let listing = split(
            all.iter().map(String::as_str),
            Shard {
                index: 3,
                count: MAX_SHARDS,
            },
        );
        assert_eq!(listing.len(), MAX_SHARDS as usize);
        assert_eq!(
            listing.iter().map(|s| s.functions.len()).sum::<usize>(),
            200
        );
        assert!(listing[2].this_run);
        let text = listing_text(&listing);
        assert!(text.lines().count() <= 202, "{text}");
        assert!(
            text.contains("other shards of 10000: (no function)"),
            "{text}"
        );
    }
}
