//! Contract tests: a real server on port 0, driven through the generated REST and GraphQL
//! clients; every response is checked against schema/openapi.yaml (see `harness`).

mod graphql;
mod harness;
mod rest;
mod spec;
