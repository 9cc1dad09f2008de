//! The cluster layer: how long deploying the sample design takes against `kubectl apply
//! --server-side` of the same manifests (same test API server, same run), and what the
//! server's memory grows by while it holds the inventory of 10,000 objects.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::kube_api::KubeApi;

const SAMPLE: &str = include_str!("../../tests/support/sample-app.yaml");

/// Medians of `runs` deploys (each after an undeploy) and of `runs` kubectl applies (each
/// after a kubectl delete), alternating; milliseconds.
pub async fn deploy_times(
    api: &KubeApi,
    server: std::net::SocketAddr,
    pattern_id: &str,
    kubeconfig: &Path,
    manifests: &Path,
    runs: usize,
) -> (f64, f64) {
    let client = reqwest::Client::new();
    let deploy = |method: reqwest::Method| {
        client
            .request(method, format!("http://{server}/api/pattern/deploy"))
            .json(&serde_json::json!({ "patternId": pattern_id }))
            .send()
    };
    // Async: the API server answers kubectl on this same thread.
    let kubectl = |args: &'static [&'static str]| async move {
        let out = tokio::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(args)
            .arg("-f")
            .arg(manifests)
            .output()
            .await
            .expect("kubectl runs");
        assert!(out.status.success(), "kubectl {args:?}: {out:?}");
    };
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        let answer = deploy(reqwest::Method::POST)
            .await
            .expect("a deploy answer");
        assert!(answer.status().is_success(), "deploy: {}", answer.status());
        let body: serde_json::Value = answer.json().await.expect("a deploy result");
        ours.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(body["succeeded"], true, "{body}");
        assert_eq!(api.count("apps", "deployments"), 1);
        deploy(reqwest::Method::DELETE)
            .await
            .expect("an undeploy answer");
        assert_eq!(api.count("apps", "deployments"), 0);

        let started = Instant::now();
        kubectl(&["apply", "--server-side", "--field-manager", "kubectl-bench"]).await;
        theirs.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(api.count("apps", "deployments"), 1);
        kubectl(&["delete", "--wait=false"]).await;
        assert_eq!(api.count("apps", "deployments"), 0);
    }
    (median(&mut ours), median(&mut theirs))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The sample manifests in a file, for kubectl.
pub fn sample_file(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("sample-app.yaml");
    std::fs::write(&path, SAMPLE).expect("the sample manifests");
    path
}

/// The sample as a design stored on the server; its id.
pub async fn import_sample(server: std::net::SocketAddr) -> String {
    use base64::Engine;
    let answer: serde_json::Value = reqwest::Client::new()
        .post(format!("http://{server}/api/pattern/import"))
        .json(&serde_json::json!({
            "file": base64::engine::general_purpose::STANDARD.encode(SAMPLE),
            "fileName": "sample-app.yaml",
        }))
        .send()
        .await
        .expect("an import answer")
        .json()
        .await
        .expect("a design");
    // A list holding the design, as Meshery answers.
    answer[0]["id"]
        .as_str()
        .expect("the design's id")
        .to_string()
}

/// Uploads a kubeconfig for `api`; the context's id.
pub async fn upload(server: std::net::SocketAddr, api: &KubeApi, name: &str) -> String {
    let answer: serde_json::Value = reqwest::Client::new()
        .post(format!("http://{server}/api/system/kubernetes"))
        .header("content-type", "application/yaml")
        .body(api.kubeconfig(name))
        .send()
        .await
        .expect("an upload answer")
        .json()
        .await
        .expect("the contexts");
    // New contexts are registered; one uploaded before may be connected already.
    ["registeredContexts", "connectedContexts"]
        .iter()
        .find_map(|list| answer[*list][0]["id"].as_str())
        .expect("a context id")
        .to_string()
}

/// Waits until the inventory holds at least `n` objects; how long that took.
pub async fn until_inventory(server: std::net::SocketAddr, n: i64, limit: Duration) -> Duration {
    let started = Instant::now();
    let client = reqwest::Client::new();
    loop {
        let page: serde_json::Value = client
            .get(format!(
                "http://{server}/api/system/meshsync/resources?pagesize=1"
            ))
            .send()
            .await
            .expect("an inventory answer")
            .json()
            .await
            .expect("a page");
        if page["totalCount"].as_i64().unwrap_or(0) >= n {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "the inventory did not reach {n} objects in {limit:?}: {page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
