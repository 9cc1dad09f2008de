//! `environment` and `workspace`: Meshery's commands and flags (`--orgId`, `--name`,
//! `--description`, `--count`) and its messages, over `/api/environments` and
//! `/api/workspaces`. Unlike Meshery's, `--orgId` may be left out when the user is in one
//! organization (it is then that one), and `--description` is optional.

use meshery_models::{Environment, EnvironmentPage, Workspace, WorkspacePage};
use serde_json::json;

use crate::api::Target;
use crate::failure::{Class, Failure, Outcome};
use crate::output::{self, Format};
use crate::perf::ListArgs;

/// The organization to act in: the one given, or the user's only one.
async fn organization(target: &Target, given: Option<String>) -> Result<String, Failure> {
    if let Some(org) = given.filter(|o| !o.trim().is_empty()) {
        return Ok(org.trim().to_string());
    }
    let orgs = target
        .client()?
        .get_orgs()
        .all(true)
        .send()
        .await
        .map_err(|e| target.fail(e))?
        .into_inner()
        .organizations;
    match orgs.as_slice() {
        [one] => Ok(one.id.clone()),
        [] => Err(Failure::new(
            Class::NotFound,
            "you are in no organization: there is nowhere to act",
        )),
        many => Err(Failure::new(
            Class::Usage,
            format!(
                "you are in {} organizations: give --orgId, one of {}",
                many.len(),
                many.iter()
                    .map(|o| format!("{} ({})", o.id, o.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// A name given to create something: not blank.
fn name_of(name: String) -> Result<String, Failure> {
    let name = name.trim().to_string();
    if name.is_empty() {
        return Err(Failure::new(Class::Usage, "--name cannot be empty"));
    }
    Ok(name)
}

fn body<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, Failure> {
    serde_json::from_value(value).map_err(|e| Failure::new(Class::Usage, e.to_string()))
}

fn or_none(text: &str) -> String {
    if text.is_empty() {
        "N/A".into()
    } else {
        text.to_string()
    }
}

fn row(
    id: &str,
    name: &str,
    org: &str,
    description: &str,
    t: [&chrono::DateTime<chrono::Utc>; 2],
) -> Vec<String> {
    vec![
        id.to_string(),
        name.to_string(),
        org.to_string(),
        or_none(description),
        output::time(t[0]),
        output::time(t[1]),
    ]
}

const COLUMNS: [&str; 6] = [
    "id",
    "name",
    "organization id",
    "description",
    "created at",
    "updated at",
];

fn environments_table(page: &EnvironmentPage) -> String {
    if page.environments.is_empty() {
        return "No environments found".into();
    }
    let mut out = format!("Total number of environments: {}\n\n", page.total_count);
    out.push_str(&output::table(
        &COLUMNS,
        page.environments.iter().map(|e| {
            row(
                &e.id,
                &e.name,
                &e.organization_id,
                &e.description,
                [&e.created_at, &e.updated_at],
            )
        }),
    ));
    out.push('\n');
    out.push_str(&output::footer(page.page, page.page_size, page.total_count));
    out
}

fn workspaces_table(page: &WorkspacePage) -> String {
    if page.workspaces.is_empty() {
        return "No workspaces found".into();
    }
    let mut out = format!("Total number of workspaces: {}\n\n", page.total_count);
    out.push_str(&output::table(
        &COLUMNS,
        page.workspaces.iter().map(|w| {
            row(
                &w.id,
                &w.name,
                &w.organization_id,
                &w.description,
                [&w.created_at, &w.updated_at],
            )
        }),
    ));
    out.push('\n');
    out.push_str(&output::footer(page.page, page.page_size, page.total_count));
    out
}

fn environment_fields(e: &Environment) -> String {
    output::fields(&[
        ("id", e.id.clone()),
        ("name", e.name.clone()),
        ("description", or_none(&e.description)),
        ("organization id", e.organization_id.clone()),
        ("owner", e.owner.clone()),
        ("created at", output::time(&e.created_at)),
        ("updated at", output::time(&e.updated_at)),
    ])
}

fn workspace_fields(w: &Workspace) -> String {
    output::fields(&[
        ("id", w.id.clone()),
        ("name", w.name.clone()),
        ("description", or_none(&w.description)),
        ("organization id", w.organization_id.clone()),
        ("owner", w.owner.clone()),
        ("created at", output::time(&w.created_at)),
        ("updated at", output::time(&w.updated_at)),
    ])
}

/// One of many found by name: the only one, or a usage error listing them.
fn one_named<T>(
    named: &str,
    what: &str,
    found: Vec<T>,
    id: impl Fn(&T) -> &str,
) -> Result<T, Failure> {
    let mut found = found;
    match found.len() {
        0 => Err(Failure::new(
            Class::NotFound,
            format!("No {what}(s) found with name: {named}"),
        )),
        1 => Ok(found.remove(0)),
        _ => Err(Failure::new(
            Class::Usage,
            format!(
                "several {what}s are named {named:?}: give the id, one of {}",
                found
                    .iter()
                    .map(|f| id(f).to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

pub async fn environment_create(
    target: &Target,
    org: Option<String>,
    name: String,
    description: Option<String>,
) -> Outcome {
    let name = name_of(name)?;
    let org = organization(target, org).await?;
    let made = target
        .client()?
        .create_environment()
        .body(body::<meshery_models::EnvironmentCreate>(json!({
            "name": name,
            "description": description.unwrap_or_default(),
            "organizationId": org,
        }))?)
        .send()
        .await
        .map_err(|e| target.fail(e))?
        .into_inner();
    Ok(format!(
        "Environment named {} created in organization id {}",
        made.name, made.organization_id
    ))
}

pub async fn environment_list(
    target: &Target,
    org: Option<String>,
    l: ListArgs,
    count: bool,
    format: Format,
) -> Outcome {
    let org = organization(target, org).await?;
    let client = target.client()?;
    let mut b = client
        .get_environments()
        .org_id(org)
        .page(l.page)
        .pagesize(l.pagesize)
        .order("name asc");
    if let Some(s) = l.search {
        b = b.search(s);
    }
    let page = b.send().await.map_err(|e| target.fail(e))?.into_inner();
    if count {
        return Ok(format!(
            "Total number of environments: {}",
            page.total_count
        ));
    }
    output::emit(format, &page, environments_table)
}

/// An environment by id, or by name in the organization.
async fn find_environment(
    target: &Target,
    named: &str,
    org: Option<String>,
) -> Result<Environment, Failure> {
    let client = target.client()?;
    // An id first; a name is not one (404), so it is searched for.
    match client
        .get_environment_by_id()
        .environment_id(named)
        .send()
        .await
    {
        Ok(e) => return Ok(e.into_inner()),
        Err(e) if matches!(crate::failure::api_status(&e), Some(400 | 404)) => {}
        Err(e) => return Err(target.fail(e)),
    }
    let org = organization(target, org).await?;
    let page = client
        .get_environments()
        .org_id(org)
        .search(named.to_string())
        .pagesize("all")
        .send()
        .await
        .map_err(|e| target.fail(e))?
        .into_inner();
    let exact: Vec<Environment> = page
        .environments
        .into_iter()
        .filter(|e| e.name == named)
        .collect();
    one_named(named, "environment", exact, |e| &e.id)
}

pub async fn environment_view(
    target: &Target,
    named: String,
    org: Option<String>,
    format: Format,
) -> Outcome {
    let e = find_environment(target, &named, org).await?;
    output::emit(format, &e, environment_fields)
}

pub async fn environment_delete(target: &Target, id: String) -> Outcome {
    target
        .client()?
        .delete_environment()
        .environment_id(id.clone())
        .send()
        .await
        .map_err(|e| target.fail(e))?;
    Ok(format!("Environment with ID {id} has been deleted"))
}

pub async fn workspace_create(
    target: &Target,
    org: Option<String>,
    name: String,
    description: Option<String>,
) -> Outcome {
    let name = name_of(name)?;
    let org = organization(target, org).await?;
    let made = target
        .client()?
        .create_workspace()
        .body(body::<meshery_models::WorkspaceCreate>(json!({
            "name": name,
            "description": description.unwrap_or_default(),
            "organizationId": org,
        }))?)
        .send()
        .await
        .map_err(|e| target.fail(e))?
        .into_inner();
    Ok(format!(
        "Workspace {} created in organization {}",
        made.name, made.organization_id
    ))
}

pub async fn workspace_list(
    target: &Target,
    org: Option<String>,
    l: ListArgs,
    count: bool,
    format: Format,
) -> Outcome {
    let org = organization(target, org).await?;
    let client = target.client()?;
    let mut b = client
        .get_workspaces()
        .org_id(org)
        .page(l.page)
        .pagesize(l.pagesize)
        .order("name asc");
    if let Some(s) = l.search {
        b = b.search(s);
    }
    let page = b.send().await.map_err(|e| target.fail(e))?.into_inner();
    if count {
        return Ok(format!("Total number of workspaces: {}", page.total_count));
    }
    output::emit(format, &page, workspaces_table)
}

/// A workspace by id, or by name in the organization.
async fn find_workspace(
    target: &Target,
    named: &str,
    org: Option<String>,
) -> Result<Workspace, Failure> {
    let client = target.client()?;
    match client
        .get_workspace_by_id()
        .workspace_id(named)
        .send()
        .await
    {
        Ok(w) => return Ok(w.into_inner()),
        Err(e) if matches!(crate::failure::api_status(&e), Some(400 | 404)) => {}
        Err(e) => return Err(target.fail(e)),
    }
    let org = organization(target, org).await?;
    let page = client
        .get_workspaces()
        .org_id(org)
        .search(named.to_string())
        .pagesize("all")
        .send()
        .await
        .map_err(|e| target.fail(e))?
        .into_inner();
    let exact: Vec<Workspace> = page
        .workspaces
        .into_iter()
        .filter(|w| w.name == named)
        .collect();
    one_named(named, "workspace", exact, |w| &w.id)
}

pub async fn workspace_view(
    target: &Target,
    named: String,
    org: Option<String>,
    format: Format,
) -> Outcome {
    let w = find_workspace(target, &named, org).await?;
    output::emit(format, &w, workspace_fields)
}

pub async fn workspace_update(
    target: &Target,
    named: String,
    org: Option<String>,
    name: Option<String>,
    description: Option<String>,
) -> Outcome {
    if name.is_none() && description.is_none() {
        return Err(Failure::new(
            Class::Usage,
            "at least one of --name or --description must be provided",
        ));
    }
    if name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        return Err(Failure::new(Class::Usage, "--name cannot be empty"));
    }
    let current = find_workspace(target, &named, org.clone()).await?;
    if let Some(o) = org.filter(|o| *o != current.organization_id) {
        return Err(Failure::new(
            Class::Usage,
            format!(
                "Provided --orgId {o} does not match the workspace's organization {}",
                current.organization_id
            ),
        ));
    }
    let changed = target
        .client()?
        .update_workspace()
        .workspace_id(current.id.clone())
        .body(body::<meshery_models::WorkspaceInput>(json!({
            "name": name.unwrap_or_default(),
            "description": description.unwrap_or_default(),
            "organizationId": current.organization_id,
        }))?)
        .send()
        .await
        .map_err(|e| target.fail(e))?
        .into_inner();
    Ok(format!("Workspace with ID {} has been updated", changed.id))
}

pub async fn workspace_delete(target: &Target, named: String, org: Option<String>) -> Outcome {
    let w = find_workspace(target, &named, org.clone()).await?;
    if let Some(o) = org.filter(|o| *o != w.organization_id) {
        return Err(Failure::new(
            Class::NotFound,
            format!("Workspace {named} is not in organization {o}"),
        ));
    }
    target
        .client()?
        .delete_workspace()
        .workspace_id(w.id.clone())
        .send()
        .await
        .map_err(|e| target.fail(e))?;
    Ok(format!("Workspace with ID {} has been deleted", w.id))
}
