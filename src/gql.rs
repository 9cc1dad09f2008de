//! GraphQL: resolvers implementing the generated traits, and the transport (GraphQL over
//! HTTP per its spec, and WebSocket with both subprotocols) behind the shared auth guard.

use std::sync::Arc;

use async_graphql::{Context, ErrorExtensions, Result as GqlResult};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{BoxStream, StreamExt};

use crate::app::App;
use crate::error::{ApiError, codes};
use crate::generated::graphql as g;
use crate::generated::rest;
use crate::gql_clusters as gc;
use crate::gql_perf as pg;
use crate::models;
use crate::session::Session;

pub type Schema = g::GraphqlSchema<Resolver>;

/// Resolvers hold the [`App`]; the caller's [`Session`] is in each request's data.
pub struct Resolver(App);

/// The GraphQL endpoint: the schema over the state. Built once, where the router is built;
/// one `Arc`, because every route's WebSocket hand-off (`Upgrades`) holds it and routes are
/// cloned for each request.
#[derive(Clone)]
pub struct Graphql(Arc<GraphqlParts>);

pub struct GraphqlParts {
    app: App,
    schema: Schema,
    /// The same schema with async-graphql's fast validation (depth, complexity and
    /// fragment cycles only), for operations that already passed full validation.
    checked: Schema,
    /// Parsed documents by query text: clients send the same few queries again and again,
    /// and parsing is a large part of a small query's cost. Bounded by the total length of
    /// the cached texts.
    parsed: ParsedCache,
    /// Open subscriptions per user, over all their WebSockets.
    pub(crate) subscriptions: crate::gql_limits::SubscriptionLimit,
    /// Subscription executions shared by their subscribers (`gql_groups`, for `gql_ws`).
    pub(crate) groups: crate::gql_groups::Groups,
}

impl std::ops::Deref for Graphql {
    type Target = GraphqlParts;
    fn deref(&self) -> &GraphqlParts {
        &self.0
    }
}

/// A parsed document, and which of its operations passed full validation without
/// variables. Validation depends only on the schema, the document, the operation and the
/// variables, so such an operation is valid again: it runs on the `checked` schema, whose
/// fast validation still enforces depth and complexity (the alias limit is checked on the
/// document before either). Requests with variables are always fully validated.
pub(crate) struct Parsed {
    doc: async_graphql::parser::types::ExecutableDocument,
    /// Aliased fields in the document (`gql_limits::count_aliases`).
    aliases: usize,
    /// Operation names (`None`: the document's only one), at most [`VALID_OPERATIONS`].
    valid: parking_lot::Mutex<Vec<Option<String>>>,
}

const VALID_OPERATIONS: usize = 16;

impl Parsed {
    fn is_valid(&self, operation: &Option<String>) -> bool {
        self.valid.lock().contains(operation)
    }

    fn mark_valid(&self, operation: Option<String>) {
        let mut valid = self.valid.lock();
        if valid.len() < VALID_OPERATIONS && !valid.contains(&operation) {
            valid.push(operation);
        }
    }
}

type ParsedCache = quick_cache::sync::Cache<String, Arc<Parsed>, TextWeight>;

/// Bytes of query text the parsed-document cache holds at most.
const PARSED_CACHE_BYTES: u64 = 4 * 1024 * 1024;

/// Weighs a cached document by the length of its text (a document's size follows it).
#[derive(Clone)]
struct TextWeight;

impl quick_cache::Weighter<String, Arc<Parsed>> for TextWeight {
    fn weight(&self, query: &String, _: &Arc<Parsed>) -> u64 {
        query.len() as u64 + 1
    }
}

impl Graphql {
    pub fn new(app: App) -> Graphql {
        Graphql(Arc::new(GraphqlParts {
            schema: schema(app.clone(), async_graphql::ValidationMode::Strict),
            checked: schema(app.clone(), async_graphql::ValidationMode::Fast),
            subscriptions: crate::gql_limits::SubscriptionLimit::new(
                app.config.graphql.max_subscriptions_per_user,
            ),
            groups: crate::gql_groups::Groups::default(),
            app,
            parsed: ParsedCache::with_weighter(1024, PARSED_CACHE_BYTES, TextWeight),
        }))
    }

    /// Hands `request` its parsed document from the cache, or parses it and caches it. A
    /// query that does not parse is left alone: execution reports the syntax error.
    pub(crate) fn parse_cached(&self, request: &mut async_graphql::Request) -> Option<Arc<Parsed>> {
        if let Some(parsed) = self.parsed.get(request.query.as_str()) {
            request.set_parsed_query(parsed.doc.clone());
            return Some(parsed);
        }
        let doc = request.parsed_query().ok()?.clone();
        let parsed = Arc::new(Parsed {
            aliases: crate::gql_limits::count_aliases(&doc),
            doc,
            valid: parking_lot::Mutex::default(),
        });
        self.parsed.insert(request.query.clone(), parsed.clone());
        Some(parsed)
    }

    /// Executes a query or mutation: on the `checked` schema when this operation of this
    /// document already passed full validation with no variables, else fully validated
    /// (and remembered as valid when it ran without any error).
    async fn execute(
        &self,
        request: async_graphql::Request,
        parsed: Option<Arc<Parsed>>,
    ) -> async_graphql::Response {
        if let Some(refused) = self.refuse(parsed.as_deref()) {
            return refused;
        }
        let parsed = parsed.filter(|_| request.variables.is_empty());
        let operation = request.operation_name.clone();
        if parsed.as_ref().is_some_and(|p| p.is_valid(&operation)) {
            return self.checked.execute(request).await;
        }
        let response = self.schema.execute(request).await;
        if let Some(parsed) = parsed
            && response.errors.is_empty()
        {
            parsed.mark_valid(operation);
        }
        response
    }

    /// The answer to a document past the alias limit (a document that does not parse is
    /// left to execution, which reports the syntax error).
    pub(crate) fn refuse(&self, parsed: Option<&Parsed>) -> Option<async_graphql::Response> {
        let aliases = parsed?.aliases;
        let max = self.app.config.graphql.max_aliases;
        crate::gql_limits::check_aliases(aliases, max)
            .err()
            .map(|e| {
                async_graphql::Response::from_errors(vec![async_graphql::ServerError::new(e, None)])
            })
    }

    pub(crate) fn app(&self) -> &App {
        &self.app
    }

    pub(crate) fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The schema as SDL, as the server serves it.
    pub fn sdl(&self) -> String {
        self.schema.sdl()
    }

    /// GraphQL over HTTP (GET and POST) for a caller the guard let in.
    pub async fn http(&self, session: Session, request: Request) -> Response {
        http(self, session, request).await
    }
}

pub use crate::gql_limits::Limits;

fn schema(app: App, validation: async_graphql::ValidationMode) -> Schema {
    let limits = app.config.graphql;
    g::schema_builder(Arc::new(Resolver(app)))
        .validation_mode(validation)
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity)
        .finish()
}

pub(crate) fn gql_error(e: impl Into<ApiError>) -> async_graphql::Error {
    let e: ApiError = e.into();
    async_graphql::Error::new(e.message.clone()).extend_with(|_, ext| ext.set("code", e.code))
}

fn session<'a>(ctx: &'a Context<'_>) -> GqlResult<&'a Session> {
    ctx.data::<Session>()
}

/// The session of a field that does what REST operation `op` does, once it holds that
/// operation's key (`x-key`): GraphQL asks for the same keys as REST.
async fn session_for<'a>(
    ctx: &'a Context<'_>,
    app: &App,
    op: &'static rest::Operation,
) -> GqlResult<&'a Session> {
    let session = session(ctx)?;
    if let Some(key) = op.key {
        app.check_key(session, key).await.map_err(gql_error)?;
    }
    Ok(session)
}

fn map_of(value: serde_json::Map<String, serde_json::Value>) -> g::Map {
    g::Map(serde_json::Value::Object(value))
}

fn object_of(
    field: &str,
    value: Option<g::Map>,
) -> GqlResult<Option<serde_json::Map<String, serde_json::Value>>> {
    match value {
        None => Ok(None),
        Some(g::Map(serde_json::Value::Object(m))) => Ok(Some(m)),
        Some(_) => Err(async_graphql::Error::new(format!(
            "{field} must be a JSON object"
        ))),
    }
}

async fn patterns_page(
    app: &App,
    session: &Session,
    selector: &g::PageFilter,
) -> Result<g::PatternPageResult, ApiError> {
    let listing = pg::page_filter(selector)?;
    let (patterns, total) = app.designs.list(session, &[], &listing).await?;
    let (page, page_size, total_count) = pg::page_numbers(&listing, total);
    Ok(g::PatternPageResult {
        page,
        page_size,
        total_count,
        patterns: patterns.into_iter().map(pattern_out).collect(),
    })
}

fn pattern_out(p: models::Pattern) -> g::PatternResult {
    g::PatternResult {
        id: p.id,
        name: p.name,
        pattern_file: p.pattern_file,
        owner: p.user_id.clone(),
        user_id: p.user_id,
        visibility: p.visibility.to_string(),
        catalog_data: map_of(p.catalog_data),
        components_count: pg::int(p.components_count),
        created_at: g::Time(p.created_at),
        updated_at: g::Time(p.updated_at),
        location: no_location(),
        can_support: true,
        errmsg: None,
        r#type: g::NullString {
            string: String::new(),
            valid: false,
        },
    }
}

fn no_location() -> g::Location {
    g::Location {
        branch: None,
        host: None,
        path: None,
        r#type: None,
    }
}

/// Meshery's empty pages of what this server does not keep (filters, applications).
fn empty_filters(selector: &g::PageFilter) -> Result<g::FilterPage, ApiError> {
    let listing = pg::page_filter(selector)?;
    let (page, page_size, total_count) = pg::page_numbers(&listing, 0);
    Ok(g::FilterPage {
        page,
        page_size,
        total_count,
        filters: Vec::new(),
    })
}

fn empty_applications(selector: &g::PageFilter) -> Result<g::ApplicationPage, ApiError> {
    let listing = pg::page_filter(selector)?;
    let (page, page_size, total_count) = pg::page_numbers(&listing, 0);
    Ok(g::ApplicationPage {
        page,
        page_size,
        total_count,
        applications: Vec::new(),
    })
}

/// What `subscribeConfiguration` sends for its selectors.
struct Selectors {
    patterns: Option<g::PageFilter>,
    filters: Option<g::PageFilter>,
    applications: Option<g::PageFilter>,
}

impl Selectors {
    async fn page(&self, app: &App, session: &Session) -> Result<g::ConfigurationPage, ApiError> {
        Ok(g::ConfigurationPage {
            patterns: match &self.patterns {
                Some(s) => Some(patterns_page(app, session, s).await?),
                None => None,
            },
            filters: self.filters.as_ref().map(empty_filters).transpose()?,
            applications: self
                .applications
                .as_ref()
                .map(empty_applications)
                .transpose()?,
        })
    }
}

/// A catalog selector's text (Meshery's UI sends page and pagesize as numbers).
fn selector_text(field: &str, v: &Option<g::StringOrNumber>) -> Result<Option<String>, ApiError> {
    match v.as_ref().map(|v| &v.0) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        Some(serde_json::Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(ApiError::bad_request(format!(
            "{field} must be a string or a number, not {other}"
        ))),
    }
}

/// The catalog's listing from Meshery's `CatalogSelector` (pagesize 0 or absent: all).
fn catalog_listing(
    selector: Option<&g::CatalogSelector>,
) -> Result<crate::store::Listing, ApiError> {
    let (page, size, search, order) = match selector {
        None => (None, None, None, None),
        Some(s) => (
            selector_text("page", &s.page)?,
            selector_text("pagesize", &s.pagesize)?,
            s.search.clone(),
            s.order.clone(),
        ),
    };
    let size = match size.as_deref().map(str::trim) {
        None | Some("") | Some("0") => "all".to_string(),
        Some(s) => s.to_string(),
    };
    let page = match page.as_deref().map(str::trim) {
        None | Some("") => "0".to_string(),
        Some(p) => p.to_string(),
    };
    let order = order.filter(|o| !o.trim().is_empty());
    pg::page_filter(&g::PageFilter {
        page,
        page_size: size,
        order: Some(order.unwrap_or_else(|| "updated_at desc".to_string())),
        search,
        from: None,
        to: None,
        updated_after: None,
    })
}

fn event_out(e: models::Event) -> g::Event {
    g::Event {
        id: e.id,
        user_id: e.user_id.clone(),
        system_id: e.system_id,
        category: e.category,
        action: e.action,
        severity: e.severity.to_string(),
        description: e.description,
        metadata: map_of(e.metadata),
        acted_upon: e.acted_upon,
        status: e.status.to_string(),
        created_at: g::Time(e.created_at),
        updated_at: g::Time(e.updated_at),
        owner: e.user_id,
        operation_id: String::new(),
        deleted_at: None,
    }
}

fn prefs_out(p: models::UserPrefs) -> g::UserPrefs {
    g::UserPrefs {
        anonymous_usage_stats: p.anonymous_usage_stats,
        anonymous_perf_results: p.anonymous_perf_results,
        users_extension_preferences: map_of(p.users_extension_preferences),
        dashboard_preferences: map_of(p.dashboard_preferences),
        updated_at: p.updated_at.map(g::Time),
    }
}

/// The counts of the user's inventory (GraphQL's `ClusterResources`).
async fn cluster_resources(
    app: &App,
    owner: &str,
    contexts: Option<&[String]>,
    namespace: Option<&str>,
) -> Result<g::ClusterResources, ApiError> {
    let namespaces: Vec<String> = namespace
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .into_iter()
        .collect();
    let summary = app.inventory.summary(owner, contexts, &namespaces).await?;
    Ok(g::ClusterResources {
        resources: summary
            .kinds
            .into_iter()
            .map(|k| g::ClusterKindCount {
                kind: k.kind,
                model: k.model,
                count: i32::try_from(k.count).unwrap_or(i32::MAX),
            })
            .collect(),
    })
}

impl g::QueryResolver for Resolver {
    async fn get_cluster_resources(
        &self,
        ctx: &Context<'_>,
        k8scontext_i_ds: Option<Vec<String>>,
        namespace: Option<String>,
    ) -> GqlResult<g::ClusterResources> {
        let owner = self
            .owner(ctx, &rest::GET_CLUSTER_RESOURCES_SUMMARY)
            .await?;
        cluster_resources(
            &self.0,
            &owner,
            k8scontext_i_ds.as_deref(),
            namespace.as_deref(),
        )
        .await
        .map_err(gql_error)
    }

    async fn get_performance_profiles(
        &self,
        ctx: &Context<'_>,
        selector: g::PageFilter,
    ) -> GqlResult<g::PerfPageProfiles> {
        let app = &self.0;
        let listing = pg::page_filter(&selector).map_err(gql_error)?;
        pg::profiles_page(
            &app.perf,
            session_for(ctx, &self.0, &rest::LIST_PERF_PROFILES).await?,
            &listing,
        )
        .await
        .map_err(gql_error)
    }

    async fn fetch_results(
        &self,
        ctx: &Context<'_>,
        selector: g::PageFilter,
        profile_id: String,
    ) -> GqlResult<g::PerfPageResult> {
        let app = &self.0;
        let listing = pg::page_filter(&selector).map_err(gql_error)?;
        pg::results_page(
            &app.perf,
            session_for(ctx, &self.0, &rest::LIST_PERF_PROFILE_RESULTS).await?,
            Some(&profile_id),
            &listing,
        )
        .await
        .map_err(gql_error)
    }

    async fn fetch_all_results(
        &self,
        ctx: &Context<'_>,
        selector: g::PageFilter,
    ) -> GqlResult<g::PerfPageResult> {
        let app = &self.0;
        let listing = pg::page_filter(&selector).map_err(gql_error)?;
        pg::results_page(
            &app.perf,
            session_for(ctx, &self.0, &rest::LIST_ALL_PERF_RESULTS).await?,
            None,
            &listing,
        )
        .await
        .map_err(gql_error)
    }

    async fn get_perf_result(
        &self,
        ctx: &Context<'_>,
        id: async_graphql::ID,
    ) -> GqlResult<Option<g::MesheryResult>> {
        let app = &self.0;
        match app
            .perf
            .result(
                session_for(ctx, &self.0, &rest::GET_PERF_RESULT).await?,
                &id,
            )
            .await
        {
            Ok(r) => pg::result_out(r).map(Some).map_err(gql_error),
            Err(crate::perf::PerfError::NoResult(_)) => Ok(None),
            Err(e) => Err(gql_error(e)),
        }
    }

    async fn fetch_patterns(
        &self,
        ctx: &Context<'_>,
        selector: g::PageFilter,
    ) -> GqlResult<g::PatternPageResult> {
        let app = &self.0;
        patterns_page(
            app,
            session_for(ctx, &self.0, &rest::LIST_PATTERNS).await?,
            &selector,
        )
        .await
        .map_err(gql_error)
    }

    async fn get_events(
        &self,
        ctx: &Context<'_>,
        selector: g::PageFilter,
    ) -> GqlResult<g::EventPage> {
        let app = &self.0;
        let listing = pg::page_filter(&selector).map_err(gql_error)?;
        let (events, total) = app
            .events
            .list(session(ctx)?, &Default::default(), &listing)
            .await
            .map_err(gql_error)?;
        let (page, page_size, total_count) = pg::page_numbers(&listing, total);
        Ok(g::EventPage {
            page,
            page_size,
            total_count,
            events: events.into_iter().map(event_out).collect(),
        })
    }

    async fn get_available_namespaces(
        &self,
        ctx: &Context<'_>,
        k8s_cluster_ids: Option<Vec<String>>,
    ) -> GqlResult<Vec<g::NameSpace>> {
        let owner = self
            .owner(ctx, &rest::GET_CLUSTER_RESOURCES_SUMMARY)
            .await?;
        gc::namespaces(&self.0, &owner, k8s_cluster_ids)
            .await
            .map_err(gql_error)
    }

    async fn get_operator_status(
        &self,
        ctx: &Context<'_>,
        connection_id: String,
    ) -> GqlResult<Option<g::MesheryControllersStatusListItem>> {
        let owner = self.owner(ctx, &rest::GET_CONNECTION).await?;
        gc::operator(&self.0, &owner, &connection_id)
            .await
            .map(Some)
            .map_err(gql_error)
    }

    async fn get_meshsync_status(
        &self,
        ctx: &Context<'_>,
        connection_id: String,
    ) -> GqlResult<g::OperatorControllerStatus> {
        let owner = self.owner(ctx, &rest::GET_CONNECTION).await?;
        gc::meshsync(&self.0, &owner, &connection_id)
            .await
            .map_err(gql_error)
    }

    async fn get_nats_status(
        &self,
        ctx: &Context<'_>,
        connection_id: String,
    ) -> GqlResult<g::OperatorControllerStatus> {
        let owner = self.owner(ctx, &rest::GET_CONNECTION).await?;
        gc::broker(&self.0, &owner, &connection_id)
            .await
            .map_err(gql_error)
    }

    async fn deploy_meshsync(
        &self,
        ctx: &Context<'_>,
        k8scontext_id: String,
    ) -> GqlResult<g::Status> {
        let owner = self.owner(ctx, &rest::GET_CONNECTION).await?;
        gc::context_status(&self.0, &owner, &k8scontext_id, false)
            .await
            .map_err(gql_error)
    }

    async fn connect_to_nats(
        &self,
        ctx: &Context<'_>,
        k8scontext_id: String,
    ) -> GqlResult<g::Status> {
        let owner = self.owner(ctx, &rest::GET_CONNECTION).await?;
        gc::context_status(&self.0, &owner, &k8scontext_id, true)
            .await
            .map_err(gql_error)
    }

    async fn resync_cluster(
        &self,
        ctx: &Context<'_>,
        selector: Option<g::ReSyncActions>,
        k8scontext_id: String,
    ) -> GqlResult<g::Status> {
        let owner = self.owner(ctx, &rest::UPDATE_CONNECTION).await?;
        let yes = |text: &str| text.trim().eq_ignore_ascii_case("true");
        let clear = selector.is_some_and(|s| yes(&s.clear_db) || yes(&s.hard_reset));
        gc::resync(&self.0, &owner, &k8scontext_id, clear)
            .await
            .map_err(gql_error)?;
        Ok(g::Status::Processing)
    }

    async fn get_kubectl_describe(
        &self,
        ctx: &Context<'_>,
        name: String,
        kind: String,
        namespace: String,
    ) -> GqlResult<g::KctlDescribeDetails> {
        let owner = self.owner(ctx, &rest::GET_CLUSTER_RESOURCE).await?;
        gc::describe(&self.0, &owner, &name, &kind, &namespace)
            .await
            .map_err(gql_error)
    }

    async fn fetch_pattern_catalog_content(
        &self,
        ctx: &Context<'_>,
        selector: Option<g::CatalogSelector>,
    ) -> GqlResult<Vec<g::CatalogPattern>> {
        session_for(ctx, &self.0, &rest::LIST_PATTERNS).await?;
        let listing = catalog_listing(selector.as_ref()).map_err(gql_error)?;
        let (patterns, _) = self.0.designs.catalog(&listing).await.map_err(gql_error)?;
        Ok(patterns
            .into_iter()
            .map(|p| g::CatalogPattern {
                id: async_graphql::ID(p.id),
                name: p.name,
                owner: p.user_id.clone(),
                user_id: p.user_id,
                pattern_file: p.pattern_file,
                location: no_location(),
                visibility: p.visibility.to_string(),
                catalog_data: Some(map_of(p.catalog_data)),
                created_at: Some(crate::store::stamp(p.created_at)),
                updated_at: Some(crate::store::stamp(p.updated_at)),
            })
            .collect())
    }

    async fn fetch_filter_catalog_content(
        &self,
        ctx: &Context<'_>,
        selector: Option<g::CatalogSelector>,
    ) -> GqlResult<Vec<g::CatalogFilter>> {
        session_for(ctx, &self.0, &rest::LIST_PATTERNS).await?;
        // Checked as the design catalog's, though no filter is kept to list.
        catalog_listing(selector.as_ref()).map_err(gql_error)?;
        Ok(Vec::new())
    }

    async fn get_mesh_model_summary(
        &self,
        ctx: &Context<'_>,
        selector: g::MeshModelSummarySelector,
    ) -> GqlResult<g::MeshModelSummary> {
        session(ctx)?;
        model_summary(&self.0, &selector).map_err(gql_error)
    }

    async fn fetch_telemetry_components(
        &self,
        ctx: &Context<'_>,
        contexts: Option<Vec<String>>,
    ) -> GqlResult<Vec<Option<g::TelemetryComp>>> {
        let owner = self.owner(ctx, &rest::LIST_CLUSTER_RESOURCES).await?;
        gc::telemetry(&self.0, &owner, contexts)
            .await
            .map_err(gql_error)
    }

    async fn get_available_addons(
        &self,
        ctx: &Context<'_>,
        filter: Option<g::ServiceMeshFilter>,
    ) -> GqlResult<Vec<g::AddonList>> {
        let owner = self.owner(ctx, &rest::LIST_CLUSTER_RESOURCES).await?;
        gc::addons(&self.0, &owner, filter).await.map_err(gql_error)
    }

    async fn get_control_planes(
        &self,
        ctx: &Context<'_>,
        filter: Option<g::ServiceMeshFilter>,
    ) -> GqlResult<Vec<g::ControlPlane>> {
        let owner = self.owner(ctx, &rest::LIST_CLUSTER_RESOURCES).await?;
        Ok(gc::planes(&self.0, &owner, filter)
            .await
            .map_err(gql_error)?
            .0)
    }

    async fn get_data_planes(
        &self,
        ctx: &Context<'_>,
        filter: Option<g::ServiceMeshFilter>,
    ) -> GqlResult<Vec<g::DataPlane>> {
        let owner = self.owner(ctx, &rest::LIST_CLUSTER_RESOURCES).await?;
        Ok(gc::planes(&self.0, &owner, filter)
            .await
            .map_err(gql_error)?
            .1)
    }

    async fn perf_runs(&self, ctx: &Context<'_>) -> GqlResult<Vec<g::PerfRun>> {
        let app = &self.0;
        Ok(app
            .perf
            .runs(session_for(ctx, &self.0, &rest::LIST_PERF_RUNS).await?)
            .await
            .map_err(gql_error)?
            .into_iter()
            .map(pg::run_out)
            .collect())
    }

    async fn version(&self, _ctx: &Context<'_>) -> GqlResult<g::Version> {
        let v = self.0.version();
        Ok(g::Version {
            build: v.build,
            latest: v.latest,
            outdated: v.outdated,
            commitsha: v.commitsha,
            release_channel: v.release_channel,
        })
    }

    async fn providers(&self, _ctx: &Context<'_>) -> GqlResult<Vec<g::Provider>> {
        Ok(self
            .0
            .providers
            .list()
            .await
            .into_values()
            .map(|p| g::Provider {
                name: p.provider_name,
                r#type: match p.provider_type {
                    models::ProviderType::Local => g::ProviderType::Local,
                    models::ProviderType::Remote => g::ProviderType::Remote,
                },
                url: p.provider_url,
                description: p.provider_description,
            })
            .collect())
    }

    async fn user(&self, ctx: &Context<'_>) -> GqlResult<g::User> {
        let u = session(ctx)?.user.clone();
        Ok(g::User {
            id: u.id,
            user_id: u.user_id,
            user_name: u.user_name,
            first_name: u.first_name,
            last_name: u.last_name,
            email: u.email,
            avatar_url: u.avatar_url,
            provider: u.provider,
            role_names: u.role_names,
        })
    }

    async fn user_prefs(&self, ctx: &Context<'_>) -> GqlResult<g::UserPrefs> {
        let app = &self.0;
        let prefs = app.prefs.get(session(ctx)?).await.map_err(gql_error)?;
        Ok(prefs_out(prefs))
    }
}

impl g::MutationResolver for Resolver {
    async fn save_performance_profile(
        &self,
        ctx: &Context<'_>,
        input: g::PerfProfileInput,
    ) -> GqlResult<g::PerfProfile> {
        let app = &self.0;
        let op = match input.id {
            Some(_) => &rest::UPDATE_PERF_PROFILE,
            None => &rest::SAVE_PERF_PROFILE,
        };
        let session = session_for(ctx, app, op).await?;
        let saved = app
            .perf
            .save_profile(session, pg::profile_in(input).map_err(gql_error)?)
            .await
            .map_err(gql_error)?;
        Ok(pg::profile_out(saved))
    }

    async fn delete_performance_profile(
        &self,
        ctx: &Context<'_>,
        input: g::DeletePerfProfileInput,
    ) -> GqlResult<String> {
        let app = &self.0;
        app.perf
            .delete_profile(
                session_for(ctx, &self.0, &rest::DELETE_PERF_PROFILE).await?,
                &input.id,
            )
            .await
            .map_err(gql_error)?;
        Ok(input.id)
    }

    async fn run_performance_profile(
        &self,
        ctx: &Context<'_>,
        input: g::RunPerfProfileInput,
    ) -> GqlResult<g::PerfRun> {
        let app = &self.0;
        pg::run_profile(
            &app.perf,
            session_for(ctx, &self.0, &rest::RUN_PERF_PROFILE).await?,
            &input.profile_id,
        )
        .await
        .map_err(gql_error)
    }

    async fn cancel_performance_run(
        &self,
        ctx: &Context<'_>,
        input: g::CancelPerfRunInput,
    ) -> GqlResult<bool> {
        self.0
            .perf
            .cancel(
                session_for(ctx, &self.0, &rest::CANCEL_PERF_RUN).await?,
                &input.run_id,
            )
            .await
            .map_err(gql_error)
    }

    async fn deploy_pattern(
        &self,
        ctx: &Context<'_>,
        input: g::DeployPatternInput,
    ) -> GqlResult<g::PatternDeployResult> {
        let options = crate::deploy::Options {
            undeploy: input.undeploy.unwrap_or(false),
            dry_run: input.dry_run.unwrap_or(false),
            skip_crd: input.skip_crd.unwrap_or(false),
            verify: input.verify.unwrap_or(false),
        };
        let op = match options.undeploy {
            true => &rest::UNDEPLOY_PATTERN,
            false => &rest::DEPLOY_PATTERN,
        };
        let session = session_for(ctx, &self.0, op).await?;
        let r = self
            .0
            .deploy_design(
                session,
                input.pattern_id.as_deref(),
                input.pattern_file.as_deref(),
                &input.contexts.unwrap_or_default(),
                options,
            )
            .await
            .map_err(gql_error)?;
        Ok(g::PatternDeployResult {
            action: r.action.to_string(),
            dry_run: r.dry_run,
            succeeded: r.succeeded,
            pattern_id: r.pattern_id,
            results: r
                .results
                .into_iter()
                .map(|o| g::DeployOutcome {
                    component: o.component,
                    kind: o.kind,
                    api_version: o.api_version,
                    name: o.name,
                    namespace: o.namespace,
                    context_id: o.context_id,
                    context_name: o.context_name,
                    status: o.status.to_string(),
                    message: o.message,
                    field: o.field,
                    ready: o.ready,
                })
                .collect(),
        })
    }

    async fn save_pattern(
        &self,
        ctx: &Context<'_>,
        input: g::PatternInput,
    ) -> GqlResult<g::PatternResult> {
        let app = &self.0;
        let visibility = input
            .visibility
            .as_deref()
            .map(|v| {
                v.parse::<models::PatternVisibility>().map_err(|_| {
                    async_graphql::Error::new(format!(
                        "visibility {v:?}: use private, public or published"
                    ))
                })
            })
            .transpose()?;
        let catalog = object_of("catalogData", input.catalog_data)?;
        let checked =
            crate::designs::check(&input.pattern_file, &app.registry).map_err(gql_error)?;
        let (pattern, _) = app
            .designs
            .save(
                session_for(ctx, &self.0, &rest::SAVE_PATTERN).await?,
                input.id.as_deref(),
                input.name.as_deref(),
                input.pattern_file,
                &checked,
                visibility,
                catalog,
                "save",
            )
            .await
            .map_err(gql_error)?;
        Ok(pattern_out(pattern))
    }

    async fn delete_pattern(
        &self,
        ctx: &Context<'_>,
        input: g::DeletePatternInput,
    ) -> GqlResult<String> {
        let app = &self.0;
        let n = app
            .designs
            .delete(
                session_for(ctx, &self.0, &rest::DELETE_PATTERN).await?,
                std::slice::from_ref(&input.id),
            )
            .await
            .map_err(gql_error)?;
        if n == 0 {
            return Err(gql_error(ApiError::not_found(format!(
                "no design {:?} of yours",
                input.id
            ))));
        }
        Ok(input.id)
    }

    async fn change_operator_status(
        &self,
        ctx: &Context<'_>,
        input: Option<g::OperatorStatusInput>,
    ) -> GqlResult<g::Status> {
        let session = session_for(ctx, &self.0, &rest::UPDATE_CONNECTION).await?;
        let input = input.ok_or_else(|| gql_error(ApiError::bad_request("input is required")))?;
        let on = match input.target_status {
            g::Status::Enabled | g::Status::Deployed | g::Status::Connected => true,
            g::Status::Disabled => false,
            other => {
                return Err(gql_error(ApiError::bad_request(format!(
                    "targetStatus {other:?} switches nothing: use ENABLED (or DEPLOYED) or DISABLED"
                ))));
            }
        };
        gc::change_operator(&self.0, session, &input.context_id, on)
            .await
            .map_err(gql_error)?;
        Ok(g::Status::Processing)
    }

    async fn change_adapter_status(
        &self,
        ctx: &Context<'_>,
        input: Option<g::AdapterStatusInput>,
    ) -> GqlResult<g::Status> {
        session(ctx)?;
        let adapter = input.map(|i| i.adapter).unwrap_or_default();
        Err(gql_error(ApiError::new(
            501,
            codes::NOT_SUPPORTED,
            format!("meshery-rs runs no Meshery adapters, so adapter {adapter:?} cannot be deployed or undeployed"),
        ).remedy("Deploy a mesh with a design (deployPattern) instead.")))
    }

    async fn update_user_prefs(
        &self,
        ctx: &Context<'_>,
        input: g::UserPrefsInput,
    ) -> GqlResult<g::UserPrefs> {
        let app = &self.0;
        let update = models::UserPrefsUpdate {
            anonymous_usage_stats: input.anonymous_usage_stats,
            anonymous_perf_results: input.anonymous_perf_results,
            users_extension_preferences: object_of(
                "usersExtensionPreferences",
                input.users_extension_preferences,
            )?,
            dashboard_preferences: object_of("dashboardPreferences", input.dashboard_preferences)?,
            // Meshery's other preferences are REST-only until the GraphQL schema has them.
            load_test_prefs: None,
            selected_organization_id: None,
            selected_workspace_for_organizations: None,
            remote_provider_preferences: None,
        };
        let prefs = app
            .prefs
            .update(session(ctx)?, update)
            .await
            .map_err(gql_error)?;
        Ok(prefs_out(prefs))
    }
}

impl g::SubscriptionResolver for Resolver {
    async fn subscribe_cluster_resources(
        &self,
        ctx: &Context<'_>,
        k8scontext_i_ds: Option<Vec<String>>,
        namespace: Option<String>,
    ) -> GqlResult<BoxStream<'static, GqlResult<Arc<g::ClusterResources>>>> {
        let owner = self.owner(ctx, &rest::SUBSCRIBE_CLUSTER_RESOURCES).await?;
        let contexts = gc::contexts(k8scontext_i_ds);
        let watched = contexts.clone();
        followed(self.0.clone(), owner, watched, move |app, owner| {
            let (contexts, namespace) = (contexts.clone(), namespace.clone());
            Box::pin(async move {
                cluster_resources(&app, &owner, contexts.as_deref(), namespace.as_deref()).await
            })
        })
        .await
    }

    async fn subscribe_perf_profiles(
        &self,
        ctx: &Context<'_>,
        selector: g::PageFilter,
    ) -> GqlResult<BoxStream<'static, GqlResult<Arc<g::PerfPageProfiles>>>> {
        let app = self.0.clone();
        let session = session_for(ctx, &self.0, &rest::LIST_PERF_PROFILES)
            .await?
            .clone();
        // Checked now, so a bad selector fails the subscription instead of each page.
        pg::page_filter(&selector).map_err(gql_error)?;
        let changes = app.perf.profiles_changed();
        let pages = pg::live_page(
            app,
            session,
            changes,
            |owner: &Option<String>, me: &str| owner.as_deref().is_none_or(|o| o == me),
            move |app: App, session: Session| -> futures_util::future::BoxFuture<'static, _> {
                let selector = selector.clone();
                Box::pin(async move {
                    let listing = pg::page_filter(&selector)?;
                    pg::profiles_page(&app.perf, &session, &listing).await
                })
            },
        );
        Ok(pages.map(|p| p.map(Arc::new).map_err(gql_error)).boxed())
    }

    async fn subscribe_perf_results(
        &self,
        ctx: &Context<'_>,
        selector: g::PageFilter,
        profile_id: String,
    ) -> GqlResult<BoxStream<'static, GqlResult<Arc<g::PerfPageResult>>>> {
        let app = self.0.clone();
        let session = session_for(ctx, &self.0, &rest::LIST_PERF_PROFILE_RESULTS)
            .await?
            .clone();
        pg::page_filter(&selector).map_err(gql_error)?;
        app.perf
            .profile(&session, &profile_id)
            .await
            .map_err(gql_error)?;
        let changes = app.perf.saved();
        let pages = pg::live_page(
            app,
            session,
            changes,
            |owner: &Option<String>, me: &str| owner.as_deref().is_none_or(|o| o == me),
            move |app: App, session: Session| -> futures_util::future::BoxFuture<'static, _> {
                let (selector, profile_id) = (selector.clone(), profile_id.clone());
                Box::pin(async move {
                    let listing = pg::page_filter(&selector)?;
                    pg::results_page(&app.perf, &session, Some(&profile_id), &listing).await
                })
            },
        );
        Ok(pages.map(|p| p.map(Arc::new).map_err(gql_error)).boxed())
    }

    async fn subscribe_perf_run_progress(
        &self,
        ctx: &Context<'_>,
        run_id: String,
    ) -> GqlResult<BoxStream<'static, GqlResult<Arc<g::PerfFrame>>>> {
        let app = &self.0;
        let frames = pg::follow(
            &app.perf,
            session_for(ctx, &self.0, &rest::LIST_PERF_RUNS).await?,
            &run_id,
        )
        .await
        .map_err(gql_error)?;
        Ok(frames.map(|f| f.map(Arc::new).map_err(gql_error)).boxed())
    }

    async fn subscribe_configuration(
        &self,
        ctx: &Context<'_>,
        pattern_selector: Option<g::PageFilter>,
        filter_selector: Option<g::PageFilter>,
        application_selector: Option<g::PageFilter>,
        selector: Option<g::PageFilter>,
    ) -> GqlResult<BoxStream<'static, GqlResult<Arc<g::ConfigurationPage>>>> {
        let app = self.0.clone();
        let session = session_for(ctx, &self.0, &rest::LIST_PATTERNS)
            .await?
            .clone();
        let selectors = Arc::new(Selectors {
            patterns: pattern_selector.or(selector),
            filters: filter_selector,
            applications: application_selector,
        });
        if selectors.patterns.is_none()
            && selectors.filters.is_none()
            && selectors.applications.is_none()
        {
            return Err(gql_error(ApiError::bad_request(
                "give patternSelector (or selector), filterSelector or applicationSelector",
            )));
        }
        // Checked now, so a bad selector fails the subscription instead of each page.
        for s in [
            &selectors.patterns,
            &selectors.filters,
            &selectors.applications,
        ]
        .into_iter()
        .flatten()
        {
            pg::page_filter(s).map_err(gql_error)?;
        }
        let changes = app.designs.changes();
        let pages = pg::live_page(
            app,
            session,
            changes,
            |owner: &Option<String>, me: &str| owner.as_deref().is_none_or(|o| o == me),
            move |app: App, session: Session| -> futures_util::future::BoxFuture<'static, _> {
                let selectors = selectors.clone();
                Box::pin(async move { selectors.page(&app, &session).await })
            },
        );
        Ok(pages.map(|p| p.map(Arc::new).map_err(gql_error)).boxed())
    }

    async fn subscribe_k8s_context(
        &self,
        ctx: &Context<'_>,
        selector: g::PageFilter,
    ) -> GqlResult<BoxStream<'static, GqlResult<Arc<g::K8sContextsPage>>>> {
        let app = self.0.clone();
        let session = session_for(ctx, &self.0, &rest::LIST_K8S_CONTEXTS)
            .await?
            .clone();
        let owner = session.owner();
        followed(app, owner, None, move |app, _| {
            let (session, selector) = (session.clone(), selector.clone());
            Box::pin(async move { gc::contexts_page(&app, &session, &selector).await })
        })
        .await
    }

    async fn subscribe_meshery_controllers_status(
        &self,
        ctx: &Context<'_>,
        connection_ids: Option<Vec<String>>,
    ) -> GqlResult<BoxStream<'static, GqlResult<Arc<Vec<g::MesheryControllersStatusListItem>>>>>
    {
        let app = self.0.clone();
        let owner = self.owner(ctx, &rest::GET_CONNECTION).await?;
        let wanted = gc::contexts(connection_ids);
        let full = followed(app, owner, None, move |app, owner| {
            let wanted = wanted.clone();
            Box::pin(async move { gc::controllers(&app, &owner, wanted.as_deref()).await })
        })
        .await?;
        // Meshery sends the whole list once, then only the items that changed.
        let mut last: Vec<g::MesheryControllersStatusListItem> = Vec::new();
        Ok(full
            .map(move |now| {
                now.map(|now| {
                    let changed: Vec<_> = if last.is_empty() {
                        now.to_vec()
                    } else {
                        now.iter().filter(|i| !last.contains(i)).cloned().collect()
                    };
                    last = now.to_vec();
                    Arc::new(changed)
                })
            })
            .filter(|items| std::future::ready(items.as_ref().map_or(true, |i| !i.is_empty())))
            .boxed())
    }

    async fn subscribe_mesh_model_summary(
        &self,
        ctx: &Context<'_>,
        selector: g::MeshModelSummarySelector,
    ) -> GqlResult<BoxStream<'static, GqlResult<Arc<g::MeshModelSummary>>>> {
        session(ctx)?;
        let app = self.0.clone();
        // Subscribed before the first answer is read: no change falls in between.
        let notices = app.bus.notices(crate::bus::Topic::Registry);
        let first = model_summary(&app, &selector).map_err(gql_error)?;
        let stop = app.inventory.stopping();
        let next =
            futures_util::stream::unfold((first.clone(), notices), move |(last, mut notices)| {
                let (stop, app, selector) = (stop.clone(), app.clone(), selector.clone());
                async move {
                    loop {
                        tokio::select! {
                            _ = stop.cancelled() => return None,
                            n = notices.recv() => {
                                if let Err(tokio::sync::broadcast::error::RecvError::Closed) = n {
                                    return None;
                                }
                            }
                        }
                        match model_summary(&app, &selector) {
                            Ok(now) if now == last => continue,
                            Ok(now) => {
                                return Some((Ok(Arc::new(now.clone())), (now, notices)));
                            }
                            Err(e) => return Some((Err(gql_error(e)), (last, notices))),
                        }
                    }
                }
            });
        Ok(
            futures_util::stream::once(std::future::ready(Ok(Arc::new(first))))
                .chain(next)
                .boxed(),
        )
    }

    async fn subscribe_mesh_sync_events(
        &self,
        ctx: &Context<'_>,
        connection_ids: Option<Vec<String>>,
        event_types: Option<Vec<g::MeshSyncEventType>>,
    ) -> GqlResult<BoxStream<'static, GqlResult<Arc<g::MeshSyncEvent>>>> {
        let types: Option<Vec<&'static str>> = event_types.filter(|t| !t.is_empty()).map(|t| {
            t.into_iter()
                .map(|t| match t {
                    g::MeshSyncEventType::Added => "ADDED",
                    g::MeshSyncEventType::Modified => "MODIFIED",
                    g::MeshSyncEventType::Deleted => "DELETED",
                })
                .collect()
        });
        let owner = self.owner(ctx, &rest::LIST_CLUSTER_RESOURCES).await?;
        let contexts = gc::contexts_of_connections(&self.0, &owner, connection_ids)
            .await
            .map_err(gql_error)?;
        let events = self.0.inventory.object_events();
        let stop = self.0.inventory.stopping();
        Ok(futures_util::stream::unfold(events, move |mut events| {
            let (owner, contexts, stop, types) =
                (owner.clone(), contexts.clone(), stop.clone(), types.clone());
            async move {
                loop {
                    let next = tokio::select! {
                        _ = stop.cancelled() => return None,
                        next = events.recv() => next,
                    };
                    match next {
                        Ok(e)
                            if e.owner == owner
                                && contexts.as_ref().is_none_or(|c| c.contains(&e.context_id))
                                && types.as_ref().is_none_or(|t| t.contains(&e.kind)) =>
                        {
                            let out = g::MeshSyncEvent {
                                r#type: e.kind.to_string(),
                                object: g::Any(e.object.clone()),
                                connection_id: crate::kubernetes::connection_id(
                                    &owner,
                                    &e.context_id,
                                ),
                                context_id: e.context_id.clone(),
                            };
                            return Some((Ok(Arc::new(out)), events));
                        }
                        Ok(_) => {}
                        // Fell behind: the oldest are lost, what follows still arrives.
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                            tracing::debug!(lost = n, "a MeshSync events subscriber fell behind");
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                    }
                }
            }
        })
        .boxed())
    }

    async fn listen_to_mesh_sync_events(
        &self,
        ctx: &Context<'_>,
        k8scontext_ids: Option<Vec<String>>,
    ) -> GqlResult<
        BoxStream<'static, GqlResult<Arc<Option<g::OperatorControllerStatusPerK8sContext>>>>,
    > {
        per_context(self, ctx, k8scontext_ids, |app, owner, id| {
            Box::pin(async move { gc::meshsync_of_context(&app, &owner, &id).await })
        })
        .await
    }

    async fn listen_to_operator_state(
        &self,
        ctx: &Context<'_>,
        k8scontext_ids: Option<Vec<String>>,
    ) -> GqlResult<BoxStream<'static, GqlResult<Arc<Option<g::OperatorStatusPerK8sContext>>>>> {
        per_context(self, ctx, k8scontext_ids, |app, owner, id| {
            Box::pin(async move { gc::operator_of_context(&app, &owner, &id).await })
        })
        .await
    }

    async fn subscribe_broker_connection(
        &self,
        ctx: &Context<'_>,
    ) -> GqlResult<BoxStream<'static, GqlResult<Arc<bool>>>> {
        session(ctx)?;
        // The broker is the server itself: up for as long as this stream can be read.
        Ok(
            futures_util::stream::once(std::future::ready(Ok(Arc::new(true))))
                .chain(futures_util::stream::pending())
                .boxed(),
        )
    }

    async fn listen_to_addon_state(
        &self,
        ctx: &Context<'_>,
        filter: Option<g::ServiceMeshFilter>,
    ) -> GqlResult<BoxStream<'static, GqlResult<Arc<Vec<g::AddonList>>>>> {
        let (app, owner) = self.infra(ctx).await?;
        followed(app, owner, None, move |app, owner| {
            let filter = filter.clone();
            Box::pin(async move { gc::addons(&app, &owner, filter).await })
        })
        .await
    }

    async fn listen_to_control_plane_state(
        &self,
        ctx: &Context<'_>,
        filter: Option<g::ServiceMeshFilter>,
    ) -> GqlResult<BoxStream<'static, GqlResult<Arc<Vec<g::ControlPlane>>>>> {
        let (app, owner) = self.infra(ctx).await?;
        followed(app, owner, None, move |app, owner| {
            let filter = filter.clone();
            Box::pin(async move { Ok(gc::planes(&app, &owner, filter).await?.0) })
        })
        .await
    }

    async fn listen_to_data_plane_state(
        &self,
        ctx: &Context<'_>,
        filter: Option<g::ServiceMeshFilter>,
    ) -> GqlResult<BoxStream<'static, GqlResult<Arc<Vec<g::DataPlane>>>>> {
        let (app, owner) = self.infra(ctx).await?;
        followed(app, owner, None, move |app, owner| {
            let filter = filter.clone();
            Box::pin(async move { Ok(gc::planes(&app, &owner, filter).await?.1) })
        })
        .await
    }

    async fn subscribe_events(
        &self,
        ctx: &Context<'_>,
    ) -> GqlResult<BoxStream<'static, GqlResult<Arc<g::Event>>>> {
        let app = &self.0;
        Ok(app
            .events
            .subscribe(session(ctx)?, None)
            .map(|p| Ok(p.shared(|p| Arc::new(event_out(p.event.clone())))))
            .boxed())
    }

    async fn subscribe_user_prefs(
        &self,
        ctx: &Context<'_>,
    ) -> GqlResult<BoxStream<'static, GqlResult<Arc<g::UserPrefs>>>> {
        let app = &self.0;
        Ok(app
            .prefs
            .follow(session(ctx)?)
            .map(|p| p.map(|p| Arc::new(prefs_out(p))).map_err(gql_error))
            .boxed())
    }
}

/// `gql_clusters::follow` as a subscription's stream.
async fn followed<T, F>(
    app: App,
    owner: String,
    contexts: Option<Vec<String>>,
    value: F,
) -> GqlResult<BoxStream<'static, GqlResult<Arc<T>>>>
where
    T: PartialEq + Clone + Send + Sync + 'static,
    F: Fn(App, String) -> futures_util::future::BoxFuture<'static, Result<T, ApiError>>
        + Send
        + Sync
        + 'static,
{
    Ok(gc::follow(app, owner, contexts, value)
        .await
        .map_err(gql_error)?
        .map(|r| r.map_err(gql_error))
        .boxed())
}

impl Resolver {
    /// The owner of a field that does what REST operation `op` does (with its key).
    async fn owner(&self, ctx: &Context<'_>, op: &'static rest::Operation) -> GqlResult<String> {
        Ok(session_for(ctx, &self.0, op).await?.owner())
    }

    /// The app and owner of a field over the user's cluster objects.
    async fn infra(&self, ctx: &Context<'_>) -> GqlResult<(App, String)> {
        let owner = self.owner(ctx, &rest::LIST_CLUSTER_RESOURCES).await?;
        Ok((self.0.clone(), owner))
    }
}

/// Meshery's per-context streams (`listenToOperatorState`, `listenToMeshSyncEvents`):
/// each named context's value now, then again whenever it changes.
async fn per_context<T>(
    resolver: &Resolver,
    ctx: &Context<'_>,
    ids: Option<Vec<String>>,
    value: impl Fn(App, String, String) -> futures_util::future::BoxFuture<'static, Result<T, ApiError>>
    + Send
    + Sync
    + Copy
    + 'static,
) -> GqlResult<BoxStream<'static, GqlResult<Arc<Option<T>>>>>
where
    T: PartialEq + Clone + Send + Sync + 'static,
{
    let app = resolver.0.clone();
    let owner = session_for(ctx, &app, &rest::GET_CONNECTION).await?.owner();
    let ids: Vec<String> = match gc::contexts(ids) {
        Some(ids) if !(ids.len() == 1 && ids[0] == "all") => ids,
        _ => gc::rows(&app, &owner)
            .await
            .map_err(gql_error)?
            .into_iter()
            .map(|r| r.id)
            .collect(),
    };
    let mut streams = Vec::new();
    for id in ids {
        let contexts = Some(vec![id.clone()]);
        streams.push(
            followed(app.clone(), owner.clone(), contexts, move |app, owner| {
                value(app, owner, id.clone())
            })
            .await?,
        );
    }
    Ok(futures_util::stream::select_all(streams)
        .map(|v| v.map(|v| Arc::new(Some((*v).clone()))))
        .boxed())
}

/// How many components or relationships each model of the registry has.
fn model_summary(
    app: &App,
    selector: &g::MeshModelSummarySelector,
) -> Result<g::MeshModelSummary, ApiError> {
    let mut components = std::collections::BTreeMap::<String, i32>::new();
    let mut relationships = std::collections::BTreeMap::<String, i32>::new();
    for m in app.registry.models(None, None, None) {
        *components.entry(m.name.clone()).or_default() +=
            i32::try_from(m.components.len()).unwrap_or(i32::MAX);
        *relationships.entry(m.name.clone()).or_default() +=
            i32::try_from(m.relationships.len()).unwrap_or(i32::MAX);
    }
    let list = |counts: std::collections::BTreeMap<String, i32>| {
        counts
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .collect::<Vec<_>>()
    };
    match selector.r#type.trim() {
        "components" => Ok(g::MeshModelSummary {
            components: Some(
                list(components)
                    .into_iter()
                    .map(|(name, count)| g::MeshModelComponent { name, count })
                    .collect(),
            ),
            relationships: None,
        }),
        "relationships" => Ok(g::MeshModelSummary {
            components: None,
            relationships: Some(
                list(relationships)
                    .into_iter()
                    .map(|(name, count)| g::MeshModelRelationship { name, count })
                    .collect(),
            ),
        }),
        other => Err(ApiError::bad_request(format!(
            "selector type {other:?}: use components or relationships"
        ))),
    }
}

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

/// Which JSON flavour the client accepts (GraphQL over HTTP, "Accept").
fn negotiate(headers: &HeaderMap) -> Option<&'static str> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Some("application/json");
    };
    let mut best: Option<(&'static str, f32)> = None;
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        let candidate = match media.as_str() {
            GRAPHQL_RESPONSE_JSON => GRAPHQL_RESPONSE_JSON,
            "application/json" | "application/*" | "*/*" => "application/json",
            _ => continue,
        };
        if q > 0.0 && best.is_none_or(|(_, bq)| q > bq) {
            best = Some((candidate, q));
        }
    }
    best.map(|(m, _)| m)
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message)
        .remedy("Send {\"query\": \"...\"} as described by GraphQL over HTTP.")
}

/// Reads the GraphQL request parameters from a JSON object.
fn request_from(value: serde_json::Value) -> Result<async_graphql::Request, ApiError> {
    let serde_json::Value::Object(mut map) = value else {
        return Err(invalid("the request must be a JSON object"));
    };
    let query = match map.remove("query") {
        // An empty document is no request at all (the schema asks for one character).
        Some(serde_json::Value::String(q)) if q.trim().is_empty() => {
            return Err(invalid("`query` is empty"));
        }
        Some(serde_json::Value::String(q)) => q,
        Some(_) => return Err(invalid("`query` must be a string")),
        None => return Err(invalid("`query` is missing")),
    };
    let mut request = async_graphql::Request::new(query);
    match map.remove("operationName") {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::String(name)) => request = request.operation_name(name),
        Some(_) => return Err(invalid("`operationName` must be a string")),
    }
    match map.remove("variables") {
        None | Some(serde_json::Value::Null) => {}
        Some(v @ serde_json::Value::Object(_)) => {
            request = request.variables(async_graphql::Variables::from_json(v));
        }
        Some(_) => return Err(invalid("`variables` must be an object")),
    }
    match map.remove("extensions") {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::Object(ext)) => {
            for (k, v) in ext {
                let v = async_graphql::Value::from_json(v)
                    .map_err(|e| invalid(format!("`extensions`: {e}")))?;
                request.extensions.insert(k, v);
            }
        }
        Some(_) => return Err(invalid("`extensions` must be an object")),
    }
    Ok(request)
}

fn from_query_string(query: &str) -> Result<serde_json::Value, ApiError> {
    let mut map = serde_json::Map::new();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        let value = match k.as_ref() {
            // An empty value is an absent one (forms send `variables=`).
            "variables" | "extensions" if v.trim().is_empty() => continue,
            "variables" | "extensions" => {
                serde_json::from_str(&v).map_err(|e| invalid(format!("`{k}` is not JSON: {e}")))?
            }
            _ => serde_json::Value::String(v.into_owned()),
        };
        map.insert(k.into_owned(), value);
    }
    Ok(serde_json::Value::Object(map))
}

/// Whether the operation a GET request would run is a mutation (refused over GET).
fn is_mutation(request: &mut async_graphql::Request) -> bool {
    operation(request)
        .is_some_and(|op| op.node.ty == async_graphql::parser::types::OperationType::Mutation)
}

/// The operation `request` would run, when its document parses and names it.
pub(crate) fn operation(
    request: &mut async_graphql::Request,
) -> Option<&async_graphql::Positioned<async_graphql::parser::types::OperationDefinition>> {
    let name = request.operation_name.clone();
    let doc = request.parsed_query().ok()?;
    match (&doc.operations, name.as_deref()) {
        (async_graphql::parser::types::DocumentOperations::Single(op), _) => Some(op),
        (async_graphql::parser::types::DocumentOperations::Multiple(ops), Some(name)) => {
            ops.get(name)
        }
        (async_graphql::parser::types::DocumentOperations::Multiple(ops), None)
            if ops.len() == 1 =>
        {
            ops.values().next()
        }
        _ => None,
    }
}

/// GraphQL over HTTP (GET and POST); WebSocket upgrades are taken by `gql_ws::Upgrades`.
async fn http(graphql: &Graphql, session: Session, request: Request) -> Response {
    let app = &graphql.app;
    let (parts, body) = request.into_parts();
    let Some(media) = negotiate(&parts.headers) else {
        return ApiError::new(
            406,
            codes::NOT_ACCEPTABLE,
            "cannot answer in any media type the request accepts",
        )
        .remedy("Accept application/json or application/graphql-response+json.")
        .into_response();
    };
    let params = if parts.method == Method::GET {
        from_query_string(parts.uri.query().unwrap_or(""))
    } else {
        read_json_body(app, &parts, body).await
    };
    let mut request = match params.and_then(request_from) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let parsed = graphql.parse_cached(&mut request);
    if parts.method == Method::GET && is_mutation(&mut request) {
        let mut response = ApiError::new(
            405,
            codes::METHOD_NOT_ALLOWED,
            "mutations are not allowed over GET",
        )
        .remedy("Send mutations with POST.")
        .into_response();
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    let response = graphql.execute(request.data(session), parsed).await;
    // A request error (nothing executed) is a 400 for graphql-response+json clients; plain
    // JSON clients get 200 with `errors`, as GraphQL over HTTP asks.
    let request_error = response.data == async_graphql::Value::Null && !response.errors.is_empty();
    if !request_error {
        // The common case: the response as it is, serialized once.
        return match serde_json::to_vec(&response) {
            Ok(bytes) => (
                StatusCode::OK,
                [(header::CONTENT_TYPE, HeaderValue::from_static(media))],
                bytes,
            )
                .into_response(),
            Err(e) => ApiError::internal("encoding the GraphQL response", e).into_response(),
        };
    }
    let mut body = match serde_json::to_value(&response) {
        Ok(v) => v,
        Err(e) => return ApiError::internal("encoding the GraphQL response", e).into_response(),
    };
    if let serde_json::Value::Object(out) = &mut body {
        // Nothing ran, so there is no `data` entry at all.
        out.remove("data");
    }
    let status = if media == GRAPHQL_RESPONSE_JSON {
        // Both a GraphQL response and a MeshKit error body.
        let message = response
            .errors
            .first()
            .map(|e| e.message.clone())
            .unwrap_or_default();
        if let (serde_json::Value::Object(out), Ok(serde_json::Value::Object(mk))) =
            (&mut body, serde_json::to_value(invalid(message).body()))
        {
            out.extend(mk);
        }
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let mut out = (status, axum::Json(body)).into_response();
    out.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    out
}

async fn read_json_body(
    app: &App,
    parts: &axum::http::request::Parts,
    body: axum::body::Body,
) -> Result<serde_json::Value, ApiError> {
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if content_type != "application/json" {
        return Err(ApiError::new(
            415,
            codes::UNSUPPORTED_MEDIA_TYPE,
            format!("unsupported content type {content_type:?}; send application/json"),
        ));
    }
    let bytes = crate::app::read_body(app, body).await?;
    if bytes.is_empty() {
        return Err(invalid("the request body is empty"));
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| invalid(format!("the request body is not JSON: {e}")))
}

/// The paths where GraphQL lives, and where WebSocket upgrades are taken.
pub const GRAPHQL_PATHS: &[&str] = &["/api/system/graphql/query", "/api/graphql/query"];
