//! Designs deployed to a cluster (the test API server): applied with server-side apply,
//! reported per component, redeployed, dry-run, undeployed.

use crate::kubernetes::Stored;
use base64::Engine;
use meshery::models::{DeployOutcomeStatus as S, PatternDeployInput, PatternImport};
use serde_json::{Value, json};

use crate::harness::TestServer;
use crate::kube_api::KubeApi;

const SAMPLE: &str = include_str!("../support/sample-app.yaml");

fn body(id: Option<&str>, file: Option<&str>) -> PatternDeployInput {
    let mut m = serde_json::Map::new();
    if let Some(id) = id {
        m.insert("patternId".into(), json!(id));
    }
    if let Some(file) = file {
        m.insert("patternFile".into(), json!(file));
    }
    serde_json::from_value(Value::Object(m)).unwrap()
}

fn statuses(r: &meshery::models::PatternDeployResult) -> Vec<(String, S)> {
    r.results
        .iter()
        .map(|o| (format!("{}/{}", o.kind, o.name), o.status))
        .collect()
}

#[tokio::test]
async fn a_design_is_deployed_redeployed_dry_run_and_undeployed() {
    let api = KubeApi::start(Some("deploy-token")).await;
    let server = TestServer::start().await;
    let client = server.client();

    // Without a context there is nowhere to deploy.
    let nowhere = client
        .deploy_pattern()
        .body(body(None, Some("name: x\ncomponents: []\n")))
        .send()
        .await;
    assert!(
        matches!(&nowhere, Err(meshery_client::rest::Error::ErrorResponse(e)) if e.status() == 400),
        "deploying without a context was not refused"
    );

    let contexts = client
        .upload_kubeconfig()
        .body(api.kubeconfig("test-cluster"))
        .send()
        .await
        .unwrap()
        .into_inner()
        .contexts();
    let context = contexts[0].id.clone();
    let pattern = client
        .import_pattern()
        .body(PatternImport {
            file: Some(serde_json::Value::from(
                base64::engine::general_purpose::STANDARD.encode(SAMPLE),
            )),
            file_name: Some("sample-app.yaml".parse().unwrap()),
            url: None,
            name: Some("sample".parse().unwrap()),
        })
        .send()
        .await
        .unwrap()
        .into_inner()
        .remove(0);

    let deployed = client
        .deploy_pattern()
        .body(body(Some(&pattern.id), None))
        .send()
        .await
        .unwrap()
        .into_inner();
    assert!(deployed.succeeded, "{deployed:?}");
    // Configuration before workloads; then the design's order.
    assert_eq!(
        statuses(&deployed),
        [
            ("ConfigMap/web-config".to_string(), S::Applied),
            ("Deployment/web".to_string(), S::Applied),
            ("Service/web".to_string(), S::Applied)
        ]
    );
    assert!(deployed.results.iter().all(|r| r.context_id == context
        && r.context_name == "test-cluster"
        && r.namespace.as_deref() == Some("default")));
    let stored = api.object("apps", "deployments", "default", "web").unwrap();
    assert_eq!(stored["spec"]["replicas"], 2);
    assert_eq!(stored["metadata"]["managedFields"][0]["manager"], "meshery");
    assert_eq!(stored["metadata"]["managedFields"][0]["operation"], "Apply");

    // The same again changes nothing.
    let again = client
        .deploy_pattern()
        .body(body(Some(&pattern.id), None))
        .contexts(vec![context.parse().unwrap()])
        .send()
        .await
        .unwrap()
        .into_inner();
    assert!(
        again.results.iter().all(|r| r.status == S::Unchanged),
        "{again:?}"
    );

    // A new replica count in the design reaches the cluster on redeploy.
    let scaled = pattern.pattern_file.replace("replicas: 2", "replicas: 3");
    assert_ne!(scaled, pattern.pattern_file);
    let redeployed = client
        .deploy_pattern()
        .body(body(None, Some(&scaled)))
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        statuses(&redeployed),
        [
            ("ConfigMap/web-config".to_string(), S::Unchanged),
            ("Deployment/web".to_string(), S::Applied),
            ("Service/web".to_string(), S::Unchanged)
        ]
    );
    assert_eq!(
        api.object("apps", "deployments", "default", "web").unwrap()["spec"]["replicas"],
        3
    );

    // A dry run of a change the API server refuses names the design's field and stores
    // nothing.
    let design: Value = yaml_serde::from_str(&scaled).unwrap();
    let deployment = design["components"]
        .as_array()
        .unwrap()
        .iter()
        .position(|c| c["kind"] == "Deployment")
        .unwrap();
    let mut bad = design.clone();
    bad["components"][deployment]["spec"]["template"]["metadata"]["labels"]["app"] = json!("other");
    let bad = yaml_serde::to_string(&bad).unwrap();
    let before = api.object("apps", "deployments", "default", "web").unwrap();
    let dry = client
        .deploy_pattern()
        .dry_run(true)
        .body(body(None, Some(&bad)))
        .send()
        .await
        .unwrap()
        .into_inner();
    assert!(dry.dry_run && !dry.succeeded, "{dry:?}");
    let refused = dry.results.iter().find(|r| r.kind == "Deployment").unwrap();
    assert_eq!(refused.status, S::Failed);
    assert_eq!(
        refused.field.as_deref(),
        Some(format!("components[{deployment}].spec.template.metadata.labels").as_str())
    );
    assert!(
        refused.message.as_deref().unwrap().contains("selector"),
        "{refused:?}"
    );
    assert_eq!(
        api.object("apps", "deployments", "default", "web").unwrap(),
        before
    );

    // The same through GraphQL: a dry run of the refused change, then the real redeploy.
    let graphql = |input: meshery_client::graphql::DeployPatternInput| {
        let http = server.http();
        let url = server.url("/api/system/graphql/query");
        async move {
            use cynic::MutationBuilder;
            let operation = meshery_client::graphql::DeployPattern::build(
                meshery_client::graphql::DeployPatternVariables { input },
            );
            let answer: Value = http
                .post(url)
                .json(&operation)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert!(answer["errors"].is_null(), "{answer}");
            serde_json::from_value::<meshery_client::graphql::DeployPattern>(answer["data"].clone())
                .unwrap()
                .deploy_pattern
        }
    };
    let dry = graphql(meshery_client::graphql::DeployPatternInput {
        pattern_file: Some(bad.clone()),
        dry_run: Some(true),
        contexts: Some(vec![context.clone()]),
        ..Default::default()
    })
    .await;
    assert!(dry.dry_run && !dry.succeeded);
    let refused = dry.results.iter().find(|r| r.kind == "Deployment").unwrap();
    assert_eq!(
        (refused.status.as_str(), refused.context_id.as_str()),
        ("failed", context.as_str())
    );
    assert_eq!(
        refused.field.as_deref(),
        Some(format!("components[{deployment}].spec.template.metadata.labels").as_str())
    );
    let again = graphql(meshery_client::graphql::DeployPatternInput {
        pattern_id: Some(pattern.id.clone()),
        ..Default::default()
    })
    .await;
    // The stored design still says 2 replicas: GraphQL's deploy brings the cluster back.
    assert_eq!(again.action, "deploy");
    assert!(again.succeeded);
    let deployment_outcome = again
        .results
        .iter()
        .find(|r| r.kind == "Deployment")
        .unwrap();
    assert_eq!(deployment_outcome.status, "applied");
    assert_eq!(
        api.object("apps", "deployments", "default", "web").unwrap()["spec"]["replicas"],
        2
    );

    // Undeploy: the reverse order, then nothing is left; again, nothing is there.
    let undeployed = client
        .undeploy_pattern()
        .body(body(Some(&pattern.id), None))
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        statuses(&undeployed),
        [
            ("Service/web".to_string(), S::Deleted),
            ("Deployment/web".to_string(), S::Deleted),
            ("ConfigMap/web-config".to_string(), S::Deleted)
        ]
    );
    assert_eq!(
        api.count("apps", "deployments") + api.count("", "services") + api.count("", "configmaps"),
        0
    );
    let twice = client
        .undeploy_pattern()
        .body(body(Some(&pattern.id), None))
        .send()
        .await
        .unwrap()
        .into_inner();
    assert!(
        twice.succeeded && twice.results.iter().all(|r| r.status == S::Absent),
        "{twice:?}"
    );

    // Deploys and undeploys are events of the user's; the dry run is not.
    let events = client
        .list_events()
        .search("design")
        .pagesize("all")
        .send()
        .await
        .unwrap()
        .into_inner();
    let descriptions: Vec<String> = events
        .events
        .iter()
        .map(|e| e.description.to_string())
        .collect();
    assert_eq!(
        descriptions
            .iter()
            .filter(|d| d.starts_with("Deployed design \"sample\" on test-cluster"))
            .count(),
        4,
        "{descriptions:?}"
    );
    assert_eq!(
        descriptions
            .iter()
            .filter(|d| d.starts_with("Undeployed design"))
            .count(),
        2,
        "{descriptions:?}"
    );

    // Neither a file nor an id, or a key the schema does not know, is a 400.
    for wrong in [
        json!({}),
        json!({"patternFile": "name: x", "patternName": "x"}),
    ] {
        let response = server
            .http()
            .post(server.url("/api/pattern/deploy"))
            .json(&wrong)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{wrong}");
    }
    // As Meshery's clients send a design: the file with the id of the design it came from
    // (recorded), mesheryctl's zero UUID for a file of its own (none), older clients'
    // snake_case, the file itself as text, or as a YAML string without a content type.
    let file = &pattern.pattern_file;
    let zero = "00000000-0000-0000-0000-000000000000";
    let yaml_string = yaml_serde::to_string(file).unwrap();
    for (content_type, sent, recorded) in [
        (
            Some("application/json"),
            json!({"patternFile": file, "patternId": pattern.id}).to_string(),
            Some(&pattern.id),
        ),
        (
            Some("application/json"),
            json!({"patternFile": file, "patternId": zero}).to_string(),
            None,
        ),
        (
            Some("application/json"),
            json!({"pattern_file": file}).to_string(),
            None,
        ),
        (Some("text/plain;charset=UTF-8"), file.clone(), None),
        (None, yaml_string, None),
    ] {
        let mut request = server
            .http()
            .post(server.url("/api/pattern/deploy?dryRun=true"))
            .body(sent.clone());
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "{sent}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["succeeded"], true, "{answer}");
        assert_eq!(
            answer["results"].as_array().map(Vec::len),
            Some(3),
            "{answer}"
        );
        assert_eq!(
            answer["patternId"].as_str(),
            recorded.map(String::as_str),
            "{sent}"
        );
    }

    // A context that is not the user's is not found, and nothing is touched.
    let unknown = client
        .deploy_pattern()
        .contexts(vec!["nope".parse().unwrap()])
        .body(body(Some(&pattern.id), None))
        .send()
        .await;
    assert!(
        matches!(&unknown, Err(meshery_client::rest::Error::ErrorResponse(e)) if e.status() == 404),
        "an unknown context was not refused"
    );
    assert_eq!(api.count("apps", "deployments"), 0);
    server.finish().await;
    api.stop().await;
}

#[tokio::test]
async fn verify_waits_for_workloads_to_be_ready_and_fails_those_that_are_not() {
    let api = KubeApi::start(None).await;
    let server = TestServer::start_with(|c| {
        c.deploy_verify_timeout = std::time::Duration::from_secs(2);
    })
    .await;
    let client = server.client();
    client
        .upload_kubeconfig()
        .body(api.kubeconfig("verified"))
        .send()
        .await
        .unwrap();
    let design = crate::deploy::design_of_sample(&client).await;

    // A controller makes the replicas ready shortly after each write.
    api.run_controller(Some(std::time::Duration::from_millis(300)));
    let started = std::time::Instant::now();
    let ready = client
        .deploy_pattern()
        .verify(true)
        .body(body(None, Some(&design)))
        .send()
        .await
        .unwrap()
        .into_inner();
    assert!(ready.succeeded, "{ready:?}");
    let deployment = ready
        .results
        .iter()
        .find(|r| r.kind == "Deployment")
        .unwrap();
    assert_eq!(
        (deployment.status, deployment.ready),
        (S::Applied, Some(true))
    );
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
    // Only workloads are waited for.
    assert!(
        ready
            .results
            .iter()
            .filter(|r| r.kind != "Deployment")
            .all(|r| r.ready.is_none())
    );

    // No controller: a new generation never becomes ready; the deploy fails in time.
    api.run_controller(None);
    let scaled = design.replace("replicas: 2", "replicas: 4");
    let started = std::time::Instant::now();
    let stuck = client
        .deploy_pattern()
        .verify(true)
        .body(body(None, Some(&scaled)))
        .send()
        .await
        .unwrap()
        .into_inner();
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert!(!stuck.succeeded, "{stuck:?}");
    let deployment = stuck
        .results
        .iter()
        .find(|r| r.kind == "Deployment")
        .unwrap();
    assert_eq!(
        (deployment.status, deployment.ready),
        (S::Failed, Some(false))
    );
    let message = deployment.message.as_deref().unwrap();
    assert!(
        message.contains("not ready within 2 s") && message.contains("generation 2"),
        "{message}"
    );
    // It was applied all the same.
    assert_eq!(
        api.object("apps", "deployments", "default", "web").unwrap()["spec"]["replicas"],
        4
    );
    // Without verify nothing is waited for.
    let unverified = client
        .deploy_pattern()
        .body(body(None, Some(&scaled)))
        .send()
        .await
        .unwrap()
        .into_inner();
    assert!(unverified.succeeded && unverified.results.iter().all(|r| r.ready.is_none()));
    server.finish().await;
    api.stop().await;
}

/// The sample manifests as a design file (imported through the API).
pub async fn design_of_sample(client: &meshery_client::rest::Client) -> String {
    client
        .import_pattern()
        .body(PatternImport {
            file: Some(serde_json::Value::from(
                base64::engine::general_purpose::STANDARD.encode(SAMPLE),
            )),
            file_name: Some("sample-app.yaml".parse().unwrap()),
            url: None,
            name: Some("sample".parse().unwrap()),
        })
        .send()
        .await
        .unwrap()
        .into_inner()
        .remove(0)
        .pattern_file
}
