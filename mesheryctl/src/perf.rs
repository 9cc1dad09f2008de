//! `perf apply|profile|result`: load tests run by the server's built-in load generator.

use std::time::Duration;

use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use meshery_models::{
    PerfFrame, PerfFrameStatus, PerfResult, PerfResultPage, PerformanceProfile,
    PerformanceProfileInput,
};

use meshery_client::sse::EventStreamError;

use crate::api::Target;
use crate::failure::{self, Class, Failure, Outcome};
use crate::output::{self, Format};

#[derive(clap::Args)]
pub struct Apply {
    /// The performance profile (default: the URL's host).
    pub name: Option<String>,
    /// The URL to load (saved as the profile NAME and run); without it, NAME's saved
    /// profile runs.
    #[arg(long, short = 'u')]
    pub url: Option<String>,
    /// An SMP performance test configuration (YAML or JSON) instead of the flags.
    #[arg(long, short = 'f', conflicts_with_all = ["url", "concurrent_requests", "qps", "method", "header", "body"])]
    pub file: Option<std::path::PathBuf>,
    /// How long: `30s`, `2m`, `1h`.
    #[arg(long, short = 'd', default_value = "30s")]
    pub duration: String,
    /// Connections.
    #[arg(long, short = 'c', default_value_t = 1)]
    pub concurrent_requests: i32,
    /// Requests per second across all connections; 0 = as fast as possible.
    #[arg(long, default_value_t = 0.0)]
    pub qps: f64,
    /// HTTP method of each request.
    #[arg(long, default_value = "GET")]
    pub method: String,
    /// A request header `Name: value` (repeatable).
    #[arg(long = "header", short = 'H')]
    pub header: Vec<String>,
    /// Request cookies, `a=1; b=2`.
    #[arg(long)]
    pub cookies: Option<String>,
    /// Request body.
    #[arg(long)]
    pub body: Option<String>,
    /// Content-Type of --body.
    #[arg(long)]
    pub content_type: Option<String>,
    /// Per-request timeout, e.g. `5s`.
    #[arg(long)]
    pub timeout: Option<String>,
    /// HTTP/2 (h2c for http://, ALPN for https://).
    #[arg(long)]
    pub http2: bool,
    /// Accept any TLS certificate of the target.
    #[arg(long)]
    pub insecure: bool,
    /// `meshery`, `fortio`, `wrk2` or `nighthawk`: every one runs the built-in generator
    /// (the names are accepted for Meshery's scripts); the result records it.
    #[arg(long, default_value = "fortio")]
    pub load_generator: String,
}

/// Seconds in `30s`, `2m`, `1h` (for the progress bar only: the server checks the value).
fn seconds(duration: &str) -> Option<u64> {
    let d = duration.trim();
    let (n, unit) = d.split_at(d.find(|c: char| !c.is_ascii_digit()).unwrap_or(d.len()));
    let n: u64 = n.parse().ok()?;
    Some(match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return None,
    })
}

fn headers_json(headers: &[String]) -> Outcome<Option<String>> {
    if headers.is_empty() {
        return Ok(None);
    }
    let mut map = serde_json::Map::new();
    for h in headers {
        let (k, v) = h
            .split_once(':')
            .ok_or_else(|| failure::usage(format!("--header {h:?} must be `Name: value`")))?;
        map.insert(
            k.trim().to_string(),
            serde_json::Value::String(v.trim().to_string()),
        );
    }
    Ok(Some(serde_json::Value::Object(map).to_string()))
}

fn default_name(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "load test".into())
}

async fn find_profile(
    target: &Target,
    client: &meshery_client::rest::Client,
    name: &str,
) -> Outcome<Option<PerformanceProfile>> {
    let page = client
        .list_perf_profiles()
        .search(name)
        .pagesize("all")
        .send()
        .await
        .map_err(|e| target.fail(e))?
        .into_inner();
    Ok(page.profiles.into_iter().find(|p| p.name == name))
}

/// A run by query parameters, not kept as a profile.
async fn adhoc(
    target: &Target,
    client: &meshery_client::rest::Client,
    a: &Apply,
) -> Outcome<(meshery_client::rest::ByteStream, Option<u64>)> {
    let url = a.url.clone().unwrap_or_default();
    let name = a.name.clone().unwrap_or_else(|| default_name(&url));
    let mut b = client
        .run_perf_test()
        .name(name)
        .url(url.as_str())
        .t(a.duration.clone())
        .c(a.concurrent_requests)
        .qps(a.qps)
        .method(a.method.clone())
        .load_generator(a.load_generator.clone())
        .http2(a.http2)
        .insecure(a.insecure);
    if let Some(h) = headers_json(&a.header)? {
        b = b.headers(h);
    }
    if let Some(c) = &a.cookies {
        b = b.cookies(c.clone());
    }
    if let Some(body) = &a.body {
        b = b.req_body(body.clone());
    }
    if let Some(ct) = &a.content_type {
        b = b.content_type(ct.clone());
    }
    if let Some(t) = &a.timeout {
        b = b.timeout(t.clone());
    }
    let r = b.send().await.map_err(|e| target.fail(e))?;
    Ok((r.into_inner(), seconds(&a.duration)))
}

pub async fn apply(target: &Target, a: Apply, format: Format) -> Outcome {
    let client = target.client()?;
    let (stream, secs) = if let Some(file) = &a.file {
        let text = std::fs::read_to_string(file)
            .map_err(|e| failure::usage(format!("{}: {e}", file.display())))?;
        let secs = yaml_serde::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("duration").and_then(|d| d.as_str()).and_then(seconds));
        let r = client
            .run_perf_test_smp()
            .body(text)
            .send()
            .await
            .map_err(|e| target.fail(e))?;
        (r.into_inner(), secs)
    } else if a.url.is_none() {
        // Only a name: run the saved profile of that name.
        let name = a
            .name
            .clone()
            .ok_or_else(|| failure::usage("give --url, --file, or the name of a saved profile"))?;
        let profile = find_profile(target, &client, &name).await?.ok_or_else(|| {
            Failure::new(
                Class::NotFound,
                format!("no performance profile {name:?}; give --url to create it"),
            )
        })?;
        let r = client
            .run_perf_profile()
            .profile_id(profile.id)
            .send()
            .await
            .map_err(|e| target.fail(e))?;
        (r.into_inner(), seconds(&profile.duration))
    } else if a.method != "GET" || a.http2 || a.insecure || a.timeout.is_some() {
        // Settings a profile cannot hold yet: a one-off run, stored without a profile.
        adhoc(target, &client, &a).await?
    } else {
        // Meshery's way: the test is saved as a profile (created, or updated by name) and
        // run, so its results are listed under the profile.
        let url = a.url.clone().unwrap_or_default();
        let name = a.name.clone().unwrap_or_else(|| default_name(&url));
        let existing = find_profile(target, &client, &name).await?;
        let mut headers = serde_json::Map::new();
        if let Some(h) = headers_json(&a.header)? {
            headers = serde_json::from_str(&h).unwrap_or_default();
        }
        let input = serde_json::json!({
            "id": existing.map(|p| p.id),
            "name": name,
            "endpoints": [url],
            "loadGenerators": [a.load_generator],
            "concurrentRequest": a.concurrent_requests,
            // Profiles keep whole requests per second (Meshery's type).
            "qps": a.qps.round() as i64,
            "duration": a.duration,
            "requestHeaders": headers,
            "requestCookies": a.cookies.clone().unwrap_or_default(),
            "requestBody": a.body.clone().unwrap_or_default(),
            "contentType": a.content_type.clone().unwrap_or_default(),
        });
        let input: PerformanceProfileInput =
            serde_json::from_value(input).map_err(|e| failure::usage(format!("profile: {e}")))?;
        let saved = client
            .save_perf_profile()
            .body(input)
            .send()
            .await
            .map_err(|e| target.fail(e))?
            .into_inner();
        let r = client
            .run_perf_profile()
            .profile_id(saved.id)
            .send()
            .await
            .map_err(|e| target.fail(e))?;
        (r.into_inner(), seconds(&a.duration))
    };
    let bar = match secs {
        Some(s) => ProgressBar::new(s).with_style(
            ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} s  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        ),
        None => ProgressBar::new_spinner(),
    };
    bar.enable_steady_tick(Duration::from_millis(200));
    let started = std::time::Instant::now();
    let mut frames = Box::pin(meshery_client::sse::frames(stream.into_inner()));
    let mut result = None;
    let mut run_id = None;
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        let frame = tokio::select! {
            f = frames.next() => f,
            _ = &mut interrupted => {
                // The run is detached from this connection on the server: stop it there.
                bar.abandon();
                let Some(id) = run_id else {
                    return Err(Failure::new(Class::Rejected, "interrupted before the run started"));
                };
                return match client.cancel_perf_run().run_id(id).send().await {
                    Ok(_) => Err(Failure::new(Class::Rejected, "interrupted: the run was cancelled (its partial result is stored)")),
                    Err(e) => Err(target.fail(e)),
                };
            }
        };
        let Some(frame) = frame else { break };
        let frame = frame.map_err(|e| {
            bar.abandon();
            match e {
                EventStreamError::Transport(e) => failure::transport(&e, &target.endpoint),
                other => Failure::new(
                    Class::Server,
                    format!("the server sent a malformed event stream: {other}"),
                ),
            }
        })?;
        if frame.event.as_deref() == Some(meshery_client::sse::SESSION_ENDED) {
            bar.abandon();
            return Err(session_ended(&frame.data));
        }
        let Ok(frame) = serde_json::from_str::<PerfFrame>(&frame.data) else {
            continue;
        };
        if run_id.is_none() {
            run_id = frame.run_id.clone();
        }
        match frame.status {
            PerfFrameStatus::Info => {
                bar.set_position(started.elapsed().as_secs());
                bar.set_message(frame.message);
            }
            PerfFrameStatus::Error => {
                bar.abandon();
                return Err(Failure::new(
                    Class::Rejected,
                    format!("the load test failed: {}", frame.message),
                ));
            }
            PerfFrameStatus::Success => {
                result = frame.result;
                break;
            }
        }
    }
    bar.finish_and_clear();
    let result = result.ok_or_else(|| {
        Failure::new(
            Class::Server,
            "the server ended the stream without a result",
        )
    })?;
    output::emit(format, &result, summary)
}

fn ms(seconds: f64) -> String {
    format!("{:.3}", seconds * 1000.0)
}

/// The summary a person reads after a test: throughput, percentiles, status codes.
fn summary(r: &PerfResult) -> String {
    let rr = &r.runner_results;
    let h = &rr.duration_histogram;
    let codes: Vec<String> = rr
        .ret_codes
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    let errors: Vec<String> = rr
        .errors_by_kind
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    let mut out = output::fields(&[
        ("result", r.id.clone()),
        ("name", r.name.clone()),
        ("url", rr.url.clone()),
        (
            "duration",
            format!("{:.1} s", rr.actual_duration as f64 / 1e9),
        ),
        ("connections", rr.num_threads.to_string()),
        ("requests", h.count.to_string()),
        (
            "qps",
            format!("{:.1} (requested {})", rr.actual_qps, rr.requested_qps),
        ),
        (
            "status codes",
            if codes.is_empty() {
                "none".into()
            } else {
                codes.join(", ")
            },
        ),
        (
            "errors",
            if errors.is_empty() {
                "none".into()
            } else {
                errors.join(", ")
            },
        ),
    ]);
    out.push_str("\n\nlatency (ms)\n");
    let mut header = vec!["min".to_string(), "avg".to_string()];
    let mut row = vec![ms(h.min), ms(h.avg)];
    for p in &h.percentiles {
        header.push(format!("p{}", p.percentile));
        row.push(ms(p.value));
    }
    header.push("max".into());
    row.push(ms(h.max));
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    out.push_str(&output::table(&header, [row]));
    out
}

fn p(r: &PerfResult, percentile: f64) -> String {
    r.runner_results
        .duration_histogram
        .percentiles
        .iter()
        .find(|x| (x.percentile - percentile).abs() < 1e-9)
        .map(|x| ms(x.value))
        .unwrap_or_else(|| "-".into())
}

fn results_table(page: &PerfResultPage) -> String {
    let mut out = output::table(
        &[
            "id", "name", "started", "url", "qps", "p50 ms", "p90 ms", "p99 ms",
        ],
        page.results.iter().map(|r| {
            vec![
                r.id.clone(),
                r.name.clone(),
                output::time(&r.test_start_time),
                r.runner_results.url.clone(),
                format!("{:.1}", r.runner_results.actual_qps),
                p(r, 50.0),
                p(r, 90.0),
                p(r, 99.0),
            ]
        }),
    );
    out.push('\n');
    out.push_str(&output::footer(page.page, page.page_size, page.total_count));
    out
}

fn profiles_table(page: &meshery_models::PerformanceProfilePage) -> String {
    let mut out = output::table(
        &[
            "id",
            "name",
            "endpoints",
            "connections",
            "qps",
            "duration",
            "results",
            "last run",
        ],
        page.profiles.iter().map(|p| {
            vec![
                p.id.clone(),
                p.name.clone(),
                p.endpoints.join(" "),
                p.concurrent_request.to_string(),
                p.qps.to_string(),
                p.duration.clone(),
                p.total_results.to_string(),
                p.last_run
                    .as_ref()
                    .map(output::time)
                    .unwrap_or_else(|| "never".into()),
            ]
        }),
    );
    out.push('\n');
    out.push_str(&output::footer(page.page, page.page_size, page.total_count));
    out
}

fn profile_fields(p: &PerformanceProfile) -> String {
    output::fields(&[
        ("id", p.id.clone()),
        ("name", p.name.clone()),
        ("endpoints", p.endpoints.join(" ")),
        ("load generators", p.load_generators.join(" ")),
        ("connections", p.concurrent_request.to_string()),
        ("qps", p.qps.to_string()),
        ("duration", p.duration.clone()),
        ("results", p.total_results.to_string()),
        ("created", output::time(&p.created_at)),
        ("updated", output::time(&p.updated_at)),
    ])
}

pub struct ListArgs {
    pub page: i64,
    pub pagesize: String,
    pub search: Option<String>,
}

pub async fn profile_list(target: &Target, l: ListArgs, format: Format) -> Outcome {
    let client = target.client()?;
    let mut b = client
        .list_perf_profiles()
        .page(l.page)
        .pagesize(l.pagesize);
    if let Some(s) = l.search {
        b = b.search(s);
    }
    let page = b.send().await.map_err(|e| target.fail(e))?.into_inner();
    output::emit(format, &page, profiles_table)
}

pub async fn profile_view(target: &Target, id: String, format: Format) -> Outcome {
    let client = target.client()?;
    let p = client
        .get_perf_profile()
        .profile_id(id)
        .send()
        .await
        .map_err(|e| target.fail(e))?
        .into_inner();
    output::emit(format, &p, profile_fields)
}

pub async fn profile_delete(target: &Target, id: String) -> Outcome {
    let client = target.client()?;
    client
        .delete_perf_profile()
        .profile_id(id.clone())
        .send()
        .await
        .map_err(|e| target.fail(e))?;
    Ok(format!("deleted performance profile {id}"))
}

pub async fn result_list(
    target: &Target,
    profile: Option<String>,
    l: ListArgs,
    format: Format,
) -> Outcome {
    let client = target.client()?;
    let page = match profile {
        Some(id) => {
            let mut b = client
                .list_perf_profile_results()
                .profile_id(id)
                .page(l.page)
                .pagesize(l.pagesize);
            if let Some(s) = l.search {
                b = b.search(s);
            }
            b.send().await
        }
        None => {
            let mut b = client.list_perf_results().page(l.page).pagesize(l.pagesize);
            if let Some(s) = l.search {
                b = b.search(s);
            }
            b.send().await
        }
    }
    .map_err(|e| target.fail(e))?
    .into_inner();
    output::emit(format, &page, results_table)
}

pub async fn result_view(target: &Target, id: String, format: Format) -> Outcome {
    let client = target.client()?;
    let r = client
        .get_perf_result()
        .result_id(id)
        .send()
        .await
        .map_err(|e| target.fail(e))?
        .into_inner();
    output::emit(format, &r, summary)
}

/// The failure for a progress stream the server ended with the session (token expired,
/// logged out, revoked): its MeshKit error says why. The run itself goes on and stores
/// its result.
fn session_ended(data: &str) -> Failure {
    let said = serde_json::from_str::<serde_json::Value>(data)
        .ok()
        .and_then(|e| e["error"].as_str().map(str::to_string))
        .unwrap_or_else(|| "the session ended".into());
    failure::status(
        401,
        &format!("{said}; the run goes on and its result is stored"),
        "",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_ended_with_the_session_asks_for_a_new_login() {
        let data =
            r#"{"code":"meshery-server-1002","error":"the session ended: the token expired"}"#;
        let failure = session_ended(data);
        assert_eq!(failure.class, Class::Unauthenticated);
        assert!(
            failure.message.contains("the token expired"),
            "{}",
            failure.message
        );
        assert!(
            failure.message.contains("result is stored"),
            "{}",
            failure.message
        );
        // Data that is not a MeshKit error still ends the run's view with a reason.
        assert!(session_ended("?").message.contains("the session ended"));
    }
}
