//! Meshery's model archives: what `POST /api/meshmodels/register` reads (a `.tar`,
//! `.tar.gz` or `.tgz` of Meshery's model layout, an OCI image of one, or a single model
//! definition file) and what `GET /api/meshmodels/export` writes.
//!
//! The layout: `<name>/<version>/v1.0.0/model.json` (Meshery's model definition),
//! `components/<Kind>.json` (component definitions, `component: {kind, version, schema}`)
//! and `relationships/<n>.json` (relationship definitions with `selectors`); YAML too.

use std::collections::BTreeMap;
use std::io::Read;

use serde_json::{Value, json};

use crate::models::{ModelDefinition, RegistryModel};

/// Bounds on what an archive may unpack to (a small archive can expand a lot).
const MAX_ENTRIES: usize = 10_000;
const MAX_UNPACKED: u64 = 64 << 20;
/// Archives inside archives (an OCI image's layer) are opened this deep.
const MAX_DEPTH: usize = 2;

/// A model definition file that could not be turned into a definition, by name.
#[derive(Debug, Clone)]
pub struct Rejected {
    pub name: String,
    pub entity: &'static str,
    pub error: String,
}

/// The documents (JSON or YAML files) of an archive or of one file.
fn documents(bytes: &[u8], depth: usize, out: &mut Vec<(String, Value)>) -> Result<(), String> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut unpacked = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .take(MAX_UNPACKED + 1)
            .read_to_end(&mut unpacked)
            .map_err(|e| format!("not a gzip file: {e}"))?;
        if unpacked.len() as u64 > MAX_UNPACKED {
            return Err(format!("unpacks to more than {MAX_UNPACKED} bytes"));
        }
        return documents(&unpacked, depth, out);
    }
    let is_tar = bytes.len() > 262 && &bytes[257..262] == b"ustar";
    if !is_tar {
        let text = std::str::from_utf8(bytes).map_err(|_| {
            "neither an archive (.tar, .tar.gz, .tgz) nor a JSON or YAML file".to_string()
        })?;
        let doc: Value =
            yaml_serde::from_str(text).map_err(|e| format!("not JSON or YAML: {e}"))?;
        out.push(("model".into(), doc));
        return Ok(());
    }
    let mut archive = tar::Archive::new(bytes);
    let mut total = 0u64;
    for (i, entry) in archive.entries().map_err(|e| e.to_string())?.enumerate() {
        if i >= MAX_ENTRIES {
            return Err(format!("more than {MAX_ENTRIES} files"));
        }
        let mut entry = entry.map_err(|e| format!("a broken archive: {e}"))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry
            .path()
            .map(|p| p.to_string_lossy().to_string())
            .unwrap_or_default();
        total += entry.size();
        if total > MAX_UNPACKED {
            return Err(format!("unpacks to more than {MAX_UNPACKED} bytes"));
        }
        let mut content = Vec::new();
        entry
            .by_ref()
            .take(MAX_UNPACKED)
            .read_to_end(&mut content)
            .map_err(|e| format!("{path}: {e}"))?;
        let lower = path.to_ascii_lowercase();
        if lower.ends_with(".json") || lower.ends_with(".yaml") || lower.ends_with(".yml") {
            let text = String::from_utf8(content).map_err(|_| format!("{path} is not UTF-8"))?;
            let doc: Value = yaml_serde::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
            out.push((path, doc));
        } else if depth < MAX_DEPTH && content.starts_with(&[0x1f, 0x8b]) {
            // An OCI image's layer, or an archive inside the archive.
            documents(&content, depth + 1, out)?;
        }
    }
    Ok(())
}

fn text<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

fn is_component(doc: &Value) -> bool {
    doc.pointer("/component/kind").is_some_and(Value::is_string)
}

fn is_relationship(doc: &Value) -> bool {
    doc.get("selectors").is_some_and(Value::is_array)
        || text(doc, "/schemaVersion").is_some_and(|s| s.starts_with("relationships"))
}

/// This server's own definition format: `components` of `{kind, apiVersion}`.
fn is_ours(doc: &Value) -> bool {
    doc.get("components")
        .and_then(Value::as_array)
        .is_some_and(|c| c.iter().all(|c| c.get("apiVersion").is_some()))
        && doc.get("name").is_some()
        && doc.get("category").is_none_or(Value::is_string)
}

/// The kinds on one side of a relationship's selectors.
fn selector_kinds(doc: &Value, side: &str) -> Vec<String> {
    let mut kinds: Vec<String> = doc
        .get("selectors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|s| {
            s.pointer(&format!("/allow/{side}"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .filter_map(|i| text(i, "/kind").map(str::to_string))
        .filter(|k| k != "*")
        .collect();
    kinds.dedup();
    kinds
}

/// The model definitions an archive (or a definition file) holds, with what could not be
/// read; an error when it is not an archive or file of models at all.
pub fn definitions(bytes: &[u8]) -> Result<(Vec<ModelDefinition>, Vec<Rejected>), String> {
    let mut docs = Vec::new();
    documents(bytes, 0, &mut docs)?;
    Ok(assemble(docs))
}

/// Model definitions from documents in Meshery's formats (by where each came from):
/// models, and the components and relationships that name them.
pub fn assemble(docs: Vec<(String, Value)>) -> (Vec<ModelDefinition>, Vec<Rejected>) {
    let mut rejected = Vec::new();
    let mut out = Vec::new();
    // (model name, version) -> (model document, components, relationships)
    type Parts = (Option<Value>, Vec<Value>, Vec<Value>);
    let mut models: BTreeMap<String, Parts> = BTreeMap::new();
    for (path, doc) in docs {
        if is_ours(&doc) {
            match serde_json::from_value::<ModelDefinition>(doc) {
                Ok(d) => out.push(d),
                Err(e) => rejected.push(Rejected {
                    name: path,
                    entity: "model",
                    error: e.to_string(),
                }),
            }
        } else if is_component(&doc) {
            let model = text(&doc, "/model/name").unwrap_or_default().to_string();
            models.entry(model).or_default().1.push(doc);
        } else if is_relationship(&doc) {
            let model = text(&doc, "/model/name").unwrap_or_default().to_string();
            models.entry(model).or_default().2.push(doc);
        } else if let Some(name) = text(&doc, "/name").map(str::to_string) {
            models.entry(name).or_default().0 = Some(doc);
        }
    }
    for (name, (model, components, relationships)) in models {
        let Some(model) = model else {
            for c in components.iter().chain(&relationships) {
                rejected.push(Rejected {
                    name: text(c, "/displayName")
                        .or(text(c, "/component/kind"))
                        .unwrap_or("?")
                        .to_string(),
                    entity: if is_component(c) {
                        "component"
                    } else {
                        "relationship"
                    },
                    error: format!("its model {name:?} is not among the models sent"),
                });
            }
            continue;
        };
        // Meshery keeps the package's version in `model.version`, the definition's in `version`.
        let version = text(&model, "/model/version")
            .or(text(&model, "/version"))
            .unwrap_or("v1.0.0");
        let components: Vec<Value> = components
            .iter()
            .map(|c| {
                let schema = match c.pointer("/component/schema") {
                    Some(Value::String(s)) if !s.trim().is_empty() => {
                        serde_json::from_str(s).unwrap_or_else(|_| json!({}))
                    }
                    Some(Value::Object(o)) => Value::Object(o.clone()),
                    _ => json!({}),
                };
                json!({
                    "kind": c["component"]["kind"],
                    "apiVersion": text(c, "/component/version").unwrap_or("v1"),
                    "displayName": text(c, "/displayName").unwrap_or_default(),
                    "namespaced": c.pointer("/metadata/isNamespaced").and_then(Value::as_bool).unwrap_or(true),
                    "schema": schema,
                })
            })
            .collect();
        let relationships: Vec<Value> = relationships
            .iter()
            .map(|r| {
                json!({
                    "kind": text(r, "/kind").unwrap_or("edge").to_lowercase(),
                    "type": text(r, "/type").or(text(r, "/RelationshipType")).unwrap_or("non-binding"),
                    "subType": text(r, "/subType").unwrap_or_default(),
                    "from": selector_kinds(r, "from"),
                    "to": selector_kinds(r, "to"),
                    "description": text(r, "/metadata/description").unwrap_or_default(),
                })
            })
            .collect();
        let mut definition = json!({
            "name": name,
            "version": version,
            "components": components,
            "relationships": relationships,
        });
        for (key, pointer) in [
            ("displayName", "/displayName"),
            ("category", "/category/name"),
            ("registrant", "/registrant/name"),
        ] {
            if let Some(v) = text(&model, pointer) {
                definition[key] = json!(v);
            }
        }
        match serde_json::from_value::<ModelDefinition>(definition) {
            Ok(d) => out.push(d),
            Err(e) => rejected.push(Rejected {
                name,
                entity: "model",
                error: e.to_string(),
            }),
        }
    }
    (out, rejected)
}

/// How exported documents are written.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
}

/// What an export holds.
pub struct Export {
    pub format: Format,
    pub components: bool,
    pub relationships: bool,
}

fn encode(value: &Value, format: Format) -> Result<Vec<u8>, String> {
    match format {
        Format::Json => serde_json::to_vec_pretty(value).map_err(|e| e.to_string()),
        Format::Yaml => yaml_serde::to_string(value)
            .map(String::into_bytes)
            .map_err(|e| e.to_string()),
    }
}

/// Adds a file with fixed owner and time, so the same input gives the same archive.
pub(crate) fn append(
    builder: &mut tar::Builder<&mut Vec<u8>>,
    path: &str,
    data: &[u8],
) -> Result<(), String> {
    let mut header = tar::Header::new_ustar();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    // Fixed times: the same models give the same archive.
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    builder
        .append_data(&mut header, path, data)
        .map_err(|e| format!("{path}: {e}"))
}

/// The models in Meshery's layout, as a `.tar.gz`.
pub fn tar_gz(models: &[RegistryModel], how: &Export) -> Result<Vec<u8>, String> {
    let ext = match how.format {
        Format::Json => "json",
        Format::Yaml => "yaml",
    };
    let mut tarball = Vec::new();
    {
        let mut builder = tar::Builder::new(&mut tarball);
        for m in models {
            let dir = format!("{}/{}/v1.0.0", m.name, m.version);
            let mut doc = serde_json::to_value(m).map_err(|e| e.to_string())?;
            if let Some(o) = doc.as_object_mut() {
                o.insert("components".into(), json!([]));
                o.insert("relationships".into(), json!([]));
            }
            append(
                &mut builder,
                &format!("{dir}/model.{ext}"),
                &encode(&doc, how.format)?,
            )?;
            if how.components {
                for c in &m.components {
                    let doc = serde_json::to_value(c).map_err(|e| e.to_string())?;
                    let file = format!(
                        "{dir}/components/{}-{}.{ext}",
                        c.kind,
                        c.api_version.replace('/', "_")
                    );
                    append(&mut builder, &file, &encode(&doc, how.format)?)?;
                }
            }
            if how.relationships {
                for (i, r) in m.relationships.iter().enumerate() {
                    let doc = serde_json::to_value(r).map_err(|e| e.to_string())?;
                    append(
                        &mut builder,
                        &format!("{dir}/relationships/{i}.{ext}"),
                        &encode(&doc, how.format)?,
                    )?;
                }
            }
        }
        builder.finish().map_err(|e| e.to_string())?;
    }
    gzip(&tarball)
}

pub(crate) fn gzip(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, bytes).map_err(|e| e.to_string())?;
    gz.finish().map_err(|e| e.to_string())
}

/// Lowercase hex of a SHA-256 digest.
pub(crate) fn sha256(data: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, data);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The models as an OCI image layout (a `.tar`): one layer, the `.tar.gz` above.
pub fn oci(models: &[RegistryModel], how: &Export) -> Result<Vec<u8>, String> {
    let layer = tar_gz(models, how)?;
    let name = models.first().map(|m| m.name.as_str()).unwrap_or("models");
    let version = models
        .first()
        .map(|m| m.version.as_str())
        .unwrap_or("v1.0.0");
    let config = serde_json::to_vec(&json!({"name": name, "version": version}))
        .map_err(|e| e.to_string())?;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.meshery.model.config.v1+json", "digest": format!("sha256:{}", sha256(&config)), "size": config.len()},
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": format!("sha256:{}", sha256(&layer)),
            "size": layer.len(),
            "annotations": {"org.opencontainers.image.title": format!("{name}.tar.gz")}
        }]
    }))
    .map_err(|e| e.to_string())?;
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{}", sha256(&manifest)),
            "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": version}
        }]
    }))
    .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    {
        let mut builder = tar::Builder::new(&mut out);
        append(
            &mut builder,
            "oci-layout",
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )?;
        append(&mut builder, "index.json", &index)?;
        for blob in [&manifest, &config, &layer] {
            append(
                &mut builder,
                &format!("blobs/sha256/{}", sha256(blob)),
                blob,
            )?;
        }
        builder.finish().map_err(|e| e.to_string())?;
    }
    Ok(out)
}
