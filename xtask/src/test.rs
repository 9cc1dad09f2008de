//! `cargo xtask test`: the whole suite, installing what it needs on the way.
//!
//! 1. `cargo test --workspace`: codegen snapshots, contract tests against a real server.
//! 2. The end-to-end suites in tests/js against a started `meshery-server`: the
//!    graphql-http server audits, and the playground driven in headless Chromium.
//! 3. SIGTERM to that server: it must shut down cleanly.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn run(cmd: &mut Command) -> Result<(), String> {
    let shown = format!("{cmd:?}");
    println!("xtask: running {shown}");
    let status = cmd.status().map_err(|e| format!("{shown}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed ({status})"))
    }
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"))
}

/// Installs Debian packages when missing (CI and fresh machines run as root).
pub fn ensure_apt(program: &str, packages: &[&str]) -> Result<(), String> {
    if have(program) {
        return Ok(());
    }
    if !is_root() || !have("apt-get") {
        return Err(format!(
            "`{program}` is missing; install the Debian package(s) {}",
            packages.join(" ")
        ));
    }
    run(Command::new("apt-get").arg("update").arg("-q"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
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

struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(root: &Path) -> Result<Server, String> {
        let port = free_port()?;
        let home = root
            .join("target")
            .join(format!("xtask-home-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&home);
        let binary = root.join("target/debug/meshery-server");
        println!("xtask: starting {} on port {port}", binary.display());
        let child = Command::new(&binary)
            .args(["--port", &port.to_string(), "--home"])
            .arg(&home)
            .env("RUST_LOG", "warn")
            .spawn()
            .map_err(|e| format!("{}: {e}", binary.display()))?;
        let mut server = Server { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while http_status(port, "/healthz/ready") != Some(200) {
            if Instant::now() > deadline {
                server.kill();
                return Err("meshery-server did not become ready in 30 s".into());
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("meshery-server exited early ({status})"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(server)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then the exit must be clean and prompt.
    fn stop(mut self) -> Result<(), String> {
        run(Command::new("kill").args(["-TERM", &self.child.id().to_string()]))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return if status.success() {
                    println!("xtask: meshery-server shut down cleanly on SIGTERM");
                    Ok(())
                } else {
                    Err(format!("meshery-server exited with {status} on SIGTERM"))
                };
            }
            if Instant::now() > deadline {
                self.kill();
                return Err("meshery-server did not stop within 10 s of SIGTERM".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

pub fn run_all(root: &Path) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(&cargo)
        .current_dir(root)
        .args(["build", "--bins"]))?;
    run(Command::new(&cargo)
        .current_dir(root)
        .args(["test", "--workspace"]))?;

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

    let server = Server::start(root)?;
    let base = format!("http://127.0.0.1:{}", server.port);
    let suites = [
        (
            "graphql-http-audit.mjs",
            format!("{base}/api/system/graphql/query"),
        ),
        ("playground.mjs", base.clone()),
    ];
    let mut failed = Vec::new();
    for (script, arg) in suites {
        if let Err(e) = run(Command::new("node").current_dir(&js).arg(script).arg(&arg)) {
            failed.push(e);
        }
    }
    let stopped = server.stop();
    if let Err(e) = stopped {
        failed.push(e);
    }
    if failed.is_empty() {
        println!("xtask: every suite passed");
        Ok(())
    } else {
        Err(failed.join("\n"))
    }
}
