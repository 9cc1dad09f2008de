//! Implementations of the generated REST traits, one module per tag.

/// The listing parameters every list operation takes.
macro_rules! listing_of {
    ($r:expr) => {
        crate::store::listing(
            $r.page,
            $r.pagesize.as_deref().or($r.page_size.as_deref()),
            $r.search.clone(),
            $r.order.as_deref(),
            $r.from,
            $r.to,
        )
    };
}

mod events;
mod extensions;
mod kubernetes;
mod pattern;
mod perf;
mod provider;
mod registry;
pub(crate) mod system;
pub(crate) mod user;
