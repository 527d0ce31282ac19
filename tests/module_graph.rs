//! The shape of `src/`: the top-level modules form no cycle (a module depends on another when any
//! of its files names `crate::other`, in code or docs), no non-test source file is over 600
//! lines, and `main.rs` stays a few lines. ARCHITECTURE.md draws the same map.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 600;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `src/` belongs to (`None` for the crate roots).
fn top_module(path: &Path) -> Option<String> {
    let relative = path.strip_prefix(src()).unwrap();
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main")).then(|| name.to_string())
}

/// Every name that follows `crate::`, including each item of `crate::{a, b::c}`.
fn crate_paths(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 1 => {
                        names.insert(identifier(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 {
                    break;
                }
                if depth == 1 {
                    item.push(c);
                }
            }
            names.insert(identifier(&item));
        } else {
            names.insert(identifier(rest));
        }
    }
    names
}

fn identifier(text: &str) -> String {
    text.trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let modules: BTreeSet<String> = files.iter().filter_map(|f| top_module(f)).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = modules
        .iter()
        .map(|m| (m.clone(), BTreeSet::new()))
        .collect();
    for file in &files {
        let Some(module) = top_module(file) else {
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for name in crate_paths(&text) {
            if name != module && modules.contains(&name) {
                graph.get_mut(&module).unwrap().insert(name);
            }
        }
    }
    graph
}

/// A cycle through `node`, if the depth-first search from it finds one.
fn find_cycle(
    graph: &BTreeMap<String, BTreeSet<String>>,
    node: &str,
    path: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if let Some(at) = path.iter().position(|n| n == node) {
        let mut cycle = path[at..].to_vec();
        cycle.push(node.to_string());
        return Some(cycle);
    }
    if done.contains(node) {
        return None;
    }
    path.push(node.to_string());
    for next in &graph[node] {
        if let Some(cycle) = find_cycle(graph, next, path, done) {
            return Some(cycle);
        }
    }
    path.pop();
    done.insert(node.to_string());
    None
}

#[test]
fn top_level_modules_form_no_cycle() {
    let graph = module_graph();
    assert!(graph.len() > 10, "the graph was read: {graph:?}");
    assert!(graph["plan"].contains("manifest"), "{graph:?}");
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(cycle) = find_cycle(&graph, node, &mut Vec::new(), &mut done) {
            let map: Vec<String> = graph
                .iter()
                .map(|(m, deps)| format!("{m} -> {}", Vec::from_iter(deps.clone()).join(" ")))
                .collect();
            panic!(
                "module cycle: {}\n\nthe map:\n{}",
                cycle.join(" -> "),
                map.join("\n")
            );
        }
    }
}

/// Every top-level module, in the only direction dependencies may go: a module names only modules
/// listed before it. Leaves and schemas first, then the pipeline stages in the order a pack runs
/// them (cli → settings → workspace → toolchain → build → facts → plan → emit → report), verify
/// beside them, and the commands that drive them last. A new module takes its place here.
const ORDER: &[&str] = &[
    // leaves
    "error",
    "suggest",
    "target",
    "files",
    "cache",
    "lambda_rules",
    "lambda_env",
    "shard",
    "regular_file",
    // schemas: ELF facts, metadata tables, the manifest
    "inspect",
    "metadata",
    "cargo_lambda",
    "include",
    "lambda_names",
    "libs",
    "manifest",
    "manifest_paths",
    "out_dir",
    // the pipeline; `output` (the terminal) sits under every stage that writes to it
    "cli",
    "output",
    "settings",
    "workspace",
    "units",
    "toolchain",
    "rustflags",
    "sbom",
    "auditable",
    "build",
    "facts",
    "plan",
    "image",
    "emit",
    "report",
    "verify",
    "deploy",
    "commands",
    // Entry points for the fuzz targets: they reach into every stage.
    "fuzzing",
];

/// Dependencies that go against [`ORDER`], and modules missing from it.
fn against_order(graph: &BTreeMap<String, BTreeSet<String>>, order: &[&str]) -> Vec<String> {
    let rank = |m: &str| order.iter().position(|o| *o == m);
    let mut wrong = Vec::new();
    for (module, deps) in graph {
        let Some(at) = rank(module) else {
            wrong.push(format!("`{module}` is not in ORDER: give it its place"));
            continue;
        };
        for dep in deps {
            if rank(dep).is_none_or(|d| d > at) {
                wrong.push(format!("{module} -> {dep}"));
            }
        }
    }
    wrong
}

#[test]
fn dependencies_follow_the_pipeline_order() {
    let graph = module_graph();
    let wrong = against_order(&graph, ORDER);
    assert!(
        wrong.is_empty(),
        "against the order {ORDER:?}:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_order_check_finds_a_dependency_upstream() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("settings", vec!["workspace"]),
        ("workspace", vec![]),
        ("extra", vec![]),
    ]
    .into_iter()
    .map(|(m, deps)| (m.into(), deps.into_iter().map(String::from).collect()))
    .collect();
    assert_eq!(
        against_order(&graph, &["settings", "workspace"]),
        [
            "`extra` is not in ORDER: give it its place",
            "settings -> workspace"
        ]
    );
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec![]),
    ]
    .into_iter()
    .map(|(m, deps)| (m.into(), deps.into_iter().map(String::from).collect()))
    .collect();
    let cycle = find_cycle(&graph, "a", &mut Vec::new(), &mut BTreeSet::new()).unwrap();
    assert_eq!(cycle, ["a", "b", "c", "a"]);
    assert_eq!(
        crate_paths("use crate::{x::{A, B}, y, z::C};\n/// [`crate::w::f`]"),
        ["w", "x", "y", "z"].map(String::from).into()
    );
}
#[test]
fn no_source_file_is_over_600_lines_and_main_is_a_few() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut long = Vec::new();
    for file in &files {
        // Unit-test files (`tests.rs`, `*_tests.rs`) are tests, not source.
        let name = file.file_name().unwrap().to_str().unwrap();
        if name == "tests.rs" || name.ends_with("_tests.rs") {
            continue;
        }
        let lines = std::fs::read_to_string(file).unwrap().lines().count();
        if lines > MAX_LINES {
            long.push(format!("{} ({lines} lines)", file.display()));
        }
    }
    assert!(long.is_empty(), "over {MAX_LINES} lines: {long:?}");
    let main = std::fs::read_to_string(src().join("main.rs")).unwrap();
    assert!(main.lines().count() <= 20, "main.rs:\n{main}");
}
