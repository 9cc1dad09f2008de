//! The REST server side: one trait per tag, a request struct and a response enum per
//! operation, and `router()`, which extracts and validates every input, runs the auth hook
//! named by the operation's `security`, and encodes only the responses the spec declares.

use heck::{ToPascalCase, ToSnakeCase};
use openapiv3::{ReferenceOr, Schema, SchemaKind, Type};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::openapi::{Location, Operation, Spec, ref_name};
use crate::rest_client::MODELS_PATH;
use crate::{Error, Result, pretty};

fn models_path() -> TokenStream {
    MODELS_PATH.parse().unwrap_or_default()
}

fn model(name: &str) -> TokenStream {
    let m = models_path();
    let ident = format_ident!("{}", name);
    quote!(#m::#ident)
}

/// The variant name of a status code.
pub fn variant_name(status: u16) -> String {
    match status {
        200 => "Ok",
        201 => "Created",
        202 => "Accepted",
        204 => "NoContent",
        301 => "MovedPermanently",
        302 => "Found",
        303 => "SeeOther",
        304 => "NotModified",
        307 => "TemporaryRedirect",
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        410 => "Gone",
        413 => "PayloadTooLarge",
        415 => "UnsupportedMediaType",
        422 => "UnprocessableEntity",
        429 => "TooManyRequests",
        500 => "InternalServerError",
        501 => "NotImplemented",
        502 => "BadGateway",
        503 => "ServiceUnavailable",
        504 => "GatewayTimeout",
        other => return format!("Status{other}"),
    }
    .to_string()
}

/// Rust type of a JSON schema used in a parameter or body.
/// `type: string, format: binary`: a file, sent as its bytes.
fn is_binary(schema: &ReferenceOr<Schema>) -> bool {
    matches!(schema, ReferenceOr::Item(s) if matches!(
        &s.schema_kind,
        SchemaKind::Type(Type::String(st))
            if matches!(st.format, openapiv3::VariantOrUnknownOrEmpty::Item(openapiv3::StringFormat::Binary))
    ))
}

fn rust_type(spec: &Spec, place: &str, schema: &ReferenceOr<Schema>) -> Result<TokenStream> {
    match schema {
        ReferenceOr::Reference { reference } => Ok(model(ref_name(reference))),
        ReferenceOr::Item(s) => inline_type(spec, place, s),
    }
}

fn inline_type(spec: &Spec, place: &str, s: &Schema) -> Result<TokenStream> {
    let t = match &s.schema_kind {
        SchemaKind::Type(Type::String(st)) => match &st.format {
            openapiv3::VariantOrUnknownOrEmpty::Item(openapiv3::StringFormat::DateTime) => {
                quote!(::chrono::DateTime<::chrono::Utc>)
            }
            _ => quote!(::std::string::String),
        },
        SchemaKind::Type(Type::Integer(i)) => match &i.format {
            openapiv3::VariantOrUnknownOrEmpty::Item(openapiv3::IntegerFormat::Int32) => {
                quote!(i32)
            }
            _ => quote!(i64),
        },
        SchemaKind::Type(Type::Number(_)) => quote!(f64),
        SchemaKind::Type(Type::Boolean(_)) => quote!(bool),
        SchemaKind::Type(Type::Array(a)) => {
            let items = match &a.items {
                Some(ReferenceOr::Reference { reference }) => model(ref_name(reference)),
                Some(ReferenceOr::Item(s)) => inline_type(spec, place, s)?,
                None => quote!(::serde_json::Value),
            };
            quote!(::std::vec::Vec<#items>)
        }
        SchemaKind::Type(Type::Object(o)) if o.properties.is_empty() => {
            match &o.additional_properties {
                Some(openapiv3::AdditionalProperties::Schema(inner)) => {
                    let inner = rust_type(spec, place, inner)?;
                    quote!(::std::collections::BTreeMap<::std::string::String, #inner>)
                }
                _ => quote!(::serde_json::Map<::std::string::String, ::serde_json::Value>),
            }
        }
        _ => {
            return Err(Error::new(
                &spec.file,
                place,
                "inline object schemas with properties are not supported here; use a $ref to components/schemas",
            ));
        }
    };
    Ok(if s.schema_data.nullable {
        quote!(::std::option::Option<#t>)
    } else {
        t
    })
}

fn is_scalar_param(schema: &ReferenceOr<Schema>) -> bool {
    match schema {
        ReferenceOr::Reference { .. } => true,
        ReferenceOr::Item(s) => matches!(
            s.schema_kind,
            SchemaKind::Type(
                Type::String(_) | Type::Integer(_) | Type::Number(_) | Type::Boolean(_)
            )
        ),
    }
}

/// Checks a parsed parameter value against the schema's constraints.
fn constraint_checks(
    name: &str,
    loc: &str,
    schema: &ReferenceOr<Schema>,
    value: TokenStream,
) -> TokenStream {
    let ReferenceOr::Item(s) = schema else {
        return quote!();
    };
    let mut checks = Vec::new();
    match &s.schema_kind {
        SchemaKind::Type(Type::String(st)) => {
            if let Some(min) = st.min_length {
                let msg = format!("must be at least {min} characters long");
                checks.push(quote! {
                    if #value.chars().count() < #min {
                        return Err(Rejection::InvalidParameter { name: #name, location: #loc, reason: #msg.into() });
                    }
                });
            }
            if let Some(max) = st.max_length {
                let msg = format!("must be at most {max} characters long");
                checks.push(quote! {
                    if #value.chars().count() > #max {
                        return Err(Rejection::InvalidParameter { name: #name, location: #loc, reason: #msg.into() });
                    }
                });
            }
            if let Some(pattern) = &st.pattern {
                let msg = format!("must match {pattern}");
                checks.push(quote! {
                    {
                        // ECMA-262 syntax, as JSON Schema says; compiled once.
                        static PATTERN: ::std::sync::OnceLock<::std::option::Option<::regress::Regex>> =
                            ::std::sync::OnceLock::new();
                        let re = PATTERN.get_or_init(|| ::regress::Regex::new(#pattern).ok());
                        if re.as_ref().is_some_and(|re| re.find(#value.as_str()).is_none()) {
                            return Err(Rejection::InvalidParameter { name: #name, location: #loc, reason: #msg.into() });
                        }
                    }
                });
            }
            let allowed: Vec<String> = st.enumeration.iter().flatten().cloned().collect();
            if !allowed.is_empty() {
                let msg = format!("must be one of: {}", allowed.join(", "));
                checks.push(quote! {
                    if ![#(#allowed),*].contains(&#value.as_str()) {
                        return Err(Rejection::InvalidParameter { name: #name, location: #loc, reason: #msg.into() });
                    }
                });
            }
        }
        SchemaKind::Type(Type::Number(nt)) => {
            if let Some(min) = nt.minimum {
                let msg = format!("must be at least {min}");
                checks.push(quote! {
                    if !(#value >= #min) {
                        return Err(Rejection::InvalidParameter { name: #name, location: #loc, reason: #msg.into() });
                    }
                });
            }
            if let Some(max) = nt.maximum {
                let msg = format!("must be at most {max}");
                checks.push(quote! {
                    if !(#value <= #max) {
                        return Err(Rejection::InvalidParameter { name: #name, location: #loc, reason: #msg.into() });
                    }
                });
            }
        }
        SchemaKind::Type(Type::Integer(it)) => {
            if let Some(min) = it.minimum {
                let msg = format!("must be at least {min}");
                checks.push(quote! {
                    if (#value as i64) < #min {
                        return Err(Rejection::InvalidParameter { name: #name, location: #loc, reason: #msg.into() });
                    }
                });
            }
            if let Some(max) = it.maximum {
                let msg = format!("must be at most {max}");
                checks.push(quote! {
                    if (#value as i64) > #max {
                        return Err(Rejection::InvalidParameter { name: #name, location: #loc, reason: #msg.into() });
                    }
                });
            }
        }
        _ => {}
    }
    quote!(#(#checks)*)
}

struct OpCode {
    statics: TokenStream,
    types: TokenStream,
    trait_method: TokenStream,
    handler: TokenStream,
    static_ident: proc_macro2::Ident,
    handler_ident: proc_macro2::Ident,
}

fn operation(spec: &Spec, op: &Operation) -> Result<OpCode> {
    let place = op.place();
    let pascal = op.id.to_pascal_case();
    let snake = format_ident!("{}", op.id.to_snake_case());
    let static_ident = format_ident!("{}", op.id.to_snake_case().to_uppercase());
    let handler_ident = format_ident!("handle_{}", op.id.to_snake_case());
    let request_ident = format_ident!("{}Request", pascal);
    let response_ident = format_ident!("{}Response", pascal);
    let (id, method, path, tag) = (&op.id, &op.method, &op.path, &op.tag);
    let security = &op.security;
    let statuses: Vec<u16> = op.responses.iter().map(|r| r.status).collect();
    let aliases = op.aliases.iter();
    let key = match &op.key {
        Some(k) => {
            let (key_id, function) = (&k.id, &k.function);
            quote!(::std::option::Option::Some(NeededKey { id: #key_id, function: #function }))
        }
        None => quote!(::std::option::Option::None),
    };
    let statics = quote! {
        #[doc = concat!("`", #method, " ", #path, "`")]
        pub static #static_ident: Operation = Operation {
            id: #id,
            method: #method,
            path: #path,
            tag: #tag,
            security: &[#(#security),*],
            statuses: &[#(#statuses),*],
            aliases: &[#(#aliases),*],
            key: #key,
        };
    };
    let doc = format!("{}\n\n{}", op.summary, op.description.trim());
    let (who_field, who_type) = if op.is_public() {
        (format_ident!("caller"), quote!(Self::Caller))
    } else {
        (format_ident!("session"), quote!(Self::Session))
    };
    let guard_call = if op.is_public() {
        quote!(api.identify(op, &mut parts).await)
    } else {
        quote!(api.authenticate(op, &mut parts).await)
    };

    if op.raw {
        let trait_method = quote! {
            #[doc = #doc]
            #[doc = ""]
            #[doc = "Raw operation: the handler reads the request itself."]
            fn #snake(&self, #who_field: #who_type, request: ::axum::extract::Request)
                -> impl ::std::future::Future<Output = ::axum::response::Response> + Send;
        };
        let tag_bound = tag_trait(tag);
        let handler = quote! {
            async fn #handler_ident<A: #tag_bound>(
                ::axum::extract::State(api): ::axum::extract::State<A>,
                request: ::axum::extract::Request,
            ) -> ::axum::response::Response {
                let op = &#static_ident;
                let (mut parts, body) = request.into_parts();
                let who = match #guard_call {
                    Ok(who) => who,
                    Err(response) => return response,
                };
                api.#snake(who, ::axum::extract::Request::from_parts(parts, body)).await
            }
        };
        return Ok(OpCode {
            statics,
            types: quote!(),
            trait_method,
            handler,
            static_ident,
            handler_ident,
        });
    }

    // Request struct and its extraction.
    let mut fields = Vec::new();
    let mut extract = Vec::new();
    let mut inits = Vec::new();
    let has_path = op.params.iter().any(|p| p.location == Location::Path);
    if has_path {
        extract.push(quote! {
            let __path = rt::path_params(&mut parts).await?;
        });
    }
    let has_query = op.params.iter().any(|p| p.location == Location::Query);
    if has_query {
        extract.push(quote! { let __query = rt::query_pairs(&parts)?; });
    }
    for p in &op.params {
        let snake_name = p.name.to_snake_case();
        if matches!(snake_name.as_str(), "body" | "session" | "caller")
            || snake_name.starts_with("__")
        {
            return Err(Error::new(
                &spec.file,
                &place,
                format!("parameter name {:?} is reserved", p.name),
            ));
        }
        let field = crate::ident(&snake_name);
        let name = &p.name;
        let loc = p.location.as_str();
        let pdoc = p.description.clone();
        let values = match p.location {
            Location::Path => quote!(rt::values_of_path(&__path, #name)),
            Location::Query if p.aliases.is_empty() => {
                quote!(rt::values_of_query(&__query, #name))
            }
            Location::Query => {
                let aliases = &p.aliases;
                quote!(rt::values_of_query_any(&__query, &[#name, #(#aliases),*]))
            }
            Location::Header => quote!(rt::values_of_header(&parts, #name)?),
        };
        let is_array = matches!(&p.schema, ReferenceOr::Item(s) if matches!(s.schema_kind, SchemaKind::Type(Type::Array(_))));
        if is_array {
            let ReferenceOr::Item(s) = &p.schema else {
                unreachable!()
            };
            let SchemaKind::Type(Type::Array(a)) = &s.schema_kind else {
                unreachable!()
            };
            let item_schema = match &a.items {
                Some(ReferenceOr::Reference { reference }) => ReferenceOr::Reference {
                    reference: reference.clone(),
                },
                Some(ReferenceOr::Item(b)) => ReferenceOr::Item((**b).clone()),
                None => {
                    return Err(Error::new(
                        &spec.file,
                        &place,
                        format!("array parameter {name} needs items"),
                    ));
                }
            };
            if !is_scalar_param(&item_schema) {
                return Err(Error::new(
                    &spec.file,
                    &place,
                    format!("parameter {name}: arrays of scalars only"),
                ));
            }
            let item = rust_type(spec, &place, &item_schema)?;
            fields.push(quote! { #[doc = #pdoc] pub #field: ::std::vec::Vec<#item>, });
            let required_check = if p.required {
                quote! {
                    if #field.is_empty() {
                        return Err(Rejection::MissingParameter { name: #name, location: #loc });
                    }
                }
            } else {
                quote!()
            };
            let item_checks = constraint_checks(name, loc, &item_schema, quote!((*value)));
            let item_loop = if item_checks.is_empty() {
                quote!()
            } else {
                quote! {
                    for value in &#field {
                        #item_checks
                    }
                }
            };
            let mut count_checks = Vec::new();
            if let Some(max) = a.max_items {
                let msg = format!("must be given at most {max} times");
                count_checks.push(quote! {
                    if #field.len() > #max {
                        return Err(Rejection::InvalidParameter { name: #name, location: #loc, reason: #msg.into() });
                    }
                });
            }
            if let Some(min) = a.min_items.filter(|m| *m > 0) {
                let msg = format!("must be given at least {min} times");
                count_checks.push(quote! {
                    if !#field.is_empty() && #field.len() < #min {
                        return Err(Rejection::InvalidParameter { name: #name, location: #loc, reason: #msg.into() });
                    }
                });
            }
            extract.push(quote! {
                let #field: ::std::vec::Vec<#item> = rt::parse_all(#values, #name, #loc)?;
                #required_check
                #(#count_checks)*
                #item_loop
            });
        } else {
            if !is_scalar_param(&p.schema) {
                return Err(Error::new(
                    &spec.file,
                    &place,
                    format!("parameter {name} must be a scalar or an array of scalars"),
                ));
            }
            let ty = rust_type(spec, &place, &p.schema)?;
            let checks = constraint_checks(name, loc, &p.schema, quote!(value));
            if p.required {
                fields.push(quote! { #[doc = #pdoc] pub #field: #ty, });
                extract.push(quote! {
                    let #field: #ty = match rt::parse_one::<#ty>(#values, #name, #loc)? {
                        Some(value) => { #checks value }
                        None => return Err(Rejection::MissingParameter { name: #name, location: #loc }),
                    };
                });
            } else {
                // `allowEmptyValue`: an empty value counts as absent (Meshery's clients send
                // `from=&to=`).
                let values = if p.allow_empty {
                    quote!(rt::drop_empty(#values))
                } else {
                    values
                };
                // `x-absent`: literal values that count as absent (`undefined`).
                let values = if p.absent.is_empty() {
                    values
                } else {
                    let absent = &p.absent;
                    quote!(rt::drop_values(#values, &[#(#absent),*]))
                };
                fields.push(quote! { #[doc = #pdoc] pub #field: ::std::option::Option<#ty>, });
                extract.push(quote! {
                    let #field: ::std::option::Option<#ty> = match rt::parse_one::<#ty>(#values, #name, #loc)? {
                        Some(value) => { #checks Some(value) }
                        None => None,
                    };
                });
            }
        }
        inits.push(quote!(#field,));
    }
    if let Some(b) = &op.body {
        let ct = &b.content_type;
        let is_json = ct == "application/json";
        let ty = if is_json {
            rust_type(spec, &place, &b.schema)?
        } else {
            quote!(::std::string::String)
        };
        // JSON bodies are checked against their schema (the hook) before they are typed.
        let parse = match &b.document {
            Some(property) => quote!(rt::json_or_document(&__bytes, #property)?),
            None => quote!(rt::decode_json(&__bytes)?),
        };
        let mut rename = match b.snake_aliases {
            Some(depth) => {
                let depth = depth as usize;
                quote!(rt::camel_case_keys(&mut __value, #depth);)
            }
            None => quote!(),
        };
        for (legacy, canonical) in &b.renamed {
            rename.extend(quote!(rt::rename_key(&mut __value, #legacy, #canonical);));
        }
        let decode = if is_json {
            quote!({
                #[allow(unused_mut)]
                let mut __value: ::serde_json::Value = #parse;
                #rename
                api.check_body(op, &__value)?;
                rt::from_value::<#ty>(__value)?
            })
        } else {
            quote!(rt::decode_text(&__bytes)?)
        };
        let bdoc = b.description.clone();
        // A body that may be a document comes as text, YAML or JSON.
        let ct = if b.document.is_some() {
            "text/plain"
        } else {
            ct.as_str()
        };
        if b.required {
            fields.push(quote! { #[doc = #bdoc] pub body: #ty, });
            extract.push(quote! {
                let __bytes = rt::read_body(&parts, __stream, __limit, #ct).await?;
                if __bytes.is_empty() {
                    return Err(Rejection::MissingBody);
                }
                let body: #ty = #decode;
            });
        } else {
            fields.push(quote! { #[doc = #bdoc] pub body: ::std::option::Option<#ty>, });
            extract.push(quote! {
                let __bytes = rt::read_body(&parts, __stream, __limit, #ct).await?;
                let body: ::std::option::Option<#ty> = if __bytes.is_empty() { None } else { Some(#decode) };
            });
        }
        inits.push(quote!(body,));
    } else {
        extract.push(quote! { let _ = (__stream, __limit); });
    }

    // Response enum.
    let mut variants = Vec::new();
    let mut encode_arms = Vec::new();
    let mut status_arms = Vec::new();
    let mut error_arms = Vec::new();
    let error_model = model(&spec.error_schema);
    for r in &op.responses {
        let variant = format_ident!("{}", variant_name(r.status));
        let status = r.status;
        let rdoc = format!("{}: {}", r.status, r.description.trim());
        let body_ty = match &r.content {
            None => None,
            Some((ct, _)) if !r.other_types.is_empty() => {
                // One of several file types, chosen by the handler.
                Some((quote!(rt::File), ct.clone(), false))
            }
            Some((ct, schema)) => {
                if ct == "application/json" {
                    Some((rust_type(spec, &place, schema)?, ct.clone(), true))
                } else if ct == "text/event-stream" {
                    Some((quote!(rt::EventStream), ct.clone(), false))
                } else if is_binary(schema) {
                    // A file (an archive): bytes, sent as they are.
                    Some((quote!(::std::vec::Vec<u8>), ct.clone(), false))
                } else {
                    // A YAML document's schema describes what a client parses it into;
                    // the handler still sends the text. Other text bodies are strings.
                    let is_string = matches!(schema, ReferenceOr::Item(s) if matches!(s.schema_kind, SchemaKind::Type(Type::String(_))));
                    if !is_string && !ct.ends_with("yaml") {
                        return Err(Error::new(
                            &spec.file,
                            &place,
                            format!(
                                "response {status}: {ct} bodies must have `type: string` (YAML bodies may have any schema)"
                            ),
                        ));
                    }
                    Some((quote!(::std::string::String), ct.clone(), false))
                }
            }
        };
        let aliases = op.snake_aliases.filter(|_| r.status < 400);
        let binary = r.content.as_ref().is_some_and(|(_, s)| is_binary(s));
        let encode_body = |body: TokenStream| match (&body_ty, aliases) {
            (None, _) => quote!(rt::empty(#status)),
            (Some((_, _, true)), None) => quote!(rt::json(#status, &#body)?),
            (Some((_, _, true)), Some(depth)) => match op.page_items_aliases {
                Some(items) => {
                    let (depth, items) = (depth as usize, items as usize);
                    quote!(rt::json_with_snake_aliases_at(#status, &#body, &[#depth, #items])?)
                }
                None => {
                    let depth = depth as usize;
                    quote!(rt::json_with_snake_aliases(#status, &#body, #depth)?)
                }
            },
            (Some((_, ct, false)), _) if ct == "text/event-stream" => {
                quote!(rt::sse(#status, #body))
            }
            (Some((_, ct, false)), _) if !r.other_types.is_empty() => {
                let others = &r.other_types;
                quote!(rt::file(#status, &[#ct, #(#others),*], #body)?)
            }
            (Some((_, ct, false)), _) if binary => quote!(rt::bytes(#status, #ct, #body)),
            (Some((_, ct, false)), _) => quote!(rt::text(#status, #ct, #body)),
        };
        status_arms.push(if body_ty.is_none() && r.headers.is_empty() {
            quote!(Self::#variant => #status,)
        } else if r.headers.is_empty() {
            quote!(Self::#variant(_) => #status,)
        } else {
            quote!(Self::#variant { .. } => #status,)
        });
        if r.headers.is_empty() {
            match &body_ty {
                None => {
                    variants.push(quote! { #[doc = #rdoc] #variant, });
                    let enc = encode_body(quote!());
                    encode_arms.push(quote! { Self::#variant => #enc, });
                }
                Some((ty, _, _)) => {
                    variants.push(quote! { #[doc = #rdoc] #variant(#ty), });
                    let enc = encode_body(quote!(body));
                    encode_arms.push(quote! { Self::#variant(body) => #enc, });
                }
            }
        } else {
            let mut vfields = Vec::new();
            let mut names = Vec::new();
            let mut sets = Vec::new();
            if let Some((ty, _, _)) = &body_ty {
                vfields.push(quote!(body: #ty,));
                names.push(quote!(body));
            }
            for h in &r.headers {
                let f = crate::ident(&h.name.to_snake_case());
                let hname = h.name.to_ascii_lowercase();
                let hdoc = h.description.clone();
                names.push(quote!(#f));
                if h.multi {
                    vfields
                        .push(quote!(#[doc = #hdoc] #f: ::std::vec::Vec<::std::string::String>,));
                    sets.push(quote! {
                        for value in &#f {
                            rt::set_header(&mut response, #hname, value)?;
                        }
                    });
                } else if h.required {
                    vfields.push(quote!(#[doc = #hdoc] #f: ::std::string::String,));
                    sets.push(quote!(rt::set_header(&mut response, #hname, &#f)?;));
                } else {
                    vfields.push(
                        quote!(#[doc = #hdoc] #f: ::std::option::Option<::std::string::String>,),
                    );
                    sets.push(quote! {
                        if let Some(value) = &#f {
                            rt::set_header(&mut response, #hname, value)?;
                        }
                    });
                }
            }
            variants.push(quote! { #[doc = #rdoc] #variant { #(#vfields)* }, });
            let enc = encode_body(quote!(body));
            encode_arms.push(quote! {
                Self::#variant { #(#names),* } => {
                    let mut response = #enc;
                    #(#sets)*
                    response
                }
            });
        }
        if r.status >= 400 {
            error_arms.push(quote!(#status => Self::#variant(error),));
        }
    }
    // Event streams are not Debug.
    let streams = op.responses.iter().any(|r| {
        r.content
            .as_ref()
            .is_some_and(|(ct, _)| ct == "text/event-stream")
    });
    let derive_debug = if streams {
        quote!()
    } else {
        quote!(#[derive(Debug)])
    };
    let summary_doc = format!("Response of `{} {}`.", op.method, op.path);
    let request_doc = format!(
        "Inputs of `{} {}`, extracted and validated.",
        op.method, op.path
    );
    let generic = if op.is_public() {
        format_ident!("C")
    } else {
        format_ident!("S")
    };
    let types = quote! {
        #[doc = #request_doc]
        #[derive(Debug)]
        pub struct #request_ident<#generic> {
            /// Who is calling, as the auth hook established.
            pub #who_field: #generic,
            #(#fields)*
        }

        #[doc = #summary_doc]
        #derive_debug
        pub enum #response_ident {
            #(#variants)*
        }

        impl #response_ident {
            /// The HTTP status of this response.
            pub fn status(&self) -> u16 {
                match self { #(#status_arms)* }
            }

            /// Encodes the response; fails only on a header value HTTP cannot carry.
            pub fn into_http(self) -> ::std::result::Result<::axum::response::Response, Rejection> {
                Ok(match self { #(#encode_arms)* })
            }
        }

        impl FromApiError for #response_ident {
            fn from_error(status: u16, error: #error_model) -> Self {
                match status {
                    #(#error_arms)*
                    _ => Self::InternalServerError(error),
                }
            }
        }
    };

    let trait_method = quote! {
        #[doc = #doc]
        #[doc = ""]
        #[doc = "An `Err` becomes the response the spec declares for its status (see `Hooks::error_body`)."]
        fn #snake(&self, request: #request_ident<#who_type>)
            -> impl ::std::future::Future<Output = ::std::result::Result<#response_ident, Self::Error>> + Send;
    };
    let tag_bound = tag_trait(tag);
    let handler = quote! {
        async fn #handler_ident<A: #tag_bound>(
            ::axum::extract::State(api): ::axum::extract::State<A>,
            request: ::axum::extract::Request,
        ) -> ::axum::response::Response {
            let op = &#static_ident;
            let (mut parts, __stream) = request.into_parts();
            let __who = match #guard_call {
                Ok(who) => who,
                Err(response) => return response,
            };
            let __limit = api.body_limit(op);
            let extracted = async {
                #(#extract)*
                Ok::<_, Rejection>(#request_ident { #who_field: __who, #(#inits)* })
            }
            .await;
            let request = match extracted {
                Ok(request) => request,
                Err(rejection) => return api.reject(Some(op), rejection),
            };
            let response = match api.#snake(request).await {
                Ok(response) => response,
                Err(error) => {
                    let (status, body) = api.error_body(op, error);
                    <#response_ident as FromApiError>::from_error(status, body)
                }
            };
            match response.into_http() {
                Ok(response) => response,
                Err(rejection) => api.reject(Some(op), rejection),
            }
        }
    };
    Ok(OpCode {
        statics,
        types,
        trait_method,
        handler,
        static_ident,
        handler_ident,
    })
}

fn tag_trait(tag: &str) -> proc_macro2::Ident {
    format_ident!("{}Api", tag.to_pascal_case())
}

pub fn generate(spec: &Spec) -> Result<String> {
    let mut statics = Vec::new();
    let mut types = Vec::new();
    let mut handlers = Vec::new();
    let mut op_refs = Vec::new();
    let mut tags: Vec<String> = spec.operations.iter().map(|o| o.tag.clone()).collect();
    tags.sort();
    tags.dedup();
    let mut trait_methods: Vec<(String, Vec<TokenStream>)> =
        tags.iter().map(|t| (t.clone(), Vec::new())).collect();
    // path -> [(method, handler ident)], in the spec's sorted order.
    let mut routes: Vec<(String, Vec<(String, proc_macro2::Ident)>)> = Vec::new();
    for op in &spec.operations {
        let code = operation(spec, op)?;
        statics.push(code.statics);
        types.push(code.types);
        handlers.push(code.handler);
        let s = &code.static_ident;
        op_refs.push(quote!(&#s));
        if let Some((_, methods)) = trait_methods.iter_mut().find(|(t, _)| t == &op.tag) {
            methods.push(code.trait_method);
        }
        for route in std::iter::once(op.route()).chain(op.aliases.iter().cloned()) {
            let handler = code.handler_ident.clone();
            match routes.iter_mut().find(|(p, _)| p == &route) {
                Some((_, ms)) => ms.push((op.method.clone(), handler)),
                None => routes.push((route, vec![(op.method.clone(), handler)])),
            }
        }
    }
    let tag_traits = trait_methods.iter().map(|(tag, methods)| {
        let ident = tag_trait(tag);
        let desc = spec
            .api
            .tags
            .iter()
            .find(|t| &t.name == tag)
            .and_then(|t| t.description.clone())
            .unwrap_or_default();
        let doc = format!("Operations tagged `{tag}`. {desc}");
        quote! {
            #[doc = #doc]
            pub trait #ident: Hooks {
                #(#methods)*
            }
        }
    });
    let all_bounds: Vec<_> = tags.iter().map(|t| tag_trait(t)).collect();
    let route_calls = routes.iter().map(|(path, methods)| {
        let ons = methods.iter().map(|(m, h)| {
            let filter = format_ident!("{}", m);
            quote!(.on(::axum::routing::MethodFilter::#filter, #h::<A>))
        });
        quote! {
            .route(#path, ::axum::routing::MethodRouter::new() #(#ons)* .fallback(method_not_allowed::<A>))
        }
    });
    let page_impls: Vec<TokenStream> = spec
        .pages
        .iter()
        .map(|p| {
            let page = model(&p.name);
            let item = model(&p.item);
            let items = crate::ident(&p.items.to_snake_case());
            let extras = p.extras.iter().map(|e| crate::ident(&e.to_snake_case()));
            quote! {
                impl Page for #page {
                    type Item = #item;
                    fn from_parts(page: i64, page_size: i64, total_count: i64, items: ::std::vec::Vec<#item>) -> Self {
                        Self { page, page_size, total_count, #items: items, #(#extras: ::std::default::Default::default(),)* }
                    }
                }
            }
        })
        .collect();
    let error_model = model(&spec.error_schema);
    let tokens = quote! {
        pub use self::rt::Rejection;

        /// What the generator knows of an operation, for hooks, logs and tests.
        #[derive(Debug)]
        pub struct Operation {
            pub id: &'static str,
            pub method: &'static str,
            pub path: &'static str,
            pub tag: &'static str,
            /// Security schemes that can satisfy the operation; empty for a public one.
            pub security: &'static [&'static str],
            /// Every status the spec declares for it.
            pub statuses: &'static [u16],
            /// Other paths it is served at (`x-aliases`).
            pub aliases: &'static [&'static str],
            /// The key of Meshery's keychain the caller must hold (`x-key`);
            /// `Hooks::authenticate` checks it.
            pub key: ::std::option::Option<NeededKey>,
        }

        /// A key of Meshery's keychain: its id and what it allows.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct NeededKey {
            pub id: &'static str,
            pub function: &'static str,
        }

        impl Operation {
            pub fn is_public(&self) -> bool {
                self.security.is_empty()
            }
        }

        #(#statics)*

        /// Every operation of the spec, sorted by path then method.
        pub static OPERATIONS: &[&Operation] = &[#(#op_refs),*];

        /// The server-wide hooks every operation goes through. The auth hook is called once
        /// per request: `authenticate` for operations with a `security` requirement (its
        /// failure is the response), `identify` for public ones.
        pub trait Hooks: Clone + Send + Sync + 'static {
            /// Who calls a secured operation.
            type Session: Send + 'static;
            /// Who calls a public operation (may be anonymous).
            type Caller: Send + 'static;
            /// What an operation fails with; [`Hooks::error_body`] turns it into the shared
            /// error schema, so handlers propagate failures with `?`.
            type Error: Send + 'static;

            fn authenticate(&self, op: &'static Operation, parts: &mut ::axum::http::request::Parts)
                -> impl ::std::future::Future<Output = ::std::result::Result<Self::Session, ::axum::response::Response>> + Send;

            fn identify(&self, op: &'static Operation, parts: &mut ::axum::http::request::Parts)
                -> impl ::std::future::Future<Output = ::std::result::Result<Self::Caller, ::axum::response::Response>> + Send;

            /// Turns a rejected request into the error response (`op` is `None` when no
            /// operation matched the method).
            fn reject(&self, op: ::std::option::Option<&'static Operation>, rejection: Rejection) -> ::axum::response::Response;

            /// The status and body of a failed operation; the response is the variant the
            /// spec declares for that status, else its 500 variant.
            fn error_body(&self, op: &'static Operation, error: Self::Error) -> (u16, #error_model);

            /// The largest request body accepted, in bytes.
            fn body_limit(&self, _op: &'static Operation) -> usize {
                1 << 20
            }

            /// Checks a JSON request body against the operation's schema before it is
            /// decoded into its type (which ignores what serde does not see, like an
            /// explicit `null` for an optional field). No check by default.
            fn check_body(&self, _op: &'static Operation, _body: &::serde_json::Value) -> ::std::result::Result<(), Rejection> {
                Ok(())
            }
        }

        /// Builds a response from the shared error schema: the variant declared for
        /// `status`, or the 500 variant (which every operation declares).
        pub trait FromApiError {
            fn from_error(status: u16, error: #error_model) -> Self;
        }

        /// A page envelope (a schema marked `x-page`), built in one place from a listing.
        pub trait Page: Sized {
            type Item;
            fn from_parts(page: i64, page_size: i64, total_count: i64, items: ::std::vec::Vec<Self::Item>) -> Self;
        }

        #(#page_impls)*

        #(#tag_traits)*

        #(#types)*

        /// The router of every operation in the spec.
        pub fn router<A>(api: A) -> ::axum::Router
        where
            A: Hooks #(+ #all_bounds)*,
        {
            ::axum::Router::new()
                #(#route_calls)*
                .with_state(api)
        }

        async fn method_not_allowed<A: Hooks>(::axum::extract::State(api): ::axum::extract::State<A>) -> ::axum::response::Response {
            api.reject(None, Rejection::MethodNotAllowed)
        }

        #(#handlers)*

        /// Helpers of the generated handlers.
        pub mod rt {
            use ::axum::body::{Body, Bytes};
            use ::axum::http::request::Parts;
            use ::axum::response::Response;

            /// Why a request was refused before reaching its handler.
            #[derive(Debug, Clone, PartialEq, Eq)]
            pub enum Rejection {
                MissingParameter { name: &'static str, location: &'static str },
                InvalidParameter { name: &'static str, location: &'static str, reason: String },
                MissingBody,
                InvalidBody { reason: String },
                UnsupportedMediaType { expected: &'static str, found: String },
                BodyTooLarge { limit: usize },
                MethodNotAllowed,
                /// The handler produced a response HTTP cannot carry.
                InvalidResponse { reason: String },
            }

            impl Rejection {
                /// The HTTP status this rejection is answered with.
                pub fn status(&self) -> u16 {
                    match self {
                        Rejection::MissingParameter { .. }
                        | Rejection::InvalidParameter { .. }
                        | Rejection::MissingBody
                        | Rejection::InvalidBody { .. } => 400,
                        Rejection::UnsupportedMediaType { .. } => 415,
                        Rejection::BodyTooLarge { .. } => 413,
                        Rejection::MethodNotAllowed => 405,
                        Rejection::InvalidResponse { .. } => 500,
                    }
                }
            }

            impl ::std::fmt::Display for Rejection {
                fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                    match self {
                        Rejection::MissingParameter { name, location } => write!(f, "missing required {location} parameter `{name}`"),
                        Rejection::InvalidParameter { name, location, reason } => write!(f, "invalid {location} parameter `{name}`: {reason}"),
                        Rejection::MissingBody => write!(f, "missing request body"),
                        Rejection::InvalidBody { reason } => write!(f, "invalid request body: {reason}"),
                        Rejection::UnsupportedMediaType { expected, found } => write!(f, "unsupported content type `{found}`; expected `{expected}`"),
                        Rejection::BodyTooLarge { limit } => write!(f, "request body larger than {limit} bytes"),
                        Rejection::MethodNotAllowed => write!(f, "method not allowed on this path"),
                        Rejection::InvalidResponse { reason } => write!(f, "the server built an invalid response: {reason}"),
                    }
                }
            }

            pub async fn path_params(parts: &mut Parts) -> Result<Vec<(String, String)>, Rejection> {
                use ::axum::extract::FromRequestParts;
                match ::axum::extract::RawPathParams::from_request_parts(parts, &()).await {
                    Ok(params) => Ok(params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
                    Err(e) => Err(Rejection::InvalidParameter { name: "path", location: "path", reason: e.to_string() }),
                }
            }

            pub fn query_pairs(parts: &Parts) -> Result<Vec<(String, String)>, Rejection> {
                Ok(::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect())
            }

            pub fn values_of_path(params: &[(String, String)], name: &str) -> Vec<String> {
                params.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()).collect()
            }

            pub fn values_of_query(pairs: &[(String, String)], name: &str) -> Vec<String> {
                pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()).collect()
            }

            /// The values of the first of `names` (a parameter, then its aliases) given.
            pub fn values_of_query_any(pairs: &[(String, String)], names: &[&str]) -> Vec<String> {
                names
                    .iter()
                    .map(|n| values_of_query(pairs, n))
                    .find(|v| !v.is_empty())
                    .unwrap_or_default()
            }

            pub fn values_of_header(parts: &Parts, name: &'static str) -> Result<Vec<String>, Rejection> {
                parts
                    .headers
                    .get_all(name)
                    .iter()
                    .map(|v| {
                        v.to_str().map(str::to_string).map_err(|_| Rejection::InvalidParameter {
                            name,
                            location: "header",
                            reason: "not visible ASCII".into(),
                        })
                    })
                    .collect()
            }

            /// The values that say something: not blank.
            pub fn drop_empty(values: Vec<String>) -> Vec<String> {
                values.into_iter().filter(|v| !v.trim().is_empty()).collect()
            }

            /// The values that are none of `absent`.
            pub fn drop_values(values: Vec<String>, absent: &[&str]) -> Vec<String> {
                values.into_iter().filter(|v| !absent.contains(&v.as_str())).collect()
            }

            /// Parses the first value, if any.
            pub fn parse_one<T: ::std::str::FromStr>(values: Vec<String>, name: &'static str, location: &'static str) -> Result<Option<T>, Rejection>
            where
                T::Err: ::std::fmt::Display,
            {
                match values.into_iter().next() {
                    None => Ok(None),
                    Some(v) => v.parse::<T>().map(Some).map_err(|e| Rejection::InvalidParameter {
                        name,
                        location,
                        reason: format!("{e} (got {v:?})"),
                    }),
                }
            }

            /// Parses every value of an array parameter. A value that is a JSON array
            /// (`["a","b"]`, Meshery's clients' form) stands for its elements.
            pub fn parse_all<T: ::std::str::FromStr>(values: Vec<String>, name: &'static str, location: &'static str) -> Result<Vec<T>, Rejection>
            where
                T::Err: ::std::fmt::Display,
            {
                values
                    .into_iter()
                    .flat_map(|v| {
                        let listed = if v.trim_start().starts_with('[') {
                            ::serde_json::from_str::<Vec<::serde_json::Value>>(&v).ok()
                        } else {
                            None
                        };
                        match listed {
                            Some(items) => items
                                .into_iter()
                                .map(|i| match i {
                                    ::serde_json::Value::String(s) => s,
                                    other => other.to_string(),
                                })
                                .collect(),
                            None => vec![v],
                        }
                    })
                    .map(|v| v.parse::<T>().map_err(|e| Rejection::InvalidParameter {
                        name,
                        location,
                        reason: format!("{e} (got {v:?})"),
                    }))
                    .collect()
            }

            /// Reads a body of the declared content type, up to `limit` bytes. A JSON body
            /// may also come as `text/plain` (what browsers send for a string body) or
            /// with no content type.
            pub async fn read_body(parts: &Parts, body: Body, limit: usize, expected: &'static str) -> Result<Bytes, Rejection> {
                if let Some(value) = parts.headers.get(::axum::http::header::CONTENT_TYPE) {
                    let found = value.to_str().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
                    let json_like = expected == "application/json"
                        && (found == "text/plain" || (found.starts_with("application/") && found.ends_with("+json")));
                    // A text body declared as text/plain carries a document (YAML, JSON).
                    let text_like = expected == "text/plain"
                        && (found.starts_with("text/") || found.ends_with("yaml") || found.ends_with("json"));
                    if found != expected && !json_like && !text_like {
                        return Err(Rejection::UnsupportedMediaType { expected, found });
                    }
                }
                let declared = parts
                    .headers
                    .get(::axum::http::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                if declared.is_some_and(|n| n > limit as u64) {
                    return Err(Rejection::BodyTooLarge { limit });
                }
                ::axum::body::to_bytes(body, limit).await.map_err(|_| Rejection::BodyTooLarge { limit })
            }

            /// A JSON object as it is; anything else (a YAML or text document, or a JSON or
            /// YAML string holding one) as `{property: document}`. A YAML mapping that has
            /// the property is that object written in YAML.
            pub fn json_or_document(bytes: &[u8], property: &str) -> Result<::serde_json::Value, Rejection> {
                if let Ok(value @ ::serde_json::Value::Object(_)) = ::serde_json::from_slice(bytes) {
                    return Ok(value);
                }
                let text = ::std::str::from_utf8(bytes).map_err(|_| Rejection::InvalidBody {
                    reason: "the body is neither JSON nor a UTF-8 document".into(),
                })?;
                let document = match ::yaml_serde::from_str::<::serde_json::Value>(text) {
                    Ok(::serde_json::Value::String(s)) => s,
                    Ok(value @ ::serde_json::Value::Object(_)) if value.get(property).is_some() => return Ok(value),
                    _ => text.to_string(),
                };
                let mut object = ::serde_json::Map::new();
                object.insert(property.to_string(), ::serde_json::Value::String(document));
                Ok(::serde_json::Value::Object(object))
            }

            /// Objects at `depth` of a request body: a snake_case key whose camelCase
            /// spelling is absent is renamed to it (older clients' spelling).
            pub fn camel_case_keys(value: &mut ::serde_json::Value, depth: usize) {
                match value {
                    ::serde_json::Value::Object(map) if depth == 0 => {
                        let snake: Vec<String> = map.keys().filter(|k| k.contains('_')).cloned().collect();
                        for key in snake {
                            let mut camel = String::with_capacity(key.len());
                            let mut upper = false;
                            for c in key.chars() {
                                if c == '_' {
                                    upper = !camel.is_empty();
                                } else if upper {
                                    camel.extend(c.to_uppercase());
                                    upper = false;
                                } else {
                                    camel.push(c);
                                }
                            }
                            // Both spellings (a whole answer sent back, aliases and
                            // all): the camelCase one is the value.
                            if let Some(v) = map.remove(&key) {
                                map.entry(camel).or_insert(v);
                            }
                        }
                    }
                    ::serde_json::Value::Object(map) => {
                        for v in map.values_mut() {
                            camel_case_keys(v, depth - 1);
                        }
                    }
                    ::serde_json::Value::Array(items) => {
                        for v in items {
                            camel_case_keys(v, depth);
                        }
                    }
                    _ => {}
                }
            }

            /// A top-level key older clients spell otherwise, renamed when the canonical
            /// one is absent.
            pub fn rename_key(value: &mut ::serde_json::Value, legacy: &str, canonical: &str) {
                if let ::serde_json::Value::Object(map) = value {
                    if !map.contains_key(canonical) {
                        if let Some(v) = map.remove(legacy) {
                            map.insert(canonical.to_string(), v);
                        }
                    }
                }
            }

            pub fn decode_json<T: ::serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Rejection> {
                ::serde_json::from_slice(bytes).map_err(|e| Rejection::InvalidBody { reason: e.to_string() })
            }

            pub fn from_value<T: ::serde::de::DeserializeOwned>(value: ::serde_json::Value) -> Result<T, Rejection> {
                ::serde_json::from_value(value).map_err(|e| Rejection::InvalidBody { reason: e.to_string() })
            }

            pub fn decode_text(bytes: &[u8]) -> Result<String, Rejection> {
                String::from_utf8(bytes.to_vec()).map_err(|e| Rejection::InvalidBody { reason: e.to_string() })
            }

            fn status(code: u16) -> ::axum::http::StatusCode {
                ::axum::http::StatusCode::from_u16(code).unwrap_or(::axum::http::StatusCode::INTERNAL_SERVER_ERROR)
            }

            pub fn empty(code: u16) -> Response {
                let mut response = Response::new(Body::empty());
                *response.status_mut() = status(code);
                response
            }

            pub fn json<T: ::serde::Serialize>(code: u16, body: &T) -> Result<Response, Rejection> {
                let bytes = ::serde_json::to_vec(body).map_err(|e| Rejection::InvalidResponse { reason: e.to_string() })?;
                let mut response = Response::new(Body::from(bytes));
                *response.status_mut() = status(code);
                response.headers_mut().insert(
                    ::axum::http::header::CONTENT_TYPE,
                    ::axum::http::HeaderValue::from_static("application/json"),
                );
                Ok(response)
            }

            /// Like [`json`], adding to each object at `depth` a snake_case copy of its
            /// camelCase keys.
            pub fn json_with_snake_aliases<T: ::serde::Serialize>(code: u16, body: &T, depth: usize) -> Result<Response, Rejection> {
                let mut value = ::serde_json::to_value(body).map_err(|e| Rejection::InvalidResponse { reason: e.to_string() })?;
                add_snake_aliases(&mut value, depth);
                json(code, &value)
            }

            /// Like [`json_with_snake_aliases`], at each of `depths`.
            pub fn json_with_snake_aliases_at<T: ::serde::Serialize>(code: u16, body: &T, depths: &[usize]) -> Result<Response, Rejection> {
                let mut value = ::serde_json::to_value(body).map_err(|e| Rejection::InvalidResponse { reason: e.to_string() })?;
                for depth in depths {
                    add_snake_aliases(&mut value, *depth);
                }
                json(code, &value)
            }

            fn add_snake_aliases(value: &mut ::serde_json::Value, depth: usize) {
                match value {
                    ::serde_json::Value::Object(map) if depth == 0 => {
                        let aliases: Vec<(String, ::serde_json::Value)> = map
                            .iter()
                            .filter(|(k, _)| k.starts_with(|c: char| c.is_ascii_lowercase()) && k.chars().any(|c| c.is_ascii_uppercase()))
                            .map(|(k, v)| (snake_case(k), v.clone()))
                            .collect();
                        for (k, v) in aliases {
                            map.entry(k).or_insert(v);
                        }
                    }
                    ::serde_json::Value::Object(map) => map.values_mut().for_each(|v| add_snake_aliases(v, depth - 1)),
                    ::serde_json::Value::Array(items) => items.iter_mut().for_each(|v| add_snake_aliases(v, depth)),
                    _ => {}
                }
            }

            fn snake_case(key: &str) -> String {
                let mut out = String::with_capacity(key.len() + 4);
                for c in key.chars() {
                    if c.is_ascii_uppercase() {
                        out.push('_');
                        out.push(c.to_ascii_lowercase());
                    } else {
                        out.push(c);
                    }
                }
                out
            }

            /// A file sent as it is (an archive).
            pub fn bytes(code: u16, content_type: &'static str, body: Vec<u8>) -> Response {
                let mut response = Response::new(Body::from(body));
                *response.status_mut() = status(code);
                response.headers_mut().insert(
                    ::axum::http::header::CONTENT_TYPE,
                    ::axum::http::HeaderValue::from_static(content_type),
                );
                response
            }

            /// A file of one of several declared content types, as the handler chose.
            #[derive(Debug)]
            pub struct File {
                pub content_type: &'static str,
                pub bytes: Vec<u8>,
            }

            /// Sends a [`File`]; a content type the operation does not declare is refused.
            pub fn file(code: u16, declared: &[&'static str], file: File) -> Result<Response, Rejection> {
                if !declared.contains(&file.content_type) {
                    return Err(Rejection::InvalidResponse {
                        reason: format!("content type {} is not declared ({declared:?})", file.content_type),
                    });
                }
                Ok(bytes(code, file.content_type, file.bytes))
            }

            pub fn text(code: u16, content_type: &'static str, body: String) -> Response {
                let mut response = Response::new(Body::from(body));
                *response.status_mut() = status(code);
                let value = if content_type.starts_with("text/") {
                    ::axum::http::HeaderValue::from_str(&format!("{content_type}; charset=utf-8"))
                        .unwrap_or(::axum::http::HeaderValue::from_static("text/plain"))
                } else {
                    ::axum::http::HeaderValue::from_static(content_type)
                };
                response.headers_mut().insert(::axum::http::header::CONTENT_TYPE, value);
                response
            }

            /// One encoded server-sent event (`data: <JSON>` and the blank line). The bytes are
            /// shared: an event sent to many subscribers is encoded once, not per subscriber.
            #[derive(Clone, Debug)]
            pub struct SseFrame(::axum::body::Bytes);

            impl SseFrame {
                /// `value` as compact JSON (see `from_json`).
                pub fn json<T: ::serde::Serialize + ?Sized>(value: &T) -> ::std::result::Result<SseFrame, ::serde_json::Error> {
                    Ok(SseFrame::from_json(&::serde_json::to_string(value)?))
                }

                /// A frame of JSON text already encoded (`serde_json::to_string`). Compact JSON
                /// has no line break outside an escape, so it fits one `data:` line; any other
                /// text is split into one `data:` line per line, as the format requires.
                pub fn from_json(json: &str) -> SseFrame {
                    SseFrame::with_id(None, json)
                }

                /// `from_json` with an `id:` line first when `id` is given (a client that
                /// reconnects sends the last one back as `Last-Event-ID`). An id with a line
                /// break or NUL cannot be sent and is left out.
                pub fn with_id(id: ::std::option::Option<&str>, json: &str) -> SseFrame {
                    SseFrame::encode(id, ::std::option::Option::None, json)
                }

                /// `from_json` as an event of type `event` (an `event:` line first): clients
                /// that only listen for messages do not take it for one.
                pub fn named(event: &str, json: &str) -> SseFrame {
                    SseFrame::encode(::std::option::Option::None, ::std::option::Option::Some(event), json)
                }

                fn encode(id: ::std::option::Option<&str>, event: ::std::option::Option<&str>, json: &str) -> SseFrame {
                    let mut buf = ::std::vec::Vec::with_capacity(json.len() + 32);
                    if let ::std::option::Option::Some(id) = id.filter(|i| !i.contains(['\n', '\r', '\0'])) {
                        buf.extend_from_slice(b"id: ");
                        buf.extend_from_slice(id.as_bytes());
                        buf.push(b'\n');
                    }
                    if let ::std::option::Option::Some(event) = event.filter(|e| !e.contains(['\n', '\r'])) {
                        buf.extend_from_slice(b"event: ");
                        buf.extend_from_slice(event.as_bytes());
                        buf.push(b'\n');
                    }
                    if json.contains(['\n', '\r']) {
                        for line in json.replace("\r\n", "\n").split(['\n', '\r']) {
                            buf.extend_from_slice(b"data: ");
                            buf.extend_from_slice(line.as_bytes());
                            buf.push(b'\n');
                        }
                        buf.push(b'\n');
                        return SseFrame(buf.into());
                    }
                    buf.extend_from_slice(b"data: ");
                    buf.extend_from_slice(json.as_bytes());
                    buf.extend_from_slice(b"\n\n");
                    SseFrame(buf.into())
                }
            }

            /// The events of a `text/event-stream` response; the stream ends the response.
            pub type EventStream = ::futures_util::stream::BoxStream<'static, SseFrame>;

            /// A comment line every this often when no event was sent, so proxies keep the
            /// connection open.
            pub const SSE_KEEP_ALIVE: ::std::time::Duration = ::std::time::Duration::from_secs(15);

            /// The frames, and a comment when a keep-alive period passed with none. The timer
            /// is a fixed interval, not reset per event, so an event costs no timer work.
            struct KeepAlive {
                events: EventStream,
                tick: ::tokio::time::Interval,
                quiet: bool,
            }

            impl ::futures_util::Stream for KeepAlive {
                type Item = ::std::result::Result<::axum::body::Bytes, ::std::convert::Infallible>;

                fn poll_next(
                    mut self: ::std::pin::Pin<&mut Self>,
                    cx: &mut ::std::task::Context<'_>,
                ) -> ::std::task::Poll<Option<Self::Item>> {
                    use ::std::task::Poll;
                    match self.events.as_mut().poll_next(cx) {
                        Poll::Ready(Some(frame)) => {
                            self.quiet = false;
                            return Poll::Ready(Some(Ok(frame.0)));
                        }
                        Poll::Ready(None) => return Poll::Ready(None),
                        Poll::Pending => {}
                    }
                    while self.tick.poll_tick(cx).is_ready() {
                        if ::std::mem::replace(&mut self.quiet, true) {
                            return Poll::Ready(Some(Ok(::axum::body::Bytes::from_static(b":\n\n"))));
                        }
                    }
                    Poll::Pending
                }
            }

            /// Server-sent events, with a comment line after each quiet `SSE_KEEP_ALIVE`.
            pub fn sse(code: u16, events: EventStream) -> Response {
                let start = ::tokio::time::Instant::now() + SSE_KEEP_ALIVE;
                let mut tick = ::tokio::time::interval_at(start, SSE_KEEP_ALIVE);
                tick.set_missed_tick_behavior(::tokio::time::MissedTickBehavior::Delay);
                let body = ::axum::body::Body::from_stream(KeepAlive { events, tick, quiet: true });
                let mut response = Response::new(body);
                *response.status_mut() = status(code);
                let headers = response.headers_mut();
                headers.insert(::axum::http::header::CONTENT_TYPE, ::axum::http::HeaderValue::from_static("text/event-stream"));
                headers.insert(::axum::http::header::CACHE_CONTROL, ::axum::http::HeaderValue::from_static("no-cache"));
                response
            }

            pub fn set_header(response: &mut Response, name: &'static str, value: &str) -> Result<(), Rejection> {
                let value = ::axum::http::HeaderValue::from_str(value)
                    .map_err(|_| Rejection::InvalidResponse { reason: format!("header {name} has a value HTTP cannot carry") })?;
                response.headers_mut().append(name, value);
                Ok(())
            }
        }
    };
    pretty(&spec.file, tokens)
}
