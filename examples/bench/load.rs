//! Request rates: the built-in generator as the client (Rust, on the client's core budget),
//! and wrk for the generator's own comparison.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::http::{HeaderName, HeaderValue, Method};

use crate::procs::{Budget, cpu_secs};

/// One measurement: rate, latency and the CPU each side used (cores, 1.0 = one core busy).
#[derive(Clone, Copy, Debug, Default)]
pub struct Reading {
    pub rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub client_cpu: f64,
    pub server_cpu: f64,
}

/// A request to repeat.
#[derive(Clone)]
pub struct Load {
    pub addr: SocketAddr,
    pub pid: u32,
    pub method: Method,
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: &'static str,
}

impl Load {
    pub fn get(addr: SocketAddr, pid: u32, path: &str) -> Load {
        Load {
            addr,
            pid,
            method: Method::GET,
            path: path.to_string(),
            headers: Vec::new(),
            body: "",
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Load {
        self.headers.push((name, value.into()));
        self
    }
}

/// Max throughput of `load` over `connections` for `secs`, with the built-in generator; a
/// panic if any answer is not a success (a rate of errors measures nothing).
pub async fn ours(load: &Load, connections: usize, secs: f64) -> Reading {
    let spec = meshery::perf::loadgen::LoadSpec {
        addrs: vec![load.addr],
        uri: load.path.parse().expect("a path"),
        host: load.addr.to_string(),
        method: load.method.clone(),
        headers: load
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    HeaderName::from_static(k),
                    HeaderValue::from_str(v).expect("a header value"),
                )
            })
            .collect(),
        body: load.body.into(),
        duration: Duration::from_secs_f64(secs),
        connections,
        qps: 0.0,
        timeout: Duration::from_secs(10),
        http2: false,
        tls: None,
    };
    let me = std::process::id();
    let (c0, s0, t0) = (cpu_secs(me), cpu_secs(load.pid), Instant::now());
    let o = meshery::perf::loadgen::run(spec, Default::default(), |_| {}).await;
    let wall = t0.elapsed().as_secs_f64();
    let (c1, s1) = (cpu_secs(me), cpu_secs(load.pid));
    assert!(
        o.errors.is_empty(),
        "{} {}: {:?}",
        load.method,
        load.path,
        o.errors
    );
    assert!(
        o.ret_codes.keys().all(|c| (200..300).contains(c)),
        "{} {}: answers {:?}",
        load.method,
        load.path,
        o.ret_codes
    );
    let ms = |q: f64| o.latency.value_at_quantile(q) as f64 / 1000.0;
    Reading {
        rate: o.actual_qps(),
        p50_ms: ms(0.5),
        p99_ms: ms(0.99),
        client_cpu: (c1 - c0) / wall,
        server_cpu: (s1 - s0) / wall,
    }
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

/// wrk (one thread, on the client's CPUs) against `GET /` of `addr`; a panic when it
/// cannot run or any answer fails.
pub async fn wrk(
    addr: SocketAddr,
    pid: u32,
    budget: &Budget,
    connections: usize,
    secs: f64,
) -> Reading {
    let mut cmd = tokio::process::Command::new("wrk");
    cmd.args([
        "-t1".to_string(),
        format!("-c{connections}"),
        format!("-d{}s", secs.ceil().max(1.0) as u64),
        "--latency".to_string(),
        format!("http://{addr}/"),
    ]);
    Budget::pin(&mut cmd, &budget.client);
    let s0 = cpu_secs(pid);
    children_cpu_secs_delta();
    let t0 = Instant::now();
    let out = cmd.output().await.expect("wrk runs (apt-get install wrk)");
    let wall = t0.elapsed().as_secs_f64();
    let s1 = cpu_secs(pid);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "wrk failed:\n{text}");
    assert!(
        !text.contains("Non-2xx or 3xx responses"),
        "wrk: failed answers\n{text}"
    );
    let mut r = Reading {
        server_cpu: (s1 - s0) / wall,
        ..Default::default()
    };
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", v] => r.rate = v.parse().unwrap_or(0.0),
            ["50%", v] => r.p50_ms = wrk_ms(v).unwrap_or(f64::NAN),
            ["99%", v] => r.p99_ms = wrk_ms(v).unwrap_or(f64::NAN),
            _ => {}
        }
    }
    // wrk's own CPU: the children's time, which output() has waited for.
    r.client_cpu = children_cpu_secs_delta() / wall;
    assert!(r.rate > 0.0, "wrk: no rate\n{text}");
    r
}

/// CPU seconds of waited-for children since the last call.
fn children_cpu_secs_delta() -> f64 {
    static LAST_MICROS: AtomicU64 = AtomicU64::new(0);
    // SAFETY: getrusage fills the struct it is given.
    let now = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut u);
        let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
        us(u.ru_utime) + us(u.ru_stime)
    };
    let before = LAST_MICROS.swap(now, Ordering::Relaxed);
    now.saturating_sub(before) as f64 / 1e6
}

/// Middle value (upper middle for an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Alternating readings of a subject and its baseline: the medians of each, and the
/// median of the rate ratios of adjacent pairs, which is what the bench reports as the
/// ratio (a pair is measured within seconds, so a slow spell of this shared machine moves
/// both of its readings; the ratio of two medians would mix readings from different
/// spells).
pub struct Compared {
    pub subject: Reading,
    pub baseline: Reading,
    pub pair_ratios: Vec<f64>,
}

impl Compared {
    pub fn ratio(&self) -> f64 {
        median(self.pair_ratios.clone())
    }

    pub fn detail(&self) -> String {
        let (a, b) = (&self.subject, &self.baseline);
        let pairs: Vec<String> = self.pair_ratios.iter().map(|r| format!("{r:.3}")).collect();
        format!(
            "p50 {:.3} / {:.3} ms, p99 {:.3} / {:.3} ms; server CPU {:.2} / {:.2} cores, client CPU {:.2} / {:.2} cores; ratio per pair {}",
            a.p50_ms,
            b.p50_ms,
            a.p99_ms,
            b.p99_ms,
            a.server_cpu,
            b.server_cpu,
            a.client_cpu,
            b.client_cpu,
            pairs.join(" ")
        )
    }
}

/// `runs` alternating readings of `subject` and `baseline` (see [`Compared`]).
pub async fn compare<F, G, FF, GF>(runs: usize, mut subject: F, mut baseline: G) -> Compared
where
    F: FnMut() -> FF,
    G: FnMut() -> GF,
    FF: std::future::Future<Output = Reading>,
    GF: std::future::Future<Output = Reading>,
{
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        a.push(subject().await);
        b.push(baseline().await);
    }
    Compared {
        pair_ratios: a.iter().zip(&b).map(|(x, y)| x.rate / y.rate).collect(),
        subject: medians(&a),
        baseline: medians(&b),
    }
}

fn medians(v: &[Reading]) -> Reading {
    let m = |f: fn(&Reading) -> f64| median(v.iter().map(f).collect());
    Reading {
        rate: m(|r| r.rate),
        p50_ms: m(|r| r.p50_ms),
        p99_ms: m(|r| r.p99_ms),
        client_cpu: m(|r| r.client_cpu),
        server_cpu: m(|r| r.server_cpu),
    }
}
