//! `cargo xtask bench`: request rates measured as ratios within one run (machines here are
//! noisy, so only same-run ratios mean anything).
//!
//! guard: `GET /api/user` with a remote provider's JWT (signature checked once, then the
//! verified-token cache) against the same call with the Local provider (no credentials).
//! loadgen: the built-in generator against `wrk` on the same target at equal connections,
//! at max throughput (ratio of rates), and at a fixed rate (p50/p99 each tool reports; wrk
//! is paced by a Lua `delay()`, which is still a closed loop, so its percentiles omit the
//! waiting that ours counts).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use meshery::server::{self, Config};
use meshery_provider::{self as refprovider, Account, ProviderConfig};

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

/// A target: `/` answers "ok".
async fn target() -> std::net::SocketAddr {
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn spec(
    addr: std::net::SocketAddr,
    connections: usize,
    qps: f64,
    secs: f64,
) -> meshery::perf::loadgen::LoadSpec {
    meshery::perf::loadgen::LoadSpec {
        addrs: vec![addr],
        uri: "/".parse().unwrap(),
        host: addr.to_string(),
        method: axum::http::Method::GET,
        headers: Vec::new(),
        body: Default::default(),
        duration: Duration::from_secs_f64(secs),
        connections,
        qps,
        timeout: Duration::from_secs(10),
        http2: false,
        tls: None,
    }
}

/// (requests/s, p50 ms, p99 ms) of the built-in generator.
async fn ours(
    addr: std::net::SocketAddr,
    connections: usize,
    qps: f64,
    secs: f64,
) -> (f64, f64, f64) {
    let o = meshery::perf::loadgen::run(
        spec(addr, connections, qps, secs),
        Default::default(),
        |_| {},
    )
    .await;
    assert!(o.errors.is_empty(), "generator errors: {:?}", o.errors);
    let ms = |q: f64| o.latency.value_at_quantile(q) as f64 / 1000.0;
    (o.actual_qps(), ms(0.5), ms(0.99))
}

/// wrk's reading of a duration such as `123.45us`, `1.2ms`, `2.00s`, in milliseconds.
fn wrk_ms(s: &str) -> Option<f64> {
    let s = s.trim();
    let (number, scale) = if let Some(n) = s.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1000.0)
    } else {
        return None;
    };
    number.trim().parse::<f64>().ok().map(|v| v * scale)
}

/// (requests/s, p50 ms, p99 ms) of wrk; `delay_ms` paces each connection.
async fn wrk(
    addr: std::net::SocketAddr,
    connections: usize,
    delay_ms: Option<f64>,
    secs: f64,
) -> Option<(f64, f64, f64)> {
    let script = delay_ms.map(|d| format!("function delay()\n  return {d}\nend\n"));
    wrk_at(
        &format!("http://{addr}/"),
        2,
        connections,
        secs,
        &[],
        script,
    )
    .await
}

/// (requests/s, p50 ms, p99 ms) of wrk against `url` with `threads` client threads,
/// extra `args` (headers) and a Lua `script`; `None` when wrk cannot be run, and a panic
/// when any answer is not a success (a rate of errors measures nothing).
async fn wrk_at(
    url: &str,
    threads: usize,
    connections: usize,
    secs: f64,
    args: &[&str],
    script: Option<String>,
) -> Option<(f64, f64, f64)> {
    let mut cmd = tokio::process::Command::new("wrk");
    cmd.args([
        format!("-t{threads}"),
        format!("-c{connections}"),
        format!("-d{}s", secs.ceil() as u64),
        "--latency".to_string(),
    ]);
    cmd.args(args);
    static SCRIPTS: AtomicU64 = AtomicU64::new(0);
    let path = script.map(|text| {
        let path = std::env::temp_dir().join(format!(
            "meshery-bench-{}-{}.lua",
            std::process::id(),
            SCRIPTS.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, text).unwrap();
        path
    });
    if let Some(path) = &path {
        cmd.arg("-s").arg(path);
    }
    let out = cmd.arg(url).output().await.ok()?;
    if let Some(path) = path {
        let _ = std::fs::remove_file(path);
    }
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        !text.contains("Non-2xx or 3xx responses"),
        "wrk {url}: failed answers\n{text}"
    );
    let mut rps = None;
    let (mut p50, mut p99) = (None, None);
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", v] => rps = v.parse::<f64>().ok(),
            ["50%", v] => p50 = wrk_ms(v),
            ["99%", v] => p99 = wrk_ms(v),
            _ => {}
        }
    }
    Some((rps?, p50?, p99?))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One row of the request-path table: `subject` against its `baseline`, alternating
/// `runs` times; medians of rate and p99.
struct Row {
    what: &'static str,
    baseline: &'static str,
    rate: f64,
    p99: f64,
    base_rate: f64,
    base_p99: f64,
    goal: f64,
}

type Load<'a> = (&'a str, &'a [&'a str], Option<String>);

async fn compare(runs: usize, secs: f64, subject: Load<'_>, baseline: Load<'_>) -> [f64; 4] {
    let (mut r, mut p, mut br, mut bp) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        // One client thread: the client gets one core's worth, the server the rest.
        let (rate, _, p99) = wrk_at(
            subject.0,
            1,
            CONNECTIONS,
            secs,
            subject.1,
            subject.2.clone(),
        )
        .await
        .expect("wrk runs");
        r.push(rate);
        p.push(p99);
        let (rate, _, p99) = wrk_at(
            baseline.0,
            1,
            CONNECTIONS,
            secs,
            baseline.1,
            baseline.2.clone(),
        )
        .await
        .expect("wrk runs");
        br.push(rate);
        bp.push(p99);
    }
    [median(r), median(p), median(br), median(bp)]
}

/// The request path against bare axum and REST against GraphQL (Local provider).
async fn http_bench(runs: usize, secs: f64) {
    let bare = target().await;
    let home = std::env::temp_dir().join(format!("meshery-bench-http-{}", std::process::id()));
    let mut config = Config::new(home.clone());
    config.port = 0;
    let running = server::start(config).await.unwrap();
    let version = format!("http://{}/api/system/version", running.addr);
    let graphql = format!("http://{}/api/system/graphql/query", running.addr);
    let hello = format!("http://{bare}/");
    let close: &[&str] = &["-H", "Connection: close"];
    let query = r#"{\"query\":\"{ version { build } }\"}"#;
    let post = format!(
        "wrk.method = \"POST\"\nwrk.body = \"{query}\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\n"
    );
    // Warm-up: first connections, allocator growth, the GraphQL schema's first run.
    for url in [&version, &hello] {
        wrk_at(url, 1, CONNECTIONS, 1.0, &[], None)
            .await
            .expect("wrk runs");
    }
    wrk_at(&graphql, 1, CONNECTIONS, 1.0, &[], Some(post.clone()))
        .await
        .expect("wrk runs");
    let mut rows = Vec::new();
    let [rate, p99, base_rate, base_p99] =
        compare(runs, secs, (&version, &[], None), (&hello, &[], None)).await;
    rows.push(Row {
        what: "GET /api/system/version, keep-alive",
        baseline: "bare axum",
        rate,
        p99,
        base_rate,
        base_p99,
        goal: 0.85,
    });
    let [rate, p99, base_rate, base_p99] =
        compare(runs, secs, (&version, close, None), (&hello, close, None)).await;
    rows.push(Row {
        what: "GET /api/system/version, Connection: close",
        baseline: "bare axum",
        rate,
        p99,
        base_rate,
        base_p99,
        goal: 0.7,
    });
    let [rate, p99, base_rate, base_p99] = compare(
        runs,
        secs,
        (&graphql, &[], Some(post)),
        (&version, &[], None),
    )
    .await;
    rows.push(Row {
        what: "GraphQL { version { build } }",
        baseline: "REST version",
        rate,
        p99,
        base_rate,
        base_p99,
        goal: 0.8,
    });
    println!("bench http: wrk -t1 -c{CONNECTIONS}, {runs} alternating runs of {secs} s, medians");
    println!(
        "  {:<44} {:>9} {:>8}   {:<13} {:>9} {:>8}   {:>6} {:>6}",
        "what", "req/s", "p99 ms", "baseline", "req/s", "p99 ms", "ratio", "goal"
    );
    for r in rows {
        let ratio = r.rate / r.base_rate;
        println!(
            "  {:<44} {:>9.0} {:>8.2}   {:<13} {:>9.0} {:>8.2}   {:>6.3} {:>5.2}{}",
            r.what,
            r.rate,
            r.p99,
            r.baseline,
            r.base_rate,
            r.base_p99,
            ratio,
            r.goal,
            if ratio >= r.goal { " ok" } else { " MISSED" }
        );
    }
    running.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(home);
}

async fn loadgen_bench(secs: f64) {
    let addr = target().await;
    let connections = 16;
    if tokio::process::Command::new("wrk")
        .arg("--version")
        .output()
        .await
        .is_err()
    {
        println!("bench loadgen: wrk is not installed (apt-get install wrk); skipped");
        return;
    }
    // Max throughput, alternating.
    let (mut a, mut b) = (Vec::new(), Vec::new());
    ours(addr, connections, 0.0, 0.5).await;
    for _ in 0..2 {
        a.push(ours(addr, connections, 0.0, secs).await.0);
        b.push(
            wrk(addr, connections, None, secs)
                .await
                .map(|w| w.0)
                .unwrap_or(f64::NAN),
        );
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (a, b) = (mean(&a), mean(&b));
    println!(
        "bench loadgen: max throughput, GET /, {connections} connections, 2 x {secs} s each, alternating"
    );
    println!("  wrk                             {b:>10.0} req/s");
    println!("  built-in generator              {a:>10.0} req/s");
    println!("  ratio built-in/wrk              {:>10.3}", a / b);
    // Fixed rate.
    let qps = 2000.0;
    let (rate, p50, p99) = ours(addr, connections, qps, secs).await;
    let paced = wrk(
        addr,
        connections,
        Some(connections as f64 * 1000.0 / qps),
        secs,
    )
    .await;
    println!("bench loadgen: fixed rate {qps} qps, {connections} connections, {secs} s");
    println!(
        "  built-in generator   {rate:>8.0} req/s   p50 {p50:>7.3} ms   p99 {p99:>7.3} ms  (server-caused waits counted)"
    );
    match paced {
        Some((r, p50, p99)) => {
            println!(
                "  wrk (Lua delay)      {r:>8.0} req/s   p50 {p50:>7.3} ms   p99 {p99:>7.3} ms  (closed loop)"
            )
        }
        None => println!("  wrk (Lua delay)      no reading"),
    }
}

#[tokio::main]
async fn main() {
    meshery::tls::install_crypto();
    let only = std::env::args().nth(1);
    let secs: f64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    if only.is_none() || only.as_deref() == Some("http") {
        http_bench(runs, secs).await;
    }
    if only.is_none() || only.as_deref() == Some("loadgen") {
        loadgen_bench(secs).await;
    }
    if only.is_some() && only.as_deref() != Some("guard") {
        return;
    }
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
