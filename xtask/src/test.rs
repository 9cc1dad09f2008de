//! `cargo xtask test`: the whole suite, installing what it needs on the way.
//!
//! 1. `cargo xtask compat` (our spec against Meshery's published schemas), then
//!    `cargo test --workspace`: codegen snapshots, contract tests against a real server
//!    (Meshery's clients' calls replayed among them); then the contract suite again with
//!    its servers on a PostgreSQL started for it.
//! 2. The end-to-end suites in tests/js against a started `meshery-server` (with the
//!    reference provider `meshery-provider` as its remote provider): the graphql-http
//!    server audits, the playground and the web UI driven in headless Chromium (the UI
//!    suite also runs the real `mesheryctl` with the token it downloads).
//! 3. SIGTERM to that server: it must shut down cleanly.
//! 4. `conformance`: schemathesis against a fresh server, as the Local and a remote user.

use anyhow::anyhow;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let shown = format!("{cmd:?}");
    println!("xtask: running {shown}");
    let status = cmd.status().map_err(|e| anyhow!("{shown}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(anyhow!("{shown} failed ({status})"))
    }
}

fn have(program: &str) -> bool {
    // Daemons such as nginx live in /usr/sbin, which a user's PATH may leave out.
    if Path::new("/usr/sbin").join(program).exists() {
        return true;
    }
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"))
}

/// Installs Debian packages when missing (CI and fresh machines run as root).
pub fn ensure_apt(program: &str, packages: &[&str]) -> anyhow::Result<()> {
    if have(program) {
        return Ok(());
    }
    ensure_apt_packages(packages).map_err(|e| anyhow!("`{program}` is missing: {e:#}"))
}

/// Installs Debian packages (as root, with apt-get), or says which to install.
pub fn ensure_apt_packages(packages: &[&str]) -> anyhow::Result<()> {
    if !is_root() || !have("apt-get") {
        return Err(anyhow!(
            "install the Debian package(s) {}",
            packages.join(" ")
        ));
    }
    run(Command::new("apt-get").arg("update").arg("-q"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| anyhow!("{e}"))?;
    Ok(listener.local_addr().map_err(|e| anyhow!("{e}"))?.port())
}

/// A bare HTTP/1.0 GET; returns the status code.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

pub struct Server {
    child: Child,
    pub port: u16,
}

/// The name and user the UI suite signs in with at the reference provider.
pub const PROVIDER_NAME: &str = "Reference";
pub const UI_USER: &str = "alice";
pub const UI_PASSWORD: &str = "xtask-secret";

/// Starts the reference provider on a free port; ready when it serves its keys.
pub fn start_provider(root: &Path) -> anyhow::Result<Server> {
    Server::spawn(root, "meshery-provider", "/keys", |c, port| {
        c.args([
            "--port",
            &port.to_string(),
            "--name",
            PROVIDER_NAME,
            "--users",
        ])
        .arg(format!(
            "{UI_USER}:{UI_PASSWORD}:Alice Liddell:alice@example.com"
        ));
    })
}

/// The reference provider, then a server with it as its remote provider (fresh home).
pub fn start_both(root: &Path) -> anyhow::Result<(Server, Server)> {
    let mut provider = start_provider(root)?;
    let provider_url = format!("http://127.0.0.1:{}", provider.port);
    match Server::start(root, &provider_url) {
        Ok(server) => Ok((provider, server)),
        Err(e) => {
            provider.kill();
            Err(e)
        }
    }
}

impl Server {
    pub fn start(root: &Path, provider_url: &str) -> anyhow::Result<Server> {
        let home = root
            .join("target")
            .join(format!("xtask-home-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&home);
        Server::spawn(root, "meshery-server", "/healthz/ready", |c, port| {
            c.args(["--port", &port.to_string(), "--home"])
                .arg(&home)
                .env("PROVIDER_BASE_URLS", provider_url);
        })
    }

    /// Runs `target/debug/<name>` on a free port (`args` adds the rest of its command
    /// line) and waits until `ready` answers 200, at most 30 s.
    fn spawn(
        root: &Path,
        name: &str,
        ready: &str,
        args: impl FnOnce(&mut Command, u16),
    ) -> anyhow::Result<Server> {
        let port = free_port()?;
        let binary = root.join("target/debug").join(name);
        println!("xtask: starting {} on port {port}", binary.display());
        let mut command = Command::new(&binary);
        command.env("RUST_LOG", "warn");
        args(&mut command, port);
        let child = command
            .spawn()
            .map_err(|e| anyhow!("{}: {e}", binary.display()))?;
        let mut server = Server { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while http_status(port, ready) != Some(200) {
            if Instant::now() > deadline {
                server.kill();
                return Err(anyhow!("{name} did not become ready in 30 s"));
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(anyhow!("{name} exited early ({status})"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(server)
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then the exit must be clean and prompt.
    pub fn stop(mut self) -> anyhow::Result<()> {
        run(Command::new("kill").args(["-TERM", &self.child.id().to_string()]))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return if status.success() {
                    println!("xtask: meshery-server shut down cleanly on SIGTERM");
                    Ok(())
                } else {
                    Err(anyhow!("meshery-server exited with {status} on SIGTERM"))
                };
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(anyhow!(
                    "meshery-server did not stop within 10 s of SIGTERM"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The contract suite with every server on a throwaway PostgreSQL (a database per
/// server home), with the tests that only PostgreSQL can run (ignored on SQLite), then
/// the replica-process tests (`tests/replicas.rs`); `filter` goes to both test binaries.
pub fn contract_on_postgres(root: &Path, filter: &[String]) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let postgres = crate::postgres::Postgres::start()?;
    run(Command::new(&cargo)
        .current_dir(root)
        .args([
            "test",
            "-p",
            "meshery",
            "--test",
            "contract",
            "--",
            "--include-ignored",
        ])
        .args(filter)
        .env("MESHERY_TEST_DATABASE_URL", postgres.admin_url()))?;
    // Replicas as processes: kill -9 one, restart PostgreSQL under them. One at a time,
    // and after the contract suite: they stop the database everyone uses.
    run(Command::new(&cargo)
        .current_dir(root)
        .args(["test", "-p", "meshery", "--test", "replicas", "--"])
        .args(["--include-ignored", "--test-threads=1"])
        .args(filter)
        .env("MESHERY_TEST_DATABASE_URL", postgres.admin_url())
        .env("MESHERY_TEST_PG_CTL", postgres.control_command())
        .env("MESHERY_TEST_PG_CA", postgres.ca_file()))
}

pub fn run_all(root: &Path) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // The test Kubernetes API server is checked against the real kubectl.
    ensure_apt("kubectl", &["kubernetes-client"])?;
    run(Command::new(&cargo)
        .current_dir(root)
        .args(["build", "--workspace", "--bins"]))?;
    // Our spec against Meshery's published schemas (the corpus replay is in the contract
    // suite below).
    crate::compat::run(root)?;
    run(Command::new(&cargo)
        .current_dir(root)
        .args(["test", "--workspace"]))?;
    contract_on_postgres(root, &[])?;

    // The bench, for a moment: proves it still runs (its figures are not checked here).
    crate::bench(&["--quick".to_string()])?;

    // End-to-end suites: Node.js for the graphql-http audits, Chromium for the playground.
    ensure_apt("npm", &["nodejs", "npm"])?;
    ensure_apt("chromium", &["chromium"])?;
    let js = root.join("tests/js");
    run(Command::new("npm").current_dir(&js).args([
        "ci",
        "--no-audit",
        "--no-fund",
        "--loglevel=error",
    ]))?;

    let (mut provider, server) = start_both(root)?;
    let base = format!("http://127.0.0.1:{}", server.port);
    // A cluster for the UI's Clusters page and deploys: the test API server as a process.
    let kubeconfig = root
        .join("target")
        .join(format!("xtask-kubeconfig-{}.yaml", std::process::id()));
    let _ = std::fs::remove_file(&kubeconfig);
    let mut kube_api = Command::new(root.join("target/debug/examples/kube-api"))
        .arg(&kubeconfig)
        .args(["ui-cluster", "200"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| anyhow!("target/debug/examples/kube-api: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !kubeconfig.exists() {
        if Instant::now() > deadline || matches!(kube_api.try_wait(), Ok(Some(_))) {
            let _ = kube_api.kill();
            return Err(anyhow!("the test Kubernetes API server did not start"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let suites = [
        (
            "graphql-http-audit.mjs",
            format!("{base}/api/system/graphql/query"),
        ),
        ("playground.mjs", base.clone()),
        ("ui.mjs", base.clone()),
    ];
    let mesheryctl = root.join("target/debug/mesheryctl");
    let mut failed = Vec::new();
    for (script, arg) in suites {
        let mut node = Command::new("node");
        node.current_dir(&js).arg(script).arg(&arg);
        if script == "ui.mjs" {
            node.arg(PROVIDER_NAME)
                .env("KUBECONFIG_FILE", &kubeconfig)
                .env("MESHERYCTL", &mesheryctl)
                .env("UI_USER", UI_USER)
                .env("UI_PASSWORD", UI_PASSWORD);
        }
        if let Err(e) = run(&mut node) {
            failed.push(format!("{e:#}"));
        }
    }
    let stopped = server.stop();
    provider.kill();
    let _ = kube_api.kill();
    let _ = kube_api.wait();
    let _ = std::fs::remove_file(&kubeconfig);
    if let Err(e) = stopped {
        failed.push(format!("{e:#}"));
    }
    // schemathesis against a server of its own (its stateful phase leaves data behind).
    if let Err(e) = crate::conformance::run_all(root, false) {
        failed.push(format!("{e:#}"));
    }
    if failed.is_empty() {
        println!("xtask: every suite passed");
        Ok(())
    } else {
        Err(anyhow!(failed.join("\n")))
    }
}
