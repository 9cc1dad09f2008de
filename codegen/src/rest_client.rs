//! The REST client (progenitor) and the model types it shares with the server.

use std::panic::{AssertUnwindSafe, catch_unwind};

use progenitor::{GenerationSettings, Generator, InterfaceStyle};

use crate::openapi::Spec;
use crate::{Error, Result, pretty};

/// Where the model types live in the crate that includes the generated files.
pub const MODELS_PATH: &str = "crate::models";

fn settings() -> GenerationSettings {
    let mut settings = GenerationSettings::default();
    settings
        .with_interface(InterfaceStyle::Builder)
        .with_derive("PartialEq")
        // Sorted maps keep JSON output stable, which docs and snapshots rely on.
        .with_map_type("::std::collections::BTreeMap");
    settings
}

/// Runs progenitor, turning its panics (unsupported spec shapes) into an error that names
/// the spec file.
fn run(
    spec: &Spec,
    settings: &GenerationSettings,
) -> Result<(proc_macro2::TokenStream, proc_macro2::TokenStream)> {
    let mut generator = Generator::new(settings);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        generator
            .generate_tokens(&spec.api)
            .map(|tokens| (tokens, generator.get_type_space().to_stream()))
    }));
    match outcome {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(e)) => Err(Error::new(&spec.file, "client generator", e.to_string())),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panicked".into());
            Err(Error::new(
                &spec.file,
                "client generator",
                format!("rejected the spec: {msg}"),
            ))
        }
    }
}

/// Returns (models, client) source texts.
pub fn generate(spec: &Spec) -> Result<(String, String)> {
    let (_, models) = run(spec, &settings())?;
    let models = pretty(&spec.file, models)?;

    // The client names the shared models instead of keeping a copy of each.
    let mut client_settings = settings();
    let mut names: Vec<&String> = spec
        .api
        .components
        .as_ref()
        .map(|c| c.schemas.keys().collect())
        .unwrap_or_default();
    names.sort();
    for name in names {
        client_settings.with_replacement(
            name,
            format!("{MODELS_PATH}::{name}"),
            std::iter::empty(),
        );
    }
    let (client, _) = run(spec, &client_settings)?;
    let client = pretty(&spec.file, client)?;
    Ok((models, client))
}
