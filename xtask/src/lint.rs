//! `cargo xtask lint`: the structure rules that neither rustc nor clippy check.
//!
//! 1. Layers: the modules of `src/` form layers (ARCHITECTURE.md draws them) and a module
//!    imports only from its own layer or the ones below; the import graph has no cycle.
//! 2. The CLI compiles no server code: `cargo tree -p mesheryctl` (every edge kind) names
//!    no server crate.

use anyhow::anyhow;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

/// Each module of `src/` (first path segment under `crate::`) and its layer, lowest first.
const LAYERS: &[(&str, &[&str])] = &[
    // What the build generated (re-exported crates) and plumbing with no domain knowledge.
    (
        "foundation",
        &[
            "models",
            "generated",
            "fault",
            "logging",
            "serve",
            "session",
            "store",
            "bus",
            "policy",
            "sealing",
            "tls",
        ],
    ),
    // Domain services: no axum, no App, no generated router; typed errors.
    (
        "domain",
        &[
            "connections",
            "credentials",
            "deploy",
            "design_export",
            "designs",
            "inventory",
            "events",
            "prefs",
            "orgs",
            "perf",
            "kubernetes",
            "kube_client",
            "registry",
            "retention",
            "tenancy",
        ],
    ),
    // Identity: providers, JWT, remote providers turn credentials into a `Session`.
    (
        "identity",
        &["auth", "jwt", "providers", "remote", "liveness"],
    ),
    // HTTP: the router's hooks, handlers, GraphQL, web pages, the extensions proxy.
    (
        "http",
        &[
            "error",
            "app",
            "cookies",
            "server",
            "handlers",
            "gql",
            "gql_limits",
            "gql_clusters",
            "gql_groups",
            "gql_perf",
            "gql_ws",
            "web",
            "extensions",
            "validate",
        ],
    ),
];

/// Imports that break the rules today (an upward import, or an edge that closes a cycle),
/// each to be removed (issue 13). The lint fails on
/// any other violation, and on an entry here that no longer happens, so the list only
/// shrinks and stays true.
const KNOWN: &[(&str, &str)] = &[];

/// Crates the CLI must not compile.
const SERVER_CRATES: &[&str] = &[
    "axum",
    "sqlx",
    "async-graphql",
    "meshery",
    "meshery-stubs",
    "meshery-http",
    "meshery-provider",
];

pub fn run(root: &Path) -> anyhow::Result<()> {
    let mut problems = layers(&root.join("src"))?;
    problems.extend(cli_tree(root)?);
    if problems.is_empty() {
        println!("lint: layers hold, no import cycle; mesheryctl compiles no server code");
        Ok(())
    } else {
        for p in &problems {
            eprintln!("lint: {p}");
        }
        Err(anyhow!("{} structure problem(s)", problems.len()))
    }
}

/// The index of the http layer in [`LAYERS`].
const HTTP_LAYER: usize = 3;

fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
}

/// The top-level module a file of `src/` belongs to (`auth/jwt.rs` -> `auth`), or `None`
/// for the crate root and binaries.
fn module_of(relative: &Path) -> Option<String> {
    let first = relative.components().next()?.as_os_str().to_str()?;
    if first == "bin" || first == "lib.rs" {
        return None;
    }
    Some(first.trim_end_matches(".rs").to_string())
}

/// A file's code without comments and its test module.
fn code_of(text: &str) -> String {
    let mut code = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        // Unit tests may reach anything; they sit at the end, behind #[cfg(test)].
        if trimmed.starts_with("#[cfg(test)]") {
            break;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        code.push_str(line);
        code.push('\n');
    }
    code
}

/// The modules a file's code names through `crate::`.
fn imports(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a, b::c, d::{e, f}}`: the first segment of each top-level item.
            let mut depth = 0;
            let mut item_start = true;
            let mut word = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        if !word.is_empty() {
                            found.insert(std::mem::take(&mut word));
                        }
                        item_start = true;
                    }
                    c if item_start && (c.is_alphanumeric() || c == '_') => word.push(c),
                    _ if item_start && !word.is_empty() => {
                        found.insert(std::mem::take(&mut word));
                        item_start = false;
                    }
                    _ => {}
                }
            }
            if !word.is_empty() {
                found.insert(word);
            }
        } else {
            let word: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !word.is_empty() {
                found.insert(word);
            }
        }
    }
    found
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> anyhow::Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| anyhow!("{}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| anyhow!("{e}"))?.path();
        if path.is_dir() {
            rust_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

fn layers(src: &Path) -> anyhow::Result<Vec<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files)?;
    files.sort();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut problems = Vec::new();
    let mut seen_known = BTreeSet::new();
    for file in &files {
        let relative = file.strip_prefix(src).map_err(|e| anyhow!("{e}"))?;
        let Some(from) = module_of(relative) else {
            continue;
        };
        let Some(from_layer) = layer_of(&from) else {
            problems.push(format!(
                "src/{}: module `{from}` has no layer; add it to LAYERS in xtask/src/lint.rs and to ARCHITECTURE.md",
                relative.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).map_err(|e| anyhow!("{}: {e}", file.display()))?;
        let code = code_of(&text);
        // Below the HTTP layer nothing knows the web framework (the `http` types come
        // from hyper, which both sides share).
        if from_layer < HTTP_LAYER && code.contains("axum") {
            problems.push(format!(
                "src/{}: `{from}` ({}) uses axum; only the http layer may",
                relative.display(),
                LAYERS[from_layer].0
            ));
        }
        for to in imports(&code) {
            if to == from {
                continue;
            }
            let known = KNOWN.contains(&(from.as_str(), to.as_str()));
            if known {
                seen_known.insert((from.clone(), to.clone()));
            } else {
                // Known violations stay out of the cycle check, which then proves the
                // rest of the graph acyclic; with KNOWN empty that is the whole graph.
                graph.entry(from.clone()).or_default().insert(to.clone());
            }
            let Some(to_layer) = layer_of(&to) else {
                continue; // not a module of ours (e.g. a macro path); rustc checks those
            };
            if to_layer > from_layer && !known {
                problems.push(format!(
                    "src/{}: `{from}` ({}) imports `{to}` ({}), a higher layer",
                    relative.display(),
                    LAYERS[from_layer].0,
                    LAYERS[to_layer].0
                ));
            }
        }
    }
    for (from, to) in KNOWN {
        if !seen_known.contains(&(from.to_string(), to.to_string())) {
            problems.push(format!(
                "`{from}` no longer imports `{to}`: remove the entry from KNOWN in xtask/src/lint.rs"
            ));
        }
    }
    if let Some(cycle) = find_cycle(&graph) {
        problems.push(format!("import cycle: {}", cycle.join(" -> ")));
    }
    Ok(problems)
}

/// One cycle of the module graph, if there is any.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        done: &mut BTreeSet<String>,
        path: &mut Vec<String>,
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
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, done, path) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(cycle) = visit(node, graph, &mut done, &mut Vec::new()) {
            return Some(cycle);
        }
    }
    None
}

fn cli_tree(root: &Path) -> anyhow::Result<Vec<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["tree", "-p", "mesheryctl", "--prefix", "none", "-f", "{p}"])
        .current_dir(root)
        .output()
        .map_err(|e| anyhow!("cargo tree: {e}"))?;
    if !out.status.success() {
        return Err(anyhow!(
            "cargo tree -p mesheryctl failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let names: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    Ok(SERVER_CRATES
        .iter()
        .filter(|c| names.contains(*c))
        .map(|c| {
            format!(
                "`cargo tree -p mesheryctl` includes `{c}`: the CLI must not compile server code"
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_are_read_from_paths_and_groups_but_not_comments_or_tests() {
        let text = "use crate::auth::Session;\nuse crate::{gql, web::{a, b}, error::ApiError};\n\
                    // crate::server is only mentioned\nfn f() { crate::store::x(); }\n\
                    #[cfg(test)]\nmod tests { use crate::handlers; }\n";
        let found: Vec<String> = imports(&code_of(text)).into_iter().collect();
        assert_eq!(found, ["auth", "error", "gql", "store", "web"]);
    }

    #[test]
    fn the_http_layer_is_where_its_index_says() {
        assert_eq!(LAYERS[HTTP_LAYER].0, "http");
        assert_eq!(HTTP_LAYER, LAYERS.len() - 1);
    }

    #[test]
    fn cycles_are_found_and_dags_pass() {
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        graph.entry("a".into()).or_default().insert("b".into());
        graph.entry("b".into()).or_default().insert("c".into());
        assert_eq!(find_cycle(&graph), None);
        graph.entry("c".into()).or_default().insert("a".into());
        assert_eq!(
            find_cycle(&graph),
            Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
        );
    }
}
