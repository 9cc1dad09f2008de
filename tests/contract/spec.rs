//! Checks a response against schema/openapi.yaml: the status is declared, the content type
//! is declared, and the body matches the declared JSON schema.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{Value, json};

const SPEC: &str = include_str!("../../schema/openapi.yaml");

pub struct Spec {
    doc: Value,
    /// OpenAPI 3.0 components turned into JSON Schema (nullable → a "null" type).
    components: Value,
    validators: Mutex<HashMap<String, std::sync::Arc<jsonschema::Validator>>>,
}

use meshery::validate::to_json_schema;

/// Whether `path` matches the template `/a/{id}/b`.
fn matches(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.trim_end_matches('/').split('/').collect();
    let p: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| (t.starts_with('{') && t.ends_with('}') && !p.is_empty()) || t == p)
}

impl Spec {
    pub fn load() -> Spec {
        let mut doc: Value = yaml_serde::from_str(SPEC).expect("schema/openapi.yaml parses");
        // `x-aliases`: the same operations under other paths.
        let mut aliased = Vec::new();
        for (_, item) in doc["paths"].as_object().into_iter().flatten() {
            for alias in item["x-aliases"].as_array().into_iter().flatten() {
                aliased.push((alias.as_str().unwrap().to_string(), item.clone()));
            }
        }
        for (alias, item) in aliased {
            doc["paths"][alias] = item;
        }
        let components = to_json_schema(&doc["components"]);
        Spec {
            doc,
            components,
            validators: Mutex::new(HashMap::new()),
        }
    }

    fn resolve<'a>(&'a self, v: &'a Value) -> &'a Value {
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let pointer = r.trim_start_matches('#');
                self.doc.pointer(pointer).unwrap_or(v)
            }
            None => v,
        }
    }

    /// The operation object for a method and a concrete path.
    pub fn operation(&self, method: &str, path: &str) -> Option<(String, &Value)> {
        let paths = self.doc["paths"].as_object()?;
        // Literal templates win over ones with parameters.
        let rest = |t: &str, item: &Value| {
            // `x-path-rest`: the last parameter takes the rest of the path.
            item.get(method.to_ascii_lowercase())
                .is_some_and(|op| op.get("x-path-rest") == Some(&Value::Bool(true)))
                && t.rfind('{')
                    .is_some_and(|i| path.len() > i && path.starts_with(&t[..i]))
        };
        let mut candidates: Vec<(&String, &Value)> = paths
            .iter()
            .filter(|(t, item)| matches(t, path) || rest(t, item))
            .collect();
        candidates.sort_by_key(|(t, _)| t.matches('{').count());
        candidates.into_iter().find_map(|(t, item)| {
            item.get(method.to_ascii_lowercase())
                .map(|op| (t.clone(), op))
        })
    }

    /// Every (method, path template) the spec declares.
    pub fn operations(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (path, item) in self.doc["paths"].as_object().into_iter().flatten() {
            for method in ["get", "put", "post", "delete", "patch", "head", "options"] {
                if item.get(method).is_some() {
                    out.push((method.to_ascii_uppercase(), path.clone()));
                }
            }
        }
        out
    }

    fn validator(
        &self,
        key: &str,
        schema: &Value,
    ) -> Result<std::sync::Arc<jsonschema::Validator>, String> {
        let mut cache = self.validators.lock().map_err(|e| e.to_string())?;
        if let Some(v) = cache.get(key) {
            return Ok(v.clone());
        }
        let mut root = to_json_schema(schema);
        if let Value::Object(m) = &mut root {
            m.insert("components".into(), self.components.clone());
        } else {
            root = json!({"allOf": [root], "components": self.components.clone()});
        }
        let v = std::sync::Arc::new(
            jsonschema::validator_for(&root).map_err(|e| format!("schema {key}: {e}"))?,
        );
        cache.insert(key.to_string(), v.clone());
        Ok(v)
    }

    /// Checks one response; `Err` says what is off.
    pub fn check(
        &self,
        method: &str,
        path: &str,
        status: u16,
        content_type: Option<&str>,
        via: bool,
        body: &[u8],
    ) -> Result<(), String> {
        let here = format!("{method} {path} -> {status}");
        let Some((template, op)) = self.operation(method, path) else {
            if path.starts_with("/api") {
                // Outside the spec, the API answers only "no such operation".
                if status != 404 && status != 405 {
                    return Err(format!(
                        "{here}: an /api route that is not in openapi.yaml answered"
                    ));
                }
                return self.check_body(
                    &here,
                    "#/components/schemas/MeshKitError",
                    &json!({"$ref": "#/components/schemas/MeshKitError"}),
                    body,
                );
            }
            return Ok(());
        };
        // A pass-through operation's answers that came from upstream (marked by `Via`)
        // are the provider's own.
        if op.get("x-passthrough") == Some(&Value::Bool(true)) && via {
            return Ok(());
        }
        let Some(response) = op["responses"].get(status.to_string()) else {
            return Err(format!(
                "{here}: status not declared for {method} {template}"
            ));
        };
        let response = self.resolve(response);
        let essence = content_type.map(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
        match (response.get("content").and_then(Value::as_object), essence) {
            (None, _) if body.is_empty() => Ok(()),
            (None, _) => Err(format!(
                "{here}: declared without content, but has a {}-byte body",
                body.len()
            )),
            (Some(_), None) => Err(format!("{here}: no content type")),
            (Some(content), Some(ct)) => {
                let Some(media) = content.get(&ct).or_else(|| content.get("*/*")) else {
                    return Err(format!(
                        "{here}: content type {ct} not declared (declared: {:?})",
                        content.keys().collect::<Vec<_>>()
                    ));
                };
                if ct == "application/json" {
                    let key = format!("{method} {template} {status}");
                    self.check_body(&here, &key, &media["schema"], body)
                } else if ct.ends_with("yaml") {
                    // As a YAML client reads it: each document parsed, then checked like JSON.
                    use serde::Deserialize;
                    let key = format!("{method} {template} {status}");
                    for document in yaml_serde::Deserializer::from_slice(body) {
                        let parsed = Value::deserialize(document)
                            .map_err(|e| format!("{here}: body is not YAML: {e}"))?;
                        let json = serde_json::to_vec(&parsed).map_err(|e| e.to_string())?;
                        self.check_body(&here, &key, &media["schema"], &json)?;
                    }
                    Ok(())
                } else if media["schema"]["format"] == "binary" {
                    // A file: any bytes, but not nothing.
                    if body.is_empty() {
                        Err(format!("{here}: an empty file"))
                    } else {
                        Ok(())
                    }
                } else if media["schema"]["type"] == "string" {
                    std::str::from_utf8(body)
                        .map(|_| ())
                        .map_err(|_| format!("{here}: body is not UTF-8"))
                } else {
                    Ok(())
                }
            }
        }
    }

    fn check_body(&self, here: &str, key: &str, schema: &Value, body: &[u8]) -> Result<(), String> {
        let instance: Value =
            serde_json::from_slice(body).map_err(|e| format!("{here}: body is not JSON: {e}"))?;
        let validator = self.validator(key, schema)?;
        let errors: Vec<String> = validator
            .iter_errors(&instance)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{here}: body does not match its schema: {}; body: {instance}",
                errors.join("; ")
            ))
        }
    }
}

#[test]
fn path_templates_match_concrete_paths() {
    assert!(matches("/api/pattern/{id}", "/api/pattern/42"));
    assert!(!matches("/api/pattern/{id}", "/api/pattern"));
    assert!(!matches("/api/pattern/{id}", "/api/pattern/42/x"));
    assert!(matches("/api/user", "/api/user/"));
}

#[test]
fn the_checker_rejects_what_the_spec_does_not_declare() {
    let spec = Spec::load();
    let ok = br#"{"build":"v1","latest":"v1","outdated":false,"commitsha":"x","releaseChannel":"stable"}"#;
    assert_eq!(
        spec.check(
            "GET",
            "/api/system/version",
            200,
            Some("application/json"),
            false,
            ok
        ),
        Ok(())
    );
    // A missing required field, an undeclared status, an undeclared content type.
    let missing = br#"{"build":"v1","latest":"v1","outdated":false,"commitsha":"x"}"#;
    assert!(
        spec.check(
            "GET",
            "/api/system/version",
            200,
            Some("application/json"),
            false,
            missing
        )
        .is_err()
    );
    assert!(
        spec.check(
            "GET",
            "/api/system/version",
            404,
            Some("application/json"),
            false,
            ok
        )
        .is_err()
    );
    assert!(
        spec.check(
            "GET",
            "/api/system/version",
            200,
            Some("text/html"),
            false,
            ok
        )
        .is_err()
    );
    // A nullable field may be null; a wrong type may not.
    let prefs = br#"{"anonymousUsageStats":true,"anonymousPerfResults":true,"usersExtensionPreferences":{},"dashboardPreferences":{},"loadTestPrefs":{"c":1,"qps":0,"t":"30s","gen":"fortio"},"meshAdapters":[],"selectedWorkspaceForOrganizations":{},"remoteProviderPreferences":{},"updatedAt":null}"#;
    assert_eq!(
        spec.check(
            "GET",
            "/api/user/prefs",
            200,
            Some("application/json"),
            false,
            prefs
        ),
        Ok(())
    );
    let wrong = br#"{"anonymousUsageStats":"yes","anonymousPerfResults":true,"usersExtensionPreferences":{},"dashboardPreferences":{},"loadTestPrefs":{"c":1,"qps":0,"t":"30s","gen":"fortio"},"meshAdapters":[],"selectedWorkspaceForOrganizations":{},"remoteProviderPreferences":{}}"#;
    assert!(
        spec.check(
            "GET",
            "/api/user/prefs",
            200,
            Some("application/json"),
            false,
            wrong
        )
        .is_err()
    );
    // Outside the spec under /api only a MeshKit 404 is acceptable.
    assert!(
        spec.check(
            "GET",
            "/api/nope",
            200,
            Some("application/json"),
            false,
            b"{}"
        )
        .is_err()
    );
}
