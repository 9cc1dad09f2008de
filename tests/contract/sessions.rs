//! Issue 17: what a user may do to what every user shares, long-lived streams that end
//! with their session, and retention of stored data.

use serde_json::{Value, json};

use crate::auth::setup;

/// A model definition to register.
fn model(name: &str) -> meshery::models::ModelDefinition {
    serde_json::from_value(json!({
        "name": name, "version": "v1.0.0",
        "components": [{"kind": "Widget", "apiVersion": "widgets.io/v1"}]
    }))
    .unwrap()
}

#[tokio::test]
async fn only_administrators_register_models() {
    let s = setup().await;
    let alice = s.client_as("alice");
    let refused = alice
        .register_model()
        .body(model("alice-mesh"))
        .send()
        .await;
    let Err(meshery_client::rest::Error::ErrorResponse(e)) = refused else {
        panic!("a non-admin registration was not refused: {refused:?}");
    };
    assert_eq!(e.status(), 403);
    assert_eq!(e.code, "meshery-server-1014");
    assert!(e.error.contains("only administrators"), "{}", e.error);
    // Nothing was registered, for anyone.
    let root = s.client_as("root");
    assert!(root.get_model().model("alice-mesh").send().await.is_err());

    let registered = root
        .register_model()
        .body(model("root-mesh"))
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(registered.id, "root-mesh@v1.0.0");
    // Every user sees what the administrator registered.
    let seen = alice
        .get_model()
        .model("root-mesh")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(seen.registrant, "root");
    // The Local user of the same server is the installation's administrator.
    let local: Value = s
        .server
        .http()
        .post(s.server.url("/api/registry/register"))
        .json(&model("local-mesh"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(local["id"], "local-mesh@v1.0.0", "{local}");
    s.finish().await;
}
