//! Replicas as real processes on one PostgreSQL: `kill -9` of one in the middle of a
//! write loop, and PostgreSQL restarted under them. `cargo xtask test` (or `cargo xtask
//! contract-pg`) starts the database and runs these one at a time, after the contract
//! suite, because they stop it; on their own they are ignored (they need it).

#[path = "support/database.rs"]
mod database;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};

/// The administrator's URL and the `pg_ctl` command line of the test database.
fn test_database() -> (String, String) {
    let url = std::env::var("MESHERY_TEST_DATABASE_URL")
        .expect("MESHERY_TEST_DATABASE_URL: run with cargo xtask contract-pg");
    let control = std::env::var("MESHERY_TEST_PG_CTL")
        .expect("MESHERY_TEST_PG_CTL: run with cargo xtask contract-pg");
    (url, control)
}

/// `pg_ctl start|stop` on the test database.
fn pg_ctl(control: &str, action: &str) {
    let mut words = control.split(' ');
    let program = words.next().unwrap();
    let status = Command::new(program)
        .args(words)
        .arg(action)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "pg_ctl {action}: {status}");
}

/// One `meshery-server` process.
struct Replica {
    child: Child,
    base: String,
    home: Option<tempfile::TempDir>,
}

impl Replica {
    /// Starts a replica on `database` with the shared `key` and waits until it is ready.
    async fn start(database: &str, key: &std::path::Path) -> Replica {
        Replica::start_at(Some(database), key, tempfile::tempdir().unwrap(), &[]).await
    }

    /// Starts a server with `home` as its data directory, on `database` or else the
    /// home's SQLite file.
    async fn start_at(
        database: Option<&str>,
        key: &std::path::Path,
        home: tempfile::TempDir,
        extra: &[&str],
    ) -> Replica {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_meshery-server"));
        command
            .args(["--port", &port.to_string(), "--home"])
            .arg(home.path())
            .arg("--secret-key-file")
            .arg(key)
            .args(extra)
            .env_remove("MESHERY_DATABASE_URL")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null());
        if let Some(database) = database {
            command.env("MESHERY_DATABASE_URL", database);
        }
        let child = command.spawn().unwrap();
        let replica = Replica {
            child,
            base: format!("http://127.0.0.1:{port}"),
            home: Some(home),
        };
        replica.until_ready(true, Duration::from_secs(30)).await;
        replica
    }

    /// Stops the server (SIGKILL); its data directory lives on.
    fn stop(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.home.take().unwrap()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn ready(&self) -> Option<u16> {
        let response = http().get(self.url("/healthz/ready")).send().await.ok()?;
        Some(response.status().as_u16())
    }

    /// Waits until readiness is (or is no longer) 200.
    async fn until_ready(&self, ready: bool, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let status = self.ready().await;
            if (status == Some(200)) == ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: readiness {status:?}, wanted ready = {ready}",
                self.base
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Records an event; its status (none when the replica did not answer).
    async fn post_event(&self, description: &str) -> Option<u16> {
        let body = json!({"category": "test", "action": "write", "severity": "debug",
                          "description": description});
        let response = http()
            .post(self.url("/api/system/events"))
            .json(&body)
            .send()
            .await
            .ok()?;
        Some(response.status().as_u16())
    }

    async fn descriptions(&self) -> Vec<String> {
        let page: Value = http()
            .get(self.url("/api/system/events?pagesize=all&order=created_at%20asc"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        page["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["description"].as_str().unwrap().to_string())
            .collect()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http() -> reqwest::Client {
    meshery::tls::install_crypto();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn shared_key(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("secret.key");
    std::fs::write(&path, [11u8; 32]).unwrap();
    path
}

fn http_streaming() -> reqwest::Client {
    meshery::tls::install_crypto();
    reqwest::Client::builder().build().unwrap()
}

/// The next events' descriptions on an SSE stream (`sse_as`) are `want`.
async fn expect(rx: &mut tokio::sync::mpsc::UnboundedReceiver<(String, String)>, want: &[String]) {
    let mut got = Vec::new();
    while got.len() < want.len() {
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
            Ok(Some((_, d))) => got.push(d),
            _ => panic!("the subscriber got {got:?}, wanted {want:?}"),
        }
    }
    assert_eq!(got, want);
}

#[tokio::test]
#[ignore = "needs the test PostgreSQL: cargo xtask contract-pg"]
async fn a_replica_killed_mid_write_loses_no_answered_write_and_the_other_keeps_answering() {
    let (admin, _) = test_database();
    let database = database::fresh(&admin, "replicas").await;
    let keys = tempfile::tempdir().unwrap();
    let key = shared_key(keys.path());
    let mut a = Replica::start(&database, &key).await;
    let b = Replica::start(&database, &key).await;

    // Two writers, one per replica, as fast as they are answered.
    let stop = tokio_util::sync::CancellationToken::new();
    let writer = |base: String, name: &'static str, stop: tokio_util::sync::CancellationToken| {
        tokio::spawn(async move {
            let replica_url = |p: &str| format!("{base}{p}");
            let (mut answered, mut failed) = (Vec::new(), Vec::new());
            for i in 0.. {
                if stop.is_cancelled() {
                    break;
                }
                let description = format!("{name}-{i}");
                let body = json!({"category": "test", "action": "write", "severity": "debug",
                                  "description": description});
                match http()
                    .post(replica_url("/api/system/events"))
                    .json(&body)
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => answered.push(description),
                    Ok(r) => failed.push(format!("{description}: {}", r.status())),
                    Err(e) => failed.push(format!("{description}: {e}")),
                }
            }
            (answered, failed)
        })
    };
    let on_a = writer(a.base.clone(), "a", stop.clone());
    let on_b = writer(b.base.clone(), "b", stop.clone());
    // Some writes land, then A dies in the middle of its loop.
    tokio::time::sleep(Duration::from_millis(700)).await;
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.cancel();
    let (answered_a, _) = on_a.await.unwrap();
    let (answered_b, failed_b) = on_b.await.unwrap();
    assert!(
        failed_b.is_empty(),
        "the surviving replica failed writes: {failed_b:?}"
    );
    assert!(answered_a.len() > 5 && answered_b.len() > 10);

    let stored: std::collections::HashSet<String> = b.descriptions().await.into_iter().collect();
    let lost: Vec<&String> = answered_a
        .iter()
        .chain(&answered_b)
        .filter(|d| !stored.contains(*d))
        .collect();
    assert!(lost.is_empty(), "answered 2xx but not stored: {lost:?}");
}

#[tokio::test]
#[ignore = "needs the test PostgreSQL: cargo xtask contract-pg"]
async fn replicas_recover_from_a_database_restart_and_lost_notices_without_losing_events() {
    let (admin, control) = test_database();
    let database = database::fresh(&admin, "replicas").await;
    let keys = tempfile::tempdir().unwrap();
    let key = shared_key(keys.path());
    let a = Replica::start(&database, &key).await;
    let b = Replica::start(&database, &key).await;
    let mut on_b = sse_as(&http_streaming(), &b, None).await;
    assert_eq!(a.post_event("before").await, Some(201));
    expect(&mut on_b, &["before".into()]).await;

    // The notice connections are cut while A commits: B rereads the table.
    {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
        let cut = sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%'",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        assert!(cut.len() >= 2, "both replicas listen");
        let _ = conn.close().await;
    }
    let cut: Vec<String> = (0..5).map(|i| format!("while cut {i}")).collect();
    for d in &cut {
        assert_eq!(a.post_event(d).await, Some(201));
    }
    expect(&mut on_b, &cut).await;

    // PostgreSQL stops: both replicas say they are not ready and refuse writes; it comes
    // back: they are ready again without a restart of their own, and events flow.
    pg_ctl(&control, "stop");
    b.until_ready(false, Duration::from_secs(10)).await;
    let refused = a.post_event("while down").await;
    assert!(
        !matches!(refused, Some(s) if s < 300),
        "a write with the database down: {refused:?}"
    );
    pg_ctl(&control, "start");
    a.until_ready(true, Duration::from_secs(30)).await;
    b.until_ready(true, Duration::from_secs(30)).await;
    let after: Vec<String> = (0..3).map(|i| format!("after {i}")).collect();
    for d in &after {
        assert_eq!(a.post_event(d).await, Some(201));
    }
    expect(&mut on_b, &after).await;
    let stored = b.descriptions().await;
    assert!(!stored.iter().any(|d| d == "while down"), "{stored:?}");
    assert_eq!(stored.len(), 1 + cut.len() + after.len(), "{stored:?}");
}

/// `meshery-server db copy`; its exit status and output.
fn db_copy(from: &str, to: &str) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_meshery-server"))
        .args(["db", "copy", "--from", from, "--to", to])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// What a user sees of their data: every listing, as JSON.
async fn snapshot(server: &Replica) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for path in [
        "/api/user",
        "/api/user/prefs",
        "/api/system/events?pagesize=all",
        "/api/pattern?pagesize=all",
        "/api/system/kubernetes/contexts?pagesize=all",
        "/api/user/performance/profiles?pagesize=all",
        "/api/user/performance/profiles/results?pagesize=all",
        "/api/registry/models/copied-mesh",
        "/api/integrations/credentials?pagesize=all",
        // In clear: the copy's sealed secret opens with the same key.
        "/api/integrations/credentials/0b7e1d7a-3f5c-4f7e-9a51-2d1c6e8f9a10",
        "/api/integrations/connections?kind=grafana&pagesize=all",
    ] {
        let response = http().get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        out.push((path.to_string(), response.json().await.unwrap()));
    }
    out
}

#[tokio::test]
#[ignore = "needs the test PostgreSQL: cargo xtask contract-pg"]
async fn db_copy_moves_a_populated_sqlite_database_to_postgresql_and_back() {
    let (admin, _) = test_database();
    let keys = tempfile::tempdir().unwrap();
    let key = shared_key(keys.path());
    let home = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}/meshery.db", home.path().display());
    let source = Replica::start_at(None, &key, home, &[]).await;

    // Something of every kind.
    let post = |path: &str, body: Value| {
        let request = http().post(source.url(path)).json(&body);
        let path = path.to_string();
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            assert!(status.is_success(), "{path}: {status} {text}");
        }
    };
    for d in ["first", "second"] {
        assert_eq!(source.post_event(d).await, Some(201));
    }
    post(
        "/api/pattern",
        json!({"patternFile": "name: copied\ncomponents:\n  - name: cm\n    kind: ConfigMap\n    apiVersion: v1\n    metadata: {name: cm}\n"}),
    )
    .await;
    post("/api/user/prefs", json!({"anonymousUsageStats": false})).await;
    post(
        "/api/user/performance/profiles",
        json!({"name": "copied profile", "endpoints": [source.url("/healthz/live")], "duration": "1s", "qps": 5}),
    )
    .await;
    post(
        "/api/registry/register",
        json!({"name": "copied-mesh", "version": "v1.0.0", "components": [{"kind": "Widget", "apiVersion": "copied.io/v1"}]}),
    )
    .await;
    post(
        "/api/integrations/credentials",
        json!({"id": "0b7e1d7a-3f5c-4f7e-9a51-2d1c6e8f9a10", "name": "copied key", "type": "grafana", "secret": {"secret": "copied-secret"}}),
    )
    .await;
    post(
        "/api/integrations/connections",
        json!({"name": "copied grafana", "kind": "grafana", "type": "telemetry", "subType": "dashboards", "status": "connected", "metadata": {"url": "http://127.0.0.1:1"}, "credentialId": "0b7e1d7a-3f5c-4f7e-9a51-2d1c6e8f9a10"}),
    )
    .await;
    let kubeconfig = "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: \"http://127.0.0.1:1\"}}]\nusers: [{name: u, user: {token: copied-token}}]\ncontexts: [{name: copied, context: {cluster: c, user: u}}]\n";
    let uploaded = http()
        .post(source.url("/api/system/kubernetes"))
        .header("content-type", "application/yaml")
        .body(kubeconfig)
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), 200);
    let run = http()
        .get(source.url("/api/perf/profile"))
        .query(&[
            ("name", "copied run"),
            ("url", &source.url("/healthz/live")),
            ("t", "1s"),
            ("qps", "5"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(run.status(), 200);
    let _ = run.bytes().await.unwrap(); // the run's frames, to its end
    let before = snapshot(&source).await;
    let _home = source.stop();

    // SQLite -> PostgreSQL: a server on the copy sees the same; a second copy is refused.
    // With a password in the URL (the test database trusts loopback and ignores it):
    // the output must not show it.
    let mut postgres = url::Url::parse(&database::fresh(&admin, "replicas").await).unwrap();
    postgres.set_password(Some("hunter2-db")).unwrap();
    let postgres = postgres.to_string();
    let (ok, out) = db_copy(&sqlite, &postgres);
    assert!(ok, "{out}");
    assert!(out.contains("copied") && out.contains("events"), "{out}");
    assert!(!out.contains("hunter2-db"), "the password is shown: {out}");
    let (ok, refused) = db_copy(&sqlite, &postgres);
    assert!(!ok && refused.contains("not empty"), "{refused}");
    assert!(
        !refused.contains("hunter2-db"),
        "the password is shown: {refused}"
    );
    let on_postgres = Replica::start(&postgres, &key).await;
    assert_eq!(snapshot(&on_postgres).await, before);
    // New events come after the copied ones.
    assert_eq!(on_postgres.post_event("third").await, Some(201));
    let descriptions = on_postgres.descriptions().await;
    assert_eq!(descriptions.last().map(String::as_str), Some("third"));
    drop(on_postgres);

    // ... and back into a new SQLite file.
    let back_home = tempfile::tempdir().unwrap();
    let back = format!("sqlite://{}/meshery.db", back_home.path().display());
    let (ok, out) = db_copy(&postgres, &back);
    assert!(ok, "{out}");
    let on_sqlite = Replica::start_at(None, &key, back_home, &[]).await;
    let after = snapshot(&on_sqlite).await;
    // The same, with the event written on PostgreSQL.
    let events = |s: &[(String, Value)]| s[2].1["events"].as_array().unwrap().len();
    assert_eq!(events(&after), events(&before) + 1);
    for (i, (path, value)) in before.iter().enumerate() {
        if i != 2 {
            assert_eq!(&after[i], &(path.clone(), value.clone()), "{path}");
        }
    }
}

#[tokio::test]
#[ignore = "needs the test PostgreSQL: cargo xtask contract-pg"]
async fn the_database_connection_is_tls_verified_with_the_ca_file() {
    use sqlx::{Connection, Row};
    let (admin, _) = test_database();
    let ca = std::env::var("MESHERY_TEST_PG_CA").expect("MESHERY_TEST_PG_CA");
    let keys = tempfile::tempdir().unwrap();
    let key = shared_key(keys.path());
    let mut url = url::Url::parse(&database::fresh(&admin, "replicas").await).unwrap();
    let name = url.path().trim_start_matches('/').to_string();
    url.set_query(Some("sslmode=verify-full"));
    let url = url.to_string();

    // With the CA as --ca-file (the roots of every outbound call): ready, and every one of
    // its connections to the database is encrypted.
    let server = Replica::start_at(
        Some(&url),
        &key,
        tempfile::tempdir().unwrap(),
        &["--ca-file", &ca],
    )
    .await;
    assert_eq!(server.post_event("over TLS").await, Some(201));
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    let row = sqlx::query(
        "SELECT COUNT(*) FILTER (WHERE s.ssl) AS tls, COUNT(*) AS n
         FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.datname = $1",
    )
    .bind(&name)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let (tls, n): (i64, i64) = (row.get("tls"), row.get("n"));
    assert!(n > 0 && tls == n, "{tls} of {n} connections use TLS");
    let _ = conn.close().await;
    drop(server);

    // Without it the certificate is not trusted: the server does not start, and says why.
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_meshery-server"))
        .args(["--port", "0", "--home"])
        .arg(home.path())
        .arg("--secret-key-file")
        .arg(&key)
        .env("MESHERY_DATABASE_URL", &url)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.to_ascii_lowercase().contains("certificate") || err.contains("UnknownIssuer"),
        "{err}"
    );
}

/// A user's client: their provider token on every request, as mesheryctl sends it.
fn as_user(token: &str) -> reqwest::Client {
    meshery::tls::install_crypto();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
    headers.insert("meshery-provider", "Reference".parse().unwrap());
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A graphql-transport-ws connection of the token's user, subscribed to `query`.
async fn ws_subscribe(replica: &Replica, token: &str, query: &str) -> Ws {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = replica
        .url("/api/system/graphql/query")
        .replacen("http", "ws", 1);
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    request
        .headers_mut()
        .insert("cookie", "meshery-provider=Reference".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let init =
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}});
    ws.send(Message::Text(init.to_string().into()))
        .await
        .unwrap();
    let ack = ws_json(&mut ws).await;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    let subscribe = json!({"id": "1", "type": "subscribe", "payload": {"query": query}});
    ws.send(Message::Text(subscribe.to_string().into()))
        .await
        .unwrap();
    ws
}

/// The next text message as JSON, within 5 s.
async fn ws_json(ws: &mut Ws) -> Value {
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("no message within 5 s")
            .expect("the socket ended")
            .unwrap();
        if let Message::Text(t) = m {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

/// An SSE stream of events: (id, description) as they come.
async fn sse_as(
    client: &reqwest::Client,
    replica: &Replica,
    after: Option<&str>,
) -> tokio::sync::mpsc::UnboundedReceiver<(String, String)> {
    let mut request = client.get(replica.url("/api/system/events/subscribe"));
    if let Some(after) = after {
        request = request.header("last-event-id", after);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut frames = Box::pin(meshery_client::sse::frames(response.bytes_stream()));
        while let Some(Ok(frame)) = frames.next().await {
            let event: Value = serde_json::from_str(&frame.data).unwrap();
            let description = event["description"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if tx
                .send((frame.id.unwrap_or_default(), description))
                .is_err()
            {
                return;
            }
        }
    });
    rx
}

async fn next_sse(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<(String, String)>,
) -> (String, String) {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("no event within 5 s")
        .expect("the stream ended")
}

async fn post_as(client: &reqwest::Client, replica: &Replica, path: &str, body: Value) -> Value {
    let response = client
        .post(replica.url(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "POST {path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

async fn get_as(client: &reqwest::Client, replica: &Replica, path: &str) -> Value {
    let response = client.get(replica.url(path)).send().await.unwrap();
    assert_eq!(response.status(), 200, "GET {path}");
    response.json().await.unwrap()
}

fn event(description: &str) -> Value {
    json!({"category": "test", "action": "write", "severity": "debug", "description": description})
}

#[tokio::test]
#[ignore = "needs the test PostgreSQL: cargo xtask contract-pg"]
async fn replica_processes_share_every_write_and_live_update_and_keep_users_apart() {
    use meshery_provider::{Account, ProviderConfig};
    let (admin, _) = test_database();
    let provider = meshery_provider::start(
        ProviderConfig {
            accounts: vec![
                Account::parse("alice:alice-pw:Alice Liddell::admin").unwrap(),
                Account::parse("bob:bob-pw:Bob Builder").unwrap(),
            ],
            ..Default::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let database = database::fresh(&admin, "replicas").await;
    let keys = tempfile::tempdir().unwrap();
    let key = shared_key(keys.path());
    let flags = [
        "--provider-base-urls",
        &provider.url,
        "--perf-max-runs",
        "1",
    ];
    let a = Replica::start_at(Some(&database), &key, tempfile::tempdir().unwrap(), &flags).await;
    let b = Replica::start_at(Some(&database), &key, tempfile::tempdir().unwrap(), &flags).await;
    let alice_token = provider.provider.issue("alice").unwrap();
    let (alice, bob) = (
        as_user(&alice_token),
        as_user(&provider.provider.issue("bob").unwrap()),
    );

    // Live: alice's SSE stream and GraphQL subscription on B, bob's stream on B.
    let mut alice_sse = sse_as(&alice, &b, None).await;
    let mut bob_sse = sse_as(&bob, &b, None).await;
    let mut alice_ws = ws_subscribe(
        &b,
        &alice_token,
        "subscription { subscribeEvents { description } }",
    )
    .await;
    // The subscription is live once it carries one of alice's events (warm-ups on B).
    for n in 0.. {
        assert!(n < 30, "the GraphQL subscription never started");
        post_as(
            &alice,
            &b,
            "/api/system/events",
            event(&format!("warm-up {n}")),
        )
        .await;
        use tokio_tungstenite::tungstenite::Message;
        if let Ok(Some(Ok(Message::Text(_)))) =
            tokio::time::timeout(Duration::from_millis(300), alice_ws.next()).await
        {
            break;
        }
    }
    let posted = Instant::now();
    post_as(&alice, &a, "/api/system/events", event("alice on A")).await;
    let first_id = loop {
        let (id, d) = next_sse(&mut alice_sse).await;
        if d == "alice on A" {
            break id;
        }
        assert!(d.starts_with("warm-up"), "{d}");
    };
    assert!(
        posted.elapsed() < Duration::from_secs(1),
        "B's SSE subscriber waited {:?}",
        posted.elapsed()
    );
    loop {
        let m = ws_json(&mut alice_ws).await;
        let d = m["payload"]["data"]["subscribeEvents"]["description"].clone();
        if d == "alice on A" {
            break;
        }
        assert!(d.as_str().is_some_and(|d| d.starts_with("warm-up")), "{m}");
    }
    assert!(
        posted.elapsed() < Duration::from_secs(1),
        "B's GraphQL subscriber waited {:?}",
        posted.elapsed()
    );
    // Bob's stream on B carries only bob's events.
    post_as(&bob, &a, "/api/system/events", event("bob on A")).await;
    assert_eq!(next_sse(&mut bob_sse).await.1, "bob on A");

    // Every kind of write through A is read through B, and only by its owner.
    post_as(
        &alice,
        &a,
        "/api/pattern",
        json!({"patternFile": "name: alice-design\ncomponents:\n  - name: cm\n    kind: ConfigMap\n    apiVersion: v1\n    metadata: {name: cm}\n"}),
    )
    .await;
    post_as(
        &alice,
        &a,
        "/api/user/prefs",
        json!({"anonymousUsageStats": false}),
    )
    .await;
    post_as(
        &alice,
        &a,
        "/api/user/performance/profiles",
        json!({"name": "alice profile", "endpoints": [a.url("/healthz/live")]}),
    )
    .await;
    post_as(
        &alice,
        &a,
        "/api/registry/register",
        json!({"name": "alice-mesh", "version": "v1.0.0", "components": [{"kind": "Widget", "apiVersion": "alice.io/v1"}]}),
    )
    .await;
    let uploaded = alice
        .post(a.url("/api/system/kubernetes"))
        .header("content-type", "application/yaml")
        .body("apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: \"http://127.0.0.1:1\"}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: alice-cluster, context: {cluster: c, user: u}}]\n")
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), 200);
    let names = |v: &Value, list: &str, field: &str| -> Vec<String> {
        v[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x[field].as_str().unwrap().to_string())
            .collect()
    };
    for (who, client, mine) in [("alice", &alice, true), ("bob", &bob, false)] {
        let designs = get_as(client, &b, "/api/pattern?pagesize=all").await;
        assert_eq!(
            names(&designs, "patterns", "name") == ["alice-design"],
            mine,
            "{who}"
        );
        let prefs = get_as(client, &b, "/api/user/prefs").await;
        assert_eq!(prefs["anonymousUsageStats"] == false, mine, "{who}");
        let profiles = get_as(client, &b, "/api/user/performance/profiles?pagesize=all").await;
        assert_eq!(
            names(&profiles, "profiles", "name") == ["alice profile"],
            mine,
            "{who}"
        );
        let contexts = get_as(client, &b, "/api/system/kubernetes/contexts?pagesize=all").await;
        assert_eq!(
            names(&contexts, "contexts", "name") == ["alice-cluster"],
            mine,
            "{who}"
        );
        let events = get_as(client, &b, "/api/system/events?pagesize=all").await;
        let descriptions = names(&events, "events", "description");
        assert_eq!(
            descriptions.contains(&"alice on A".to_string()),
            mine,
            "{who}"
        );
        assert_eq!(
            descriptions.contains(&"bob on A".to_string()),
            !mine,
            "{who}"
        );
    }
    // The registry is shared by everyone.
    get_as(&bob, &b, "/api/registry/models/alice-mesh").await;

    // Alice's stream goes away; events land on both; she resumes on A and gets exactly
    // the missed ones, then live ones.
    drop(alice_sse);
    for (replica, d) in [(&b, "missed 1 on B"), (&a, "missed 2 on A")] {
        post_as(&alice, replica, "/api/system/events", event(d)).await;
    }
    let mut resumed = sse_as(&alice, &a, Some(&first_id)).await;
    // In between come the events the other writes recorded (design saved, ...).
    let mut got = Vec::new();
    while !got.iter().any(|d| d == "missed 2 on A") {
        got.push(next_sse(&mut resumed).await.1);
    }
    assert!(!got.iter().any(|d| d == "alice on A"), "resent: {got:?}");
    let missed: Vec<&str> = got
        .iter()
        .map(String::as_str)
        .filter(|d| d.starts_with("missed"))
        .collect();
    assert_eq!(missed, ["missed 1 on B", "missed 2 on A"]);
    post_as(&alice, &b, "/api/system/events", event("live on B")).await;
    loop {
        let d = next_sse(&mut resumed).await.1;
        assert!(
            !d.starts_with("missed") && d != "alice on A",
            "sent twice: {d}"
        );
        if d == "live on B" {
            break;
        }
    }

    // A run started on A: listed on B, the limit counts it there, followed and cancelled
    // from B.
    let started = alice
        .get(a.url("/api/perf/profile"))
        .query(&[
            ("name", "across"),
            ("url", &a.url("/healthz/live")),
            ("t", "30s"),
            ("qps", "5"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 200);
    let on_a = tokio::spawn(async move { started.text().await.unwrap() });
    let runs = get_as(&alice, &b, "/api/perf/runs").await;
    let run_id = runs[0]["runId"]
        .as_str()
        .expect("a run listed on B")
        .to_string();
    let second = alice
        .get(b.url("/api/perf/profile"))
        .query(&[
            ("url", a.url("/healthz/live").as_str()),
            ("t", "30s"),
            ("qps", "5"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 429);
    let mut follow = ws_subscribe(
        &b,
        &alice_token,
        &format!(
            r#"subscription {{ subscribePerfRunProgress(runID: "{run_id}") {{ status message }} }}"#
        ),
    )
    .await;
    let first = ws_json(&mut follow).await;
    assert_eq!(
        first["payload"]["data"]["subscribePerfRunProgress"]["status"], "info",
        "{first}"
    );
    let cancelled = alice
        .delete(b.url(&format!("/api/perf/runs/{run_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 204);
    let last = loop {
        let m = ws_json(&mut follow).await;
        let f = m["payload"]["data"]["subscribePerfRunProgress"].clone();
        if f["status"] != "info" {
            break f;
        }
    };
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .starts_with("cancelled after"),
        "{last}"
    );
    let text_on_a = tokio::time::timeout(Duration::from_secs(10), on_a)
        .await
        .expect("A's stream ended")
        .unwrap();
    assert!(text_on_a.contains("cancelled after"), "{text_on_a}");
    provider.stop().await;
}
