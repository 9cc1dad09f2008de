//! A real server on port 0 with a temporary MESHERY_HOME. Every response it sends is
//! checked against schema/openapi.yaml by a layer in front of the real router.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use meshery::server::{self, App, Config};

use crate::spec::Spec;

fn spec() -> &'static Spec {
    static SPEC: OnceLock<Spec> = OnceLock::new();
    SPEC.get_or_init(Spec::load)
}

#[derive(Default)]
struct Audit {
    violations: Mutex<Vec<String>>,
    checked: AtomicUsize,
}

pub struct TestServer {
    pub base: String,
    pub addr: std::net::SocketAddr,
    pub app: App,
    audit: Arc<Audit>,
    served: Option<meshery::serve::Served>,
    _home: tempfile::TempDir,
}

async fn audit_layer(audit: Arc<Audit>, request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let streaming = status == 101
        || response
            .headers()
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if streaming {
        // The status and content type are checked; the body is a stream.
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok());
        let via = response.headers().contains_key("via");
        if status != 101
            && let Err(e) = spec().check(&method, &path, status, content_type, via, b"")
        {
            audit.violations.lock().unwrap().push(e);
        }
        audit.checked.fetch_add(1, Ordering::Relaxed);
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let content_type = parts
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok());
    let via = parts.headers.contains_key("via");
    if let Err(e) = spec().check(&method, &path, status, content_type, via, &bytes) {
        audit.violations.lock().unwrap().push(e);
    }
    if status >= 400
        && path.starts_with("/api")
        && !via
        && !parts.headers.contains_key("content-type")
    {
        audit
            .violations
            .lock()
            .unwrap()
            .push(format!("{method} {path} -> {status} without a body"));
    }
    audit.checked.fetch_add(1, Ordering::Relaxed);
    Response::from_parts(parts, Body::from(bytes))
}

/// Every reqwest client of the tests: reqwest is built without a rustls provider of its
/// own (the server installs ring), so the tests install it before building one.
/// They all share one TLS configuration (built-in roots), so building a client does not
/// load the system's certificates each time.
pub fn client_builder() -> reqwest::ClientBuilder {
    static TLS: std::sync::OnceLock<rustls::ClientConfig> = std::sync::OnceLock::new();
    meshery::tls::install_crypto();
    let tls = TLS.get_or_init(|| meshery::tls::outbound_config(None).expect("TLS config"));
    reqwest::Client::builder().tls_backend_preconfigured(tls.clone())
}

/// The PostgreSQL server the suite runs against, when `cargo xtask test` started one
/// (`MESHERY_TEST_DATABASE_URL`, an administrator's URL); else every server is on SQLite.
pub fn test_database() -> Option<String> {
    std::env::var("MESHERY_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// On PostgreSQL, gives `config` a database of its own, named after its home, so a server
/// restarted on the same home finds its data, as it does on SQLite.
pub async fn use_test_database(config: &mut Config) {
    let Some(admin) = test_database() else {
        return;
    };
    if config.database_url.is_some() {
        return; // the test chose one (a replica of another server)
    }
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        config.home.as_os_str().as_encoded_bytes(),
    );
    let name: String = digest.as_ref()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    config.database_url = Some(crate::database::create(&admin, &format!("test_{name}")).await);
}

/// Every stored byte of the server's database (for "no secret in clear" checks): the
/// SQLite files under `home`, or every column of every table on PostgreSQL.
pub async fn database_bytes(config: &Config) -> Vec<u8> {
    use sqlx::{Connection, Row};
    let mut bytes = Vec::new();
    let Some(url) = &config.database_url else {
        for entry in std::fs::read_dir(&config.home).unwrap() {
            let entry = entry.unwrap();
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with("meshery.db")
            {
                bytes.extend(std::fs::read(entry.path()).unwrap());
            }
        }
        return bytes;
    };
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let tables: Vec<String> = sqlx::query(
        "SELECT table_name::text AS t FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .iter()
    .map(|r| r.get("t"))
    .collect();
    for table in tables {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT * FROM {table}")))
            .fetch_all(&mut conn)
            .await
            .unwrap();
        for row in rows {
            for i in 0..row.len() {
                // The binary wire form: text as UTF-8, bytea as its bytes.
                if let Ok(Some(value)) = row.try_get_unchecked::<Option<Vec<u8>>, _>(i) {
                    bytes.extend(value);
                }
            }
        }
    }
    let _ = conn.close().await;
    bytes
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(configure: impl FnOnce(&mut Config)) -> TestServer {
        let home = tempfile::tempdir().expect("temp dir");
        let mut config = Config::new(home.path().join("meshery"));
        config.port = 0;
        configure(&mut config);
        use_test_database(&mut config).await;
        let app = App::new(config).await.expect("app starts");
        let audit = Arc::new(Audit::default());
        let layer_audit = audit.clone();
        let router =
            server::router(app.clone()).layer(axum::middleware::from_fn(move |req, next| {
                audit_layer(layer_audit.clone(), req, next)
            }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        // The server's own accept loop, with its connection limits.
        let served =
            meshery::serve::spawn(listener, router, app.config.conn, None).expect("serving");
        let addr = served.addr;
        TestServer {
            base: format!("http://{addr}"),
            addr,
            app,
            audit,
            served: Some(served),
            _home: home,
        }
    }

    /// A plain HTTP client that does not follow redirects.
    /// POSTs a GraphQL operation as Meshery's UI does (JSON, no token: the Local user);
    /// the whole answer, `data` and `errors`.
    pub async fn graphql(&self, query: &str, variables: serde_json::Value) -> serde_json::Value {
        self.http()
            .post(self.url("/api/system/graphql/query"))
            .json(&serde_json::json!({"query": query, "variables": variables}))
            .send()
            .await
            .expect("a GraphQL answer")
            .json()
            .await
            .expect("GraphQL answers JSON")
    }

    pub fn http(&self) -> reqwest::Client {
        client_builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
    }

    /// The generated REST client.
    pub fn client(&self) -> meshery_client::rest::Client {
        meshery_client::rest::Client::new_with_client(&self.base, self.http())
    }

    /// Waits (5 s at most) until the server holds exactly `n` open connections.
    pub async fn until_open_connections(&self, n: usize) {
        let served = self.served.as_ref().expect("the server is serving");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while served.open_connections() != n {
            assert!(
                std::time::Instant::now() < deadline,
                "{} open connections, not {n}",
                served.open_connections()
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// The database this server is on (another server given it is its replica).
    pub fn database_url(&self) -> String {
        let config = &self.app.config;
        config
            .database_url
            .clone()
            .unwrap_or_else(|| meshery::store::default_url(&config.home))
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops the server gracefully (open streams must not hold shutdown up), then
    /// audits on drop.
    pub async fn finish(mut self) {
        if let Some(served) = self.served.take() {
            let stopped = served.stop();
            self.app.wind_down().await;
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), stopped)
                .await
                .expect("graceful shutdown did not finish within 10 s");
        }
        self.app.store.close().await;
    }
}

impl Drop for TestServer {
    /// The contract audit: runs whether or not the test called `finish`, so no test can
    /// skip it. Fails the test if any response broke the spec, or if none was checked.
    fn drop(&mut self) {
        if std::thread::panicking() {
            return; // the test already failed; its own message is the useful one
        }
        let violations = self.audit.violations.lock().unwrap().clone();
        assert!(
            violations.is_empty(),
            "responses that break openapi.yaml:\n{}",
            violations.join("\n")
        );
        assert!(
            self.audit.checked.load(Ordering::Relaxed) > 0,
            "no response was checked"
        );
    }
}

/// Serves `router` over https with a fresh self-signed certificate for 127.0.0.1, through
/// the server's own accept loop, offering `alpn`. Returns the handle (dropping it stops the
/// server) and the certificate as PEM.
pub async fn serve_https(router: axum::Router, alpn: &[&[u8]]) -> (meshery::serve::Served, String) {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let cert_pem = certified.cert.pem();
    let config = meshery::tls::server_config(
        cert_pem.as_bytes(),
        certified.signing_key.serialize_pem().as_bytes(),
        alpn,
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let acceptor = meshery::tls::TlsAcceptor::from(Arc::new(config));
    let served =
        meshery::serve::spawn(listener, router, Default::default(), Some(acceptor)).unwrap();
    (served, cert_pem)
}

/// PEM of DER bytes under `label`.
pub fn pem(label: &str, der: &[u8]) -> Vec<u8> {
    let text = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, der);
    let lines: Vec<&str> = text
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
    .into_bytes()
}

/// A GraphQL WebSocket client (tokio-tungstenite).
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a GraphQL WebSocket offering `protocols` (as the header lists them), with extra
/// request headers; the socket and the subprotocol the server answered.
pub async fn ws_open(
    addr: std::net::SocketAddr,
    protocols: &str,
    headers: &[(&'static str, String)],
) -> (Ws, String) {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = format!("ws://{addr}/api/system/graphql/query");
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", protocols.parse().unwrap());
    for (name, value) in headers {
        request.headers_mut().insert(*name, value.parse().unwrap());
    }
    let (ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    let answered = response
        .headers()
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (ws, answered)
}

pub async fn ws_send(ws: &mut Ws, v: serde_json::Value) {
    use futures_util::SinkExt;
    let message = tokio_tungstenite::tungstenite::Message::Text(v.to_string().into());
    ws.send(message).await.unwrap();
}

/// The next text message as JSON, or the close frame's code (`{"close": code}`, null when
/// the connection ended without one); other frames are skipped. Fails after 5 s.
pub async fn ws_next(ws: &mut Ws) -> serde_json::Value {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let m = tokio::time::timeout(std::time::Duration::from_secs(5), ws.next())
            .await
            .expect("no message within 5 s");
        match m {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).unwrap(),
            Some(Ok(Message::Close(frame))) => {
                return serde_json::json!({"close": frame.map(|f| u16::from(f.code))});
            }
            Some(Ok(_)) => continue,
            None | Some(Err(_)) => return serde_json::json!({"close": null}),
        }
    }
}

/// A debug event from the UI with this description.
pub fn event_input(description: &str) -> meshery::models::EventInput {
    meshery::models::EventInput {
        category: "ui".parse().unwrap(),
        action: "ping".parse().unwrap(),
        severity: meshery::models::EventSeverity::Debug,
        description: description.parse().unwrap(),
        metadata: Default::default(),
        acted_upon: None,
    }
}
