//! Performance management: load tests on the built-in generator, run as tasks of their
//! own (a client that disconnects does not stop them), bounded by limits and a target
//! policy, streamed as frames, stored per user.

pub mod h1;
pub mod loadgen;
pub mod report;

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use hyper::http::{HeaderName, HeaderValue, Method};

use crate::{policy, tls};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::bus::{Bus, Notice, Topic};
use crate::fault::{Internal, OrInternal};
use crate::models::{PerfFrame, PerfFrameStatus, PerfResult, PerfRun};
use crate::session::Session;
use crate::store::{Listing, Store};
use loadgen::{LoadSpec, Snapshot};

/// Operator limits on load tests.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_duration: Duration,
    pub max_connections: usize,
    pub max_qps: f64,
    pub max_runs_per_user: usize,
    /// Runs at once on this server, all users together.
    pub max_runs_total: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_duration: Duration::from_secs(600),
            max_connections: 256,
            max_qps: 100_000.0,
            max_runs_per_user: 2,
            max_runs_total: 8,
        }
    }
}

/// Names Meshery's clients send; all run on the built-in generator.
pub const GENERATORS: &[&str] = &["meshery", "fortio", "wrk2", "nighthawk"];

/// A test to run, checked and resolved.
#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    pub url: String,
    pub generator: String,
    pub spec: LoadSpec,
    pub profile_id: Option<String>,
}

/// What a request asks for, before checks.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub name: Option<String>,
    pub url: String,
    pub duration: Duration,
    pub connections: i64,
    pub qps: f64,
    pub generator: Option<String>,
    pub method: Option<String>,
    pub headers: Vec<(String, String)>,
    pub cookies: Option<String>,
    pub content_type: Option<String>,
    pub body: Option<String>,
    pub http2: bool,
    /// https: accept any certificate (self-signed test services).
    pub insecure: bool,
    /// Per request; default 30 s.
    pub timeout: Option<Duration>,
    pub profile_id: Option<String>,
}

struct RunEntry {
    owner: String,
    frames: broadcast::Sender<PerfFrame>,
    cancel: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

pub struct Perf {
    store: Store,
    bus: Bus,
    pub limits: Limits,
    targets: policy::Targets,
    /// The runs this replica executes.
    runs: Mutex<HashMap<String, RunEntry>>,
    /// The owner of every stored result, on any replica (GraphQL subscriptions filter by
    /// it); `None`: any owner's may have changed.
    saved: broadcast::Sender<Option<String>>,
    /// The owner of every profile saved or deleted, on any replica; `None`: any.
    profiles_changed: broadcast::Sender<Option<String>>,
    /// Ids of runs on other replicas with new frames (`*`: any), for their followers here.
    remote_frames: broadcast::Sender<String>,
    /// Ended on shutdown: no new runs.
    closing: CancellationToken,
    events: Events,
}

/// Why a load-test or profile operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PerfError {
    /// The request or profile breaks a rule or a limit.
    #[error("{0}")]
    Invalid(String),
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error("{running} of your load tests are running; the limit is {limit}")]
    TooManyOfYours { running: usize, limit: usize },
    #[error("{running} load tests are running on this server, its limit")]
    TooManyOnServer { running: usize },
    #[error("no result {0:?}")]
    NoResult(String),
    #[error("no profile {0:?}")]
    NoProfile(String),
    #[error(transparent)]
    Target(#[from] policy::TargetError),
    #[error(transparent)]
    Internal(#[from] Internal),
}

fn bad(message: impl Into<String>) -> PerfError {
    PerfError::Invalid(message.into())
}

/// Parses `t` (`30`, `30s`, `2m`, `1h`) with the unit `dur` for a bare number.
pub fn parse_duration(t: Option<&str>, dur: Option<&str>) -> Result<Duration, PerfError> {
    let Some(t) = t.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(Duration::from_secs(30));
    };
    let (number, unit) = match t.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&t[..i], &t[i..]),
        None => (t, dur.unwrap_or("s")),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| bad(format!("duration {t:?} is not a number")))?;
    let scale = match unit.trim() {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        other => return Err(bad(format!("duration unit {other:?}: use h, m or s"))),
    };
    if !value.is_finite() || value <= 0.0 {
        return Err(bad(format!("duration {t:?} must be positive")));
    }
    Ok(Duration::from_secs_f64(value * scale))
}

/// How often a replica renews its runs' heartbeat.
const HEARTBEAT: Duration = Duration::from_secs(10);
/// A run whose heartbeat is older is taken for dead (its replica stopped): it no longer
/// counts against its user's limit, is not listed, and its followers are told.
const LIVE_MS: i64 = 30_000;
/// Ended runs' frames are kept this long for followers that are behind.
const KEEP_ENDED_MS: i64 = 10 * 60_000;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Perf {
    pub fn new(
        store: Store,
        limits: Limits,
        targets: policy::Targets,
        events: Events,
        bus: Bus,
    ) -> Arc<Self> {
        let perf = Arc::new(Perf {
            store,
            bus,
            limits,
            targets,
            runs: Mutex::new(HashMap::new()),
            saved: broadcast::channel(64).0,
            profiles_changed: broadcast::channel(64).0,
            remote_frames: broadcast::channel(256).0,
            closing: CancellationToken::new(),
            events,
        });
        let weak = Arc::downgrade(&perf);
        perf.bus.on(Topic::Perf, move |notice| {
            if let Some(perf) = weak.upgrade() {
                perf.heard(notice);
            }
            std::future::ready(())
        });
        tokio::spawn(Self::upkeep(Arc::downgrade(&perf), perf.closing.clone()));
        perf
    }

    /// Another replica's notice: a cancel for one of our runs, new frames for followers
    /// here, or a changed result or profile list.
    fn heard(&self, notice: Notice) {
        let key = match notice {
            Notice::Changed { key } => key,
            Notice::Resync => {
                let _ = self.remote_frames.send("*".into());
                let _ = self.saved.send(None);
                let _ = self.profiles_changed.send(None);
                return;
            }
        };
        let Some((verb, id)) = key.split_once(':') else {
            return;
        };
        match verb {
            "cancel" => {
                if let Some(run) = self.runs.lock().get(id) {
                    run.cancel.cancel();
                }
            }
            "frame" => {
                let _ = self.remote_frames.send(id.to_string());
            }
            "results" => {
                let _ = self.saved.send(Some(id.to_string()));
            }
            "profiles" => {
                let _ = self.profiles_changed.send(Some(id.to_string()));
            }
            _ => {}
        }
    }

    /// Renews this replica's runs' heartbeat and forgets old runs, until shutdown.
    async fn upkeep(perf: std::sync::Weak<Perf>, closing: CancellationToken) {
        let mut tick = tokio::time::interval(HEARTBEAT);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = closing.cancelled() => return,
                _ = tick.tick() => {}
            }
            let Some(perf) = perf.upgrade() else { return };
            let now = now_ms();
            let busy = !perf.runs.lock().is_empty();
            if busy && let Err(e) = perf.store.heartbeat_runs(perf.bus.replica(), now).await {
                tracing::warn!(error = %e, "renewing load tests' heartbeat");
            }
            if let Err(e) = perf
                .store
                .prune_runs(now - KEEP_ENDED_MS, now - 6 * LIVE_MS)
                .await
            {
                tracing::debug!(error = %e, "forgetting old load test runs");
            }
        }
    }

    /// Checks a request against the limits and the target policy; resolves the target.
    pub async fn plan(&self, r: Request) -> Result<Plan, PerfError> {
        let generator = r
            .generator
            .clone()
            .unwrap_or_else(|| "meshery".into())
            .to_ascii_lowercase();
        if !GENERATORS.contains(&generator.as_str()) {
            return Err(bad(format!(
                "unknown load generator {generator:?}; use one of {}",
                GENERATORS.join(", ")
            )));
        }
        if r.duration > self.limits.max_duration {
            return Err(bad(format!(
                "duration {:?} is over the limit of {:?}",
                r.duration, self.limits.max_duration
            )));
        }
        if r.connections < 1 || r.connections as usize > self.limits.max_connections {
            return Err(bad(format!(
                "connections must be from 1 to {} (got {})",
                self.limits.max_connections, r.connections
            )));
        }
        if !r.qps.is_finite() || r.qps < 0.0 || r.qps > self.limits.max_qps {
            return Err(bad(format!(
                "qps must be from 0 (max) to {} (got {})",
                self.limits.max_qps, r.qps
            )));
        }
        let target = self.targets.resolve(&r.url).await?;
        let method = match &r.method {
            Some(m) => Method::from_bytes(m.trim().to_ascii_uppercase().as_bytes())
                .map_err(|_| bad(format!("method {m:?} is not an HTTP method")))?,
            None if r.body.as_deref().is_some_and(|b| !b.is_empty()) => Method::POST,
            None => Method::GET,
        };
        let mut headers = Vec::new();
        for (k, v) in &r.headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| bad(format!("header name {k:?} is invalid")))?;
            let value = HeaderValue::from_str(v)
                .map_err(|_| bad(format!("header {k} has an invalid value")))?;
            headers.push((name, value));
        }
        if let Some(c) = r.cookies.as_deref().filter(|c| !c.is_empty()) {
            let value =
                HeaderValue::from_str(c).map_err(|_| bad("cookies have an invalid value"))?;
            headers.push((hyper::http::header::COOKIE, value));
        }
        if let Some(ct) = r.content_type.as_deref().filter(|c| !c.is_empty()) {
            let value = HeaderValue::from_str(ct).map_err(|_| bad("contentType is invalid"))?;
            headers.push((hyper::http::header::CONTENT_TYPE, value));
        }
        let name = r
            .name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| format!("{} {}", method, r.url));
        Ok(Plan {
            name,
            url: r.url.clone(),
            generator,
            profile_id: r.profile_id.clone(),
            spec: LoadSpec {
                addrs: target.addrs,
                uri: target.uri,
                host: target.host,
                method,
                headers,
                body: r.body.clone().unwrap_or_default().into(),
                duration: r.duration,
                connections: r.connections as usize,
                qps: r.qps,
                timeout: match r.timeout {
                    None => Duration::from_secs(30),
                    Some(t) if t <= Duration::from_secs(300) => t,
                    Some(t) => return Err(bad(format!("timeout {t:?} is over the limit of 5m"))),
                },
                http2: r.http2,
                tls: match target.tls_name {
                    None => None,
                    Some(name) => {
                        let config = tls::client_config(r.http2, r.insecure)
                            .or_internal("configuring TLS")?;
                        let name = rustls::pki_types::ServerName::try_from(name)
                            .map_err(|e| bad(format!("{} is not a TLS server name: {e}", r.url)))?;
                        Some((config, name))
                    }
                },
            },
        })
    }

    /// Starts a run for the session's user; returns its id and its frames, which end
    /// with the stored result (or an error).
    pub async fn start(
        self: &Arc<Self>,
        session: &Session,
        plan: Plan,
    ) -> Result<(PerfRun, futures_util::stream::BoxStream<'static, PerfFrame>), PerfError> {
        if self.closing.is_cancelled() {
            return Err(PerfError::ShuttingDown);
        }
        let owner = session.owner();
        let user_id = session.user.id.clone();
        let run_id = uuid::Uuid::new_v4().to_string();
        let (frames, rx) = broadcast::channel::<PerfFrame>(64);
        let cancel = self.closing.child_token();
        let info = PerfRun {
            run_id: run_id.clone(),
            name: plan.name.clone(),
            url: plan.url.clone(),
            started_at: chrono::Utc::now(),
        };
        {
            let mut runs = self.runs.lock();
            if runs.len() >= self.limits.max_runs_total {
                return Err(PerfError::TooManyOnServer {
                    running: runs.len(),
                });
            }
            runs.insert(
                run_id.clone(),
                RunEntry {
                    owner: owner.clone(),
                    frames: frames.clone(),
                    cancel: cancel.clone(),
                    task: None,
                },
            );
        }
        // The user's limit counts runs on every replica: admitted by the database.
        let now = now_ms();
        let admitted = match serde_json::to_string(&info) {
            Ok(doc) => self
                .store
                .begin_run(
                    &run_id,
                    &owner,
                    self.bus.replica(),
                    &doc,
                    &report::stamp(info.started_at),
                    now,
                    now - LIVE_MS,
                    self.limits.max_runs_per_user,
                )
                .await
                .or_internal("recording a load test"),
            Err(e) => Err(Internal::new("encoding a load test", e)),
        };
        match admitted {
            Ok(Ok(())) => {}
            Ok(Err(running)) => {
                self.runs.lock().remove(&run_id);
                return Err(PerfError::TooManyOfYours {
                    running,
                    limit: self.limits.max_runs_per_user,
                });
            }
            Err(e) => {
                self.runs.lock().remove(&run_id);
                return Err(e.into());
            }
        }
        // Every frame is also stored, in order, for followers on other replicas.
        let (stored, to_store) = tokio::sync::mpsc::unbounded_channel::<PerfFrame>();
        let writer = tokio::spawn(self.clone().store_frames(run_id.clone(), to_store));
        let frame = |status, message: String, result: Option<PerfResult>, run_id: &str| PerfFrame {
            status,
            message,
            result,
            run_id: Some(run_id.to_string()),
        };
        let first = frame(
            PerfFrameStatus::Info,
            format!(
                "starting {} for {:?} with {} connection(s) at {}",
                plan.url,
                plan.spec.duration,
                plan.spec.connections,
                if plan.spec.qps > 0.0 {
                    format!("{} qps", plan.spec.qps)
                } else {
                    "max qps".into()
                }
            ),
            None,
            &run_id,
        );
        let _ = stored.send(first.clone());
        let this = self.clone();
        let id = run_id.clone();
        let task = tokio::spawn(async move {
            let progress_frames = frames.clone();
            let progress_stored = stored.clone();
            let progress_id = id.clone();
            let outcome = loadgen::run(plan.spec.clone(), cancel.clone(), move |s: Snapshot| {
                let frame = PerfFrame {
                    status: PerfFrameStatus::Info,
                    message: format!(
                        "{:.0} s: {} requests, {} errors",
                        s.elapsed.as_secs_f64(),
                        s.requests,
                        s.errors
                    ),
                    result: None,
                    run_id: Some(progress_id.clone()),
                };
                let _ = progress_stored.send(frame.clone());
                let _ = progress_frames.send(frame);
            })
            .await;
            let result = report::result(&id, &user_id, &plan, &outcome);
            let last = match this.save(&owner, &plan, &result).await {
                Ok(()) => frame(
                    PerfFrameStatus::Success,
                    format!(
                        "{} {} requests at {:.1} qps{}",
                        if outcome.cancelled {
                            "cancelled after"
                        } else {
                            "done:"
                        },
                        outcome.requests,
                        outcome.actual_qps(),
                        if outcome.unsent > 0 {
                            format!(
                                "; {} requests could not be sent on time (the target was slower than the rate)",
                                outcome.unsent
                            )
                        } else {
                            String::new()
                        }
                    ),
                    Some(result),
                    &id,
                ),
                Err(e) => {
                    tracing::error!(run = %id, error = ?e, "the result was not saved");
                    frame(PerfFrameStatus::Error, e.to_string(), None, &id)
                }
            };
            let (severity, action) = match (&last.status, outcome.cancelled) {
                (PerfFrameStatus::Success, false) => (EventSeverity::Success, "run"),
                (PerfFrameStatus::Success, true) => (EventSeverity::Warning, "cancel"),
                _ => (EventSeverity::Error, "run"),
            };
            let event = NewEvent::new(
                "performance",
                action,
                severity,
                format!("Load test {}: {}", plan.name, last.message),
            )
            .acted_upon(id.clone())
            .meta("url", plan.url.clone())
            .meta("requests", outcome.requests);
            this.events.note_for(&owner, &user_id, event).await;
            // The last frame is stored and the run marked ended before anyone is sent
            // it, so whoever sees it sees the run over (not listed, not counted).
            let _ = stored.send(last.clone());
            drop(stored);
            let _ = writer.await;
            this.runs.lock().remove(&id);
            let _ = frames.send(last);
        });
        if let Some(entry) = self.runs.lock().get_mut(&run_id) {
            entry.task = Some(task);
        }
        let rest = tokio_stream::wrappers::BroadcastStream::new(rx)
            .filter_map(|f| std::future::ready(f.ok()));
        Ok((
            info,
            until_last(
                futures_util::stream::once(std::future::ready(first))
                    .chain(rest)
                    .boxed(),
            ),
        ))
    }

    /// Stores a run's frames in order and tells other replicas; after the last one, marks
    /// the run ended.
    async fn store_frames(
        self: Arc<Self>,
        run_id: String,
        mut frames: tokio::sync::mpsc::UnboundedReceiver<PerfFrame>,
    ) {
        let notice = format!("frame:{run_id}");
        let mut n = 0;
        while let Some(frame) = frames.recv().await {
            n += 1;
            let stored = match serde_json::to_string(&frame) {
                Ok(doc) => self.store.add_run_frame(&run_id, n, &doc).await,
                Err(e) => {
                    tracing::warn!(run = %run_id, error = %e, "encoding a frame");
                    continue;
                }
            };
            if let Err(e) = stored {
                tracing::warn!(run = %run_id, error = %e, "storing a frame");
            }
            if frame.status != PerfFrameStatus::Info
                && let Err(e) = self.store.end_run(&run_id, now_ms()).await
            {
                tracing::warn!(run = %run_id, error = %e, "marking a run ended");
            }
            self.bus.publish(Topic::Perf, &notice).await;
        }
    }

    async fn save(&self, owner: &str, plan: &Plan, result: &PerfResult) -> Result<(), PerfError> {
        let doc = serde_json::to_string(result).or_internal("encoding a result")?;
        self.store
            .insert_perf_result(
                &result.id,
                owner,
                plan.profile_id.as_deref(),
                &result.name,
                &doc,
                &report::stamp(result.created_at),
            )
            .await
            .or_internal("saving a result")?;
        let _ = self.saved.send(Some(owner.to_string()));
        self.bus
            .publish(Topic::Perf, &format!("results:{owner}"))
            .await;
        Ok(())
    }

    pub fn saved(&self) -> broadcast::Receiver<Option<String>> {
        self.saved.subscribe()
    }

    pub fn profiles_changed(&self) -> broadcast::Receiver<Option<String>> {
        self.profiles_changed.subscribe()
    }

    async fn profiles_changed_by(&self, owner: String) {
        self.bus
            .publish(Topic::Perf, &format!("profiles:{owner}"))
            .await;
        let _ = self.profiles_changed.send(Some(owner));
    }

    /// The coming frames of one of the session user's running tests, on this replica or
    /// another; the stream ends after the last frame. `None`: no such run in progress.
    pub async fn follow(
        &self,
        session: &Session,
        run_id: &str,
    ) -> Result<Option<BoxStream<'static, PerfFrame>>, PerfError> {
        let owner = session.owner();
        let local = self
            .runs
            .lock()
            .get(run_id)
            .filter(|r| r.owner == owner)
            .map(|r| r.frames.subscribe());
        if let Some(rx) = local {
            return Ok(Some(until_last(
                tokio_stream::wrappers::BroadcastStream::new(rx)
                    .filter_map(|f| std::future::ready(f.ok()))
                    .boxed(),
            )));
        }
        // Subscribed before reading where the run is, so no new frame is missed.
        let wake = self.remote_frames.subscribe();
        if !self.in_progress_elsewhere(&owner, run_id).await? {
            return Ok(None);
        }
        let last = self
            .store
            .last_run_frame(run_id)
            .await
            .or_internal("reading a load test")?;
        let remote = Remote {
            store: self.store.clone(),
            owner,
            run_id: run_id.to_string(),
            last,
            wake,
            backlog: Default::default(),
        };
        Ok(Some(until_last(
            futures_util::stream::unfold(remote, Remote::next).boxed(),
        )))
    }

    /// The session user's runs in progress, on every replica, oldest first.
    pub async fn runs(&self, session: &Session) -> Result<Vec<PerfRun>, PerfError> {
        let docs = self
            .store
            .live_runs(&session.owner(), now_ms() - LIVE_MS)
            .await
            .or_internal("listing load tests")?;
        docs.iter()
            .map(|d| serde_json::from_str(d).or_internal("decoding a load test"))
            .collect::<Result<Vec<PerfRun>, _>>()
            .map_err(Into::into)
    }

    /// Cancels one of the session user's runs, here or (by a notice) on the replica that
    /// runs it; false when there is none in progress with that id.
    pub async fn cancel(&self, session: &Session, run_id: &str) -> Result<bool, PerfError> {
        let owner = session.owner();
        if let Some(r) = self.runs.lock().get(run_id).filter(|r| r.owner == owner) {
            r.cancel.cancel();
            return Ok(true);
        }
        if !self.in_progress_elsewhere(&owner, run_id).await? {
            return Ok(false);
        }
        self.bus
            .publish(Topic::Perf, &format!("cancel:{run_id}"))
            .await;
        Ok(true)
    }

    /// Whether an owner's run is in progress on a replica that is alive.
    async fn in_progress_elsewhere(&self, owner: &str, run_id: &str) -> Result<bool, PerfError> {
        let state = self
            .store
            .run_state(owner, run_id)
            .await
            .or_internal("reading a load test")?;
        Ok(matches!(state, Some((heartbeat, None)) if heartbeat > now_ms() - LIVE_MS))
    }

    /// Cancels every run and waits until each has stored what it measured.
    pub async fn shutdown(&self) {
        self.closing.cancel();
        let tasks: Vec<_> = self
            .runs
            .lock()
            .values_mut()
            .filter_map(|r| r.task.take())
            .collect();
        for t in tasks {
            let _ = t.await;
        }
    }

    pub async fn result(&self, session: &Session, id: &str) -> Result<PerfResult, PerfError> {
        let doc = self
            .store
            .perf_result(&session.owner(), id)
            .await
            .or_internal("reading a result")?
            .ok_or_else(|| PerfError::NoResult(id.to_string()))?;
        Ok(decode_result(&doc).or_internal("decoding a result")?)
    }

    pub async fn results(
        &self,
        session: &Session,
        profile_id: Option<&str>,
        listing: &Listing,
    ) -> Result<(Vec<PerfResult>, i64), PerfError> {
        let (docs, total) = self
            .store
            .perf_results(&session.owner(), profile_id, listing)
            .await
            .or_internal("listing results")?;
        let results = docs
            .iter()
            .map(|d| decode_result(d))
            .collect::<Result<Vec<PerfResult>, _>>()
            .or_internal("decoding a result")?;
        Ok((results, total))
    }
}

use crate::events::{Events, NewEvent};
use crate::models::{EventSeverity, PerformanceProfile, PerformanceProfileInput};

impl Perf {
    /// Checks a profile's settings without touching the network.
    fn check_profile(&self, input: &PerformanceProfileInput) -> Result<(), PerfError> {
        if input.endpoints.is_empty() {
            return Err(bad("a profile needs at least one endpoint"));
        }
        for url in &input.endpoints {
            let parsed =
                reqwest::Url::parse(url).map_err(|e| bad(format!("endpoint {url:?}: {e}")))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(bad(format!(
                    "endpoint {url:?}: only http and https targets are supported"
                )));
            }
        }
        for g in &input.load_generators {
            if !GENERATORS.contains(&g.to_ascii_lowercase().as_str()) {
                return Err(bad(format!(
                    "unknown load generator {g:?}; use one of {}",
                    GENERATORS.join(", ")
                )));
            }
        }
        let duration = parse_duration(input.duration.as_deref(), None)?;
        if duration > self.limits.max_duration {
            return Err(bad(format!(
                "duration {duration:?} is over the limit of {:?}",
                self.limits.max_duration
            )));
        }
        let c = input.concurrent_request.unwrap_or(1);
        if c < 1 || c as usize > self.limits.max_connections {
            return Err(bad(format!(
                "concurrentRequest must be from 1 to {}",
                self.limits.max_connections
            )));
        }
        let qps = input.qps.unwrap_or(0) as f64;
        if !(0.0..=self.limits.max_qps).contains(&qps) {
            return Err(bad(format!(
                "qps must be from 0 (max) to {}",
                self.limits.max_qps
            )));
        }
        header_pairs(
            input
                .request_headers
                .as_ref()
                .unwrap_or(&serde_json::Value::Null),
        )
        .map_err(bad)?;
        Ok(())
    }

    async fn with_stats(
        &self,
        owner: &str,
        mut p: PerformanceProfile,
    ) -> Result<PerformanceProfile, PerfError> {
        let (n, last) = self
            .store
            .perf_profile_stats(owner, &p.id)
            .await
            .or_internal("reading profile statistics")?;
        p.total_results = n;
        p.last_run = last
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&chrono::Utc));
        Ok(p)
    }

    /// Creates (no id) or updates (the user's id) a profile; nothing is stored if invalid.
    pub async fn save_profile(
        &self,
        session: &Session,
        input: PerformanceProfileInput,
    ) -> Result<PerformanceProfile, PerfError> {
        self.check_profile(&input)?;
        let owner = session.owner();
        let now = chrono::Utc::now();
        let (id, created_at) = match &input.id {
            Some(id) => (id.clone(), self.profile(session, id).await?.created_at),
            None => (uuid::Uuid::new_v4().to_string(), now),
        };
        let profile = PerformanceProfile {
            id: id.clone(),
            name: input.name.to_string(),
            endpoints: input.endpoints,
            load_generators: if input.load_generators.is_empty() {
                vec!["meshery".into()]
            } else {
                input
                    .load_generators
                    .iter()
                    .map(|g| g.to_ascii_lowercase())
                    .collect()
            },
            service_mesh: input.service_mesh.unwrap_or_default(),
            concurrent_request: input.concurrent_request.unwrap_or(1),
            qps: input.qps.unwrap_or(0),
            duration: input.duration.unwrap_or_else(|| "30s".into()),
            request_headers: headers_text(
                &header_pairs(
                    input
                        .request_headers
                        .as_ref()
                        .unwrap_or(&serde_json::Value::Null),
                )
                .map_err(bad)?,
            ),
            user_id: session.user.id.clone(),
            schedule: input.schedule.map(|s| s.to_string()),
            request_cookies: input.request_cookies.unwrap_or_default(),
            request_body: input.request_body.unwrap_or_default(),
            content_type: input.content_type.unwrap_or_default(),
            metadata: input.metadata,
            last_run: None,
            total_results: 0,
            created_at,
            updated_at: now,
        };
        let doc = serde_json::to_string(&profile).or_internal("encoding a profile")?;
        self.store
            .put_perf_profile(
                &owner,
                &id,
                &profile.name,
                &doc,
                &report::stamp(created_at),
                &report::stamp(now),
            )
            .await
            .or_internal("saving a profile")?;
        self.profiles_changed_by(owner.clone()).await;
        let event = NewEvent::new(
            "performance",
            "save_profile",
            EventSeverity::Informational,
            format!("Performance profile {} saved", profile.name),
        )
        .acted_upon(profile.id.clone());
        self.events.note(session, event).await;
        self.with_stats(&owner, profile).await
    }

    pub async fn profile(
        &self,
        session: &Session,
        id: &str,
    ) -> Result<PerformanceProfile, PerfError> {
        let owner = session.owner();
        let doc = self
            .store
            .perf_profile(&owner, id)
            .await
            .or_internal("reading a profile")?
            .ok_or_else(|| PerfError::NoProfile(id.to_string()))?;
        let profile = decode_profile(&doc).or_internal("decoding a profile")?;
        self.with_stats(&owner, profile).await
    }

    pub async fn profiles(
        &self,
        session: &Session,
        listing: &Listing,
    ) -> Result<(Vec<PerformanceProfile>, i64), PerfError> {
        let owner = session.owner();
        let (docs, total) = self
            .store
            .perf_profiles(&owner, listing)
            .await
            .or_internal("listing profiles")?;
        let mut out = Vec::with_capacity(docs.len());
        for d in docs {
            let p = decode_profile(&d).or_internal("decoding a profile")?;
            out.push(self.with_stats(&owner, p).await?);
        }
        Ok((out, total))
    }

    /// Deletes a profile of the user; the profile as it was.
    pub async fn delete_profile(
        &self,
        session: &Session,
        id: &str,
    ) -> Result<PerformanceProfile, PerfError> {
        let profile = self.profile(session, id).await?;
        let deleted = self
            .store
            .delete_perf_profile(&session.owner(), id)
            .await
            .or_internal("deleting a profile")?;
        if deleted {
            self.profiles_changed_by(session.owner()).await;
            let event = NewEvent::new(
                "performance",
                "delete_profile",
                EventSeverity::Informational,
                format!("Performance profile {id} deleted"),
            )
            .acted_upon(id);
            self.events.note(session, event).await;
            Ok(profile)
        } else {
            Err(PerfError::NoProfile(id.to_string()))
        }
    }

    /// What running a profile asks for: its first endpoint and generator.
    pub fn profile_request(p: &PerformanceProfile) -> Result<Request, PerfError> {
        let url = p
            .endpoints
            .first()
            .cloned()
            .ok_or_else(|| bad("the profile has no endpoint"))?;
        Ok(Request {
            name: Some(p.name.clone()),
            url,
            duration: parse_duration(Some(&p.duration), None)?,
            connections: p.concurrent_request,
            qps: p.qps as f64,
            generator: p.load_generators.first().cloned(),
            method: None,
            headers: header_pairs(&serde_json::Value::String(p.request_headers.clone()))
                .map_err(bad)?,
            cookies: Some(p.request_cookies.clone()).filter(|c| !c.is_empty()),
            content_type: Some(p.content_type.clone()).filter(|c| !c.is_empty()),
            body: Some(p.request_body.clone()).filter(|b| !b.is_empty()),
            http2: false,
            insecure: false,
            timeout: None,
            profile_id: Some(p.id.clone()),
        })
    }
}

/// A stored progress frame (its result as [`decode_result`] reads one).
fn decode_frame(doc: &str) -> Result<PerfFrame, serde_json::Error> {
    let mut value: serde_json::Value = serde_json::from_str(doc)?;
    if let Some(result) = value.get_mut("result").and_then(|r| r.as_object_mut()) {
        result.entry("userId").or_insert_with(|| "".into());
    }
    serde_json::from_value(value)
}

/// A stored result; one stored before results kept their user has an empty `userId`.
fn decode_result(doc: &str) -> Result<PerfResult, serde_json::Error> {
    let mut value: serde_json::Value = serde_json::from_str(doc)?;
    if let Some(map) = value.as_object_mut() {
        map.entry("userId").or_insert_with(|| "".into());
    }
    serde_json::from_value(value)
}

/// A stored profile; one saved before profiles took Meshery's types has its headers as an
/// object and its rate as a float, and no user id.
fn decode_profile(doc: &str) -> Result<PerformanceProfile, serde_json::Error> {
    let mut value: serde_json::Value = serde_json::from_str(doc)?;
    if let Some(map) = value.as_object_mut() {
        if let Some(headers) = map.get("requestHeaders").filter(|h| h.is_object()) {
            let pairs = header_pairs(headers).unwrap_or_default();
            map.insert("requestHeaders".into(), headers_text(&pairs).into());
        }
        if let Some(qps) = map.get("qps").and_then(serde_json::Value::as_f64) {
            map.insert("qps".into(), (qps.round() as i64).into());
        }
        map.entry("userId").or_insert_with(|| "".into());
    }
    serde_json::from_value(value)
}

/// Headers as Meshery's clients give them: an object of names to values, that object as
/// JSON text, or `Name: value` lines; nothing (null, empty) is none.
pub fn header_pairs(value: &serde_json::Value) -> Result<Vec<(String, String)>, String> {
    use serde_json::Value;
    let text_of = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Object(m) => Ok(m.iter().map(|(k, v)| (k.clone(), text_of(v))).collect()),
        Value::String(s) if s.trim().is_empty() => Ok(Vec::new()),
        Value::String(s) if s.trim_start().starts_with('{') => {
            let m: serde_json::Map<String, Value> = serde_json::from_str(s)
                .map_err(|e| format!("requestHeaders must be a JSON object of strings: {e}"))?;
            Ok(m.iter().map(|(k, v)| (k.clone(), text_of(v))).collect())
        }
        Value::String(s) => s
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| match l.split_once(':') {
                Some((name, v)) if !name.trim().is_empty() => {
                    Ok((name.trim().to_string(), v.trim().to_string()))
                }
                _ => Err(format!(
                    "requestHeaders line {l:?} is not `Name: value` (or give a JSON object)"
                )),
            })
            .collect(),
        _ => {
            Err("requestHeaders must be an object, JSON text of one, or `Name: value` lines".into())
        }
    }
}

/// Headers in Meshery's stored form: JSON text of an object (sorted), empty for none.
pub fn headers_text(pairs: &[(String, String)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let sorted: std::collections::BTreeMap<&str, &str> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    serde_json::to_string(&sorted).unwrap_or_default()
}

/// The frames up to and including the last one (the first that is not progress); the
/// stream ends right after it, without waiting on `frames` again.
fn until_last(frames: BoxStream<'static, PerfFrame>) -> BoxStream<'static, PerfFrame> {
    futures_util::stream::unfold(Some(frames), |frames| async move {
        let mut frames = frames?;
        let frame = frames.next().await?;
        let more = (frame.status == PerfFrameStatus::Info).then_some(frames);
        Some((frame, more))
    })
    .boxed()
}

/// A follower of a run on another replica: reads its stored frames when told there are
/// new ones, and every few seconds, to notice a replica that died.
struct Remote {
    store: Store,
    owner: String,
    run_id: String,
    last: i64,
    wake: broadcast::Receiver<String>,
    backlog: std::collections::VecDeque<PerfFrame>,
}

impl Remote {
    async fn next(mut self) -> Option<(PerfFrame, Remote)> {
        loop {
            if let Some(frame) = self.backlog.pop_front() {
                return Some((frame, self));
            }
            match self.store.run_frames_after(&self.run_id, self.last).await {
                Ok(rows) if !rows.is_empty() => {
                    for (n, doc) in rows {
                        self.last = n;
                        match decode_frame(&doc) {
                            Ok(frame) => self.backlog.push_back(frame),
                            Err(e) => {
                                tracing::warn!(run = %self.run_id, error = %e, "a stored frame")
                            }
                        }
                    }
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(run = %self.run_id, error = %e, "reading frames"),
            }
            let woken = tokio::select! {
                woken = self.wake.recv() => woken,
                _ = tokio::time::sleep(HEARTBEAT / 2) => Err(broadcast::error::RecvError::Lagged(0)),
            };
            match woken {
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
                // Lagged, or a quiet while: is the run still alive?
                Err(broadcast::error::RecvError::Lagged(_)) => {}
            }
            match self.store.run_state(&self.owner, &self.run_id).await {
                // Ended: the remaining frames (if any) are read on the next turn; with none
                // left, the stream ends here.
                Ok(Some((_, Some(_)))) => {
                    match self.store.run_frames_after(&self.run_id, self.last).await {
                        Ok(rows) if !rows.is_empty() => continue,
                        _ => return None,
                    }
                }
                Ok(Some((heartbeat, None))) if heartbeat > now_ms() - LIVE_MS => {}
                Ok(_) => self.backlog.push_back(PerfFrame {
                    status: PerfFrameStatus::Error,
                    message: "the server running this load test stopped; its result was not stored"
                        .into(),
                    result: None,
                    run_id: Some(self.run_id.clone()),
                }),
                Err(e) => tracing::warn!(run = %self.run_id, error = %e, "reading a load test"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn headers_come_as_objects_json_text_or_lines() {
        let want = vec![
            ("a".to_string(), "1".to_string()),
            ("b".into(), "x y".into()),
        ];
        for given in [
            json!({"a": "1", "b": "x y"}),
            json!("{\"a\": 1, \"b\": \"x y\"}"),
            json!("a: 1\n  b : x y\n\n"),
        ] {
            let mut got = header_pairs(&given).unwrap();
            got.sort();
            assert_eq!(got, want, "{given}");
        }
        assert!(header_pairs(&json!("")).unwrap().is_empty());
        assert!(header_pairs(&json!(null)).unwrap().is_empty());
        assert!(header_pairs(&json!("no colon here")).is_err());
        assert!(header_pairs(&json!("{not json")).is_err());
        assert!(header_pairs(&json!(3)).is_err());
        assert_eq!(headers_text(&want), r#"{"a":"1","b":"x y"}"#);
        assert_eq!(headers_text(&[]), "");
    }

    #[test]
    fn stored_profiles_and_results_from_before_meshery_types_still_read() {
        let old = json!({
            "id": "p", "name": "n", "endpoints": ["http://x/"], "loadGenerators": ["fortio"],
            "serviceMesh": "", "concurrentRequest": 1, "qps": 12.6, "duration": "1s",
            "requestHeaders": {"k": "v"}, "requestCookies": "", "requestBody": "",
            "contentType": "", "metadata": {}, "totalResults": 0,
            "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z"
        });
        let p = decode_profile(&old.to_string()).unwrap();
        assert_eq!(
            (p.qps, p.request_headers.as_str(), p.user_id.as_str()),
            (13, r#"{"k":"v"}"#, "")
        );
        let frame = json!({"status": "success", "message": "m", "result": null});
        assert!(decode_frame(&frame.to_string()).unwrap().result.is_none());
    }
}
