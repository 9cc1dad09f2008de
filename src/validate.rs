//! Request bodies checked against their schemas in `schema/openapi.yaml` (the generated
//! router calls `Hooks::check_body` before typing a JSON body), so what the spec says a
//! body may hold is what the server takes: an explicit `null` where the schema has no
//! `nullable`, a pattern, a range or an unknown property is a 400 naming the place.

use std::collections::HashMap;

use serde_json::{Value, json};

/// OpenAPI 3.0's `nullable` (and its other dialect quirks) in JSON Schema terms.
pub fn to_json_schema(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map {
                if k == "nullable" || k.starts_with("x-") || k == "example" {
                    continue;
                }
                out.insert(k.clone(), to_json_schema(v));
            }
            if map.get("nullable") == Some(&Value::Bool(true)) {
                if let Some(t) = out.get("type").cloned() {
                    out.insert("type".into(), json!([t, "null"]));
                } else if out.contains_key("$ref") || out.contains_key("allOf") {
                    return json!({"anyOf": [Value::Object(out), {"type": "null"}]});
                }
                if let Some(Value::Array(e)) = out.get_mut("enum") {
                    e.push(Value::Null);
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(to_json_schema).collect()),
        other => other.clone(),
    }
}

/// Why the request-body schemas could not be built from the spec.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("openapi.yaml: {0}")]
    Yaml(#[from] yaml_serde::Error),
    #[error("request body schema of {operation}: {message}")]
    Schema { operation: String, message: String },
}

/// What is wrong with a request body: the first few problems, each with its place.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.join("; "))]
pub struct BodyProblems(pub Vec<String>);

/// The JSON request-body validator of every operation that has one, by operation id.
pub struct BodySchemas {
    by_operation: HashMap<String, jsonschema::Validator>,
}

impl BodySchemas {
    pub fn load(spec_yaml: &str) -> Result<BodySchemas, SpecError> {
        let doc: Value = yaml_serde::from_str(spec_yaml)?;
        let components = to_json_schema(&doc["components"]);
        let resolve = |v: &Value| -> Value {
            match v.get("$ref").and_then(Value::as_str) {
                Some(r) => r
                    .trim_start_matches("#/")
                    .split('/')
                    .fold(&doc, |at, key| &at[key])
                    .clone(),
                None => v.clone(),
            }
        };
        let mut by_operation = HashMap::new();
        for item in doc["paths"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(_, i)| i)
        {
            for method in ["get", "put", "post", "delete", "patch"] {
                let Some(op) = item.get(method) else { continue };
                let (Some(id), Some(body)) = (op["operationId"].as_str(), op.get("requestBody"))
                else {
                    continue;
                };
                let schema = &resolve(body)["content"]["application/json"]["schema"];
                if schema.is_null() {
                    continue;
                }
                let mut root = to_json_schema(schema);
                match &mut root {
                    Value::Object(m) if !m.contains_key("$ref") => {
                        m.insert("components".into(), components.clone());
                    }
                    _ => root = json!({"allOf": [root], "components": components.clone()}),
                }
                let validator =
                    jsonschema::validator_for(&root).map_err(|e| SpecError::Schema {
                        operation: id.to_string(),
                        message: e.to_string(),
                    })?;
                by_operation.insert(id.to_string(), validator);
            }
        }
        Ok(BodySchemas { by_operation })
    }

    /// Whether `body` fits the operation's schema; the first few problems otherwise.
    pub fn check(&self, operation: &str, body: &Value) -> Result<(), BodyProblems> {
        let Some(validator) = self.by_operation.get(operation) else {
            return Ok(());
        };
        let problems: Vec<String> = validator
            .iter_errors(body)
            .take(3)
            .map(|e| {
                let at = e.instance_path().to_string();
                if at.is_empty() {
                    e.to_string()
                } else {
                    format!("at {at}: {e}")
                }
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(BodyProblems(problems))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_held_to_their_schema_nulls_included() {
        let schemas = BodySchemas::load(crate::generated::OPENAPI_YAML).unwrap();
        let ok =
            json!({"category": "a", "action": "b", "severity": "informational", "description": ""});
        assert!(schemas.check("createEvent", &ok).is_ok());
        let null = json!({"category": "a", "action": "b", "severity": "informational", "description": "", "metadata": null});
        assert!(
            schemas
                .check("createEvent", &null)
                .unwrap_err()
                .to_string()
                .contains("/metadata")
        );
        let severity =
            json!({"category": "a", "action": "b", "severity": "info", "description": ""});
        assert!(schemas.check("createEvent", &severity).is_err());
        assert!(schemas.check("noSuchOperation", &json!(null)).is_ok());
    }
}
