//! The edges of `cargo tree -e normal --target <triple> --workspace --prefix depth --format {p}`:
//! which crate each crate depends on, as cargo's feature resolver (resolver 2: build and dev
//! dependencies' features kept apart, optional dependencies only when their feature is on) has
//! it for that target. `cargo metadata`'s resolve unifies features across every kind of
//! dependency, so it lists optional crates that no binary of the target contains.

use std::collections::{BTreeMap, BTreeSet};

/// A crate as `cargo tree` names it: name and version.
pub type NameVersion = (String, String);

/// The parsed tree: every crate's dependencies, and which crates are proc-macros.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TreeEdges {
    pub dependencies: BTreeMap<NameVersion, BTreeSet<NameVersion>>,
    pub proc_macros: BTreeSet<NameVersion>,
}

/// Reads the depth-prefixed lines. A line is `<depth><name> v<version>[ (<source>)][ (proc-macro)][ (*)]`;
/// `(*)` marks a crate whose dependencies were listed where it first appeared. Edges are
/// recorded wherever a crate's dependencies are listed, inside proc-macro subtrees too, so a
/// crate first listed there keeps its edges for where it appears again in the binary's part.
pub fn parse(text: &str) -> TreeEdges {
    let mut edges = TreeEdges::default();
    // The crate at each depth on the way to the current line.
    let mut path: Vec<NameVersion> = Vec::new();
    for line in text.lines() {
        let digits = line.bytes().take_while(u8::is_ascii_digit).count();
        let Ok(depth) = line[..digits].parse::<usize>() else {
            continue;
        };
        let mut words = line[digits..].split_whitespace();
        let (Some(name), Some(version)) = (words.next(), words.next()) else {
            continue;
        };
        let Some(version) = version.strip_prefix('v') else {
            continue;
        };
        let node: NameVersion = (name.to_string(), version.to_string());
        if line.ends_with("(proc-macro)") || line.contains("(proc-macro) (*)") {
            edges.proc_macros.insert(node.clone());
        }
        path.truncate(depth);
        if let Some(parent) = path.last() {
            edges
                .dependencies
                .entry(parent.clone())
                .or_default()
                .insert(node.clone());
        }
        edges.dependencies.entry(node.clone()).or_default();
        path.push(node);
    }
    edges
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nv(name: &str, version: &str) -> NameVersion {
        (name.to_string(), version.to_string())
    }

    #[test]
    fn depths_give_edges_and_proc_macros_are_marked() {
        let text = "\
0app v0.1.0 (/ws/app)
1regex v1.11.1
2memchr v2.7.4
2regex-syntax v0.8.5
1serde v1.0.219
2serde_derive v1.0.219 (proc-macro)
3proc-macro2 v1.0.95
4unicode-ident v1.0.18
3quote v1.0.40
4proc-macro2 v1.0.95 (*)
0tool v0.1.0 (/ws/tool)
1memchr v2.7.4
1quote v1.0.40 (*)
";
        let edges = parse(text);
        assert_eq!(
            edges.dependencies[&nv("app", "0.1.0")],
            BTreeSet::from([nv("regex", "1.11.1"), nv("serde", "1.0.219")])
        );
        assert_eq!(
            edges.dependencies[&nv("regex", "1.11.1")],
            BTreeSet::from([nv("memchr", "2.7.4"), nv("regex-syntax", "0.8.5")])
        );
        assert_eq!(
            edges.dependencies[&nv("quote", "1.0.40")],
            BTreeSet::from([nv("proc-macro2", "1.0.95")])
        );
        assert_eq!(
            edges.dependencies[&nv("tool", "0.1.0")],
            BTreeSet::from([nv("memchr", "2.7.4"), nv("quote", "1.0.40")])
        );
        assert_eq!(
            edges.proc_macros,
            BTreeSet::from([nv("serde_derive", "1.0.219")])
        );
        // An optional crate that no line names has no place at all.
        assert!(
            !edges
                .dependencies
                .contains_key(&nv("aho-corasick", "1.1.3"))
        );
    }
}
