//! `cargo xtask compat`: schema/openapi.yaml against Meshery's published schemas.
//!
//! `@meshery/schemas` (pinned below with its npm integrity hash) ships its OpenAPI documents
//! compiled into JavaScript; `npm pack` fetches the tarball once into `target/compat/`, and
//! `tests/compat/dump-schemas.cjs` checks the hash and dumps the documents as JSON. For every
//! operation both sides define (path parameters normalised, `/api/meshmodels` read as
//! `/api/registry`, `/api/performance` as `/api/user/performance`, our `x-aliases` included),
//! parameters, request bodies and success answers are compared: property names, casing,
//! types and required. Each difference fails unless `tests/compat/schema-differences.yaml`
//! lists it (or a location above it) with a reason; a listed difference that no longer
//! occurs fails too, so the list only holds what is true.

use anyhow::{Context, anyhow};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const PACKAGE: &str = "@meshery/schemas";
pub const VERSION: &str = "1.3.7";
/// From the npm registry's `dist.integrity` for that version.
pub const INTEGRITY: &str = "sha512-eaEwLN2krtclsCD0f3g5JhABdxBD/CsBKfiUqUN4HmKuyFeNJNK4y8kLTLzgk9G8OVC+ZS0w2nnhKNU2KCE06A==";
const ALLOWED: &str = "tests/compat/schema-differences.yaml";

pub fn run(root: &Path) -> anyhow::Result<()> {
    let dump = meshery_schemas(root)?;
    let theirs = meshery_operations(&dump)?;
    let spec: Value = yaml_serde::from_str(
        &std::fs::read_to_string(root.join("schema/openapi.yaml"))
            .context("schema/openapi.yaml")?,
    )
    .context("schema/openapi.yaml")?;
    let ours = our_operations(&spec)?;
    let mut differences = Vec::new();
    let mut shared = 0;
    for (key, mine) in &ours {
        if let Some(meshery) = theirs.get(key) {
            shared += 1;
            compare_operation(meshery, mine, &mut differences);
        }
    }
    let allowed: Allowed =
        yaml_serde::from_str(&std::fs::read_to_string(root.join(ALLOWED)).context(ALLOWED)?)
            .context(ALLOWED)?;
    let mut used = vec![false; allowed.differences.len()];
    let mut failing = Vec::new();
    for d in &differences {
        match allowed.differences.iter().position(|a| a.covers(d)) {
            Some(i) => used[i] = true,
            None => failing.push(d),
        }
    }
    let stale: Vec<&Allowance> = allowed
        .differences
        .iter()
        .zip(&used)
        .filter(|(_, used)| !**used)
        .map(|(a, _)| a)
        .collect();
    println!(
        "compat: {PACKAGE}@{VERSION}: {} operations; ours: {}; both: {shared}; differences: {} ({} listed with a reason in {ALLOWED})",
        theirs.len(),
        ours.len(),
        differences.len(),
        differences.len() - failing.len(),
    );
    if failing.is_empty() && stale.is_empty() {
        return Ok(());
    }
    let mut report = String::new();
    for d in &failing {
        report.push_str(&format!("\n  {} at {}: {}", d.op, d.at, d.what));
    }
    for a in &stale {
        report.push_str(&format!(
            "\n  {} at {}: listed in {ALLOWED} but no longer differs; remove it",
            a.op, a.at
        ));
    }
    Err(anyhow!(
        "{} difference(s) from Meshery's schemas not listed in {ALLOWED}, {} stale entr(ies):{report}",
        failing.len(),
        stale.len()
    ))
}

/// The dumped documents (`target/compat/meshery-schemas-<version>.json`): the tarball is
/// fetched once, the dump (a second or two) made on every run, so it follows the script.
fn meshery_schemas(root: &Path) -> anyhow::Result<PathBuf> {
    let dir = root.join("target/compat");
    let dump = dir.join(format!("meshery-schemas-{VERSION}.json"));
    crate::test::ensure_apt("npm", &["nodejs", "npm"])?;
    std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
    let tarball = dir.join(format!("meshery-schemas-{VERSION}.tgz"));
    if !tarball.exists() {
        crate::test::run(
            Command::new("npm")
                .current_dir(&dir)
                .args(["pack", "--silent", "--loglevel=error"])
                .arg(format!("{PACKAGE}@{VERSION}")),
        )?;
    }
    let partial = dir.join("dump.partial");
    crate::test::run(
        Command::new("node")
            .arg(root.join("tests/compat/dump-schemas.cjs"))
            .arg(&tarball)
            .arg(INTEGRITY)
            .arg(&partial),
    )?;
    std::fs::rename(&partial, &dump).with_context(|| dump.display().to_string())?;
    Ok(dump)
}

#[derive(Deserialize)]
struct Allowed {
    differences: Vec<Allowance>,
}

/// A reviewed difference: `op` as `METHOD path` (Meshery's path), `at` a location that
/// covers itself and everything below it.
#[derive(Deserialize)]
struct Allowance {
    op: String,
    at: String,
    #[allow(dead_code)] // read by reviewers; required so that none is listed without one
    reason: String,
}

impl Allowance {
    fn covers(&self, d: &Difference) -> bool {
        self.op == d.op
            && (d.at == self.at
                || d.at.strip_prefix(&self.at).is_some_and(|rest| {
                    rest.starts_with('/') || rest.starts_with('.') || self.at.ends_with('/')
                }))
    }
}

#[derive(Debug)]
pub struct Difference {
    pub op: String,
    pub at: String,
    pub what: String,
}

/// A success answer: its content type and schema, if it has a body.
type Answer = Option<(String, Shape)>;

/// An operation reduced to what the comparison reads.
struct Operation {
    /// `METHOD path`, as the side that defines it writes the path.
    name: String,
    /// Path parameters in order, query parameters by name: (schema, required).
    path_params: Vec<Shape>,
    query: BTreeMap<String, (Shape, bool)>,
    /// (content type, schema) of the request body, and whether it is required.
    body: Option<(String, Shape)>,
    /// Success answers by status: (content type, schema).
    success: BTreeMap<String, Answer>,
}

/// A schema reduced to names, types and required.
#[derive(Clone, Debug, PartialEq)]
enum Shape {
    Any,
    Scalar(&'static str),
    Array(Box<Shape>),
    Object {
        props: BTreeMap<String, Shape>,
        required: BTreeSet<String>,
        additional: Option<Box<Shape>>,
        /// `additionalProperties: true`: any other property passes (a free-form object).
        open: bool,
    },
}

impl Shape {
    fn kind(&self) -> &'static str {
        match self {
            Shape::Any => "any",
            Shape::Scalar(s) => s,
            Shape::Array(_) => "array",
            Shape::Object { .. } => "object",
        }
    }
}

use meshery_codegen::compat::as_ours as normalise;

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

/// Meshery's operations by `METHOD normalised-path`. Several documents (versions) define
/// some of them: the one Meshery's server implements (`x-internal` naming `meshery`, or no
/// `x-internal`) wins over cloud-only ones, then the newest version.
fn meshery_operations(dump: &Path) -> anyhow::Result<BTreeMap<String, Operation>> {
    let text = std::fs::read_to_string(dump).with_context(|| dump.display().to_string())?;
    let dump: Value = serde_json::from_str(&text).with_context(|| dump.display().to_string())?;
    let documents = dump["documents"]
        .as_array()
        .ok_or_else(|| anyhow!("{}: no documents", PACKAGE))?;
    let mut chosen: BTreeMap<String, ((bool, u32), &Value, &str)> = BTreeMap::new();
    for doc in documents {
        let version = doc["version"].as_str().unwrap_or_default();
        let Some(paths) = doc["paths"].as_object() else {
            continue;
        };
        for (path, item) in paths {
            for method in METHODS {
                let Some(op) = item.get(method) else { continue };
                let internal = op.get("x-internal").and_then(Value::as_array);
                let meshery = internal.is_none_or(|l| l.iter().any(|v| v == "meshery"));
                let rank = (meshery, version_rank(version));
                let key = format!("{} {}", method.to_uppercase(), normalise(path));
                if chosen.get(&key).is_none_or(|(r, _, _)| rank > *r) {
                    chosen.insert(key, (rank, item, path));
                }
            }
        }
    }
    let none = Value::Null;
    chosen
        .into_iter()
        .map(|(key, (_, item, path))| {
            let method = key.split(' ').next().unwrap_or_default().to_string();
            let op = &item[method.to_lowercase()];
            let name = format!("{method} {path}");
            let operation = reduce(&name, item, op, &Resolver { root: &none })?;
            Ok((key, operation))
        })
        .collect()
}

fn version_rank(version: &str) -> u32 {
    // v1alpha1 < v1alpha2 < v1alpha3 < v1beta1 < v1beta2 < v1beta3 < v1 < v2 ...
    let rest = version.trim_start_matches('v');
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let major: u32 = digits.parse().unwrap_or(0);
    let tail = &rest[digits.len()..];
    let (stage, n) = if let Some(n) = tail.strip_prefix("alpha") {
        (0, n)
    } else if let Some(n) = tail.strip_prefix("beta") {
        (1, n)
    } else {
        (2, "0")
    };
    major * 1000 + stage * 100 + n.parse::<u32>().unwrap_or(0)
}

/// Our operations by `METHOD normalised-path`, once per path they are served at.
fn our_operations(spec: &Value) -> anyhow::Result<BTreeMap<String, Operation>> {
    let resolver = Resolver { root: spec };
    let mut out = BTreeMap::new();
    let paths = spec["paths"]
        .as_object()
        .ok_or_else(|| anyhow!("schema/openapi.yaml: no paths"))?;
    for (path, item) in paths {
        let aliases: Vec<&str> = item
            .get("x-aliases")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let snake = op.get("x-snake-aliases").and_then(Value::as_u64);
            for served in std::iter::once(path.as_str()).chain(aliases.iter().copied()) {
                let name = format!("{} {served}", method.to_uppercase());
                let mut operation = reduce(&name, item, op, &resolver)?;
                // A body with `x-snake-aliases: N` also takes snake_case keys at depth N.
                let body_snake = resolver.deref(&op["requestBody"])["x-snake-aliases"].as_u64();
                if let (Some(depth), Some((_, shape))) = (body_snake, operation.body.as_mut()) {
                    *shape = with_snake_aliases(shape, depth, false);
                }
                for answer in operation.success.values_mut().flatten() {
                    if let Some(depth) = snake {
                        answer.1 = with_snake_aliases(&answer.1, depth, true);
                    }
                    answer.1 = page_aliases(&answer.1, op, &resolver);
                }
                out.insert(
                    format!("{} {}", method.to_uppercase(), normalise(served)),
                    operation,
                );
            }
        }
    }
    Ok(out)
}

/// Page envelopes (`x-page`) carry `page_size` and `total_count` beside the camelCase keys.
fn page_aliases(shape: &Shape, op: &Value, resolver: &Resolver) -> Shape {
    let schema = op["responses"]
        .as_object()
        .and_then(|r| r.iter().find(|(code, _)| code.starts_with('2')))
        .map(|(_, r)| resolver.deref(r))
        .map(|r| resolver.deref(&r["content"]["application/json"]["schema"]));
    match schema {
        Some(s) if s.get("x-page").is_some() => with_snake_aliases(shape, 0, true),
        _ => shape.clone(),
    }
}

/// What the generated router's `json_with_snake_aliases` sends: objects at `depth` also
/// carry each camelCase key in snake_case (required where the camelCase one is, when
/// `sent`: an answer has both; a request body may spell a key either way).
fn with_snake_aliases(shape: &Shape, depth: u64, sent: bool) -> Shape {
    match shape {
        Shape::Object {
            props,
            required,
            additional,
            open,
        } if depth == 0 => {
            let mut props = props.clone();
            let mut required = required.clone();
            for (k, v) in props.clone() {
                let snake = snake_case(&k);
                if snake != k {
                    if sent && required.contains(&k) {
                        required.insert(snake.clone());
                    }
                    props.entry(snake).or_insert(v);
                }
            }
            Shape::Object {
                props,
                required,
                additional: additional.clone(),
                open: *open,
            }
        }
        Shape::Object {
            props,
            required,
            additional,
            open,
        } => Shape::Object {
            props: props
                .iter()
                .map(|(k, v)| (k.clone(), with_snake_aliases(v, depth - 1, sent)))
                .collect(),
            required: required.clone(),
            additional: additional
                .as_ref()
                .map(|a| Box::new(with_snake_aliases(a, depth - 1, sent))),
            open: *open,
        },
        Shape::Array(items) => Shape::Array(Box::new(with_snake_aliases(items, depth, sent))),
        other => other.clone(),
    }
}

fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Resolves local `$ref`s (ours; Meshery's documents are already dereferenced).
struct Resolver<'a> {
    root: &'a Value,
}

impl Resolver<'_> {
    fn deref(&self, value: &Value) -> Value {
        let mut value = value.clone();
        for _ in 0..16 {
            let Some(target) = value.get("$ref").and_then(Value::as_str) else {
                break;
            };
            let Some(pointer) = target.strip_prefix('#') else {
                break;
            };
            match self.root.pointer(pointer) {
                Some(found) => value = found.clone(),
                None => break,
            }
        }
        value
    }

    fn shape(&self, schema: &Value, seen: &mut Vec<String>) -> Shape {
        if let Some(target) = schema.get("$ref").and_then(Value::as_str) {
            if seen.iter().any(|s| s == target) || seen.len() > 24 {
                return Shape::Any; // recursive schema: compared once
            }
            seen.push(target.to_string());
            let resolved = self.deref(schema);
            let shape = self.shape(&resolved, seen);
            seen.pop();
            return shape;
        }
        if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
            let mut merged = self.shape_without(schema, "allOf", seen);
            for part in all {
                merged = merge(merged, self.shape(part, seen), true);
            }
            return merged;
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(variants) = schema.get(key).and_then(Value::as_array) {
                let mut shapes = variants.iter().map(|v| self.shape(v, seen));
                let first = shapes.next().unwrap_or(Shape::Any);
                let either = shapes.fold(first, |a, b| merge(a, b, false));
                return merge(self.shape_without(schema, key, seen), either, true);
            }
        }
        let ty = match schema.get("type") {
            Some(Value::String(t)) => Some(t.as_str()),
            // OpenAPI 3.1 style: ["string", "null"]
            Some(Value::Array(types)) => types
                .iter()
                .filter_map(Value::as_str)
                .find(|t| *t != "null"),
            _ => None,
        };
        match ty {
            Some("array") => Shape::Array(Box::new(
                schema
                    .get("items")
                    .map(|i| self.shape(i, seen))
                    .unwrap_or(Shape::Any),
            )),
            Some(t @ ("string" | "integer" | "number" | "boolean")) => Shape::Scalar(match t {
                "string" => "string",
                "integer" => "integer",
                "number" => "number",
                _ => "boolean",
            }),
            Some("object") | None
                if schema.get("properties").is_some()
                    || schema.get("additionalProperties").is_some()
                    || ty == Some("object") =>
            {
                let props = schema
                    .get("properties")
                    .and_then(Value::as_object)
                    .map(|p| {
                        p.iter()
                            .map(|(k, v)| (k.clone(), self.shape(v, seen)))
                            .collect()
                    })
                    .unwrap_or_default();
                let required = schema
                    .get("required")
                    .and_then(Value::as_array)
                    .map(|r| {
                        r.iter()
                            .filter_map(Value::as_str)
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default();
                let additional = match schema.get("additionalProperties") {
                    Some(v @ Value::Object(_)) => Some(Box::new(self.shape(v, seen))),
                    _ => None,
                };
                let open = schema.get("additionalProperties") == Some(&Value::Bool(true));
                Shape::Object {
                    props,
                    required,
                    additional,
                    open,
                }
            }
            _ => Shape::Any,
        }
    }

    /// The schema's own part beside a combinator (`{type: object, properties, allOf}`).
    fn shape_without(&self, schema: &Value, key: &str, seen: &mut Vec<String>) -> Shape {
        let mut rest = schema.clone();
        if let Some(map) = rest.as_object_mut() {
            map.remove(key);
        }
        self.shape(&rest, seen)
    }
}

/// Combines two shapes: `all` (allOf: required adds up) or either-of (oneOf/anyOf: a
/// property is required only when every variant requires it).
fn merge(a: Shape, b: Shape, all: bool) -> Shape {
    match (a, b) {
        (Shape::Any, other) | (other, Shape::Any) => other,
        (
            Shape::Object {
                props: mut pa,
                required: ra,
                additional: xa,
                open: oa,
            },
            Shape::Object {
                props: pb,
                required: rb,
                additional: xb,
                open: ob,
            },
        ) => {
            let a_keys: BTreeSet<String> = pa.keys().cloned().collect();
            for (k, v) in pb {
                let merged = match pa.remove(&k) {
                    Some(existing) => merge(existing, v, all),
                    None => v,
                };
                pa.insert(k, merged);
            }
            let required = if all || a_keys.is_empty() {
                ra.union(&rb).cloned().collect()
            } else {
                ra.intersection(&rb).cloned().collect()
            };
            Shape::Object {
                props: pa,
                required,
                additional: xa.or(xb),
                open: oa || ob,
            }
        }
        (a, b) if a == b => a,
        // string-or-object and the like: nothing firm to compare
        _ => Shape::Any,
    }
}

/// Reads one operation of either side.
fn reduce(name: &str, item: &Value, op: &Value, resolver: &Resolver) -> anyhow::Result<Operation> {
    let mut path_params = Vec::new();
    let mut query = BTreeMap::new();
    let params = item
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .chain(
            op.get("parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        );
    let mut by_name: BTreeMap<(String, String), Value> = BTreeMap::new();
    for p in params {
        let p = resolver.deref(p);
        let key = (
            p["in"].as_str().unwrap_or_default().to_string(),
            p["name"].as_str().unwrap_or_default().to_string(),
        );
        by_name.insert(key, p); // an operation's parameter overrides the path item's
    }
    let path = name.split_once(' ').map(|(_, p)| p).unwrap_or_default();
    let order: Vec<String> = path
        .split('{')
        .skip(1)
        .filter_map(|s| s.split('}').next())
        .map(String::from)
        .collect();
    for param in &order {
        let shape = by_name
            .get(&("path".to_string(), param.clone()))
            .map(|p| resolver.shape(&p["schema"], &mut Vec::new()))
            .unwrap_or(Shape::Scalar("string"));
        path_params.push(shape);
    }
    for ((location, pname), p) in &by_name {
        if location == "query" {
            let shape = resolver.shape(&p["schema"], &mut Vec::new());
            query.insert(pname.clone(), (shape, p["required"] == true));
        }
    }
    let body = op
        .get("requestBody")
        .map(|b| resolver.deref(b))
        .and_then(|b| content(&b, resolver));
    let mut success = BTreeMap::new();
    if let Some(responses) = op.get("responses").and_then(Value::as_object) {
        for (code, response) in responses {
            if code.starts_with('2') {
                let response = resolver.deref(response);
                success.insert(code.clone(), content(&response, resolver));
            }
        }
    }
    Ok(Operation {
        name: name.to_string(),
        path_params,
        query,
        body,
        success,
    })
}

/// The JSON content of a body or answer (else the first one), reduced.
fn content(holder: &Value, resolver: &Resolver) -> Option<(String, Shape)> {
    let content = holder.get("content")?.as_object()?;
    let (ct, media) = content
        .iter()
        .find(|(ct, _)| ct.as_str() == "application/json")
        .or_else(|| content.iter().next())?;
    let shape = media
        .get("schema")
        .map(|s| resolver.shape(s, &mut Vec::new()))
        .unwrap_or(Shape::Any);
    Some((ct.clone(), shape))
}

#[derive(Clone, Copy, PartialEq)]
enum Direction {
    /// Meshery's clients send it: every property they send must be accepted, nothing they
    /// may leave out may be required.
    Request,
    /// Meshery's clients decode it: every property must be there, those Meshery requires
    /// must be required here too.
    Response,
}

fn compare_operation(meshery: &Operation, ours: &Operation, out: &mut Vec<Difference>) {
    let op = meshery.name.clone();
    let mut push = |at: String, what: String| {
        out.push(Difference {
            op: op.clone(),
            at,
            what,
        })
    };
    for (i, (theirs, mine)) in meshery
        .path_params
        .iter()
        .zip(&ours.path_params)
        .enumerate()
    {
        if let (Shape::Scalar(a), Shape::Scalar(b)) = (theirs, mine)
            && a != b
        {
            push(
                format!("path.{}", i + 1),
                format!("path parameter {}: Meshery {a}, ours {b}", i + 1),
            );
        }
    }
    for (name, (theirs, required)) in &meshery.query {
        match ours.query.get(name) {
            Some((mine, mine_required)) => {
                let mut found = Vec::new();
                compare(
                    &format!("query.{name}"),
                    theirs,
                    mine,
                    Direction::Request,
                    &mut found,
                );
                for (at, what) in found {
                    push(at, what);
                }
                if *mine_required && !required {
                    push(
                        format!("query.{name}"),
                        "required here, optional in Meshery".into(),
                    );
                }
            }
            None => {
                let near = ours.query.keys().find(|k| same_words(k, name));
                push(
                    format!("query.{name}"),
                    match near {
                        Some(k) => format!("casing: Meshery `{name}`, ours `{k}`"),
                        None => format!("query parameter `{name}` not taken here"),
                    },
                );
            }
        }
    }
    for (name, (_, required)) in &ours.query {
        if *required && !meshery.query.contains_key(name) {
            push(
                format!("query.{name}"),
                "required here, absent in Meshery".into(),
            );
        }
    }
    match (&meshery.body, &ours.body) {
        (Some((ct_a, a)), Some((ct_b, b))) => {
            if ct_a != ct_b {
                push(
                    "request".into(),
                    format!("content type: Meshery {ct_a}, ours {ct_b}"),
                );
            }
            let mut found = Vec::new();
            compare("request", a, b, Direction::Request, &mut found);
            for (at, what) in found {
                push(at, what);
            }
        }
        (Some((ct, _)), None) => push(
            "request".into(),
            format!("Meshery sends a {ct} body, ours takes none"),
        ),
        _ => {}
    }
    let theirs: Vec<&String> = meshery.success.keys().collect();
    let mine: Vec<&String> = ours.success.keys().collect();
    if theirs != mine {
        push(
            "status".into(),
            format!("success statuses: Meshery {theirs:?}, ours {mine:?}"),
        );
    }
    // Same status, or the one success answer each side has.
    let pairs: Vec<(&String, &Answer, &Answer)> =
        if meshery.success.len() == 1 && ours.success.len() == 1 {
            let (code, a) = meshery.success.iter().next().expect("one");
            let (_, b) = ours.success.iter().next().expect("one");
            vec![(code, a, b)]
        } else {
            meshery
                .success
                .iter()
                .filter_map(|(code, a)| ours.success.get(code).map(|b| (code, a, b)))
                .collect()
        };
    for (code, a, b) in pairs {
        let at = format!("response.{code}");
        match (a, b) {
            (Some((ct_a, a)), Some((ct_b, b))) => {
                if ct_a != ct_b {
                    push(
                        at.clone(),
                        format!("content type: Meshery {ct_a}, ours {ct_b}"),
                    );
                }
                let mut found = Vec::new();
                compare(&at, a, b, Direction::Response, &mut found);
                for (at, what) in found {
                    push(at, what);
                }
            }
            (Some((ct, _)), None) => push(at, format!("Meshery answers {ct}, ours no body")),
            _ => {}
        }
    }
}

/// Same name but for casing and underscores (`page_size` ~ `pageSize`).
fn same_words(a: &str, b: &str) -> bool {
    let squash = |s: &str| -> String {
        s.chars()
            .filter(|c| *c != '_' && *c != '-')
            .flat_map(char::to_lowercase)
            .collect()
    };
    squash(a) == squash(b)
}

fn compare(
    at: &str,
    theirs: &Shape,
    mine: &Shape,
    dir: Direction,
    out: &mut Vec<(String, String)>,
) {
    match (theirs, mine) {
        (Shape::Any, _) | (_, Shape::Any) => {}
        (Shape::Scalar(a), Shape::Scalar(b)) => {
            if a != b {
                out.push((at.into(), format!("type: Meshery {a}, ours {b}")));
            }
        }
        (Shape::Array(a), Shape::Array(b)) => compare(&format!("{at}/*"), a, b, dir, out),
        (
            Shape::Object {
                props: pa,
                required: ra,
                additional: xa,
                ..
            },
            Shape::Object {
                props: pb,
                required: rb,
                additional: xb,
                open,
            },
        ) => {
            for (key, a) in pa {
                let here = format!("{at}/{key}");
                match pb.get(key) {
                    Some(b) => {
                        compare(&here, a, b, dir, out);
                        match dir {
                            Direction::Response if ra.contains(key) && !rb.contains(key) => out
                                .push((
                                    here,
                                    "required in Meshery's answer, optional in ours".into(),
                                )),
                            Direction::Request if rb.contains(key) && !ra.contains(key) => out
                                .push((
                                    here,
                                    "required in our request, optional in Meshery's".into(),
                                )),
                            _ => {}
                        }
                    }
                    None if xb.is_some() => {
                        if let Some(b) = xb {
                            compare(&here, a, b, dir, out);
                        }
                    }
                    // Ours is free-form: it takes (and passes on) whatever is there.
                    None if *open => {}
                    None => {
                        let near = pb.keys().find(|k| same_words(k, key));
                        out.push((
                            here,
                            match near {
                                Some(k) => format!("casing: Meshery `{key}`, ours `{k}`"),
                                None => format!("Meshery's `{key}` ({}) is not in ours", a.kind()),
                            },
                        ));
                    }
                }
            }
            if dir == Direction::Request {
                for key in rb {
                    if !pa.contains_key(key) && xa.is_none() {
                        out.push((
                            format!("{at}/{key}"),
                            "required in our request, absent in Meshery's".into(),
                        ));
                    }
                }
            }
            if let (Some(a), Some(b)) = (xa, xb) {
                compare(&format!("{at}/*"), a, b, dir, out);
            }
        }
        (a, b) => out.push((
            at.into(),
            format!("type: Meshery {}, ours {}", a.kind(), b.kind()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(yaml: &str) -> Shape {
        let v: Value = yaml_serde::from_str(yaml).expect("yaml");
        Resolver { root: &v }.shape(&v, &mut Vec::new())
    }

    fn diffs(theirs: &str, mine: &str, dir: Direction) -> Vec<(String, String)> {
        let mut out = Vec::new();
        compare("r", &shape(theirs), &shape(mine), dir, &mut out);
        out
    }

    #[test]
    fn casing_types_and_required_are_differences() {
        let theirs = "{type: object, required: [page_size], properties: {page_size: {type: integer}, name: {type: string}, n: {type: integer}}}";
        let mine = "{type: object, properties: {pageSize: {type: integer}, name: {type: string}, n: {type: string}}}";
        let found = diffs(theirs, mine, Direction::Response);
        assert_eq!(
            found,
            vec![
                ("r/n".into(), "type: Meshery integer, ours string".into()),
                (
                    "r/page_size".into(),
                    "casing: Meshery `page_size`, ours `pageSize`".into()
                ),
            ]
        );
        // A request field we require but Meshery's clients may leave out.
        let found = diffs(
            "{type: object, properties: {a: {type: string}}}",
            "{type: object, required: [a, b], properties: {a: {type: string}, b: {type: string}}}",
            Direction::Request,
        );
        assert_eq!(found.len(), 2, "{found:?}");
    }

    #[test]
    fn one_of_variants_merge_with_required_in_all() {
        let s = shape(
            "{oneOf: [{type: object, required: [file, name], properties: {file: {type: string}, name: {type: string}}}, {type: object, required: [url, name], properties: {url: {type: string}, name: {type: string}}}]}",
        );
        let Shape::Object {
            props, required, ..
        } = s
        else {
            panic!("object expected")
        };
        assert_eq!(props.len(), 3);
        assert_eq!(
            required.into_iter().collect::<Vec<_>>(),
            vec!["name".to_string()]
        );
    }

    #[test]
    fn snake_aliases_are_what_we_send() {
        let s = with_snake_aliases(
            &shape("{type: object, required: [pageSize], properties: {pageSize: {type: integer}}}"),
            0,
            true,
        );
        let found = diffs(
            "{type: object, required: [page_size], properties: {page_size: {type: integer}}}",
            &serde_json::to_string(&shape_to_value(&s)).expect("json"),
            Direction::Response,
        );
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn a_request_may_spell_a_key_either_way() {
        let Shape::Object {
            props, required, ..
        } = with_snake_aliases(
            &shape("{type: object, required: [subType], properties: {subType: {type: string}}}"),
            0,
            false,
        )
        else {
            panic!("not an object")
        };
        assert!(props.contains_key("sub_type") && props.contains_key("subType"));
        assert_eq!(required.into_iter().collect::<Vec<_>>(), ["subType"]);
    }

    fn shape_to_value(s: &Shape) -> Value {
        match s {
            Shape::Any => serde_json::json!({}),
            Shape::Scalar(t) => serde_json::json!({"type": t}),
            Shape::Array(i) => serde_json::json!({"type": "array", "items": shape_to_value(i)}),
            Shape::Object {
                props, required, ..
            } => serde_json::json!({
                "type": "object",
                "required": required,
                "properties": props.iter().map(|(k, v)| (k.clone(), shape_to_value(v))).collect::<serde_json::Map<_, _>>(),
            }),
        }
    }

    #[test]
    fn free_form_objects_take_any_property() {
        let found = diffs(
            "{type: object, properties: {a: {type: string}, b: {type: object, properties: {c: {type: string}}}}}",
            "{type: object, additionalProperties: true}",
            Direction::Request,
        );
        assert!(found.is_empty(), "{found:?}");
        // Closed (or merely undeclared) objects still differ.
        let found = diffs(
            "{type: object, properties: {a: {type: string}}}",
            "{type: object, properties: {b: {type: string}}}",
            Direction::Request,
        );
        assert_eq!(found.len(), 1, "{found:?}");
    }

    #[test]
    fn allowances_cover_their_location_and_below() {
        let a = Allowance {
            op: "GET /x".into(),
            at: "response.200/items".into(),
            reason: "r".into(),
        };
        let d = |at: &str| Difference {
            op: "GET /x".into(),
            at: at.into(),
            what: String::new(),
        };
        assert!(a.covers(&d("response.200/items")));
        assert!(a.covers(&d("response.200/items/*/id")));
        assert!(!a.covers(&d("response.200/itemsCount")));
    }

    #[test]
    fn versions_order_newest_last() {
        let mut v = vec!["v1beta3", "v1alpha1", "v1beta1", "v1alpha3", "v1beta2"];
        v.sort_by_key(|s| version_rank(s));
        assert_eq!(v, ["v1alpha1", "v1alpha3", "v1beta1", "v1beta2", "v1beta3"]);
    }
}
