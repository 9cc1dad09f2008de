//! Contract tests: a real server on port 0, driven through the generated REST and GraphQL
//! clients; every response is checked against schema/openapi.yaml (see `harness`).

mod auth;
mod clusters;
mod compat;
#[path = "../support/database.rs"]
mod database;
mod deploy;
mod events;
mod extensions;
mod fixture;
mod graphql;
mod hardening;
mod harness;
mod identity;
mod integrations;
#[path = "../support/kube_api.rs"]
mod kube_api;
mod kubernetes;
mod patterns;
mod perf;
mod registry;
mod replicas;
mod rest;
mod sessions;
mod spec;
mod tenancy;

/// The codegen fixture's models, at the crate root where its generated server names them.
#[allow(dead_code, clippy::all)]
mod models {
    include!("../../codegen/tests/snapshots/models.rs.txt");
}
