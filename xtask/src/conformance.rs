//! `cargo xtask conformance`: schemathesis (pinned, in a venv under target/) against a
//! live `meshery-server`, as the Local user and as a user of the reference provider:
//! phases examples, coverage, fuzzing and stateful, every check (the exceptions, each with
//! its reason, are in tests/schemathesis.toml).
//!
//! The Local run leaves out `ignored_auth` only: the Local provider is single-user and
//! takes no credentials by design, so "accepts requests without authentication" is its
//! contract, not a defect. The remote run checks it.

use anyhow::anyhow;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::test::{PROVIDER_NAME, UI_PASSWORD, UI_USER, run, start_both};

/// The schemathesis release these runs are pinned to.
const SCHEMATHESIS: &str = "4.32.5";

/// The venv's `st`, installed when missing or another version.
fn schemathesis(root: &Path) -> anyhow::Result<std::path::PathBuf> {
    let venv = root.join("target/schemathesis-venv");
    let st = venv.join("bin/st");
    let current = Command::new(&st)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string());
    if current.is_some_and(|v| v.contains(SCHEMATHESIS)) {
        return Ok(st);
    }
    crate::test::ensure_apt("python3", &["python3", "python3-venv"])?;
    if !venv.join("bin/pip").exists() {
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    }
    run(Command::new(venv.join("bin/pip")).args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        &format!("schemathesis=={SCHEMATHESIS}"),
    ]))?;
    Ok(st)
}

/// Signs in at the reference provider's form as the UI user; the token it hands the
/// callback.
fn remote_token(provider_port: u16) -> anyhow::Result<String> {
    // base64url("http://127.0.0.1:9/cb"): the callback is never followed.
    let body = format!(
        "username={UI_USER}&password={UI_PASSWORD}&source=aHR0cDovLzEyNy4wLjAuMTo5L2Ni&ref="
    );
    let mut stream =
        TcpStream::connect(("127.0.0.1", provider_port)).map_err(|e| anyhow!("{e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| anyhow!("{e}"))?;
    write!(
        stream,
        "POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| anyhow!("{e}"))?;
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let location = answer
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("location"))
                .map(|(_, v)| v.trim().to_string())
        })
        .ok_or_else(|| anyhow!("the provider's login answered no redirect: {answer:.200}"))?;
    location
        .split(['?', '&'])
        .find_map(|kv| kv.strip_prefix("token="))
        .map(str::to_string)
        .ok_or_else(|| anyhow!("no token in {location}"))
}

pub fn run_all(root: &Path, build: bool) -> anyhow::Result<()> {
    if build {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        run(Command::new(&cargo)
            .current_dir(root)
            .args(["build", "--workspace", "--bins"]))?;
    }
    let st = schemathesis(root)?;
    let (mut provider, server) = start_both(root)?;
    let spec = format!("http://127.0.0.1:{}/api/system/openapi.yaml", server.port);
    let base_config = root.join("tests/schemathesis.toml");
    let st_run = |config: &Path| {
        let mut c = Command::new(&st);
        c.current_dir(root.join("target"))
            .arg("--no-color")
            .arg("--config-file")
            .arg(config)
            .arg("run")
            .arg(&spec)
            // Every check runs (schemathesis' default); naming them on the command line
            // would override the per-operation settings of the config file.
            .args(["--phases", "examples,coverage,fuzzing,stateful"]);
        c
    };
    let mut failed = Vec::new();
    println!("xtask: schemathesis as the Local user");
    if let Err(e) = run(st_run(&base_config).args(["--exclude-checks", "ignored_auth"])) {
        failed.push(format!("as the Local user: {e}"));
    }
    // The remote user's credentials go in a config file of its own, not on a command
    // line that is printed.
    let remote = remote_token(provider.port).and_then(|token| {
        let base = std::fs::read_to_string(&base_config).map_err(|e| anyhow!("{e}"))?;
        let path = root.join("target/schemathesis-remote.toml");
        let (top, rest) = base.split_once("\n[").unwrap_or((base.as_str(), ""));
        let text = format!(
            "{top}headers = {{ Authorization = \"Bearer {token}\", \"meshery-provider\" = \"{PROVIDER_NAME}\" }}\n\n[{rest}"
        );
        std::fs::write(&path, text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        Ok(path)
    });
    match remote {
        Ok(config) => {
            println!("xtask: schemathesis as {UI_USER} of the {PROVIDER_NAME} provider");
            if let Err(e) = run(&mut st_run(&config)) {
                failed.push(format!("as a remote-provider user: {e}"));
            }
            let _ = std::fs::remove_file(&config);
        }
        Err(e) => failed.push(format!("signing in at the provider: {e}")),
    }
    let stopped = server.stop();
    provider.kill();
    if let Err(e) = stopped {
        failed.push(format!("{e:#}"));
    }
    if failed.is_empty() {
        println!("xtask: schemathesis found no failure");
        Ok(())
    } else {
        Err(anyhow!(failed.join("\n")))
    }
}
