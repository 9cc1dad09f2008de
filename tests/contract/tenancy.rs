//! Workspaces and environments: Meshery's shapes and statuses (what its UI and mesheryctl
//! take), memberships, and organizations as the fence: nobody sees, changes or deletes
//! anything of an organization they are not in, and a remote provider's keys gate changes.

use serde_json::{Value, json};

use crate::harness::TestServer;
use meshery_client::rest::{Client, Error};

/// The status (and message) of a failed call; panics on success.
fn failure<T: std::fmt::Debug>(
    r: Result<meshery_client::rest::ResponseValue<T>, Error<meshery::models::MeshKitError>>,
) -> (u16, String) {
    match r {
        Err(Error::ErrorResponse(e)) => {
            let status = e.status().as_u16();
            (status, e.into_inner().error)
        }
        other => panic!("expected an error answer, got {other:?}"),
    }
}

/// A workspace body (`WorkspaceCreate` or `WorkspaceInput`).
fn workspace_input<T: serde::de::DeserializeOwned>(name: &str, org: &str) -> T {
    serde_json::from_value(json!({"name": name, "organizationId": org, "description": "d"}))
        .unwrap()
}

/// An environment body (`EnvironmentCreate` or `EnvironmentInput`).
fn environment_input<T: serde::de::DeserializeOwned>(
    name: &str,
    org: &str,
    description: &str,
) -> T {
    serde_json::from_value(json!({"name": name, "organizationId": org, "description": description}))
        .unwrap()
}

async fn first_org(client: &Client) -> String {
    client
        .get_orgs()
        .send()
        .await
        .unwrap()
        .into_inner()
        .organizations[0]
        .id
        .clone()
}

async fn org_named(client: &Client, name: &str) -> String {
    client
        .get_orgs()
        .send()
        .await
        .unwrap()
        .into_inner()
        .organizations
        .into_iter()
        .find(|o| o.name == name)
        .unwrap_or_else(|| panic!("no organization {name}"))
        .id
}

async fn raw(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn workspaces_and_environments_as_meshery_s_clients_use_them() {
    let server = TestServer::start().await;
    let client = server.client();
    let http = server.http();
    let org = first_org(&client).await;

    // mesheryctl's create: snake_case body, 201, and the answer read in both casings.
    let (status, made) = raw(http.post(server.url("/api/workspaces")).json(&json!({
        "name": "alpha", "description": "first", "organization_id": org,
    })))
    .await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["organizationId"], org.as_str());
    assert_eq!(made["organization_id"], org.as_str());
    assert!(made["created_at"].is_string(), "{made}");
    let alpha = made["id"].as_str().unwrap().to_string();
    let beta = client
        .create_workspace()
        .body(workspace_input::<meshery::models::WorkspaceCreate>(
            "beta", &org,
        ))
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(beta.owner, beta.owner_id);

    // Lists: orgId required (also as mesheryctl's orgID), newest change first, snake keys.
    let (status, page) = raw(http.get(server.url("/api/workspaces")).query(&[
        ("orgID", org.as_str()),
        ("page", "0"),
        ("pagesize", "10"),
    ]))
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["total_count"], 2);
    let names: Vec<&str> = page["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["beta", "alpha"]);
    assert_eq!(page["workspaces"][0]["organization_id"], org.as_str());
    assert_eq!(
        raw(http.get(server.url("/api/workspaces"))).await.0,
        400,
        "no orgId"
    );
    let elsewhere = uuid::Uuid::new_v4().to_string();
    assert_eq!(
        failure(
            client
                .get_workspaces()
                .org_id(elsewhere.as_str())
                .send()
                .await
        )
        .0,
        404
    );
    assert_eq!(
        failure(
            client
                .create_workspace()
                .body(workspace_input::<meshery::models::WorkspaceCreate>(
                    "x", &elsewhere
                ))
                .send()
                .await
        )
        .0,
        404
    );
    let by_name = client
        .get_workspaces()
        .org_id(org.as_str())
        .order("name asc")
        .pagesize("1")
        .page(1)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (by_name.total_count, by_name.workspaces[0].name.as_str()),
        (2, "beta")
    );
    let searched = client
        .get_workspaces()
        .org_id(org.as_str())
        .search("ALP")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(searched.workspaces.len(), 1);
    for nameless in [
        json!({"organizationId": org}),
        json!({"name": " \t", "organizationId": org}),
    ] {
        let (status, _) = raw(http.post(server.url("/api/workspaces")).json(&nameless)).await;
        assert_eq!(status, 400, "a workspace needs a name: {nameless}");
    }

    // Changes: an empty name keeps the name; another organization is refused.
    let changed = client
        .update_workspace()
        .workspace_id(alpha.as_str())
        .body(
            serde_json::from_value::<meshery::models::WorkspaceInput>(
                json!({"name": "", "description": "second", "organizationId": org}),
            )
            .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (changed.name.as_str(), changed.description.as_str()),
        ("alpha", "second")
    );
    assert!(changed.updated_at > changed.created_at);
    assert_eq!(
        failure(
            client
                .update_workspace()
                .workspace_id(alpha.as_str())
                .body(workspace_input::<meshery::models::WorkspaceInput>(
                    "alpha", &elsewhere
                ))
                .send()
                .await
        )
        .0,
        400
    );
    let got = client
        .get_workspace_by_id()
        .workspace_id(alpha.as_str())
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.description, "second");
    assert_eq!(
        failure(
            client
                .get_workspace_by_id()
                .workspace_id(alpha.as_str())
                .org_id(elsewhere.as_str())
                .send()
                .await
        )
        .0,
        404
    );

    // Environments: mesheryctl's create answers 200; search matches descriptions too.
    let (status, env) = raw(http.post(server.url("/api/environments")).json(&json!({
        "organization_id": org, "description": "production clusters", "name": "prod",
    })))
    .await;
    assert_eq!(status, 200, "{env}");
    assert_eq!(env["schemaVersion"], "environments.meshery.io/v1beta3");
    let prod = env["id"].as_str().unwrap().to_string();
    let staging = client
        .create_environment()
        .body(environment_input::<meshery::models::EnvironmentCreate>(
            "staging",
            &org,
            "pre-release",
        ))
        .send()
        .await
        .unwrap()
        .into_inner();
    let found = client
        .get_environments()
        .org_id(org.as_str())
        .search("production")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.environments.len(), 1);
    assert_eq!(found.environments[0].id, prod);
    let (status, page) = raw(http
        .get(server.url("/api/environments"))
        .query(&[("orgID", org.as_str())]))
    .await;
    assert_eq!(
        (status, page["total_count"].as_i64()),
        (200, Some(2)),
        "{page}"
    );
    let renamed = client
        .update_environment()
        .environment_id(staging.id.as_str())
        .body(environment_input::<meshery::models::EnvironmentInput>(
            "stage", &org, "",
        ))
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (renamed.name.as_str(), renamed.description.as_str()),
        ("stage", "pre-release")
    );

    // Environments in a workspace: assigning twice keeps one membership; the others are
    // what `{"assigned":false}` offers.
    let assign = || async {
        client
            .assign_environment_to_workspace()
            .workspace_id(alpha.as_str())
            .environment_id(prod.as_str())
            .send()
            .await
            .unwrap()
            .into_inner()
    };
    let first = assign().await;
    assert_eq!(assign().await.id, first.id);
    let members = |filter: &'static str| {
        let (client, alpha) = (client.clone(), alpha.clone());
        async move {
            client
                .get_environments_of_workspace()
                .workspace_id(alpha.as_str())
                .filter(filter)
                .send()
                .await
                .unwrap()
                .into_inner()
                .environments
                .into_iter()
                .map(|e| e.name)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(members(r#"{"assigned":true}"#).await, ["prod"]);
    assert_eq!(members(r#"{"assigned":false}"#).await, ["stage"]);
    assert_eq!(
        failure(
            client
                .get_environments_of_workspace()
                .workspace_id(alpha.as_str())
                .filter("{assigned}")
                .send()
                .await
        )
        .0,
        400
    );

    // Designs in a workspace.
    let design = client
        .save_pattern()
        .body(
            serde_json::from_value::<meshery::models::PatternInput>(
                json!({"patternFile": crate::patterns::design(
                    "shared-design",
                    json!([crate::patterns::config_map("cm")])
                )}),
            )
            .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .into_inner()
        .remove(0)
        .id;
    let mapping = client
        .assign_design_to_workspace()
        .workspace_id(alpha.as_str())
        .design_id(design.as_str())
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mapping.design_id, design);
    let (status, designs) = raw(http.get(server.url(&format!(
        "/api/workspaces/{alpha}/designs?page=0&pagesize=10&search=&order=updated_at%20desc"
    ))))
    .await;
    assert_eq!(status, 200);
    assert_eq!(designs["totalCount"], 1);
    assert_eq!(designs["designs"][0]["id"], design.as_str());
    assert_eq!(
        failure(
            client
                .assign_design_to_workspace()
                .workspace_id(alpha.as_str())
                .design_id(uuid::Uuid::new_v4().to_string().as_str())
                .send()
                .await
        )
        .0,
        404
    );

    // A connection in an environment.
    let cluster = crate::kube_api::KubeApi::start(Some("tenancy-token")).await;
    let (status, _) = raw(http
        .post(server.url("/api/system/kubernetes"))
        .header("content-type", "application/yaml")
        .body(cluster.kubeconfig("tenancy-cluster")))
    .await;
    assert_eq!(status, 200);
    let connection = client
        .list_connections()
        .send()
        .await
        .unwrap()
        .into_inner()
        .connections[0]
        .clone();
    let offered = |filter: &'static str| {
        let (client, prod) = (client.clone(), prod.clone());
        async move {
            client
                .get_environment_connections()
                .environment_id(prod.as_str())
                .filter(filter)
                .send()
                .await
                .unwrap()
                .into_inner()
        }
    };
    assert_eq!(offered(r#"{"assigned":true}"#).await.total_count, 0);
    assert_eq!(
        offered(r#"{"assigned":false}"#).await.connections[0].id,
        connection.id
    );
    let added = client
        .add_connection_to_environment()
        .environment_id(prod.as_str())
        .connection_id(connection.id.as_str())
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(added.connection_id, connection.id);
    let inside = offered(r#"{"assigned":true}"#).await;
    assert_eq!(inside.connections[0].name, "tenancy-cluster");
    // The connection lists the environments it is in, as Meshery's connections do.
    let listed = client.list_connections().send().await.unwrap().into_inner();
    let envs: Vec<&str> = listed.connections[0]
        .environments
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(envs, ["prod"]);
    assert_eq!(offered(r#"{"assigned":false}"#).await.total_count, 0);
    assert_eq!(
        failure(
            client
                .add_connection_to_environment()
                .environment_id(prod.as_str())
                .connection_id(uuid::Uuid::new_v4().to_string().as_str())
                .send()
                .await
        )
        .0,
        404
    );
    let removed = client
        .remove_connection_from_environment()
        .environment_id(prod.as_str())
        .connection_id(connection.id.as_str())
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(removed.id, added.id);
    assert_eq!(
        failure(
            client
                .remove_connection_from_environment()
                .environment_id(prod.as_str())
                .connection_id(connection.id.as_str())
                .send()
                .await
        )
        .0,
        404
    );

    // A deleted connection leaves its environments; uploaded again, it is in none.
    client
        .add_connection_to_environment()
        .environment_id(prod.as_str())
        .connection_id(connection.id.as_str())
        .send()
        .await
        .unwrap();
    let (status, _) =
        raw(http.delete(server.url(&format!("/api/integrations/connections/{}", connection.id))))
            .await;
    assert!(matches!(status, 200 | 204), "{status}");
    let (status, _) = raw(http
        .post(server.url("/api/system/kubernetes"))
        .header("content-type", "application/yaml")
        .body(cluster.kubeconfig("tenancy-cluster")))
    .await;
    assert_eq!(status, 200);
    let again = client.list_connections().send().await.unwrap().into_inner();
    assert_eq!(
        again.connections[0].id, connection.id,
        "the same context, the same id"
    );
    assert!(again.connections[0].environments.is_empty());
    assert_eq!(offered(r#"{"assigned":true}"#).await.total_count, 0);

    // Teams and views are a remote provider's: none here.
    let (status, teams) =
        raw(http.get(server.url(&format!("/api/workspaces/{alpha}/teams")))).await;
    assert_eq!(
        (status, teams["total_count"].as_i64()),
        (200, Some(0)),
        "{teams}"
    );
    let team = uuid::Uuid::new_v4().to_string();
    assert_eq!(
        failure(
            client
                .assign_team_to_workspace()
                .workspace_id(alpha.as_str())
                .team_id(team.as_str())
                .send()
                .await
        )
        .0,
        404
    );

    // Deleting answers 200 with what was deleted, and its memberships go with it.
    let (status, deleted) =
        raw(http.delete(server.url(&format!("/api/environments/{prod}")))).await;
    assert_eq!((status, deleted["name"].as_str()), (200, Some("prod")));
    assert!(members(r#"{"assigned":true}"#).await.is_empty());
    let gone = client
        .delete_workspace()
        .workspace_id(alpha.as_str())
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(gone.id, alpha);
    assert_eq!(
        failure(
            client
                .get_workspace_by_id()
                .workspace_id(alpha.as_str())
                .send()
                .await
        )
        .0,
        404
    );
    assert_eq!(
        failure(
            client
                .unassign_design_from_workspace()
                .workspace_id(alpha.as_str())
                .design_id(design.as_str())
                .send()
                .await
        )
        .0,
        404
    );
    drop(cluster);
    server.finish().await;
}

#[tokio::test]
async fn organizations_fence_workspaces_and_keys_gate_changes() {
    let s = crate::auth::setup().await;
    let (alice, bob, root) = (
        s.client_as("alice"),
        s.client_as("bob"),
        s.client_as("root"),
    );
    let local = s.server.client();
    let alices_team = org_named(&alice, "alice's team").await;
    let reference = org_named(&alice, "Reference").await;

    // Alice's workspace and environment in her own organization: nobody else's.
    let ws = alice
        .create_workspace()
        .body(workspace_input::<meshery::models::WorkspaceCreate>(
            "alice-ws",
            &alices_team,
        ))
        .send()
        .await
        .unwrap()
        .into_inner();
    let env = alice
        .create_environment()
        .body(environment_input::<meshery::models::EnvironmentCreate>(
            "alice-env",
            &alices_team,
            "",
        ))
        .send()
        .await
        .unwrap()
        .into_inner();
    for other in [&bob, &root, &local] {
        assert_eq!(
            failure(
                other
                    .get_workspaces()
                    .org_id(alices_team.as_str())
                    .send()
                    .await
            )
            .0,
            404
        );
        assert_eq!(
            failure(
                other
                    .get_workspace_by_id()
                    .workspace_id(ws.id.as_str())
                    .send()
                    .await
            )
            .0,
            404
        );
        assert_eq!(
            failure(
                other
                    .update_workspace()
                    .workspace_id(ws.id.as_str())
                    .body(workspace_input::<meshery::models::WorkspaceInput>(
                        "taken",
                        &alices_team
                    ))
                    .send()
                    .await
            )
            .0,
            404
        );
        assert_eq!(
            failure(
                other
                    .delete_workspace()
                    .workspace_id(ws.id.as_str())
                    .send()
                    .await
            )
            .0,
            404
        );
        assert_eq!(
            failure(
                other
                    .get_environment_by_id()
                    .environment_id(env.id.as_str())
                    .send()
                    .await
            )
            .0,
            404
        );
        assert_eq!(
            failure(
                other
                    .delete_environment()
                    .environment_id(env.id.as_str())
                    .send()
                    .await
            )
            .0,
            404
        );
        assert_eq!(
            failure(
                other
                    .get_environment_connections()
                    .environment_id(env.id.as_str())
                    .send()
                    .await
            )
            .0,
            404
        );
        assert_eq!(
            failure(
                other
                    .create_environment()
                    .body(environment_input::<meshery::models::EnvironmentCreate>(
                        "x",
                        &alices_team,
                        ""
                    ))
                    .send()
                    .await
            )
            .0,
            404
        );
    }
    // Still there, unchanged.
    let kept = alice
        .get_workspace_by_id()
        .workspace_id(ws.id.as_str())
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(kept.name, "alice-ws");

    // The shared organization: the administrator makes, everyone sees, only keys change.
    let shared = root
        .create_workspace()
        .body(workspace_input::<meshery::models::WorkspaceCreate>(
            "shared-ws",
            &reference,
        ))
        .send()
        .await
        .unwrap()
        .into_inner();
    let listed = alice
        .get_workspaces()
        .org_id(reference.as_str())
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.workspaces.len(), 1);
    assert_eq!(listed.workspaces[0].id, shared.id);
    let (status, message) = failure(
        alice
            .delete_workspace()
            .workspace_id(shared.id.as_str())
            .send()
            .await,
    );
    assert_eq!(status, 403);
    assert!(message.contains("Delete Workspace"), "{message}");
    let (status, message) = failure(
        alice
            .create_environment()
            .body(environment_input::<meshery::models::EnvironmentCreate>(
                "nope", &reference, "",
            ))
            .send()
            .await,
    );
    assert_eq!(status, 403);
    assert!(message.contains("Create Environment"), "{message}");
    // An environment of another organization stays out of a workspace (and out of reach
    // for one who is not in it).
    assert_eq!(
        failure(
            root.assign_environment_to_workspace()
                .workspace_id(shared.id.as_str())
                .environment_id(env.id.as_str())
                .send()
                .await
        )
        .0,
        404
    );
    let (status, _) = failure(
        alice
            .assign_environment_to_workspace()
            .workspace_id(ws.id.as_str())
            .environment_id(
                root.create_environment()
                    .body(environment_input::<meshery::models::EnvironmentCreate>(
                        "shared-env",
                        &reference,
                        "",
                    ))
                    .send()
                    .await
                    .unwrap()
                    .into_inner()
                    .id
                    .as_str(),
            )
            .send()
            .await,
    );
    assert_eq!(status, 409);
    // A public design shared by another member stays only while it is public.
    let design = alice
        .save_pattern()
        .body(
            serde_json::from_value::<meshery::models::PatternInput>(json!({
                "patternFile": crate::patterns::design("alice-public", json!([crate::patterns::config_map("cm")])),
                "visibility": "public",
            }))
            .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .into_inner()
        .remove(0);
    root.assign_design_to_workspace()
        .workspace_id(shared.id.as_str())
        .design_id(design.id.as_str())
        .send()
        .await
        .unwrap();
    let designs = |who: Client| {
        let id = shared.id.clone();
        async move {
            who.get_designs_of_workspace()
                .workspace_id(id.as_str())
                .send()
                .await
                .unwrap()
                .into_inner()
                .total_count
        }
    };
    assert_eq!(designs(bob.clone()).await, 1);
    alice
        .save_pattern()
        .body(
            serde_json::from_value::<meshery::models::PatternInput>(json!({
                "id": design.id, "patternFile": design.pattern_file, "visibility": "private",
            }))
            .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        designs(bob.clone()).await,
        0,
        "a private design of another is not shared"
    );

    // Teams are the provider's: a workspace keeps which are its members.
    let teams = root
        .get_teams()
        .org_id(reference.as_str())
        .order("name asc")
        .send()
        .await
        .unwrap()
        .into_inner()
        .teams;
    let names: Vec<&str> = teams.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["admins", "everyone"]);
    let everyone = teams[1].id.clone();
    let (status, message) = failure(
        alice
            .assign_team_to_workspace()
            .workspace_id(shared.id.as_str())
            .team_id(everyone.as_str())
            .send()
            .await,
    );
    assert_eq!(status, 403);
    assert!(message.contains("Assign team to workspace"), "{message}");
    let mapping = root
        .assign_team_to_workspace()
        .workspace_id(shared.id.as_str())
        .team_id(everyone.as_str())
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mapping.team_id, everyone);
    let of_workspace = |filter: &'static str| {
        let (alice, id) = (alice.clone(), shared.id.clone());
        async move {
            alice
                .get_teams_of_workspace()
                .workspace_id(id.as_str())
                .filter(filter)
                .send()
                .await
                .unwrap()
                .into_inner()
                .teams
                .into_iter()
                .map(|t| t.name)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(of_workspace(r#"{"assigned":true}"#).await, ["everyone"]);
    assert_eq!(of_workspace(r#"{"assigned":false}"#).await, ["admins"]);
    let stranger = uuid::Uuid::new_v4().to_string();
    assert_eq!(
        failure(
            root.assign_team_to_workspace()
                .workspace_id(shared.id.as_str())
                .team_id(stranger.as_str())
                .send()
                .await
        )
        .0,
        404
    );
    root.unassign_team_from_workspace()
        .workspace_id(shared.id.as_str())
        .team_id(everyone.as_str())
        .send()
        .await
        .unwrap();
    assert!(of_workspace(r#"{"assigned":true}"#).await.is_empty());
    assert_eq!(
        failure(bob.get_teams().org_id(alices_team.as_str()).send().await).0,
        404
    );

    // Views too: the provider's saved views of the workspace's organization.
    let views_of = |client: Client, workspace: String, filter: &'static str| async move {
        client
            .get_views_of_workspace()
            .workspace_id(workspace.as_str())
            .filter(filter)
            .order("name asc")
            .send()
            .await
            .unwrap()
            .into_inner()
            .views
    };
    let open = views_of(root.clone(), shared.id.clone(), r#"{"assigned":false}"#).await;
    let names: Vec<&str> = open.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["overview", "workloads"]);
    assert!(
        open.iter()
            .all(|v| v.workspace_id == shared.id && v.organization_id == reference)
    );
    let (status, message) = failure(
        alice
            .assign_view_to_workspace()
            .workspace_id(shared.id.as_str())
            .view_id(open[0].id.as_str())
            .send()
            .await,
    );
    assert_eq!((status, message.contains("Edit Workspace")), (403, true));
    let mapping = root
        .assign_view_to_workspace()
        .workspace_id(shared.id.as_str())
        .view_id(open[0].id.as_str())
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mapping.view_id, open[0].id);
    let assigned = views_of(alice.clone(), shared.id.clone(), r#"{"assigned":true}"#).await;
    assert_eq!(
        assigned.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(),
        ["overview"]
    );
    // A view of another organization (alice's own) is no view of this workspace's.
    let alices_views = views_of(alice.clone(), ws.id.clone(), r#"{"assigned":false}"#).await;
    assert_eq!(alices_views.len(), 2);
    assert!(
        alices_views
            .iter()
            .all(|v| v.id != open[0].id && v.id != open[1].id)
    );
    assert_eq!(
        failure(
            root.assign_view_to_workspace()
                .workspace_id(shared.id.as_str())
                .view_id(alices_views[0].id.as_str())
                .send()
                .await
        )
        .0,
        404
    );
    let ended = root
        .unassign_view_from_workspace()
        .workspace_id(shared.id.as_str())
        .view_id(open[0].id.as_str())
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ended.id, mapping.id);
    assert!(
        views_of(alice.clone(), shared.id.clone(), r#"{"assigned":true}"#)
            .await
            .is_empty()
    );

    // The provider is asked once per token for organizations and once per organization for
    // keys, however many requests follow (its answers are kept like a confirmation).
    let before = s
        .provider
        .provider
        .identity_requests
        .load(std::sync::atomic::Ordering::Relaxed);
    for _ in 0..5 {
        alice
            .get_workspaces()
            .org_id(reference.as_str())
            .send()
            .await
            .unwrap();
        alice
            .get_environments()
            .org_id(alices_team.as_str())
            .send()
            .await
            .unwrap();
    }
    let asked = s
        .provider
        .provider
        .identity_requests
        .load(std::sync::atomic::Ordering::Relaxed)
        - before;
    assert_eq!(
        asked, 0,
        "alice's organizations and keys were asked for again"
    );
    let gone = root
        .delete_workspace()
        .workspace_id(shared.id.as_str())
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(gone.name, "shared-ws");
    s.finish().await;
}

/// Sets the organization the user chose (Meshery keeps it in their preferences).
async fn select_org(client: &Client, org: &str) {
    client
        .update_user_prefs()
        .body(meshery::models::UserPrefsUpdate {
            selected_organization_id: Some(org.parse().unwrap()),
            ..Default::default()
        })
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn keys_of_the_current_organization_gate_designs_performance_and_connections() {
    let s = crate::auth::setup().await;
    let (alice, root) = (s.client_as("alice"), s.client_as("root"));
    let reference = org_named(&alice, "Reference").await;
    let bobs_team = org_named(&s.client_as("bob"), "bob's team").await;
    let design = |name: &str| {
        serde_json::from_value::<meshery::models::PatternInput>(json!({
            "patternFile": crate::patterns::design(name, json!([crate::patterns::config_map("cm")]))
        }))
        .unwrap()
    };
    let profile = serde_json::from_value::<meshery::models::PerformanceProfileInput>(json!({
        "name": "keyed", "endpoints": ["http://127.0.0.1:9/"], "loadGenerators": ["fortio"]
    }))
    .unwrap();

    // No organization chosen: the first that GET /api/identity/orgs lists, where Meshery's UI
    // starts (her own: ties in the default order keep the provider's), holding every key.
    let listed = alice.get_orgs().send().await.unwrap().into_inner();
    assert_eq!(listed.organizations[0].name, "alice's team");
    let mine = alice
        .save_pattern()
        .body(design("mine"))
        .send()
        .await
        .unwrap()
        .into_inner()
        .remove(0);

    // In the shared organization alice may only look: changes are refused, naming the key.
    select_org(&alice, &reference).await;
    let (status, message) = failure(alice.save_pattern().body(design("theirs")).send().await);
    assert_eq!(status, 403);
    assert!(message.contains("\"Create new design\""), "{message}");
    assert!(message.contains(&reference), "{message}");
    let (status, message) = failure(
        alice
            .delete_pattern()
            .pattern_id(mine.id.as_str())
            .send()
            .await,
    );
    assert_eq!(
        (status, message.contains("\"Delete a design\"")),
        (403, true)
    );
    let (status, message) = failure(alice.save_perf_profile().body(profile.clone()).send().await);
    assert_eq!(
        (status, message.contains("\"Add performace profile\"")),
        (403, true)
    );
    let (status, message) = failure(
        alice
            .delete_connection()
            .connection_id("00000000-0000-0000-0000-000000000000")
            .send()
            .await,
    );
    assert_eq!(
        (status, message.contains("\"Delete a connection\"")),
        (403, true)
    );
    // Looking needs only the view keys she holds there.
    let listed = alice.list_patterns().send().await.unwrap().into_inner();
    assert!(listed.patterns.iter().any(|p| p.id == mine.id));
    alice
        .get_pattern()
        .pattern_id(mine.id.as_str())
        .send()
        .await
        .unwrap();
    alice.list_perf_profiles().send().await.unwrap();
    alice.list_connections().send().await.unwrap();
    // GraphQL asks for the same keys as REST.
    let graphql = |query: String| {
        let (http, url, token) = (
            s.server.http(),
            s.server.url("/api/system/graphql/query"),
            s.token("alice"),
        );
        async move {
            http.post(url)
                .bearer_auth(token)
                .json(&json!({ "query": query }))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let refused = graphql(format!(
        r#"mutation {{ deletePattern(input: {{id: "{}"}}) }}"#,
        mine.id
    ))
    .await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "meshery-server-1015",
        "{refused}"
    );
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("\"Delete a design\"")
    );
    let looked = graphql(
        "{ fetchPatterns(selector: {page: \"0\", pageSize: \"10\"}) { totalCount } }".into(),
    )
    .await;
    assert!(looked["errors"].is_null(), "{looked}");
    assert!(
        looked["data"]["fetchPatterns"]["totalCount"].as_i64() >= Some(1),
        "{looked}"
    );

    // An administrator of the shared organization holds the keys there.
    select_org(&root, &reference).await;
    root.save_pattern()
        .body(design("admins"))
        .send()
        .await
        .unwrap();

    // A choice of an organization she is not in counts for nothing: her first again.
    select_org(&alice, &bobs_team).await;
    alice
        .save_perf_profile()
        .body(profile)
        .send()
        .await
        .unwrap();
    alice
        .delete_pattern()
        .pattern_id(mine.id.as_str())
        .send()
        .await
        .unwrap();

    // The Local provider grants every key: its user is never asked.
    let local = s.server.client();
    local
        .save_pattern()
        .body(design("local"))
        .send()
        .await
        .unwrap();
    s.finish().await;
}
