//! Organizations and keys (`/api/identity/orgs`): the Local provider's from `orgs`, a
//! remote provider's from the provider itself (the same request, with the session's
//! token), read into Meshery's shape whichever spelling the provider uses.

use serde_json::Value;

use crate::app::App;
use crate::error::{ApiError, codes};
use crate::generated::rest::*;
use crate::models::{Key, Organization};
use crate::providers::Provider;
use crate::server::Api;
use crate::session::Session;
use crate::store::Listing;

/// Where a provider lists the user's organizations (all of them).
const ORGS_PATH: &str = "/api/identity/orgs?all=true&pagesize=all";

/// Largest answer read from a provider's identity endpoints.
const MAX_ANSWER: usize = 1 << 20;

/// A page of `items` as `listing` asks.
pub(super) fn page<T>(items: Vec<T>, listing: &Listing) -> (Vec<T>, i64) {
    let total = i64::try_from(items.len()).unwrap_or(i64::MAX);
    let items = match listing.page_size {
        None => items,
        Some(size) => items
            .into_iter()
            .skip(usize::try_from(listing.page.saturating_mul(size)).unwrap_or(usize::MAX))
            .take(usize::try_from(size).unwrap_or(usize::MAX))
            .collect(),
    };
    (items, total)
}

fn text(v: &Value, keys: &[&str]) -> String {
    keys.iter()
        .find_map(|k| v.get(*k).and_then(Value::as_str))
        .unwrap_or_default()
        .to_string()
}

fn time(v: &Value, keys: &[&str]) -> chrono::DateTime<chrono::Utc> {
    keys.iter()
        .find_map(|k| v.get(*k).and_then(Value::as_str))
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_else(crate::orgs::keychain_time)
}

/// An organization as a provider sent it (camelCase or snake_case).
fn organization_of(v: &Value) -> Option<Organization> {
    let id = text(v, &["id"]);
    (!id.is_empty()).then(|| Organization {
        id,
        name: text(v, &["name"]),
        description: text(v, &["description"]),
        country: text(v, &["country"]),
        region: text(v, &["region"]),
        owner: text(v, &["owner"]),
        metadata: v
            .get("metadata")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
        created_at: time(v, &["createdAt", "created_at"]),
        updated_at: time(v, &["updatedAt", "updated_at"]),
        deleted_at: None,
    })
}

/// A team as a provider sent it.
fn team_of(v: &Value) -> Option<crate::models::Team> {
    let id = text(v, &["id"]);
    (!id.is_empty()).then(|| crate::models::Team {
        id,
        name: text(v, &["name"]),
        description: Some(text(v, &["description"])),
        owner: Some(text(v, &["owner"])),
        metadata: v
            .get("metadata")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
        created_at: time(v, &["createdAt", "created_at"]),
        updated_at: time(v, &["updatedAt", "updated_at"]),
        deleted_at: None,
    })
}

/// Teams in `order` (`name`, `created_at` or `updated_at`, descending).
pub(super) fn sort_teams(teams: &mut [crate::models::Team], (column, descending): (&str, bool)) {
    teams.sort_by(|a, b| match column {
        "name" => a.name.cmp(&b.name),
        "created_at" => a.created_at.cmp(&b.created_at),
        _ => a.updated_at.cmp(&b.updated_at),
    });
    if descending {
        teams.reverse();
    }
}

/// Organizations in `order` (`name` or `created_at`); ties keep the provider's order, so
/// the first of the default listing (newest first) is the one Meshery's UI starts in.
fn sort_orgs(orgs: &mut [Organization], (column, descending): (&str, bool)) {
    orgs.sort_by(|a, b| {
        let (a, b) = if descending { (b, a) } else { (a, b) };
        match column {
            "name" => a.name.to_lowercase().cmp(&b.name.to_lowercase()),
            _ => a.created_at.cmp(&b.created_at),
        }
    });
}

/// A key as a provider sent it.
fn key_of(v: &Value, org: &str) -> Option<Key> {
    let id = text(v, &["id"]);
    (!id.is_empty()).then(|| Key {
        id,
        owner: Some(text(v, &["owner"]))
            .filter(|o| !o.is_empty())
            .unwrap_or_else(|| org.to_string()),
        function: text(v, &["function"]),
        category: text(v, &["category"]),
        subcategory: text(v, &["subcategory"]),
        description: text(v, &["description"]),
        created_at: time(v, &["createdAt", "created_at"]),
        updated_at: time(v, &["updatedAt", "updated_at"]),
        deleted_at: None,
    })
}

/// The organization of a remote provider's user when the provider has none: theirs
/// alone, its id derived from the provider and the user (stable, and no other user's).
fn personal_organization(session: &Session) -> Organization {
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        format!("organization\n{}\n{}", session.provider, session.user.id).as_bytes(),
    );
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest.as_ref()[..16]);
    let at = crate::orgs::keychain_time();
    Organization {
        id: uuid::Uuid::new_v8(bytes).to_string(),
        name: format!("{}'s organization", session.user.user_name),
        description: format!(
            "{}'s own organization at {}",
            session.user.user_name, session.provider
        ),
        country: String::new(),
        region: String::new(),
        owner: session.user.user_name.clone(),
        metadata: Default::default(),
        created_at: at,
        updated_at: at,
        deleted_at: None,
    }
}

impl App {
    /// The Local provider's organization, as the API shows it.
    async fn local_organization(&self, session: &Session) -> Result<Organization, ApiError> {
        let org = self
            .local_org
            .get_or_try_init(|| crate::orgs::local_org(&self.store))
            .await?
            .clone();
        Ok(Organization {
            id: org.id,
            name: crate::orgs::LOCAL_ORG_NAME.into(),
            description: crate::orgs::LOCAL_ORG_DESCRIPTION.into(),
            country: String::new(),
            region: String::new(),
            owner: session.user.user_name.clone(),
            metadata: Default::default(),
            created_at: org.created_at,
            updated_at: org.created_at,
            deleted_at: None,
        })
    }

    /// A JSON document from the session's remote provider at `path`; `None` when the
    /// session is not a remote one, or the provider does not serve the path.
    async fn provider_document(
        &self,
        session: &Session,
        path: &str,
    ) -> Result<Option<Value>, ApiError> {
        let Some(Provider::Remote(remote)) = self.providers.get(&session.provider) else {
            return Ok(None);
        };
        let token = session.token.clone().unwrap_or_default();
        if let Some(kept) = remote.kept_answer(&token, path) {
            return Ok(kept);
        }
        let url = remote
            .base
            .join(path.trim_start_matches('/'))
            .map_err(|e| ApiError::internal("building a provider URL", e))?;
        let answer = remote
            .request(reqwest::Method::GET, url, &token)
            .send()
            .await
            .map_err(|e| crate::extensions::upstream_error(&e, &remote))?;
        let status = answer.status();
        if status == reqwest::StatusCode::NOT_FOUND
            || status == reqwest::StatusCode::METHOD_NOT_ALLOWED
        {
            remote.keep_answer(&token, path, None, 0);
            return Ok(None);
        }
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(ApiError::new(
                401,
                codes::UNAUTHORIZED,
                format!("provider {} no longer accepts your session", remote.name),
            )
            .remedy("Sign in again."));
        }
        let bytes = crate::remote::read_capped(answer, MAX_ANSWER)
            .await
            .map_err(|_| {
                ApiError::new(
                    502,
                    codes::BAD_GATEWAY,
                    format!(
                        "provider {} answered {path} with no readable body",
                        remote.name
                    ),
                )
            })?;
        if !status.is_success() {
            return Err(ApiError::new(
                502,
                codes::BAD_GATEWAY,
                format!("provider {} answered {path} with {status}", remote.name),
            ));
        }
        let doc: Value = serde_json::from_slice(&bytes).map_err(|_| {
            ApiError::new(
                502,
                codes::BAD_GATEWAY,
                format!("provider {} answered {path} with no JSON", remote.name),
            )
        })?;
        remote.keep_answer(&token, path, Some(doc.clone()), bytes.len());
        Ok(Some(doc))
    }

    /// The session user's organizations: the Local one, a remote provider's, or (for a
    /// provider without organizations) the user's own, one per user.
    async fn organizations(&self, session: &Session) -> Result<Vec<Organization>, ApiError> {
        if !session.remote {
            return Ok(vec![self.local_organization(session).await?]);
        }
        match self.provider_document(session, ORGS_PATH).await? {
            Some(doc) => Ok(doc
                .get("organizations")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(organization_of)
                .collect()),
            None => Ok(vec![personal_organization(session)]),
        }
    }
}

/// A key of Meshery's keychain an operation needs: its id and what it allows.
pub use crate::generated::rest::NeededKey as Needs;

impl App {
    /// The keys the session's user holds in `org_id`: the provider's answer, or every
    /// key when the provider serves none (the Local provider grants every key).
    async fn keys_in(&self, session: &Session, org_id: &str) -> Result<Vec<Key>, ApiError> {
        // The id is one the provider gave, but it goes into a path: encoded all the same.
        let path = format!(
            "/api/identity/orgs/{}/users/keys?pagesize=all",
            super::percent_encode(org_id)
        );
        Ok(match self.provider_document(session, &path).await? {
            Some(doc) => doc
                .get("keys")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|k| key_of(k, org_id))
                .collect(),
            // A provider with organizations that has no keys for this one says the user
            // is not in it (any more): no key. Only the Local provider, or a provider
            // without an identity API at all, grants every key.
            None if self.provider_document(session, ORGS_PATH).await?.is_some() => Vec::new(),
            None => crate::orgs::keychain()
                .iter()
                .map(|k| Key {
                    id: k.id.clone(),
                    owner: org_id.to_string(),
                    function: k.function.clone(),
                    category: k.category.clone(),
                    subcategory: k.keychain.clone(),
                    description: k.description.clone(),
                    created_at: crate::orgs::keychain_time(),
                    updated_at: crate::orgs::keychain_time(),
                    deleted_at: None,
                })
                .collect(),
        })
    }

    /// The teams of organization `org_id` at the session's provider (none with the Local
    /// provider or a provider that serves no teams). The caller checks membership.
    pub(super) async fn teams_in(
        &self,
        session: &Session,
        org_id: &str,
    ) -> Result<Vec<crate::models::Team>, ApiError> {
        let path = format!(
            "/api/identity/orgs/{}/teams?pagesize=all",
            super::percent_encode(org_id)
        );
        Ok(match self.provider_document(session, &path).await? {
            Some(doc) => doc
                .get("teams")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(team_of)
                .collect(),
            None => Vec::new(),
        })
    }

    /// The saved views of organization `org_id` at the session's provider (`GET
    /// /api/content/views`, where Meshery's UI keeps them), shown as members of
    /// `workspace`; none with the Local provider or a provider that serves no views. A
    /// view that names no organization is nobody's here.
    pub(super) async fn views_in(
        &self,
        session: &Session,
        org_id: &str,
        workspace: (&str, &str),
    ) -> Result<Vec<crate::models::View>, ApiError> {
        let doc = self
            .provider_document(session, "/api/content/views?pagesize=all")
            .await?;
        Ok(doc
            .as_ref()
            .and_then(|d| d.get("views"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|v| text(v, &["org_id", "organization_id", "organizationId"]) == org_id)
            .filter_map(|v| {
                let id = text(v, &["id"]);
                let object = |key: &str| {
                    v.get(key)
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default()
                };
                let optional = |keys: &[&str]| Some(text(v, keys)).filter(|t| !t.is_empty());
                (!id.is_empty()).then(|| crate::models::View {
                    id,
                    name: text(v, &["name"]),
                    visibility: optional(&["visibility"]),
                    filters: object("filters"),
                    metadata: object("metadata"),
                    user_id: optional(&["user_id", "userId"]),
                    workspace_id: workspace.0.to_string(),
                    workspace_name: Some(workspace.1.to_string()),
                    organization_id: org_id.to_string(),
                    organization_name: None,
                    created_at: Some(time(v, &["created_at", "createdAt"])),
                    updated_at: Some(time(v, &["updated_at", "updatedAt"])),
                    deleted_at: None,
                })
            })
            .collect())
    }

    /// Lets the session act in organization `org_id` when the user is in it (404
    /// otherwise, as for anything of another's) and holds the key `needs` (403 naming it).
    pub(super) async fn admit(
        &self,
        session: &Session,
        org_id: &str,
        needs: Needs,
    ) -> Result<(), ApiError> {
        self.in_organization(session, org_id).await?;
        if !session.remote {
            return Ok(());
        }
        self.holds(session, org_id, needs).await
    }

    /// 404 unless the session's user is in organization `org_id`.
    pub(super) async fn in_organization(
        &self,
        session: &Session,
        org_id: &str,
    ) -> Result<(), ApiError> {
        if self
            .organizations(session)
            .await?
            .iter()
            .any(|o| o.id == org_id)
        {
            Ok(())
        } else {
            Err(ApiError::not_found(format!(
                "you are in no organization {org_id}"
            )))
        }
    }

    async fn holds(&self, session: &Session, org_id: &str, needs: Needs) -> Result<(), ApiError> {
        if self
            .keys_in(session, org_id)
            .await?
            .iter()
            .any(|k| k.id == needs.id)
        {
            return Ok(());
        }
        Err(ApiError::new(
            403,
            codes::MISSING_KEY,
            format!(
                "you lack the key \"{}\" ({}) in organization {org_id}",
                needs.function, needs.id
            ),
        )
        .remedy("Ask an administrator of the organization at your provider to grant it."))
    }

    /// Checks an operation's key (`x-key`) for a remote provider's user, in their current
    /// organization as Meshery's UI picks it: the one chosen in their preferences while
    /// they are still in it, else the first that `GET /api/identity/orgs` lists. The Local provider grants
    /// every key, so its requests ask nothing.
    pub(crate) async fn check_key(&self, session: &Session, key: Needs) -> Result<(), ApiError> {
        if !session.remote {
            return Ok(());
        }
        let mut orgs = self.organizations(session).await?;
        // The UI's first: that of `GET /api/identity/orgs` in its default order.
        sort_orgs(
            &mut orgs,
            crate::store::listing(None, None, None, None, None, None)?.order,
        );
        let selected = self.prefs.get(session).await?.selected_organization_id;
        let current = selected
            .filter(|s| orgs.iter().any(|o| &o.id == s))
            .or_else(|| orgs.first().map(|o| o.id.clone()));
        match current {
            Some(org_id) => self.holds(session, &org_id, key).await,
            None => Err(ApiError::new(
                403,
                codes::MISSING_KEY,
                format!(
                    "you are in no organization, so you hold no key \"{}\" ({})",
                    key.function, key.id
                ),
            )
            .remedy("Ask your provider's administrator to add you to an organization.")),
        }
    }
}

impl IdentityApi for Api {
    async fn get_orgs(&self, r: GetOrgsRequest<Session>) -> Result<GetOrgsResponse, ApiError> {
        let size = match r.all {
            Some(true) => Some("all"),
            _ => r.pagesize.as_deref().or(r.page_size.as_deref()),
        };
        let listing = crate::store::listing(r.page, size, None, r.order.as_deref(), None, None)?;
        let mut orgs = self.organizations(&r.session).await?;
        if let Some(search) = r.search.as_deref().map(str::to_lowercase) {
            orgs.retain(|o| o.name.to_lowercase().contains(&search));
        }
        sort_orgs(&mut orgs, listing.order);
        let (items, total) = page(orgs, &listing);
        Ok(GetOrgsResponse::Ok(listing.page_of(items, total)))
    }

    async fn get_org(&self, r: GetOrgRequest<Session>) -> Result<GetOrgResponse, ApiError> {
        self.organizations(&r.session)
            .await?
            .into_iter()
            .find(|o| o.id == r.org_id)
            .map(GetOrgResponse::Ok)
            .ok_or_else(|| ApiError::not_found(format!("you are in no organization {}", r.org_id)))
    }

    async fn get_teams(&self, r: GetTeamsRequest<Session>) -> Result<GetTeamsResponse, ApiError> {
        let size = r.pagesize.as_deref().or(r.page_size.as_deref());
        let listing = crate::store::listing(r.page, size, None, None, None, None)?;
        let (column, descending) =
            crate::tenancy::order(r.order.as_deref()).map_err(ApiError::from)?;
        self.in_organization(&r.session, &r.org_id).await?;
        let mut teams = self.teams_in(&r.session, &r.org_id).await?;
        if let Some(search) = r.search.as_deref().map(str::to_lowercase) {
            teams.retain(|t| t.name.to_lowercase().contains(&search));
        }
        sort_teams(&mut teams, (column, descending));
        let (items, total) = page(teams, &listing);
        Ok(GetTeamsResponse::Ok(listing.page_of(items, total)))
    }

    async fn get_user_keys(
        &self,
        r: GetUserKeysRequest<Session>,
    ) -> Result<GetUserKeysResponse, ApiError> {
        // Meshery answers every key when no page size is asked for: the UI asks none.
        let size = r
            .pagesize
            .as_deref()
            .or(r.page_size.as_deref())
            .or(Some("all"));
        let listing = crate::store::listing(r.page, size, None, None, None, None)?;
        self.in_organization(&r.session, &r.org_id).await?;
        let keys = self.keys_in(&r.session, &r.org_id).await?;
        let (items, total) = page(keys, &listing);
        Ok(GetUserKeysResponse::Ok(listing.page_of(items, total)))
    }
}
