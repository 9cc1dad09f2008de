//! Organizations and the keys a user holds in them, as Meshery's UI loads them on every
//! page (`GET /api/identity/orgs`, `.../users/keys`): the UI takes the first organization
//! and builds every permission check from the keys' ids.
//!
//! This is the Local provider's side: one organization, made when the server first starts
//! (kept in the settings table, so every replica and restart shows the same), holding
//! every key of Meshery's keychain (`orgs/keychain.csv`, the ids Meshery's UI checks). A
//! remote provider's organizations and keys are its own (`handlers::identity` asks it).

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::fault::{Internal, OrInternal};
use crate::store::Store;

/// A key of Meshery's keychain.
#[derive(Debug, Clone)]
pub struct KeyDef {
    pub id: String,
    pub category: String,
    pub function: String,
    pub description: String,
    /// The keychain it belongs to (Meshery's `subcategory`).
    pub keychain: String,
}

static KEYCHAIN: LazyLock<Vec<KeyDef>> =
    LazyLock::new(|| parse_keychain(include_str!("orgs/keychain.csv")));

fn parse_keychain(text: &str) -> Vec<KeyDef> {
    let mut reader = csv::ReaderBuilder::new()
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    reader
        .records()
        .filter_map(Result::ok)
        .filter_map(|r| {
            let field = |i: usize| r.get(i).map(|v| v.trim().to_string());
            Some(KeyDef {
                category: field(0)?,
                function: field(1)?,
                description: field(2)?,
                keychain: field(3)?,
                id: field(4)?,
            })
        })
        .collect()
}

/// Every key of Meshery's keychain, in its order.
pub fn keychain() -> &'static [KeyDef] {
    &KEYCHAIN
}

/// When the keychain's keys were made: a fixed time, as they are the same everywhere.
pub fn keychain_time() -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default()
}

/// The Local provider's organization.
#[derive(Debug, Clone)]
pub struct LocalOrg {
    pub id: String,
    pub created_at: DateTime<Utc>,
}

/// Meshery's name and description for the Local provider's organization.
pub const LOCAL_ORG_NAME: &str = "My Org";
pub const LOCAL_ORG_DESCRIPTION: &str = "This is default organization";

/// The Local provider's organization, made on first use (the first writer wins, so
/// replicas sharing a database agree).
pub async fn local_org(store: &Store) -> Result<LocalOrg, Internal> {
    let fresh = json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "createdAt": Utc::now().to_rfc3339(),
    })
    .to_string();
    let kept = store
        .setting_or_init("local_organization", &fresh)
        .await
        .or_internal("reading the Local organization")?;
    let doc: serde_json::Value =
        serde_json::from_str(&kept).or_internal("decoding the Local organization")?;
    let id = doc["id"]
        .as_str()
        .filter(|id| uuid::Uuid::parse_str(id).is_ok())
        .ok_or("no id")
        .or_internal("reading the Local organization's id")?
        .to_string();
    let created_at = doc["createdAt"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .ok_or("no creation time")
        .or_internal("reading the Local organization's creation time")?;
    Ok(LocalOrg { id, created_at })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keychain_has_meshery_s_keys_once_each() {
        let keys = keychain();
        assert_eq!(keys.len(), 94);
        let mut ids: Vec<&str> = keys.iter().map(|k| k.id.as_str()).collect();
        assert!(ids.iter().all(|id| uuid::Uuid::parse_str(id).is_ok()));
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), keys.len());
        // The UI's VIEW_WORKSPACE and CREATE_ENVIRONMENT checks.
        let by_id = |id: &str| {
            keys.iter()
                .find(|k| k.id == id)
                .map(|k| k.function.as_str())
        };
        assert_eq!(
            by_id("bc9379e8-dc18-4655-b53c-c641271c4ba3"),
            Some("View Workspace")
        );
        assert_eq!(
            by_id("a97b7f3b-3349-4a86-b917-2ce0b64a540b"),
            Some("Create Environment")
        );
        assert!(
            keys.iter()
                .all(|k| !k.category.is_empty() && !k.keychain.is_empty())
        );
    }
}
