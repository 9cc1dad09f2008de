//! `cargo xtask test`: the whole suite, installing what it needs on the way.
use std::path::Path;

pub fn run(_root: &Path) -> Result<(), String> {
    Err("not yet".into())
}
