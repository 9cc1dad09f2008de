//! The OpenAPI document read once, checked against the rules the generators rely on, and
//! flattened into operations in a stable order.

use std::collections::BTreeSet;

use openapiv3::{
    OpenAPI, Parameter, ParameterSchemaOrContent, ReferenceOr, RequestBody, Response, Schema,
    SchemaKind, StatusCode, Type,
};

use crate::{Error, Result};

#[derive(Debug, Clone)]
pub struct Spec {
    pub file: String,
    pub text: String,
    pub api: OpenAPI,
    /// Sorted by path, then method.
    pub operations: Vec<Operation>,
    /// The one schema every error response uses (a components/schemas name).
    pub error_schema: String,
    /// Page envelopes: schemas marked `x-page: <items key>`, as (schema, items key, item
    /// schema). Their success bodies get snake_case aliases and a generated constructor.
    pub pages: Vec<PageSchema>,
}

#[derive(Debug, Clone)]
pub struct PageSchema {
    pub name: String,
    pub items: String,
    pub item: String,
    /// Other (optional) properties: the constructor leaves them at their default.
    pub extras: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Operation {
    pub id: String,
    pub method: String,
    pub path: String,
    pub tag: String,
    pub summary: String,
    pub description: String,
    /// Security scheme names that can satisfy the operation; empty means public.
    pub security: Vec<String>,
    /// Handled by a handwritten handler that takes the whole request (`x-raw: true`).
    pub raw: bool,
    /// `x-snake-aliases: N`: objects at nesting depth N of the JSON success body also
    /// carry each camelCase key in snake_case, for older clients.
    pub snake_aliases: Option<u64>,
    /// A page envelope's `x-snake-aliases: N` (N > 0): its items at depth N carry the
    /// snake_case keys too, besides the envelope's own (depth 0).
    pub page_items_aliases: Option<u64>,
    /// `x-path-rest: true`: the last path parameter takes the rest of the path, slashes too.
    pub path_rest: bool,
    /// `x-aliases` on the path: other paths served by the same operation (legacy prefixes).
    pub aliases: Vec<String>,
    /// `x-key: {id, function}`: the key of Meshery's keychain a caller must hold (with a
    /// remote provider); the operation then declares 403 and 502 (the provider's answer).
    pub key: Option<NeededKey>,
    pub params: Vec<Param>,
    pub body: Option<Body>,
    pub responses: Vec<Resp>,
}

/// A key of Meshery's keychain an operation needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeededKey {
    pub id: String,
    pub function: String,
}

impl Operation {
    /// The route as axum writes it: a rest parameter becomes `{*name}`.
    pub fn route(&self) -> String {
        if !self.path_rest {
            return self.path.clone();
        }
        match self.path.rfind('{') {
            Some(i) => format!("{}{{*{}", &self.path[..i], &self.path[i + 1..]),
            None => self.path.clone(),
        }
    }

    pub fn place(&self) -> String {
        format!("{} {} ({})", self.method, self.path, self.id)
    }
    pub fn is_public(&self) -> bool {
        self.security.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Path,
    Query,
    Header,
}

impl Location {
    pub fn as_str(self) -> &'static str {
        match self {
            Location::Path => "path",
            Location::Query => "query",
            Location::Header => "header",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Param {
    pub name: String,
    pub location: Location,
    pub required: bool,
    /// `allowEmptyValue` on a query parameter: an empty value counts as absent.
    pub allow_empty: bool,
    /// `x-aliases` on a query parameter: other names the server also takes for it
    /// (what older clients send); clients send its own name.
    pub aliases: Vec<String>,
    /// `x-absent` on an optional query parameter: literal values that count as absent
    /// (`undefined`: what a JavaScript client sends for an argument it was not given).
    pub absent: Vec<String>,
    pub description: String,
    pub schema: ReferenceOr<Schema>,
}

#[derive(Debug, Clone)]
pub struct Body {
    pub content_type: String,
    pub required: bool,
    pub description: String,
    pub schema: ReferenceOr<Schema>,
    /// `x-document: <property>` on a JSON body: a body that is not a JSON object (a YAML
    /// or text document, or a JSON or YAML string holding one) is taken as that string
    /// property, the way Meshery's handlers take a design sent as the body itself.
    pub document: Option<String>,
    /// `x-snake-aliases: N` on a body: objects at nesting depth N may spell a camelCase
    /// property in snake_case (older clients); it is renamed before the schema check.
    pub snake_aliases: Option<u64>,
    /// `x-renamed: {legacy: canonical}` on a body: a top-level key older clients spell
    /// otherwise (not only snake_case), renamed before the schema check when the
    /// canonical one is absent.
    pub renamed: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub description: String,
    /// Content type and schema, when the response has a body.
    pub content: Option<(String, ReferenceOr<Schema>)>,
    /// Further content types of a file response (the handler picks one per answer).
    pub other_types: Vec<String>,
    pub headers: Vec<RespHeader>,
}

#[derive(Debug, Clone)]
pub struct RespHeader {
    pub name: String,
    pub required: bool,
    pub description: String,
    /// `type: array`: the header is sent once per value (Set-Cookie).
    pub multi: bool,
}

impl Spec {
    pub fn parse(file: &str, text: &str) -> Result<Spec> {
        crate::oas_keys::check(file, text)?;
        let api: OpenAPI = yaml_serde::from_str(text)
            .map_err(|e| Error::new(file, "", format!("is not a valid OpenAPI document: {e}")))?;
        if !api.openapi.starts_with("3.0.") {
            return Err(Error::new(
                file,
                "openapi",
                format!(
                    "version {} is not 3.0.x (the client generator reads 3.0 only)",
                    api.openapi
                ),
            ));
        }
        let global_security = security_names(api.security.as_deref().unwrap_or(&[]));
        let pages = page_schemas(file, &api)?;
        let mut operations = Vec::new();
        let mut error_schemas = BTreeSet::new();
        let mut ids = BTreeSet::new();
        let mut paths: Vec<_> = api.paths.paths.iter().collect();
        paths.sort_by(|a, b| a.0.cmp(b.0));
        for (path, item) in paths {
            let ReferenceOr::Item(item) = item else {
                return Err(Error::new(
                    file,
                    path.as_str(),
                    "path items must not be $ref",
                ));
            };
            for (method, op) in item.iter() {
                let method = method.to_ascii_uppercase();
                let place = format!("{method} {path}");
                let id = op
                    .operation_id
                    .clone()
                    .ok_or_else(|| Error::new(file, &place, "has no operationId"))?;
                let place = format!("{place} ({id})");
                if !ids.insert(id.clone()) {
                    return Err(Error::new(file, &place, "operationId is used twice"));
                }
                let tag =
                    op.tags.first().cloned().ok_or_else(|| {
                        Error::new(file, &place, "has no tag (its function group)")
                    })?;
                let description = op.description.clone().unwrap_or_default();
                if description.trim().is_empty() {
                    return Err(Error::new(file, &place, "has no description"));
                }
                let security = match &op.security {
                    Some(s) => security_names(s),
                    None => global_security.clone(),
                };
                let raw = op
                    .extensions
                    .get("x-raw")
                    .and_then(|v| v.as_bool())
                    .unwrap_or(false);

                let mut snake_aliases = op
                    .extensions
                    .get("x-snake-aliases")
                    .and_then(|v| v.as_u64());
                let path_rest = op
                    .extensions
                    .get("x-path-rest")
                    .and_then(|v| v.as_bool())
                    .unwrap_or(false);
                if path_rest && !path.trim_end_matches('/').ends_with('}') {
                    return Err(Error::new(
                        file,
                        &place,
                        "x-path-rest needs a path that ends in a parameter",
                    ));
                }

                let aliases = aliases_of(file, &place, path, item)?;
                if path_rest && !aliases.is_empty() {
                    return Err(Error::new(
                        file,
                        &place,
                        "x-path-rest and x-aliases do not combine",
                    ));
                }
                let mut params = Vec::new();
                for p in item.parameters.iter().chain(op.parameters.iter()) {
                    params.push(param(file, &place, &api, p)?);
                }
                let body = match &op.request_body {
                    None => None,
                    Some(b) => Some(body(file, &place, &api, b)?),
                };
                let mut responses = Vec::new();
                if op.responses.default.is_some() {
                    return Err(Error::new(
                        file,
                        &place,
                        "declares a `default` response; declare explicit status codes",
                    ));
                }
                for (code, r) in &op.responses.responses {
                    let StatusCode::Code(status) = code else {
                        return Err(Error::new(
                            file,
                            &place,
                            "declares a status range; declare explicit status codes",
                        ));
                    };
                    let resp = response(file, &place, &api, *status, r)?;
                    if resp.status >= 400 {
                        match &resp.content {
                            Some((ct, ReferenceOr::Reference { reference }))
                                if ct == "application/json" =>
                            {
                                error_schemas.insert(ref_name(reference).to_string());
                            }
                            _ => {
                                return Err(Error::new(
                                    file,
                                    &place,
                                    format!(
                                        "response {status} must have an application/json body that is a $ref to the shared error schema"
                                    ),
                                ));
                            }
                        }
                    }
                    responses.push(resp);
                }
                responses.sort_by_key(|r| r.status);
                let page = responses.iter().find_map(|r| match &r.content {
                    Some((_, ReferenceOr::Reference { reference })) if r.status < 300 => {
                        pages.iter().find(|p| p.name == ref_name(reference))
                    }
                    _ => None,
                });
                let pages_param = params.iter().any(|p| p.name == "page");
                let mut page_items_aliases = None;
                match (page, pages_param) {
                    (Some(_), _) => {
                        // Every page envelope carries the legacy spellings too (depth
                        // 0); `x-snake-aliases: N` adds them to the objects at depth N.
                        page_items_aliases = snake_aliases.filter(|d| *d != 0);
                        snake_aliases = Some(0);
                        for name in ["page", "pagesize", "pageSize"] {
                            if !params.iter().any(|p| p.name == name) {
                                return Err(Error::new(
                                    file,
                                    &place,
                                    format!(
                                        "answers a page envelope but has no `{name}` parameter"
                                    ),
                                ));
                            }
                        }
                    }
                    (None, true) => {
                        return Err(Error::new(
                            file,
                            &place,
                            "takes `page` but does not answer a page envelope (a schema with x-page)",
                        ));
                    }
                    (None, false) => {}
                }
                let operation = Operation {
                    id,
                    method,
                    path: path.clone(),
                    tag,
                    summary: op.summary.clone().unwrap_or_default(),
                    description,
                    security,
                    raw,
                    snake_aliases,
                    page_items_aliases,
                    path_rest,
                    aliases,
                    key: needed_key(file, &place, op.extensions.get("x-key"))?,
                    params,
                    body,
                    responses,
                };
                check_responses(file, &operation)?;
                operations.push(operation);
            }
        }
        if error_schemas.len() > 1 {
            return Err(Error::new(
                file,
                "responses",
                format!(
                    "error responses use several schemas ({error_schemas:?}); use one shared error schema"
                ),
            ));
        }
        let error_schema = error_schemas.into_iter().next().ok_or_else(|| {
            Error::new(file, "responses", "no operation declares an error response")
        })?;
        Ok(Spec {
            file: file.to_string(),
            text: text.to_string(),
            api,
            operations,
            error_schema,
            pages,
        })
    }

    pub fn schema(&self, name: &str) -> Option<&Schema> {
        match self.api.components.as_ref()?.schemas.get(name)? {
            ReferenceOr::Item(s) => Some(s),
            ReferenceOr::Reference { .. } => None,
        }
    }
}

/// `x-key: {id, function}` on an operation.
fn needed_key(
    file: &str,
    place: &str,
    value: Option<&serde_json::Value>,
) -> Result<Option<NeededKey>> {
    let Some(value) = value else {
        return Ok(None);
    };
    let field = |name: &str| {
        value
            .get(name)
            .and_then(|v| v.as_str())
            .filter(|v| !v.trim().is_empty())
            .map(str::to_string)
    };
    match (
        field("id"),
        field("function"),
        value.as_object().map(|o| o.len()),
    ) {
        (Some(id), Some(function), Some(2)) => Ok(Some(NeededKey { id, function })),
        _ => Err(Error::new(
            file,
            place,
            "x-key must be {id, function}: a key of Meshery's keychain",
        )),
    }
}

/// `x-aliases: [paths]` on a path item: each alias must have the same path parameters.
fn aliases_of(
    file: &str,
    place: &str,
    path: &str,
    item: &openapiv3::PathItem,
) -> Result<Vec<String>> {
    let Some(value) = item.extensions.get("x-aliases") else {
        return Ok(Vec::new());
    };
    let params = |p: &str| -> Vec<String> {
        let mut names: Vec<String> = p
            .split('/')
            .filter(|s| s.starts_with('{') && s.ends_with('}'))
            .map(str::to_string)
            .collect();
        names.sort();
        names
    };
    let aliases = value
        .as_array()
        .ok_or_else(|| Error::new(file, place, "x-aliases must be a list of paths"))?;
    let mut out = Vec::new();
    for alias in aliases {
        let alias = alias
            .as_str()
            .filter(|a| a.starts_with('/'))
            .ok_or_else(|| Error::new(file, place, "x-aliases entries must be paths"))?;
        if params(alias) != params(path) {
            return Err(Error::new(
                file,
                place,
                format!("alias {alias} must have the same path parameters as {path}"),
            ));
        }
        out.push(alias.to_string());
    }
    Ok(out)
}

/// The schemas marked `x-page: <items key>`: objects with `page`, `pageSize`, `totalCount`
/// (integers) and the items key (an array of one $ref schema), all required.
fn page_schemas(file: &str, api: &OpenAPI) -> Result<Vec<PageSchema>> {
    let mut pages = Vec::new();
    let Some(components) = &api.components else {
        return Ok(pages);
    };
    for (name, schema) in &components.schemas {
        let ReferenceOr::Item(schema) = schema else {
            continue;
        };
        let Some(items) = schema.schema_data.extensions.get("x-page") else {
            continue;
        };
        let place = format!("components/schemas/{name}");
        let items = items
            .as_str()
            .ok_or_else(|| Error::new(file, &place, "x-page names the items key (a string)"))?;
        let SchemaKind::Type(Type::Object(object)) = &schema.schema_kind else {
            return Err(Error::new(file, &place, "x-page schema must be an object"));
        };
        for key in ["page", "pageSize", "totalCount", items] {
            if !object.required.iter().any(|r| r == key) {
                return Err(Error::new(
                    file,
                    &place,
                    format!("x-page schema must require `{key}`"),
                ));
            }
        }
        for key in ["page", "pageSize", "totalCount"] {
            match object.properties.get(key) {
                Some(ReferenceOr::Item(s))
                    if matches!(s.schema_kind, SchemaKind::Type(Type::Integer(_))) => {}
                _ => {
                    return Err(Error::new(
                        file,
                        &place,
                        format!("x-page schema: `{key}` must be an integer"),
                    ));
                }
            }
        }
        let item = match object.properties.get(items) {
            Some(ReferenceOr::Item(s)) => match &s.schema_kind {
                SchemaKind::Type(Type::Array(a)) => match &a.items {
                    Some(ReferenceOr::Reference { reference }) => ref_name(reference).to_string(),
                    _ => String::new(),
                },
                _ => String::new(),
            },
            _ => String::new(),
        };
        if item.is_empty() {
            return Err(Error::new(
                file,
                &place,
                format!("x-page schema: `{items}` must be an array of a $ref schema"),
            ));
        }
        let mut extras = Vec::new();
        for key in object.properties.keys() {
            if ["page", "pageSize", "totalCount", items].contains(&key.as_str()) {
                continue;
            }
            if object.required.iter().any(|r| r == key) {
                return Err(Error::new(
                    file,
                    &place,
                    format!(
                        "x-page schema: `{key}` must be optional (the constructor cannot fill it)"
                    ),
                ));
            }
            extras.push(key.clone());
        }
        pages.push(PageSchema {
            name: name.clone(),
            items: items.to_string(),
            item,
            extras,
        });
    }
    Ok(pages)
}

/// The statuses the generated router itself can answer must be declared, so that no
/// answer of the server is outside the spec.
fn check_responses(file: &str, op: &Operation) -> Result<()> {
    let place = op.place();
    let has = |s: u16| op.responses.iter().any(|r| r.status == s);
    let mut need = vec![(500, "every operation can fail")];
    if !op.is_public() {
        need.push((401, "the operation needs credentials"));
    }
    if !op.params.is_empty() || op.body.is_some() {
        need.push((400, "the operation takes parameters or a body"));
    }
    if op.key.is_some() {
        need.push((403, "the operation needs a key (x-key)"));
        need.push((502, "a remote provider says which keys the caller holds"));
    }
    if op.body.is_some() && !op.raw {
        need.push((413, "the operation takes a body, which is size-limited"));
        need.push((415, "the operation takes a body of a declared content type"));
    }
    for (status, why) in need {
        if !has(status) {
            return Err(Error::new(
                file,
                &place,
                format!("must declare response {status}: {why}"),
            ));
        }
    }
    let success: Vec<_> = op.responses.iter().filter(|r| r.status < 400).collect();
    if success.is_empty() {
        return Err(Error::new(file, &place, "declares no 2xx or 3xx response"));
    }
    let bodies: BTreeSet<String> = success
        .iter()
        .filter(|r| (200..300).contains(&r.status))
        .filter_map(|r| r.content.as_ref().map(|(ct, s)| format!("{ct} {s:?}")))
        .collect();
    if bodies.len() > 1 {
        return Err(Error::new(
            file,
            &place,
            "2xx responses must share one body type",
        ));
    }
    Ok(())
}

fn security_names(reqs: &[openapiv3::SecurityRequirement]) -> Vec<String> {
    let mut names: Vec<String> = reqs.iter().flat_map(|r| r.keys().cloned()).collect();
    names.dedup();
    names
}

pub fn ref_name(reference: &str) -> &str {
    reference.rsplit('/').next().unwrap_or(reference)
}

fn param(file: &str, place: &str, api: &OpenAPI, p: &ReferenceOr<Parameter>) -> Result<Param> {
    let p = match p {
        ReferenceOr::Item(p) => p.clone(),
        ReferenceOr::Reference { reference } => api
            .components
            .as_ref()
            .and_then(|c| c.parameters.get(ref_name(reference)))
            .and_then(|p| p.as_item())
            .cloned()
            .ok_or_else(|| Error::new(file, place, format!("unresolved parameter {reference}")))?,
    };
    let (location, data, allow_empty) = match &p {
        Parameter::Path { parameter_data, .. } => (Location::Path, parameter_data, false),
        Parameter::Query {
            parameter_data,
            allow_empty_value,
            ..
        } => (
            Location::Query,
            parameter_data,
            allow_empty_value.unwrap_or(false),
        ),
        Parameter::Header { parameter_data, .. } => (Location::Header, parameter_data, false),
        Parameter::Cookie { parameter_data, .. } => {
            return Err(Error::new(
                file,
                place,
                format!(
                    "parameter {} is a cookie parameter, which the client generator rejects",
                    parameter_data.name
                ),
            ));
        }
    };
    let ParameterSchemaOrContent::Schema(schema) = &data.format else {
        return Err(Error::new(
            file,
            place,
            format!("parameter {} must have a schema", data.name),
        ));
    };
    // Both only on query parameters (`x-absent` on optional ones): lists of strings.
    let list = |key: &str, allowed: bool, what: &str| -> Result<Vec<String>> {
        let fail = |why: String| Error::new(file, place, format!("parameter {}: {why}", data.name));
        match data.extensions.get(key) {
            None => Ok(Vec::new()),
            Some(_) if !allowed => Err(fail(format!("{key} only on {what}"))),
            Some(v) => v
                .as_array()
                .and_then(|a| a.iter().map(|n| n.as_str().map(str::to_string)).collect())
                .ok_or_else(|| fail(format!("{key} is a list of strings"))),
        }
    };
    let aliases = list("x-aliases", location == Location::Query, "query parameters")?;
    let absent = list(
        "x-absent",
        location == Location::Query && !data.required,
        "optional query parameters",
    )?;
    Ok(Param {
        name: data.name.clone(),
        location,
        required: data.required || location == Location::Path,
        allow_empty,
        aliases,
        absent,
        description: data.description.clone().unwrap_or_default(),
        schema: schema.clone(),
    })
}

fn body(file: &str, place: &str, api: &OpenAPI, b: &ReferenceOr<RequestBody>) -> Result<Body> {
    let b = match b {
        ReferenceOr::Item(b) => b.clone(),
        ReferenceOr::Reference { reference } => api
            .components
            .as_ref()
            .and_then(|c| c.request_bodies.get(ref_name(reference)))
            .and_then(|b| b.as_item())
            .cloned()
            .ok_or_else(|| {
                Error::new(file, place, format!("unresolved request body {reference}"))
            })?,
    };
    if b.content.len() != 1 {
        return Err(Error::new(
            file,
            place,
            "the request body must have exactly one content type (the client generator panics on more)",
        ));
    }
    let (ct, media) = b
        .content
        .first()
        .map(|(k, v)| (k.clone(), v.clone()))
        .unwrap_or_default();
    if ct.starts_with("multipart/") {
        return Err(Error::new(
            file,
            place,
            "multipart bodies are not supported by the client generator",
        ));
    }
    let schema = media
        .schema
        .ok_or_else(|| Error::new(file, place, "the request body has no schema"))?;
    let document = match b.extensions.get("x-document") {
        None => None,
        Some(v) => {
            let property = v
                .as_str()
                .ok_or_else(|| Error::new(file, place, "x-document names a property (a string)"))?;
            if ct != "application/json" {
                return Err(Error::new(file, place, "x-document needs a JSON body"));
            }
            let resolved = match &schema {
                ReferenceOr::Item(s) => Some(s.clone()),
                ReferenceOr::Reference { reference } => api
                    .components
                    .as_ref()
                    .and_then(|c| c.schemas.get(ref_name(reference)))
                    .and_then(|s| s.as_item())
                    .cloned(),
            };
            let is_string = resolved.as_ref().is_some_and(|s| match &s.schema_kind {
                SchemaKind::Type(Type::Object(o)) => o.properties.get(property).is_some_and(|p| {
                    matches!(p, ReferenceOr::Item(p) if matches!(p.schema_kind, SchemaKind::Type(Type::String(_))))
                }),
                _ => false,
            });
            if !is_string {
                return Err(Error::new(
                    file,
                    place,
                    format!("x-document: the body's schema has no string property `{property}`"),
                ));
            }
            Some(property.to_string())
        }
    };
    let snake_aliases = match b.extensions.get("x-snake-aliases") {
        None => None,
        Some(v) => Some(
            v.as_u64()
                .filter(|_| ct == "application/json")
                .ok_or_else(|| {
                    Error::new(
                        file,
                        place,
                        "x-snake-aliases on a body: a depth, on a JSON body",
                    )
                })?,
        ),
    };
    let renamed = match b.extensions.get("x-renamed") {
        None => Vec::new(),
        Some(v) => v
            .as_object()
            .filter(|_| ct == "application/json")
            .ok_or_else(|| {
                Error::new(
                    file,
                    place,
                    "x-renamed: a map of legacy to canonical keys, on a JSON body",
                )
            })?
            .iter()
            .map(|(legacy, canonical)| {
                canonical
                    .as_str()
                    .map(|c| (legacy.clone(), c.to_string()))
                    .ok_or_else(|| {
                        Error::new(file, place, "x-renamed: the canonical keys are strings")
                    })
            })
            .collect::<Result<_>>()?,
    };
    Ok(Body {
        content_type: ct,
        required: b.required,
        description: b.description.unwrap_or_default(),
        schema,
        document,
        snake_aliases,
        renamed,
    })
}

fn response(
    file: &str,
    place: &str,
    api: &OpenAPI,
    status: u16,
    r: &ReferenceOr<Response>,
) -> Result<Resp> {
    let r = match r {
        ReferenceOr::Item(r) => r.clone(),
        ReferenceOr::Reference { reference } => api
            .components
            .as_ref()
            .and_then(|c| c.responses.get(ref_name(reference)))
            .and_then(|r| r.as_item())
            .cloned()
            .ok_or_else(|| Error::new(file, place, format!("unresolved response {reference}")))?,
    };
    // Several content types: a file the handler picks the type of (a design as YAML, a
    // chart or an image); each is a file (`format: binary`) or YAML, sent as bytes.
    let others: Vec<String> = r.content.keys().skip(1).cloned().collect();
    if !others.is_empty() {
        for (ct, media) in &r.content {
            let file_like = ct.ends_with("yaml")
                || media.schema.as_ref().is_some_and(|s| {
                    matches!(s, ReferenceOr::Item(s) if matches!(
                        &s.schema_kind,
                        SchemaKind::Type(Type::String(st))
                            if matches!(st.format, openapiv3::VariantOrUnknownOrEmpty::Item(openapiv3::StringFormat::Binary))
                    ))
                });
            if !file_like {
                return Err(Error::new(
                    file,
                    place,
                    format!(
                        "response {status} has several content types: each must be a file (`format: binary`) or YAML, and {ct} is neither"
                    ),
                ));
            }
        }
    }
    let content = match r.content.first() {
        None => None,
        Some((ct, media)) => {
            let schema = media.schema.clone().ok_or_else(|| {
                Error::new(
                    file,
                    place,
                    format!("response {status} has content without a schema"),
                )
            })?;
            Some((ct.clone(), schema))
        }
    };
    let mut headers = Vec::new();
    for (name, h) in &r.headers {
        let h = h.as_item().ok_or_else(|| {
            Error::new(
                file,
                place,
                format!("response header {name} must not be a $ref"),
            )
        })?;
        let multi = matches!(
            &h.format,
            openapiv3::ParameterSchemaOrContent::Schema(ReferenceOr::Item(s))
                if matches!(s.schema_kind, SchemaKind::Type(Type::Array(_)))
        );
        headers.push(RespHeader {
            name: name.clone(),
            required: h.required,
            description: h.description.clone().unwrap_or_default(),
            multi,
        });
    }
    Ok(Resp {
        status,
        description: r.description.clone(),
        content,
        other_types: others,
        headers,
    })
}

/// A short, human type name of a schema, for docs and messages.
pub fn describe(schema: &ReferenceOr<Schema>) -> String {
    match schema {
        ReferenceOr::Reference { reference } => ref_name(reference).to_string(),
        ReferenceOr::Item(s) => describe_schema(s),
    }
}

pub fn describe_boxed(schema: &ReferenceOr<Box<Schema>>) -> String {
    match schema {
        ReferenceOr::Reference { reference } => ref_name(reference).to_string(),
        ReferenceOr::Item(s) => describe_schema(s),
    }
}

pub fn describe_schema(s: &Schema) -> String {
    let base = match &s.schema_kind {
        SchemaKind::Type(Type::String(st)) => {
            if !st.enumeration.is_empty() {
                let vals: Vec<String> = st.enumeration.iter().flatten().cloned().collect();
                format!("string ({})", vals.join(" \\| "))
            } else {
                match &st.format {
                    openapiv3::VariantOrUnknownOrEmpty::Item(f) => {
                        format!("string ({f:?})").to_lowercase()
                    }
                    openapiv3::VariantOrUnknownOrEmpty::Unknown(f) => format!("string ({f})"),
                    openapiv3::VariantOrUnknownOrEmpty::Empty => "string".into(),
                }
            }
        }
        SchemaKind::Type(Type::Integer(_)) => "integer".into(),
        SchemaKind::Type(Type::Number(_)) => "number".into(),
        SchemaKind::Type(Type::Boolean(_)) => "boolean".into(),
        SchemaKind::Type(Type::Array(a)) => match &a.items {
            Some(items) => format!("array of {}", describe_boxed(items)),
            None => "array".into(),
        },
        SchemaKind::Type(Type::Object(o)) => match &o.additional_properties {
            Some(openapiv3::AdditionalProperties::Schema(s)) if o.properties.is_empty() => {
                format!("map of {}", describe(s))
            }
            _ => "object".into(),
        },
        _ => "any".into(),
    };
    if s.schema_data.nullable {
        format!("{base}, nullable")
    } else {
        base
    }
}
