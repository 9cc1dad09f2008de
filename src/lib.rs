//! meshery-rs: a Meshery-compatible management-plane server, schema-first.
//!
//! `models` and `client` (REST) and `graphql_client` are generated from `schema/` and
//! build without the `server` feature; the rest is the server.

pub mod models {
    //! REST model types from `components/schemas`, shared by server and client.
    #![allow(clippy::all, missing_docs, unused_imports, irrefutable_let_patterns)]
    include!(concat!(env!("OUT_DIR"), "/models.rs"));
}

pub mod client {
    //! The REST client SDK (progenitor), over the shared [`crate::models`].
    #![allow(clippy::all, missing_docs, unused_imports, irrefutable_let_patterns)]
    include!(concat!(env!("OUT_DIR"), "/client.rs"));
}

pub mod graphql_client;

#[cfg(feature = "server")]
pub mod generated {
    //! Server-side code generated from the schemas: traits to implement, never edited.
    pub mod rest {
        #![allow(clippy::all, unused_imports, unused_variables)]
        include!(concat!(env!("OUT_DIR"), "/server.rs"));
    }
    pub mod graphql {
        #![allow(clippy::all, unused_imports)]
        include!(concat!(env!("OUT_DIR"), "/graphql.rs"));
    }
}

#[cfg(feature = "server")]
pub mod auth;
#[cfg(feature = "server")]
pub mod designs;
#[cfg(feature = "server")]
pub mod error;
#[cfg(feature = "server")]
pub mod events;
#[cfg(feature = "server")]
pub mod extensions;
#[cfg(feature = "server")]
pub mod gql;
#[cfg(feature = "server")]
pub mod gql_limits;
#[cfg(feature = "server")]
mod handlers;
#[cfg(feature = "server")]
pub mod kubernetes;
#[cfg(feature = "server")]
pub mod perf;
#[cfg(feature = "server")]
pub mod policy;
#[cfg(feature = "server")]
pub mod prefs;
#[cfg(feature = "server")]
pub mod providers;
#[cfg(feature = "server")]
pub mod refprovider;
#[cfg(feature = "server")]
pub mod registry;
#[cfg(feature = "server")]
pub mod remote;
#[cfg(feature = "server")]
pub mod serve;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "server")]
pub mod store;
#[cfg(feature = "server")]
pub mod tls;
#[cfg(feature = "server")]
pub mod validate;
#[cfg(feature = "server")]
pub mod web;
