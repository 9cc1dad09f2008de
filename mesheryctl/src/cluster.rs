//! `connection list|view|delete` over `/api/integrations/connections`, and `cluster
//! resources` over `/api/system/meshsync/resources` (the inventory).

use meshery_models::{ClusterResourcePage, Connection, ConnectionPage, ConnectionStatus};

use crate::api::Target;
use crate::failure::{Class, Failure, Outcome};
use crate::output::{self, Format};
use crate::perf::ListArgs;

/// A text field of a connection's metadata (empty when absent).
fn meta(c: &Connection, key: &str) -> String {
    c.metadata
        .get(key)
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string()
}

/// Where a connection is: a context's API server, another kind's URL.
fn location(c: &Connection) -> String {
    c.metadata
        .get("server")
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .or_else(|| c.url.clone())
        .unwrap_or_default()
}

fn connections_table(page: &ConnectionPage) -> String {
    let mut out = output::table(
        &["id", "name", "kind", "status", "server", "version", "since"],
        page.connections.iter().map(|c| {
            vec![
                c.id.clone(),
                c.name.clone(),
                c.kind.clone(),
                c.status.to_string(),
                location(c),
                meta(c, "version"),
                output::time(&c.updated_at),
            ]
        }),
    );
    out.push('\n');
    out.push_str(&output::footer(page.page, page.page_size, page.total_count));
    out
}

fn connection_fields(c: &Connection) -> String {
    let mut fields = vec![
        ("id", c.id.clone()),
        ("name", c.name.clone()),
        ("kind", c.kind.clone()),
        ("status", c.status.to_string()),
    ];
    let reason = meta(c, "reason");
    if !reason.is_empty() {
        fields.push(("reason", reason));
    }
    if c.kind == "kubernetes" {
        let version = meta(c, "version");
        fields.extend([
            ("server", location(c)),
            (
                "version",
                if version.is_empty() {
                    "-".into()
                } else {
                    version
                },
            ),
            ("cluster", meta(c, "cluster")),
            ("user", meta(c, "user")),
            ("namespace", meta(c, "namespace")),
            ("auth", meta(c, "auth")),
            ("context id", meta(c, "id")),
        ]);
    } else {
        fields.push(("url", location(c)));
        if let Some(credential) = &c.credential_id {
            fields.push(("credential", credential.clone()));
        }
    }
    fields.extend([
        ("created", output::time(&c.created_at)),
        ("since", output::time(&c.updated_at)),
    ]);
    output::fields(&fields)
}

fn resources_table(page: &ClusterResourcePage) -> String {
    let mut out = output::table(
        &[
            "kind",
            "name",
            "namespace",
            "api version",
            "cluster",
            "created",
        ],
        page.resources.iter().map(|r| {
            vec![
                r.kind.clone(),
                r.metadata.name.clone(),
                r.metadata.namespace.clone().unwrap_or_default(),
                r.api_version.clone(),
                r.cluster_id.clone(),
                r.metadata.creation_timestamp.clone(),
            ]
        }),
    );
    out.push('\n');
    out.push_str(&output::footer(page.page, page.page_size, page.total_count));
    out
}

pub async fn list(target: &Target, l: ListArgs, status: Vec<String>, format: Format) -> Outcome {
    let statuses = status
        .iter()
        .map(|s| {
            serde_json::from_value::<ConnectionStatus>(serde_json::Value::String(s.clone()))
                .map_err(|_| {
                    Failure::new(
                        Class::Usage,
                        format!(
                            "--status {s:?}: use discovered, registered, connected, ignored, maintenance, disconnected or deleted"
                        ),
                    )
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let client = target.client()?;
    let mut b = client
        .list_connections()
        .page(l.page)
        .pagesize(l.pagesize)
        .order("name asc")
        .status(statuses);
    if let Some(s) = l.search {
        b = b.search(s);
    }
    let page = b.send().await.map_err(|e| target.fail(e))?.into_inner();
    output::emit(format, &page, connections_table)
}

/// A connection by id, or by name when exactly one has it.
async fn find(target: &Target, named: &str) -> Result<Connection, Failure> {
    let client = target.client()?;
    let page = client
        .list_connections()
        .pagesize("all")
        .send()
        .await
        .map_err(|e| target.fail(e))?
        .into_inner();
    if let Some(c) = page.connections.iter().find(|c| c.id == named) {
        return Ok(c.clone());
    }
    let mut by_name = page.connections.iter().filter(|c| c.name == named);
    match (by_name.next(), by_name.next()) {
        (Some(c), None) => Ok(c.clone()),
        (Some(_), Some(_)) => Err(Failure::new(
            Class::Usage,
            format!(
                "several connections are named {named:?}: give the id (mesheryctl connection list)"
            ),
        )),
        (None, _) => Err(Failure::new(
            Class::NotFound,
            format!("no connection with id or name {named:?}"),
        )),
    }
}

pub async fn view(target: &Target, named: String, format: Format) -> Outcome {
    let c = find(target, &named).await?;
    output::emit(format, &c, connection_fields)
}

pub async fn delete(target: &Target, named: String) -> Outcome {
    let c = find(target, &named).await?;
    target
        .client()?
        .delete_connection()
        .connection_id(c.id.clone())
        .send()
        .await
        .map_err(|e| target.fail(e))?;
    Ok(format!(
        "connection {} ({}) deleted, with its context and inventory",
        c.name, c.id
    ))
}

/// Flag values as the client's bounded types.
fn parse_all<T: std::str::FromStr>(flag: &str, values: &[String]) -> Result<Vec<T>, Failure> {
    values
        .iter()
        .map(|v| {
            v.parse()
                .map_err(|_| Failure::new(Class::Usage, format!("--{flag} {v:?}: too long")))
        })
        .collect()
}

/// What `cluster resources` lists.
pub struct ResourceArgs {
    pub list: ListArgs,
    /// Connections (id or name) or context ids.
    pub clusters: Vec<String>,
    pub kinds: Vec<String>,
    pub namespaces: Vec<String>,
    pub selector: Option<String>,
}

pub async fn resources(target: &Target, a: ResourceArgs, format: Format) -> Outcome {
    let mut cluster_ids = Vec::new();
    for c in &a.clusters {
        // A connection's id or name names its context; anything else is taken as a
        // context id.
        let id = match find(target, c).await {
            Ok(found) => meta(&found, "kubernetes_server_id"),
            Err(f) if f.class == Class::NotFound => c.clone(),
            Err(f) => return Err(f),
        };
        cluster_ids.push(
            id.parse()
                .map_err(|_| Failure::new(Class::Usage, format!("--cluster {c:?}: too long")))?,
        );
    }
    let client = target.client()?;
    let mut b = client
        .list_cluster_resources()
        .page(a.list.page)
        .pagesize(a.list.pagesize)
        .cluster_id(cluster_ids)
        .kind(parse_all("kind", &a.kinds)?)
        .namespace(parse_all("namespace", &a.namespaces)?)
        .spec(format != Format::Table)
        .status(format != Format::Table);
    if let Some(s) = a.list.search {
        b = b.search(
            s.parse::<meshery_client::rest::types::ListClusterResourcesSearch>()
                .map_err(|_| Failure::new(Class::Usage, "--search: too long"))?,
        );
    }
    if let Some(s) = a.selector {
        b = b.label_selector(
            s.parse::<meshery_client::rest::types::ListClusterResourcesLabelSelector>()
                .map_err(|_| Failure::new(Class::Usage, format!("--selector {s:?}: not a label selector (key=value, key!=value, key, !key)")))?,
        );
    }
    let page = b.send().await.map_err(|e| target.fail(e))?.into_inner();
    output::emit(format, &page, resources_table)
}
