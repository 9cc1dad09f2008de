//! The real `mesheryctl` binary against a real server (Local, and the reference remote
//! provider) on port 0, with HOME in a temporary directory. The CLI is its own package
//! and compiles no server code, so these tests live with the server and run the CLI that
//! cargo built for the workspace (see [`mesheryctl`]).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use meshery::server::{self, Config};
use meshery_provider::{self as refprovider, Account, ProviderConfig};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

#[path = "support/kube_api.rs"]
mod kube_api;

/// The `mesheryctl` of this workspace and profile. `cargo test --workspace` (and so
/// `cargo xtask test`) builds it before any test runs, since the CLI's own tests need it;
/// cargo holds the build lock while tests run, so a test cannot build it itself. Refuses
/// a binary older than any source it is built from, so no stale CLI is ever tested.
fn mesheryctl() -> &'static Path {
    static BINARY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BINARY.get_or_init(|| {
        // This test runs as target/<profile>/deps/cli-<hash>; the CLI lands in target/<profile>.
        let exe = std::env::current_exe().expect("the test binary's path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>/deps");
        let binary = profile_dir.join(format!("mesheryctl{}", std::env::consts::EXE_SUFFIX));
        let built = std::fs::metadata(&binary)
            .and_then(|m| m.modified())
            .unwrap_or_else(|_| {
                panic!(
                    "{} is missing: run `cargo build -p mesheryctl` or `cargo test --workspace`",
                    binary.display()
                )
            });
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut newest = None;
        for source in [
            "mesheryctl/src",
            "mesheryctl/Cargo.toml",
            "api",
            "schema",
            "build.rs",
        ] {
            newest_mtime(&root.join(source), &mut newest);
        }
        if let Some((time, path)) = newest {
            assert!(
                time <= built,
                "{} is older than {}: run `cargo build -p mesheryctl` or `cargo test --workspace`",
                binary.display(),
                path.display()
            );
        }
        binary
    })
}

/// The newest modification time of a file or of the files below a directory.
fn newest_mtime(path: &Path, newest: &mut Option<(std::time::SystemTime, PathBuf)>) {
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
            newest_mtime(&entry.path(), newest);
        }
    } else if let Ok(time) = meta.modified()
        && newest.as_ref().is_none_or(|(t, _)| time > *t)
    {
        *newest = Some((time, path.to_path_buf()));
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

struct Cli {
    home: tempfile::TempDir,
    server: String,
}

impl Cli {
    fn new(server: &str) -> Cli {
        Cli {
            home: tempfile::tempdir().unwrap(),
            server: server.to_string(),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(mesheryctl());
        c.args(args)
            .current_dir(self.home.path())
            .env("HOME", self.home.path())
            .env("MESHERY_SERVER", &self.server)
            // A browser that does nothing: the test plays the browser.
            .env("BROWSER", "true")
            .env_remove("MESHERY_CONFIG")
            .env_remove("MESHERY_CONTEXT")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        c
    }

    async fn run(&self, args: &[&str]) -> Run {
        let out = tokio::time::timeout(Duration::from_secs(60), self.command(args).output())
            .await
            .expect("mesheryctl finished in 60 s")
            .unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }

    async fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args).await;
        assert_eq!(r.code, 0, "mesheryctl {args:?}: {r:?}");
        r.stdout
    }

    fn auth_path(&self) -> PathBuf {
        self.home.path().join(".meshery/auth.json")
    }

    fn auth(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.auth_path()).unwrap()).unwrap()
    }
}

async fn local_server() -> (server::Running, tempfile::TempDir) {
    let home = tempfile::tempdir().unwrap();
    let mut config = Config::new(home.path().join("meshery"));
    config.port = 0;
    (server::start(config).await.unwrap(), home)
}

struct Remote {
    provider: refprovider::Running,
    server: server::Running,
    _home: tempfile::TempDir,
}

async fn remote_server() -> Remote {
    let provider = refprovider::start(
        ProviderConfig {
            accounts: vec![
                Account::parse("alice:alice-pw:Alice Liddell").unwrap(),
                Account::parse("bob:bob-pw:Bob Builder").unwrap(),
            ],
            ..Default::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    let mut config = Config::new(home.path().join("meshery"));
    config.port = 0;
    config.provider_base_urls = vec![provider.url.clone()];
    config.jwt_issuer = Some(provider.url.clone());
    config.jwt_audience = Some("meshery".into());
    Remote {
        server: server::start(config).await.unwrap(),
        provider,
        _home: home,
    }
}

fn base(s: &server::Running) -> String {
    format!("http://{}", s.addr)
}

fn http() -> reqwest::Client {
    meshery::tls::install_crypto();
    reqwest::Client::builder()
        .tls_backend_preconfigured(meshery::tls::outbound_config(None).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Reads the child's stderr until a line satisfies `find`; returns what it found and the
/// reader (still attached, so the child never blocks on a full pipe).
async fn wait_for<R: tokio::io::AsyncRead + Unpin>(
    lines: &mut tokio::io::Lines<BufReader<R>>,
    seen: &mut String,
    find: impl Fn(&str) -> Option<String>,
) -> String {
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            seen.push_str(&line);
            seen.push('\n');
            if let Some(v) = find(&line) {
                return Some(v);
            }
        }
        None
    })
    .await;
    match found {
        Ok(Some(v)) => v,
        _ => panic!("not found in mesheryctl's output:\n{seen}"),
    }
}

/// Runs `events watch --count 1` (as `watch` builds it), runs `trigger` once it is
/// subscribed, and returns what it printed; it must end by itself, successfully.
async fn watch_one_event(
    mut watch: Command,
    trigger: impl std::future::Future<Output = ()>,
) -> String {
    let mut watch = watch
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(watch.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    wait_for(&mut err, &mut seen, |l| {
        l.contains("watching events").then(String::new)
    })
    .await;
    trigger.await;
    let done = tokio::time::timeout(Duration::from_secs(20), watch.wait_with_output())
        .await
        .expect("events watch ends after one event")
        .unwrap();
    let out = String::from_utf8(done.stdout).unwrap();
    assert_eq!(done.status.code(), Some(0), "{out}");
    out
}

fn url_in(line: &str) -> Option<String> {
    line.split_whitespace()
        .find(|w| w.starts_with("http://"))
        .map(str::to_string)
}

const MANIFEST: &str = "apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
  namespace: shop
data:
  GREETING: hello
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_provider_login_status_perf_designs_registry_and_events() {
    let (server, _home) = local_server().await;
    let cli = Cli::new(&base(&server));

    // Not logged in yet: a class of its own, and the way out.
    let r = cli.run(&["system", "status"]).await;
    assert_eq!(r.code, 7, "{r:?}");
    assert!(r.stderr.contains("mesheryctl system login"), "{r:?}");

    let out = cli.ok(&["system", "login", "-p", "None"]).await;
    assert!(out.contains("provider Local"), "{out}");
    assert_eq!(
        cli.auth(),
        serde_json::json!({"meshery-provider": "Local", "token": ""})
    );
    #[cfg(unix)]
    assert_eq!(mode(&cli.auth_path()), 0o600);
    let status = cli.ok(&["system", "status"]).await;
    assert!(status.contains("provider: Local"), "{status}");
    assert!(
        status.contains("server:   ") && status.contains("meshery-rs"),
        "{status}"
    );

    // A load test against a local URL: progress, then a summary with percentiles.
    let url = format!("{}/healthz/live", base(&server));
    let out = cli
        .ok(&[
            "perf", "apply", "cli-run", "--url", &url, "-d", "1s", "-c", "2", "--qps", "40",
        ])
        .await;
    for needle in ["P50", "P90", "P99", "qps", "200: ", "cli-run", &url] {
        assert!(out.contains(needle), "{needle:?} missing in:\n{out}");
    }
    let requests: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("requests:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("a requests line");
    assert!(
        (30..=50).contains(&requests),
        "{requests} requests at 40 qps for 1 s"
    );

    // The same result, listed and viewed, as a table and as JSON.
    let list = cli.ok(&["perf", "result", "list"]).await;
    assert!(
        list.contains("cli-run") && list.contains("P99 MS"),
        "{list}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&cli.ok(&["perf", "result", "list", "-o", "json"]).await).unwrap();
    let id = json["results"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(json["totalCount"], 1);
    let view = cli.ok(&["perf", "result", "view", &id]).await;
    assert!(view.contains(&format!("result:       {id}")), "{view}");
    let yaml = cli.ok(&["perf", "result", "view", &id, "-o", "yaml"]).await;
    assert!(yaml.contains("runnerResults:"), "{yaml}");
    let r = cli.run(&["perf", "result", "view", "no-such-result"]).await;
    assert_eq!(r.code, 4, "{r:?}");

    // The test was saved as profile cli-run; its name alone runs it again.
    let profiles: serde_json::Value =
        serde_json::from_str(&cli.ok(&["perf", "profile", "list", "-o", "json"]).await).unwrap();
    assert_eq!(profiles["totalCount"], 1, "{profiles}");
    let profile = profiles["profiles"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(profiles["profiles"][0]["name"], "cli-run");
    assert_eq!(profiles["profiles"][0]["endpoints"][0], url.as_str());
    let again = cli.ok(&["perf", "apply", "cli-run"]).await;
    assert!(again.contains("requests:"), "{again}");
    let view = cli.ok(&["perf", "profile", "view", &profile]).await;
    assert!(
        view.contains(&url) && view.contains("results:         2"),
        "{view}"
    );
    let of_profile = cli
        .ok(&["perf", "result", "list", "--profile", &profile])
        .await;
    assert!(
        of_profile.contains("page 1 of 1 (2 in all)"),
        "{of_profile}"
    );
    let r = cli.run(&["perf", "apply", "no-such-profile"]).await;
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("--url"), "{r:?}");

    // An SMP document, with JSON output.
    let smp = cli.home.path().join("smp.yaml");
    std::fs::write(
        &smp,
        format!("name: smp-run\nduration: 1s\nclients:\n  - connections: 1\n    rps: 20\n    endpoint_urls: [\"{url}\"]\n"),
    )
    .unwrap();
    let json: serde_json::Value = serde_json::from_str(
        &cli.ok(&["perf", "apply", "-f", smp.to_str().unwrap(), "-o", "json"])
            .await,
    )
    .unwrap();
    assert_eq!(json["name"], "smp-run");
    let count = json["runnerResults"]["DurationHistogram"]["Count"]
        .as_u64()
        .unwrap();
    assert!(
        (15..=25).contains(&count),
        "{count} requests at 20 rps for 1 s"
    );
    std::fs::write(&smp, "clients: []\n").unwrap();
    let r = cli
        .run(&["perf", "apply", "-f", smp.to_str().unwrap()])
        .await;
    assert_eq!(r.code, 9, "{r:?}");

    cli.ok(&["perf", "profile", "delete", &profile]).await;
    let r = cli.run(&["perf", "profile", "view", &profile]).await;
    assert_eq!(r.code, 4, "{r:?}");

    // Refused input: the server's reason, exit 9; the metadata address: permission, exit 8.
    let r = cli
        .run(&["perf", "apply", "--url", "ftp://example.com/", "-d", "1s"])
        .await;
    assert_eq!(r.code, 9, "{r:?}");
    assert!(r.stderr.contains("ftp://example.com/"), "{r:?}");
    let r = cli
        .run(&[
            "perf",
            "apply",
            "--url",
            "http://169.254.169.254/",
            "-d",
            "1s",
        ])
        .await;
    assert_eq!(r.code, 8, "{r:?}");
    assert!(
        r.stderr.starts_with("mesheryctl: permission denied"),
        "{r:?}"
    );

    // Designs: import manifests, list, view, export, delete.
    let file = cli.home.path().join("shop.yaml");
    std::fs::write(&file, MANIFEST).unwrap();
    let out = cli
        .ok(&[
            "design",
            "import",
            "-f",
            file.to_str().unwrap(),
            "--name",
            "shop",
        ])
        .await;
    let id = out
        .split_whitespace()
        .nth(2)
        .expect("imported design ID")
        .to_string();
    let list = cli.ok(&["design", "list"]).await;
    assert!(list.contains(&id) && list.contains("shop"), "{list}");
    let view = cli.ok(&["design", "view", &id]).await;
    assert!(view.contains("components: 2"), "{view}");
    let manifests = cli.ok(&["design", "export", &id, "--manifest"]).await;
    assert!(
        manifests.contains("kind: ConfigMap") && manifests.contains("GREETING: hello"),
        "{manifests}"
    );
    let out_file = cli.home.path().join("export.yaml");
    cli.ok(&["design", "export", &id, "-f", out_file.to_str().unwrap()])
        .await;
    assert!(
        std::fs::read_to_string(&out_file)
            .unwrap()
            .contains("name: shop")
    );
    // Meshery's `--type`: a Helm chart and an OCI image, saved as files; without --file
    // under the name the server gives, never over an existing file.
    let said = cli.ok(&["design", "export", &id, "-t", "helm-chart"]).await;
    let chart = cli.home.path().join("shop-0.1.0.tgz");
    assert!(said.contains("shop-0.1.0.tgz"), "{said}");
    assert_eq!(&std::fs::read(&chart).unwrap()[..2], &[0x1f, 0x8b], "gzip");
    let again = cli
        .run(&["design", "export", &id, "-t", "helm-chart"])
        .await;
    assert_ne!(again.code, 0, "{again:?}");
    assert!(again.stderr.contains("exists"), "{again:?}");
    let image = cli.home.path().join("shop.tar");
    cli.ok(&[
        "design",
        "export",
        &id,
        "--type",
        "oci",
        "-f",
        image.to_str().unwrap(),
    ])
    .await;
    assert_eq!(&std::fs::read(&image).unwrap()[257..262], b"ustar");
    let r = cli.run(&["design", "import"]).await;
    assert_eq!(r.code, 2, "{r:?}");
    cli.ok(&["design", "delete", &id]).await;
    let r = cli.run(&["design", "view", &id]).await;
    assert_eq!(r.code, 4, "{r:?}");

    // Registry.
    let models = cli
        .ok(&["registry", "model", "list", "--pagesize", "all"])
        .await;
    for m in ["kubernetes", "istio-base", "linkerd", "cert-manager"] {
        assert!(models.contains(m), "{m} missing:\n{models}");
    }
    let k8s = cli.ok(&["registry", "model", "view", "kubernetes"]).await;
    assert!(
        k8s.contains("Deployment") && k8s.contains("apps/v1"),
        "{k8s}"
    );
    let r = cli
        .run(&["registry", "model", "view", "no-such-model"])
        .await;
    assert_eq!(r.code, 4, "{r:?}");

    // Events: what happened so far, then one more as it happens.
    let events = cli.ok(&["events", "list", "--pagesize", "all"]).await;
    assert!(
        events.contains("perf") && events.contains("pattern"),
        "{events}"
    );
    let r = cli.run(&["events", "list", "--severity", "loud"]).await;
    assert_eq!(r.code, 2, "{r:?}");
    let line = watch_one_event(cli.command(&["events", "watch", "--count", "1"]), async {
        let out = cli
            .ok(&[
                "design",
                "import",
                "-f",
                file.to_str().unwrap(),
                "--name",
                "watched",
            ])
            .await;
        assert!(out.contains("imported design"), "{out}");
    })
    .await;
    assert!(
        line.contains("pattern") && line.contains("watched"),
        "{line}"
    );

    // A named context instead of MESHERY_SERVER.
    cli.ok(&[
        "system",
        "context",
        "create",
        "here",
        "--url",
        &base(&server),
    ])
    .await;
    let mut c = cli.command(&["--context", "here", "system", "status"]);
    let out = c.env_remove("MESHERY_SERVER").output().await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("context:  here"),
        "{text}"
    );
    let r = cli.run(&["--context", "nowhere", "system", "status"]).await;
    assert_eq!(r.code, 4, "{r:?}");

    // Completions and the unreachable server.
    let bash = cli.ok(&["completion", "bash"]).await;
    assert!(
        bash.contains("_mesheryctl") && bash.contains("login"),
        "completion script"
    );
    let unreachable = Cli::new("http://127.0.0.1:9");
    let r = unreachable.run(&["perf", "result", "list"]).await;
    assert_eq!(r.code, 6, "{r:?}");
    assert!(r.stderr.contains("is it running?"), "{r:?}");

    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_provider_login_by_browser_device_code_paste_and_token_file() {
    let remote = remote_server().await;
    let server = base(&remote.server);
    let http = http();

    // 1. Browser: mesheryctl prints the provider's sign-in address; the test is the browser.
    let cli = Cli::new(&server);
    let mut child = cli
        .command(&["system", "login", "-p", "Reference"])
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    let login = wait_for(&mut err, &mut seen, url_in).await;
    assert!(
        login.starts_with(&format!("{}/login?source=", remote.provider.url)),
        "{login}"
    );
    let source = reqwest::Url::parse(&login)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "source")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let form = http.get(&login).send().await.unwrap();
    assert_eq!(form.status(), 200);
    let signed_in = http
        .post(format!("{}/login", remote.provider.url))
        .form(&[
            ("username", "alice"),
            ("password", "alice-pw"),
            ("source", source.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let callback = signed_in.headers()["location"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(callback.starts_with("http://127.0.0.1:"), "{callback}");
    // A wrong path on the loopback server is not the callback.
    let wrong = http
        .get(callback.replace("/callback/", "/callback/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 404);
    let page = http.get(&callback).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Signed in"));
    let done = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(done.success(), "{seen}");
    let auth = cli.auth();
    assert_eq!(auth["meshery-provider"], "Reference");
    let alice_token = auth["token"].as_str().unwrap().to_string();
    assert_eq!(alice_token.split('.').count(), 3);
    #[cfg(unix)]
    assert_eq!(mode(&cli.auth_path()), 0o600);
    let status = cli.ok(&["system", "status"]).await;
    assert!(status.contains("provider: Reference"), "{status}");
    assert!(
        status.contains("user:     alice (Alice Liddell)"),
        "{status}"
    );
    assert!(
        status.contains("token:    expires ") && status.contains("(in "),
        "{status}"
    );

    // token view shortens unless asked; the file is what the server's /api/token answered.
    let view = cli.ok(&["system", "token", "view"]).await;
    assert!(
        view.contains("provider: Reference") && !view.contains(&alice_token),
        "{view}"
    );
    let view = cli.ok(&["system", "token", "view", "--show"]).await;
    assert!(view.contains(&alice_token), "{view}");

    // Logout revokes the token at the provider: a saved copy no longer works.
    let copy = cli.home.path().join("copy.json");
    std::fs::copy(cli.auth_path(), &copy).unwrap();
    let out = cli.ok(&["system", "logout"]).await;
    assert!(out.contains("logged out"), "{out}");
    assert!(!cli.auth_path().exists());
    let r = cli.run(&["system", "status"]).await;
    assert_eq!(r.code, 7, "{r:?}");
    let r = cli
        .run(&["system", "login", "--token-file", copy.to_str().unwrap()])
        .await;
    assert_eq!(r.code, 7, "{r:?}");
    assert!(r.stderr.contains("log in again"), "{r:?}");
    assert!(!cli.auth_path().exists(), "a refused token is not saved");

    // 2. Headless, device code: approved at the provider's page, from "another machine".
    let cli = Cli::new(&server);
    let mut child = cli
        .command(&["system", "login", "-p", "reference", "--headless"])
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    let page = wait_for(&mut err, &mut seen, url_in).await;
    assert!(
        page.starts_with(&format!("{}/device", remote.provider.url)),
        "{page}"
    );
    let code = wait_for(&mut err, &mut seen, |l| {
        l.split_whitespace()
            .find(|w| w.len() == 9 && w.as_bytes()[4] == b'-')
            .map(str::to_string)
    })
    .await;
    // A wrong password approves nothing.
    let denied = http
        .post(format!("{}/device", remote.provider.url))
        .form(&[
            ("user_code", code.as_str()),
            ("username", "bob"),
            ("password", "nope"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 401);
    let approved = http
        .post(format!("{}/device", remote.provider.url))
        .form(&[
            ("user_code", code.to_lowercase().replace('-', "").as_str()),
            ("username", "bob"),
            ("password", "bob-pw"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), 200);
    let done = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(done.success(), "{seen}");
    let status = cli.ok(&["system", "status"]).await;
    assert!(status.contains("user:     bob (Bob Builder)"), "{status}");

    // 3. Headless, pasted token: the address is the server's sign-in, ending at /token.
    let cli = Cli::new(&server);
    let mut child = cli
        .command(&[
            "system",
            "login",
            "-p",
            "Reference",
            "--headless",
            "--paste",
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    let page = wait_for(&mut err, &mut seen, url_in).await;
    assert_eq!(
        page,
        format!("{server}/user/login?provider=Reference&ref=%2Ftoken")
    );
    let pasted = remote.provider.provider.issue("alice").unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(format!("{pasted}\n").as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let done = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(done.success(), "{seen}");
    assert_eq!(cli.auth()["token"], pasted.as_str());
    assert!(
        cli.ok(&["system", "status"])
            .await
            .contains("user:     alice")
    );

    // 4. --token-file: an auth.json as the web UI downloads it.
    let cli = Cli::new(&server);
    let file = cli.home.path().join("downloaded-auth.json");
    let token = remote.provider.provider.issue("bob").unwrap();
    std::fs::write(
        &file,
        serde_json::json!({"meshery-provider": "Reference", "token": token}).to_string(),
    )
    .unwrap();
    let out = cli
        .ok(&["system", "login", "--token-file", file.to_str().unwrap()])
        .await;
    assert!(out.contains("as bob"), "{out}");
    assert_eq!(cli.auth()["token"], token.as_str());
    // The token works for the API, as cookies and bearer.
    let list = cli.ok(&["perf", "profile", "list"]).await;
    assert!(list.contains("page 1 of 1 (0 in all)"), "{list}");
    // Junk and the wrong provider are refused, and the saved file stays as it was.
    std::fs::write(
        &file,
        r#"{"meshery-provider": "Reference", "token": "not.a.jwt"}"#,
    )
    .unwrap();
    let r = cli
        .run(&["system", "login", "--token-file", file.to_str().unwrap()])
        .await;
    assert_eq!(r.code, 7, "{r:?}");
    std::fs::write(&file, "{}").unwrap();
    let r = cli
        .run(&["system", "login", "--token-file", file.to_str().unwrap()])
        .await;
    assert_eq!(r.code, 3, "{r:?}");
    assert_eq!(cli.auth()["token"], token.as_str());

    // Several providers and no -p without a terminal: a usage error naming them.
    let r = Cli::new(&server).run(&["system", "login"]).await;
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("Local") && r.stderr.contains("Reference"),
        "{r:?}"
    );
    let r = Cli::new(&server)
        .run(&["system", "login", "-p", "Nope"])
        .await;
    assert_eq!(r.code, 4, "{r:?}");

    remote.server.stop().await.unwrap();
    remote.provider.stop().await;
}

/// An https front for `backend`: TLS with a fresh self-signed certificate for 127.0.0.1,
/// then bytes copied both ways. Returns its address and the certificate (PEM).
async fn tls_front(backend: std::net::SocketAddr) -> (std::net::SocketAddr, String) {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let pem = cert.cert.pem();
    let acceptor =
        meshery::tls::acceptor(pem.as_bytes(), cert.signing_key.serialize_pem().as_bytes())
            .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that rejects the certificate ends the handshake: nothing to copy.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = tokio::net::TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    (addr, pem)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_server_for_rest_and_the_event_stream() {
    let (server, _home) = local_server().await;
    let (front, pem) = tls_front(server.addr).await;
    let cli = Cli::new(&format!("https://{front}"));
    let ca = cli.home.path().join("ca.pem");
    std::fs::write(&ca, pem).unwrap();

    // An unknown certificate is refused, with the way out named.
    let r = cli.run(&["system", "login", "-p", "Local"]).await;
    assert_eq!(r.code, 3, "{r:?}");
    assert!(
        r.stderr.contains("certificate") && r.stderr.contains("MESHERY_CA_FILE"),
        "{r:?}"
    );

    let r = cli.run(&["events", "watch", "--count", "1"]).await;
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("MESHERY_CA_FILE"), "{r:?}");

    let with_ca = |args: &[&str]| {
        let mut c = cli.command(args);
        c.env("MESHERY_CA_FILE", &ca);
        c
    };
    let out = with_ca(&["system", "login", "-p", "Local"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = with_ca(&["system", "status"]).output().await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains(&format!("https://{front}")),
        "{out:?}"
    );

    // The GraphQL subscription over wss, trusting the same CA file.
    let file = cli.home.path().join("shop.yaml");
    std::fs::write(&file, MANIFEST).unwrap();
    let line = watch_one_event(with_ca(&["events", "watch", "--count", "1"]), async {
        let out = with_ca(&[
            "design",
            "import",
            "-f",
            file.to_str().unwrap(),
            "--name",
            "over-tls",
        ])
        .output()
        .await
        .unwrap();
        assert!(out.status.success(), "{out:?}");
    })
    .await;
    assert!(line.contains("over-tls"), "{line}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_design_is_deployed_dry_run_and_undeployed_with_mesheryctl() {
    let api = kube_api::KubeApi::start(Some("cli-token")).await;
    let (server, _home) = local_server().await;
    let cli = Cli::new(&base(&server));
    cli.ok(&["system", "login", "-p", "None"]).await;
    let uploaded = http()
        .post(format!("{}/api/system/kubernetes", base(&server)))
        .header("content-type", "application/yaml")
        .body(api.kubeconfig("cli-cluster"))
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), 200);
    let contexts: serde_json::Value = uploaded.json().await.unwrap();
    let context = contexts["registeredContexts"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let file = cli.home.path().join("sample-app.yaml");
    std::fs::write(&file, include_str!("support/sample-app.yaml")).unwrap();
    cli.ok(&[
        "design",
        "import",
        "-f",
        file.to_str().unwrap(),
        "--name",
        "sample",
    ])
    .await;

    // By name: one row per component, in apply order, all applied.
    let out = cli.ok(&["design", "deploy", "sample"]).await;
    let rows: Vec<&str> = out.lines().filter(|l| l.contains("cli-cluster")).collect();
    assert_eq!(rows.len(), 3, "{out}");
    assert!(
        rows[0].contains("ConfigMap") && rows.iter().all(|r| r.contains("applied")),
        "{out}"
    );
    assert!(
        out.contains("deploy: 0 of 3 component results failed"),
        "{out}"
    );
    assert_eq!(api.count("apps", "deployments"), 1);

    // The context is a connection, connected; the inventory holds the design.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let out = cli.ok(&["connection", "list"]).await;
        if out
            .lines()
            .any(|l| l.contains("cli-cluster") && l.contains(" connected"))
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not connected: {out}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let view = cli.ok(&["connection", "view", "cli-cluster"]).await;
    assert!(
        view.lines()
            .any(|l| l.starts_with("status:") && l.ends_with("connected"))
            && view.contains("v1.32.0-meshery-test")
            && view.contains(&context),
        "{view}"
    );
    // All three objects of the design (each arrives on its own kind's watch).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let out = cli
            .ok(&["cluster", "resources", "-l", "app=web", "-o", "json"])
            .await;
        let page: serde_json::Value = serde_json::from_str(&out).unwrap();
        if page["totalCount"] == 3 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{out}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let listed: serde_json::Value = serde_json::from_str(
        &cli.ok(&["cluster", "resources", "--kind", "Deployment", "-o", "json"])
            .await,
    )
    .unwrap();
    assert_eq!(listed["totalCount"], 1);
    assert_eq!(listed["resources"][0]["metadata"]["name"], "web");
    let spec: serde_json::Value = serde_json::from_str(
        listed["resources"][0]["spec"]["attribute"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(spec["replicas"], 2);
    let table = cli
        .ok(&[
            "cluster",
            "resources",
            "-n",
            "default",
            "-l",
            "app=web",
            "--cluster",
            "cli-cluster",
        ])
        .await;
    let kinds: Vec<&str> = table
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .filter(|k| k.chars().next().is_some_and(char::is_uppercase))
        .collect();
    // By name, then kind.
    assert_eq!(kinds, ["Deployment", "Service", "ConfigMap"], "{table}");
    let r = cli.run(&["cluster", "resources", "-l", "env in (a)"]).await;
    assert_eq!(r.code, 2, "{r:?}");
    let r = cli
        .run(&["connection", "list", "--status", "sideways"])
        .await;
    assert_eq!(r.code, 2, "{r:?}");

    // A design file, dry run, as JSON: a refused change fails (exit 9) and names the field.
    let page: serde_json::Value =
        serde_json::from_str(&cli.ok(&["design", "list", "-o", "json"]).await).unwrap();
    let id = page["patterns"][0]["id"].as_str().unwrap().to_string();
    let mut design: serde_json::Value =
        yaml_serde::from_str(&cli.ok(&["design", "export", &id]).await).unwrap();
    let components = design["components"].as_array_mut().unwrap();
    let deployment = components
        .iter_mut()
        .find(|c| c["kind"] == "Deployment")
        .unwrap();
    deployment["spec"]["replicas"] = serde_json::json!(7);
    deployment["spec"]["template"]["metadata"]["labels"]["app"] = serde_json::json!("other");
    let broken = cli.home.path().join("broken.yaml");
    std::fs::write(&broken, yaml_serde::to_string(&design).unwrap()).unwrap();
    let r = cli
        .run(&[
            "design",
            "deploy",
            broken.to_str().unwrap(),
            "--dry-run",
            "-o",
            "json",
        ])
        .await;
    assert_eq!(r.code, 9, "{r:?}");
    // The failure's message is the answer itself, after the program's name.
    let answer: serde_json::Value =
        serde_json::from_str(r.stderr.trim().trim_start_matches("mesheryctl: ")).unwrap();
    assert_eq!(answer["dryRun"], true, "{answer}");
    let failed = answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["status"] == "failed")
        .unwrap();
    assert!(
        failed["field"]
            .as_str()
            .unwrap()
            .ends_with(".spec.template.metadata.labels"),
        "{failed}"
    );
    assert_eq!(
        api.object("apps", "deployments", "default", "web").unwrap()["spec"]["replicas"],
        2
    );

    let out = cli
        .ok(&["design", "undeploy", "sample", "--k8s-context", &context])
        .await;
    assert_eq!(
        out.lines().filter(|l| l.contains("deleted")).count(),
        3,
        "{out}"
    );
    assert_eq!(
        api.count("apps", "deployments") + api.count("", "configmaps"),
        0
    );
    let r = cli.run(&["design", "deploy", "no-such-design"]).await;
    assert_eq!(r.code, 4, "{r:?}");

    // Deleting the connection takes its context and inventory.
    let out = cli.ok(&["connection", "delete", "cli-cluster"]).await;
    assert!(out.contains("deleted"), "{out}");
    let r = cli.run(&["connection", "view", "cli-cluster"]).await;
    assert_eq!(r.code, 4, "{r:?}");
    let page: serde_json::Value =
        serde_json::from_str(&cli.ok(&["cluster", "resources", "-o", "json"]).await).unwrap();
    assert_eq!(page["totalCount"], 0);
    server.stop().await.unwrap();
    api.stop().await;
}

/// `environment` and `workspace` with Meshery's flags: Local (one organization, so
/// `--orgId` may be left out) and a remote user in two organizations (it may not).
#[tokio::test]
async fn environments_and_workspaces_with_mesheryctl() {
    let (server, _home) = local_server().await;
    let cli = Cli::new(&base(&server));
    cli.ok(&["system", "login", "-p", "None"]).await;
    let orgs: serde_json::Value = http()
        .get(format!("{}/api/identity/orgs", base(&server)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let org = orgs["organizations"][0]["id"].as_str().unwrap().to_string();

    let out = cli
        .ok(&[
            "environment",
            "create",
            "--orgId",
            &org,
            "--name",
            "prod",
            "--description",
            "production",
        ])
        .await;
    assert_eq!(
        out.trim(),
        format!("Environment named prod created in organization id {org}")
    );
    cli.ok(&["environment", "create", "-n", "staging"]).await;
    let list = cli.ok(&["environment", "list"]).await;
    assert!(
        list.starts_with("Total number of environments: 2"),
        "{list}"
    );
    let rows: Vec<&str> = list.lines().filter(|l| l.contains(&org)).collect();
    assert_eq!(rows.len(), 2, "{list}");
    assert!(
        rows[0].contains("prod") && rows[0].contains("production"),
        "{list}"
    );
    assert!(
        rows[1].contains("staging") && rows[1].contains("N/A"),
        "{list}"
    );
    assert_eq!(
        cli.ok(&["environment", "list", "--count"]).await.trim(),
        "Total number of environments: 2"
    );
    let json: serde_json::Value =
        serde_json::from_str(&cli.ok(&["environment", "view", "prod", "-o", "json"]).await)
            .unwrap();
    assert_eq!(json["description"], "production");
    let id = json["id"].as_str().unwrap().to_string();
    let view = cli.ok(&["environment", "view", &id]).await;
    assert!(
        view.lines()
            .any(|l| l.starts_with("name:") && l.ends_with("prod")),
        "{view}"
    );
    let missing = cli.run(&["environment", "view", "nope"]).await;
    assert_eq!(missing.code, 4, "{missing:?}");
    assert_eq!(
        cli.ok(&["environment", "delete", &id]).await.trim(),
        format!("Environment with ID {id} has been deleted")
    );
    assert_eq!(cli.run(&["environment", "delete", &id]).await.code, 4);

    let out = cli
        .ok(&[
            "workspace",
            "create",
            "--orgID",
            &org,
            "--name",
            "team-a",
            "-d",
            "first",
        ])
        .await;
    assert_eq!(
        out.trim(),
        format!("Workspace team-a created in organization {org}")
    );
    let updated = cli
        .ok(&["workspace", "update", "team-a", "--name", "team-b"])
        .await;
    assert!(updated.contains("has been updated"), "{updated}");
    let view = cli.ok(&["workspace", "view", "team-b", "-o", "yaml"]).await;
    assert!(
        view.contains("name: team-b") && view.contains("description: first"),
        "{view}"
    );
    assert!(view.contains("organizationId:"), "{view}");
    let nothing = cli.run(&["workspace", "update", "team-b"]).await;
    assert_eq!(nothing.code, 2, "{nothing:?}");
    assert!(
        nothing.stderr.contains("--name or --description"),
        "{nothing:?}"
    );
    let elsewhere = cli
        .run(&[
            "workspace",
            "list",
            "--orgId",
            "00000000-0000-0000-0000-000000000000",
        ])
        .await;
    assert_eq!(elsewhere.code, 4, "{elsewhere:?}");
    let deleted = cli.ok(&["workspace", "delete", "team-b"]).await;
    assert!(deleted.contains("has been deleted"), "{deleted}");
    assert_eq!(
        cli.ok(&["workspace", "list"]).await.trim(),
        "No workspaces found"
    );

    // A remote user in two organizations names one.
    let remote = remote_server().await;
    let cli = Cli::new(&base(&remote.server));
    let file = cli.home.path().join("auth.json.download");
    let token = remote.provider.provider.issue("bob").unwrap();
    std::fs::write(
        &file,
        serde_json::json!({"meshery-provider": "Reference", "token": token}).to_string(),
    )
    .unwrap();
    cli.ok(&["system", "login", "--token-file", file.to_str().unwrap()])
        .await;
    let ambiguous = cli.run(&["workspace", "create", "-n", "x"]).await;
    assert_eq!(ambiguous.code, 2, "{ambiguous:?}");
    assert!(
        ambiguous.stderr.contains("2 organizations") && ambiguous.stderr.contains("bob's team"),
        "{ambiguous:?}"
    );
    // In the shared organization bob may only look: the key is named.
    let orgs: serde_json::Value = http()
        .get(format!("{}/api/identity/orgs", base(&remote.server)))
        .bearer_auth(&token)
        .header("meshery-provider", "Reference")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let shared = orgs["organizations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "Reference")
        .and_then(|o| o["id"].as_str())
        .unwrap()
        .to_string();
    let refused = cli
        .run(&["workspace", "create", "-n", "x", "--orgId", &shared])
        .await;
    assert_eq!(refused.code, 8, "{refused:?}");
    assert!(refused.stderr.contains("Create Workspace"), "{refused:?}");
    remote.server.stop().await.unwrap();
    remote.provider.stop().await;
    server.stop().await.unwrap();
}
