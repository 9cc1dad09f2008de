//! The registry through the generated client: the built-in catalogue, listings with
//! search, sort and pages, the `/api/meshmodels` aliases, and registration that persists.

use meshery::models::ModelDefinition;
use meshery_client::rest::types::{ListModelComponentsOrder, ListModelsOrder};
use serde_json::{Value, json};

use crate::harness::TestServer;

async fn raw(server: &TestServer, path: &str) -> (u16, Value) {
    let response = server.http().get(server.url(path)).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// The model a definition registered (201), not an import summary.
pub fn registered(r: meshery::models::RegisterModelResult) -> meshery::models::RegistryModel {
    match r {
        meshery::models::RegisterModelResult::RegistryModel(m) => m,
        other => panic!("a model was expected: {other:?}"),
    }
}

fn definition(value: Value) -> ModelDefinition {
    serde_json::from_value(value).unwrap()
}

#[tokio::test]
async fn the_builtin_catalogue_is_listed_searched_sorted_and_paged() {
    let server = TestServer::start().await;
    let client = server.client();

    let models = client
        .list_models()
        .pagesize("all")
        .trim(true)
        .send()
        .await
        .unwrap()
        .into_inner();
    let names: Vec<&str> = models.models.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        ["cert-manager", "istio-base", "kubernetes", "linkerd"]
    );
    assert!(
        models
            .models
            .iter()
            .all(|m| m.built_in && m.registrant.name == "meshery")
    );
    assert!(
        models
            .models
            .iter()
            .flat_map(|m| &m.components)
            .all(|c| c.schema.is_empty()),
        "trim"
    );

    // Kubernetes core: the workload, networking, config and storage kinds with schemas.
    // A page of the model's versions, newest last.
    let k8s = client
        .get_model()
        .model("kubernetes")
        .send()
        .await
        .unwrap()
        .into_inner()
        .models
        .pop()
        .unwrap();
    for (api, kind) in [
        ("apps/v1", "Deployment"),
        ("apps/v1", "StatefulSet"),
        ("batch/v1", "Job"),
        ("v1", "Service"),
        ("networking.k8s.io/v1", "Ingress"),
        ("v1", "ConfigMap"),
        ("v1", "Secret"),
        ("v1", "PersistentVolumeClaim"),
        ("storage.k8s.io/v1", "StorageClass"),
    ] {
        let c = k8s
            .components
            .iter()
            .find(|c| c.kind == kind && c.api_version == api)
            .unwrap_or_else(|| panic!("no {api} {kind}"));
        assert!(!c.schema.is_empty(), "{kind} has a schema");
    }
    let deployment = k8s
        .components
        .iter()
        .find(|c| c.kind == "Deployment")
        .unwrap();
    // Self-contained: the shared pieces come with it, and it compiles.
    let schema = Value::Object(deployment.schema.clone());
    assert!(schema["$defs"]["podSpec"].is_object());
    let validator = jsonschema::validator_for(&schema).unwrap();
    assert!(validator.is_valid(
        &json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "nginx"}]}}}})
    ));
    assert!(
        !validator
            .is_valid(&json!({"spec": {"replicas": -1, "template": {"spec": {"containers": []}}}}))
    );
    assert_eq!(k8s.components_count as usize, k8s.components.len());
    assert!(
        k8s.relationships
            .iter()
            .any(|r| r.from.contains(&"Service".to_string()))
    );

    // A model's components: search ignores case, sort and order, pages.
    let sets = client
        .list_model_components()
        .model("kubernetes")
        .pagesize("all")
        .search("SET")
        .trim(true)
        .send()
        .await
        .unwrap()
        .into_inner();
    let kinds: Vec<&str> = sets.components.iter().map(|c| c.kind.as_str()).collect();
    assert_eq!(kinds, ["DaemonSet", "ReplicaSet", "StatefulSet"]);
    let desc = client
        .list_model_components()
        .model("kubernetes")
        .order(ListModelComponentsOrder::Desc)
        .page(0)
        .pagesize("2")
        .search("set")
        .sort("kind")
        .trim(true)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!((desc.total_count, desc.page_size), (3, 2));
    assert_eq!(
        desc.components
            .iter()
            .map(|c| c.kind.as_str())
            .collect::<Vec<_>>(),
        ["StatefulSet", "ReplicaSet"]
    );
    let last = client
        .list_model_components()
        .model("kubernetes")
        .order(ListModelComponentsOrder::Desc)
        .page(1)
        .pagesize("2")
        .search("set")
        .sort("kind")
        .trim(true)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        last.components
            .iter()
            .map(|c| c.kind.as_str())
            .collect::<Vec<_>>(),
        ["DaemonSet"]
    );
    let empty = client
        .list_model_components()
        .model("kubernetes")
        .page(5)
        .pagesize("2")
        .search("set")
        .trim(true)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert!(empty.components.is_empty());
    assert_eq!(empty.total_count, 3);

    // Models sorted by category, descending.
    let by_category = client
        .list_models()
        .order(ListModelsOrder::Desc)
        .pagesize("all")
        .sort("category")
        .trim(true)
        .send()
        .await
        .unwrap()
        .into_inner();
    let cats: Vec<&str> = by_category
        .models
        .iter()
        .map(|m| m.category.name.as_str())
        .collect();
    let mut sorted = cats.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(cats, sorted);

    // Categories, registrants, components by kind, relationships.
    let (status, categories) = raw(&server, "/api/registry/categories?pagesize=all").await;
    assert_eq!(status, 200);
    let network = categories["categories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "Cloud Native Network")
        .unwrap();
    assert_eq!(network["modelsCount"], 2);
    assert_eq!(categories["total_count"], categories["totalCount"]);
    let (_, registrants) = raw(&server, "/api/registry/registrants").await;
    assert_eq!(
        registrants["registrants"],
        json!([{"name": "meshery", "modelsCount": 4}])
    );
    let (_, policies) = raw(
        &server,
        "/api/registry/components/authorizationpolicy?trim=true",
    )
    .await;
    let apis: Vec<&str> = policies["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["apiVersion"].as_str().unwrap())
        .collect();
    assert_eq!(apis.len(), 2, "Istio's and Linkerd's");
    assert!(apis.contains(&"security.istio.io/v1") && apis.contains(&"policy.linkerd.io/v1alpha1"));
    let (_, none) = raw(&server, "/api/registry/components/NoSuchKind").await;
    assert_eq!(none["totalCount"], 0);
    let (_, apps) = raw(
        &server,
        "/api/registry/components?apiVersion=apps/v1&pagesize=all&trim=true",
    )
    .await;
    assert_eq!(apps["totalCount"], 4);
    let (_, rels) = raw(
        &server,
        "/api/registry/relationships?search=ingress&pagesize=all",
    )
    .await;
    assert_eq!(rels["totalCount"], 1);

    // The same listings through the generated client.
    let categories = client
        .list_categories()
        .pagesize("all")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(categories.total_count, categories.categories.len() as i64);
    assert!(
        categories
            .categories
            .iter()
            .any(|c| c.name == "Orchestration & Management" && c.models_count == 1)
    );
    let registrants = client.list_registrants().send().await.unwrap().into_inner();
    assert_eq!(registrants.registrants.len(), 1);
    let by_kind = client
        .list_components_by_kind()
        .name("Service")
        .api_version("v1")
        .trim(true)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        by_kind
            .components
            .iter()
            .map(|c| c.model.name.as_str())
            .collect::<Vec<_>>(),
        ["kubernetes"]
    );
    let relationships = client
        .list_relationships()
        .pagesize("all")
        .search("certificate")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        relationships
            .relationships
            .iter()
            .map(|r| r.model.name.as_str())
            .collect::<Vec<_>>(),
        ["cert-manager"]
    );
    let k8s_relationships = client
        .list_model_relationships()
        .model("kubernetes")
        .pagesize("all")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(k8s_relationships.total_count, k8s.relationships_count);

    // The legacy prefix answers the same.
    for path in [
        "/models?pagesize=all&trim=true",
        "/models/kubernetes",
        "/categories",
        "/components/Deployment",
        "/relationships",
        "/registrants",
        "/models/kubernetes/components?search=pod",
    ] {
        let a = raw(&server, &format!("/api/registry{path}")).await;
        let b = raw(&server, &format!("/api/meshmodels{path}")).await;
        assert_eq!(a.0, 200, "{path}");
        assert_eq!(a, b, "{path}");
    }

    // Bad input.
    for path in [
        "/api/registry/models?sort=colour",
        "/api/registry/models?order=up",
        "/api/registry/models?pagesize=0",
        "/api/registry/models?trim=maybe",
    ] {
        let (status, error) = raw(&server, path).await;
        assert_eq!(status, 400, "{path}");
        assert!(error["code"].is_string());
    }
    for path in [
        "/api/registry/models/nope",
        "/api/registry/models/kubernetes?version=v0.0.1",
        "/api/meshmodels/models/nope/components",
    ] {
        assert_eq!(raw(&server, path).await.0, 404, "{path}");
    }
    server.finish().await;
}

#[tokio::test]
async fn registered_models_are_checked_stored_and_survive_a_restart() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().to_path_buf();
    let server = TestServer::start_with(|c| c.home = path.clone()).await;
    let client = server.client();
    let good = json!({
        "name": "acme-mesh",
        "displayName": "Acme Mesh",
        "version": "v0.3.0",
        "category": "Cloud Native Network",
        "components": [
            {"kind": "TrafficSplit", "apiVersion": "acme.io/v1alpha1",
             "schema": {"type": "object", "required": ["spec"], "properties": {"spec": {"type": "object", "required": ["service"]}}}},
            {"kind": "Mesh", "apiVersion": "acme.io/v1alpha1", "namespaced": false}
        ],
        "relationships": [{"kind": "edge", "type": "non-binding", "subType": "network", "from": ["TrafficSplit"], "to": ["Service"]}]
    });

    // Bad definitions are refused and nothing is stored.
    let bad = [
        (
            "a schema that is not JSON Schema",
            json!({"name": "x-mesh", "version": "v1", "components": [{"kind": "A", "apiVersion": "x.io/v1", "schema": {"type": 12}}]}),
        ),
        (
            "a relationship to an unknown kind",
            json!({"name": "x-mesh", "version": "v1", "components": [{"kind": "A", "apiVersion": "x.io/v1"}], "relationships": [{"kind": "edge", "type": "t", "from": ["A"], "to": ["Nope"]}]}),
        ),
        (
            "a kind twice",
            json!({"name": "x-mesh", "version": "v1", "components": [{"kind": "A", "apiVersion": "x.io/v1"}, {"kind": "A", "apiVersion": "x.io/v1"}]}),
        ),
        (
            "a bad name",
            json!({"name": "X Mesh", "version": "v1", "components": []}),
        ),
        (
            "a bad version",
            json!({"name": "x-mesh", "version": "latest", "components": []}),
        ),
        (
            "a bad kind",
            json!({"name": "x-mesh", "version": "v1", "components": [{"kind": "lower", "apiVersion": "x.io/v1"}]}),
        ),
        (
            "an unknown field",
            json!({"name": "x-mesh", "version": "v1", "components": [], "owner": "me"}),
        ),
    ];
    for (what, body) in bad {
        let response = server
            .http()
            .post(server.url("/api/registry/register"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{what}");
        let error: Value = response.json().await.unwrap();
        assert!(error["code"].is_string(), "{what}");
    }
    assert_eq!(raw(&server, "/api/registry/models/x-mesh").await.0, 404);

    let model = registered(
        client
            .register_model()
            .body(definition(good.clone()))
            .send()
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!(model.id, "acme-mesh@v0.3.0");
    assert!(!model.built_in);
    assert_eq!(
        model.registrant.name,
        client.get_user().send().await.unwrap().user_name
    );
    assert_eq!(model.components.len(), 2);
    let again = client
        .register_model()
        .body(definition(good.clone()))
        .send()
        .await;
    assert!(
        matches!(again, Err(meshery_client::rest::Error::ErrorResponse(e)) if e.status() == 409)
    );
    let mut newer = good.clone();
    newer["version"] = json!("v0.10.0");
    newer["registrant"] = json!("acme-corp");
    client
        .register_model()
        .body(definition(newer))
        .send()
        .await
        .unwrap();
    // The newest version is the default; both are listed.
    assert_eq!(
        client
            .get_model()
            .model("acme-mesh")
            .send()
            .await
            .unwrap()
            .into_inner()
            .models
            .pop()
            .unwrap()
            .version,
        "v0.10.0"
    );
    let (_, listed) = raw(&server, "/api/meshmodels/models?search=acme&pagesize=all").await;
    assert_eq!(listed["totalCount"], 2);
    server.finish().await;

    // After a restart the registrations are still there, in the same shape.
    let server = TestServer::start_with(|c| c.home = path.clone()).await;
    let (status, back) = raw(&server, "/api/registry/models/acme-mesh?version=v0.3.0").await;
    assert_eq!(status, 200);
    assert_eq!(back["models"][0], serde_json::to_value(&model).unwrap());
    let (_, registrants) = raw(&server, "/api/registry/registrants").await;
    let mut names: Vec<&str> = registrants["registrants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    names.sort();
    let mut expected = vec!["acme-corp", "meshery", model.registrant.name.as_str()];
    expected.sort();
    expected.dedup();
    assert_eq!(names, expected);
    server.finish().await;
}

/// The registry in Meshery's shapes: categories, registrants and models as objects,
/// components with `component`, `metadata` and `styles`, relationships with `selectors`
/// and `evaluationQuery`; the routes and filters Meshery's clients use.
#[tokio::test]
async fn the_registry_answers_in_meshery_shapes() {
    let server = TestServer::start().await;
    // `page=undefined` (Meshery's UI, for no page) is the first page; another
    // non-integer is a clear 400.
    let (status, first) = raw(&server, "/api/meshmodels/models?page=undefined").await;
    assert_eq!((status, &first["page"]), (200, &json!(0)), "{first}");
    let (status, refused) = raw(&server, "/api/meshmodels/models?page=null").await;
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .is_some_and(|e| e.contains("`page`")),
        "{refused}"
    );
    let (status, models) = raw(&server, "/api/meshmodels/models?pagesize=all&page=").await;
    assert_eq!(status, 400, "an empty page is not a page: {models}");
    let (status, models) = raw(&server, "/api/meshmodels/models?pagesize=all").await;
    assert_eq!(status, 200, "{models}");
    let k8s = models["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "kubernetes")
        .unwrap()
        .clone();
    assert_eq!(k8s["schemaVersion"], "models.meshery.io/v1beta1");
    assert!(k8s["category"]["name"].is_string() && k8s["category"]["id"].is_string());
    assert_eq!(k8s["categoryId"], k8s["category"]["id"]);
    assert_eq!(
        (
            k8s["registrant"]["name"].as_str(),
            k8s["registrant"]["kind"].as_str()
        ),
        (Some("meshery"), Some("meshery"))
    );
    // By id, as mesheryctl's `model view <id>` asks.
    let id = k8s["id"].as_str().unwrap();
    let (_, by_id) = raw(&server, &format!("/api/meshmodels/models?id={id}")).await;
    assert_eq!(by_id["totalCount"], 1);
    assert_eq!(by_id["models"][0]["id"], id);
    // A model's versions, a page; and its components of one kind.
    let (_, versions) = raw(&server, "/api/meshmodels/models/kubernetes").await;
    assert_eq!(versions["models"][0]["name"], "kubernetes");
    let (_, deployments) = raw(
        &server,
        "/api/meshmodels/models/kubernetes/components/deployment",
    )
    .await;
    let d = &deployments["components"][0];
    assert_eq!(
        (
            d["component"]["kind"].as_str(),
            d["component"]["version"].as_str()
        ),
        (Some("Deployment"), Some("apps/v1"))
    );
    let schema: Value = serde_json::from_str(d["component"]["schema"].as_str().unwrap()).unwrap();
    assert!(
        schema["$defs"]["podSpec"].is_object(),
        "the schema is the self-contained one"
    );
    assert_eq!(d["model"]["name"], "kubernetes");
    assert_eq!(d["model"]["category"], k8s["category"]);
    assert_eq!(d["metadata"]["isNamespaced"], true);
    assert!(d["styles"]["primaryColor"].is_string());
    // Trimmed: no schema either way.
    let (_, trimmed) = raw(
        &server,
        "/api/meshmodels/models/kubernetes/components/Deployment?trim=true",
    )
    .await;
    assert_eq!(trimmed["components"][0]["component"]["schema"], "");
    // The models of a category.
    let category = k8s["category"]["name"]
        .as_str()
        .unwrap()
        .replace(' ', "%20")
        .replace('&', "%26");
    let (_, of_category) = raw(
        &server,
        &format!("/api/meshmodels/categories/{category}/models"),
    )
    .await;
    assert!(
        of_category["models"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "kubernetes")
    );
    // Relationships with selectors and the evaluator's name, filtered as mesheryctl asks.
    let (_, edges) = raw(
        &server,
        "/api/meshmodels/relationships?kind=edge&type=&subType=&pagesize=all",
    )
    .await;
    let all = edges["relationships"].as_array().unwrap();
    assert!(!all.is_empty());
    for r in all {
        assert_eq!(r["kind"], "edge");
        assert!(
            r["evaluationQuery"]
                .as_str()
                .unwrap()
                .ends_with("_relationship")
        );
        assert_eq!(r["selectors"][0]["allow"]["from"][0]["kind"], r["from"][0]);
        assert!(r["model"]["name"].is_string());
    }
    let (_, hierarchical) = raw(
        &server,
        "/api/meshmodels/relationships?kind=HIERARCHICAL&pagesize=all",
    )
    .await;
    assert!(
        hierarchical["relationships"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["kind"] == "hierarchical")
    );
    server.finish().await;
}

/// A model definition with two kinds and a relationship between them.
pub fn sample_model(name: &str) -> Value {
    json!({
        "name": name, "version": "v1.0.0", "displayName": "Sample", "category": "Observability",
        "components": [
            {"kind": "Widget", "apiVersion": "widgets.io/v1",
             "schema": {"type": "object", "properties": {"spec": {"type": "object", "required": ["size"]}}}},
            {"kind": "Gadget", "apiVersion": "widgets.io/v1", "namespaced": false}
        ],
        "relationships": [{"kind": "edge", "type": "non-binding", "subType": "network", "from": ["Widget"], "to": ["Gadget"]}]
    })
}

/// Export as Meshery's archives (a .tar.gz, an OCI image), delete, and import them back
/// as Meshery's clients send them (base64, bytes, a URL; checked only with
/// `register: false`), with Meshery's summary; what cannot be deleted or imported is
/// refused with the reason.
#[tokio::test]
async fn models_are_exported_deleted_and_imported_as_meshery_archives() {
    let server = TestServer::start().await;
    let http = server.http();
    let post = |body: Value| {
        http.post(server.url("/api/meshmodels/register"))
            .json(&body)
            .send()
    };
    let made = post(sample_model("sample-mesh")).await.unwrap();
    assert_eq!(made.status(), 201);
    let original: Value = made.json().await.unwrap();
    let export = |query: &str| {
        let url = server.url(&format!("/api/meshmodels/export?{query}"));
        let http = http.clone();
        let query = query.to_string();
        async move {
            let r = http.get(url).send().await.unwrap();
            assert_eq!(r.status(), 200, "{query}");
            assert_eq!(r.headers()["content-type"], "application/octet-stream");
            r.bytes().await.unwrap().to_vec()
        }
    };
    let tgz = export("id=sample-mesh@v1.0.0&file_type=tar&output_format=yaml").await;
    assert_eq!(&tgz[..2], &[0x1f, 0x8b], "gzip");
    let oci = export("name=sample-mesh").await;
    assert_eq!(&oci[257..262], b"ustar", "an OCI layout is a tar");
    assert_eq!(
        export("name=sample-mesh&file_type=tar").await,
        export("id=sample-mesh@v1.0.0&file_type=tar").await,
        "deterministic"
    );

    // Built-in models stay; a registered one goes, with its answer the model.
    let builtin = http
        .delete(server.url("/api/meshmodels/models/kubernetes@v1.31.0"))
        .send()
        .await
        .unwrap();
    assert_eq!(builtin.status(), 409);
    assert!(
        builtin
            .text()
            .await
            .unwrap()
            .contains("built into the server")
    );
    let gone = http
        .delete(server.url("/api/meshmodels/models/sample-mesh@v1.0.0"))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 200);
    assert_eq!(
        raw(&server, "/api/meshmodels/models/sample-mesh").await.0,
        404
    );

    // Checked only, then imported from each form: the same model as before.
    let b64 = |b: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b);
    let dry: Value = post(json!({"uploadType": "file", "register": false, "importBody": {"model_file": b64(&tgz), "file_name": "sample.tgz"}}))
        .await.unwrap().json().await.unwrap();
    assert_eq!(dry["entityCount"]["modelCount"], 1, "{dry}");
    assert_eq!(
        raw(&server, "/api/meshmodels/models/sample-mesh").await.0,
        404,
        "not registered"
    );
    let bytes: Vec<u8> = oci.clone();
    let imported = post(json!({"uploadType": "file", "register": true, "importBody": {"modelFile": bytes, "fileName": "sample.tar"}})).await.unwrap();
    assert_eq!(imported.status(), 200);
    let summary: Value = imported.json().await.unwrap();
    assert_eq!(
        summary["entityTypeSummary"]["successfulModels"][0]["name"], "sample-mesh",
        "{summary}"
    );
    assert_eq!(
        summary["entityCount"],
        json!({"modelCount": 1, "compCount": 2, "relCount": 1, "totalErrCount": 0})
    );
    assert_eq!(summary["errMsg"], "");
    let (_, back) = raw(&server, "/api/meshmodels/models/sample-mesh").await;
    let back = &back["models"][0];
    for key in [
        "name",
        "version",
        "displayName",
        "category",
        "componentsCount",
        "relationshipsCount",
    ] {
        assert_eq!(back[key], original[key], "{key}");
    }
    let widget = back["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "Widget")
        .unwrap();
    assert_eq!(
        widget["schema"]["properties"]["spec"]["required"],
        json!(["size"]),
        "the schema came back"
    );
    // Importing it again: a failure in the summary, with the reason.
    let again: Value = post(json!({"uploadType": "file", "importBody": {"modelFile": b64(&tgz)}}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["entityCount"]["modelCount"], 0);
    assert!(
        again["errMsg"]
            .as_str()
            .unwrap()
            .contains("already registered"),
        "{again}"
    );
    // By URL, served on loopback.
    let served = tgz.clone();
    let app = axum::Router::new().route(
        "/sample.tgz",
        axum::routing::get(move || async move { served }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/sample.tgz", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    http.delete(server.url("/api/meshmodels/models/sample-mesh@v1.0.0"))
        .send()
        .await
        .unwrap();
    let by_url: Value =
        post(json!({"uploadType": "urlImport", "importBody": {"url": url}, "register": true}))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(by_url["modelName"], json!(["sample-mesh"]), "{by_url}");

    // A model whose kinds another one's relationships name cannot go first.
    let mut dependent = sample_model("dependent-mesh");
    dependent["components"] = json!([{"kind": "Gizmo", "apiVersion": "widgets.io/v1"}]);
    dependent["relationships"] = json!([{"kind": "edge", "type": "non-binding", "subType": "network", "from": ["Gizmo"], "to": ["Widget"]}]);
    assert_eq!(post(dependent).await.unwrap().status(), 201);
    let in_use = http
        .delete(server.url("/api/meshmodels/models/sample-mesh@v1.0.0"))
        .send()
        .await
        .unwrap();
    assert_eq!(in_use.status(), 409);
    assert!(in_use.text().await.unwrap().contains("dependent-mesh"));
    for (body, says) in [
        (
            json!({"uploadType": "csv", "importBody": {"model_csv": "Model\n"}}),
            "CSV",
        ),
        (
            json!({"uploadType": "file", "importBody": {"modelFile": "not base64!"}}),
            "base64",
        ),
        (
            json!({"uploadType": "file", "importBody": {"modelFile": b64(b"\x00\x01binary")}}),
            "archive",
        ),
        (json!({"uploadType": "urlImport", "importBody": {}}), "url"),
    ] {
        let r = post(body.clone()).await.unwrap();
        assert_eq!(r.status(), 400, "{body}");
        assert!(r.text().await.unwrap().contains(says), "{body}");
    }
    server.finish().await;
}

/// Relationship evaluation over the sample app (ConfigMap, Deployment, Service), in this
/// server's design format and in Meshery's: the Service selects the Deployment by labels,
/// the Deployment mounts the ConfigMap; ids are stable, actions bring the design there.
#[tokio::test]
async fn relationships_are_evaluated_over_a_design() {
    let server = TestServer::start().await;
    let http = server.http();
    let manifest = include_str!("../support/sample-app.yaml");
    let imported: Value = http
        .post(server.url("/api/pattern/import"))
        .json(&json!({"file": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, manifest), "fileName": "app.yaml"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ours: Value = yaml_serde::from_str(imported[0]["patternFile"].as_str().unwrap()).unwrap();
    let evaluate = |design: Value, options: Value| {
        let http = http.clone();
        let url = server.url("/api/meshmodels/relationships/evaluate");
        async move {
            let r = http
                .post(url)
                .json(&json!({"design": design, "options": options}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    let found = evaluate(ours.clone(), json!({})).await;
    let kinds: std::collections::BTreeSet<(String, String, String)> =
        found["design"]["relationships"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let side = |s: &str| {
                    r["selectors"][0]["allow"][s][0]["kind"]
                        .as_str()
                        .unwrap()
                        .to_string()
                };
                (
                    side("from"),
                    side("to"),
                    r["subType"].as_str().unwrap().to_string(),
                )
            })
            .collect();
    assert_eq!(
        kinds,
        [
            (
                "ConfigMap".to_string(),
                "Deployment".to_string(),
                "mount".to_string()
            ),
            ("Service".into(), "Deployment".into(), "network".into()),
        ]
        .into_iter()
        .collect(),
        "{found}"
    );
    assert_eq!(found["actions"].as_array().unwrap().len(), 2);
    assert!(
        found["actions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["op"] == "add_relationship")
    );
    // Evaluated again with its relationships: nothing to do, the same ids.
    let again = evaluate(found["design"].clone(), json!({"returnDiffOnly": false})).await;
    assert_eq!(again["actions"], json!([]));
    assert_eq!(
        again["design"]["relationships"],
        found["design"]["relationships"]
    );
    // A Service selecting other labels relates to nothing; a stale relationship goes.
    let mut other = found["design"].clone();
    for c in other["components"].as_array_mut().unwrap() {
        if c["kind"] == "Service" {
            c["spec"]["selector"] = json!({"app": "other"});
        }
    }
    let changed = evaluate(other, json!({"returnDiffOnly": true})).await;
    assert_eq!(changed["actions"].as_array().unwrap().len(), 1, "{changed}");
    assert_eq!(changed["actions"][0]["op"], "delete_relationship");
    assert_eq!(changed["design"]["components"], json!([]), "diff only");
    // Meshery's design format: the same relationships, by its component ids.
    let meshery = json!({
        "id": "00000000-0000-0000-0000-0000000000aa", "name": "m", "schemaVersion": "designs.meshery.io/v1beta1", "version": "0.0.1",
        "components": [
            {"id": "svc-1", "displayName": "web", "component": {"kind": "Service", "version": "v1"}, "model": {"name": "kubernetes"},
             "configuration": {"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}}}},
            {"id": "dep-1", "displayName": "web", "component": {"kind": "Deployment", "version": "apps/v1"}, "model": {"name": "kubernetes"},
             "configuration": {"metadata": {"name": "web"}, "spec": {"template": {"metadata": {"labels": {"app": "web"}}}}}}
        ],
        "relationships": []
    });
    let evaluated = evaluate(meshery, json!({})).await;
    let r = &evaluated["design"]["relationships"][0];
    assert_eq!(
        (
            r["selectors"][0]["allow"]["from"][0]["id"].as_str(),
            r["selectors"][0]["allow"]["to"][0]["id"].as_str()
        ),
        (Some("svc-1"), Some("dep-1"))
    );
    let bad = http
        .post(server.url("/api/meshmodels/relationships/evaluate"))
        .json(&json!({"design": {"components": "no"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    server.finish().await;
}

#[tokio::test]
async fn models_are_imported_from_meshery_spreadsheets() {
    let server = TestServer::start().await;
    let http = server.http();
    let post = |body: Value| {
        http.post(server.url("/api/meshmodels/register"))
            .json(&body)
            .send()
    };
    let url = |csv: &str| {
        format!(
            "data:text/csv;base64,{}",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, csv)
        )
    };
    // Meshery's sheets: a title row above the header; one model not to publish.
    let models = "Models,,,,,\n\
        registrant,Model Display Name,model,category,sourceURL,publishToRegistry\n\
        meshery,Sheet Mesh,sheet-mesh,Provisioning,https://github.com/o/r/tree/main/sheet-mesh/v0.2.0/components,TRUE\n\
        meshery,Draft,draft-mesh,Provisioning,,FALSE\n";
    let components = "registrant,model,component,version,schema\n\
        meshery,sheet-mesh,Widget,sheet.io/v1,\"{\"\"type\"\":\"\"object\"\",\"\"required\"\":[\"\"spec\"\"]}\"\n\
        meshery,sheet-mesh,Gadget,sheet.io/v1,\n\
        meshery,draft-mesh,Orphan,sheet.io/v1,\n";
    let relationships = "Model,Version,kind,type,subType,PublishToRegistry,selector\n\
        sheet-mesh,*,Edge,Non Binding,Network,TRUE,\"[{\"\"allow\"\":{\"\"from\"\":[{\"\"kind\"\":\"\"Gadget\"\"}],\"\"to\"\":[{\"\"kind\"\":\"\"Widget\"\"}]}}]\"\n";
    let body = |register: bool| {
        json!({"uploadType": "csv", "register": register, "importBody": {
            "model_csv": url(models), "component_csv": url(components),
            "relationship_csv": url(relationships), "file_name": "model.csv"}})
    };

    // Checked only: nothing registered.
    let dry: Value = post(body(false)).await.unwrap().json().await.unwrap();
    assert_eq!(dry["modelName"], json!(["sheet-mesh"]), "{dry}");
    assert_eq!(
        raw(&server, "/api/meshmodels/models/sheet-mesh").await.0,
        404
    );

    let summary: Value = post(body(true)).await.unwrap().json().await.unwrap();
    assert_eq!(summary["entityCount"]["modelCount"], 1, "{summary}");
    assert_eq!(summary["entityCount"]["compCount"], 2);
    assert_eq!(summary["entityCount"]["relCount"], 1);
    let failed = &summary["entityTypeSummary"]["unsuccessfulEntityNameWithError"];
    assert_eq!(failed.as_array().map(Vec::len), Some(1), "{summary}");
    assert_eq!(failed[0]["name"], "Orphan");
    assert!(failed[0]["error"].as_str().unwrap().contains("draft-mesh"));

    let (status, model) = raw(&server, "/api/meshmodels/models/sheet-mesh").await;
    assert_eq!(status, 200, "{model}");
    let text = model.to_string();
    for expected in ["v0.2.0", "Sheet Mesh", "Provisioning"] {
        assert!(text.contains(expected), "{expected} not in {text}");
    }
    // The sheet's schema is the component's.
    let (status, widget) = raw(&server, "/api/registry/models/sheet-mesh/components/Widget").await;
    assert_eq!(status, 200, "{widget}");
    assert!(widget.to_string().contains("spec"), "{widget}");

    for (body, says) in [
        (
            json!({"uploadType": "csv", "importBody": {"component_csv": url(components)}}),
            "model_csv",
        ),
        (
            json!({"uploadType": "csv", "importBody": {"model_csv": "data:text/csv;base64,%%"}}),
            "base64",
        ),
        (
            json!({"uploadType": "csv", "importBody": {"model_csv": url("Models\n")}}),
            "header",
        ),
        (
            json!({"uploadType": "csv", "importBody": {"model_csv": url(models), "relationship_csv": url("Relationships\nno,header\n")}}),
            "relationship CSV",
        ),
    ] {
        let r = post(body.clone()).await.unwrap();
        assert_eq!(r.status(), 400, "{body}");
        let text = r.text().await.unwrap();
        assert!(text.contains(says), "{body}: {text}");
    }
    server.finish().await;
}
