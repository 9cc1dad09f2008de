//! Replicas as real processes on one PostgreSQL: `kill -9` of one in the middle of a
//! write loop, and PostgreSQL restarted under them. `cargo xtask test` (or `cargo xtask
//! contract-pg`) starts the database and runs these one at a time, after the contract
//! suite, because they stop it; on their own they are ignored (they need it).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};

/// The administrator's URL and the `pg_ctl` command line of the test database.
fn database() -> (String, String) {
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

/// A fresh database on the test server, for one deployment.
async fn fresh_database(admin: &str) -> String {
    use sqlx::Connection;
    let name = format!("replicas_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(admin).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let _ = conn.close().await;
    let mut url = url::Url::parse(admin).unwrap();
    url.set_path(&name);
    url.to_string()
}

/// One `meshery-server` process.
struct Replica {
    child: Child,
    base: String,
    _home: tempfile::TempDir,
}

impl Replica {
    /// Starts a replica on `database` with the shared `key` and waits until it is ready.
    async fn start(database: &str, key: &std::path::Path) -> Replica {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let home = tempfile::tempdir().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_meshery-server"))
            .args(["--port", &port.to_string(), "--home"])
            .arg(home.path())
            .arg("--secret-key-file")
            .arg(key)
            .env("MESHERY_DATABASE_URL", database)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let replica = Replica {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _home: home,
        };
        replica.until_ready(true, Duration::from_secs(30)).await;
        replica
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

/// The descriptions an SSE stream of `replica` delivers, as they come.
async fn subscribe(replica: &Replica) -> tokio::sync::mpsc::UnboundedReceiver<String> {
    let response = http_streaming()
        .get(replica.url("/api/system/events/subscribe"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut frames = Box::pin(meshery_client::sse::data_frames(response.bytes_stream()));
        while let Some(Ok(data)) = frames.next().await {
            let event: Value = serde_json::from_str(&data).unwrap();
            if tx
                .send(
                    event["description"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
                .is_err()
            {
                return;
            }
        }
    });
    rx
}

fn http_streaming() -> reqwest::Client {
    meshery::tls::install_crypto();
    reqwest::Client::builder().build().unwrap()
}

async fn expect(rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>, want: &[String]) {
    let mut got = Vec::new();
    while got.len() < want.len() {
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
            Ok(Some(d)) => got.push(d),
            _ => panic!("the subscriber got {got:?}, wanted {want:?}"),
        }
    }
    assert_eq!(got, want);
}

#[tokio::test]
#[ignore = "needs the test PostgreSQL: cargo xtask contract-pg"]
async fn a_replica_killed_mid_write_loses_no_answered_write_and_the_other_keeps_answering() {
    let (admin, _) = database();
    let database = fresh_database(&admin).await;
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
    let (admin, control) = database();
    let database = fresh_database(&admin).await;
    let keys = tempfile::tempdir().unwrap();
    let key = shared_key(keys.path());
    let a = Replica::start(&database, &key).await;
    let b = Replica::start(&database, &key).await;
    let mut on_b = subscribe(&b).await;
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
