//! Meshery's model spreadsheets: what `POST /api/meshmodels/register` takes with
//! `uploadType: csv` (`mesheryctl model generate -f <dir>` sends a model CSV, a component
//! CSV and a relationship CSV, each a `data:text/csv;base64,` URL).
//!
//! Meshery's sheets carry a title row above the header; a sheet whose first row already is
//! the header is read as well. Headers match Meshery's column names whatever their case or
//! spacing (`modelDisplayName`, `Model Display Name`). Rows become documents in Meshery's
//! definition formats, assembled by [`archive::assemble`] like an archive's: so a sheet
//! and the archive `GET /api/meshmodels/export` writes give the same definitions.
//!
//! Unlike Meshery, components are never generated from a model's source (`sourceURL`,
//! which would need the network): the component sheet's rows are the components.

use serde_json::{Value, json};

use super::archive::{self, Rejected};
use crate::models::ModelDefinition;

/// At most this many rows per sheet: a spreadsheet is a few hundred.
const MAX_ROWS: usize = 5_000;

/// One sheet: its header names (normalised) and rows.
struct Sheet {
    header: Vec<String>,
    rows: Vec<csv::StringRecord>,
}

/// A column name as matched: lowercase, without spaces, `_`, `-` or `.`.
fn normalise(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-' | '.'))
        .flat_map(char::to_lowercase)
        .collect()
}

impl Sheet {
    /// Reads a sheet whose header names `key` (in its first or, below a title row, second row).
    fn read(what: &str, text: &str, key: &str) -> Result<Sheet, String> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes());
        let mut records = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| format!("the {what} CSV: {e}"))?;
            if records.len() > MAX_ROWS {
                return Err(format!("the {what} CSV has more than {MAX_ROWS} rows"));
            }
            records.push(record);
        }
        let key = normalise(key);
        let has_key = |r: &csv::StringRecord| r.iter().any(|c| normalise(c) == key);
        let at = records.iter().take(2).position(has_key).ok_or_else(|| {
            format!(
                "the {what} CSV has no header row naming a {key:?} column (in its first two rows)"
            )
        })?;
        let header = records[at].iter().map(normalise).collect();
        let rows = records.split_off(at + 1);
        Ok(Sheet { header, rows })
    }

    /// The non-empty value of a column in a row.
    fn get<'r>(&self, row: &'r csv::StringRecord, column: &str) -> Option<&'r str> {
        let column = normalise(column);
        let i = self.header.iter().position(|h| *h == column)?;
        row.get(i).map(str::trim).filter(|v| !v.is_empty())
    }

    fn flag(&self, row: &csv::StringRecord, column: &str) -> Option<bool> {
        self.get(row, column)
            .map(|v| v.eq_ignore_ascii_case("true"))
    }
}

/// The text of a sheet as sent: a `data:` URL (base64, or percent-free plain text), or
/// the CSV itself.
pub fn decode(what: &str, sent: &str) -> Result<String, String> {
    let Some(rest) = sent.trim().strip_prefix("data:") else {
        return Ok(sent.to_string());
    };
    let (meta, data) = rest
        .split_once(',')
        .ok_or_else(|| format!("the {what} CSV: a data: URL needs a comma before its data"))?;
    let bytes = if meta.ends_with(";base64") {
        base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            data.replace(['\n', '\r'], ""),
        )
        .map_err(|e| format!("the {what} CSV is not base64: {e}"))?
    } else {
        data.as_bytes().to_vec()
    };
    String::from_utf8(bytes).map_err(|_| format!("the {what} CSV is not UTF-8 text"))
}

/// Meshery's `sourceURL` names the model's version as its ninth path segment
/// (`https://github.com/<org>/<repo>/tree/<branch>/<model>/<version>/...`).
fn version_of_source(url: &str) -> Option<&str> {
    url.split('/')
        .nth(8)
        .filter(|v| v.starts_with('v') && v[1..].starts_with(|c: char| c.is_ascii_digit()))
}

/// The model definitions of the three sheets (components and relationships optional),
/// with the rows that could not be used.
pub fn definitions(
    models: &str,
    components: Option<&str>,
    relationships: Option<&str>,
) -> Result<(Vec<ModelDefinition>, Vec<Rejected>), String> {
    let mut docs = Vec::new();
    let sheet = Sheet::read("model", models, "model")?;
    for (i, row) in sheet.rows.iter().enumerate() {
        let Some(name) = sheet.get(row, "model") else {
            continue;
        };
        // Meshery registers only the rows marked for publishing.
        if sheet.flag(row, "publishToRegistry") == Some(false) {
            continue;
        }
        let version = sheet
            .get(row, "version")
            .or_else(|| sheet.get(row, "sourceURL").and_then(version_of_source))
            .unwrap_or("v1.0.0");
        let mut doc = json!({"name": name, "model": {"version": version}});
        if let Some(v) = sheet.get(row, "modelDisplayName") {
            doc["displayName"] = json!(v);
        }
        if let Some(v) = sheet.get(row, "category") {
            doc["category"] = json!({ "name": v });
        }
        if let Some(v) = sheet.get(row, "registrant") {
            doc["registrant"] = json!({ "name": v });
        }
        docs.push((format!("model row {}", i + 1), doc));
    }
    if docs.is_empty() {
        return Err(
            "the model CSV has no model to register (a row with `model` set and `publishToRegistry` not FALSE)"
                .into(),
        );
    }
    if let Some(text) = components {
        let sheet = Sheet::read("component", text, "component")?;
        for (i, row) in sheet.rows.iter().enumerate() {
            let (Some(kind), Some(model)) = (sheet.get(row, "component"), sheet.get(row, "model"))
            else {
                continue;
            };
            let mut doc = json!({
                "displayName": kind,
                "model": {"name": model},
                "component": {
                    "kind": kind,
                    "version": sheet.get(row, "version").unwrap_or("v1"),
                    "schema": sheet.get(row, "schema").unwrap_or(""),
                },
            });
            if let Some(v) = sheet.get(row, "isNamespaced") {
                doc["metadata"] = json!({"isNamespaced": v.eq_ignore_ascii_case("true")});
            }
            docs.push((format!("component row {}", i + 1), doc));
        }
    }
    let mut rejected = Vec::new();
    if let Some(text) = relationships {
        // An empty relationship sheet is common (a model without relationships).
        if !text.trim().is_empty() {
            let sheet = Sheet::read("relationship", text, "kind")?;
            for (i, row) in sheet.rows.iter().enumerate() {
                let Some(model) = sheet.get(row, "model") else {
                    continue;
                };
                if sheet.flag(row, "publishToRegistry") == Some(false) {
                    continue;
                }
                let place = format!("relationship row {}", i + 1);
                let selectors = match sheet
                    .get(row, "selector")
                    .map(serde_json::from_str::<Value>)
                {
                    Some(Ok(Value::Array(s))) => s,
                    Some(Ok(Value::Object(s))) => vec![Value::Object(s)],
                    Some(_) => {
                        rejected.push(Rejected {
                            name: place,
                            entity: "relationship",
                            error: "its selector is not a JSON array of selectors".into(),
                        });
                        continue;
                    }
                    None => Vec::new(),
                };
                let slug = |v: Option<&str>| {
                    v.unwrap_or_default()
                        .trim()
                        .to_lowercase()
                        .replace(' ', "-")
                };
                let doc = json!({
                    "schemaVersion": "relationships.meshery.io/v1beta2",
                    "kind": slug(sheet.get(row, "kind").or(Some("edge"))),
                    "type": slug(sheet.get(row, "type").or(Some("non-binding"))),
                    "subType": slug(sheet.get(row, "subType")),
                    "selectors": selectors,
                    "model": {"name": model},
                    "metadata": {"description": sheet.get(row, "metadata.description").unwrap_or_default()},
                });
                docs.push((place, doc));
            }
        }
    }
    let (definitions, more) = archive::assemble(docs);
    rejected.extend(more);
    Ok((definitions, rejected))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODELS: &str = "Models sheet,,,,,\n\
        registrant,modelDisplayName,model,category,sourceURL,publishToRegistry\n\
        meshery,Cert Manager,cert-manager,Security,https://github.com/o/r/tree/main/cert-manager/v1.14.0/components,TRUE\n\
        meshery,Hidden,hidden,Security,,FALSE\n";
    const COMPONENTS: &str = "registrant,model,component,version,schema\n\
        meshery,cert-manager,Certificate,cert-manager.io/v1,\"{\"\"type\"\":\"\"object\"\"}\"\n\
        meshery,cert-manager,Issuer,cert-manager.io/v1,\n\
        meshery,elsewhere,Thing,v1,\n";
    const RELATIONSHIPS: &str = "Model,Version,kind,type,subType,PublishToRegistry,metadata.description,selector\n\
        cert-manager,*,Hierarchical,Parent,Inventory,TRUE,Issuer owns certificates,\"[{\"\"allow\"\":{\"\"from\"\":[{\"\"kind\"\":\"\"Issuer\"\"}],\"\"to\"\":[{\"\"kind\"\":\"\"Certificate\"\"}]}}]\"\n\
        cert-manager,*,edge,binding,x,TRUE,,not json\n";

    #[test]
    fn sheets_become_a_model_with_its_components_and_relationships() {
        let (defs, rejected) = definitions(MODELS, Some(COMPONENTS), Some(RELATIONSHIPS)).unwrap();
        assert_eq!(defs.len(), 1, "{rejected:?}");
        let d = &defs[0];
        assert_eq!(d.name.to_string(), "cert-manager");
        assert_eq!(d.version.to_string(), "v1.14.0");
        assert_eq!(
            d.display_name.as_ref().map(|n| n.as_str()),
            Some("Cert Manager")
        );
        assert_eq!(d.category.as_ref().map(|c| c.as_str()), Some("Security"));
        let kinds: Vec<String> = d.components.iter().map(|c| c.kind.to_string()).collect();
        assert_eq!(kinds, ["Certificate", "Issuer"]);
        assert_eq!(
            d.components[0].api_version.to_string(),
            "cert-manager.io/v1"
        );
        assert_eq!(d.relationships.len(), 1);
        assert_eq!(d.relationships[0].from, ["Issuer"]);
        assert_eq!(d.relationships[0].to, ["Certificate"]);
        let why: Vec<(&str, &str)> = rejected
            .iter()
            .map(|r| (r.entity, r.error.as_str()))
            .collect();
        assert_eq!(why.len(), 2, "{why:?}");
        assert!(
            why.iter()
                .any(|(e, m)| *e == "relationship" && m.contains("selector"))
        );
        assert!(
            why.iter()
                .any(|(e, m)| *e == "component" && m.contains("elsewhere"))
        );
    }

    #[test]
    fn data_urls_and_bad_sheets() {
        let url = format!(
            "data:text/csv;base64,{}",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, MODELS)
        );
        assert_eq!(decode("model", &url).unwrap(), MODELS);
        assert!(decode("model", "data:text/csv;base64,%%%").is_err());
        assert_eq!(decode("model", "a,b\n").unwrap(), "a,b\n");
        let none = definitions("Models\n", None, None).unwrap_err();
        assert!(none.contains("header"), "{none}");
        let unpublished =
            definitions("model,publishToRegistry\nx,FALSE\n", None, None).unwrap_err();
        assert!(
            unpublished.contains("no model to register"),
            "{unpublished}"
        );
    }
}
