//! Implementations of the generated REST traits, one module per tag.

mod extensions;
mod perf;
mod provider;
mod system;
pub(crate) mod user;
