//! Refuses keys that the OpenAPI 3.0 object model does not define. Typed readers (serde,
//! openapiv3) ignore unknown keys, so a YAML slip such as an unquoted `description: a, b`
//! in a flow mapping (which reads as a second key `b`) would silently lose text. Each
//! object is walked with the fields that version 3.0.3 of the specification gives it;
//! `x-*` extensions are allowed everywhere and never walked into.

use serde_json::Value;

use crate::{Error, Result};

/// The kinds of object in the OpenAPI 3.0 model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Document,
    Info,
    Contact,
    License,
    Server,
    ServerVariable,
    Components,
    Paths,
    PathItem,
    Operation,
    ExternalDocs,
    Parameter,
    RequestBody,
    MediaType,
    Encoding,
    Responses,
    Response,
    Callback,
    Example,
    Link,
    Header,
    Tag,
    Schema,
    Discriminator,
    Xml,
    SecurityScheme,
    OAuthFlows,
    OAuthFlow,
    SecurityRequirement,
}

/// What a field holds.
#[derive(Clone, Copy)]
enum Holds {
    /// A value with no OpenAPI structure inside (strings, examples, defaults, enums).
    Any,
    One(Kind),
    ListOf(Kind),
    MapOf(Kind),
}

use Holds::{Any, ListOf, MapOf, One};
use Kind::*;

const SCHEMA_FIELDS: &[(&str, Holds)] = &[
    ("title", Any),
    ("multipleOf", Any),
    ("maximum", Any),
    ("exclusiveMaximum", Any),
    ("minimum", Any),
    ("exclusiveMinimum", Any),
    ("maxLength", Any),
    ("minLength", Any),
    ("pattern", Any),
    ("maxItems", Any),
    ("minItems", Any),
    ("uniqueItems", Any),
    ("maxProperties", Any),
    ("minProperties", Any),
    ("required", Any),
    ("enum", Any),
    ("type", Any),
    ("allOf", ListOf(Schema)),
    ("oneOf", ListOf(Schema)),
    ("anyOf", ListOf(Schema)),
    ("not", One(Schema)),
    ("items", One(Schema)),
    ("properties", MapOf(Schema)),
    // `true`/`false` or a schema: a boolean is walked as "no keys".
    ("additionalProperties", One(Schema)),
    ("description", Any),
    ("format", Any),
    ("default", Any),
    ("nullable", Any),
    ("discriminator", One(Discriminator)),
    ("readOnly", Any),
    ("writeOnly", Any),
    ("xml", One(Xml)),
    ("externalDocs", One(ExternalDocs)),
    ("example", Any),
    ("deprecated", Any),
];

fn fields(kind: Kind) -> &'static [(&'static str, Holds)] {
    match kind {
        Document => &[
            ("openapi", Any),
            ("info", One(Info)),
            ("servers", ListOf(Server)),
            ("paths", One(Paths)),
            ("components", One(Components)),
            ("security", ListOf(SecurityRequirement)),
            ("tags", ListOf(Tag)),
            ("externalDocs", One(ExternalDocs)),
        ],
        Info => &[
            ("title", Any),
            ("description", Any),
            ("termsOfService", Any),
            ("contact", One(Contact)),
            ("license", One(License)),
            ("version", Any),
        ],
        Contact => &[("name", Any), ("url", Any), ("email", Any)],
        License => &[("name", Any), ("url", Any)],
        Server => &[
            ("url", Any),
            ("description", Any),
            ("variables", MapOf(ServerVariable)),
        ],
        ServerVariable => &[("enum", Any), ("default", Any), ("description", Any)],
        Components => &[
            ("schemas", MapOf(Schema)),
            ("responses", MapOf(Response)),
            ("parameters", MapOf(Parameter)),
            ("examples", MapOf(Example)),
            ("requestBodies", MapOf(RequestBody)),
            ("headers", MapOf(Header)),
            ("securitySchemes", MapOf(SecurityScheme)),
            ("links", MapOf(Link)),
            ("callbacks", MapOf(Callback)),
        ],
        // Keyed by path or status code: handled in `walk`.
        Paths | Responses | Callback | SecurityRequirement => &[],
        PathItem => &[
            ("summary", Any),
            ("description", Any),
            ("get", One(Operation)),
            ("put", One(Operation)),
            ("post", One(Operation)),
            ("delete", One(Operation)),
            ("options", One(Operation)),
            ("head", One(Operation)),
            ("patch", One(Operation)),
            ("trace", One(Operation)),
            ("servers", ListOf(Server)),
            ("parameters", ListOf(Parameter)),
        ],
        Operation => &[
            ("tags", Any),
            ("summary", Any),
            ("description", Any),
            ("externalDocs", One(ExternalDocs)),
            ("operationId", Any),
            ("parameters", ListOf(Parameter)),
            ("requestBody", One(RequestBody)),
            ("responses", One(Responses)),
            ("callbacks", MapOf(Callback)),
            ("deprecated", Any),
            ("security", ListOf(SecurityRequirement)),
            ("servers", ListOf(Server)),
        ],
        ExternalDocs => &[("description", Any), ("url", Any)],
        Parameter => &[
            ("name", Any),
            ("in", Any),
            ("description", Any),
            ("required", Any),
            ("deprecated", Any),
            ("allowEmptyValue", Any),
            ("style", Any),
            ("explode", Any),
            ("allowReserved", Any),
            ("schema", One(Schema)),
            ("example", Any),
            ("examples", MapOf(Example)),
            ("content", MapOf(MediaType)),
        ],
        RequestBody => &[
            ("description", Any),
            ("content", MapOf(MediaType)),
            ("required", Any),
        ],
        MediaType => &[
            ("schema", One(Schema)),
            ("example", Any),
            ("examples", MapOf(Example)),
            ("encoding", MapOf(Encoding)),
        ],
        Encoding => &[
            ("contentType", Any),
            ("headers", MapOf(Header)),
            ("style", Any),
            ("explode", Any),
            ("allowReserved", Any),
        ],
        Response => &[
            ("description", Any),
            ("headers", MapOf(Header)),
            ("content", MapOf(MediaType)),
            ("links", MapOf(Link)),
        ],
        Example => &[
            ("summary", Any),
            ("description", Any),
            ("value", Any),
            ("externalValue", Any),
        ],
        Link => &[
            ("operationRef", Any),
            ("operationId", Any),
            ("parameters", Any),
            ("requestBody", Any),
            ("description", Any),
            ("server", One(Server)),
        ],
        Header => &[
            ("description", Any),
            ("required", Any),
            ("deprecated", Any),
            ("allowEmptyValue", Any),
            ("style", Any),
            ("explode", Any),
            ("allowReserved", Any),
            ("schema", One(Schema)),
            ("example", Any),
            ("examples", MapOf(Example)),
            ("content", MapOf(MediaType)),
        ],
        Tag => &[
            ("name", Any),
            ("description", Any),
            ("externalDocs", One(ExternalDocs)),
        ],
        Schema => SCHEMA_FIELDS,
        Discriminator => &[("propertyName", Any), ("mapping", Any)],
        Xml => &[
            ("name", Any),
            ("namespace", Any),
            ("prefix", Any),
            ("attribute", Any),
            ("wrapped", Any),
        ],
        SecurityScheme => &[
            ("type", Any),
            ("description", Any),
            ("name", Any),
            ("in", Any),
            ("scheme", Any),
            ("bearerFormat", Any),
            ("flows", One(OAuthFlows)),
            ("openIdConnectUrl", Any),
        ],
        OAuthFlows => &[
            ("implicit", One(OAuthFlow)),
            ("password", One(OAuthFlow)),
            ("clientCredentials", One(OAuthFlow)),
            ("authorizationCode", One(OAuthFlow)),
        ],
        OAuthFlow => &[
            ("authorizationUrl", Any),
            ("tokenUrl", Any),
            ("refreshUrl", Any),
            ("scopes", Any),
        ],
    }
}

/// Objects that may instead be a Reference Object (`$ref`).
fn referable(kind: Kind) -> bool {
    matches!(
        kind,
        Schema
            | Parameter
            | RequestBody
            | Response
            | Example
            | Link
            | Header
            | SecurityScheme
            | Callback
            | PathItem
    )
}

/// Checks a whole document (YAML text). Errors name the place as a dotted path.
pub fn check(file: &str, text: &str) -> Result<()> {
    let doc: Value = yaml_serde::from_str(text)
        .map_err(|e| Error::new(file, "", format!("is not a YAML document: {e}")))?;
    walk(file, "", &doc, Document)
}

fn join(place: &str, key: &str) -> String {
    if place.is_empty() {
        key.to_string()
    } else {
        format!("{place}.{key}")
    }
}

fn walk(file: &str, place: &str, value: &Value, kind: Kind) -> Result<()> {
    let Some(object) = value.as_object() else {
        // `additionalProperties: true` and the like; types are the typed reader's job.
        return Ok(());
    };
    if referable(kind) && object.contains_key("$ref") {
        // The specification ignores siblings of `$ref`, so text beside one would be lost.
        if let Some(extra) = object.keys().find(|k| *k != "$ref" && !k.starts_with("x-")) {
            return Err(Error::new(
                file,
                place,
                format!(
                    "key {extra:?} beside $ref is ignored by OpenAPI 3.0; move it into the referenced object"
                ),
            ));
        }
        return Ok(());
    }
    for (key, child) in object {
        if key.starts_with("x-") {
            continue;
        }
        let here = join(place, key);
        let holds = match kind {
            Paths if key.starts_with('/') => One(PathItem),
            Responses if is_status_key(key) => One(Response),
            Callback => One(PathItem),
            SecurityRequirement => Any,
            _ => match fields(kind).iter().find(|(k, _)| k == key) {
                Some((_, holds)) => *holds,
                None => return Err(unknown(file, place, key, kind)),
            },
        };
        match holds {
            Any => {}
            One(k) => walk(file, &here, child, k)?,
            ListOf(k) => {
                for (i, item) in child.as_array().into_iter().flatten().enumerate() {
                    walk(file, &format!("{here}[{i}]"), item, k)?;
                }
            }
            MapOf(k) => {
                for (name, item) in child.as_object().into_iter().flatten() {
                    walk(file, &join(&here, name), item, k)?;
                }
            }
        }
    }
    Ok(())
}

fn is_status_key(key: &str) -> bool {
    key == "default"
        || (key.len() == 3
            && matches!(key.as_bytes()[0], b'1'..=b'5')
            && (key[1..].bytes().all(|b| b.is_ascii_digit()) || &key[1..] == "XX"))
}

fn unknown(file: &str, place: &str, key: &str, kind: Kind) -> Error {
    let hint = if key.contains(' ') || key.ends_with('.') {
        " (a description with \", \" in a flow mapping? quote it)"
    } else {
        ""
    };
    let what = match kind {
        Paths => "a path (must start with /)".to_string(),
        Responses => "a status code".to_string(),
        _ => format!("a field of the {kind:?} object"),
    };
    Error::new(
        file,
        place,
        format!("unknown key {key:?}: not {what} in OpenAPI 3.0{hint}"),
    )
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn unknown_keys_are_refused_with_their_place() {
        let doc = "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /a:\n    get:\n      parameters:\n        - { name: p, in: query, schema: { type: string }, description: Provider name, when no cookie names one. }\n      responses: {'200': {description: ok}}\n";
        let e = check("f.yaml", doc).unwrap_err().to_string();
        assert!(e.contains("paths./a.get.parameters[0]"), "{e}");
        assert!(e.contains("when no cookie names one."), "{e}");
        assert!(e.contains("quote it"), "{e}");
        let fixed = doc.replace(
            "description: Provider name, when no cookie names one.",
            "description: \"Provider name, when no cookie names one.\"",
        );
        check("f.yaml", &fixed).unwrap();
    }

    #[test]
    fn schemas_extensions_status_codes_and_refs() {
        let ok = "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /a:\n    x-aliases: [/b]\n    get:\n      x-raw: true\n      responses:\n        '2XX': {description: ok}\n        default: {$ref: '#/components/responses/E'}\ncomponents:\n  schemas:\n    S: {type: object, additionalProperties: false, properties: {a: {type: string, nullable: true}}}\n  responses:\n    E: {description: e}\n";
        check("f.yaml", ok).unwrap();
        let bad_schema = ok.replace("nullable: true", "nullabel: true");
        let e = check("f.yaml", &bad_schema).unwrap_err().to_string();
        assert!(e.contains("components.schemas.S.properties.a"), "{e}");
        let bad_status = ok.replace("'2XX'", "'299x'");
        assert!(check("f.yaml", &bad_status).is_err());
        let ref_sibling = ok.replace(
            "default: {$ref: '#/components/responses/E'}",
            "default: {$ref: '#/components/responses/E', description: lost}",
        );
        let e = check("f.yaml", &ref_sibling).unwrap_err().to_string();
        assert!(e.contains("beside $ref"), "{e}");
    }
}
