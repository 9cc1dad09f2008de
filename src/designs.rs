//! Designs (Meshery's patterns): the design file format, its checks against the registry,
//! import from Kubernetes manifests, export back to manifests, and the per-user service.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use crate::bus::{Bus, Notice, Topic};
use crate::events::{Events, NewEvent};
use crate::fault::{Internal, OrInternal};
use crate::models::{EventSeverity, Pattern, PatternVisibility};
use crate::registry::Registry;
use crate::session::Session;
use crate::store::{Listing, Store, stamp};

/// The most components a design may hold.
const MAX_COMPONENTS: usize = 1000;
/// How many problems one error lists before "and N more".
const MAX_REPORTED: usize = 20;
/// The design file format's version, written into imported designs.
pub const SCHEMA_VERSION: &str = "designs.meshery.io/v1beta1";

/// A design file that passed the checks.
#[derive(Debug, Clone)]
pub struct Checked {
    pub name: String,
    pub components: Vec<Map<String, Value>>,
}

/// Why a design operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DesignError {
    /// The design file breaks the format or its kinds' schemas; every problem is named.
    #[error("{}", problems_text(.0))]
    Invalid(Vec<String>),
    /// The file cannot be read (syntax) or imported.
    #[error("{0}")]
    Unreadable(String),
    /// A query parameter is malformed.
    #[error("{0}")]
    BadFilter(String),
    #[error("no design {0:?} of yours")]
    NotYours(String),
    #[error("no design {0:?} you can read")]
    NotReadable(String),
    #[error(transparent)]
    Internal(#[from] Internal),
}

fn problems_text(problems: &[String]) -> String {
    let total = problems.len();
    let mut shown: Vec<&str> = problems
        .iter()
        .take(MAX_REPORTED)
        .map(String::as_str)
        .collect();
    let more = format!("and {} more", total.saturating_sub(MAX_REPORTED));
    if total > MAX_REPORTED {
        shown.push(&more);
    }
    format!(
        "the design has {total} problem{}: {}",
        if total == 1 { "" } else { "s" },
        shown.join("; ")
    )
}

/// Parses YAML, naming the line and column of a syntax error.
fn yaml(what: &str, text: &str) -> Result<Value, DesignError> {
    yaml_serde::from_str::<Value>(text).map_err(|e| match e.location() {
        Some(l) => DesignError::Unreadable(format!(
            "{what}: line {}, column {}: {e}",
            l.line(),
            l.column()
        )),
        None => DesignError::Unreadable(format!("{what}: {e}")),
    })
}

/// Parses and checks a design file: structure, unique component names, and each
/// component against its kind's schema in the registry.
pub fn check(text: &str, registry: &Registry) -> Result<Checked, DesignError> {
    let doc = yaml("patternFile", text)?;
    let Value::Object(doc) = doc else {
        return Err(DesignError::Invalid(vec![
            "patternFile must be a mapping with `name` and `components`".into(),
        ]));
    };
    let mut problems = Vec::new();
    let name = match doc.get("name") {
        Some(Value::String(n)) if !n.trim().is_empty() => n.trim().to_string(),
        _ => {
            problems.push("`name` must be a non-empty string".into());
            String::new()
        }
    };
    let components = match doc.get("components") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(c)) => c.clone(),
        Some(_) => {
            problems.push("`components` must be a list".into());
            Vec::new()
        }
    };
    if components.len() > MAX_COMPONENTS {
        return Err(DesignError::Invalid(vec![format!(
            "{} components; at most {MAX_COMPONENTS}",
            components.len()
        )]));
    }
    let mut names = std::collections::HashMap::new();
    let mut out = Vec::new();
    for (i, component) in components.into_iter().enumerate() {
        let Value::Object(c) = component else {
            problems.push(format!("components[{i}] must be a mapping"));
            continue;
        };
        let c = from_meshery_component(c);
        let text = |key: &str| match c.get(key) {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
            _ => None,
        };
        let cname = text("name");
        let place = match &cname {
            Some(n) => format!("components[{i}] ({n})"),
            None => format!("components[{i}]"),
        };
        match &cname {
            None => problems.push(format!("{place}: `name` must be a non-empty string")),
            Some(n) => {
                if let Some(first) = names.insert(n.clone(), i) {
                    problems.push(format!(
                        "{place}: the name {n:?} is already used by components[{first}]"
                    ));
                }
            }
        }
        let kind = text("kind");
        let api_version = text("apiVersion");
        if kind.is_none() {
            problems.push(format!("{place}: `kind` must be a non-empty string"));
        }
        if api_version.is_none() {
            problems.push(format!("{place}: `apiVersion` must be a non-empty string"));
        }
        match c.get("metadata") {
            Some(Value::Object(m)) => {
                if !matches!(m.get("name"), Some(Value::String(s)) if !s.trim().is_empty()) {
                    problems.push(format!(
                        "{place}: `metadata.name` must be a non-empty string"
                    ));
                }
            }
            _ => problems.push(format!("{place}: `metadata` must be a mapping with `name`")),
        }
        if let (Some(kind), Some(api_version)) = (&kind, &api_version) {
            match registry.check(api_version, kind, &resource(&c)) {
                Err(why) => problems.push(format!("{place}: {why}")),
                Ok(findings) => {
                    for f in findings {
                        let at = if f.path.is_empty() {
                            "/".into()
                        } else {
                            f.path
                        };
                        problems.push(format!("{place} at {at}: {}", f.message));
                    }
                }
            }
        }
        out.push(c);
    }
    if !problems.is_empty() {
        return Err(DesignError::Invalid(problems));
    }
    Ok(Checked {
        name,
        components: out,
    })
}

/// A component in Meshery's design format (`displayName`, `component: {kind, version}`,
/// `model: {name}`, `configuration: {metadata, spec, ...}`) as this server's (`name`,
/// `kind`, `apiVersion`, `model`, the resource's fields beside them); others unchanged.
fn from_meshery_component(c: Map<String, Value>) -> Map<String, Value> {
    let Some(Value::Object(declared)) = c.get("component") else {
        return c;
    };
    if c.contains_key("kind") || !declared.contains_key("kind") {
        return c;
    }
    let mut out = Map::new();
    let configuration = match c.get("configuration") {
        Some(Value::Object(conf)) => conf.clone(),
        _ => Map::new(),
    };
    let named = configuration
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let name = c
        .get("displayName")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty())
        .map(str::to_string)
        .or(named.clone());
    if let Some(name) = &name {
        out.insert("name".into(), Value::String(name.clone()));
    }
    out.insert("kind".into(), declared["kind"].clone());
    if let Some(version) = declared.get("version") {
        out.insert("apiVersion".into(), version.clone());
    }
    match c.get("model") {
        Some(Value::Object(m)) => {
            if let Some(model) = m.get("name") {
                out.insert("model".into(), model.clone());
            }
        }
        Some(Value::String(model)) => {
            out.insert("model".into(), Value::String(model.clone()));
        }
        _ => {}
    }
    for (key, value) in configuration {
        out.insert(key, value);
    }
    // The resource's name defaults to the component's.
    if named.is_none()
        && let Some(name) = name
    {
        let metadata = out
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = metadata {
            m.insert("name".into(), Value::String(name));
        }
    }
    out
}

/// A design file as Meshery's clients send it: YAML text, the design object, base64 of
/// the file (what Go's `[]byte` encodes to), or the file's bytes as a list of numbers
/// (Meshery's UI). `what` names it in errors.
pub fn file_text(value: &Value, what: &str) -> Result<String, DesignError> {
    let is_design =
        |text: &str| matches!(yaml_serde::from_str::<Value>(text), Ok(Value::Object(_)));
    match value {
        Value::String(text) if is_design(text) => Ok(text.clone()),
        // Base64 of a design; anything else is the file itself, whose problems (syntax
        // with line and column, structure) the checks name.
        Value::String(text) => Ok(base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            text.trim().replace(['\n', '\r'], ""),
        )
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|t| is_design(t))
        .unwrap_or_else(|| text.clone())),
        Value::Object(_) => yaml_serde::to_string(value)
            .map_err(|e| DesignError::Unreadable(format!("{what}: {e}"))),
        Value::Array(_) => bytes_text(value, what),
        _ => Err(DesignError::Unreadable(format!(
            "{what} must be the design: YAML text, an object, base64 or bytes"
        ))),
    }
}

/// A file sent as base64 text or as its bytes (a list of numbers 0-255), as UTF-8 text.
pub fn bytes_text(value: &Value, what: &str) -> Result<String, DesignError> {
    let bytes = match value {
        Value::String(text) => base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            text.trim().replace(['\n', '\r'], ""),
        )
        .map_err(|e| DesignError::Unreadable(format!("{what} is not base64: {e}")))?,
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_u64().and_then(|n| u8::try_from(n).ok()))
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(|| {
                DesignError::Unreadable(format!("{what}: a list of bytes holds numbers 0-255"))
            })?,
        _ => {
            return Err(DesignError::Unreadable(format!(
                "{what} must be base64 text or a list of bytes"
            )));
        }
    };
    // Meshery's OCI image of a design (what `GET /api/pattern/download/{id}?oci=true` writes).
    if let Some(design) = crate::design_export::design_in_image(&bytes)
        .map_err(|e| DesignError::Unreadable(format!("{what}: an OCI image of a design: {e}")))?
    {
        return Ok(design);
    }
    String::from_utf8(bytes)
        .map_err(|_| DesignError::Unreadable(format!("{what} is not UTF-8 text")))
}

/// Where to fetch a design Meshery's clients name by a GitHub repository and a path in it
/// (`mesheryctl design apply -f https://github.com/o/r` with the file's path): the raw
/// file on the repository's default branch. A `blob` URL is its raw file; other URLs are
/// fetched as they are.
pub fn fetch_url(url: &str, path: Option<&str>) -> String {
    let Some(rest) = url
        .strip_prefix("https://github.com/")
        .or_else(|| url.strip_prefix("http://github.com/"))
    else {
        return url.to_string();
    };
    let parts: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    match (
        parts.as_slice(),
        path.map(|p| p.trim_matches('/')).filter(|p| !p.is_empty()),
    ) {
        ([owner, repo], Some(path)) => format!(
            "https://raw.githubusercontent.com/{owner}/{}/HEAD/{path}",
            repo.trim_end_matches(".git")
        ),
        ([owner, repo, "blob", reference, file @ ..], _) if !file.is_empty() => format!(
            "https://raw.githubusercontent.com/{owner}/{repo}/{reference}/{}",
            file.join("/")
        ),
        _ => url.to_string(),
    }
}

/// The resource a component describes: the component without its design-only keys.
/// A component as the Kubernetes resource it describes (without the design's `name` and
/// `model`).
pub fn resource(component: &Map<String, Value>) -> Value {
    let mut r = component.clone();
    r.remove("name");
    r.remove("model");
    Value::Object(r)
}

/// The documents of a YAML (or JSON) file; `List` kinds are unpacked, empty ones skipped.
fn documents(text: &str) -> Result<Vec<Value>, DesignError> {
    let mut out = Vec::new();
    for (i, de) in yaml_serde::Deserializer::from_str(text).enumerate() {
        let doc = Value::deserialize(de).map_err(|e| match e.location() {
            Some(l) => DesignError::Unreadable(format!(
                "document {}: line {}, column {}: {e}",
                i + 1,
                l.line(),
                l.column()
            )),
            None => DesignError::Unreadable(format!("document {}: {e}", i + 1)),
        })?;
        match doc {
            Value::Null => {}
            Value::Object(ref m) if m.get("kind") == Some(&json!("List")) => {
                if let Some(Value::Array(items)) = m.get("items") {
                    out.extend(items.iter().cloned());
                }
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

/// A design file from an imported file: a design as it is, or Kubernetes manifests turned
/// into one component per resource. `name` names the design when the file does not.
pub fn from_import(text: &str, name: &str) -> Result<String, DesignError> {
    let docs = documents(text)?;
    if let [Value::Object(d)] = docs.as_slice()
        && d.contains_key("components")
        && !d.contains_key("kind")
    {
        return Ok(text.to_string());
    }
    if docs.is_empty() {
        return Err(DesignError::Unreadable("the file has no resources".into()));
    }
    let mut components = Vec::new();
    let mut taken = std::collections::HashSet::new();
    for (i, doc) in docs.into_iter().enumerate() {
        let Value::Object(mut r) = doc else {
            return Err(DesignError::Unreadable(format!(
                "document {}: a Kubernetes resource must be a mapping",
                i + 1
            )));
        };
        let base = r
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                DesignError::Unreadable(format!("document {}: metadata.name is missing", i + 1))
            })?;
        let kind = r
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("resource")
            .to_ascii_lowercase();
        // Kubernetes lets a Service and a Deployment share a name; components may not.
        let mut cname = base.clone();
        if taken.contains(&cname) {
            cname = format!("{base}-{kind}");
        }
        let mut n = 2;
        while taken.contains(&cname) {
            cname = format!("{base}-{kind}-{n}");
            n += 1;
        }
        taken.insert(cname.clone());
        r.insert("name".into(), Value::String(cname));
        components.push(Value::Object(r));
    }
    let design = json!({
        "name": name,
        "schemaVersion": SCHEMA_VERSION,
        "components": components,
    });
    Ok(yaml_serde::to_string(&design).or_internal("writing a design")?)
}

/// The components of a checked design as Kubernetes manifests, one document each.
pub fn to_manifests(checked: &Checked) -> Result<String, DesignError> {
    let mut out = String::new();
    for c in &checked.components {
        let text = yaml_serde::to_string(&resource(c)).or_internal("writing a manifest")?;
        out.push_str("---\n");
        out.push_str(&text);
    }
    Ok(out)
}

/// Designs per user.
pub struct Designs {
    store: Store,
    events: Events,
    bus: Bus,
    /// The owner of every design saved or deleted, on any replica (for live listings);
    /// `None`: any owner's may have changed (notices were lost), reread.
    changed: broadcast::Sender<Option<String>>,
}

pub fn parse_stored(doc: &str) -> Result<Pattern, DesignError> {
    Ok(serde_json::from_str(doc).or_internal("decoding a design")?)
}

impl Designs {
    pub fn new(store: Store, events: Events, bus: Bus) -> Self {
        let changed = broadcast::channel(64).0;
        let forward = changed.clone();
        bus.on(Topic::Designs, move |notice| {
            let _ = forward.send(match notice {
                Notice::Changed { key } => Some(key),
                Notice::Resync => None,
            });
            std::future::ready(())
        });
        Designs {
            store,
            events,
            bus,
            changed,
        }
    }

    pub fn changes(&self) -> broadcast::Receiver<Option<String>> {
        self.changed.subscribe()
    }

    async fn announce(&self, owner: String) {
        self.bus.publish(Topic::Designs, &owner).await;
        let _ = self.changed.send(Some(owner));
    }

    /// Saves a checked design: a new one (`id` none), or the user's design `id`.
    /// Returns the design and whether it is new.
    #[allow(clippy::too_many_arguments)]
    pub async fn save(
        &self,
        session: &Session,
        id: Option<&str>,
        name: Option<&str>,
        pattern_file: String,
        checked: &Checked,
        visibility: Option<PatternVisibility>,
        catalog_data: Option<Map<String, Value>>,
        action: &str,
    ) -> Result<(Pattern, bool), DesignError> {
        let owner = session.owner();
        let now = chrono::Utc::now();
        let existing = match id {
            Some(id) => Some(self.own(session, id).await?),
            None => None,
        };
        let name = name
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| checked.name.clone());
        let pattern = Pattern {
            id: existing
                .as_ref()
                .map(|p| p.id.clone())
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            name,
            pattern_file,
            user_id: session.user.id.clone(),
            visibility: visibility
                .or(existing.as_ref().map(|p| p.visibility))
                .unwrap_or(PatternVisibility::Private),
            catalog_data: catalog_data
                .or(existing.as_ref().map(|p| p.catalog_data.clone()))
                .unwrap_or_default(),
            components_count: i64::try_from(checked.components.len()).unwrap_or(i64::MAX),
            created_at: existing.as_ref().map(|p| p.created_at).unwrap_or(now),
            updated_at: now,
        };
        let doc = serde_json::to_string(&pattern).or_internal("encoding a design")?;
        self.store
            .put_pattern(
                &owner,
                &pattern.id,
                &pattern.name,
                &pattern.visibility.to_string(),
                &doc,
                &stamp(pattern.created_at),
                &stamp(pattern.updated_at),
            )
            .await
            .or_internal("saving a design")?;
        self.announce(owner).await;
        let event = NewEvent::new(
            "pattern",
            action,
            EventSeverity::Success,
            format!(
                "Design {} {}",
                pattern.name,
                match action {
                    "import" => "imported",
                    "clone" => "cloned",
                    _ if existing.is_some() => "updated",
                    _ => "saved",
                }
            ),
        )
        .acted_upon(pattern.id.clone())
        .meta("components", pattern.components_count);
        self.events.note(session, event).await;
        Ok((pattern, existing.is_none()))
    }

    /// The user's own design.
    /// A design made from a request but not stored (Meshery's `save: false`): it has no id.
    pub fn unsaved(
        session: &Session,
        name: Option<&str>,
        pattern_file: String,
        checked: &Checked,
        catalog_data: Option<Map<String, Value>>,
    ) -> Pattern {
        let now = chrono::Utc::now();
        Pattern {
            id: String::new(),
            name: name
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .unwrap_or_else(|| checked.name.clone()),
            pattern_file,
            user_id: session.user.id.clone(),
            visibility: PatternVisibility::Private,
            catalog_data: catalog_data.unwrap_or_default(),
            components_count: i64::try_from(checked.components.len()).unwrap_or(i64::MAX),
            created_at: now,
            updated_at: now,
        }
    }

    pub async fn own(&self, session: &Session, id: &str) -> Result<Pattern, DesignError> {
        match self
            .store
            .pattern(Some(&session.owner()), id)
            .await
            .or_internal("reading a design")?
        {
            Some(doc) => parse_stored(&doc),
            None => Err(DesignError::NotYours(id.to_string())),
        }
    }

    /// A design the user may read: theirs, or another user's public or published one.
    pub async fn readable(&self, session: &Session, id: &str) -> Result<Pattern, DesignError> {
        if let Ok(p) = self.own(session, id).await {
            return Ok(p);
        }
        let doc = self
            .store
            .pattern(None, id)
            .await
            .or_internal("reading a design")?;
        match doc.map(|d| parse_stored(&d)).transpose()? {
            Some(p) if p.visibility != PatternVisibility::Private => Ok(p),
            _ => Err(DesignError::NotReadable(id.to_string())),
        }
    }

    pub async fn list(
        &self,
        session: &Session,
        visibility: &[String],
        listing: &Listing,
    ) -> Result<(Vec<Pattern>, i64), DesignError> {
        let (docs, total) = self
            .store
            .patterns(&session.owner(), visibility, listing)
            .await
            .or_internal("listing designs")?;
        let patterns = docs
            .iter()
            .map(|d| parse_stored(d))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((patterns, total))
    }

    /// Every user's published designs: the catalog (readable by anyone signed in, as
    /// `readable` reads a published design).
    pub async fn catalog(&self, listing: &Listing) -> Result<(Vec<Pattern>, i64), DesignError> {
        let (docs, total) = self
            .store
            .published_patterns(listing)
            .await
            .or_internal("listing the catalog")?;
        let patterns = docs
            .iter()
            .map(|d| parse_stored(d))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((patterns, total))
    }

    /// Deletes the user's designs among `ids`; how many there were.
    pub async fn delete(&self, session: &Session, ids: &[String]) -> Result<u64, DesignError> {
        let n = self
            .store
            .delete_patterns(&session.owner(), ids)
            .await
            .or_internal("deleting designs")?;
        if n > 0 {
            self.announce(session.owner()).await;
            let event = NewEvent::new(
                "pattern",
                "delete",
                EventSeverity::Informational,
                format!("{n} design{} deleted", if n == 1 { "" } else { "s" }),
            )
            .meta("ids", ids.to_vec());
            self.events.note(session, event).await;
        }
        Ok(n)
    }
}

/// Reads the `visibility` filter: repeated values, or Meshery's JSON list in one value.
pub fn visibility_filter(values: &[String]) -> Result<Vec<String>, DesignError> {
    // Blanks are spaces and tabs (and JSON's own around a list), as the spec's pattern says.
    let blank = |c: char| c == ' ' || c == '\t';
    let mut out = Vec::new();
    for v in values {
        let json = v.trim_matches(|c| blank(c) || c == '\n' || c == '\r');
        let items: Vec<String> = if json.starts_with('[') {
            serde_json::from_str(json).map_err(|_| {
                DesignError::BadFilter(format!("visibility {v:?} is not a JSON list of strings"))
            })?
        } else {
            v.split(',').map(str::to_string).collect()
        };
        for item in items {
            let item = item.trim_matches(blank).to_ascii_lowercase();
            if item.is_empty() {
                continue;
            }
            if item.parse::<PatternVisibility>().is_err() {
                return Err(DesignError::Unreadable(format!(
                    "visibility {item:?}: use private, public or published"
                )));
            }
            out.push(item);
        }
    }
    Ok(out)
}

/// One component as the relationship evaluation sees it.
struct Part {
    id: String,
    kind: String,
    name: String,
    namespace: Option<String>,
    /// Its labels, or its pod template's for a workload.
    labels: Map<String, Value>,
    /// What it selects by labels (`spec.selector`, or `spec.selector.matchLabels`).
    selector: Map<String, Value>,
    /// Its resource without `metadata`, where references by name are.
    body: Value,
}

fn part(component: &Map<String, Value>, index: usize) -> Option<Part> {
    let id = component
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_string);
    let c = from_meshery_component(component.clone());
    let kind = c.get("kind")?.as_str()?.to_string();
    let meta = c.get("metadata").cloned().unwrap_or(Value::Null);
    let name = meta
        .get("name")
        .and_then(Value::as_str)
        .or_else(|| c.get("name").and_then(Value::as_str))?
        .to_string();
    let object = |v: Option<&Value>| v.and_then(Value::as_object).cloned().unwrap_or_default();
    let whole = Value::Object(c.clone());
    let template = whole.pointer("/spec/template/metadata/labels");
    let labels = object(template.or_else(|| meta.get("labels")));
    let selector = match whole.pointer("/spec/selector") {
        Some(Value::Object(s)) if s.contains_key("matchLabels") => object(s.get("matchLabels")),
        Some(Value::Object(s)) => s.clone(),
        _ => Map::new(),
    };
    let mut body = Value::Object(c.clone());
    if let Some(b) = body.as_object_mut() {
        for key in [
            "metadata",
            "name",
            "kind",
            "apiVersion",
            "model",
            "id",
            "displayName",
        ] {
            b.remove(key);
        }
    }
    Some(Part {
        id: id.unwrap_or_else(|| format!("{name}#{index}")),
        kind,
        namespace: meta
            .get("namespace")
            .and_then(Value::as_str)
            .map(str::to_string),
        name,
        labels,
        selector,
        body,
    })
}

/// Whether a string anywhere in `v` is `name`.
fn mentions(v: &Value, name: &str) -> bool {
    match v {
        Value::String(s) => s == name,
        Value::Array(a) => a.iter().any(|v| mentions(v, name)),
        Value::Object(m) => m.values().any(|v| mentions(v, name)),
        _ => false,
    }
}

/// Whether relationship `r` holds from `a` to `b`: a hierarchical one when `b` lives in
/// the namespace `a` is; an edge one within a namespace when `a` selects `b` by labels,
/// or (without a selector) names it; a binding one also when `b` names `a`.
fn relates(r: &crate::models::RegistryRelationship, a: &Part, b: &Part) -> bool {
    use crate::models::RegistryRelationshipKind as Kind;
    if a.id == b.id || !r.from.contains(&a.kind) || !r.to.contains(&b.kind) {
        return false;
    }
    if r.kind == Kind::Hierarchical {
        return b.namespace.as_deref().unwrap_or("default") == a.name;
    }
    let same_namespace = match (&a.namespace, &b.namespace) {
        (Some(x), Some(y)) => x == y,
        _ => {
            a.namespace.as_deref().unwrap_or("default")
                == b.namespace.as_deref().unwrap_or("default")
        }
    };
    if !same_namespace {
        return false;
    }
    if !a.selector.is_empty() {
        return a.selector.iter().all(|(k, v)| b.labels.get(k) == Some(v));
    }
    mentions(&a.body, &b.name) || (r.type_ == "binding" && mentions(&b.body, &a.name))
}

/// Meshery's relationship evaluation: the registry's relationships that hold between the
/// components of a design (Meshery's design format or this server's), as Meshery's
/// relationship declarations, and the actions that bring the design's own list there.
pub fn evaluate(
    design: &Value,
    registry: &Registry,
    diff_only: bool,
) -> Result<Value, DesignError> {
    let Some(doc) = design.as_object() else {
        return Err(DesignError::Invalid(vec![
            "design must be an object".into(),
        ]));
    };
    let components = match doc.get("components") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(c)) => c.clone(),
        Some(_) => {
            return Err(DesignError::Invalid(vec![
                "design.components must be a list".into(),
            ]));
        }
    };
    if components.len() > MAX_COMPONENTS {
        return Err(DesignError::Invalid(vec![format!(
            "{} components; at most {MAX_COMPONENTS}",
            components.len()
        )]));
    }
    let parts: Vec<Part> = components
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.as_object().and_then(|c| part(c, i)))
        .collect();
    let mut found = Vec::new();
    for r in registry.relationships() {
        for a in &parts {
            for b in &parts {
                if !relates(&r, a, b) {
                    continue;
                }
                let digest = ring::digest::digest(
                    &ring::digest::SHA256,
                    format!("{}\n{}\n{}", r.id, a.id, b.id).as_bytes(),
                );
                let mut bytes = [0u8; 16];
                bytes.copy_from_slice(&digest.as_ref()[..16]);
                found.push(json!({
                    "id": uuid::Uuid::new_v8(bytes).to_string(),
                    "schemaVersion": r.schema_version,
                    "version": r.version,
                    "kind": r.kind,
                    "type": r.type_,
                    "subType": r.sub_type,
                    "status": "approved",
                    "evaluationQuery": r.evaluation_query,
                    "model": {"name": r.model.name, "version": r.model.version},
                    "metadata": {"description": r.description},
                    "selectors": [{"allow": {
                        "from": [{"id": a.id, "kind": a.kind, "model": {"name": r.model.name}}],
                        "to": [{"id": b.id, "kind": b.kind, "model": {"name": r.model.name}}]
                    }}]
                }));
            }
        }
    }
    let id_of = |v: &Value| v.get("id").and_then(Value::as_str).map(str::to_string);
    let before: Vec<Value> = doc
        .get("relationships")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let now: std::collections::HashSet<String> = found.iter().filter_map(id_of).collect();
    let had: std::collections::HashSet<String> = before.iter().filter_map(id_of).collect();
    let mut actions = Vec::new();
    for r in &found {
        if id_of(r).is_some_and(|id| !had.contains(&id)) {
            actions.push(json!({"op": "add_relationship", "value": {"item": r}}));
        }
    }
    for r in &before {
        if let Some(id) = id_of(r).filter(|id| !now.contains(id)) {
            actions.push(json!({"op": "delete_relationship", "value": {"id": id}}));
        }
    }
    let mut out = design.clone();
    if let Some(o) = out.as_object_mut() {
        o.entry("components").or_insert_with(|| json!([]));
        if diff_only {
            o.insert("components".into(), json!([]));
            o.insert(
                "relationships".into(),
                Value::Array(
                    actions
                        .iter()
                        .filter_map(|a| a.pointer("/value/item").cloned())
                        .collect(),
                ),
            );
        } else {
            o.insert("relationships".into(), Value::Array(found));
        }
    }
    let hash = ring::digest::digest(&ring::digest::SHA256, out.to_string().as_bytes());
    Ok(json!({
        "schemaVersion": "relationships.meshery.io/v1alpha3",
        "design": out,
        "actions": actions,
        "evaluationHash": hash.as_ref().iter().map(|b| format!("{b:02x}")).collect::<String>(),
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meshery_components_read_as_ours() {
        let meshery = json!({
            "id": "c1", "displayName": "web-config",
            "component": {"kind": "ConfigMap", "version": "v1"},
            "model": {"name": "kubernetes", "version": "v1.29.0"},
            "configuration": {"data": {"a": "b"}}
        });
        let Value::Object(meshery) = meshery else {
            unreachable!()
        };
        let ours = Value::Object(from_meshery_component(meshery));
        assert_eq!(
            ours,
            json!({"name": "web-config", "kind": "ConfigMap", "apiVersion": "v1",
                   "model": "kubernetes", "data": {"a": "b"}, "metadata": {"name": "web-config"}})
        );
        // The configuration's own name wins for the resource; ours pass unchanged.
        let named = json!({"displayName": "x", "component": {"kind": "Service", "version": "v1"},
                           "configuration": {"metadata": {"name": "svc"}}});
        let Value::Object(named) = named else {
            unreachable!()
        };
        assert_eq!(from_meshery_component(named)["metadata"]["name"], "svc");
        let plain =
            json!({"name": "n", "kind": "Service", "apiVersion": "v1", "component": {"kind": "X"}});
        let Value::Object(plain) = plain else {
            unreachable!()
        };
        assert_eq!(from_meshery_component(plain.clone()), plain);
    }

    #[test]
    fn design_files_come_as_text_objects_base64_or_bytes() {
        let text = "name: d\ncomponents: []\n";
        let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, text);
        let bytes: Vec<Value> = text.bytes().map(|b| json!(b)).collect();
        for given in [
            json!(text),
            json!(b64),
            Value::Array(bytes),
            json!({"name": "d", "components": []}),
        ] {
            let got = file_text(&given, "patternFile").unwrap();
            assert_eq!(
                yaml("t", &got).unwrap(),
                json!({"name": "d", "components": []}),
                "{given}"
            );
        }
        for bad in [json!([256]), json!(3)] {
            assert!(file_text(&bad, "patternFile").is_err(), "{bad}");
        }
        // Text that is no design is passed on as it is, for the checks to name its problem.
        assert_eq!(
            file_text(&json!("just words"), "patternFile").unwrap(),
            "just words"
        );
        assert_eq!(bytes_text(&json!([104, 105]), "file").unwrap(), "hi");
        assert!(bytes_text(&json!("not base64!"), "file").is_err());
    }

    #[test]
    fn github_repositories_and_paths_become_raw_files() {
        assert_eq!(
            fetch_url(
                "https://github.com/meshery/meshery",
                Some("install/samples/design.yaml")
            ),
            "https://raw.githubusercontent.com/meshery/meshery/HEAD/install/samples/design.yaml"
        );
        assert_eq!(
            fetch_url("https://github.com/o/r/blob/v1/a/b.yaml", None),
            "https://raw.githubusercontent.com/o/r/v1/a/b.yaml"
        );
        assert_eq!(
            fetch_url("https://example.com/d.yaml", Some("x")),
            "https://example.com/d.yaml"
        );
        assert_eq!(
            fetch_url("https://github.com/o/r", None),
            "https://github.com/o/r"
        );
    }
}
