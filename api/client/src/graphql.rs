//! The GraphQL client: cynic operations over the schema registered at build time.

#[cynic::schema("meshery")]
pub mod schema {}

/// A JSON object (`Map` scalar).
#[derive(cynic::Scalar, Debug, Clone, PartialEq)]
#[cynic(graphql_type = "Map")]
pub struct Map(pub serde_json::Value);

/// An RFC 3339 time (`Time` scalar).
#[derive(cynic::Scalar, Debug, Clone, PartialEq)]
#[cynic(graphql_type = "Time")]
pub struct Time(pub String);

#[derive(cynic::QueryFragment, Debug, Clone, PartialEq)]
pub struct Version {
    pub build: String,
    pub latest: String,
    pub outdated: bool,
    pub commitsha: String,
    pub release_channel: String,
}

#[derive(cynic::Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[cynic(rename_all = "lowercase")]
pub enum ProviderType {
    Local,
    Remote,
}

#[derive(cynic::QueryFragment, Debug, Clone, PartialEq)]
pub struct Provider {
    pub name: String,
    #[cynic(rename = "type")]
    pub kind: ProviderType,
    pub url: String,
    pub description: Vec<String>,
}

#[derive(cynic::QueryFragment, Debug, Clone, PartialEq)]
pub struct User {
    pub id: String,
    pub user_id: String,
    pub user_name: String,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub avatar_url: String,
    pub provider: String,
    pub role_names: Vec<String>,
}

#[derive(cynic::QueryFragment, Debug, Clone, PartialEq)]
pub struct UserPrefs {
    pub anonymous_usage_stats: bool,
    pub anonymous_perf_results: bool,
    pub users_extension_preferences: Map,
    pub dashboard_preferences: Map,
    pub updated_at: Option<Time>,
}

/// `query { version providers user userPrefs }`
#[derive(cynic::QueryFragment, Debug, Clone, PartialEq)]
#[cynic(graphql_type = "Query")]
pub struct Overview {
    pub version: Version,
    pub providers: Vec<Provider>,
    pub user: User,
    pub user_prefs: UserPrefs,
}

#[derive(cynic::InputObject, Debug, Clone, Default, PartialEq)]
pub struct UserPrefsInput {
    #[cynic(skip_serializing_if = "Option::is_none")]
    pub anonymous_usage_stats: Option<bool>,
    #[cynic(skip_serializing_if = "Option::is_none")]
    pub anonymous_perf_results: Option<bool>,
    #[cynic(skip_serializing_if = "Option::is_none")]
    pub users_extension_preferences: Option<Map>,
    #[cynic(skip_serializing_if = "Option::is_none")]
    pub dashboard_preferences: Option<Map>,
}

#[derive(cynic::QueryVariables, Debug, Clone)]
pub struct UpdateUserPrefsVariables {
    pub input: UserPrefsInput,
}

/// `mutation { updateUserPrefs(input: $input) }`
#[derive(cynic::QueryFragment, Debug, Clone, PartialEq)]
#[cynic(graphql_type = "Mutation", variables = "UpdateUserPrefsVariables")]
pub struct UpdateUserPrefs {
    #[arguments(input: $input)]
    pub update_user_prefs: UserPrefs,
}

/// `subscription { subscribeUserPrefs }`
#[derive(cynic::QueryFragment, Debug, Clone, PartialEq)]
#[cynic(graphql_type = "Subscription")]
pub struct SubscribeUserPrefs {
    pub subscribe_user_prefs: UserPrefs,
}

/// Paging of a listing (Meshery's `PageFilter`: strings).
#[derive(cynic::InputObject, Debug, Clone, Default, PartialEq)]
pub struct PageFilter {
    pub page: String,
    pub page_size: String,
    #[cynic(skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
    #[cynic(skip_serializing_if = "Option::is_none")]
    pub search: Option<String>,
    #[cynic(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[cynic(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[cynic(rename = "updated_after", skip_serializing_if = "Option::is_none")]
    pub updated_after: Option<String>,
}

#[derive(cynic::QueryFragment, Debug, Clone, PartialEq)]
pub struct PerfProfile {
    pub id: String,
    pub name: String,
    pub endpoints: Vec<String>,
    #[cynic(rename = "load_generators")]
    pub load_generators: Vec<String>,
    #[cynic(rename = "concurrent_request")]
    pub concurrent_request: i32,
    pub qps: i32,
    pub duration: String,
    #[cynic(rename = "total_results")]
    pub total_results: i32,
    #[cynic(rename = "last_run")]
    pub last_run: Option<Time>,
    /// JSON text of the headers (Meshery's form).
    #[cynic(rename = "request_headers")]
    pub request_headers: String,
}

#[derive(cynic::QueryFragment, Debug, Clone, PartialEq)]
pub struct PerfPageProfiles {
    pub page: i32,
    #[cynic(rename = "page_size")]
    pub page_size: i32,
    #[cynic(rename = "total_count")]
    pub total_count: i32,
    pub profiles: Vec<PerfProfile>,
}

#[derive(cynic::QueryFragment, Debug, Clone, PartialEq)]
pub struct MesheryResult {
    pub id: String,
    pub name: String,
    pub status: String,
    #[cynic(rename = "performance_profile")]
    pub performance_profile: String,
    #[cynic(rename = "runner_results")]
    pub runner_results: Map,
    pub smp: Map,
}

#[derive(cynic::QueryFragment, Debug, Clone, PartialEq)]
pub struct PerfPageResult {
    pub page: i32,
    #[cynic(rename = "page_size")]
    pub page_size: i32,
    #[cynic(rename = "total_count")]
    pub total_count: i32,
    pub results: Vec<MesheryResult>,
}

#[derive(cynic::QueryFragment, Debug, Clone, PartialEq)]
pub struct PerfRun {
    pub run_id: String,
    pub name: String,
    pub url: String,
}

#[derive(cynic::QueryFragment, Debug, Clone, PartialEq)]
pub struct PerfFrame {
    pub status: String,
    pub message: String,
    pub run_id: Option<String>,
    pub result: Option<MesheryResult>,
}

#[derive(cynic::QueryVariables, Debug, Clone)]
pub struct SelectorVariables {
    pub selector: PageFilter,
}

/// `getPerformanceProfiles(selector)`
#[derive(cynic::QueryFragment, Debug, Clone, PartialEq)]
#[cynic(graphql_type = "Query", variables = "SelectorVariables")]
pub struct GetPerformanceProfiles {
    #[arguments(selector: $selector)]
    pub get_performance_profiles: PerfPageProfiles,
}

#[derive(cynic::QueryVariables, Debug, Clone)]
pub struct ProfileResultsVariables {
    pub selector: PageFilter,
    #[cynic(rename = "profileID")]
    pub profile_id: String,
}

/// `fetchResults(selector, profileID)`
#[derive(cynic::QueryFragment, Debug, Clone, PartialEq)]
#[cynic(graphql_type = "Query", variables = "ProfileResultsVariables")]
pub struct FetchResults {
    #[arguments(selector: $selector, profileID: $profile_id)]
    pub fetch_results: PerfPageResult,
}

#[derive(cynic::QueryVariables, Debug, Clone)]
pub struct IdVariables {
    pub id: cynic::Id,
}

/// `getPerfResult(id)`
#[derive(cynic::QueryFragment, Debug, Clone, PartialEq)]
#[cynic(graphql_type = "Query", variables = "IdVariables")]
pub struct GetPerfResult {
    #[arguments(id: $id)]
    pub get_perf_result: Option<MesheryResult>,
}

#[derive(cynic::InputObject, Debug, Clone, Default, PartialEq)]
pub struct PerfProfileInput {
    #[cynic(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    pub endpoints: Vec<String>,
    #[cynic(skip_serializing_if = "Option::is_none")]
    pub load_generators: Option<Vec<String>>,
    #[cynic(skip_serializing_if = "Option::is_none")]
    pub concurrent_request: Option<i32>,
    #[cynic(skip_serializing_if = "Option::is_none")]
    pub qps: Option<i32>,
    #[cynic(skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    #[cynic(skip_serializing_if = "Option::is_none")]
    pub request_headers: Option<Map>,
}

#[derive(cynic::QueryVariables, Debug, Clone)]
pub struct SaveProfileVariables {
    pub input: PerfProfileInput,
}

/// `savePerformanceProfile(input)`
#[derive(cynic::QueryFragment, Debug, Clone, PartialEq)]
#[cynic(graphql_type = "Mutation", variables = "SaveProfileVariables")]
pub struct SavePerformanceProfile {
    #[arguments(input: $input)]
    pub save_performance_profile: PerfProfile,
}

#[derive(cynic::InputObject, Debug, Clone, PartialEq)]
pub struct RunPerfProfileInput {
    #[cynic(rename = "profileID")]
    pub profile_id: String,
}

#[derive(cynic::QueryVariables, Debug, Clone)]
pub struct RunProfileVariables {
    pub input: RunPerfProfileInput,
}

/// `runPerformanceProfile(input)`
#[derive(cynic::QueryFragment, Debug, Clone, PartialEq)]
#[cynic(graphql_type = "Mutation", variables = "RunProfileVariables")]
pub struct RunPerformanceProfile {
    #[arguments(input: $input)]
    pub run_performance_profile: PerfRun,
}

#[derive(cynic::QueryVariables, Debug, Clone)]
pub struct RunIdVariables {
    #[cynic(rename = "runID")]
    pub run_id: String,
}

/// `subscription { subscribePerfRunProgress(runID) }`
#[derive(cynic::QueryFragment, Debug, Clone, PartialEq)]
#[cynic(graphql_type = "Subscription", variables = "RunIdVariables")]
pub struct SubscribePerfRunProgress {
    #[arguments(runID: $run_id)]
    pub subscribe_perf_run_progress: PerfFrame,
}

/// `subscription { subscribePerfResults(selector, profileID) }`
#[derive(cynic::QueryFragment, Debug, Clone, PartialEq)]
#[cynic(graphql_type = "Subscription", variables = "ProfileResultsVariables")]
pub struct SubscribePerfResults {
    #[arguments(selector: $selector, profileID: $profile_id)]
    pub subscribe_perf_results: PerfPageResult,
}

#[derive(cynic::QueryFragment, Debug, Clone, PartialEq)]
pub struct Event {
    pub id: String,
    /// The user the event is for.
    pub owner: String,
    #[cynic(rename = "systemID")]
    pub system_id: String,
    pub category: String,
    pub action: String,
    pub severity: String,
    pub description: String,
    pub metadata: Map,
    pub acted_upon: String,
    pub status: String,
    pub created_at: Time,
    pub updated_at: Time,
}

#[derive(cynic::QueryFragment, Debug, Clone, PartialEq)]
pub struct EventPage {
    pub page: i32,
    pub page_size: i32,
    pub total_count: i32,
    pub events: Vec<Event>,
}

/// `getEvents(selector)`
#[derive(cynic::QueryFragment, Debug, Clone, PartialEq)]
#[cynic(graphql_type = "Query", variables = "SelectorVariables")]
pub struct GetEvents {
    #[arguments(selector: $selector)]
    pub get_events: EventPage,
}

/// `subscription { subscribeEvents }`
#[derive(cynic::QueryFragment, Debug, Clone, PartialEq)]
#[cynic(graphql_type = "Subscription")]
pub struct SubscribeEvents {
    pub subscribe_events: Event,
}

#[derive(cynic::QueryFragment, Debug, Clone, PartialEq)]
pub struct PatternResult {
    pub id: String,
    pub name: String,
    #[cynic(rename = "pattern_file")]
    pub pattern_file: String,
    pub owner: String,
    pub visibility: String,
    #[cynic(rename = "catalog_data")]
    pub catalog_data: Map,
    pub components_count: i32,
    #[cynic(rename = "created_at")]
    pub created_at: Time,
    #[cynic(rename = "updated_at")]
    pub updated_at: Time,
}

#[derive(cynic::QueryFragment, Debug, Clone, PartialEq)]
pub struct PatternPageResult {
    pub page: i32,
    #[cynic(rename = "page_size")]
    pub page_size: i32,
    #[cynic(rename = "total_count")]
    pub total_count: i32,
    pub patterns: Vec<PatternResult>,
}

#[derive(cynic::QueryFragment, Debug, Clone, PartialEq)]
pub struct ConfigurationPage {
    pub patterns: Option<PatternPageResult>,
}

/// `fetchPatterns(selector)`
#[derive(cynic::QueryFragment, Debug, Clone, PartialEq)]
#[cynic(graphql_type = "Query", variables = "SelectorVariables")]
pub struct FetchPatterns {
    #[arguments(selector: $selector)]
    pub fetch_patterns: PatternPageResult,
}

#[derive(cynic::InputObject, Debug, Clone, Default, PartialEq)]
pub struct PatternInput {
    #[cynic(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[cynic(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub pattern_file: String,
    #[cynic(skip_serializing_if = "Option::is_none")]
    pub visibility: Option<String>,
    #[cynic(skip_serializing_if = "Option::is_none")]
    pub catalog_data: Option<Map>,
}

#[derive(cynic::QueryVariables, Debug, Clone)]
pub struct SavePatternVariables {
    pub input: PatternInput,
}

/// `savePattern(input)`
#[derive(cynic::QueryFragment, Debug, Clone, PartialEq)]
#[cynic(graphql_type = "Mutation", variables = "SavePatternVariables")]
pub struct SavePattern {
    #[arguments(input: $input)]
    pub save_pattern: PatternResult,
}

#[derive(cynic::InputObject, Debug, Clone, Default, PartialEq)]
pub struct DeployPatternInput {
    #[cynic(rename = "patternID", skip_serializing_if = "Option::is_none")]
    pub pattern_id: Option<String>,
    #[cynic(skip_serializing_if = "Option::is_none")]
    pub pattern_file: Option<String>,
    #[cynic(skip_serializing_if = "Option::is_none")]
    pub contexts: Option<Vec<String>>,
    #[cynic(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    #[cynic(rename = "skipCRD", skip_serializing_if = "Option::is_none")]
    pub skip_crd: Option<bool>,
    #[cynic(skip_serializing_if = "Option::is_none")]
    pub undeploy: Option<bool>,
}

#[derive(cynic::QueryVariables, Debug, Clone)]
pub struct DeployPatternVariables {
    pub input: DeployPatternInput,
}

#[derive(cynic::QueryFragment, Debug, Clone, PartialEq)]
pub struct DeployOutcome {
    pub component: String,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    #[cynic(rename = "contextID")]
    pub context_id: String,
    pub status: String,
    pub message: Option<String>,
    pub field: Option<String>,
}

#[derive(cynic::QueryFragment, Debug, Clone, PartialEq)]
pub struct PatternDeployResult {
    pub action: String,
    pub dry_run: bool,
    pub succeeded: bool,
    pub results: Vec<DeployOutcome>,
}

/// `deployPattern(input)`
#[derive(cynic::QueryFragment, Debug, Clone, PartialEq)]
#[cynic(graphql_type = "Mutation", variables = "DeployPatternVariables")]
pub struct DeployPattern {
    #[arguments(input: $input)]
    pub deploy_pattern: PatternDeployResult,
}

#[derive(cynic::QueryVariables, Debug, Clone)]
pub struct ConfigurationVariables {
    pub pattern_selector: PageFilter,
}

/// `subscription { subscribeConfiguration(patternSelector) }`, as Meshery's UI asks.
#[derive(cynic::QueryFragment, Debug, Clone, PartialEq)]
#[cynic(graphql_type = "Subscription", variables = "ConfigurationVariables")]
pub struct SubscribeConfiguration {
    #[arguments(patternSelector: $pattern_selector)]
    pub subscribe_configuration: ConfigurationPage,
}

#[derive(cynic::QueryVariables, Debug, Clone, Default)]
pub struct ClusterResourcesVariables {
    #[cynic(rename = "k8scontextIDs", skip_serializing_if = "Option::is_none")]
    pub k8scontext_ids: Option<Vec<String>>,
    #[cynic(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

#[derive(cynic::QueryFragment, Debug, Clone, PartialEq)]
pub struct ClusterKindCount {
    pub kind: String,
    pub model: String,
    pub count: i32,
}

#[derive(cynic::QueryFragment, Debug, Clone, PartialEq)]
pub struct ClusterResources {
    pub resources: Vec<ClusterKindCount>,
}

/// `getClusterResources(k8scontextIDs, namespace)`
#[derive(cynic::QueryFragment, Debug, Clone, PartialEq)]
#[cynic(graphql_type = "Query", variables = "ClusterResourcesVariables")]
pub struct GetClusterResources {
    #[arguments(k8scontextIDs: $k8scontext_ids, namespace: $namespace)]
    pub get_cluster_resources: ClusterResources,
}

/// `subscription { subscribeClusterResources(k8scontextIDs, namespace) }`
#[derive(cynic::QueryFragment, Debug, Clone, PartialEq)]
#[cynic(graphql_type = "Subscription", variables = "ClusterResourcesVariables")]
pub struct SubscribeClusterResources {
    #[arguments(k8scontextIDs: $k8scontext_ids, namespace: $namespace)]
    pub subscribe_cluster_resources: ClusterResources,
}
