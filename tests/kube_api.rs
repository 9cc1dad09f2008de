//! The test Kubernetes API server (`tests/support/kube_api.rs`) against the real
//! `kubectl`: what kubectl does to it must go as it goes against a cluster, so the
//! tests that deploy to it mean something.

#[path = "support/kube_api.rs"]
mod kube_api;

use std::path::{Path, PathBuf};
use std::process::Output;

use kube_api::KubeApi;
use serde_json::{Value, json};

const SAMPLE: &str = include_str!("support/sample-app.yaml");

struct Kubectl {
    config: PathBuf,
    dir: tempfile::TempDir,
}

impl Kubectl {
    fn new(api: &KubeApi) -> Kubectl {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("kubeconfig");
        std::fs::write(&config, api.kubeconfig("test")).unwrap();
        Kubectl { config, dir }
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Runs kubectl with this kubeconfig (off the async runtime's threads).
    async fn run(&self, args: &[&str]) -> Output {
        let config = self.config.clone();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let cache = self.dir.path().join("cache");
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(kubectl_binary())
                .arg("--kubeconfig")
                .arg(&config)
                .arg("--cache-dir")
                .arg(&cache)
                .args(&args)
                .output()
                .expect(
                    "kubectl runs (install Debian's kubernetes-client, or cargo xtask test does)",
                )
        })
        .await
        .unwrap()
    }

    /// Runs kubectl and expects success: its standard output.
    async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            out.status.success(),
            "kubectl {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs kubectl and expects failure: its standard error.
    async fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            !out.status.success(),
            "kubectl {args:?} succeeded:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    async fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json", "--show-managed-fields"]);
        serde_json::from_str(&self.ok(&all).await).unwrap()
    }
}

fn kubectl_binary() -> PathBuf {
    std::env::var_os("KUBECTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("kubectl"))
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[tokio::test]
async fn kubectl_applies_server_side_gets_and_deletes_the_sample() {
    let api = KubeApi::start(Some("sekret")).await;
    let k = Kubectl::new(&api);
    let sample = k.file("sample.yaml", SAMPLE);
    let out = k
        .ok(&["apply", "--server-side", "-f", path_str(&sample)])
        .await;
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "configmap/web-config serverside-applied",
            "deployment.apps/web serverside-applied",
            "service/web serverside-applied"
        ],
        "{out}"
    );
    let deployment = k.json(&["get", "deployment", "web"]).await;
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(deployment["metadata"]["generation"], 1);
    let managers: Vec<&str> = deployment["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["manager"].as_str().unwrap())
        .collect();
    assert_eq!(managers, ["kubectl"]);
    assert!(
        deployment["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:replicas"].is_object()
    );
    // Lists by label, across kinds, as kubectl shows them.
    let listed = k
        .json(&["get", "configmaps,services,deployments", "-l", "app=web"])
        .await;
    let names: Vec<String> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            format!(
                "{}/{}",
                i["kind"].as_str().unwrap(),
                i["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        names,
        ["ConfigMap/web-config", "Service/web", "Deployment/web"]
    );

    // Applying the same again changes nothing; a changed replica count is a new generation.
    let again = k
        .ok(&["apply", "--server-side", "-f", path_str(&sample)])
        .await;
    assert!(
        again.contains("deployment.apps/web serverside-applied"),
        "{again}"
    );
    let unchanged = k.json(&["get", "deployment", "web"]).await;
    assert_eq!(
        unchanged["metadata"]["resourceVersion"],
        deployment["metadata"]["resourceVersion"]
    );
    // What an applier no longer applies goes (the Deployment's labels); a changed replica
    // count is a new generation.
    let changed = SAMPLE.replace(
        "  labels: {app: web}\nspec:\n  replicas: 2",
        "spec:\n  replicas: 3",
    );
    assert_ne!(changed, SAMPLE);
    let scaled = k.file("scaled.yaml", &changed);
    k.ok(&["apply", "--server-side", "-f", path_str(&scaled)])
        .await;
    let deployment = k.json(&["get", "deployment", "web"]).await;
    assert_eq!(deployment["spec"]["replicas"], 3);
    assert_eq!(deployment["metadata"]["generation"], 2);
    assert!(
        deployment["metadata"].get("labels").is_none(),
        "{deployment}"
    );
    let table = k.ok(&["get", "deployments"]).await;
    assert!(table.lines().any(|l| l.starts_with("web ")), "{table}");

    // A server-side dry run of an invalid change names the field and changes nothing.
    let invalid = k.file(
        "invalid.yaml",
        &SAMPLE.replace("replicas: 2", "replicas: -1"),
    );
    let err = k
        .fails(&[
            "apply",
            "--server-side",
            "--dry-run=server",
            "-f",
            path_str(&invalid),
        ])
        .await;
    assert!(err.contains("spec.replicas"), "{err}");
    assert!(err.contains("Invalid"), "{err}");
    let after = k.json(&["get", "deployment", "web"]).await;
    assert_eq!(after["spec"]["replicas"], 3);
    assert_eq!(
        after["metadata"]["resourceVersion"],
        deployment["metadata"]["resourceVersion"]
    );
    // A valid dry run answers what would be, and stores nothing.
    let four = k.file("four.yaml", &SAMPLE.replace("replicas: 2", "replicas: 4"));
    let dry = k
        .ok(&[
            "apply",
            "--server-side",
            "--dry-run=server",
            "-f",
            path_str(&four),
            "-o",
            "json",
        ])
        .await;
    assert!(dry.contains("\"replicas\": 4"), "{dry}");
    assert_eq!(
        k.json(&["get", "deployment", "web"]).await["spec"]["replicas"],
        3
    );

    let deleted = k.ok(&["delete", "-f", path_str(&sample)]).await;
    assert_eq!(
        deleted.lines().collect::<Vec<_>>(),
        [
            "configmap \"web-config\" deleted",
            "deployment.apps \"web\" deleted",
            "service \"web\" deleted"
        ],
        "{deleted}"
    );
    let err = k.fails(&["get", "deployment", "web"]).await;
    assert!(
        err.contains("Error from server (NotFound): deployments.apps \"web\" not found"),
        "{err}"
    );
    assert_eq!(api.count("apps", "deployments"), 0);
    api.stop().await;
}

#[tokio::test]
async fn another_managers_field_is_a_conflict_unless_forced() {
    let api = KubeApi::start(None).await;
    let k = Kubectl::new(&api);
    let sample = k.file("sample.yaml", SAMPLE);
    k.ok(&[
        "apply",
        "--server-side",
        "--field-manager",
        "meshery",
        "-f",
        path_str(&sample),
    ])
    .await;
    let scaled = k.file("scaled.yaml", &SAMPLE.replace("replicas: 2", "replicas: 5"));
    let err = k
        .fails(&["apply", "--server-side", "-f", path_str(&scaled)])
        .await;
    assert!(err.contains("conflict with \"meshery\""), "{err}");
    assert!(err.contains(".spec.replicas"), "{err}");
    assert_eq!(
        k.json(&["get", "deployment", "web"]).await["spec"]["replicas"],
        2
    );
    k.ok(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        path_str(&scaled),
    ])
    .await;
    let deployment = k.json(&["get", "deployment", "web"]).await;
    assert_eq!(deployment["spec"]["replicas"], 5);
    // kubectl now owns the replica count; meshery keeps the rest it applied.
    let fields = |manager: &str| {
        deployment["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["manager"] == manager)
            .map(|m| m["fieldsV1"].clone())
            .unwrap_or(Value::Null)
    };
    assert!(fields("kubectl")["f:spec"]["f:replicas"].is_object());
    assert!(fields("meshery")["f:spec"].get("f:replicas").is_none());
    assert!(fields("meshery")["f:spec"]["f:template"].is_object());
    api.stop().await;
}

#[tokio::test]
async fn custom_resources_come_with_their_definition() {
    let api = KubeApi::start(None).await;
    let k = Kubectl::new(&api);
    let crd = k.file(
        "crd.yaml",
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n\
         metadata: {name: widgets.example.com}\n\
         spec:\n  group: example.com\n  scope: Namespaced\n\
         \x20 names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wg]}\n\
         \x20 versions:\n  - name: v1\n    served: true\n    storage: true\n\
         \x20   schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}\n",
    );
    k.ok(&["apply", "--server-side", "-f", path_str(&crd)])
        .await;
    let widget = k.file(
        "widget.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1}\nspec: {size: 3}\n",
    );
    let out = k
        .ok(&["apply", "--server-side", "-f", path_str(&widget)])
        .await;
    assert_eq!(out.trim(), "widget.example.com/w1 serverside-applied");
    assert_eq!(k.json(&["get", "wg", "w1"]).await["spec"]["size"], 3);
    k.ok(&["delete", "crd", "widgets.example.com"]).await;
    // The kind went with its definition, and its objects with it.
    assert_eq!(api.count("example.com", "widgets"), 0);
    let err = k.fails(&["get", "widgets"]).await;
    assert!(err.contains("widgets"), "{err}");
    api.stop().await;
}

#[tokio::test]
async fn namespaces_hold_their_objects_and_a_missing_one_is_not_found() {
    let api = KubeApi::start(None).await;
    let k = Kubectl::new(&api);
    let elsewhere = k.file(
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: team}\ndata: {a: b}\n",
    );
    let err = k
        .fails(&["apply", "--server-side", "-f", path_str(&elsewhere)])
        .await;
    assert!(err.contains("namespaces \"team\" not found"), "{err}");
    let namespace = k.file(
        "ns.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: team}\n",
    );
    k.ok(&["apply", "--server-side", "-f", path_str(&namespace)])
        .await;
    k.ok(&["apply", "--server-side", "-f", path_str(&elsewhere)])
        .await;
    assert_eq!(
        k.json(&["get", "configmap", "c", "-n", "team"]).await["data"]["a"],
        "b"
    );
    let all = k.json(&["get", "configmaps", "--all-namespaces"]).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 1);
    k.ok(&["delete", "namespace", "team"]).await;
    assert_eq!(api.count("", "configmaps"), 0);
    api.stop().await;
}

#[tokio::test]
async fn watches_resume_from_a_resource_version_and_expire_after_compaction() {
    use futures_util::StreamExt;
    meshery::tls::install_crypto();
    let api = KubeApi::start(None).await;
    let tls = meshery::tls::outbound_config(Some(api.ca_pem.as_bytes())).unwrap();
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()
        .unwrap();
    let url = |path: &str| format!("{}{path}", api.url);
    let create = |name: &str| {
        let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"n": name}});
        http.post(url("/api/v1/namespaces/default/configmaps"))
            .json(&body)
            .send()
    };
    assert_eq!(create("a").await.unwrap().status(), 201);
    let list: Value = http
        .get(url("/api/v1/namespaces/default/configmaps"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(create("b").await.unwrap().status(), 201);
    // From the list's version: only what came after, then live changes.
    let watch = http
        .get(url(&format!(
            "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv}"
        )))
        .send()
        .await
        .unwrap();
    let mut lines = Box::pin(watch.bytes_stream());
    let mut buffer = Vec::new();
    let mut next_event = async || -> Value {
        loop {
            if let Some(i) = buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buffer.drain(..=i).collect();
                return serde_json::from_slice(&line).unwrap();
            }
            let chunk = tokio::time::timeout(std::time::Duration::from_secs(5), lines.next())
                .await
                .expect("a watch event in time")
                .expect("the watch stays open")
                .unwrap();
            buffer.extend_from_slice(&chunk);
        }
    };
    let first = next_event().await;
    assert_eq!(
        (
            first["type"].as_str(),
            first["object"]["metadata"]["name"].as_str()
        ),
        (Some("ADDED"), Some("b"))
    );
    let deleted = http
        .delete(url("/api/v1/namespaces/default/configmaps/a"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    let second = next_event().await;
    assert_eq!(
        (
            second["type"].as_str(),
            second["object"]["metadata"]["name"].as_str()
        ),
        (Some("DELETED"), Some("a"))
    );
    // After compaction the old version is gone: 410 in an ERROR event.
    api.compact();
    let expired: String = http
        .get(url(&format!(
            "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv}"
        )))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let event: Value = serde_json::from_str(expired.trim()).unwrap();
    assert_eq!(event["type"], "ERROR");
    assert_eq!(event["object"]["code"], 410);
    assert_eq!(event["object"]["reason"], "Expired");
    api.stop().await;
}
