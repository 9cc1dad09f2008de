//! Server-side code generated from `schema/` by the workspace's `build.rs`: the traits
//! the handwritten server implements, the router that calls them, and the reference
//! docs. Never edited; generated code never names handwritten code.

pub use meshery_models as models;

pub mod rest {
    //! One trait per OpenAPI tag, request and response types, `Hooks` and `router()`.
    #![allow(clippy::all, unused_imports, unused_variables)]
    include!(concat!(env!("OUT_DIR"), "/server.rs"));
}

pub mod graphql {
    //! GraphQL types, one resolver trait per object type, and the async-graphql glue.
    #![allow(clippy::all, unused_imports)]
    include!(concat!(env!("OUT_DIR"), "/graphql.rs"));
}

/// The REST reference as an HTML page (served at `/docs/rest`).
pub const REST_HTML: &str = include_str!(concat!(env!("OUT_DIR"), "/rest-api.html"));
/// The GraphQL reference as an HTML page (served at `/docs/graphql`).
pub const GRAPHQL_HTML: &str = include_str!(concat!(env!("OUT_DIR"), "/graphql-api.html"));
/// The compatibility table with Meshery's clients (served at `/docs/compat`).
pub const COMPAT_HTML: &str = include_str!(concat!(env!("OUT_DIR"), "/compat.html"));
/// `schema/openapi.yaml` itself: served at `/api/system/openapi.yaml`, and the source of
/// the request-body schemas the server checks.
pub const OPENAPI_YAML: &str = include_str!("../../../schema/openapi.yaml");
