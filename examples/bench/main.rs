//! `cargo xtask bench`: the figures of the request path, live streams and the load
//! generator, each as a ratio to a baseline measured in the same run (machines here are
//! noisy, so only same-run ratios mean anything).
//!
//! Every server is its own process, pinned to the servers' CPUs: the release
//! `meshery-server`, a bare axum server built like it (this binary in `baseline` mode) and
//! nginx. The client is this process, pinned to one CPU of its own on a current-thread
//! runtime; it drives requests with the built-in load generator and reports its own CPU, so
//! a client-bound reading shows as such. `--json <file>` writes the same figures;
//! `--quick` runs every part for a moment, to prove the bench works (no goal is checked).

mod baseline;
mod clusters;
#[path = "../../tests/support/database.rs"]
mod database;
#[path = "../../tests/support/kube_api.rs"]
mod kube_api;
mod load;
mod procs;
mod streams;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use load::{Compared, Load, compare, ours};
use meshery_provider::{self as refprovider, Account, ProviderConfig};
use procs::{Budget, Served};
use streams::{Arrivals, Kind};

/// Keep-alive connections of the request-rate rows.
const CONNECTIONS: usize = 16;

#[derive(Parser, Debug)]
#[command(about = "meshery-rs benchmarks: ratios to baselines measured in the same run")]
struct Args {
    /// Parts to run (all when none): http, streams, loadgen, replicas, clusters.
    #[arg(value_parser = ["http", "streams", "loadgen", "replicas", "clusters"])]
    parts: Vec<String>,
    /// A few seconds in all: every part once, tiny sizes, no goals checked.
    #[arg(long)]
    quick: bool,
    /// Also write the figures to this file as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Seconds of each request-rate run.
    #[arg(long, env = "BENCH_SECS", default_value_t = 2.0)]
    secs: f64,
    /// Alternating runs per request-rate row (medians are reported).
    #[arg(long, env = "BENCH_RUNS", default_value_t = 5)]
    runs: usize,
    /// Idle subscribers opened for the memory rows.
    #[arg(long, env = "BENCH_SUBSCRIBERS", default_value_t = 2000)]
    subscribers: usize,
    /// Subscribers of the fan-out rows.
    #[arg(long, env = "BENCH_FANOUT", default_value_t = 1000)]
    fanout: usize,
    /// Objects in the cluster whose inventory memory is measured.
    #[arg(long, env = "BENCH_INVENTORY", default_value_t = 10_000)]
    inventory: usize,
    /// Events sent in each fan-out row.
    #[arg(long, env = "BENCH_EVENTS", default_value_t = 100)]
    events: u32,
    /// The server binary (default: `meshery-server` next to this binary's folder).
    #[arg(long, env = "MESHERY_SERVER_BIN")]
    server_bin: Option<PathBuf>,
    /// An administrator's URL of a PostgreSQL server for the replicas part (cargo xtask
    /// bench starts one); each row gets a new database on it.
    #[arg(long, env = "BENCH_DATABASE_URL")]
    database_url: Option<String>,
}

/// How a figure is judged.
#[derive(Clone, Copy, Debug, serde::Serialize)]
#[serde(rename_all = "snake_case")]
enum Goal {
    /// value / baseline at least this.
    RatioAtLeast(f64),
    /// value / baseline at most this.
    RatioAtMost(f64),
    /// value at most this.
    AtMost(f64),
}

#[derive(Debug, serde::Serialize)]
struct Figure {
    key: &'static str,
    what: &'static str,
    value: f64,
    unit: &'static str,
    baseline: Option<&'static str>,
    baseline_value: Option<f64>,
    ratio: Option<f64>,
    goal: Option<Goal>,
    met: Option<bool>,
    detail: String,
}

impl Figure {
    fn new(key: &'static str, what: &'static str, value: f64, unit: &'static str) -> Figure {
        Figure {
            key,
            what,
            value,
            unit,
            baseline: None,
            baseline_value: None,
            ratio: None,
            goal: None,
            met: None,
            detail: String::new(),
        }
    }

    fn against(mut self, baseline: &'static str, value: f64) -> Figure {
        self.baseline = Some(baseline);
        self.baseline_value = Some(value);
        self.ratio = Some(self.value / value);
        self
    }

    /// Rate against a baseline read in alternation; the ratio is the median of the pairs'.
    fn compared(key: &'static str, what: &'static str, base: &'static str, c: &Compared) -> Figure {
        let mut f = Figure::new(key, what, c.subject.rate, "req/s").against(base, c.baseline.rate);
        f.ratio = Some(c.ratio());
        f.detail = c.detail();
        f
    }

    fn goal(mut self, goal: Goal) -> Figure {
        self.met = Some(match goal {
            Goal::RatioAtLeast(g) => self.ratio.is_some_and(|r| r >= g),
            Goal::RatioAtMost(g) => self.ratio.is_some_and(|r| r <= g),
            Goal::AtMost(g) => self.value <= g,
        });
        self.goal = Some(goal);
        self
    }

    fn detail(mut self, detail: String) -> Figure {
        self.detail = detail;
        self
    }
}

struct Bench {
    args: Args,
    budget: Budget,
    server_bin: PathBuf,
    figures: Vec<Figure>,
}

impl Bench {
    /// The request path against bare axum, a remote JWT against Local, GraphQL against REST.
    async fn http(&mut self) {
        let provider = refprovider::start(
            ProviderConfig {
                accounts: vec![Account::parse("alice:pw").expect("an account")],
                ..Default::default()
            },
            "127.0.0.1:0".parse().expect("an address"),
        )
        .await
        .expect("the reference provider");
        let server = Served::meshery(
            &self.server_bin,
            &self.budget,
            &["--provider-base-urls".into(), provider.url.clone()],
        )
        .await;
        let bare = Served::bare_axum(&self.budget).await;
        let token = provider.provider.issue("alice").expect("a token");
        let version = Load::get(server.addr, server.pid, "/api/system/version");
        let hello = Load::get(bare.addr, bare.pid, "/");
        let graphql = Load {
            method: axum::http::Method::POST,
            body: r#"{"query":"{ version { build } }"}"#,
            ..Load::get(server.addr, server.pid, "/api/system/graphql/query")
        }
        .header("content-type", "application/json");
        let shaped = Load {
            method: axum::http::Method::POST,
            body: r#"{"query":"{ version { build } }"}"#,
            ..Load::get(bare.addr, bare.pid, "/graphql")
        }
        .header("content-type", "application/json");
        let local_user = Load::get(server.addr, server.pid, "/api/user");
        let remote_user = local_user
            .clone()
            .header("authorization", format!("Bearer {token}"))
            .header("meshery-provider", "Reference");
        // The same request as Local with an unused header as long as the credentials: what
        // the bytes alone cost, the floor of the remote row.
        let padded_user = local_user.clone().header(
            "x-bench-pad",
            "a".repeat(format!("Bearer {token}").len() + "reference".len()),
        );
        let close = |l: &Load| l.clone().header("connection", "close");
        // Warm-up: first connections, allocator growth, the GraphQL schema's first run,
        // the first verification of the token.
        for l in [
            &version,
            &hello,
            &graphql,
            &shaped,
            &local_user,
            &remote_user,
            &padded_user,
        ] {
            ours(l, CONNECTIONS, self.args.secs.min(1.0)).await;
        }
        let (runs, secs) = (self.args.runs, self.args.secs);
        eprintln!("bench: request rates");
        // (key, what, subject, baseline, baseline's name, goal as a ratio at least)
        type Row<'a> = (
            &'static str,
            &'static str,
            Load,
            &'a Load,
            &'static str,
            Option<f64>,
        );
        let rows: [Row; 6] = [
            (
                "http.version.keepalive",
                "GET /api/system/version, keep-alive",
                version.clone(),
                &hello,
                "bare axum GET /",
                Some(0.85),
            ),
            (
                "http.user.remote_jwt",
                "GET /api/user, remote JWT (cached)",
                remote_user,
                &local_user,
                "same, Local provider",
                Some(0.95),
            ),
            (
                "http.user.padded",
                "GET /api/user, Local, unused header as long",
                padded_user,
                &local_user,
                "same, Local provider",
                None,
            ),
            (
                "http.version.close",
                "GET /api/system/version, Connection: close",
                close(&version),
                &close(&hello),
                "bare axum, close",
                Some(0.7),
            ),
            (
                "http.graphql.version",
                "GraphQL { version { build } }",
                graphql,
                &version,
                "REST version",
                Some(0.8),
            ),
            (
                "http.graphql_shaped.bare",
                "bare axum: POST JSON in, JSON out (no GraphQL)",
                shaped,
                &hello,
                "bare axum GET /",
                None,
            ),
        ];
        for (key, what, subject, base, base_name, goal) in rows {
            let c = compare(
                runs,
                || ours(&subject, CONNECTIONS, secs),
                || ours(base, CONNECTIONS, secs),
            )
            .await;
            let figure = Figure::compared(key, what, base_name, &c);
            self.figures.push(match goal {
                Some(g) => figure.goal(Goal::RatioAtLeast(g)),
                None => figure,
            });
        }
        drop(server);
        provider.stop().await;
    }

    /// Memory per idle subscriber, RSS kept after they leave, and fan-out latency and CPU.
    async fn streams(&mut self) {
        let args = [
            "--max-connections".to_string(),
            (self.args.subscribers.max(self.args.fanout) * 2 + 256).to_string(),
            "--max-subscriptions-per-user".to_string(),
            (self.args.subscribers.max(self.args.fanout) + 64).to_string(),
        ];
        let mut server = Served::meshery(&self.server_bin, &self.budget, &args).await;
        let bare = Served::bare_axum(&self.budget).await;
        let client = reqwest::Client::new();
        let n = self.args.subscribers;
        eprintln!("bench: memory per idle subscriber, {n} at a time");
        let sse = memory(Kind::Sse, &server, &bare, n, &client).await;
        let ws = memory(Kind::Ws, &server, &bare, n, &client).await;
        let bare_sse = memory(Kind::BareSse, &server, &bare, n, &client).await;
        let bare_ws = memory(Kind::BareWs, &server, &bare, n, &client).await;
        server.check_alive();
        for (m, b, key, what, base, goal) in [
            (
                sse,
                bare_sse,
                "mem.sse_idle",
                "memory per idle SSE subscriber",
                "bare axum SSE",
                25.0,
            ),
            (
                ws,
                bare_ws,
                "mem.ws_idle",
                "memory per idle GraphQL WS subscription",
                "bare axum WS",
                30.0,
            ),
        ] {
            self.figures.push(
                Figure::new(key, what, m.per_kib, "KiB")
                    .against(base, b.per_kib)
                    .goal(Goal::AtMost(goal))
                    .detail(format!(
                        "{n} open: RSS {} -> {} MiB, {} MiB after all closed ({:.0}% of the growth kept)",
                        m.before / 1024,
                        m.peak / 1024,
                        m.after / 1024,
                        m.kept_percent()
                    )),
            );
        }
        let f = self.args.fanout;
        let e = self.args.events;
        eprintln!("bench: fan-out to {f} subscribers, SSE then WebSocket");
        // Each beside the bare axum floor (a broadcast channel straight to the sockets),
        // alternating, so a slow moment of the machine shows in both.
        let a = fanout(Kind::Sse, &server, f, e, &client).await;
        let bare_a = fanout(Kind::Sse, &bare, f, e, &client).await;
        let b = fanout(Kind::Ws, &server, f, e, &client).await;
        let bare_b = fanout(Kind::Ws, &bare, f, e, &client).await;
        server.check_alive();
        let line = |x: &Fanout| {
            format!(
                "p50 {:.2} ms; first subscriber p50/p99 {:.2}/{:.2} ms, last {:.2}/{:.2} ms; server CPU {:.3} ms, client CPU {:.3} ms per event",
                x.p50_ms,
                x.first_ms[0],
                x.first_ms[1],
                x.last_ms[0],
                x.last_ms[1],
                x.server_cpu_ms,
                x.client_cpu_ms
            )
        };
        for (key, what, x, base, base_name) in [
            (
                "fanout.sse.p99",
                "event fan-out p99, SSE",
                &a,
                &bare_a,
                "bare axum SSE",
            ),
            (
                "fanout.ws.p99",
                "event fan-out p99, GraphQL WS",
                &b,
                &bare_b,
                "bare axum WS",
            ),
        ] {
            self.figures.push(
                Figure::new(key, what, x.p99_ms, "ms")
                    .against(base_name, base.p99_ms)
                    .goal(Goal::AtMost(10.0))
                    .detail(format!(
                        "{f} subscribers x {e} events: {}\n      {base_name}: {}",
                        line(x),
                        line(base)
                    )),
            );
        }
        self.figures.push(
            Figure::new(
                "fanout.ws.cpu",
                "server CPU per event fanned out, GraphQL WS",
                b.server_cpu_ms,
                "ms",
            )
            .against("same over SSE", a.server_cpu_ms)
            .goal(Goal::RatioAtMost(1.5))
            .detail(format!("{f} subscribers")),
        );
    }

    /// Storage and replicas: event write throughput on SQLite and on PostgreSQL, and how
    /// long an event posted to one replica takes to reach subscribers spread over two.
    async fn replicas(&mut self) {
        let Some(admin) = self.args.database_url.clone() else {
            panic!("the replicas part needs --database-url (cargo xtask bench starts PostgreSQL)");
        };
        let keys = tempfile::tempdir().expect("a temporary directory");
        let key = keys.path().join("secret.key");
        std::fs::write(&key, [7u8; 32]).expect("a key file");
        let on = |database: Option<&str>| {
            let mut args = vec![
                "--secret-key-file".to_string(),
                key.display().to_string(),
                "--max-connections".to_string(),
                (self.args.fanout * 2 + 256).to_string(),
            ];
            if let Some(url) = database {
                args.extend(["--database-url".to_string(), url.to_string()]);
            }
            args
        };
        eprintln!("bench: event writes, SQLite then PostgreSQL");
        let sqlite = Served::meshery(&self.server_bin, &self.budget, &on(None)).await;
        let pg_url = database::fresh(&admin, "bench").await;
        let postgres = Served::meshery(&self.server_bin, &self.budget, &on(Some(&pg_url))).await;
        let write = |s: &Served| {
            Load {
                method: axum::http::Method::POST,
                body: r#"{"category":"bench","action":"write","severity":"debug","description":"write"}"#,
                ..Load::get(s.addr, s.pid, "/api/system/events")
            }
            .header("content-type", "application/json")
        };
        let (w_sqlite, w_postgres) = (write(&sqlite), write(&postgres));
        for l in [&w_sqlite, &w_postgres] {
            ours(l, CONNECTIONS, self.args.secs.min(1.0)).await;
        }
        let c = compare(
            self.args.runs,
            || ours(&w_postgres, CONNECTIONS, self.args.secs),
            || ours(&w_sqlite, CONNECTIONS, self.args.secs),
        )
        .await;
        self.figures.push(Figure::compared(
            "db.events.write",
            "event writes (POST), PostgreSQL",
            "same, SQLite",
            &c,
        ));
        drop(sqlite);
        drop(postgres);

        let f = self.args.fanout;
        let e = self.args.events;
        eprintln!("bench: an event posted to one replica, {f} SSE subscribers over two");
        let url = database::fresh(&admin, "bench").await;
        let mut one = Served::meshery(&self.server_bin, &self.budget, &on(Some(&url))).await;
        let mut two = Served::meshery(&self.server_bin, &self.budget, &on(Some(&url))).await;
        let client = reqwest::Client::new();
        let x = fanout_over(&[&one, &two], f, e, &client).await;
        one.check_alive();
        two.check_alive();
        self.figures.push(
            Figure::new(
                "replicas.fanout.p99",
                "event to subscribers on 2 replicas, p99",
                x.p99_ms,
                "ms",
            )
            .goal(Goal::AtMost(100.0))
            .detail(format!(
                "{f} SSE subscribers, half on each replica, {e} events posted to the first: p50 {:.2} ms; first subscriber p50/p99 {:.2}/{:.2} ms, last {:.2}/{:.2} ms; CPU of both replicas {:.3} ms per event",
                x.p50_ms, x.first_ms[0], x.first_ms[1], x.last_ms[0], x.last_ms[1], x.server_cpu_ms
            )),
        );
    }

    /// The cluster layer against the test API server (in this process, on the client's
    /// CPU): inventory memory per object, then deploy time against kubectl.
    async fn clusters(&mut self) {
        let api = kube_api::KubeApi::start(None).await;
        let n = self.args.inventory;
        api.seed_config_maps("bench", n);
        let mut server = Served::meshery(&self.server_bin, &self.budget, &[]).await;
        // Warm: the first requests, the first connection to the cluster's API server.
        reqwest::get(format!(
            "http://{}/api/system/meshsync/resources",
            server.addr
        ))
        .await
        .expect("an answer");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = server.rss_kib();
        eprintln!("bench: inventory of {n} objects");
        clusters::upload(server.addr, &api, "bench").await;
        // The two namespaces, the namespace `bench` and its config maps.
        let want = i64::try_from(n).unwrap_or(i64::MAX) + 3;
        let took = clusters::until_inventory(server.addr, want, Duration::from_secs(600)).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let after = server.rss_kib();
        let per_10k = (after.saturating_sub(before)) as f64 / n as f64 * 10_000.0 / 1024.0;
        self.figures.push(
            Figure::new(
                "inventory.mem_per_10k",
                "server memory held per 10,000 inventory objects",
                per_10k,
                "MiB",
            )
            .detail(format!(
                "{n} config maps listed, watched and stored in {:.2} s ({:.0} objects/s); RSS {} -> {} MiB",
                took.as_secs_f64(),
                n as f64 / took.as_secs_f64(),
                before / 1024,
                after / 1024
            )),
        );
        server.check_alive();
        eprintln!("bench: deploying the sample design, against kubectl apply --server-side");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, api.kubeconfig("bench")).expect("a kubeconfig");
        let manifests = clusters::sample_file(dir.path());
        let pattern = clusters::import_sample(server.addr).await;
        let (ours, kubectl) = clusters::deploy_times(
            &api,
            server.addr,
            &pattern,
            &kubeconfig,
            &manifests,
            self.args.runs.max(3),
        )
        .await;
        self.figures.push(
            Figure::new(
                "deploy.sample",
                "deploy the sample design (3 components)",
                ours,
                "ms",
            )
            .against("kubectl apply --server-side, same manifests", kubectl)
            .detail("median of alternating runs, each after an undeploy or kubectl delete".into()),
        );
        server.check_alive();
        drop(server);
        api.stop().await;
    }

    /// The built-in generator against wrk, both on the client's CPU, nginx the target.
    async fn loadgen(&mut self) {
        eprintln!("bench: the load generator against wrk");
        let nginx = Served::nginx(&self.budget).await;
        let target = Load::get(nginx.addr, nginx.pid, "/");
        ours(&target, CONNECTIONS, self.args.secs.min(1.0)).await;
        let budget = self.budget.clone();
        let secs = self.args.secs;
        let c = compare(
            self.args.runs,
            || ours(&target, CONNECTIONS, secs),
            || load::wrk(nginx.addr, nginx.pid, &budget, CONNECTIONS, secs),
        )
        .await;
        self.figures.push(
            Figure::compared(
                "loadgen.nginx",
                "built-in load generator, max rate, nginx",
                "wrk -t1",
                &c,
            )
            .goal(Goal::RatioAtLeast(1.0)),
        );
    }

    fn print(&self) {
        let a = &self.args;
        println!(
            "bench: client on CPU {:?}, servers on CPU {:?}; rates: {} connections, medians of {} alternating runs of {} s; {} idle subscribers; fan-out {} x {} events",
            self.budget.client,
            self.budget.servers,
            CONNECTIONS,
            a.runs,
            a.secs,
            a.subscribers,
            a.fanout,
            a.events
        );
        println!(
            "  {:<46} {:>10} {:<5}  {:<22} {:>10}  {:>7}  {:<14}",
            "what", "value", "", "baseline", "value", "ratio", "goal"
        );
        for f in &self.figures {
            let goal = match f.goal {
                Some(Goal::RatioAtLeast(g)) => format!("ratio >= {g}"),
                Some(Goal::RatioAtMost(g)) => format!("ratio <= {g}"),
                Some(Goal::AtMost(g)) => format!("<= {g} {}", f.unit),
                None => String::new(),
            };
            let verdict = match (self.args.quick, f.met) {
                (true, _) | (_, None) => "",
                (false, Some(true)) => "ok",
                (false, Some(false)) => "MISSED",
            };
            println!(
                "  {:<46} {:>10.2} {:<5}  {:<22} {:>10}  {:>7}  {:<14} {}",
                f.what,
                f.value,
                f.unit,
                f.baseline.unwrap_or(""),
                f.baseline_value
                    .map(|v| format!("{v:.2}"))
                    .unwrap_or_default(),
                f.ratio.map(|r| format!("{r:.3}")).unwrap_or_default(),
                goal,
                verdict
            );
            if !f.detail.is_empty() {
                println!("      {}", f.detail);
            }
        }
    }
}

/// RSS of the server (KiB) before, with `n` idle subscribers, and after they left.
struct Memory {
    per_kib: f64,
    before: u64,
    peak: u64,
    after: u64,
}

impl Memory {
    fn kept_percent(&self) -> f64 {
        let grown = self.peak.saturating_sub(self.before).max(1) as f64;
        self.after.saturating_sub(self.before) as f64 * 100.0 / grown
    }
}

async fn memory(
    kind: Kind,
    server: &Served,
    bare: &Served,
    n: usize,
    client: &reqwest::Client,
) -> Memory {
    let target = if matches!(kind, Kind::Sse | Kind::Ws) {
        server
    } else {
        bare
    };
    let live = matches!(kind, Kind::Sse | Kind::Ws);
    // Warm-up: lazily built state and the allocator's first growth.
    let arrivals = Arc::new(Arrivals::default());
    let warm = streams::open_many(kind, target.addr, 16.min(n), &arrivals).await;
    if live {
        streams::barrier(client, target.addr, warm.len(), &arrivals).await;
    }
    drop(warm);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = target.rss_kib();
    let arrivals = Arc::new(Arrivals::default());
    let subs = streams::open_many(kind, target.addr, n, &arrivals).await;
    if live {
        streams::barrier(client, target.addr, n, &arrivals).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let peak = target.rss_kib();
    drop(subs);
    // Time for the server to see the closes and give memory back.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let after = target.rss_kib();
    Memory {
        per_kib: peak.saturating_sub(before) as f64 / n.max(1) as f64,
        before,
        peak,
        after,
    }
}

struct Fanout {
    p50_ms: f64,
    p99_ms: f64,
    /// p50 and p99 over events of the time until the first subscriber had it.
    first_ms: [f64; 2],
    /// The same until the last subscriber had it.
    last_ms: [f64; 2],
    server_cpu_ms: f64,
    client_cpu_ms: f64,
}

/// `events` events, one at a time, each to `subscribers` subscribers of `kind`: latency from
/// the POST that records it to each arrival, and CPU per event.
async fn fanout(
    kind: Kind,
    server: &Served,
    subscribers: usize,
    events: u32,
    client: &reqwest::Client,
) -> Fanout {
    let arrivals = Arc::new(Arrivals::default());
    let subs = streams::open_many(kind, server.addr, subscribers, &arrivals).await;
    measure(&[server], subs, arrivals, subscribers, events, client).await
}

/// The same over SSE with the subscribers spread evenly over `servers` (replicas of one
/// database); events are posted to the first.
async fn fanout_over(
    servers: &[&Served],
    subscribers: usize,
    events: u32,
    client: &reqwest::Client,
) -> Fanout {
    let arrivals = Arc::new(Arrivals::default());
    let mut subs = Vec::new();
    for (i, server) in servers.iter().enumerate() {
        let share = subscribers / servers.len() + usize::from(i < subscribers % servers.len());
        subs.extend(streams::open_many(Kind::Sse, server.addr, share, &arrivals).await);
    }
    measure(servers, subs, arrivals, subscribers, events, client).await
}

async fn measure(
    servers: &[&Served],
    subs: Vec<streams::Subscriber>,
    arrivals: Arc<Arrivals>,
    subscribers: usize,
    events: u32,
    client: &reqwest::Client,
) -> Fanout {
    let server = servers[0];
    let cpu = || servers.iter().map(|s| s.cpu_secs()).sum::<f64>();
    streams::barrier(client, server.addr, subscribers, &arrivals).await;
    arrivals.take();
    let me = std::process::id();
    let (s0, c0) = (cpu(), procs::cpu_secs(me));
    let mut sent = Vec::with_capacity(events as usize);
    for seq in 1..=events {
        sent.push(Instant::now());
        streams::post(client, server.addr, seq).await;
        let want = subscribers * seq as usize;
        let done = arrivals.until_count(want, Duration::from_secs(10)).await;
        assert!(done, "event {seq} reached {} of {want}", arrivals.count());
    }
    let (s1, c1) = (cpu(), procs::cpu_secs(me));
    drop(subs);
    let histogram =
        || hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
    let mut h = histogram();
    // Per event, the time until its first and its last subscriber had it.
    let mut spans = vec![(u64::MAX, 0u64); events as usize];
    for (seq, at) in arrivals.take() {
        let from = sent[seq as usize - 1];
        let us = at.saturating_duration_since(from).as_micros().max(1) as u64;
        h.record(us).expect("a latency in range");
        let span = &mut spans[seq as usize - 1];
        *span = (span.0.min(us), span.1.max(us));
    }
    let (mut first, mut last) = (histogram(), histogram());
    for (a, b) in spans {
        first.record(a).expect("in range");
        last.record(b).expect("in range");
    }
    let ms = |h: &hdrhistogram::Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    Fanout {
        p50_ms: ms(&h, 0.5),
        p99_ms: ms(&h, 0.99),
        first_ms: [ms(&first, 0.5), ms(&first, 0.99)],
        last_ms: [ms(&last, 0.5), ms(&last, 0.99)],
        server_cpu_ms: (s1 - s0) * 1000.0 / events as f64,
        client_cpu_ms: (c1 - c0) * 1000.0 / events as f64,
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("baseline") {
        let port = argv
            .get(2)
            .and_then(|p| p.parse().ok())
            .expect("baseline <port>");
        baseline::run(port);
        return;
    }
    let mut args = Args::parse();
    if args.quick {
        args.secs = 0.3;
        args.runs = 1;
        args.subscribers = 20;
        args.fanout = 20;
        args.events = 3;
        args.inventory = 200;
    }
    raise_fd_limit();
    let budget = Budget::plan();
    // The client's threads (this one and those it starts) stay on the client's CPUs.
    budget.pin_client();
    let server_bin = args.server_bin.clone().unwrap_or_else(|| {
        let exe = std::env::current_exe().expect("this binary");
        exe.parent()
            .and_then(|examples| examples.parent())
            .map(|profile| profile.join("meshery-server"))
            .expect("the target folder")
    });
    assert!(
        server_bin.exists(),
        "{} is missing: build it (cargo xtask bench does)",
        server_bin.display()
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let all = args.parts.is_empty();
    let wants = |p: &str| all || args.parts.iter().any(|x| x == p);
    let (http, streams_part, loadgen) = (wants("http"), wants("streams"), wants("loadgen"));
    let replicas = wants("replicas");
    let clusters_part = wants("clusters");
    let mut bench = Bench {
        args,
        budget,
        server_bin,
        figures: Vec::new(),
    };
    rt.block_on(async {
        meshery::tls::install_crypto();
        if http {
            bench.http().await;
        }
        if streams_part {
            bench.streams().await;
        }
        if loadgen {
            bench.loadgen().await;
        }
        if replicas {
            bench.replicas().await;
        }
        if clusters_part {
            bench.clusters().await;
        }
    });
    bench.print();
    for f in &bench.figures {
        assert!(f.value.is_finite(), "{}: no reading", f.key);
    }
    if let Some(path) = &bench.args.json {
        let doc = serde_json::json!({
            "commit": option_env!("MESHERY_COMMIT_SHA").unwrap_or(""),
            "quick": bench.args.quick,
            "client_cpus": bench.budget.client,
            "server_cpus": bench.budget.servers,
            "figures": bench.figures,
        });
        let text = serde_json::to_string_pretty(&doc).expect("JSON");
        std::fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        println!("bench: figures written to {}", path.display());
    }
}

/// Thousands of subscribers need as many descriptors: the soft limit goes up to the hard.
fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit fill and read the struct given.
    unsafe {
        let mut l: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 && l.rlim_cur < l.rlim_max {
            l.rlim_cur = l.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        }
    }
}
