use futures_util::StreamExt;
use serde::Deserialize;

use crate::app::App;
use crate::error::ApiError;
use crate::generated::rest::*;
use crate::models::{PerfFrame, PerfResultPage};
use crate::perf::{self, Perf, Request};
use crate::server::Api;
use crate::session::Session;

fn events(frames: futures_util::stream::BoxStream<'static, PerfFrame>) -> rt::EventStream {
    frames
        .filter_map(|f| std::future::ready(rt::SseFrame::json(&f).ok()))
        .boxed()
}

/// `{"a": "b"}` as header pairs.
fn json_pairs(what: &str, text: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(Vec::new());
    };
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|e| {
            ApiError::bad_request(format!("{what} must be a JSON object of strings: {e}"))
        })?;
    map.into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => Ok((k, s)),
            other => Ok((k, other.to_string())),
        })
        .collect()
}

/// Cookies as Meshery sends them: a JSON object, or already `a=b; c=d`.
fn cookie_header(text: Option<&str>) -> Result<Option<String>, ApiError> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) if t.starts_with('{') => {
            let pairs = json_pairs("cookies", Some(t))?;
            Ok(Some(
                pairs
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            ))
        }
        Some(t) => Ok(Some(t.to_string())),
    }
}

/// The parts of an SMP `PerformanceTestConfig` the generator uses.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SmpConfig {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    labels: Option<serde_json::Value>,
    #[serde(default)]
    duration: Option<String>,
    #[serde(default)]
    clients: Vec<SmpClient>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SmpClient {
    #[serde(default)]
    internal: Option<bool>,
    #[serde(default)]
    load_generator: Option<String>,
    #[serde(default)]
    protocol: Option<String>,
    #[serde(default)]
    connections: Option<i64>,
    #[serde(default)]
    rps: Option<f64>,
    #[serde(default)]
    headers: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default)]
    cookies: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    content_type: Option<String>,
    #[serde(default)]
    endpoint_urls: Vec<String>,
}

fn smp_request(text: &str) -> Result<Request, ApiError> {
    let config: SmpConfig = yaml_serde::from_str(text)
        .map_err(|e| ApiError::bad_request(format!("the SMP document does not parse: {e}")))?;
    let _ = (&config.id, &config.labels);
    let [client] = config.clients.as_slice() else {
        return Err(ApiError::bad_request(format!(
            "the SMP document must have exactly one client (it has {})",
            config.clients.len()
        )));
    };
    let _ = client.internal;
    let [url] = client.endpoint_urls.as_slice() else {
        return Err(ApiError::bad_request(
            "the client must have exactly one endpoint_urls entry",
        ));
    };
    let http2 = match client
        .protocol
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("" | "http" | "http1" | "http/1.1") => false,
        Some("h2c" | "http2" | "http/2") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "protocol {other:?} is not supported; use http or h2c"
            )));
        }
    };
    Ok(Request {
        name: config.name,
        url: url.clone(),
        duration: perf::parse_duration(config.duration.as_deref(), None)?,
        connections: client.connections.unwrap_or(1),
        qps: client.rps.unwrap_or(0.0),
        generator: client.load_generator.clone(),
        method: None,
        headers: client
            .headers
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        cookies: client.cookies.as_ref().map(|c| {
            c.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        }),
        content_type: client.content_type.clone(),
        body: client.body.clone(),
        http2,
        insecure: false,
        timeout: None,
        profile_id: None,
    })
}

/// Starts a run; its progress as server-sent events, until the run or the session ends.
async fn start(
    app: &App,
    session: &Session,
    request: Request,
) -> Result<rt::EventStream, ApiError> {
    let plan = app.perf.plan(request).await?;
    let (_, frames) = app.perf.start(session, plan).await?;
    Ok(super::until_session_ends(app, session, events(frames)))
}

impl App {
    async fn results_page(
        &self,
        session: &Session,
        profile_id: Option<&str>,
        listing: Result<crate::store::Listing, crate::store::ListingError>,
    ) -> Result<PerfResultPage, ApiError> {
        let listing = listing?;
        if let Some(id) = profile_id {
            // A profile that is not the user's has no results to show.
            self.perf.profile(session, id).await?;
        }
        let (results, total) = self.perf.results(session, profile_id, &listing).await?;
        Ok(listing.page_of(results, total))
    }
}

impl PerfApi for Api {
    async fn run_perf_test(
        &self,
        r: RunPerfTestRequest<Session>,
    ) -> Result<RunPerfTestResponse, ApiError> {
        let request = Request {
            name: r.name.clone(),
            url: r.url.clone(),
            duration: perf::parse_duration(r.t.as_deref(), r.dur.as_deref())?,
            connections: r.c.map(i64::from).unwrap_or(1),
            qps: r.qps.unwrap_or(0.0),
            generator: r.load_generator.clone(),
            method: r.method.clone(),
            headers: json_pairs("headers", r.headers.as_deref())?,
            cookies: cookie_header(r.cookies.as_deref())?,
            content_type: r.content_type.clone(),
            body: r.req_body.clone(),
            http2: r.http2.unwrap_or(false),
            insecure: r.insecure.unwrap_or(false),
            timeout: r
                .timeout
                .as_deref()
                .map(|t| perf::parse_duration(Some(t), Some("s")))
                .transpose()?,
            profile_id: None,
        };
        Ok(RunPerfTestResponse::Ok(
            start(self, &r.session, request).await?,
        ))
    }

    async fn run_perf_test_smp(
        &self,
        r: RunPerfTestSmpRequest<Session>,
    ) -> Result<RunPerfTestSmpResponse, ApiError> {
        let request = smp_request(&r.body)?;
        Ok(RunPerfTestSmpResponse::Ok(
            start(self, &r.session, request).await?,
        ))
    }

    async fn list_perf_results(
        &self,
        r: ListPerfResultsRequest<Session>,
    ) -> Result<ListPerfResultsResponse, ApiError> {
        Ok(ListPerfResultsResponse::Ok(
            self.results_page(&r.session, None, listing_of!(r)).await?,
        ))
    }

    async fn list_all_perf_results(
        &self,
        r: ListAllPerfResultsRequest<Session>,
    ) -> Result<ListAllPerfResultsResponse, ApiError> {
        Ok(ListAllPerfResultsResponse::Ok(
            self.results_page(&r.session, None, listing_of!(r)).await?,
        ))
    }

    async fn list_perf_profile_results(
        &self,
        r: ListPerfProfileResultsRequest<Session>,
    ) -> Result<ListPerfProfileResultsResponse, ApiError> {
        Ok(ListPerfProfileResultsResponse::Ok(
            self.results_page(&r.session, Some(&r.profile_id), listing_of!(r))
                .await?,
        ))
    }

    async fn list_perf_profiles(
        &self,
        r: ListPerfProfilesRequest<Session>,
    ) -> Result<ListPerfProfilesResponse, ApiError> {
        let listing = listing_of!(r)?;
        let (profiles, total) = self.perf.profiles(&r.session, &listing).await?;
        Ok(ListPerfProfilesResponse::Ok(
            listing.page_of(profiles, total),
        ))
    }

    async fn save_perf_profile(
        &self,
        r: SavePerfProfileRequest<Session>,
    ) -> Result<SavePerfProfileResponse, ApiError> {
        Ok(SavePerfProfileResponse::Ok(
            self.perf.save_profile(&r.session, r.body).await?,
        ))
    }

    async fn get_perf_profile(
        &self,
        r: GetPerfProfileRequest<Session>,
    ) -> Result<GetPerfProfileResponse, ApiError> {
        Ok(GetPerfProfileResponse::Ok(
            self.perf.profile(&r.session, &r.profile_id).await?,
        ))
    }

    async fn delete_perf_profile(
        &self,
        r: DeletePerfProfileRequest<Session>,
    ) -> Result<DeletePerfProfileResponse, ApiError> {
        Ok(DeletePerfProfileResponse::Ok(
            self.perf.delete_profile(&r.session, &r.profile_id).await?,
        ))
    }

    async fn update_perf_profile(
        &self,
        r: UpdatePerfProfileRequest<Session>,
    ) -> Result<UpdatePerfProfileResponse, ApiError> {
        let mut input = r.body;
        if input.id.as_ref().is_some_and(|id| *id != r.profile_id) {
            return Err(ApiError::bad_request(format!(
                "the body's id {:?} is not the path's {:?}",
                input.id.unwrap_or_default(),
                r.profile_id
            )));
        }
        input.id = Some(r.profile_id.clone());
        Ok(UpdatePerfProfileResponse::Ok(
            self.perf.save_profile(&r.session, input).await?,
        ))
    }

    async fn run_perf_profile(
        &self,
        r: RunPerfProfileRequest<Session>,
    ) -> Result<RunPerfProfileResponse, ApiError> {
        let profile = self.perf.profile(&r.session, &r.profile_id).await?;
        let request = Perf::profile_request(&profile)?;
        Ok(RunPerfProfileResponse::Ok(
            start(self, &r.session, request).await?,
        ))
    }

    async fn get_perf_result(
        &self,
        r: GetPerfResultRequest<Session>,
    ) -> Result<GetPerfResultResponse, ApiError> {
        Ok(GetPerfResultResponse::Ok(
            self.perf.result(&r.session, &r.result_id).await?,
        ))
    }

    async fn list_perf_runs(
        &self,
        r: ListPerfRunsRequest<Session>,
    ) -> Result<ListPerfRunsResponse, ApiError> {
        Ok(ListPerfRunsResponse::Ok(self.perf.runs(&r.session).await?))
    }

    async fn cancel_perf_run(
        &self,
        r: CancelPerfRunRequest<Session>,
    ) -> Result<CancelPerfRunResponse, ApiError> {
        if !self.perf.cancel(&r.session, &r.run_id).await? {
            return Err(ApiError::not_found(format!(
                "no run {:?} of yours is in progress",
                r.run_id
            )));
        }
        Ok(CancelPerfRunResponse::NoContent)
    }
}
