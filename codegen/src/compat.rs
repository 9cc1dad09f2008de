//! The compatibility coverage table (`generated/docs/compat.md`): Meshery's router
//! operations (`tests/compat/meshery-router.yaml`), which of them this server serves (from
//! the spec, aliases included), and which of Meshery's clients call them (the corpus,
//! `tests/compat/<client>*.yaml`), with the corpus entries expected to fail counted.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use serde_json::Value;

use crate::openapi::Spec;
use crate::{Error, Result};

/// `/api/x/{anything}` -> `/api/x/{}`; a trailing `/*` (a prefix route) -> `/{}`.
pub fn normalise(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in path.trim_end_matches('/').chars() {
        match c {
            '{' => {
                in_param = true;
                out.push('{');
            }
            '}' => {
                in_param = false;
                out.push('}');
            }
            _ if in_param => {}
            _ => out.push(c),
        }
    }
    if let Some(prefix) = out.strip_suffix("/*") {
        out = format!("{prefix}/{{}}");
    }
    out
}

/// [`normalise`]d, with Meshery's other names for our paths read as ours: its schemas
/// define `/api/meshmodels/*` (our `/api/registry/*`) and `/api/performance/*` (its alias
/// of `/api/user/performance/*`). For comparing definitions, not for what is served.
pub fn as_ours(path: &str) -> String {
    let out = normalise(path);
    for (from, to) in [
        ("/api/meshmodels/", "/api/registry/"),
        ("/api/performance/", "/api/user/performance/"),
    ] {
        if let Some(rest) = out.strip_prefix(from) {
            return format!("{to}{rest}");
        }
    }
    out
}

/// One operation of Meshery's router.
struct RouterOp {
    method: String,
    path: String,
    handler: String,
}

/// One call of a client, as the table needs it.
struct Call {
    client: String,
    file: String,
    id: String,
    method: String,
    path: String,
    xfail: Option<String>,
}

fn field<'a>(file: &str, place: &str, v: &'a Value, key: &str) -> Result<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| Error::new(file, place, format!("`{key}` (a string) is missing")))
}

fn parse_router(file: &str, text: &str) -> Result<(String, Vec<RouterOp>)> {
    let doc: Value = yaml_serde::from_str(text)
        .map_err(|e| Error::new(file, "", format!("is not YAML: {e}")))?;
    let commit = field(file, "", &doc, "commit")?.to_string();
    let ops = doc
        .get("operations")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::new(file, "", "`operations` (a list) is missing"))?;
    let mut out = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let place = format!("operations[{i}]");
        out.push(RouterOp {
            method: field(file, &place, op, "method")?.to_uppercase(),
            path: field(file, &place, op, "path")?.to_string(),
            handler: op
                .get("handler")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        });
    }
    Ok((commit, out))
}

fn parse_corpus(file: &str, text: &str) -> Result<Vec<Call>> {
    let doc: Value = yaml_serde::from_str(text)
        .map_err(|e| Error::new(file, "", format!("is not YAML: {e}")))?;
    let client = field(file, "", &doc, "client")?.to_string();
    let calls = doc
        .get("calls")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::new(file, "", "`calls` (a list) is missing"))?;
    let mut ids = BTreeSet::new();
    let mut out = Vec::new();
    for (i, call) in calls.iter().enumerate() {
        let place = format!("calls[{i}]");
        let id = field(file, &place, call, "id")?.to_string();
        if !ids.insert(id.clone()) {
            return Err(Error::new(file, &place, format!("id `{id}` is not unique")));
        }
        // Where it was read: the file, and the version of it.
        field(file, &place, call, "source")?;
        field(file, &place, call, "commit")?;
        out.push(Call {
            client: client.clone(),
            file: file.to_string(),
            id,
            method: field(file, &place, call, "method")?.to_uppercase(),
            path: field(file, &place, call, "path")?.to_string(),
            xfail: call.get("xfail").and_then(Value::as_str).map(String::from),
        });
    }
    Ok(out)
}

/// Whether a (normalised) route pattern matches a (normalised) call path: segment by
/// segment, `{}` in the route taking any one segment (a last `{}` of a prefix route takes
/// the rest). Returns how many parameters it took (fewer is more specific).
fn matches(route: &str, path: &str, prefix: bool) -> Option<usize> {
    let r: Vec<&str> = route.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    if r.len() != p.len() && !(prefix && p.len() >= r.len()) {
        return None;
    }
    let mut params = 0;
    for (i, (a, b)) in r.iter().zip(&p).enumerate() {
        if *a == "{}" {
            params += 1;
            if prefix && i == r.len() - 1 {
                return Some(params);
            }
        } else if a != b {
            return None;
        }
    }
    Some(params)
}

/// Our operations: (method, normalised path, operationId, takes the rest of the path).
fn served(spec: &Spec) -> Vec<(String, String, String, bool)> {
    let mut out = Vec::new();
    for op in &spec.operations {
        for path in std::iter::once(&op.path).chain(&op.aliases) {
            out.push((
                op.method.to_uppercase(),
                normalise(path),
                op.id.clone(),
                op.path_rest,
            ));
        }
    }
    out
}

/// The coverage table as Markdown. `router` and `corpora` are (file name, text).
pub fn table(spec: &Spec, router: (&str, &str), corpora: &[(&str, &str)]) -> Result<String> {
    let (commit, routes) = parse_router(router.0, router.1)?;
    let mut calls = Vec::new();
    for (file, text) in corpora {
        calls.extend(parse_corpus(file, text)?);
    }
    let ours = served(spec);
    // A router operation is served when we answer the same method and path (parameters
    // in the same places); a call, when one of ours takes its path.
    let serves_route = |method: &str, path: &str| -> Option<String> {
        let path = normalise(path);
        ours.iter()
            .find(|(m, p, _, _)| (method == "ANY" || m == method) && *p == path)
            .map(|(_, _, id, _)| id.clone())
    };
    let serves_call = |method: &str, path: &str| -> Option<String> {
        let path = normalise(path);
        ours.iter()
            .filter(|(m, _, _, _)| m == method)
            .filter_map(|(_, p, id, rest)| matches(p, &path, *rest).map(|n| (n, id)))
            .min_by_key(|(n, _)| *n)
            .map(|(_, id)| id.clone())
    };
    // Each call goes to the most specific router operation that matches it.
    let mut by_route: BTreeMap<usize, Vec<&Call>> = BTreeMap::new();
    let mut unrouted = Vec::new();
    for call in &calls {
        let path = normalise(call.path.split('?').next().unwrap_or_default());
        let best = routes
            .iter()
            .enumerate()
            .filter(|(_, r)| r.method == "ANY" || r.method == call.method)
            .filter_map(|(i, r)| {
                let route = normalise(&r.path);
                let prefix = r.path.ends_with("/*");
                matches(&route, &path, prefix).map(|n| (n + usize::from(prefix) * 100, i))
            })
            .min();
        match best {
            Some((_, i)) => by_route.entry(i).or_default().push(call),
            None => unrouted.push(call),
        }
    }

    let clients: BTreeSet<&str> = calls.iter().map(|c| c.client.as_str()).collect();
    let mut md = String::new();
    md.push_str("<!-- generated by `cargo xtask docs` from tests/compat/ and schema/openapi.yaml; do not edit -->\n\n");
    md.push_str("# Compatibility with Meshery's clients\n\n");
    let _ = writeln!(
        md,
        "Meshery's router ([`server/router/server.go`](https://github.com/meshery/meshery/blob/{commit}/server/router/server.go) at `{}`), which of its operations this server serves, and which calls of Meshery's own clients reach them. The calls are the corpus in `tests/compat/`, read from Meshery's source; the contract suite replays each one against this server and checks every value the client reads. An entry marked *expected to fail* must fail until the server catches up (the replay says when one passes).\n",
        &commit[..commit.len().min(12)]
    );
    let served_routes = routes
        .iter()
        .filter(|r| serves_route(&r.method, &r.path).is_some())
        .count();
    md.push_str("| | Total | Served here | Corpus entries passing | Expected to fail |\n|---|---|---|---|---|\n");
    let _ = writeln!(
        md,
        "| Meshery router operations | {} | {served_routes} | | |",
        routes.len()
    );
    for client in &clients {
        let mine: Vec<&Call> = calls.iter().filter(|c| c.client == *client).collect();
        let served_calls = mine
            .iter()
            .filter(|c| {
                serves_call(&c.method, c.path.split('?').next().unwrap_or_default()).is_some()
            })
            .count();
        let xfail = mine.iter().filter(|c| c.xfail.is_some()).count();
        let _ = writeln!(
            md,
            "| {client} calls | {} | {served_calls} | {} | {xfail} |",
            mine.len(),
            mine.len() - xfail
        );
    }
    md.push_str("\n## Meshery's router\n\n| Method | Path | Meshery handler | Here | Called by |\n|---|---|---|---|---|\n");
    for (i, r) in routes.iter().enumerate() {
        let here = match serves_route(&r.method, &r.path) {
            Some(id) => format!("`{id}`"),
            None => "no".into(),
        };
        let _ = writeln!(
            md,
            "| {} | `{}` | {} | {here} | {} |",
            r.method,
            r.path,
            r.handler,
            callers(by_route.get(&i).map(Vec::as_slice).unwrap_or_default())
        );
    }
    if !unrouted.is_empty() {
        md.push_str("\n## Calls to paths outside Meshery's router\n\nCalls of the clients that no router operation above takes (a route of another version, or one the remote provider serves through the extension proxy).\n\n| Client | Method | Path | Here | Entry |\n|---|---|---|---|---|\n");
        for c in &unrouted {
            let here = match serves_call(&c.method, c.path.split('?').next().unwrap_or_default()) {
                Some(id) => format!("`{id}`"),
                None => "no".into(),
            };
            let _ = writeln!(
                md,
                "| {} | {} | `{}` | {here} | {} |",
                c.client,
                c.method,
                c.path,
                entry(c)
            );
        }
    }
    for client in &clients {
        let _ = writeln!(
            md,
            "\n## {client}: the corpus\n\n| Entry | Method | Path | Replay |\n|---|---|---|---|"
        );
        for c in calls.iter().filter(|c| c.client == *client) {
            let _ = writeln!(
                md,
                "| {} | {} | `{}` | {} |",
                entry(c),
                c.method,
                c.path,
                match &c.xfail {
                    Some(why) => format!("expected to fail: {}", why.replace('|', "\\|")),
                    None => "passes".into(),
                }
            );
        }
    }
    Ok(md)
}

fn entry(c: &Call) -> String {
    format!(
        "`{}` ({})",
        c.id,
        c.file.rsplit('/').next().unwrap_or(&c.file)
    )
}

/// "mesheryctl (2), ui (3, 1 expected to fail)".
fn callers(calls: &[&Call]) -> String {
    let mut by_client: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for c in calls {
        let e = by_client.entry(&c.client).or_default();
        e.0 += 1;
        if c.xfail.is_some() {
            e.1 += 1;
        }
    }
    by_client
        .iter()
        .map(|(client, (n, x))| {
            if *x > 0 {
                format!("{client} ({n}, {x} expected to fail)")
            } else {
                format!("{client} ({n})")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalise_and_prefix_routes_match_the_rest() {
        assert_eq!(
            normalise("/api/meshmodels/models/{id}/"),
            "/api/meshmodels/models/{}"
        );
        assert_eq!(
            as_ours("/api/meshmodels/models/{id}/"),
            "/api/registry/models/{}"
        );
        assert_eq!(normalise("/api/extensions/*"), "/api/extensions/{}");
        assert_eq!(
            as_ours("/api/performance/profiles/{id}"),
            "/api/user/performance/profiles/{}"
        );
        assert_eq!(
            matches("/api/pattern/{}", "/api/pattern/deploy", false),
            Some(1)
        );
        assert_eq!(
            matches("/api/pattern/deploy", "/api/pattern/deploy", false),
            Some(0)
        );
        assert_eq!(
            matches("/api/extensions/{}", "/api/extensions/a/b", true),
            Some(1)
        );
        assert_eq!(
            matches("/api/extensions/{}", "/api/extensions/a/b", false),
            None
        );
        assert_eq!(matches("/api/pattern", "/api/pattern/x", false), None);
    }

    #[test]
    fn calls_go_to_the_most_specific_route_and_duplicates_are_refused() {
        let fixture = include_str!("../tests/fixtures/petstore.yaml");
        let spec = match Spec::parse("petstore.yaml", fixture) {
            Ok(spec) => spec,
            Err(e) => panic!("{e}"),
        };
        // The fixture serves /pets/{petId} and its alias /animals/{petId}.
        let router = "commit: 0123456789abcdef\noperations:\n  - {method: DELETE, path: '/animals/{id}', handler: A}\n  - {method: DELETE, path: /animals/all, handler: B}\n  - {method: GET, path: '/pets/{id}/toys', handler: C}\n";
        let corpus = "client: ui\ncalls:\n  - {id: d, source: s.ts, commit: c, method: DELETE, path: /animals/all}\n  - {id: e, source: s.ts, commit: c, method: DELETE, path: '/animals/{petId}'}\n  - {id: f, source: s.ts, commit: c, method: GET, path: /nowhere, xfail: not here}\n";
        let md = table(&spec, ("r.yaml", router), &[("ui.yaml", corpus)]).expect("table");
        // A literal route is its own operation, not one of ours with a parameter there.
        assert!(
            md.contains("| DELETE | `/animals/all` | B | no | ui (1) |"),
            "{md}"
        );
        assert!(
            md.contains("| DELETE | `/animals/{id}` | A | `deletePet` | ui (1) |"),
            "{md}"
        );
        assert!(
            md.contains("| GET | `/pets/{id}/toys` | C | no |  |"),
            "{md}"
        );
        assert!(md.contains("| ui | GET | `/nowhere` | no |"), "{md}");
        assert!(md.contains("| Meshery router operations | 3 | 1 |"), "{md}");
        assert!(md.contains("| ui calls | 3 | 2 | 2 | 1 |"), "{md}");
        let twice = "client: ui\ncalls:\n  - {id: d, source: s, commit: c, method: GET, path: /a}\n  - {id: d, source: s, commit: c, method: GET, path: /b}\n";
        assert!(table(&spec, ("r.yaml", router), &[("ui.yaml", twice)]).is_err());
        let unsourced = "client: ui\ncalls:\n  - {id: d, source: s, method: GET, path: /a}\n";
        assert!(table(&spec, ("r.yaml", router), &[("ui.yaml", unsourced)]).is_err());
    }
}
