use meshery::models::{ProviderType, UserPrefsUpdate};
use meshery_client::rest::Error as ClientError;
use serde_json::{Value, json};

use crate::harness::TestServer;

/// The MeshKit body of a client error, or a panic naming what came instead.
fn meshkit<T: std::fmt::Debug>(
    result: Result<T, ClientError<meshery::models::MeshKitError>>,
) -> (u16, meshery::models::MeshKitError) {
    match result {
        Err(ClientError::ErrorResponse(r)) => (r.status().as_u16(), r.into_inner()),
        other => panic!("expected a MeshKit error response, got {other:?}"),
    }
}

#[tokio::test]
async fn every_operation_is_routed_and_answers_only_declared_statuses() {
    let server = TestServer::start().await;
    let http = server.http();
    for op in meshery::generated::rest::OPERATIONS {
        let path = op.path.replace('{', "x").replace('}', "");
        let method = reqwest::Method::from_bytes(op.method.as_bytes()).unwrap();
        let response = http
            .request(method, server.url(&path))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        assert!(
            op.statuses.contains(&status),
            "{} {} answered {status}, not one of {:?}",
            op.method,
            op.path,
            op.statuses
        );
    }
    // And the spec's list is the generated list.
    let spec = crate::spec::Spec::load();
    let mut declared = spec.operations();
    declared.sort();
    let mut generated: Vec<(String, String)> = meshery::generated::rest::OPERATIONS
        .iter()
        .flat_map(|o| {
            std::iter::once(o.path)
                .chain(o.aliases.iter().copied())
                .map(|p| (o.method.to_string(), p.to_string()))
        })
        .collect();
    generated.sort();
    assert_eq!(declared, generated);
    server.finish().await;
}

#[tokio::test]
async fn routes_outside_the_spec_are_not_under_api() {
    for (path, _) in meshery::web::pages() {
        assert!(
            !path.starts_with("/api"),
            "{path} is routed outside openapi.yaml"
        );
    }
    let server = TestServer::start().await;
    let response = server
        .http()
        .get(server.url("/api/no/such/thing"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "meshery-server-1003");
    server.finish().await;
}

#[tokio::test]
async fn the_ui_runs_only_its_own_inline_script_and_style() {
    use base64::Engine;
    let sha = |body: &str| {
        let d = ring::digest::digest(&ring::digest::SHA256, body.as_bytes());
        format!(
            "'sha256-{}'",
            base64::engine::general_purpose::STANDARD.encode(d.as_ref())
        )
    };
    let between = |doc: &str, open: &str, close: &str| {
        let (_, rest) = doc.split_once(open).unwrap();
        rest.split_once(close).unwrap().0.to_string()
    };
    let server = TestServer::start().await;
    for path in meshery::web::APP_PAGES {
        let r = server.http().get(server.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        let doc = r.text().await.unwrap();
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        let script = sha(&between(&doc, "<script>", "</script>"));
        let style = sha(&between(&doc, "<style>", "</style>"));
        assert!(
            csp.contains(&format!("script-src {script};")),
            "{path}: {csp}"
        );
        assert!(
            csp.contains(&format!("style-src {style};")),
            "{path}: {csp}"
        );
        // One inline script and style: a second would be blocked by the policy.
        assert_eq!(doc.matches("<script").count(), 1, "{path}");
        assert_eq!(doc.matches("<style").count(), 1, "{path}");
    }
    server.finish().await;
}

#[tokio::test]
async fn version_health_and_spec() {
    let server = TestServer::start().await;
    let client = server.client();
    let v = client
        .get_system_version()
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v.build, format!("v{}", env!("CARGO_PKG_VERSION")));
    assert_eq!(v.latest, v.build);
    assert!(!v.outdated);
    assert_eq!(v.release_channel, "stable");
    assert!(!v.commitsha.is_empty());

    assert_eq!(
        client
            .get_liveness()
            .send()
            .await
            .unwrap()
            .into_inner()
            .status,
        "live"
    );
    let ready = client.get_readiness().send().await.unwrap().into_inner();
    assert_eq!(ready.status, "ready");
    let engine = server.app.store.engine();
    assert_eq!(
        ready.checks.get("database").map(String::as_str),
        Some(engine.name())
    );
    let notices = match engine {
        meshery::store::Engine::Postgres => "listening",
        meshery::store::Engine::Sqlite => "single server",
    };
    assert_eq!(
        ready.checks.get("notices").map(String::as_str),
        Some(notices)
    );

    let spec = server
        .http()
        .get(server.url("/api/system/openapi.yaml"))
        .send()
        .await
        .unwrap();
    assert_eq!(spec.headers()["content-type"], "application/yaml");
    assert_eq!(
        spec.text().await.unwrap(),
        include_str!("../../schema/openapi.yaml")
    );
    server.finish().await;
}

#[tokio::test]
async fn an_operator_configured_newer_release_marks_the_build_outdated() {
    let server = TestServer::start_with(|c| {
        c.latest_version = Some("v99.0.0".into());
        c.release_channel = "edge".into();
    })
    .await;
    let v = server
        .client()
        .get_system_version()
        .send()
        .await
        .unwrap()
        .into_inner();
    assert!(v.outdated);
    assert_eq!(v.latest, "v99.0.0");
    assert_eq!(v.release_channel, "edge");
    server.finish().await;
}

#[tokio::test]
async fn providers_are_listed_in_both_key_spellings() {
    let server = TestServer::start().await;
    let providers = server
        .client()
        .list_providers()
        .send()
        .await
        .unwrap()
        .into_inner();
    let local = providers.get("Local").expect("Local is listed");
    assert_eq!(local.provider_type, ProviderType::Local);
    assert_eq!(local.provider_name, "Local");
    // Older mesheryctl reads snake_case keys.
    let raw: serde_json::Value = server
        .http()
        .get(server.url("/api/providers"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(raw["Local"]["provider_name"], "Local");
    assert_eq!(raw["Local"]["providerName"], "Local");
    assert_eq!(raw["Local"]["provider_type"], "local");
    assert_eq!(
        raw["Local"]["provider_description"],
        raw["Local"]["providerDescription"]
    );
    server.finish().await;
}

#[tokio::test]
async fn choosing_a_provider_sets_the_cookie_and_redirects() {
    let server = TestServer::start().await;
    for name in ["Local", "none", "NONE"] {
        let r = server
            .http()
            .get(server.url(&format!("/api/provider?provider={name}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302, "{name}");
        assert_eq!(r.headers()["location"], "/user/login");
        let cookie = r.headers()["set-cookie"].to_str().unwrap();
        assert!(cookie.starts_with("meshery-provider=Local;"), "{cookie}");
        assert!(cookie.contains("HttpOnly"));
    }
    let unknown = server
        .http()
        .get(server.url("/api/provider?provider=Bogus"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 302);
    assert_eq!(unknown.headers()["location"], "/provider");
    assert!(unknown.headers().get("set-cookie").is_none());
    // Through the generated client: a 302 is outside its success range.
    let p = "Local";
    match server.client().select_provider().provider(p).send().await {
        Err(ClientError::UnexpectedResponse(r)) => assert_eq!(r.status(), 302),
        Ok(r) => panic!("expected the redirect, got {}", r.status()),
        Err(e) => panic!("expected the redirect, got {e}"),
    }
    let (status, e) = meshkit(
        server
            .client()
            .get_provider_capabilities()
            .provider("Bogus")
            .send()
            .await,
    );
    assert_eq!(status, 400);
    assert_eq!(e.code, "meshery-server-1007");
    server.finish().await;
}

#[tokio::test]
async fn capabilities_of_the_local_provider() {
    let server = TestServer::start().await;
    let caps = server
        .client()
        .get_provider_capabilities()
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(caps.provider_type, ProviderType::Local);
    assert_eq!(caps.provider_name, "Local");
    assert!(caps.capabilities.iter().any(|c| c.feature == "sync-prefs"));
    let named = server
        .client()
        .get_provider_capabilities()
        .provider("None")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(named, caps);
    server.finish().await;
}

#[tokio::test]
async fn the_local_user_and_token_need_no_credentials() {
    let server = TestServer::start().await;
    let client = server.client();
    let user = client.get_user().send().await.unwrap().into_inner();
    assert_eq!(user.provider, "Local");
    assert_eq!(user.id, server.app.instance_id);
    let auth = client.get_token().send().await.unwrap().into_inner();
    assert_eq!(auth.meshery_provider, "Local");
    assert_eq!(auth.token, "");
    // A token the client carries (bearer or Meshery's base64 OAuth cookie) is handed back.
    let bearer = server
        .http()
        .get(server.url("/api/token"))
        .bearer_auth("abc.def.ghi")
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(
        bearer,
        json!({"meshery-provider": "Local", "token": "abc.def.ghi"})
    );
    use base64::Engine;
    let cookie = base64::engine::general_purpose::STANDARD_NO_PAD
        .encode(br#"{"access_token":"jwt-in-cookie","token_type":"bearer","refresh_token":"","expiry":"2030-01-01T00:00:00Z"}"#);
    let from_cookie: serde_json::Value = server
        .http()
        .get(server.url("/api/token"))
        .header("cookie", format!("meshery-provider=None; token={cookie}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(from_cookie["token"], "jwt-in-cookie");
    server.finish().await;
}

#[tokio::test]
async fn prefs_are_merged_persisted_and_survive_a_restart() {
    let home = tempfile::tempdir().unwrap();
    let home_path = home.path().to_path_buf();
    let server = TestServer::start_with(|c| c.home = home_path.clone()).await;
    let client = server.client();
    let before = client.get_user_prefs().send().await.unwrap().into_inner();
    assert!(before.anonymous_usage_stats);
    assert_eq!(before.updated_at, None);

    let mut ext = serde_json::Map::new();
    ext.insert("meshmap".into(), json!({"grid": true}));
    ext.insert("other".into(), json!(1));
    let update = UserPrefsUpdate {
        anonymous_usage_stats: Some(false),
        users_extension_preferences: Some(ext),
        ..Default::default()
    };
    let after = client
        .update_user_prefs()
        .body(update.clone())
        .send()
        .await
        .unwrap()
        .into_inner();
    assert!(!after.anonymous_usage_stats);
    assert!(
        after.anonymous_perf_results,
        "fields left out keep their value"
    );
    assert_eq!(
        after.users_extension_preferences["meshmap"],
        json!({"grid": true})
    );
    assert!(after.updated_at.is_some());

    // A key set to null is removed; the others stay.
    let mut ext = serde_json::Map::new();
    ext.insert("other".into(), serde_json::Value::Null);
    let removed = client
        .update_user_prefs()
        .body(UserPrefsUpdate {
            users_extension_preferences: Some(ext),
            ..Default::default()
        })
        .send()
        .await
        .unwrap()
        .into_inner();
    assert!(!removed.users_extension_preferences.contains_key("other"));
    assert!(removed.users_extension_preferences.contains_key("meshmap"));
    server.finish().await;

    // Same home, new server: the prefs are still there.
    let server = TestServer::start_with(|c| c.home = home_path.clone()).await;
    let again = server
        .client()
        .get_user_prefs()
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        again.users_extension_preferences,
        removed.users_extension_preferences
    );
    assert!(!again.anonymous_usage_stats);
    server.finish().await;
}

#[tokio::test]
async fn bad_input_gets_a_meshkit_4xx_and_changes_nothing() {
    let server = TestServer::start_with(|c| c.body_limit = 1024).await;
    let http = server.http();
    let prefs_url = server.url("/api/user/prefs");
    let cases: Vec<(&str, reqwest::RequestBuilder, u16)> = vec![
        (
            "malformed JSON",
            http.post(&prefs_url)
                .header("content-type", "application/json")
                .body("{not json"),
            400,
        ),
        (
            "wrong type",
            http.post(&prefs_url)
                .header("content-type", "application/json")
                .body(r#"{"anonymousUsageStats": "yes"}"#),
            400,
        ),
        (
            "unknown field",
            http.post(&prefs_url)
                .header("content-type", "application/json")
                .body(r#"{"anonymousUsageStatz": true}"#),
            400,
        ),
        (
            "empty body",
            http.post(&prefs_url)
                .header("content-type", "application/json"),
            400,
        ),
        (
            "wrong content type",
            http.post(&prefs_url)
                .header("content-type", "application/xml")
                .body("<a/>"),
            415,
        ),
        (
            "oversized body",
            http.post(&prefs_url)
                .header("content-type", "application/json")
                .body(format!(
                    r#"{{"dashboardPreferences": {{"x": "{}"}}}}"#,
                    "a".repeat(4096)
                )),
            413,
        ),
        (
            "unknown provider",
            http.get(server.url("/api/user"))
                .header("meshery-provider", "Bogus"),
            401,
        ),
        (
            "unknown provider, public",
            http.get(server.url("/api/provider/capabilities?provider=Bogus")),
            400,
        ),
        (
            "missing parameter",
            http.get(server.url("/api/provider")),
            400,
        ),
        (
            "empty parameter",
            http.get(server.url("/api/provider?provider=")),
            400,
        ),
        ("wrong method", http.delete(&prefs_url), 405),
    ];
    for (name, request, expected) in cases {
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), expected, "{name}");
        let body: serde_json::Value = response
            .json()
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        for key in [
            "error",
            "code",
            "severity",
            "probableCause",
            "suggestedRemediation",
            "longDescription",
        ] {
            assert!(body.get(key).is_some(), "{name}: no {key} in {body}");
        }
        assert!(
            body["code"]
                .as_str()
                .unwrap()
                .starts_with("meshery-server-"),
            "{name}"
        );
    }
    // None of it was stored.
    let prefs = server
        .client()
        .get_user_prefs()
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(prefs.updated_at, None);
    server.finish().await;
}

/// Meshery's preference fields (load-test settings, the selected organization and
/// workspaces, the remote provider's own), as its UI sends them, and `/api/system/sync`
/// answering them with the clusters the way the UI and mesheryctl read them.
#[tokio::test]
async fn meshery_preferences_and_the_sync_answer() {
    let server = TestServer::start().await;
    let http = server.http();
    let prefs_url = server.url("/api/user/prefs");
    let get = |url: String| {
        let http = http.clone();
        async move {
            http.get(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let defaults = get(prefs_url.clone()).await;
    assert_eq!(
        defaults["loadTestPrefs"],
        json!({"c": 1, "qps": 0, "t": "30s", "gen": "fortio"})
    );
    assert_eq!(defaults["meshAdapters"], json!([]));
    // As Meshery's UI posts them (JSON as text, its legacy `selectedOrganizationID`).
    let posted = http
        .post(&prefs_url)
        .header("content-type", "application/json;charset=UTF-8")
        .body(
            json!({
                "loadTestPrefs": {"c": 4, "qps": 50, "t": "1m", "gen": "wrk2"},
                "selectedOrganizationID": "org-1",
                "selectedWorkspaceForOrganizations": {"org-1": "ws-1", "org-2": "ws-2"},
                "remoteProviderPreferences": {"theme": "dark"},
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);
    let posted: Value = posted.json().await.unwrap();
    assert_eq!(
        posted["loadTestPrefs"],
        json!({"c": 4, "qps": 50, "t": "1m", "gen": "wrk2"})
    );
    assert_eq!(posted["selectedOrganizationId"], "org-1");
    // Key by key: one load-test setting, one workspace removed.
    let merged: Value = http
        .post(&prefs_url)
        .json(&json!({
            "loadTestPrefs": {"qps": 0},
            "selectedWorkspaceForOrganizations": {"org-2": null},
            "selectedOrganizationId": "org-3",
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        merged["loadTestPrefs"],
        json!({"c": 4, "qps": 0, "t": "1m", "gen": "wrk2"})
    );
    assert_eq!(
        merged["selectedWorkspaceForOrganizations"],
        json!({"org-1": "ws-1"})
    );
    assert_eq!(merged["selectedOrganizationId"], "org-3");
    assert_eq!(
        merged["remoteProviderPreferences"],
        json!({"theme": "dark"})
    );
    // Checked like every body: a connection count of 0 or a duration without a unit.
    for bad in [
        json!({"loadTestPrefs": {"c": 0}}),
        json!({"loadTestPrefs": {"t": "30"}}),
    ] {
        let refused = http.post(&prefs_url).json(&bad).send().await.unwrap();
        assert_eq!(refused.status(), 400, "{bad}");
    }

    // The sync answer: these preferences with the contexts.
    let (api, _) = crate::kubernetes::fake_api_server().await;
    let kubeconfig = crate::kubernetes::kubeconfig(&api, &crate::kubernetes::closed_port().await);
    http.post(server.url("/api/system/kubernetes"))
        .header("content-type", "application/yaml")
        .body(kubeconfig)
        .send()
        .await
        .unwrap();
    let sync = get(server.url("/api/system/sync")).await;
    assert_eq!(sync["meshAdapters"], json!([]));
    assert_eq!(sync["loadTestPrefs"]["c"], 4);
    let contexts = sync["k8sConfig"].as_array().unwrap();
    assert_eq!(contexts.len(), 2);
    for c in contexts {
        assert_eq!(c["clusterConfigured"], true);
        assert_eq!(
            c["clusterId"], c["id"],
            "the id the inventory's objects carry"
        );
    }
    server.finish().await;
}
