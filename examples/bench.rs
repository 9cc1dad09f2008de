//! `cargo xtask bench`: request rates measured as ratios within one run (machines here are
//! noisy, so only same-run ratios mean anything).
//!
//! guard: `GET /api/user` with a remote provider's JWT (signature checked once, then the
//! verified-token cache) against the same call with the Local provider (no credentials).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use meshery::refprovider::{self, Account, ProviderConfig};
use meshery::server::{self, Config};

const CONNECTIONS: usize = 16;

/// Requests per second of `GET url` with `headers`, over `CONNECTIONS` keep-alive
/// connections for `secs`.
async fn rate(url: &str, headers: &[(&str, String)], secs: f64) -> f64 {
    let mut map = reqwest::header::HeaderMap::new();
    for (k, v) in headers {
        map.insert(
            reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    let client = reqwest::Client::builder()
        .default_headers(map)
        .pool_max_idle_per_host(CONNECTIONS)
        .build()
        .unwrap();
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let (client, done, url) = (client.clone(), done.clone(), url.to_string());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let r = client.get(&url).send().await.expect("request");
                assert!(r.status().is_success(), "{url}: {}", r.status());
                r.bytes().await.expect("body");
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let secs: f64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let provider = refprovider::start(
        ProviderConfig {
            accounts: vec![Account::parse("alice:pw").unwrap()],
            ..Default::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let home = std::env::temp_dir().join(format!("meshery-bench-{}", std::process::id()));
    let mut config = Config::new(home.clone());
    config.port = 0;
    config.provider_base_urls = vec![provider.url.clone()];
    let running = server::start(config).await.unwrap();
    let url = format!("http://{}/api/user", running.addr);
    let token = provider.provider.issue("alice").unwrap();
    let guarded = [
        ("authorization", format!("Bearer {token}")),
        ("meshery-provider", "Reference".into()),
    ];
    let unguarded: [(&str, String); 0] = [];

    // Warm up both paths (the first guarded call verifies the JWT and asks the provider).
    rate(&url, &guarded, 0.5).await;
    rate(&url, &unguarded, 0.5).await;
    // Alternate to spread drift over both.
    let (mut g, mut u) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        g.push(rate(&url, &guarded, secs).await);
        u.push(rate(&url, &unguarded, secs).await);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (g, u) = (mean(&g), mean(&u));
    println!(
        "bench guard: GET /api/user, {CONNECTIONS} connections, 2 x {secs} s each, alternating"
    );
    println!("  unguarded (Local provider)      {u:>10.0} req/s");
    println!("  guarded (remote JWT, cached)    {g:>10.0} req/s");
    println!("  ratio guarded/unguarded         {:>10.3}", g / u);
    running.stop().await.unwrap();
    provider.stop().await;
    let _ = std::fs::remove_dir_all(home);
}
