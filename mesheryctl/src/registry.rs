//! `registry model list|view` over `/api/registry/models`.

use meshery_models::{ModelPage, RegistryModel};

use crate::api::Target;
use crate::failure::Outcome;
use crate::output::{self, Format};
use crate::perf::ListArgs;

fn models_table(page: &ModelPage) -> String {
    let mut out = output::table(
        &[
            "name",
            "version",
            "category",
            "registrant",
            "components",
            "relationships",
        ],
        page.models.iter().map(|m| {
            vec![
                m.name.clone(),
                m.version.clone(),
                m.category.name.clone(),
                m.registrant.name.clone(),
                m.components_count.to_string(),
                m.relationships_count.to_string(),
            ]
        }),
    );
    out.push('\n');
    out.push_str(&output::footer(page.page, page.page_size, page.total_count));
    out
}

fn model_fields(m: &RegistryModel) -> String {
    let mut out = output::fields(&[
        ("name", m.name.clone()),
        ("display name", m.display_name.clone()),
        ("version", m.version.clone()),
        ("category", m.category.name.clone()),
        ("registrant", m.registrant.name.clone()),
        ("built in", m.built_in.to_string()),
    ]);
    out.push_str("\n\ncomponents\n");
    out.push_str(&output::table(
        &["kind", "api version"],
        m.components
            .iter()
            .map(|c| vec![c.kind.clone(), c.api_version.clone()]),
    ));
    if !m.relationships.is_empty() {
        out.push_str("\n\nrelationships\n");
        out.push_str(&output::table(
            &["kind", "from", "to"],
            m.relationships
                .iter()
                .map(|r| vec![r.kind.to_string(), r.from.join(" "), r.to.join(" ")]),
        ));
    }
    out
}

pub async fn list(
    target: &Target,
    l: ListArgs,
    category: Option<String>,
    format: Format,
) -> Outcome {
    let client = target.client()?;
    let mut b = client
        .list_models()
        .page(l.page)
        .pagesize(l.pagesize)
        .trim(true);
    if let Some(s) = l.search {
        b = b.search(s);
    }
    if let Some(c) = category {
        b = b.category(c);
    }
    let page = b.send().await.map_err(|e| target.fail(e))?.into_inner();
    output::emit(format, &page, models_table)
}

pub async fn view(
    target: &Target,
    name: String,
    version: Option<String>,
    format: Format,
) -> Outcome {
    let client = target.client()?;
    // Tables leave out the component schemas; JSON and YAML carry them.
    let mut b = client.get_model().model(name).trim(format == Format::Table);
    if let Some(v) = version {
        b = b.version(v);
    }
    // The model's versions, newest last: the newest one is shown.
    let page = b.send().await.map_err(|e| target.fail(e))?.into_inner();
    let m = page.models.into_iter().next_back().ok_or_else(|| {
        crate::failure::Failure::new(crate::failure::Class::NotFound, "no such model")
    })?;
    output::emit(format, &m, model_fields)
}
