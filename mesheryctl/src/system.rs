//! `system login|logout|status|token`: getting a token into the token file and using it.
//!
//! Login ends the same way in every mode: the server's `GET /api/token` is called with the
//! new credentials (so the server has verified them) and its answer is the token file.

use std::io::{BufRead, IsTerminal, Write};
use std::time::{Duration, Instant};

use base64::Engine;
use meshery_models::{AuthFile, ProviderInfo, ProviderType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::api::{self, Target};
use crate::failure::{self, Class, Failure, Outcome};

pub struct LoginOptions {
    pub provider: Option<String>,
    pub headless: bool,
    pub paste: bool,
    pub token_file: Option<std::path::PathBuf>,
    pub timeout: Duration,
}

async fn providers(target: &Target) -> Outcome<Vec<ProviderInfo>> {
    let client = meshery_client::rest::Client::new_with_client(&target.endpoint, api::http(None)?);
    let list = client
        .list_providers()
        .send()
        .await
        .map_err(|e| target.fail(e))?
        .into_inner();
    Ok(list.into_values().collect())
}

fn pick(list: &[ProviderInfo], wanted: Option<&str>) -> Outcome<ProviderInfo> {
    let names = || {
        list.iter()
            .map(|p| p.provider_name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(wanted) = wanted {
        // `None` is Local's old name.
        let wanted = if wanted.eq_ignore_ascii_case("none") {
            "Local"
        } else {
            wanted
        };
        return list
            .iter()
            .find(|p| p.provider_name.eq_ignore_ascii_case(wanted))
            .cloned()
            .ok_or_else(|| {
                Failure::new(
                    Class::NotFound,
                    format!("no provider {wanted:?}; the server offers: {}", names()),
                )
            });
    }
    if let [only] = list {
        return Ok(only.clone());
    }
    if !std::io::stdin().is_terminal() {
        return Err(failure::usage(format!(
            "choose a provider with -p; the server offers: {}",
            names()
        )));
    }
    eprintln!("Providers:");
    for (i, p) in list.iter().enumerate() {
        eprintln!(
            "  {}) {} ({})",
            i + 1,
            p.provider_name,
            p.provider_description.join("; ")
        );
    }
    eprint!("Choose 1-{}: ", list.len());
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| failure::usage(e.to_string()))?;
    line.trim()
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_sub(1))
        .and_then(|i| list.get(i))
        .cloned()
        .ok_or_else(|| failure::usage(format!("{:?} is not one of the choices", line.trim())))
}

/// Asks the server for the token file the given credentials make; it verifies them.
async fn exchange(target: &Target, provider: &str, token: &str) -> Outcome<AuthFile> {
    let creds = AuthFile {
        meshery_provider: provider.to_string(),
        token: token.to_string(),
    };
    let client =
        meshery_client::rest::Client::new_with_client(&target.endpoint, api::http(Some(&creds))?);
    match client.get_token().send().await {
        Ok(r) => Ok(r.into_inner()),
        Err(e) => {
            let f = target.fail(e);
            Err(if f.class == Class::Unauthenticated {
                Failure::new(
                    Class::Unauthenticated,
                    format!(
                        "the server did not accept the token for provider {provider}: it is invalid, expired or revoked; log in again"
                    ),
                )
            } else {
                f
            })
        }
    }
}

/// A token file's content, or a bare token.
fn parse_pasted(text: &str, provider: &str) -> Outcome<AuthFile> {
    let text = text.trim();
    if text.starts_with('{') {
        let auth: AuthFile = serde_json::from_str(text).map_err(|e| {
            failure::usage(format!(
                "that looks like JSON but not like auth.json ({{\"meshery-provider\", \"token\"}}): {e}"
            ))
        })?;
        return Ok(auth);
    }
    if text.is_empty() || text.contains(char::is_whitespace) {
        return Err(failure::usage(
            "no token pasted (paste the token the page shows, on one line)",
        ));
    }
    Ok(AuthFile {
        meshery_provider: provider.to_string(),
        token: text.to_string(),
    })
}

pub async fn login(target: &Target, o: LoginOptions) -> Outcome {
    // A token file from the UI's "Get Token" names its provider.
    if let Some(file) = &o.token_file {
        let given = api::read_auth(file)?.ok_or_else(|| {
            Failure::new(Class::Config, format!("{}: no such file", file.display()))
        })?;
        if let Some(p) = &o.provider
            && !p.eq_ignore_ascii_case(&given.meshery_provider)
        {
            return Err(failure::usage(format!(
                "{} is for provider {}, not {p}",
                file.display(),
                given.meshery_provider
            )));
        }
        let auth = exchange(target, &given.meshery_provider, &given.token).await?;
        return finish(target, auth).await;
    }
    let list = providers(target).await?;
    // `-p`, else the provider the context names.
    let wanted = o.provider.clone().or_else(|| {
        target
            .config
            .contexts
            .get(&target.context)
            .and_then(|c| c.provider.clone())
    });
    let provider = pick(&list, wanted.as_deref())?;
    let name = provider.provider_name.clone();
    if provider.provider_type == ProviderType::Local {
        let auth = exchange(target, &name, "").await?;
        return finish(target, auth).await;
    }
    let token = if o.headless {
        headless(target, &provider, o.paste, o.timeout).await?
    } else {
        browser(&provider, o.timeout).await?
    };
    let auth = exchange(target, &token.meshery_provider, &token.token).await?;
    finish(target, auth).await
}

async fn finish(target: &Target, auth: AuthFile) -> Outcome {
    api::write_auth(&target.auth_path, &auth)?;
    let who = match api::claims(&auth.token) {
        Some(c) => c
            .get("preferred_username")
            .or_else(|| c.get("sub"))
            .and_then(|v| v.as_str())
            .map(|u| format!(" as {u}"))
            .unwrap_or_default(),
        None => String::new(),
    };
    Ok(format!(
        "logged in to {} with provider {}{who}; token saved to {}",
        target.endpoint,
        auth.meshery_provider,
        target.auth_path.display()
    ))
}

/// Browser login: the provider sends the browser back to a one-time loopback address.
async fn browser(provider: &ProviderInfo, timeout: Duration) -> Outcome<AuthFile> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| Failure::new(Class::Server, format!("opening a local port: {e}")))?;
    let port = listener
        .local_addr()
        .map_err(|e| Failure::new(Class::Server, e.to_string()))?
        .port();
    // A random path: only the provider's redirect (which carries it) is accepted.
    let nonce = random_hex()?;
    let callback = format!("http://127.0.0.1:{port}/callback/{nonce}");
    let url = login_url(provider, &callback)?;
    eprintln!(
        "Opening your browser to sign in with {}. If it does not open, visit:\n\n  {url}\n",
        provider.provider_name
    );
    if webbrowser::open(&url).is_err() {
        eprintln!(
            "(no browser could be started here; open the address above, or use `mesheryctl system login --headless`)"
        );
    }
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let accepted = tokio::time::timeout(left, listener.accept()).await;
        let Ok(Ok((mut stream, _))) = accepted else {
            return Err(Failure::new(
                Class::Unauthenticated,
                format!(
                    "no sign-in arrived within {} s; try again, or `mesheryctl system login --headless`",
                    timeout.as_secs()
                ),
            ));
        };
        let Some(target) = read_request_target(&mut stream).await else {
            continue;
        };
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        if path != format!("/callback/{nonce}") {
            let _ = respond(&mut stream, "404 Not Found", "Not found.").await;
            continue;
        }
        let token = query_value(query, "token").filter(|t| !t.is_empty());
        match token {
            Some(token) => {
                let _ = respond(
                    &mut stream,
                    "200 OK",
                    "Signed in. You can close this tab and return to the terminal.",
                )
                .await;
                return Ok(AuthFile {
                    meshery_provider: provider.provider_name.clone(),
                    token,
                });
            }
            None => {
                let _ = respond(&mut stream, "400 Bad Request", "No token in this address.").await;
            }
        }
    }
}

fn login_url(provider: &ProviderInfo, callback: &str) -> Outcome {
    let base = api::endpoint(&provider.provider_url)?;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut url = reqwest::Url::parse(&format!("{base}/login"))
        .map_err(|e| Failure::new(Class::Server, format!("provider URL: {e}")))?;
    url.query_pairs_mut()
        .append_pair("source", &b64.encode(callback))
        .append_pair(
            "provider_version",
            provider.package_version.as_deref().unwrap_or(""),
        )
        .append_pair("meshery_version", env!("CARGO_PKG_VERSION"));
    Ok(url.to_string())
}

fn random_hex() -> Outcome {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| Failure::new(Class::Server, format!("no randomness: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The request target of one HTTP request (its first line), read with bounds.
async fn read_request_target(stream: &mut tokio::net::TcpStream) -> Option<String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let read = async {
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        Some(())
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .ok()??;
    let head = String::from_utf8_lossy(&buf);
    let line = head.lines().next()?;
    let mut parts = line.split(' ');
    match (parts.next(), parts.next()) {
        (Some("GET"), Some(target)) => Some(target.to_string()),
        _ => None,
    }
}

async fn respond(
    stream: &mut tokio::net::TcpStream,
    status: &str,
    text: &str,
) -> std::io::Result<()> {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>mesheryctl</title></head><body><p>{text}</p></body></html>"
    );
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

fn query_value(query: &str, key: &str) -> Option<String> {
    url_pairs(query).find(|(k, _)| k == key).map(|(_, v)| v)
}

fn url_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    reqwest::Url::parse(&format!("http://x/?{query}"))
        .map(|u| {
            u.query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
}

#[derive(serde::Deserialize)]
struct DeviceCode {
    device_code: String,
    user_code: String,
    verification_uri: String,
    #[serde(default)]
    verification_uri_complete: Option<String>,
    expires_in: u64,
    #[serde(default)]
    interval: Option<u64>,
}

#[derive(serde::Deserialize)]
struct DeviceAnswer {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

/// Headless login: a device code approved on any machine, or a pasted token.
async fn headless(
    target: &Target,
    provider: &ProviderInfo,
    paste: bool,
    timeout: Duration,
) -> Outcome<AuthFile> {
    if !paste {
        match device(provider, timeout).await? {
            Some(token) => {
                return Ok(AuthFile {
                    meshery_provider: provider.provider_name.clone(),
                    token,
                });
            }
            None => eprintln!(
                "{} does not offer device sign-in; paste a token instead.",
                provider.provider_name
            ),
        }
    }
    let mut url = reqwest::Url::parse(&format!("{}/user/login", target.endpoint))
        .map_err(|e| failure::usage(e.to_string()))?;
    url.query_pairs_mut()
        .append_pair("provider", &provider.provider_name)
        .append_pair("ref", "/token");
    eprintln!(
        "On any machine with a browser, open:\n\n  {url}\n\nsign in, and paste the token the page shows (or the content of auth.json):"
    );
    let mut line = String::new();
    let read = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::Read::take(std::io::stdin().lock(), 64 * 1024)
            .read_line(&mut line)
            .map(|_| line)
    });
    match tokio::time::timeout(timeout, read).await {
        Ok(Ok(Ok(text))) => line.push_str(&text),
        Ok(_) => {
            return Err(failure::usage(
                "could not read the token from standard input",
            ));
        }
        Err(_) => {
            return Err(Failure::new(
                Class::Unauthenticated,
                format!("no token pasted within {} s", timeout.as_secs()),
            ));
        }
    }
    parse_pasted(&line, &provider.provider_name)
}

/// The device authorization grant at the provider; `None` when it does not offer one.
async fn device(provider: &ProviderInfo, timeout: Duration) -> Outcome<Option<String>> {
    let base = api::endpoint(&provider.provider_url)?;
    let http = api::http(None)?;
    let unreachable = |e: reqwest::Error| failure::transport(&e, &base);
    let response = http
        .post(format!("{base}/device/code"))
        .form(&[("client_id", "mesheryctl")])
        .send()
        .await
        .map_err(unreachable)?;
    if matches!(response.status().as_u16(), 404 | 405) {
        return Ok(None);
    }
    if !response.status().is_success() {
        return Err(failure::status(
            response.status().as_u16(),
            &format!(
                "{} refused to start a device sign-in",
                provider.provider_name
            ),
            "",
        ));
    }
    let code: DeviceCode = response.json().await.map_err(unreachable)?;
    eprintln!(
        "On any device with a browser, open:\n\n  {}\n\nand confirm the code {} (valid for {} minutes).\nWaiting for approval...",
        code.verification_uri_complete
            .as_deref()
            .unwrap_or(&code.verification_uri),
        code.user_code,
        code.expires_in / 60
    );
    let mut interval = Duration::from_secs(code.interval.unwrap_or(5).max(1));
    let deadline = Instant::now() + timeout.min(Duration::from_secs(code.expires_in.max(1)));
    loop {
        tokio::time::sleep(interval).await;
        if Instant::now() > deadline {
            return Err(Failure::new(
                Class::Unauthenticated,
                "the code was not approved in time; run the command again",
            ));
        }
        let answer = http
            .post(format!("{base}/device/token"))
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("device_code", code.device_code.as_str()),
                ("client_id", "mesheryctl"),
            ])
            .send()
            .await
            .map_err(unreachable)?;
        let status = answer.status();
        let body: DeviceAnswer = answer.json().await.map_err(unreachable)?;
        if status.is_success() {
            let token = body.token.or(body.access_token).filter(|t| !t.is_empty());
            return token.map(Some).ok_or_else(|| {
                Failure::new(Class::Server, "the provider approved but sent no token")
            });
        }
        match body.error.as_deref() {
            Some("authorization_pending") => {}
            // RFC 8628: back off five seconds.
            Some("slow_down") => interval += Duration::from_secs(5),
            Some(other) => {
                return Err(Failure::new(
                    Class::Unauthenticated,
                    format!(
                        "device sign-in failed: {other}{}",
                        body.error_description
                            .map(|d| format!(" ({d})"))
                            .unwrap_or_default()
                    ),
                ));
            }
            None => {
                return Err(failure::status(
                    status.as_u16(),
                    "device sign-in failed",
                    "",
                ));
            }
        }
    }
}

/// Ends the session at the server (which logs out at the provider and revokes the token)
/// and removes the token file.
pub async fn logout(target: &Target) -> Outcome {
    let Some(auth) = &target.auth else {
        return Ok(format!("not logged in (no {})", target.auth_path.display()));
    };
    let mut note = String::new();
    if !auth.token.is_empty() {
        let http = api::http(Some(auth))?;
        match http
            .get(format!("{}/user/logout", target.endpoint))
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) => {
                note = format!(
                    " (the server could not be told: {}; the token stays valid until it expires)",
                    failure::transport(&e, &target.endpoint).message
                )
            }
        }
    }
    std::fs::remove_file(&target.auth_path)
        .map_err(|e| failure::config(format!("{}: {e}", target.auth_path.display())))?;
    Ok(format!(
        "logged out of {} ({} removed){note}",
        target.endpoint,
        target.auth_path.display()
    ))
}

fn no_token(target: &Target) -> Failure {
    Failure::new(
        Class::Unauthenticated,
        format!(
            "no token file at {}; run `mesheryctl system login` (or --headless, or --token-file auth.json)",
            target.auth_path.display()
        ),
    )
}

pub fn token_view(target: &Target, show: bool) -> Outcome {
    let auth = target.auth.as_ref().ok_or_else(|| no_token(target))?;
    let shown = if show || auth.token.len() <= 12 {
        auth.token.clone()
    } else {
        format!("{}… (--show prints it whole)", &auth.token[..12])
    };
    let mut out = format!(
        "file:     {}\nprovider: {}\ntoken:    {}",
        target.auth_path.display(),
        auth.meshery_provider,
        if shown.is_empty() {
            "(none needed)"
        } else {
            &shown
        }
    );
    if let Some((_, when)) = api::expiry(&auth.token) {
        out.push_str(&format!("\nexpires:  {when}"));
    }
    Ok(out)
}

pub async fn status(target: &Target) -> Outcome {
    let client = target.client()?;
    let version = client
        .get_system_version()
        .send()
        .await
        .map_err(|e| target.fail(e))?
        .into_inner();
    let mut out = format!(
        "context:  {}\nserver:   {} (meshery-rs {}, {} channel{})",
        target.context,
        target.endpoint,
        version.build,
        version.release_channel,
        if version.outdated {
            format!(", {} available", version.latest)
        } else {
            String::new()
        }
    );
    let Some(auth) = &target.auth else {
        eprintln!("{out}");
        return Err(no_token(target));
    };
    out.push_str(&format!("\nprovider: {}", auth.meshery_provider));
    let user = client.get_user().send().await;
    match user {
        Ok(user) => {
            let user = user.into_inner();
            let full = format!("{} {}", user.first_name, user.last_name);
            out.push_str(&format!(
                "\nuser:     {}{}{}",
                user.user_name,
                // A provider without full names repeats the user name there.
                if full.trim().is_empty() || full.trim() == user.user_name {
                    String::new()
                } else {
                    format!(" ({})", full.trim())
                },
                if user.email.is_empty() {
                    String::new()
                } else {
                    format!(" <{}>", user.email)
                }
            ));
        }
        Err(e) => {
            eprintln!("{out}");
            return Err(target.fail(e));
        }
    }
    out.push_str(&format!(
        "\ntoken:    {}",
        match api::expiry(&auth.token) {
            Some((_, when)) => format!("expires {when}"),
            None if auth.token.is_empty() => "none needed".into(),
            None => "no expiry".into(),
        }
    ));
    Ok(out)
}
