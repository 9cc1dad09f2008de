//! `design list|view|import|export|delete` over `/api/pattern`.

use base64::Engine;
use futures_util::StreamExt;
use meshery_models::{Pattern, PatternImport, PatternPage};

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
        .into_inner();
    match format {
        Format::Table => Ok(format!(
            "imported design {} ({}, {} components)",
            p.id, p.name, p.components_count
        )),
        _ => output::emit(format, &p, design_fields),
    }
}

/// Writes the design (or its Kubernetes manifests) to `out`, or to standard output.
pub async fn export(
    target: &Target,
    id: String,
    manifest: bool,
    out: Option<std::path::PathBuf>,
) -> Outcome {
    let client = target.client()?;
    let mut b = client.download_pattern().pattern_id(id.clone());
    if manifest {
        b = b.format(meshery_client::rest::types::DownloadPatternFormat::Manifest);
    }
    let mut stream = b.send().await.map_err(|e| target.fail(e))?.into_inner();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| failure::transport(&e, &target.endpoint))?;
        bytes.extend_from_slice(&chunk);
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
