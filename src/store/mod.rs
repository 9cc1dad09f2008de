//! The database: SQLite embedded under the data directory (the default), or PostgreSQL
//! (several replicas on one database). One code path through sqlx's `Any` driver; the few
//! statements whose dialects differ (JSON lists, case-insensitive search) have one text per
//! engine. Migrations run at open; on PostgreSQL under sqlx's advisory lock, so replicas
//! that start together migrate once.

use std::borrow::Cow;
use std::path::Path;

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{Row, SqlSafeStr};

mod clusters;
mod integrations;
mod tenancy;
pub use clusters::{
    ConnectionRow, InventoryOp, LabelReq, ResourceQuery, ResourceRow, ResourceSummary,
};
pub use integrations::{CredentialRow, IntegrationQuery, IntegrationRow};
pub use tenancy::{MemberRow, Tenant, TenantQuery, TenantRow};

/// SQLite migrations, in order. Append only: an applied migration must never change.
const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "instance and user preferences",
        "CREATE TABLE instance (id TEXT PRIMARY KEY NOT NULL, created_at TEXT NOT NULL);
         CREATE TABLE user_prefs (
             user_id TEXT PRIMARY KEY NOT NULL,
             doc TEXT NOT NULL,
             updated_at TEXT NOT NULL
         );",
    ),
    (
        2,
        "performance results",
        "CREATE TABLE perf_results (
             id TEXT PRIMARY KEY NOT NULL,
             owner TEXT NOT NULL,
             profile_id TEXT,
             name TEXT NOT NULL,
             doc TEXT NOT NULL,
             created_at TEXT NOT NULL
         );
         CREATE INDEX perf_results_owner ON perf_results (owner, created_at);",
    ),
    (
        3,
        "performance profiles",
        "CREATE TABLE perf_profiles (
             id TEXT PRIMARY KEY NOT NULL,
             owner TEXT NOT NULL,
             name TEXT NOT NULL,
             doc TEXT NOT NULL,
             created_at TEXT NOT NULL,
             updated_at TEXT NOT NULL
         );
         CREATE INDEX perf_profiles_owner ON perf_profiles (owner, created_at);
         CREATE INDEX perf_results_profile ON perf_results (owner, profile_id);",
    ),
    (
        4,
        "events",
        // `name` holds the description: what search and name order use.
        "CREATE TABLE events (
             id TEXT PRIMARY KEY NOT NULL,
             owner TEXT NOT NULL,
             name TEXT NOT NULL,
             category TEXT NOT NULL,
             action TEXT NOT NULL,
             severity TEXT NOT NULL,
             status TEXT NOT NULL,
             doc TEXT NOT NULL,
             created_at TEXT NOT NULL
         );
         CREATE INDEX events_owner ON events (owner, created_at);",
    ),
    (
        5,
        "registered models",
        "CREATE TABLE registry_models (
             id TEXT PRIMARY KEY NOT NULL,
             name TEXT NOT NULL,
             version TEXT NOT NULL,
             doc TEXT NOT NULL,
             created_at TEXT NOT NULL
         );",
    ),
    (
        6,
        "designs",
        "CREATE TABLE patterns (
             id TEXT PRIMARY KEY NOT NULL,
             owner TEXT NOT NULL,
             name TEXT NOT NULL,
             visibility TEXT NOT NULL,
             doc TEXT NOT NULL,
             created_at TEXT NOT NULL,
             updated_at TEXT NOT NULL
         );
         CREATE INDEX patterns_owner ON patterns (owner, created_at);",
    ),
    (
        7,
        "kubernetes contexts",
        // `secret` holds the credentials sealed with the installation's key.
        "CREATE TABLE k8s_contexts (
             id TEXT NOT NULL,
             owner TEXT NOT NULL,
             name TEXT NOT NULL,
             doc TEXT NOT NULL,
             secret BLOB NOT NULL,
             created_at TEXT NOT NULL,
             PRIMARY KEY (owner, id)
         );",
    ),
    (
        8,
        "deployment settings",
        "CREATE TABLE settings (name TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);",
    ),
    (
        9,
        "event sequence numbers",
        // AUTOINCREMENT: a number is never reused, even after the newest row is deleted
        // (a client resuming after it must not skip a new event that took its number).
        "CREATE TABLE events_seq (
             seq INTEGER PRIMARY KEY AUTOINCREMENT,
             id TEXT NOT NULL UNIQUE,
             owner TEXT NOT NULL,
             name TEXT NOT NULL,
             category TEXT NOT NULL,
             action TEXT NOT NULL,
             severity TEXT NOT NULL,
             status TEXT NOT NULL,
             doc TEXT NOT NULL,
             created_at TEXT NOT NULL
         );
         INSERT INTO events_seq (id, owner, name, category, action, severity, status, doc, created_at)
             SELECT id, owner, name, category, action, severity, status, doc, created_at
             FROM events ORDER BY created_at, id;
         DROP TABLE events;
         ALTER TABLE events_seq RENAME TO events;
         CREATE INDEX events_owner ON events (owner, created_at);
         CREATE INDEX events_owner_seq ON events (owner, seq);",
    ),
    (10, "load test runs", RUNS_TABLES),
    (11, "cluster connections and inventory", CLUSTERS_SQLITE),
    (12, "credentials and other connections", INTEGRATIONS_SQLITE),
    (13, "workspaces and environments", TENANCY_SQLITE),
];

/// Workspaces and environments of an organization (of a provider), and memberships:
/// `workspace_members` (kind `environment`, `design`, `team` or `view`; `owner`: who
/// added it) and `environment_connections` (`owner`: the connection's owner, whose
/// connection it is).
const TENANCY_SQLITE: &str = "CREATE TABLE workspaces (
         id TEXT PRIMARY KEY NOT NULL,
         provider TEXT NOT NULL,
         org_id TEXT NOT NULL,
         owner TEXT NOT NULL,
         owner_id TEXT NOT NULL,
         name TEXT NOT NULL,
         description TEXT NOT NULL,
         metadata TEXT NOT NULL,
         created_at TEXT NOT NULL,
         updated_at TEXT NOT NULL
     );
     CREATE INDEX workspaces_org ON workspaces (provider, org_id, updated_at);
     CREATE TABLE environments (
         id TEXT PRIMARY KEY NOT NULL,
         provider TEXT NOT NULL,
         org_id TEXT NOT NULL,
         owner TEXT NOT NULL,
         owner_id TEXT NOT NULL,
         name TEXT NOT NULL,
         description TEXT NOT NULL,
         metadata TEXT NOT NULL,
         created_at TEXT NOT NULL,
         updated_at TEXT NOT NULL
     );
     CREATE INDEX environments_org ON environments (provider, org_id, updated_at);
     CREATE TABLE workspace_members (
         workspace_id TEXT NOT NULL,
         kind TEXT NOT NULL,
         member_id TEXT NOT NULL,
         owner TEXT NOT NULL,
         id TEXT NOT NULL,
         created_at TEXT NOT NULL,
         PRIMARY KEY (workspace_id, kind, member_id)
     );
     CREATE INDEX workspace_members_member ON workspace_members (kind, member_id);
     CREATE TABLE environment_connections (
         environment_id TEXT NOT NULL,
         connection_id TEXT NOT NULL,
         owner TEXT NOT NULL,
         id TEXT NOT NULL,
         created_at TEXT NOT NULL,
         PRIMARY KEY (environment_id, owner, connection_id)
     );
     CREATE INDEX environment_connections_connection ON environment_connections (owner, connection_id);";

const TENANCY_POSTGRES: &str = r#"CREATE TABLE workspaces (
         id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
         provider TEXT NOT NULL,
         org_id TEXT NOT NULL,
         owner TEXT NOT NULL,
         owner_id TEXT NOT NULL,
         name TEXT COLLATE "C" NOT NULL,
         description TEXT NOT NULL,
         metadata TEXT NOT NULL,
         created_at TEXT COLLATE "C" NOT NULL,
         updated_at TEXT COLLATE "C" NOT NULL
     );
     CREATE INDEX workspaces_org ON workspaces (provider, org_id, updated_at);
     CREATE TABLE environments (
         id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
         provider TEXT NOT NULL,
         org_id TEXT NOT NULL,
         owner TEXT NOT NULL,
         owner_id TEXT NOT NULL,
         name TEXT COLLATE "C" NOT NULL,
         description TEXT NOT NULL,
         metadata TEXT NOT NULL,
         created_at TEXT COLLATE "C" NOT NULL,
         updated_at TEXT COLLATE "C" NOT NULL
     );
     CREATE INDEX environments_org ON environments (provider, org_id, updated_at);
     CREATE TABLE workspace_members (
         workspace_id TEXT NOT NULL,
         kind TEXT NOT NULL,
         member_id TEXT NOT NULL,
         owner TEXT NOT NULL,
         id TEXT NOT NULL,
         created_at TEXT COLLATE "C" NOT NULL,
         PRIMARY KEY (workspace_id, kind, member_id)
     );
     CREATE INDEX workspace_members_member ON workspace_members (kind, member_id);
     CREATE TABLE environment_connections (
         environment_id TEXT NOT NULL,
         connection_id TEXT COLLATE "C" NOT NULL,
         owner TEXT NOT NULL,
         id TEXT NOT NULL,
         created_at TEXT COLLATE "C" NOT NULL,
         PRIMARY KEY (environment_id, owner, connection_id)
     );
     CREATE INDEX environment_connections_connection ON environment_connections (owner, connection_id);"#;

/// Users' credentials (`secret`: the key-value secret as JSON, sealed with the
/// installation's key, bound to owner and id) and connections of other kinds than
/// Kubernetes (Prometheus, Grafana, ...: `doc` is their metadata as JSON).
const INTEGRATIONS_SQLITE: &str = "CREATE TABLE credentials (
         owner TEXT NOT NULL,
         id TEXT NOT NULL,
         name TEXT NOT NULL,
         type TEXT NOT NULL,
         secret BLOB NOT NULL,
         created_at TEXT NOT NULL,
         updated_at TEXT NOT NULL,
         PRIMARY KEY (owner, id)
     );
     CREATE TABLE integrations (
         owner TEXT NOT NULL,
         id TEXT NOT NULL,
         kind TEXT NOT NULL,
         type TEXT NOT NULL,
         sub_type TEXT NOT NULL,
         name TEXT NOT NULL,
         status TEXT NOT NULL,
         doc TEXT NOT NULL,
         credential_id TEXT,
         created_at TEXT NOT NULL,
         updated_at TEXT NOT NULL,
         PRIMARY KEY (owner, id)
     );";

const INTEGRATIONS_POSTGRES: &str = r#"CREATE TABLE credentials (
         owner TEXT NOT NULL,
         id TEXT COLLATE "C" NOT NULL,
         name TEXT COLLATE "C" NOT NULL,
         type TEXT COLLATE "C" NOT NULL,
         secret BYTEA NOT NULL,
         created_at TEXT COLLATE "C" NOT NULL,
         updated_at TEXT NOT NULL,
         PRIMARY KEY (owner, id)
     );
     CREATE TABLE integrations (
         owner TEXT NOT NULL,
         id TEXT COLLATE "C" NOT NULL,
         kind TEXT COLLATE "C" NOT NULL,
         type TEXT COLLATE "C" NOT NULL,
         sub_type TEXT NOT NULL,
         name TEXT COLLATE "C" NOT NULL,
         status TEXT COLLATE "C" NOT NULL,
         doc TEXT NOT NULL,
         credential_id TEXT,
         created_at TEXT COLLATE "C" NOT NULL,
         updated_at TEXT NOT NULL,
         PRIMARY KEY (owner, id)
     );"#;

/// Each context is a connection: its state (what the inventory saw, or what its user
/// chose) and the server version last seen. `cluster_leases`: which replica watches a
/// context (renewed while it does; `expires` in ms since 1970). `k8s_resources`: the
/// inventory, one row per object of a watched kind (`sweep`: the list that last saw it,
/// so a relist removes what it did not see); its labels in their own table so a label
/// filter is an indexed join on either engine.
const CLUSTERS_SQLITE: &str =
    "ALTER TABLE k8s_contexts ADD COLUMN status TEXT NOT NULL DEFAULT 'registered';
     ALTER TABLE k8s_contexts ADD COLUMN status_reason TEXT NOT NULL DEFAULT '';
     ALTER TABLE k8s_contexts ADD COLUMN status_at TEXT NOT NULL DEFAULT '';
     ALTER TABLE k8s_contexts ADD COLUMN server_version TEXT NOT NULL DEFAULT '';
     CREATE TABLE cluster_leases (
         key TEXT PRIMARY KEY NOT NULL,
         replica TEXT NOT NULL,
         expires BIGINT NOT NULL
     );
     CREATE TABLE k8s_resources (
         id TEXT PRIMARY KEY NOT NULL,
         owner TEXT NOT NULL,
         context_id TEXT NOT NULL,
         api_version TEXT NOT NULL,
         kind TEXT NOT NULL,
         model TEXT NOT NULL,
         namespace TEXT NOT NULL,
         name TEXT NOT NULL,
         created TEXT NOT NULL,
         doc TEXT NOT NULL,
         sweep BIGINT NOT NULL
     );
     CREATE INDEX k8s_resources_kind ON k8s_resources (owner, context_id, kind, namespace, name);
     CREATE TABLE k8s_resource_labels (
         resource_id TEXT NOT NULL,
         key TEXT NOT NULL,
         value TEXT NOT NULL,
         PRIMARY KEY (resource_id, key)
     );
     CREATE INDEX k8s_resource_labels_kv ON k8s_resource_labels (key, value);";

/// The same for PostgreSQL; sorted text columns compare bytes, as SQLite's do.
const CLUSTERS_POSTGRES: &str = r#"ALTER TABLE k8s_contexts ADD COLUMN status TEXT NOT NULL DEFAULT 'registered';
     ALTER TABLE k8s_contexts ADD COLUMN status_reason TEXT NOT NULL DEFAULT '';
     ALTER TABLE k8s_contexts ADD COLUMN status_at TEXT NOT NULL DEFAULT '';
     ALTER TABLE k8s_contexts ADD COLUMN server_version TEXT NOT NULL DEFAULT '';
     CREATE TABLE cluster_leases (
         key TEXT PRIMARY KEY NOT NULL,
         replica TEXT NOT NULL,
         expires BIGINT NOT NULL
     );
     CREATE TABLE k8s_resources (
         id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
         owner TEXT NOT NULL,
         context_id TEXT NOT NULL,
         api_version TEXT COLLATE "C" NOT NULL,
         kind TEXT COLLATE "C" NOT NULL,
         model TEXT COLLATE "C" NOT NULL,
         namespace TEXT COLLATE "C" NOT NULL,
         name TEXT COLLATE "C" NOT NULL,
         created TEXT COLLATE "C" NOT NULL,
         doc TEXT NOT NULL,
         sweep BIGINT NOT NULL
     );
     CREATE INDEX k8s_resources_kind ON k8s_resources (owner, context_id, kind, namespace, name);
     CREATE TABLE k8s_resource_labels (
         resource_id TEXT NOT NULL,
         key TEXT COLLATE "C" NOT NULL,
         value TEXT COLLATE "C" NOT NULL,
         PRIMARY KEY (resource_id, key)
     );
     CREATE INDEX k8s_resource_labels_kv ON k8s_resource_labels (key, value);"#;

/// Load tests in progress, on whichever replica runs them, and their frames (followers
/// on other replicas read them). Times are milliseconds since 1970; `ended` is null while
/// the run goes on; `heartbeat` is renewed by the running replica, so a run whose
/// replica died stops counting once it is stale.
const RUNS_TABLES: &str = "CREATE TABLE perf_runs (
         id TEXT PRIMARY KEY NOT NULL,
         owner TEXT NOT NULL,
         replica TEXT NOT NULL,
         doc TEXT NOT NULL,
         started_at TEXT NOT NULL,
         heartbeat BIGINT NOT NULL,
         ended BIGINT
     );
     CREATE INDEX perf_runs_owner ON perf_runs (owner, ended);
     CREATE TABLE perf_frames (
         run_id TEXT NOT NULL,
         n BIGINT NOT NULL,
         doc TEXT NOT NULL,
         PRIMARY KEY (run_id, n)
     );";

/// PostgreSQL migrations: the same tables as SQLite's, in one step each. Text that is
/// ordered or compared is `COLLATE "C"`, so listings order as on SQLite whatever the
/// database's locale; the instance id is made here, under the migration lock, so
/// replicas that start together agree on it.
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "meshery schema",
        r#"CREATE TABLE instance (id TEXT PRIMARY KEY NOT NULL, created_at TEXT NOT NULL);
       INSERT INTO instance (id, created_at)
           VALUES (gen_random_uuid()::text, to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'));
       CREATE TABLE settings (name TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
       CREATE TABLE user_prefs (
           user_id TEXT PRIMARY KEY NOT NULL,
           doc TEXT NOT NULL,
           updated_at TEXT NOT NULL
       );
       CREATE TABLE perf_results (
           id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
           owner TEXT NOT NULL,
           profile_id TEXT,
           name TEXT COLLATE "C" NOT NULL,
           doc TEXT NOT NULL,
           created_at TEXT COLLATE "C" NOT NULL
       );
       CREATE INDEX perf_results_owner ON perf_results (owner, created_at);
       CREATE INDEX perf_results_profile ON perf_results (owner, profile_id);
       CREATE TABLE perf_profiles (
           id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
           owner TEXT NOT NULL,
           name TEXT COLLATE "C" NOT NULL,
           doc TEXT NOT NULL,
           created_at TEXT COLLATE "C" NOT NULL,
           updated_at TEXT NOT NULL
       );
       CREATE INDEX perf_profiles_owner ON perf_profiles (owner, created_at);
       CREATE TABLE events (
           id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
           owner TEXT NOT NULL,
           name TEXT COLLATE "C" NOT NULL,
           category TEXT NOT NULL,
           action TEXT NOT NULL,
           severity TEXT COLLATE "C" NOT NULL,
           status TEXT NOT NULL,
           doc TEXT NOT NULL,
           created_at TEXT COLLATE "C" NOT NULL
       );
       CREATE INDEX events_owner ON events (owner, created_at);
       CREATE TABLE registry_models (
           id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
           name TEXT NOT NULL,
           version TEXT NOT NULL,
           doc TEXT NOT NULL,
           created_at TEXT COLLATE "C" NOT NULL
       );
       CREATE TABLE patterns (
           id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
           owner TEXT NOT NULL,
           name TEXT COLLATE "C" NOT NULL,
           visibility TEXT NOT NULL,
           doc TEXT NOT NULL,
           created_at TEXT COLLATE "C" NOT NULL,
           updated_at TEXT NOT NULL
       );
       CREATE INDEX patterns_owner ON patterns (owner, created_at);
       CREATE TABLE k8s_contexts (
           id TEXT COLLATE "C" NOT NULL,
           owner TEXT NOT NULL,
           name TEXT COLLATE "C" NOT NULL,
           doc TEXT NOT NULL,
           secret BYTEA NOT NULL,
           created_at TEXT COLLATE "C" NOT NULL,
           PRIMARY KEY (owner, id)
       );"#,
    ),
    (
        2,
        "event sequence numbers",
        // Taken under `EVENTS_LOCK`, so they are committed in order.
        "ALTER TABLE events ADD COLUMN seq BIGSERIAL;
         CREATE UNIQUE INDEX events_seq ON events (seq);
         CREATE INDEX events_owner_seq ON events (owner, seq);",
    ),
    (3, "load test runs", RUNS_TABLES),
    (4, "cluster connections and inventory", CLUSTERS_POSTGRES),
    (
        5,
        "credentials and other connections",
        INTEGRATIONS_POSTGRES,
    ),
    (6, "workspaces and environments", TENANCY_POSTGRES),
];

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    /// The engine of `url` by its scheme.
    pub fn of(url: &str) -> Result<Engine, StoreError> {
        let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or_default();
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => Ok(Engine::Sqlite),
            "postgres" | "postgresql" => Ok(Engine::Postgres),
            _ => Err(StoreError::Url(format!(
                "{scheme:?} is not a database this server speaks; use sqlite://<file> or postgres://..."
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        }
    }
}

/// The database URL of the embedded default: `<home>/meshery.db`.
pub fn default_url(home: &Path) -> String {
    const PATH: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'/')
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    let path = home.join("meshery.db");
    let encoded =
        percent_encoding::percent_encode(path.as_os_str().as_encoded_bytes(), PATH).to_string();
    format!("sqlite://{encoded}")
}

/// A URL without its password, for logs and errors.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.set_query(None);
            parsed.to_string()
        }
        Err(_) => "<unparsable database URL>".into(),
    }
}

/// Filters of an event listing (empty lists and `None` match everything).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct EventFilter {
    pub category: Vec<String>,
    pub severity: Vec<String>,
    pub action: Vec<String>,
    pub status: Option<String>,
}

/// One row of the events table, the document being the whole event as JSON.
#[derive(Debug, Clone)]
pub struct EventRow<'a> {
    pub id: &'a str,
    pub owner: &'a str,
    pub description: &'a str,
    pub category: &'a str,
    pub action: &'a str,
    pub severity: &'a str,
    pub status: &'a str,
    pub doc: &'a str,
    pub created_at: &'a str,
}

/// A listing request: page from 0, size, name filter, order, creation-time window.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub page: i64,
    /// `None`: all.
    pub page_size: Option<i64>,
    pub search: Option<String>,
    /// (column, descending)
    pub order: (&'static str, bool),
    pub from: Option<String>,
    pub to: Option<String>,
}

impl Listing {
    /// The page envelope of this listing's items (`pageSize` is the total with `all`).
    pub fn page_of<P: crate::generated::rest::Page>(&self, items: Vec<P::Item>, total: i64) -> P {
        P::from_parts(self.page, self.page_size.unwrap_or(total), total, items)
    }
}

/// Listing parameters the server does not take (a 400 at the boundary).
#[derive(Debug, thiserror::Error)]
pub enum ListingError {
    #[error("pagesize {0:?} must be from 1 to 10000, or all")]
    PageSize(String),
    #[error("cannot order by {0:?}; use name or created_at")]
    OrderColumn(String),
    #[error("order direction {0:?}: use asc or desc")]
    OrderDirection(String),
    #[error("order {order:?}: unexpected {extra:?} after the direction")]
    OrderExtra { order: String, extra: String },
}

/// Reads listing parameters (`page`, `pagesize`/`pageSize`, `search`, `order`, `from`, `to`).
pub fn listing(
    page: Option<i64>,
    page_size: Option<&str>,
    search: Option<String>,
    order: Option<&str>,
    from: Option<chrono::DateTime<chrono::Utc>>,
    to: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<Listing, ListingError> {
    let page_size = match page_size.map(str::trim) {
        None | Some("") => Some(10),
        Some(s) if s.eq_ignore_ascii_case("all") => None,
        Some(s) => match s.parse::<i64>() {
            Ok(n) if (1..=10_000).contains(&n) => Some(n),
            _ => {
                return Err(ListingError::PageSize(s.to_string()));
            }
        },
    };
    // Words are separated by spaces and tabs, as the spec's pattern says.
    let blank = |c: char| c == ' ' || c == '\t';
    let order = match order.map(|o| o.trim_matches(blank).to_ascii_lowercase()) {
        None => ("created_at", true),
        Some(o) if o.is_empty() => ("created_at", true),
        // A direction alone (Meshery's clients send the field apart, in `sort`).
        Some(o) if o == "asc" || o == "desc" => ("created_at", o == "desc"),
        Some(o) => {
            let mut words = o.split(blank).filter(|w| !w.is_empty());
            let column = match words.next() {
                Some(
                    "created_at" | "createdat" | "test_start_time" | "updated_at" | "updatedat",
                ) => "created_at",
                Some("name") => "name",
                Some(other) => {
                    return Err(ListingError::OrderColumn(other.to_string()));
                }
                None => "created_at",
            };
            let desc = match words.next() {
                None | Some("desc") => true,
                Some("asc") => false,
                Some(other) => {
                    return Err(ListingError::OrderDirection(other.to_string()));
                }
            };
            if let Some(extra) = words.next() {
                return Err(ListingError::OrderExtra {
                    order: o.clone(),
                    extra: extra.to_string(),
                });
            }
            (column, desc)
        }
    };
    Ok(Listing {
        page: page.unwrap_or(0),
        page_size,
        search,
        order,
        from: from.map(stamp),
        to: to.map(stamp),
    })
}

/// Reads `<field> [asc|desc]` (any case, spaces or tabs) against `columns` (what a client
/// writes, the column it names); no text gives `default`, no direction `desc_default`.
pub fn parse_order(
    text: Option<&str>,
    columns: &[(&str, &'static str)],
    default: &'static str,
    desc_default: impl Fn(&str) -> bool,
) -> Result<(&'static str, bool), String> {
    let blank = |c: char| c == ' ' || c == '\t';
    let text = text.unwrap_or("").trim_matches(blank).to_ascii_lowercase();
    let mut words = text.split(blank).filter(|w| !w.is_empty());
    let column = match words.next() {
        None => default,
        Some(w) => match columns.iter().find(|(name, _)| *name == w) {
            Some((_, column)) => column,
            None => {
                let names: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
                return Err(format!("cannot order by {w:?}; use {}", names.join(", ")));
            }
        },
    };
    let desc = match words.next() {
        None => desc_default(column),
        Some("desc") => true,
        Some("asc") => false,
        Some(other) => return Err(format!("order direction {other:?}: use asc or desc")),
    };
    if let Some(extra) = words.next() {
        return Err(format!(
            "order {text:?}: unexpected {extra:?} after the direction"
        ));
    }
    Ok((column, desc))
}

/// The stored form of a time: RFC 3339 in UTC with microseconds, so text order is time order.
pub fn stamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Escapes LIKE wildcards so a search is literal.
fn like(search: &str) -> String {
    let escaped = search
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    engine: Engine,
    /// The URL connected to (PostgreSQL's notice listener opens its own connection).
    url: Redacted,
}

/// A database URL that never shows its password (`Store` is `Debug`).
#[derive(Clone)]
struct Redacted(std::sync::Arc<str>);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact(&self.0))
    }
}

/// Serializes event inserts on PostgreSQL (a transaction-scoped advisory lock), so
/// sequence numbers are committed in order and a reader that has seen `seq` never sees
/// a smaller one appear later. SQLite has one writer anyway.
const EVENTS_LOCK: i64 = 0x6d65_7368_6576_0001;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("data directory {0}: {1}")]
    Home(String, std::io::Error),
    #[error("database URL: {0}")]
    Url(String),
    #[error("stored document is corrupt: {0}")]
    Corrupt(String),
}

/// A user's stored preferences document (JSON) and when it was saved.
#[derive(Debug, Clone)]
pub struct StoredDoc {
    pub doc: String,
    pub updated_at: String,
}

impl Store {
    /// Connects to `url` (a SQLite file is made when missing) and migrates the database.
    /// `ca_file` adds a CA that PostgreSQL's certificate may chain to, besides the
    /// built-in roots; the URL's `sslmode` says whether TLS is used and verified.
    pub async fn open(url: &str, ca_file: Option<&Path>) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let engine = Engine::of(url)?;
        let mut parsed = url::Url::parse(url).map_err(|e| StoreError::Url(e.to_string()))?;
        let has = |parsed: &url::Url, key: &str| parsed.query_pairs().any(|(k, _)| k == key);
        let pool = match engine {
            Engine::Sqlite => {
                if !has(&parsed, "mode") {
                    parsed.query_pairs_mut().append_pair("mode", "rwc");
                }
                AnyPoolOptions::new()
                    .max_connections(4)
                    // Settings sqlx's URL form cannot carry: WAL (readers do not wait for
                    // the writer) and waiting, not failing, on a locked database.
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            sqlx::query("PRAGMA journal_mode = WAL")
                                .execute(&mut *conn)
                                .await?;
                            sqlx::query("PRAGMA busy_timeout = 5000")
                                .execute(&mut *conn)
                                .await?;
                            Ok(())
                        })
                    })
                    .connect(parsed.as_str())
                    .await?
            }
            Engine::Postgres => {
                if let Some(ca) = ca_file
                    && !has(&parsed, "sslrootcert")
                {
                    parsed
                        .query_pairs_mut()
                        .append_pair("sslrootcert", &ca.display().to_string());
                }
                AnyPoolOptions::new()
                    .max_connections(10)
                    // A request waits this long for the database, then fails (503/500).
                    .acquire_timeout(std::time::Duration::from_secs(5))
                    .connect(parsed.as_str())
                    .await?
            }
        };
        let migrations = match engine {
            Engine::Sqlite => SQLITE_MIGRATIONS,
            Engine::Postgres => POSTGRES_MIGRATIONS,
        };
        let migrations = migrations
            .iter()
            .map(|(version, description, sql)| {
                Migration::new(
                    *version,
                    Cow::Borrowed(*description),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect();
        Migrator::with_migrations(migrations).run(&pool).await?;
        let store = Store {
            pool,
            engine,
            url: Redacted(parsed.as_str().into()),
        };
        store.ensure_instance().await?;
        Ok(store)
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// `NOTIFY channel, payload` (PostgreSQL; nothing on SQLite).
    pub async fn notify(&self, channel: &str, payload: &str) -> Result<(), StoreError> {
        if self.engine == Engine::Postgres {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(channel)
                .bind(payload)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// A connection listening on `channel` (PostgreSQL only); gives up after 10 s.
    pub async fn listener(&self, channel: &str) -> Result<sqlx::postgres::PgListener, StoreError> {
        if self.engine != Engine::Postgres {
            return Err(StoreError::Url("only PostgreSQL has notices".into()));
        }
        let connect = async {
            let mut listener = sqlx::postgres::PgListener::connect(&self.url.0).await?;
            listener.listen(channel).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        match tokio::time::timeout(std::time::Duration::from_secs(10), connect).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(StoreError::Db(sqlx::Error::PoolTimedOut)),
        }
    }

    /// A transaction that will write. SQLite's starts IMMEDIATE: it takes the write lock
    /// up front (waiting for it like any write) instead of failing with "database is
    /// locked" when a transaction that has read tries to write while another writes.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        Ok(match self.engine {
            Engine::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Engine::Postgres => self.pool.begin().await?,
        })
    }

    /// The statement for this store's engine.
    fn sql(&self, sqlite: &'static str, postgres: &'static str) -> &'static str {
        match self.engine {
            Engine::Sqlite => sqlite,
            Engine::Postgres => postgres,
        }
    }

    /// The value stored under `name`, storing `value` first when there is none (the first
    /// replica to get there wins; every replica reads the same answer).
    pub async fn setting_or_init(&self, name: &str, value: &str) -> Result<String, StoreError> {
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(value)
        .execute(&self.pool)
        .await?;
        let row = sqlx::query("SELECT value FROM settings WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("value")?)
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn ensure_instance(&self) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO instance (id, created_at) SELECT $1, $2 WHERE NOT EXISTS (SELECT 1 FROM instance)")
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(chrono::Utc::now().to_rfc3339())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// This installation's id, made at first start (Meshery's `SystemID`).
    pub async fn instance_id(&self) -> Result<String, StoreError> {
        let row = sqlx::query("SELECT id FROM instance LIMIT 1")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("id")?)
    }

    pub async fn user_prefs(&self, user_id: &str) -> Result<Option<StoredDoc>, StoreError> {
        let row = sqlx::query("SELECT doc, updated_at FROM user_prefs WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(StoredDoc {
                doc: r.try_get("doc")?,
                updated_at: r.try_get("updated_at")?,
            })
        })
        .transpose()
    }

    /// Replaces a user's preferences with `change(current)`, read and written in one
    /// transaction; on PostgreSQL under a lock per user, so concurrent updates on
    /// different replicas do not lose each other's fields. `change` may refuse (`Err`).
    pub async fn modify_user_prefs<E>(
        &self,
        user_id: &str,
        change: impl FnOnce(Option<StoredDoc>) -> Result<StoredDoc, E>,
    ) -> Result<Result<StoredDoc, E>, StoreError> {
        let mut tx = self.begin_write().await?;
        if self.engine == Engine::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                .bind(format!("user_prefs:{user_id}"))
                .execute(&mut *tx)
                .await?;
        }
        let current = sqlx::query("SELECT doc, updated_at FROM user_prefs WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| {
                Ok::<_, StoreError>(StoredDoc {
                    doc: r.try_get("doc")?,
                    updated_at: r.try_get("updated_at")?,
                })
            })
            .transpose()?;
        let next = match change(current) {
            Ok(next) => next,
            Err(e) => return Ok(Err(e)),
        };
        sqlx::query(
            "INSERT INTO user_prefs (user_id, doc, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT(user_id) DO UPDATE SET doc = excluded.doc, updated_at = excluded.updated_at",
        )
        .bind(user_id)
        .bind(&next.doc)
        .bind(&next.updated_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(next))
    }

    /// Records a run as started unless the owner has `max_per_user` live runs (started,
    /// not ended, heartbeat after `live_after_ms`) on any replica; then `Err(running)`.
    /// On PostgreSQL the count and the insert are one transaction under a lock per owner,
    /// so two replicas cannot both admit the last run.
    #[allow(clippy::too_many_arguments)]
    pub async fn begin_run(
        &self,
        id: &str,
        owner: &str,
        replica: &str,
        doc: &str,
        started_at: &str,
        now_ms: i64,
        live_after_ms: i64,
        max_per_user: usize,
    ) -> Result<Result<(), usize>, StoreError> {
        let mut tx = self.begin_write().await?;
        if self.engine == Engine::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                .bind(format!("perf_runs:{owner}"))
                .execute(&mut *tx)
                .await?;
        }
        let running: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM perf_runs WHERE owner = $1 AND ended IS NULL AND heartbeat > $2",
        )
        .bind(owner)
        .bind(live_after_ms)
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
        let running = usize::try_from(running).unwrap_or(usize::MAX);
        if running >= max_per_user {
            return Ok(Err(running));
        }
        sqlx::query(
            "INSERT INTO perf_runs (id, owner, replica, doc, started_at, heartbeat, ended)
             VALUES ($1, $2, $3, $4, $5, $6, NULL)",
        )
        .bind(id)
        .bind(owner)
        .bind(replica)
        .bind(doc)
        .bind(started_at)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// Renews the heartbeat of a replica's runs in progress.
    pub async fn heartbeat_runs(&self, replica: &str, now_ms: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE perf_runs SET heartbeat = $2 WHERE replica = $1 AND ended IS NULL")
            .bind(replica)
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Stores frame `n` of a run.
    pub async fn add_run_frame(&self, run_id: &str, n: i64, doc: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO perf_frames (run_id, n, doc) VALUES ($1, $2, $3)")
            .bind(run_id)
            .bind(n)
            .bind(doc)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn end_run(&self, run_id: &str, now_ms: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE perf_runs SET ended = $2 WHERE id = $1")
            .bind(run_id)
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// An owner's run: (heartbeat, ended).
    pub async fn run_state(
        &self,
        owner: &str,
        run_id: &str,
    ) -> Result<Option<(i64, Option<i64>)>, StoreError> {
        let row =
            sqlx::query("SELECT heartbeat, ended FROM perf_runs WHERE owner = $1 AND id = $2")
                .bind(owner)
                .bind(run_id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| Ok((r.try_get("heartbeat")?, r.try_get("ended")?)))
            .transpose()
    }

    /// A run's frames after `n`, in order: (n, document).
    pub async fn run_frames_after(
        &self,
        run_id: &str,
        n: i64,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT n, doc FROM perf_frames WHERE run_id = $1 AND n > $2 ORDER BY n LIMIT 1000",
        )
        .bind(run_id)
        .bind(n)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("n")?, r.try_get("doc")?)))
            .collect()
    }

    /// The newest frame number of a run (0 when none).
    pub async fn last_run_frame(&self, run_id: &str) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COALESCE(MAX(n), 0) AS n FROM perf_frames WHERE run_id = $1")
            .bind(run_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// The documents of an owner's live runs on any replica, oldest first.
    pub async fn live_runs(
        &self,
        owner: &str,
        live_after_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT doc FROM perf_runs WHERE owner = $1 AND ended IS NULL AND heartbeat > $2
             ORDER BY started_at, id",
        )
        .bind(owner)
        .bind(live_after_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| r.try_get("doc").map_err(StoreError::from))
            .collect()
    }

    /// Forgets runs that ended before `ended_before` and runs whose replica stopped
    /// renewing them before `dead_before`, with their frames.
    pub async fn prune_runs(&self, ended_before: i64, dead_before: i64) -> Result<(), StoreError> {
        const OLD: &str = "SELECT id FROM perf_runs WHERE (ended IS NOT NULL AND ended < $1)
                           OR (ended IS NULL AND heartbeat < $2)";
        let mut tx = self.begin_write().await?;
        for sql in [
            format!("DELETE FROM perf_frames WHERE run_id IN ({OLD})"),
            format!("DELETE FROM perf_runs WHERE id IN ({OLD})"),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(ended_before)
                .bind(dead_before)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Deletes events created before `before` and, per owner, all but the newest `keep`
    /// (by sequence number); how many went. In batches, so a first run over a large table
    /// never holds the write lock long.
    pub async fn prune_events(
        &self,
        before: Option<&str>,
        keep: Option<i64>,
    ) -> Result<u64, StoreError> {
        let mut removed = 0;
        if let Some(before) = before {
            removed += self
                .delete_batches(
                    "DELETE FROM events WHERE seq IN
                     (SELECT seq FROM events WHERE created_at < $1 ORDER BY seq LIMIT $2)",
                    &[before],
                )
                .await?;
        }
        let Some(keep) = keep else {
            return Ok(removed);
        };
        for owner in self.owners_over("events", keep).await? {
            // The newest sequence number past the ones kept.
            let cut = sqlx::query(
                "SELECT seq FROM events WHERE owner = $1 ORDER BY seq DESC LIMIT 1 OFFSET $2",
            )
            .bind(&owner)
            .bind(keep)
            .fetch_optional(&self.pool)
            .await?;
            let Some(cut) = cut else { continue };
            let cut: i64 = cut.try_get("seq")?;
            removed += self
                .delete_batches(
                    "DELETE FROM events WHERE seq IN
                     (SELECT seq FROM events WHERE owner = $1 AND seq <= CAST($3 AS BIGINT)
                      ORDER BY seq LIMIT $2)",
                    &[&owner, &cut.to_string()],
                )
                .await?;
        }
        Ok(removed)
    }

    /// Deletes load-test results created before `before` and, per owner, all but the
    /// newest `keep`; how many went (in batches, as `prune_events`).
    pub async fn prune_perf_results(
        &self,
        before: Option<&str>,
        keep: Option<i64>,
    ) -> Result<u64, StoreError> {
        let mut removed = 0;
        if let Some(before) = before {
            removed += self
                .delete_batches(
                    "DELETE FROM perf_results WHERE id IN
                     (SELECT id FROM perf_results WHERE created_at < $1 ORDER BY created_at, id LIMIT $2)",
                    &[before],
                )
                .await?;
        }
        let Some(keep) = keep else {
            return Ok(removed);
        };
        for owner in self.owners_over("perf_results", keep).await? {
            // The newest result past the ones kept; it and everything older go.
            let cut = sqlx::query(
                "SELECT created_at, id FROM perf_results WHERE owner = $1
                 ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET $2",
            )
            .bind(&owner)
            .bind(keep)
            .fetch_optional(&self.pool)
            .await?;
            let Some(cut) = cut else { continue };
            let (created, id): (String, String) = (cut.try_get("created_at")?, cut.try_get("id")?);
            removed += self
                .delete_batches(
                    "DELETE FROM perf_results WHERE id IN
                     (SELECT id FROM perf_results WHERE owner = $1
                      AND (created_at < $3 OR (created_at = $3 AND id <= $4))
                      ORDER BY created_at, id LIMIT $2)",
                    &[&owner, &created, &id],
                )
                .await?;
        }
        Ok(removed)
    }

    /// The owners with more than `keep` rows in `table` (a constant of this module).
    async fn owners_over(&self, table: &'static str, keep: i64) -> Result<Vec<String>, StoreError> {
        let sql = format!("SELECT owner FROM {table} GROUP BY owner HAVING COUNT(*) > $1");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(keep)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| r.try_get("owner").map_err(StoreError::from))
            .collect()
    }

    /// Runs a `DELETE` of at most `$2` rows (its other parameters: `values`, as $1, $3,
    /// $4...) until it deletes fewer; how many rows went in all.
    async fn delete_batches(&self, sql: &'static str, values: &[&str]) -> Result<u64, StoreError> {
        const BATCH: i64 = 1000;
        let mut removed = 0;
        loop {
            let mut query = sqlx::query(sql).bind(values[0]).bind(BATCH);
            for value in &values[1..] {
                query = query.bind(*value);
            }
            let done = query.execute(&self.pool).await?.rows_affected();
            removed += done;
            if done < BATCH as u64 {
                return Ok(removed);
            }
        }
    }

    pub async fn insert_perf_result(
        &self,
        id: &str,
        owner: &str,
        profile_id: Option<&str>,
        name: &str,
        doc: &str,
        created_at: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO perf_results (id, owner, profile_id, name, doc, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(id)
            .bind(owner)
            .bind(profile_id)
            .bind(name)
            .bind(doc)
            .bind(created_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The document of an owner's row in `table` (a constant of this module).
    async fn doc(
        &self,
        table: &'static str,
        owner: &str,
        id: &str,
    ) -> Result<Option<String>, StoreError> {
        let sql = format!("SELECT doc FROM {table} WHERE owner = $1 AND id = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(owner)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("doc")?),
            None => None,
        })
    }

    pub async fn perf_result(&self, owner: &str, id: &str) -> Result<Option<String>, StoreError> {
        self.doc("perf_results", owner, id).await
    }

    /// A page of an owner's results (documents) and the total matching count.
    pub async fn perf_results(
        &self,
        owner: &str,
        profile_id: Option<&str>,
        listing: &Listing,
    ) -> Result<(Vec<String>, i64), StoreError> {
        self.page(
            "perf_results",
            "($2 IS NULL OR profile_id = $2)",
            owner,
            profile_id,
            listing,
        )
        .await
    }

    /// A page of an owner's profiles (documents) and the total matching count.
    pub async fn perf_profiles(
        &self,
        owner: &str,
        listing: &Listing,
    ) -> Result<(Vec<String>, i64), StoreError> {
        self.page("perf_profiles", "$2 IS NULL", owner, None, listing)
            .await
    }

    /// The one listing query: owner, an extra filter on $2, name search, time window,
    /// order, page. `table` and `extra` are constants of this module; values are bound.
    async fn page(
        &self,
        table: &'static str,
        extra: &'static str,
        owner: &str,
        extra_value: Option<&str>,
        listing: &Listing,
    ) -> Result<(Vec<String>, i64), StoreError> {
        self.page_where(table, "owner = $1", extra, owner, extra_value, listing)
            .await
    }

    /// `page` with another condition than the owner on `$1` (`scope`).
    async fn page_where(
        &self,
        table: &'static str,
        scope: &'static str,
        extra: &'static str,
        first: &str,
        extra_value: Option<&str>,
        listing: &Listing,
    ) -> Result<(Vec<String>, i64), StoreError> {
        let owner = first;
        let column = match listing.order.0 {
            "name" => "name",
            _ => "created_at",
        };
        let direction = if listing.order.1 { "DESC" } else { "ASC" };
        // SQLite's LIKE ignores ASCII case; PostgreSQL's needs ILIKE for the same.
        let like_op = self.sql("LIKE", "ILIKE");
        let filter = format!(
            "{scope} AND {extra} AND ($3 IS NULL OR name {like_op} $3 ESCAPE '\\')
             AND ($4 IS NULL OR created_at >= $4) AND ($5 IS NULL OR created_at < $5)"
        );
        let search = listing
            .search
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(like);
        let count_sql = format!("SELECT COUNT(*) AS n FROM {table} WHERE {filter}");
        let total: i64 = sqlx::query(sqlx::AssertSqlSafe(count_sql))
            .bind(owner)
            .bind(extra_value)
            .bind(&search)
            .bind(&listing.from)
            .bind(&listing.to)
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        let (limit, offset) = match listing.page_size {
            Some(size) => (size, listing.page.saturating_mul(size)),
            None => (i64::MAX, 0),
        };
        let sql = format!(
            "SELECT doc FROM {table} WHERE {filter} ORDER BY {column} {direction}, id {direction} LIMIT $6 OFFSET $7"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(owner)
            .bind(extra_value)
            .bind(&search)
            .bind(&listing.from)
            .bind(&listing.to)
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.pool)
            .await?;
        let docs = rows
            .iter()
            .map(|r| r.try_get("doc"))
            .collect::<Result<Vec<String>, _>>()?;
        Ok((docs, total))
    }

    pub async fn perf_profile(&self, owner: &str, id: &str) -> Result<Option<String>, StoreError> {
        self.doc("perf_profiles", owner, id).await
    }

    pub async fn put_perf_profile(
        &self,
        owner: &str,
        id: &str,
        name: &str,
        doc: &str,
        created_at: &str,
        updated_at: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO perf_profiles (id, owner, name, doc, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT(id) DO UPDATE SET name = excluded.name, doc = excluded.doc, updated_at = excluded.updated_at
             WHERE perf_profiles.owner = excluded.owner",
        )
        .bind(id)
        .bind(owner)
        .bind(name)
        .bind(doc)
        .bind(created_at)
        .bind(updated_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deletes an owner's profile; false when there is none.
    pub async fn delete_perf_profile(&self, owner: &str, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM perf_profiles WHERE owner = $1 AND id = $2")
            .bind(owner)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// How many results a profile has, and when the newest was made.
    pub async fn perf_profile_stats(
        &self,
        owner: &str,
        id: &str,
    ) -> Result<(i64, Option<String>), StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n, MAX(created_at) AS last FROM perf_results WHERE owner = $1 AND profile_id = $2")
            .bind(owner)
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        Ok((row.try_get("n")?, row.try_get("last")?))
    }

    /// Stores an event; its sequence number. On PostgreSQL `notice` is sent on `channel`
    /// when the insert commits (the other replicas' readers then fetch it).
    pub async fn insert_event(
        &self,
        row: &EventRow<'_>,
        channel: &str,
        notice: &str,
    ) -> Result<i64, StoreError> {
        let mut tx = self.begin_write().await?;
        if self.engine == Engine::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(EVENTS_LOCK)
                .execute(&mut *tx)
                .await?;
        }
        let seq: i64 = sqlx::query(
            "INSERT INTO events (id, owner, name, category, action, severity, status, doc, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING seq",
        )
        .bind(row.id)
        .bind(row.owner)
        .bind(row.description)
        .bind(row.category)
        .bind(row.action)
        .bind(row.severity)
        .bind(row.status)
        .bind(row.doc)
        .bind(row.created_at)
        .fetch_one(&mut *tx)
        .await?
        .try_get("seq")?;
        if self.engine == Engine::Postgres {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(channel)
                .bind(notice)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(seq)
    }

    /// The newest event's sequence number (0 when there is none).
    pub async fn last_event_seq(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COALESCE(MAX(seq), 0) AS n FROM events")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Events after `seq`, oldest first, at most `limit`: (seq, owner, document); of one
    /// owner when given.
    pub async fn events_after(
        &self,
        seq: i64,
        owner: Option<&str>,
        limit: i64,
    ) -> Result<Vec<(i64, String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, owner, doc FROM events WHERE seq > $1 AND ($2 IS NULL OR owner = $2)
             ORDER BY seq LIMIT $3",
        )
        .bind(seq)
        .bind(owner)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("seq")?, r.try_get("owner")?, r.try_get("doc")?)))
            .collect()
    }

    /// A page of an owner's events (documents) and the total matching count.
    pub async fn events(
        &self,
        owner: &str,
        filter: &EventFilter,
        listing: &Listing,
    ) -> Result<(Vec<String>, i64), StoreError> {
        // The filter travels as one JSON value, unpacked by the database's json functions.
        let filter_sql = self.sql(
            "(json_array_length($2, '$.category') = 0 OR category IN (SELECT value FROM json_each($2, '$.category')))
             AND (json_array_length($2, '$.severity') = 0 OR severity IN (SELECT value FROM json_each($2, '$.severity')))
             AND (json_array_length($2, '$.action') = 0 OR action IN (SELECT value FROM json_each($2, '$.action')))
             AND (json_extract($2, '$.status') IS NULL OR status = json_extract($2, '$.status'))",
            "(jsonb_array_length($2::jsonb -> 'category') = 0 OR category IN (SELECT jsonb_array_elements_text($2::jsonb -> 'category')))
             AND (jsonb_array_length($2::jsonb -> 'severity') = 0 OR severity IN (SELECT jsonb_array_elements_text($2::jsonb -> 'severity')))
             AND (jsonb_array_length($2::jsonb -> 'action') = 0 OR action IN (SELECT jsonb_array_elements_text($2::jsonb -> 'action')))
             AND (($2::jsonb ->> 'status') IS NULL OR status = ($2::jsonb ->> 'status'))",
        );
        let filter = serde_json::to_string(filter)
            .map_err(|e| StoreError::Corrupt(format!("event filter: {e}")))?;
        self.page("events", filter_sql, owner, Some(&filter), listing)
            .await
    }

    /// How many of an owner's events are unread, by severity.
    pub async fn unread_by_severity(&self, owner: &str) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT severity, COUNT(*) AS n FROM events WHERE owner = $1 AND status = 'unread' GROUP BY severity ORDER BY severity",
        )
        .bind(owner)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("severity")?, r.try_get("n")?)))
            .collect()
    }

    /// Sets the status of an owner's events among `ids`; the updated documents.
    pub async fn set_events_status(
        &self,
        owner: &str,
        ids: &[String],
        status: &str,
        updated_at: &str,
    ) -> Result<Vec<String>, StoreError> {
        let ids = serde_json::to_string(ids)
            .map_err(|e| StoreError::Corrupt(format!("event ids: {e}")))?;
        let rows = sqlx::query(self.sql(
            "UPDATE events SET status = $1,
                 doc = json_set(doc, '$.status', $1, '$.updatedAt', $2)
             WHERE owner = $3 AND id IN (SELECT value FROM json_each($4))
             RETURNING doc",
            "UPDATE events SET status = $1,
                 doc = (doc::jsonb || jsonb_build_object('status', $1::text, 'updatedAt', $2::text))::text
             WHERE owner = $3 AND id IN (SELECT jsonb_array_elements_text($4::jsonb))
             RETURNING doc",
        ))
        .bind(status)
        .bind(updated_at)
        .bind(owner)
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| r.try_get("doc").map_err(StoreError::from))
            .collect()
    }

    /// The distinct categories and actions of an owner's events, each sorted.
    pub async fn event_types(&self, owner: &str) -> Result<(Vec<String>, Vec<String>), StoreError> {
        let rows = sqlx::query(
            "SELECT 'c' AS k, category AS v FROM events WHERE owner = $1 GROUP BY category
             UNION SELECT 'a' AS k, action AS v FROM events WHERE owner = $1 GROUP BY action
             ORDER BY k, v",
        )
        .bind(owner)
        .fetch_all(&self.pool)
        .await?;
        let (mut categories, mut actions) = (Vec::new(), Vec::new());
        for row in rows {
            let kind: String = row.try_get("k")?;
            let value: String = row.try_get("v")?;
            if kind == "c" {
                categories.push(value);
            } else {
                actions.push(value);
            }
        }
        Ok((categories, actions))
    }

    /// Deletes an owner's events among `ids`; how many there were.
    pub async fn delete_events(&self, owner: &str, ids: &[String]) -> Result<u64, StoreError> {
        self.delete_owned("events", owner, ids).await
    }

    /// Deletes an owner's rows of `table` (a constant of this module) among `ids`.
    async fn delete_owned(
        &self,
        table: &'static str,
        owner: &str,
        ids: &[String],
    ) -> Result<u64, StoreError> {
        let ids =
            serde_json::to_string(ids).map_err(|e| StoreError::Corrupt(format!("ids: {e}")))?;
        let ids_sql = self.sql(
            "SELECT value FROM json_each($2)",
            "SELECT jsonb_array_elements_text($2::jsonb)",
        );
        let sql = format!("DELETE FROM {table} WHERE owner = $1 AND id IN ({ids_sql})");
        let done = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(owner)
            .bind(ids)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Creates or replaces a design; an existing id of another owner is left alone.
    #[allow(clippy::too_many_arguments)]
    pub async fn put_pattern(
        &self,
        owner: &str,
        id: &str,
        name: &str,
        visibility: &str,
        doc: &str,
        created_at: &str,
        updated_at: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO patterns (id, owner, name, visibility, doc, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT(id) DO UPDATE SET name = excluded.name, visibility = excluded.visibility,
                 doc = excluded.doc, updated_at = excluded.updated_at
             WHERE patterns.owner = excluded.owner",
        )
        .bind(id)
        .bind(owner)
        .bind(name)
        .bind(visibility)
        .bind(doc)
        .bind(created_at)
        .bind(updated_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A design by id: the owner's when `owner` is given, anyone's otherwise.
    pub async fn pattern(
        &self,
        owner: Option<&str>,
        id: &str,
    ) -> Result<Option<String>, StoreError> {
        match owner {
            Some(owner) => self.doc("patterns", owner, id).await,
            None => {
                let row = sqlx::query("SELECT doc FROM patterns WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(match row {
                    Some(r) => Some(r.try_get("doc")?),
                    None => None,
                })
            }
        }
    }

    /// A page of an owner's designs with one of `visibility` (all when empty).
    pub async fn patterns(
        &self,
        owner: &str,
        visibility: &[String],
        listing: &Listing,
    ) -> Result<(Vec<String>, i64), StoreError> {
        let filter = serde_json::to_string(visibility)
            .map_err(|e| StoreError::Corrupt(format!("visibility filter: {e}")))?;
        self.page(
            "patterns",
            self.sql(
                "(json_array_length($2) = 0 OR visibility IN (SELECT value FROM json_each($2)))",
                "(jsonb_array_length($2::jsonb) = 0 OR visibility IN (SELECT jsonb_array_elements_text($2::jsonb)))",
            ),
            owner,
            Some(&filter),
            listing,
        )
        .await
    }

    /// Every user's published designs (the catalog).
    pub async fn published_patterns(
        &self,
        listing: &Listing,
    ) -> Result<(Vec<String>, i64), StoreError> {
        self.page_where(
            "patterns",
            "visibility = $1",
            "$2 IS NULL",
            "published",
            None,
            listing,
        )
        .await
    }

    /// Deletes an owner's designs among `ids`; how many there were.
    pub async fn delete_patterns(&self, owner: &str, ids: &[String]) -> Result<u64, StoreError> {
        self.delete_owned("patterns", owner, ids).await
    }

    pub async fn put_k8s_context(
        &self,
        owner: &str,
        id: &str,
        name: &str,
        doc: &str,
        secret: &[u8],
        created_at: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO k8s_contexts (id, owner, name, doc, secret, created_at) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT(owner, id) DO UPDATE SET name = excluded.name, doc = excluded.doc, secret = excluded.secret",
        )
        .bind(id)
        .bind(owner)
        .bind(name)
        .bind(doc)
        .bind(secret)
        .bind(created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// An owner's context: its document and sealed credentials.
    /// A stored context's connection status, if the context is stored.
    pub async fn k8s_context_status(
        &self,
        owner: &str,
        id: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT status FROM k8s_contexts WHERE owner = $1 AND id = $2")
            .bind(owner)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("status")?),
            None => None,
        })
    }

    pub async fn k8s_context(
        &self,
        owner: &str,
        id: &str,
    ) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        let row = sqlx::query("SELECT doc, secret FROM k8s_contexts WHERE owner = $1 AND id = $2")
            .bind(owner)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Some((r.try_get("doc")?, r.try_get("secret")?)),
            None => None,
        })
    }

    pub async fn k8s_contexts(
        &self,
        owner: &str,
        listing: &Listing,
    ) -> Result<(Vec<String>, i64), StoreError> {
        self.page("k8s_contexts", "$2 IS NULL", owner, None, listing)
            .await
    }

    pub async fn delete_k8s_context(&self, owner: &str, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM k8s_contexts WHERE owner = $1 AND id = $2")
            .bind(owner)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The definitions of registered models, oldest first.
    pub async fn registered_models(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT doc FROM registry_models ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| r.try_get("doc").map_err(StoreError::from))
            .collect()
    }

    /// Deletes a registered model; false when there was none.
    pub async fn delete_registered_model(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM registry_models WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Stores a registered model; false when one with that id exists.
    pub async fn insert_registered_model(
        &self,
        id: &str,
        name: &str,
        version: &str,
        doc: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO registry_models (id, name, version, doc, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(name)
        .bind(version)
        .bind(doc)
        .bind(stamp(chrono::Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A column's type, for copying rows between engines.
#[derive(Clone, Copy)]
enum Col {
    Text,
    /// Text that may be null.
    OptText,
    Int,
    OptInt,
    Bytes,
}

/// Every table with data and its columns (the tables `open` fills itself, `instance` and
/// `settings`, are copied by replacing the target's rows).
const TABLES: &[(&str, &[(&str, Col)])] = &[
    (
        "user_prefs",
        &[
            ("user_id", Col::Text),
            ("doc", Col::Text),
            ("updated_at", Col::Text),
        ],
    ),
    (
        "perf_profiles",
        &[
            ("id", Col::Text),
            ("owner", Col::Text),
            ("name", Col::Text),
            ("doc", Col::Text),
            ("created_at", Col::Text),
            ("updated_at", Col::Text),
        ],
    ),
    (
        "perf_results",
        &[
            ("id", Col::Text),
            ("owner", Col::Text),
            ("profile_id", Col::OptText),
            ("name", Col::Text),
            ("doc", Col::Text),
            ("created_at", Col::Text),
        ],
    ),
    (
        "events",
        &[
            ("seq", Col::Int),
            ("id", Col::Text),
            ("owner", Col::Text),
            ("name", Col::Text),
            ("category", Col::Text),
            ("action", Col::Text),
            ("severity", Col::Text),
            ("status", Col::Text),
            ("doc", Col::Text),
            ("created_at", Col::Text),
        ],
    ),
    (
        "registry_models",
        &[
            ("id", Col::Text),
            ("name", Col::Text),
            ("version", Col::Text),
            ("doc", Col::Text),
            ("created_at", Col::Text),
        ],
    ),
    (
        "patterns",
        &[
            ("id", Col::Text),
            ("owner", Col::Text),
            ("name", Col::Text),
            ("visibility", Col::Text),
            ("doc", Col::Text),
            ("created_at", Col::Text),
            ("updated_at", Col::Text),
        ],
    ),
    (
        "k8s_contexts",
        &[
            ("id", Col::Text),
            ("owner", Col::Text),
            ("name", Col::Text),
            ("doc", Col::Text),
            ("secret", Col::Bytes),
            ("created_at", Col::Text),
            // A user's ignored/maintenance choice; live states are found again.
            ("status", Col::Text),
        ],
    ),
    (
        "perf_runs",
        &[
            ("id", Col::Text),
            ("owner", Col::Text),
            ("replica", Col::Text),
            ("doc", Col::Text),
            ("started_at", Col::Text),
            ("heartbeat", Col::Int),
            ("ended", Col::OptInt),
        ],
    ),
    (
        "perf_frames",
        &[("run_id", Col::Text), ("n", Col::Int), ("doc", Col::Text)],
    ),
    (
        "credentials",
        &[
            ("owner", Col::Text),
            ("id", Col::Text),
            ("name", Col::Text),
            ("type", Col::Text),
            ("secret", Col::Bytes),
            ("created_at", Col::Text),
            ("updated_at", Col::Text),
        ],
    ),
    (
        "integrations",
        &[
            ("owner", Col::Text),
            ("id", Col::Text),
            ("kind", Col::Text),
            ("type", Col::Text),
            ("sub_type", Col::Text),
            ("name", Col::Text),
            ("status", Col::Text),
            ("doc", Col::Text),
            ("credential_id", Col::OptText),
            ("created_at", Col::Text),
            ("updated_at", Col::Text),
        ],
    ),
    (
        "workspaces",
        &[
            ("id", Col::Text),
            ("provider", Col::Text),
            ("org_id", Col::Text),
            ("owner", Col::Text),
            ("owner_id", Col::Text),
            ("name", Col::Text),
            ("description", Col::Text),
            ("metadata", Col::Text),
            ("created_at", Col::Text),
            ("updated_at", Col::Text),
        ],
    ),
    (
        "environments",
        &[
            ("id", Col::Text),
            ("provider", Col::Text),
            ("org_id", Col::Text),
            ("owner", Col::Text),
            ("owner_id", Col::Text),
            ("name", Col::Text),
            ("description", Col::Text),
            ("metadata", Col::Text),
            ("created_at", Col::Text),
            ("updated_at", Col::Text),
        ],
    ),
    (
        "workspace_members",
        &[
            ("workspace_id", Col::Text),
            ("kind", Col::Text),
            ("member_id", Col::Text),
            ("owner", Col::Text),
            ("id", Col::Text),
            ("created_at", Col::Text),
        ],
    ),
    (
        "environment_connections",
        &[
            ("environment_id", Col::Text),
            ("connection_id", Col::Text),
            ("owner", Col::Text),
            ("id", Col::Text),
            ("created_at", Col::Text),
        ],
    ),
    ("instance", &[("id", Col::Text), ("created_at", Col::Text)]),
    ("settings", &[("name", Col::Text), ("value", Col::Text)]),
];

/// Why a copy did not happen.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the target database is not empty ({table} has {rows} rows); copy only into a new one")]
    NotEmpty { table: &'static str, rows: i64 },
}

/// Copies every row of `from` into `to`, which must hold no data yet (a new database:
/// `open` made its tables, instance id and settings, which are replaced by the source's,
/// so users keep their ids and the same sealing key opens the credentials). One
/// transaction: the target has everything or nothing. Rows copied, per table.
pub async fn copy(from: &Store, to: &Store) -> Result<Vec<(&'static str, u64)>, CopyError> {
    use futures_util::TryStreamExt;
    for (table, _) in TABLES {
        if matches!(*table, "instance" | "settings") {
            continue;
        }
        let rows: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) AS n FROM {table}"
        )))
        .fetch_one(&to.pool)
        .await
        .map_err(StoreError::from)?
        .try_get("n")
        .map_err(StoreError::from)?;
        if rows > 0 {
            return Err(CopyError::NotEmpty { table, rows });
        }
    }
    let mut tx = to.begin_write().await?;
    let mut copied = Vec::new();
    for (table, columns) in TABLES {
        if matches!(*table, "instance" | "settings") {
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from)?;
        }
        let names: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
        let select = format!("SELECT {} FROM {table}", names.join(", "));
        let placeholders: Vec<String> = (1..=names.len()).map(|i| format!("${i}")).collect();
        let insert = format!(
            "INSERT INTO {table} ({}) VALUES ({})",
            names.join(", "),
            placeholders.join(", ")
        );
        let mut rows = sqlx::query(sqlx::AssertSqlSafe(select)).fetch(&from.pool);
        let mut n = 0u64;
        while let Some(row) = rows.try_next().await.map_err(StoreError::from)? {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(insert.clone()));
            for (i, (_, col)) in columns.iter().enumerate() {
                query = match col {
                    Col::Text => query.bind(row.try_get::<String, _>(i).map_err(StoreError::from)?),
                    Col::OptText => query.bind(
                        row.try_get::<Option<String>, _>(i)
                            .map_err(StoreError::from)?,
                    ),
                    Col::Int => query.bind(row.try_get::<i64, _>(i).map_err(StoreError::from)?),
                    Col::OptInt => {
                        query.bind(row.try_get::<Option<i64>, _>(i).map_err(StoreError::from)?)
                    }
                    Col::Bytes => {
                        query.bind(row.try_get::<Vec<u8>, _>(i).map_err(StoreError::from)?)
                    }
                };
            }
            query.execute(&mut *tx).await.map_err(StoreError::from)?;
            n += 1;
        }
        copied.push((*table, n));
    }
    if to.engine == Engine::Postgres {
        // Explicit sequence numbers do not move PostgreSQL's sequence; new events must
        // come after the copied ones.
        sqlx::query(
            "SELECT setval(pg_get_serial_sequence('events', 'seq'), COALESCE((SELECT MAX(seq) FROM events), 0) + 1, false)",
        )
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    Ok(copied)
}
