//! The GraphQL server side from the SDL: plain types (objects, inputs, enums, scalars),
//! one resolver trait per root type, and async-graphql glue that delegates to the traits.

use async_graphql_parser::types::{
    BaseType, FieldDefinition, InputValueDefinition, ServiceDocument, Type, TypeDefinition,
    TypeKind, TypeSystemDefinition,
};
use heck::{ToPascalCase, ToSnakeCase};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::{Error, Result, pretty};

#[derive(Debug, Clone)]
pub struct Sdl {
    pub file: String,
    pub text: String,
    pub doc: ServiceDocument,
    pub query: String,
    pub mutation: Option<String>,
    pub subscription: Option<String>,
}

impl Sdl {
    pub fn parse(file: &str, text: &str) -> Result<Sdl> {
        let doc = async_graphql_parser::parse_schema(text)
            .map_err(|e| Error::new(file, "", format!("is not valid SDL: {e}")))?;
        let mut query = "Query".to_string();
        let mut mutation = None;
        let mut subscription = None;
        let mut names_given = false;
        for def in &doc.definitions {
            if let TypeSystemDefinition::Schema(s) = def {
                names_given = true;
                if let Some(q) = &s.node.query {
                    query = q.node.to_string();
                }
                mutation = s.node.mutation.as_ref().map(|m| m.node.to_string());
                subscription = s.node.subscription.as_ref().map(|m| m.node.to_string());
            }
        }
        check_names(file, &doc)?;
        let sdl = Sdl {
            file: file.into(),
            text: text.into(),
            doc,
            query,
            mutation,
            subscription,
        };
        if names_given {
            return Ok(sdl);
        }
        let has = |n: &str| sdl.types().any(|t| t.name.node.as_str() == n);
        let (m, s) = (has("Mutation"), has("Subscription"));
        if !has("Query") {
            return Err(Error::new(file, "", "has no Query type"));
        }
        Ok(Sdl {
            mutation: m.then(|| "Mutation".to_string()),
            subscription: s.then(|| "Subscription".to_string()),
            ..sdl
        })
    }

    /// Type definitions, sorted by name.
    pub fn types(&self) -> impl Iterator<Item = &TypeDefinition> {
        let mut types: Vec<&TypeDefinition> = self
            .doc
            .definitions
            .iter()
            .filter_map(|d| match d {
                TypeSystemDefinition::Type(t) => Some(&t.node),
                _ => None,
            })
            .collect();
        types.sort_by(|a, b| a.name.node.cmp(&b.name.node));
        types.into_iter()
    }

    pub fn is_root(&self, name: &str) -> bool {
        name == self.query
            || self.mutation.as_deref() == Some(name)
            || self.subscription.as_deref() == Some(name)
    }
}

const BUILT_IN_SCALARS: [&str; 5] = ["String", "Int", "Float", "Boolean", "ID"];

/// Every type a field or argument names is defined, and no directive is used or defined:
/// the generator does not carry directives into the schema, so one would be dropped
/// silently (and an unknown type would only fail later, in the generated Rust).
/// The field that `name` spells another way: an earlier field of the type with the same
/// snake_case (`pageSize` for `page_size`, `userId` for `userID`), if there is one.
fn alias_target<'a>(
    fields: &'a [async_graphql_parser::Positioned<async_graphql_parser::types::FieldDefinition>],
    name: &str,
) -> Option<&'a async_graphql_parser::types::FieldDefinition> {
    let snake = name.to_snake_case();
    fields
        .iter()
        .map(|f| &f.node)
        .take_while(|f| f.name.node.as_str() != name)
        .find(|f| f.name.node.to_snake_case() == snake)
}

fn check_names(file: &str, doc: &ServiceDocument) -> Result<()> {
    use async_graphql_parser::Positioned;
    use async_graphql_parser::types::ConstDirective;
    let defined: std::collections::BTreeSet<&str> = doc
        .definitions
        .iter()
        .filter_map(|d| match d {
            TypeSystemDefinition::Type(t) => Some(t.node.name.node.as_str()),
            _ => None,
        })
        .chain(BUILT_IN_SCALARS)
        .collect();
    let no_directives =
        |place: &str, directives: &[Positioned<ConstDirective>]| match directives.first() {
            Some(d) => Err(Error::new(
                file,
                place,
                format!("directive @{} is not supported", d.node.name.node),
            )),
            None => Ok(()),
        };
    let known = |place: &str, ty: &Type| {
        let mut base = &ty.base;
        while let BaseType::List(inner) = base {
            base = &inner.base;
        }
        match base {
            BaseType::Named(n) if !defined.contains(n.as_str()) => {
                Err(Error::new(file, place, format!("type {n} is not defined")))
            }
            _ => Ok(()),
        }
    };
    let input = |place: &str, v: &InputValueDefinition| {
        let place = format!("{place}.{}", v.name.node);
        no_directives(&place, &v.directives)?;
        known(&place, &v.ty.node)
    };
    for def in &doc.definitions {
        let t = match def {
            TypeSystemDefinition::Type(t) => &t.node,
            TypeSystemDefinition::Directive(d) => {
                return Err(Error::new(
                    file,
                    format!("@{}", d.node.name.node),
                    "directive definitions are not supported",
                ));
            }
            TypeSystemDefinition::Schema(s) => {
                no_directives("schema", &s.node.directives)?;
                continue;
            }
        };
        let name = t.name.node.as_str();
        no_directives(name, &t.directives)?;
        match &t.kind {
            TypeKind::Object(o) => {
                for f in &o.fields {
                    let place = format!("{name}.{}", f.node.name.node);
                    no_directives(&place, &f.node.directives)?;
                    known(&place, &f.node.ty.node)?;
                    for a in &f.node.arguments {
                        input(&place, &a.node)?;
                    }
                }
            }
            TypeKind::InputObject(o) => {
                for f in &o.fields {
                    input(name, &f.node)?;
                }
            }
            TypeKind::Enum(e) => {
                for v in &e.values {
                    no_directives(&format!("{name}.{}", v.node.value.node), &v.node.directives)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn description(d: &Option<async_graphql_parser::Positioned<String>>) -> String {
    d.as_ref()
        .map(|d| d.node.trim().to_string())
        .unwrap_or_default()
}

/// A `#[doc]` attribute, or nothing for an empty description: async-graphql turns
/// `#[doc = ""]` into `description: ""`, where introspection must answer `null`.
fn doc_attr(doc: &str) -> TokenStream {
    if doc.is_empty() {
        quote!()
    } else {
        quote!(#[doc = #doc])
    }
}

fn rust_type(ty: &Type) -> TokenStream {
    let base = match &ty.base {
        BaseType::Named(n) => match n.as_str() {
            "String" => quote!(::std::string::String),
            "Int" => quote!(i32),
            "Float" => quote!(f64),
            "Boolean" => quote!(bool),
            "ID" => quote!(::async_graphql::ID),
            other => {
                let ident = type_ident(other);
                quote!(#ident)
            }
        },
        BaseType::List(inner) => {
            let inner = rust_type(inner);
            quote!(::std::vec::Vec<#inner>)
        }
    };
    if ty.nullable {
        quote!(::std::option::Option<#base>)
    } else {
        base
    }
}

fn no_default(sdl: &Sdl, place: &str, v: &InputValueDefinition) -> Result<()> {
    if v.default_value.is_some() {
        return Err(Error::new(
            &sdl.file,
            place,
            format!(
                "default value of `{}` is not supported yet; make it nullable",
                v.name.node
            ),
        ));
    }
    Ok(())
}

/// The Rust name of a GraphQL type: its own, or in PascalCase when it has underscores
/// (Meshery's `Container_Status`); the GraphQL name stays as written.
fn type_ident(name: &str) -> proc_macro2::Ident {
    if name.contains('_') {
        format_ident!("{}", name.to_pascal_case())
    } else {
        format_ident!("{}", name)
    }
}

fn scalar(name: &str, doc: TokenStream) -> TokenStream {
    let ident = type_ident(name);
    if name == "Time" {
        return quote! {
            #doc
            #[derive(Debug, Clone, Copy, PartialEq, Eq, ::serde::Serialize, ::serde::Deserialize)]
            #[serde(transparent)]
            pub struct #ident(pub ::chrono::DateTime<::chrono::Utc>);

            #doc
            #[::async_graphql::Scalar(name = #name)]
            impl ::async_graphql::ScalarType for #ident {
                fn parse(value: ::async_graphql::Value) -> ::async_graphql::InputValueResult<Self> {
                    match &value {
                        ::async_graphql::Value::String(s) => ::chrono::DateTime::parse_from_rfc3339(s)
                            .map(|t| #ident(t.with_timezone(&::chrono::Utc)))
                            .map_err(|e| ::async_graphql::InputValueError::custom(format!("not an RFC 3339 time: {e}"))),
                        _ => Err(::async_graphql::InputValueError::expected_type(value)),
                    }
                }
                fn to_value(&self) -> ::async_graphql::Value {
                    ::async_graphql::Value::String(self.0.to_rfc3339_opts(::chrono::SecondsFormat::Millis, true))
                }
            }
        };
    }
    quote! {
        #doc
        #[derive(Debug, Clone, PartialEq, ::serde::Serialize, ::serde::Deserialize)]
        #[serde(transparent)]
        pub struct #ident(pub ::serde_json::Value);

        // async-graphql reads a scalar's description from the impl's docs.
        #doc
        #[::async_graphql::Scalar(name = #name)]
        impl ::async_graphql::ScalarType for #ident {
            fn parse(value: ::async_graphql::Value) -> ::async_graphql::InputValueResult<Self> {
                value
                    .into_json()
                    .map(#ident)
                    .map_err(|e| ::async_graphql::InputValueError::custom(e.to_string()))
            }
            fn to_value(&self) -> ::async_graphql::Value {
                ::async_graphql::Value::from_json(self.0.clone()).unwrap_or(::async_graphql::Value::Null)
            }
        }
    }
}

fn root(
    sdl: &Sdl,
    name: &str,
    type_description: &Option<async_graphql_parser::Positioned<String>>,
    fields: &[async_graphql_parser::Positioned<FieldDefinition>],
    kind: RootKind,
) -> Result<TokenStream> {
    let trait_ident = format_ident!("{}Resolver", name.to_pascal_case());
    let struct_ident = format_ident!("{}Root", name.to_pascal_case());
    let mut methods = Vec::new();
    let mut glue = Vec::new();
    for f in fields {
        let f = &f.node;
        let fname = f.name.node.as_str();
        let place = format!("{name}.{fname}");
        let method = crate::ident(&fname.to_snake_case());
        let doc = doc_attr(&description(&f.description));
        let ty = rust_type(&f.ty.node);
        let mut params = Vec::new();
        let mut glue_params = Vec::new();
        let mut args = Vec::new();
        for a in &f.arguments {
            let a = &a.node;
            no_default(sdl, &place, a)?;
            let aname = a.name.node.as_str();
            let arg = crate::ident(&aname.to_snake_case());
            let aty = rust_type(&a.ty.node);
            let adoc = description(&a.description);
            params.push(quote!(#arg: #aty));
            glue_params.push(if adoc.is_empty() {
                quote!(#[graphql(name = #aname)] #arg: #aty)
            } else {
                quote!(#[graphql(name = #aname, desc = #adoc)] #arg: #aty)
            });
            args.push(quote!(#arg));
        }
        let out = match kind {
            RootKind::Plain => quote!(::async_graphql::Result<#ty>),
            // Items are shared: a value sent to many subscribers is built once.
            RootKind::Subscription => {
                quote!(::async_graphql::Result<::futures_util::stream::BoxStream<'static, ::async_graphql::Result<::std::sync::Arc<#ty>>>>)
            }
        };
        methods.push(quote! {
            #doc
            fn #method(&self, ctx: &::async_graphql::Context<'_> #(, #params)*)
                -> impl ::std::future::Future<Output = #out> + Send;
        });
        glue.push(quote! {
            #doc
            #[graphql(name = #fname)]
            async fn #method(&self, ctx: &::async_graphql::Context<'_> #(, #glue_params)*) -> #out {
                self.0.#method(ctx #(, #args)*).await
            }
        });
    }
    let attr = match kind {
        RootKind::Plain => quote!(#[::async_graphql::Object(name = #name)]),
        RootKind::Subscription => quote!(#[::async_graphql::Subscription(name = #name)]),
    };
    let type_doc = doc_attr(&description(type_description));
    let trait_doc = format!("Resolves the fields of `{name}`.");
    let struct_doc =
        format!("The `{name}` root type: async-graphql glue over a [`{trait_ident}`].");
    Ok(quote! {
        #[doc = #trait_doc]
        pub trait #trait_ident: Send + Sync + 'static {
            #(#methods)*
        }

        #[doc = #struct_doc]
        pub struct #struct_ident<R>(pub ::std::sync::Arc<R>);

        // async-graphql takes the type's description from the impl's docs.
        #type_doc
        #attr
        impl<R: #trait_ident> #struct_ident<R> {
            #(#glue)*
        }
    })
}

#[derive(Clone, Copy)]
enum RootKind {
    Plain,
    Subscription,
}

pub fn generate(sdl: &Sdl) -> Result<String> {
    let mut items = Vec::new();
    // Registered explicitly so that types no field reaches yet (a scalar kept for later
    // use, say) still appear in the printed SDL, which must equal the file.
    let mut registrations = Vec::new();
    for t in sdl.types() {
        let name = t.name.node.as_str();
        let ident = type_ident(name);
        let doc = doc_attr(&description(&t.description));
        if t.extend {
            return Err(Error::new(
                &sdl.file,
                name,
                "type extensions are not supported",
            ));
        }
        match &t.kind {
            TypeKind::Scalar => {
                items.push(scalar(name, doc));
                registrations.push(quote!(.register_input_type::<#ident>()));
            }
            TypeKind::Enum(e) => {
                let values = e.values.iter().map(|v| {
                    let v = &v.node;
                    let vname = v.value.node.as_str();
                    let vident = format_ident!("{}", vname.to_pascal_case());
                    let vdoc = doc_attr(&description(&v.description));
                    quote!(#vdoc #[graphql(name = #vname)] #[serde(rename = #vname)] #vident,)
                });
                registrations.push(quote!(.register_input_type::<#ident>()));
                items.push(quote! {
                    #doc
                    #[derive(::async_graphql::Enum, Debug, Clone, Copy, PartialEq, Eq, ::serde::Serialize, ::serde::Deserialize)]
                    #[graphql(name = #name)]
                    pub enum #ident { #(#values)* }
                });
            }
            TypeKind::InputObject(o) => {
                let mut fields = Vec::new();
                for f in &o.fields {
                    let f = &f.node;
                    no_default(sdl, name, f)?;
                    let fname = f.name.node.as_str();
                    let fident = crate::ident(&fname.to_snake_case());
                    let ty = rust_type(&f.ty.node);
                    let fdoc = doc_attr(&description(&f.description));
                    fields.push(quote!(#fdoc #[graphql(name = #fname)] pub #fident: #ty,));
                }
                registrations.push(quote!(.register_input_type::<#ident>()));
                items.push(quote! {
                    #doc
                    #[derive(::async_graphql::InputObject, Debug, Clone, PartialEq)]
                    #[graphql(name = #name)]
                    pub struct #ident { #(#fields)* }
                });
            }
            TypeKind::Object(o) if sdl.is_root(name) => {
                let kind = if sdl.subscription.as_deref() == Some(name) {
                    RootKind::Subscription
                } else {
                    RootKind::Plain
                };
                items.push(root(sdl, name, &t.description, &o.fields, kind)?);
            }
            TypeKind::Object(o) => {
                if !o.implements.is_empty() {
                    return Err(Error::new(
                        &sdl.file,
                        name,
                        "interfaces are not supported yet",
                    ));
                }
                let mut fields = Vec::new();
                let mut aliases = Vec::new();
                for f in &o.fields {
                    let f = &f.node;
                    let fname = f.name.node.as_str();
                    if !f.arguments.is_empty() {
                        return Err(Error::new(
                            &sdl.file,
                            format!("{name}.{fname}"),
                            "fields with arguments are supported on root types only, for now",
                        ));
                    }
                    let fident = crate::ident(&fname.to_snake_case());
                    let ty = rust_type(&f.ty.node);
                    let fdoc = doc_attr(&description(&f.description));
                    // A field spelling an earlier field of the type another way (Meshery's
                    // names: `page_size` for `pageSize`, `userID` for `userId`) answers
                    // that field's value.
                    if let Some(target) = alias_target(&o.fields, fname) {
                        if target.ty.node != f.ty.node {
                            return Err(Error::new(
                                &sdl.file,
                                format!("{name}.{fname}"),
                                format!(
                                    "spells {name}.{} another way, so it must have its type",
                                    target.name.node
                                ),
                            ));
                        }
                        let method =
                            format_ident!("alias_{}", fident.to_string().trim_start_matches("r#"));
                        aliases.push(quote! {
                            #fdoc
                            #[graphql(name = #fname)]
                            async fn #method(&self) -> #ty { self.#fident.clone() }
                        });
                        continue;
                    }
                    fields.push(quote!(#fdoc #[graphql(name = #fname)] pub #fident: #ty,));
                }
                registrations.push(quote!(.register_output_type::<#ident>()));
                if aliases.is_empty() {
                    items.push(quote! {
                        #doc
                        #[derive(::async_graphql::SimpleObject, Debug, Clone, PartialEq)]
                        #[graphql(name = #name)]
                        pub struct #ident { #(#fields)* }
                    });
                } else {
                    items.push(quote! {
                        #doc
                        #[derive(::async_graphql::SimpleObject, Debug, Clone, PartialEq)]
                        #[graphql(name = #name, complex)]
                        pub struct #ident { #(#fields)* }

                        #[::async_graphql::ComplexObject]
                        impl #ident { #(#aliases)* }
                    });
                }
            }
            TypeKind::Interface(_) | TypeKind::Union(_) => {
                return Err(Error::new(
                    &sdl.file,
                    name,
                    "interfaces and unions are not supported yet",
                ));
            }
        }
    }

    let q = format_ident!("{}Root", sdl.query.to_pascal_case());
    let qt = format_ident!("{}Resolver", sdl.query.to_pascal_case());
    let (m_ty, m_val, m_bound) = match &sdl.mutation {
        Some(m) => {
            let s = format_ident!("{}Root", m.to_pascal_case());
            let t = format_ident!("{}Resolver", m.to_pascal_case());
            (quote!(#s<R>), quote!(#s(resolver.clone())), quote!(+ #t))
        }
        None => (
            quote!(::async_graphql::EmptyMutation),
            quote!(::async_graphql::EmptyMutation),
            quote!(),
        ),
    };
    let (s_ty, s_val, s_bound) = match &sdl.subscription {
        Some(m) => {
            let s = format_ident!("{}Root", m.to_pascal_case());
            let t = format_ident!("{}Resolver", m.to_pascal_case());
            (quote!(#s<R>), quote!(#s(resolver.clone())), quote!(+ #t))
        }
        None => (
            quote!(::async_graphql::EmptySubscription),
            quote!(::async_graphql::EmptySubscription),
            quote!(),
        ),
    };
    let tokens = quote! {
        #(#items)*

        /// The executable schema over one resolver that implements every root trait.
        pub type GraphqlSchema<R> = ::async_graphql::Schema<#q<R>, #m_ty, #s_ty>;

        /// Starts building the schema; the caller adds data and limits, then `finish()`es.
        pub fn schema_builder<R>(resolver: ::std::sync::Arc<R>) -> ::async_graphql::SchemaBuilder<#q<R>, #m_ty, #s_ty>
        where
            R: #qt #m_bound #s_bound,
        {
            ::async_graphql::Schema::build(#q(resolver.clone()), #m_val, #s_val)
                #(#registrations)*
        }
    };
    pretty(&sdl.file, tokens)
}
