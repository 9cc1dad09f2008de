//! Developer tasks: `cargo xtask docs [--check]`, `test`, `lint`, `conformance`, `bench`,
//! `contract-pg` (the contract suite on a throwaway PostgreSQL; arguments filter tests),
//! `compat` (schema/openapi.yaml against Meshery's published schemas).

use anyhow::anyhow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("docs") => docs(args.iter().any(|a| a == "--check")),
        Some("test") => test::run_all(&root()),
        Some("lint") => lint::run(&root()),
        Some("conformance") => conformance::run_all(&root(), true),
        Some("bench") => bench(&args[1..]),
        Some("contract-pg") => test::contract_on_postgres(&root(), &args[1..]),
        Some("compat") => compat::run(&root()),
        _ => Err(anyhow!(
            "usage: cargo xtask docs [--check] | test | lint | compat | conformance | bench | contract-pg [test filter]"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Writes the committed reference docs, or with `check` reports the stale ones.
fn docs(check: bool) -> anyhow::Result<()> {
    let root = root();
    let read = |p: &str| std::fs::read_to_string(root.join(p)).map_err(|e| anyhow!("{p}: {e}"));
    let (spec_path, sdl_path) = ("schema/openapi.yaml", "schema/schema.graphql");
    let generated =
        meshery_codegen::generate(spec_path, &read(spec_path)?, sdl_path, &read(sdl_path)?)
            .map_err(|e| anyhow!("{e}"))?;
    let mut docs = meshery_codegen::committed_docs(&generated);
    docs.push((
        "generated/docs/compat.md",
        compat_table(&root, &read(spec_path)?)?,
    ));
    let mut stale = Vec::new();
    for (path, text) in docs {
        let full = root.join(path);
        let current = std::fs::read_to_string(&full).ok();
        if current.as_deref() == Some(text.as_str()) {
            continue;
        }
        if check {
            stale.push(path);
        } else {
            if let Some(dir) = full.parent() {
                std::fs::create_dir_all(dir).map_err(|e| anyhow!("{}: {e}", dir.display()))?;
            }
            std::fs::write(&full, text).map_err(|e| anyhow!("{path}: {e}"))?;
            println!("wrote {path}");
        }
    }
    if stale.is_empty() {
        if check {
            println!("generated docs are current");
        }
        Ok(())
    } else {
        Err(anyhow!(
            "stale generated files: {}; run `cargo xtask docs` and commit the result",
            stale.join(", ")
        ))
    }
}

/// The compatibility coverage table from tests/compat/ (the router list and every
/// client's corpus file) and the spec.
fn compat_table(root: &Path, spec_text: &str) -> anyhow::Result<String> {
    let spec = meshery_codegen::openapi::Spec::parse("schema/openapi.yaml", spec_text)
        .map_err(|e| anyhow!("{e}"))?;
    let dir = root.join("tests/compat");
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name)).map_err(|e| anyhow!("tests/compat/{name}: {e}"))
    };
    let mut corpus_files: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| anyhow!("tests/compat: {e}"))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".yaml") && (n.starts_with("mesheryctl") || n.starts_with("ui")))
        .collect();
    corpus_files.sort();
    let mut corpora = Vec::new();
    for name in &corpus_files {
        corpora.push((format!("tests/compat/{name}"), read(name)?));
    }
    let corpora: Vec<(&str, &str)> = corpora
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    let router = read("meshery-router.yaml")?;
    meshery_codegen::compat::table(
        &spec,
        ("tests/compat/meshery-router.yaml", &router),
        &corpora,
    )
    .map_err(|e| anyhow!("{e}"))
}

mod compat;
mod conformance;
mod lint;
mod postgres;
mod test;

/// Benchmarks: builds the server and the bench (release; debug for `--quick`, which
/// `cargo xtask test` runs) and runs the bench with the server binary next to it.
pub fn bench(args: &[String]) -> anyhow::Result<()> {
    // The load generator is compared with wrk on an nginx target (Debian's packages).
    test::ensure_apt("wrk", &["wrk"])?;
    test::ensure_apt("nginx", &["nginx"])?;
    // The deploy row's baseline.
    test::ensure_apt("kubectl", &["kubernetes-client"])?;
    let quick = args.iter().any(|a| a == "--quick");
    let profile = if quick { "debug" } else { "release" };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = std::process::Command::new(cargo);
    build.current_dir(root()).args([
        "build",
        "-p",
        "meshery",
        "--bin",
        "meshery-server",
        "--example",
        "bench",
    ]);
    if !quick {
        build.arg("--release");
    }
    test::run(&mut build)?;
    let target = root().join("target").join(profile);
    // The replicas part: a throwaway PostgreSQL for the bench's databases.
    let postgres = postgres::Postgres::start()?;
    test::run(
        std::process::Command::new(target.join("examples/bench"))
            .args(args)
            .env("MESHERY_SERVER_BIN", target.join("meshery-server"))
            .env("BENCH_DATABASE_URL", postgres.admin_url()),
    )
}
