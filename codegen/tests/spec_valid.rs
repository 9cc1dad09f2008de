//! `schema/openapi.yaml` is a valid OpenAPI 3.0 document by the OpenAPI Initiative's own
//! JSON Schema (vendored in `tests/vendor/`), and the generator's own key check agrees.

use serde_json::Value;

const SPEC: &str = include_str!("../../schema/openapi.yaml");
const OAS_30: &str = include_str!("vendor/openapi-3.0.schema.json");

fn errors(doc: &Value) -> Vec<String> {
    let schema: Value = serde_json::from_str(OAS_30).unwrap();
    let validator = jsonschema::draft4::new(&schema).unwrap();
    validator
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[test]
fn the_api_document_validates_against_the_official_schema() {
    let doc: Value = yaml_serde::from_str(SPEC).unwrap();
    let errors = errors(&doc);
    assert!(
        errors.is_empty(),
        "schema/openapi.yaml is not valid OpenAPI 3.0:\n{}",
        errors.join("\n")
    );
    meshery_codegen::oas_keys::check("openapi.yaml", SPEC).unwrap();
}

#[test]
fn the_official_schema_catches_what_a_typed_reader_ignores() {
    // The slip that hid in openapi.yaml: an unquoted ", " in a flow mapping makes a key.
    let doc: Value = yaml_serde::from_str(
        "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /a:\n    get:\n      parameters:\n        - { name: p, in: query, schema: { type: string }, description: A, b. }\n      responses: {'200': {description: ok}}\n",
    )
    .unwrap();
    assert!(!errors(&doc).is_empty());
}
