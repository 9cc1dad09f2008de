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
