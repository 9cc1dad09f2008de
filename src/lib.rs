//! meshery-rs: a Meshery-compatible management-plane server, schema-first.
//!
//! The code generated from `schema/` lives in workspace crates: [`models`]
//! (`meshery-models`) and [`generated`] (`meshery-stubs`: the traits and router this
//! server implements); the client SDKs are `meshery-client`. Everything here is
//! handwritten.

/// The one accept loop (connection limits, timeouts, TLS per connection).
pub use meshery_http::serve;
pub use meshery_models as models;
pub use meshery_stubs as generated;
/// TLS configurations: outbound clients, load-test targets, acceptors.
pub use meshery_tls as tls;

pub mod app;
pub mod auth;
pub mod bus;
pub mod connections;
pub mod cookies;
pub mod credentials;
pub mod deploy;
pub mod design_export;
pub mod designs;
pub mod error;
pub mod events;
pub mod extensions;
pub mod fault;
pub mod gql;
pub mod gql_clusters;
pub mod gql_groups;
pub mod gql_limits;
pub mod gql_perf;
pub mod gql_ws;
mod handlers;
pub mod inventory;
pub mod jwt;
pub mod kube_client;
pub mod kubernetes;
pub mod liveness;
pub mod logging;
pub mod orgs;
pub mod perf;
pub mod policy;
pub mod prefs;
pub mod providers;
pub mod registry;
pub mod remote;
pub mod retention;
pub mod sealing;
pub mod server;
pub mod session;
pub mod store;
pub mod tenancy;
pub mod validate;
pub mod web;
