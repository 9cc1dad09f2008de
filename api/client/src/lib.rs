//! The client SDKs, generated from `schema/` by the workspace's `build.rs`:
//! [`rest`] is progenitor's REST client over the shared [`models`]; [`graphql`] holds
//! cynic operations over the schema registered at build time; [`sse`] reads event streams.

pub use meshery_models as models;

pub mod rest {
    //! The REST client SDK (progenitor), builder style:
    //! `client.list_events().page(0).pagesize("all").send()`.
    #![allow(clippy::all, missing_docs, unused_imports, irrefutable_let_patterns)]
    include!(concat!(env!("OUT_DIR"), "/client.rs"));
}

pub mod graphql;
pub mod sse;
