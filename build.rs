//! Thin, and the one place that runs the generator: every package that holds generated
//! code names this file as its build script, and it writes that package's part to its
//! OUT_DIR (nothing else). Splitting the output over packages lets cargo compile the
//! models, the client and the server stubs in parallel, and keeps the CLI off server code.
//!
//! - `meshery-models`: REST model types (`models.rs`)
//! - `meshery-client`: the progenitor REST client (`client.rs`) and cynic's schema
//! - `meshery-stubs`: server traits and router (`server.rs`), GraphQL glue (`graphql.rs`)
//!   and the reference docs as HTML (with the committed compatibility table)
//! - `meshery` (the server): only the commit it is built from

use std::path::{Path, PathBuf};
use std::{env, fs, process};

const SPEC: &str = "schema/openapi.yaml";
const SDL: &str = "schema/schema.graphql";
const COMPAT: &str = "generated/docs/compat.md";

fn fail(message: impl std::fmt::Display) -> ! {
    println!("cargo::error={message}");
    process::exit(1);
}

/// The workspace root: the nearest directory at or above this package with the schemas.
fn root() -> PathBuf {
    let manifest =
        env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| fail("CARGO_MANIFEST_DIR is not set"));
    Path::new(&manifest)
        .ancestors()
        .find(|dir| dir.join(SPEC).is_file())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| fail(format!("no {SPEC} at or above {manifest}")))
}

fn main() {
    let root = root();
    let out = PathBuf::from(env::var("OUT_DIR").unwrap_or_else(|_| fail("OUT_DIR is not set")));
    let package = env::var("CARGO_PKG_NAME").unwrap_or_else(|_| fail("CARGO_PKG_NAME is not set"));
    match package.as_str() {
        "meshery" => commit_sha(&root),
        "meshery-models" | "meshery-client" | "meshery-stubs" => {
            generate(&root, &out, &package);
        }
        other => fail(format!("build.rs does not know the package {other}")),
    }
}

fn generate(root: &Path, out: &Path, package: &str) {
    let (spec_path, sdl_path) = (root.join(SPEC), root.join(SDL));
    println!("cargo::rerun-if-changed={}", spec_path.display());
    println!("cargo::rerun-if-changed={}", sdl_path.display());
    let spec = fs::read_to_string(&spec_path).unwrap_or_else(|e| fail(format!("{SPEC}: {e}")));
    let sdl = fs::read_to_string(&sdl_path).unwrap_or_else(|e| fail(format!("{SDL}: {e}")));

    // The client generator panics on some spec shapes; codegen catches that and reports
    // the spec path, so the default hook's backtrace would only be noise.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let generated = meshery_codegen::generate(SPEC, &spec, SDL, &sdl);
    std::panic::set_hook(hook);
    let generated = generated.unwrap_or_else(|e| fail(e));

    let files = match package {
        "meshery-models" => vec![("models.rs", generated.models)],
        "meshery-client" => vec![("client.rs", generated.client)],
        _ => vec![
            ("server.rs", generated.server),
            ("graphql.rs", generated.graphql),
            (
                "rest-api.html",
                meshery_codegen::docs::to_html("REST API reference", &generated.rest_md),
            ),
            (
                "graphql-api.html",
                meshery_codegen::docs::to_html("GraphQL API reference", &generated.graphql_md),
            ),
            ("compat.html", compat_html(root)),
        ],
    };
    for (name, text) in files {
        fs::write(out.join(name), text).unwrap_or_else(|e| fail(format!("writing {name}: {e}")));
    }

    if package == "meshery-client"
        && let Err(e) = cynic_codegen::register_schema("meshery")
            .from_sdl_file(&sdl_path)
            .and_then(|s| s.as_default())
    {
        fail(format!("{SDL}: cynic could not register the schema: {e}"));
    }
}

/// The committed coverage table (`cargo xtask docs` writes it from tests/compat/) as HTML.
fn compat_html(root: &Path) -> String {
    let path = root.join(COMPAT);
    println!("cargo::rerun-if-changed={}", path.display());
    let markdown = fs::read_to_string(&path).unwrap_or_else(|e| fail(format!("{COMPAT}: {e}")));
    meshery_codegen::docs::to_html("Compatibility with Meshery's clients", &markdown)
}

/// The commit this server is built from, for /api/system/version.
fn commit_sha(root: &Path) {
    // A commit moves the branch HEAD names, not HEAD itself: watch HEAD, packed-refs
    // (where clones and `git gc` keep refs) and the folder of the branch's ref file (a
    // fresh clone has no such file until the first commit creates it). A missing path
    // would make cargo rerun this on every build, so only existing ones are named.
    let git = |args: &[&str]| {
        process::Command::new("git")
            .args(args)
            .current_dir(root)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_string())
    };
    let git_path = |name: &str| {
        git(&["rev-parse", "--path-format=absolute", "--git-path", name]).map(PathBuf::from)
    };
    let mut watched: Vec<PathBuf> = ["HEAD", "packed-refs"]
        .into_iter()
        .filter_map(git_path)
        .collect();
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"])
        && let Some(folder) = git_path(&branch).and_then(|p| p.parent().map(Path::to_path_buf))
    {
        watched.push(folder);
    }
    for path in watched.iter().filter(|p| p.exists()) {
        println!("cargo::rerun-if-changed={}", path.display());
    }
    println!("cargo::rerun-if-env-changed=MESHERY_COMMIT_SHA");
    let sha = env::var("MESHERY_COMMIT_SHA")
        .ok()
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]));
    println!(
        "cargo::rustc-env=MESHERY_COMMIT_SHA={}",
        sha.unwrap_or_else(|| "unknown".into())
    );
}
