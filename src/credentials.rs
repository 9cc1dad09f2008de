//! Users' credentials (API keys, tokens, passwords that connections use). The secret is
//! sealed with the installation's key, bound to its owner and id; listings and the
//! answers to changes show each secret value as [`MASK`], and only its owner's GET by
//! id opens it.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::fault::{Internal, OrInternal};
use crate::models::Credential;
use crate::sealing::Sealer;
use crate::session::Session;
use crate::store::{CredentialRow, Store, stamp};

/// What a listed secret value shows instead of itself.
pub const MASK: &str = "********";

/// Why a credential operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("no credential {0:?} of yours")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("you already have a credential with id {0:?}")]
    Exists(String),
    #[error("credential {id:?} is used by the connection(s) {}", names.join(", "))]
    InUse { id: String, names: Vec<String> },
    #[error(transparent)]
    Internal(#[from] Internal),
}

/// A credential to store.
#[derive(Debug, Clone, Default)]
pub struct NewCredential {
    /// A UUID the client chose; a new one when `None`.
    pub id: Option<String>,
    pub name: String,
    pub r#type: String,
    pub secret: Map<String, Value>,
}

pub struct Credentials {
    store: Store,
    sealer: Arc<Sealer>,
}

/// The sealed blob's binding: another row's blob does not open here.
fn aad(owner: &str, id: &str) -> String {
    format!("credential\n{owner}\n{id}")
}

/// A credential id: a UUID, in its canonical form.
pub fn parse_id(id: &str) -> Result<String, CredentialError> {
    uuid::Uuid::parse_str(id.trim())
        .map(|u| u.to_string())
        .map_err(|_| CredentialError::Invalid(format!("credential id {id:?} is not a UUID")))
}

fn masked(secret: &Map<String, Value>) -> Map<String, Value> {
    secret
        .keys()
        .map(|k| (k.clone(), Value::String(MASK.into())))
        .collect()
}

fn time(text: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_default()
}

fn check_name(name: &str) -> Result<String, CredentialError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(CredentialError::Invalid("a credential needs a name".into()));
    }
    Ok(name.to_string())
}

impl Credentials {
    pub fn new(store: Store, sealer: Arc<Sealer>) -> Credentials {
        Credentials { store, sealer }
    }

    fn open(&self, row: &CredentialRow) -> Result<Map<String, Value>, Internal> {
        let plain = self
            .sealer
            .open_blob(&aad(&row.owner, &row.id), &row.secret)?;
        serde_json::from_slice(&plain).or_internal("decoding a credential's secret")
    }

    fn seal(
        &self,
        owner: &str,
        id: &str,
        secret: &Map<String, Value>,
    ) -> Result<Vec<u8>, Internal> {
        let plain = serde_json::to_vec(secret).or_internal("encoding a credential's secret")?;
        self.sealer.seal(&aad(owner, id), &plain)
    }

    fn view(&self, row: &CredentialRow, clear: bool) -> Result<Credential, Internal> {
        let secret = self.open(row)?;
        Ok(Credential {
            id: row.id.clone(),
            name: row.name.clone(),
            type_: row.r#type.clone(),
            user_id: row.owner.clone(),
            secret: if clear { secret } else { masked(&secret) },
            created_at: time(&row.created_at),
            updated_at: time(&row.updated_at),
            deleted_at: None,
        })
    }

    async fn row(&self, owner: &str, id: &str) -> Result<CredentialRow, CredentialError> {
        let key = parse_id(id).map_err(|_| CredentialError::NotFound(id.to_string()))?;
        self.store
            .credential(owner, &key)
            .await
            .or_internal("reading a credential")?
            .ok_or_else(|| CredentialError::NotFound(id.to_string()))
    }

    /// A page of the user's credentials, secrets masked, and how many match.
    pub async fn list(
        &self,
        session: &Session,
        search: Option<&str>,
        order: (&'static str, bool),
        page: i64,
        page_size: Option<i64>,
    ) -> Result<(Vec<Credential>, i64), CredentialError> {
        let (rows, total) = self
            .store
            .credentials(&session.owner(), search, order, page, page_size)
            .await
            .or_internal("listing credentials")?;
        let items = rows
            .iter()
            .map(|r| self.view(r, false))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((items, total))
    }

    /// One of the user's credentials with its secret in clear.
    pub async fn get(&self, session: &Session, id: &str) -> Result<Credential, CredentialError> {
        let row = self.row(&session.owner(), id).await?;
        Ok(self.view(&row, true)?)
    }

    /// The secret of one of `owner`'s credentials (to reach what a connection names).
    pub async fn secret(
        &self,
        owner: &str,
        id: &str,
    ) -> Result<Map<String, Value>, CredentialError> {
        let row = self.row(owner, id).await?;
        Ok(self.open(&row)?)
    }

    /// Stores a credential; the answer masks its secret.
    pub async fn create(
        &self,
        session: &Session,
        new: NewCredential,
    ) -> Result<Credential, CredentialError> {
        let owner = session.owner();
        let id = match new.id.as_deref().filter(|i| !i.trim().is_empty()) {
            Some(given) => parse_id(given)?,
            None => uuid::Uuid::new_v4().to_string(),
        };
        let now = stamp(chrono::Utc::now());
        let row = CredentialRow {
            secret: self.seal(&owner, &id, &new.secret)?,
            owner,
            id: id.clone(),
            name: check_name(&new.name)?,
            r#type: new.r#type.trim().to_string(),
            created_at: now.clone(),
            updated_at: now,
        };
        if !self
            .store
            .insert_credential(&row)
            .await
            .or_internal("storing a credential")?
        {
            return Err(CredentialError::Exists(id));
        }
        Ok(self.view(&row, false)?)
    }

    /// Replaces a credential's name, type and secret. A secret that is empty or all
    /// [`MASK`] (a listing sent back) keeps the stored one.
    pub async fn update(
        &self,
        session: &Session,
        id: &str,
        name: &str,
        r#type: &str,
        secret: &Map<String, Value>,
    ) -> Result<Credential, CredentialError> {
        let owner = session.owner();
        let mut row = self.row(&owner, id).await?;
        let keep = secret.values().all(|v| v.as_str() == Some(MASK));
        if !keep {
            row.secret = self.seal(&owner, &row.id, secret)?;
        }
        row.name = check_name(name)?;
        row.r#type = r#type.trim().to_string();
        row.updated_at = stamp(chrono::Utc::now());
        if !self
            .store
            .update_credential(&row)
            .await
            .or_internal("changing a credential")?
        {
            return Err(CredentialError::NotFound(id.to_string()));
        }
        Ok(self.view(&row, false)?)
    }

    /// Deletes a credential no connection uses; its last view, masked.
    pub async fn delete(&self, session: &Session, id: &str) -> Result<Credential, CredentialError> {
        let owner = session.owner();
        let row = self.row(&owner, id).await?;
        let last = self.view(&row, false)?;
        match self
            .store
            .delete_credential(&owner, &row.id)
            .await
            .or_internal("deleting a credential")?
        {
            Ok(true) => Ok(last),
            Ok(false) => Err(CredentialError::NotFound(id.to_string())),
            Err(names) => Err(CredentialError::InUse { id: row.id, names }),
        }
    }

    /// Deletes a credential whatever uses it (a cancelled registration's own).
    pub async fn forget(&self, owner: &str, id: &str) -> Result<(), Internal> {
        self.store
            .force_delete_credential(owner, id)
            .await
            .or_internal("deleting a credential")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking_keeps_the_keys_and_hides_every_value() {
        let secret: Map<String, Value> =
            serde_json::from_value(serde_json::json!({"token": "abc", "n": 3, "o": {"x": 1}}))
                .unwrap();
        let m = masked(&secret);
        assert_eq!(m.keys().collect::<Vec<_>>(), ["n", "o", "token"]);
        assert!(m.values().all(|v| v == MASK));
    }

    #[test]
    fn ids_are_uuids_in_canonical_form() {
        assert_eq!(
            parse_id(" 5B6F1A2E-3C4D-4E5F-8A9B-0C1D2E3F4A5B ").unwrap(),
            "5b6f1a2e-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
        );
        assert!(matches!(parse_id("x"), Err(CredentialError::Invalid(_))));
    }
}
