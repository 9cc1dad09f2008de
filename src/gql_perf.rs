//! The perf part of the GraphQL API: the same service as REST, GraphQL types in and out.

use futures_util::stream::{self, BoxStream, StreamExt};

use crate::app::App;
use crate::error::ApiError;
use crate::generated::graphql as g;
use crate::models;
use crate::perf::Perf;
use crate::session::Session;
use crate::store::Listing;
use crate::store::listing;

type Result<T> = std::result::Result<T, ApiError>;

fn json_map(value: serde_json::Map<String, serde_json::Value>) -> g::Map {
    g::Map(serde_json::Value::Object(value))
}

fn to_map<T: serde::Serialize>(value: &T) -> Result<g::Map> {
    serde_json::to_value(value)
        .map(g::Map)
        .map_err(|e| ApiError::internal("encoding a result", e))
}

fn rfc3339(what: &str, s: Option<&str>) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
    match s.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.with_timezone(&chrono::Utc)))
            .map_err(|e| {
                ApiError::bad_request(format!("{what} {s:?} is not an RFC 3339 time: {e}"))
            }),
    }
}

/// A GraphQL `Int` (i32) of a count, saturating.
pub fn int(n: i64) -> i32 {
    n.clamp(0, i64::from(i32::MAX)) as i32
}

/// `page`, `pageSize` (the total with `all`) and `totalCount` of a GraphQL page.
pub fn page_numbers(listing: &Listing, total: i64) -> (i32, i32, i32) {
    (
        int(listing.page),
        int(listing.page_size.unwrap_or(total)),
        int(total),
    )
}

/// Meshery's `PageFilter` (strings) as a listing.
pub fn page_filter(f: &g::PageFilter) -> Result<Listing> {
    let page = match f.page.trim() {
        "" => None,
        p => Some(p.parse::<i64>().ok().filter(|p| *p >= 0).ok_or_else(|| {
            ApiError::bad_request(format!("page {p:?} must be a whole number from 0"))
        })?),
    };
    let from = rfc3339("from", f.from.as_deref())?;
    // `updated_after` narrows like `from` (results and profiles are not edited after).
    let from = match (from, rfc3339("updated_after", f.updated_after.as_deref())?) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    Ok(listing(
        page,
        Some(f.page_size.as_str()),
        f.search.clone(),
        f.order.as_deref(),
        from,
        rfc3339("to", f.to.as_deref())?,
    )?)
}

pub fn profile_out(p: models::PerformanceProfile) -> g::PerfProfile {
    g::PerfProfile {
        id: p.id,
        name: p.name,
        endpoints: p.endpoints,
        load_generators: p.load_generators,
        service_mesh: p.service_mesh,
        concurrent_request: int(p.concurrent_request),
        qps: int(p.qps),
        duration: p.duration,
        request_headers: p.request_headers,
        request_cookies: p.request_cookies,
        request_body: p.request_body,
        content_type: p.content_type,
        metadata: json_map(p.metadata),
        last_run: p.last_run.map(g::Time),
        total_results: int(p.total_results),
        created_at: g::Time(p.created_at),
        updated_at: g::Time(p.updated_at),
        owner: p.user_id.clone(),
        user_id: p.user_id,
    }
}

pub fn result_out(r: models::PerfResult) -> Result<g::MesheryResult> {
    Ok(g::MesheryResult {
        runner_results: to_map(&r.runner_results)?,
        smp: to_map(&r.smp)?,
        server_metrics: json_map(r.server_metrics),
        status: r.status.to_string(),
        id: r.id,
        meshery_id: r.meshery_id,
        name: r.name,
        mesh: r.mesh,
        performance_profile: r.performance_profile,
        test_id: r.test_id,
        test_start_time: g::Time(r.test_start_time),
        created_at: g::Time(r.created_at),
        updated_at: g::Time(r.updated_at),
        owner: r.user_id.clone(),
        user_id: r.user_id,
    })
}

pub fn run_out(r: models::PerfRun) -> g::PerfRun {
    g::PerfRun {
        run_id: r.run_id,
        name: r.name,
        url: r.url,
        started_at: g::Time(r.started_at),
    }
}

pub fn frame_out(f: models::PerfFrame) -> Result<g::PerfFrame> {
    Ok(g::PerfFrame {
        status: f.status.to_string(),
        message: f.message,
        run_id: f.run_id,
        result: f.result.map(result_out).transpose()?,
    })
}

fn object(what: &str, m: Option<g::Map>) -> Result<serde_json::Map<String, serde_json::Value>> {
    match m {
        None => Ok(Default::default()),
        Some(g::Map(serde_json::Value::Object(o))) => Ok(o),
        Some(_) => Err(ApiError::bad_request(format!(
            "{what} must be a JSON object"
        ))),
    }
}

pub fn profile_in(i: g::PerfProfileInput) -> Result<models::PerformanceProfileInput> {
    let headers = serde_json::Value::Object(object("requestHeaders", i.request_headers)?);
    Ok(models::PerformanceProfileInput {
        id: i.id,
        name: i
            .name
            .parse()
            .map_err(|_| ApiError::bad_request("name must not be empty"))?,
        endpoints: i.endpoints,
        load_generators: i.load_generators.unwrap_or_default(),
        service_mesh: i.service_mesh,
        concurrent_request: i.concurrent_request.map(i64::from),
        qps: i
            .qps
            .map(|q| {
                if q >= 0 {
                    Ok(i64::from(q))
                } else {
                    Err(ApiError::bad_request("qps must be 0 or more"))
                }
            })
            .transpose()?,
        duration: i.duration,
        request_headers: Some(headers),
        schedule: None,
        user_id: None,
        request_cookies: i.request_cookies,
        request_body: i.request_body,
        content_type: i.content_type,
        metadata: object("metadata", i.metadata)?,
    })
}

pub async fn profiles_page(
    perf: &Perf,
    session: &Session,
    listing: &Listing,
) -> Result<g::PerfPageProfiles> {
    let (profiles, total) = perf.profiles(session, listing).await?;
    let (page, page_size, total_count) = page_numbers(listing, total);
    Ok(g::PerfPageProfiles {
        page,
        page_size,
        total_count,
        profiles: profiles.into_iter().map(profile_out).collect(),
    })
}

pub async fn results_page(
    perf: &Perf,
    session: &Session,
    profile: Option<&str>,
    listing: &Listing,
) -> Result<g::PerfPageResult> {
    if let Some(id) = profile {
        perf.profile(session, id).await?;
    }
    let (results, total) = perf.results(session, profile, listing).await?;
    let (page, page_size, total_count) = page_numbers(listing, total);
    Ok(g::PerfPageResult {
        page,
        page_size,
        total_count,
        results: results.into_iter().map(result_out).collect::<Result<_>>()?,
    })
}

/// The page now, then again after each change a `changes` item says concerns `owner`.
pub fn live_page<T, C, P>(
    app: App,
    session: Session,
    changes: tokio::sync::broadcast::Receiver<C>,
    concerns: fn(&C, &str) -> bool,
    page: P,
) -> BoxStream<'static, Result<T>>
where
    T: Send + 'static,
    C: Clone + Send + 'static,
    P: Fn(App, Session) -> futures_util::future::BoxFuture<'static, Result<T>>
        + Send
        + Sync
        + Clone
        + 'static,
{
    let owner = session.owner();
    let first = stream::once(page(app.clone(), session.clone()));
    let state = (changes, app, session, owner, page);
    let rest = stream::unfold(
        state,
        move |(mut changes, app, session, owner, page)| async move {
            use tokio::sync::broadcast::error::RecvError;
            loop {
                match changes.recv().await {
                    Ok(c) if !concerns(&c, &owner) => continue,
                    // A change of this user's, or missed ones (lagged): a fresh page covers it.
                    Ok(_) | Err(RecvError::Lagged(_)) => {
                        let item = page(app.clone(), session.clone()).await;
                        return Some((item, (changes, app, session, owner, page)));
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        },
    );
    first.chain(rest).boxed()
}

/// The frames of a running test, for `subscribePerfRunProgress`.
pub async fn follow(
    perf: &Perf,
    session: &Session,
    run_id: &str,
) -> Result<BoxStream<'static, Result<g::PerfFrame>>> {
    let frames = perf
        .follow(session, run_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no run {run_id:?} of yours is in progress")))?;
    Ok(frames.map(frame_out).boxed())
}

/// Starts a profile's run for GraphQL (the frames go to `subscribePerfRunProgress`).
pub async fn run_profile(
    perf: &std::sync::Arc<Perf>,
    session: &Session,
    id: &str,
) -> Result<g::PerfRun> {
    let profile = perf.profile(session, id).await?;
    let plan = perf.plan(Perf::profile_request(&profile)?).await?;
    let (info, frames) = perf.start(session, plan).await?;
    // Nobody reads this copy of the frames; the run goes on without it.
    drop(frames);
    Ok(run_out(info))
}
