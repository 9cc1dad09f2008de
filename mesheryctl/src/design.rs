//! `design list|view|import|export|delete|deploy|undeploy` over `/api/pattern`.

use base64::Engine;
use futures_util::StreamExt;
use meshery_models::{
    DeployOutcomeStatus, Pattern, PatternDeployInput, PatternDeployResult, PatternImport,
    PatternPage,
};

use crate::api::Target;
use crate::failure::{self, Class, Failure, Outcome};
use crate::output::{self, Format};
use crate::perf::ListArgs;

fn designs_table(page: &PatternPage) -> String {
    let mut out = output::table(
        &["id", "name", "visibility", "components", "updated"],
        page.patterns.iter().map(|p| {
            vec![
                p.id.clone(),
                p.name.clone(),
                p.visibility.to_string(),
                p.components_count.to_string(),
                output::time(&p.updated_at),
            ]
        }),
    );
    out.push('\n');
    out.push_str(&output::footer(page.page, page.page_size, page.total_count));
    out
}

fn design_fields(p: &Pattern) -> String {
    let mut out = output::fields(&[
        ("id", p.id.clone()),
        ("name", p.name.clone()),
        ("visibility", p.visibility.to_string()),
        ("components", p.components_count.to_string()),
        ("owner", p.user_id.clone()),
        ("created", output::time(&p.created_at)),
        ("updated", output::time(&p.updated_at)),
    ]);
    out.push_str("\n---\n");
    out.push_str(p.pattern_file.trim_end());
    out
}

pub async fn list(target: &Target, l: ListArgs, format: Format) -> Outcome {
    let client = target.client()?;
    let mut b = client.list_patterns().page(l.page).pagesize(l.pagesize);
    if let Some(s) = l.search {
        b = b.search(s);
    }
    let page = b.send().await.map_err(|e| target.fail(e))?.into_inner();
    output::emit(format, &page, designs_table)
}

pub async fn view(target: &Target, id: String, format: Format) -> Outcome {
    let client = target.client()?;
    let p = client
        .get_pattern()
        .pattern_id(id)
        .send()
        .await
        .map_err(|e| target.fail(e))?
        .into_inner();
    output::emit(format, &p, design_fields)
}

pub async fn import(
    target: &Target,
    file: Option<std::path::PathBuf>,
    url: Option<String>,
    name: Option<String>,
    format: Format,
) -> Outcome {
    let mut body = serde_json::Map::new();
    if let Some(file) = &file {
        let bytes =
            std::fs::read(file).map_err(|e| failure::usage(format!("{}: {e}", file.display())))?;
        body.insert(
            "file".into(),
            base64::engine::general_purpose::STANDARD
                .encode(bytes)
                .into(),
        );
        if let Some(n) = file.file_name().and_then(|n| n.to_str()) {
            body.insert("fileName".into(), n.into());
        }
    }
    if let Some(url) = url {
        body.insert("url".into(), url.into());
    }
    if let Some(name) = name {
        body.insert("name".into(), name.into());
    }
    // The generated model checks the constraints the schema declares.
    let body: PatternImport = serde_json::from_value(serde_json::Value::Object(body))
        .map_err(|e| failure::usage(format!("import: {e}")))?;
    let client = target.client()?;
    let p = client
        .import_pattern()
        .body(body)
        .send()
        .await
        .map_err(|e| target.fail(e))?
        .into_inner()
        .into_iter()
        .next()
        .ok_or_else(|| failure::usage("import: the server answered no design"))?;
    match format {
        Format::Table => Ok(format!(
            "imported design {} ({}, {} components)",
            p.id, p.name, p.components_count
        )),
        _ => output::emit(format, &p, design_fields),
    }
}

/// What `design export` downloads.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportType {
    Design,
    Manifest,
    HelmChart,
    Oci,
}

/// The file name in a `Content-Disposition` header, without any directory.
fn disposition_name(header: Option<&str>) -> Option<String> {
    let name = header?.split("filename=").nth(1)?.trim().trim_matches('"');
    let base = name.rsplit(['/', '\\']).next()?.trim();
    (!base.is_empty() && base != "." && base != "..").then(|| base.to_string())
}

/// Writes the design (or its manifests) to `out` or standard output; a chart or an image
/// to `out` or the file the server names.
pub async fn export(
    target: &Target,
    id: String,
    kind: ExportType,
    out: Option<std::path::PathBuf>,
) -> Outcome {
    let client = target.client()?;
    let mut b = client.download_pattern().pattern_id(id.clone());
    b = match kind {
        ExportType::Design => b,
        ExportType::Manifest => {
            b.format(meshery_client::rest::types::DownloadPatternFormat::Manifest)
        }
        ExportType::HelmChart => b.export("helm-chart"),
        ExportType::Oci => b.oci(true),
    };
    let response = b.send().await.map_err(|e| target.fail(e))?;
    let named = disposition_name(
        response
            .headers()
            .get("content-disposition")
            .and_then(|v| v.to_str().ok()),
    );
    let mut stream = response.into_inner();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| failure::transport(&e, &target.endpoint))?;
        bytes.extend_from_slice(&chunk);
    }
    let binary = matches!(kind, ExportType::HelmChart | ExportType::Oci);
    let chosen = out.is_some();
    let out = out.or_else(|| {
        binary.then(|| {
            let fallback = format!(
                "{id}.{}",
                if kind == ExportType::Oci {
                    "tar"
                } else {
                    "tgz"
                }
            );
            std::path::PathBuf::from(named.unwrap_or(fallback))
        })
    });
    // A file named by the server never replaces one of the user's: only --file does.
    if let Some(path) = out.as_ref().filter(|p| !chosen && p.exists()) {
        return Err(Failure::new(
            Class::Config,
            format!("{} exists; name another file with --file", path.display()),
        ));
    }
    match out {
        Some(path) => {
            std::fs::write(&path, &bytes)
                .map_err(|e| Failure::new(Class::Config, format!("{}: {e}", path.display())))?;
            Ok(format!("wrote design {id} to {}", path.display()))
        }
        None => Ok(String::from_utf8_lossy(&bytes).trim_end().to_string()),
    }
}

pub async fn delete(target: &Target, id: String) -> Outcome {
    let client = target.client()?;
    client
        .delete_pattern()
        .pattern_id(id.clone())
        .send()
        .await
        .map_err(|e| target.fail(e))?;
    Ok(format!("deleted design {id}"))
}

/// The design a command names: a design file when the path exists, else a stored
/// design's id, else its exact name. (pattern_id, pattern_file)
async fn named_design(
    target: &Target,
    design: &str,
) -> Result<(Option<String>, Option<String>), Failure> {
    let path = std::path::Path::new(design);
    if path.is_file() {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::new(Class::Usage, format!("{}: {e}", path.display())))?;
        return Ok((None, Some(text)));
    }
    let client = target.client()?;
    if client.get_pattern().pattern_id(design).send().await.is_ok() {
        return Ok((Some(design.to_string()), None));
    }
    let page = client
        .list_patterns()
        .search(design)
        .pagesize("all")
        .send()
        .await
        .map_err(|e| target.fail(e))?
        .into_inner();
    let mut named = page.patterns.iter().filter(|p| p.name == design);
    match (named.next(), named.next()) {
        (Some(p), None) => Ok((Some(p.id.clone()), None)),
        (Some(_), Some(_)) => Err(Failure::new(
            Class::Usage,
            format!("several designs are named {design:?}: give the id (mesheryctl design list)"),
        )),
        (None, _) => Err(Failure::new(
            Class::NotFound,
            format!("no design file, id or name {design:?}"),
        )),
    }
}

fn outcomes_table(r: &PatternDeployResult) -> String {
    let mut out = output::table(
        &[
            "component",
            "kind",
            "name",
            "namespace",
            "context",
            "status",
            "detail",
        ],
        r.results.iter().map(|o| {
            let detail = match (&o.field, &o.message) {
                (Some(f), Some(m)) => format!("{f}: {m}"),
                (None, Some(m)) => m.clone(),
                _ => String::new(),
            };
            vec![
                o.component.clone(),
                o.kind.clone(),
                o.name.clone(),
                o.namespace.clone().unwrap_or_default(),
                o.context_name.clone(),
                match o.ready {
                    Some(true) => format!("{}, ready", o.status),
                    _ => o.status.to_string(),
                },
                detail,
            ]
        }),
    );
    let failed = r
        .results
        .iter()
        .filter(|o| o.status == DeployOutcomeStatus::Failed)
        .count();
    out.push('\n');
    out.push_str(&format!(
        "{}{}: {} of {} component results failed",
        r.action,
        if r.dry_run { " (dry run)" } else { "" },
        failed,
        r.results.len()
    ));
    out
}

/// Deploys or undeploys a design, with a spinner while the clusters work, then one row
/// per component and context; fails (exit 9) when any component failed.
#[allow(clippy::too_many_arguments)]
pub async fn deploy(
    target: &Target,
    design: &str,
    undeploy: bool,
    dry_run: bool,
    contexts: Vec<String>,
    skip_crd: bool,
    verify: bool,
    format: Format,
) -> Outcome {
    let (pattern_id, pattern_file) = named_design(target, design).await?;
    let mut body = serde_json::Map::new();
    if let Some(id) = pattern_id {
        body.insert("patternId".into(), id.into());
    }
    if let Some(file) = pattern_file {
        body.insert("patternFile".into(), file.into());
    }
    let body: PatternDeployInput = serde_json::from_value(serde_json::Value::Object(body))
        .map_err(|e| Failure::new(Class::Usage, format!("{design}: {e}")))?;
    let parsed = |c: &String| Failure::new(Class::Usage, format!("--context {c:?}: too long"));
    let bar = indicatif::ProgressBar::new_spinner().with_message(format!(
        "{} {design}{}{}",
        if undeploy { "undeploying" } else { "deploying" },
        if dry_run { " (dry run)" } else { "" },
        if verify && !undeploy && !dry_run {
            ", waiting for workloads to be ready"
        } else {
            ""
        }
    ));
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    let client = target.client()?;
    let result = if undeploy {
        let contexts = contexts
            .iter()
            .map(|c| c.parse().map_err(|_| parsed(c)))
            .collect::<Result<Vec<_>, _>>()?;
        client
            .undeploy_pattern()
            .dry_run(dry_run)
            .skip_crd(skip_crd)
            .contexts(contexts)
            .body(body)
            .send()
            .await
    } else {
        let contexts = contexts
            .iter()
            .map(|c| c.parse().map_err(|_| parsed(c)))
            .collect::<Result<Vec<_>, _>>()?;
        client
            .deploy_pattern()
            .dry_run(dry_run)
            .skip_crd(skip_crd)
            .verify(verify)
            .contexts(contexts)
            .body(body)
            .send()
            .await
    };
    bar.finish_and_clear();
    let result = result.map_err(|e| target.fail(e))?.into_inner();
    let shown = output::emit(format, &result, outcomes_table)?;
    if result.succeeded {
        Ok(shown)
    } else {
        Err(Failure::new(Class::Rejected, shown))
    }
}
