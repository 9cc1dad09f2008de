//! Thin: runs meshery-codegen over schema/ and writes only to OUT_DIR.

use std::path::PathBuf;
use std::{env, fs, process};

const SPEC: &str = "schema/openapi.yaml";
const SDL: &str = "schema/schema.graphql";

fn fail(message: impl std::fmt::Display) -> ! {
    println!("cargo::error={message}");
    process::exit(1);
}

fn main() {
    println!("cargo::rerun-if-changed={SPEC}");
    println!("cargo::rerun-if-changed={SDL}");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap_or_else(|_| fail("OUT_DIR is not set")));
    let spec = fs::read_to_string(SPEC).unwrap_or_else(|e| fail(format!("{SPEC}: {e}")));
    let sdl = fs::read_to_string(SDL).unwrap_or_else(|e| fail(format!("{SDL}: {e}")));

    // The client generator panics on some spec shapes; codegen catches that and reports
    // the spec path, so the default hook's backtrace would only be noise.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let generated = meshery_codegen::generate(SPEC, &spec, SDL, &sdl);
    std::panic::set_hook(hook);
    let generated = generated.unwrap_or_else(|e| fail(e));

    let files = [
        ("models.rs", generated.models.clone()),
        ("client.rs", generated.client.clone()),
        ("server.rs", generated.server.clone()),
        ("graphql.rs", generated.graphql.clone()),
        (
            "rest-api.html",
            meshery_codegen::docs::to_html("REST API reference", &generated.rest_md),
        ),
        (
            "graphql-api.html",
            meshery_codegen::docs::to_html("GraphQL API reference", &generated.graphql_md),
        ),
    ];
    for (name, text) in files {
        fs::write(out.join(name), text).unwrap_or_else(|e| fail(format!("writing {name}: {e}")));
    }

    // The commit this server is built from, for /api/system/version.
    println!("cargo::rerun-if-changed=.git/HEAD");
    println!("cargo::rerun-if-env-changed=MESHERY_COMMIT_SHA");
    let sha = env::var("MESHERY_COMMIT_SHA").ok().or_else(|| {
        process::Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_string())
    });
    println!(
        "cargo::rustc-env=MESHERY_COMMIT_SHA={}",
        sha.unwrap_or_else(|| "unknown".into())
    );

    if let Err(e) = cynic_codegen::register_schema("meshery")
        .from_sdl_file(SDL)
        .and_then(|s| s.as_default())
    {
        fail(format!("{SDL}: cynic could not register the schema: {e}"));
    }
}
