//! Workspaces and environments, Meshery's way of grouping what an organization shares:
//! an environment groups connections, a workspace groups environments and designs (and a
//! remote provider's teams and views). Both belong to an organization of a provider and
//! are seen and changed by its members (`handlers::tenancy` checks membership and keys
//! first; this module only reads and writes). Memberships are ids: a member deleted
//! elsewhere (a design, a connection) drops out of listings by itself.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::fault::{Internal, OrInternal};
use crate::models::{
    Environment, EnvironmentConnectionMapping, Workspace, WorkspaceDesignMapping,
    WorkspaceEnvironmentMapping,
};
use crate::session::Session;
use crate::store::{MemberRow, Store, Tenant, TenantQuery, TenantRow};

/// Meshery's environment schema version (`@meshery/schemas` v1beta3).
pub const ENVIRONMENT_SCHEMA_VERSION: &str = "environments.meshery.io/v1beta3";

#[derive(Debug, thiserror::Error)]
pub enum TenancyError {
    #[error("{0}")]
    BadInput(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Internal(#[from] Internal),
}

fn time(text: &str) -> Result<DateTime<Utc>, Internal> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .or_internal("reading a stored time")
}

fn metadata(text: &str) -> Map<String, Value> {
    serde_json::from_str(text).unwrap_or_default()
}

pub fn workspace_view(row: &TenantRow) -> Result<Workspace, Internal> {
    Ok(Workspace {
        id: row.id.clone(),
        name: row.name.clone(),
        description: row.description.clone(),
        organization_id: row.org_id.clone(),
        owner: row.owner_id.clone(),
        owner_id: row.owner_id.clone(),
        metadata: metadata(&row.metadata),
        created_at: time(&row.created_at)?,
        updated_at: time(&row.updated_at)?,
        deleted_at: None,
    })
}

pub fn environment_view(row: &TenantRow) -> Result<Environment, Internal> {
    Ok(Environment {
        id: row.id.clone(),
        schema_version: ENVIRONMENT_SCHEMA_VERSION.into(),
        name: row.name.clone(),
        description: row.description.clone(),
        organization_id: row.org_id.clone(),
        owner: row.owner_id.clone(),
        metadata: metadata(&row.metadata),
        created_at: time(&row.created_at)?,
        updated_at: time(&row.updated_at)?,
        deleted_at: None,
    })
}

/// An environment as a connection lists it (Meshery's `environments` of a connection).
pub fn connection_environment(
    row: &TenantRow,
) -> Result<crate::models::ConnectionEnvironment, Internal> {
    let e = environment_view(row)?;
    Ok(crate::models::ConnectionEnvironment {
        id: e.id,
        schema_version: e.schema_version,
        name: e.name,
        description: e.description,
        organization_id: e.organization_id,
        owner: Some(e.owner),
        metadata: e.metadata,
        created_at: Some(e.created_at),
        updated_at: Some(e.updated_at),
        deleted_at: None,
    })
}

pub fn environment_mapping(m: &MemberRow) -> Result<WorkspaceEnvironmentMapping, Internal> {
    let at = time(&m.created_at)?;
    Ok(WorkspaceEnvironmentMapping {
        id: m.id.clone(),
        workspace_id: m.parent_id.clone(),
        environment_id: m.member_id.clone(),
        created_at: at,
        updated_at: at,
        deleted_at: None,
    })
}

pub fn design_mapping(m: &MemberRow) -> Result<WorkspaceDesignMapping, Internal> {
    let at = time(&m.created_at)?;
    Ok(WorkspaceDesignMapping {
        id: m.id.clone(),
        workspace_id: m.parent_id.clone(),
        design_id: m.member_id.clone(),
        created_at: at,
        updated_at: at,
        deleted_at: None,
    })
}

pub fn team_mapping(m: &MemberRow) -> Result<crate::models::WorkspaceTeamMapping, Internal> {
    let at = time(&m.created_at)?;
    Ok(crate::models::WorkspaceTeamMapping {
        id: m.id.clone(),
        workspace_id: m.parent_id.clone(),
        team_id: m.member_id.clone(),
        created_at: at,
        updated_at: at,
        deleted_at: None,
    })
}

pub fn view_mapping(m: &MemberRow) -> Result<crate::models::WorkspaceViewMapping, Internal> {
    let at = time(&m.created_at)?;
    Ok(crate::models::WorkspaceViewMapping {
        id: m.id.clone(),
        workspace_id: m.parent_id.clone(),
        view_id: m.member_id.clone(),
        created_at: at,
        updated_at: at,
        deleted_at: None,
    })
}

pub fn connection_mapping(m: &MemberRow) -> Result<EnvironmentConnectionMapping, Internal> {
    let at = time(&m.created_at)?;
    Ok(EnvironmentConnectionMapping {
        id: m.id.clone(),
        environment_id: m.parent_id.clone(),
        connection_id: m.member_id.clone(),
        created_at: at,
        updated_at: at,
        deleted_at: None,
    })
}

/// Meshery's `filter` on a membership listing: `{"assigned": bool}` (default true); its
/// other keys (`deletedAt`, `owner`, ...) mean nothing here, as nothing is soft-deleted.
pub fn assigned(filter: Option<&str>) -> Result<bool, TenancyError> {
    let Some(text) = filter.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(true);
    };
    let doc: Value = serde_json::from_str(text).map_err(|e| {
        TenancyError::BadInput(format!(
            "filter is not JSON ({e}): send {{\"assigned\": true}}"
        ))
    })?;
    let Some(map) = doc.as_object() else {
        return Err(TenancyError::BadInput(
            "filter must be a JSON object such as {\"assigned\": true}".into(),
        ));
    };
    match map.get("assigned") {
        None | Some(Value::Null) => Ok(true),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(TenancyError::BadInput(format!(
            "filter.assigned must be true or false, not {other}"
        ))),
    }
}

/// `order`: `<field> [asc|desc]` over name, created_at and updated_at; Meshery's default
/// is `updated_at desc`; a name orders ascending unless told.
pub fn order(text: Option<&str>) -> Result<(&'static str, bool), TenancyError> {
    crate::store::parse_order(
        text,
        &[
            ("created_at", "created_at"),
            ("updated_at", "updated_at"),
            ("name", "name"),
        ],
        "updated_at",
        |column| column.ends_with("_at"),
    )
    .map_err(TenancyError::BadInput)
}

/// What a create or change asks.
#[derive(Debug, Clone, Default)]
pub struct Change {
    pub name: Option<String>,
    pub description: Option<String>,
    pub metadata: Option<Map<String, Value>>,
}

pub struct Tenancy {
    store: Store,
}

impl Tenancy {
    pub fn new(store: Store) -> Tenancy {
        Tenancy { store }
    }

    /// A workspace or environment by id, whichever organization it is in.
    pub async fn get(&self, kind: Tenant, id: &str) -> Result<TenantRow, TenancyError> {
        self.store
            .tenant(kind, id)
            .await
            .or_internal("reading a workspace or environment")?
            .ok_or_else(|| TenancyError::NotFound(format!("{} {id} not found", noun(kind))))
    }

    pub async fn create(
        &self,
        session: &Session,
        kind: Tenant,
        org_id: &str,
        change: Change,
    ) -> Result<TenantRow, TenancyError> {
        let name = change.name.unwrap_or_default().trim().to_string();
        if name.is_empty() {
            return Err(TenancyError::BadInput(format!(
                "a {} needs a name",
                noun(kind)
            )));
        }
        let now = crate::store::stamp(Utc::now());
        let row = TenantRow {
            id: uuid::Uuid::new_v4().to_string(),
            provider: session.provider.clone(),
            org_id: org_id.to_string(),
            owner: session.owner(),
            owner_id: session.user.id.clone(),
            name,
            description: change.description.unwrap_or_default(),
            metadata: Value::Object(change.metadata.unwrap_or_default()).to_string(),
            created_at: now.clone(),
            updated_at: now,
        };
        self.store
            .insert_tenant(kind, &row)
            .await
            .or_internal("storing a workspace or environment")?;
        Ok(row)
    }

    /// Applies a change: empty name or description keep theirs (Meshery's rule),
    /// metadata replaces when given.
    pub async fn update(
        &self,
        kind: Tenant,
        mut row: TenantRow,
        change: Change,
    ) -> Result<TenantRow, TenancyError> {
        if let Some(name) = change
            .name
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
        {
            row.name = name;
        }
        if let Some(description) = change.description.filter(|d| !d.is_empty()) {
            row.description = description;
        }
        if let Some(metadata) = change.metadata {
            row.metadata = Value::Object(metadata).to_string();
        }
        row.updated_at = crate::store::stamp(Utc::now());
        if !self
            .store
            .update_tenant(kind, &row)
            .await
            .or_internal("changing a workspace or environment")?
        {
            return Err(TenancyError::NotFound(format!(
                "{} {} not found",
                noun(kind),
                row.id
            )));
        }
        Ok(row)
    }

    pub async fn delete(&self, kind: Tenant, row: &TenantRow) -> Result<(), TenancyError> {
        if !self
            .store
            .delete_tenant(kind, &row.id)
            .await
            .or_internal("deleting a workspace or environment")?
        {
            return Err(TenancyError::NotFound(format!(
                "{} {} not found",
                noun(kind),
                row.id
            )));
        }
        Ok(())
    }

    pub async fn list(
        &self,
        kind: Tenant,
        query: &TenantQuery<'_>,
    ) -> Result<(Vec<TenantRow>, i64), TenancyError> {
        Ok(self
            .store
            .tenants(kind, query)
            .await
            .or_internal("listing workspaces or environments")?)
    }

    /// Adds `member_id` (of `kind`: environment, design or connection) to `parent`; the
    /// membership kept (the first, when it was there already).
    pub async fn add(
        &self,
        parent: &TenantRow,
        kind: &str,
        member_id: &str,
        member_owner: &str,
    ) -> Result<MemberRow, TenancyError> {
        self.store
            .add_member(&MemberRow {
                id: uuid::Uuid::new_v4().to_string(),
                parent_id: parent.id.clone(),
                kind: kind.to_string(),
                member_id: member_id.to_string(),
                owner: member_owner.to_string(),
                created_at: crate::store::stamp(Utc::now()),
            })
            .await
            .or_internal("adding a membership")?
            .ok_or_else(|| TenancyError::NotFound(format!("{} is gone", parent.name)))
    }

    pub async fn remove(
        &self,
        parent: &TenantRow,
        kind: &str,
        member_id: &str,
    ) -> Result<MemberRow, TenancyError> {
        self.store
            .remove_member(&parent.id, kind, member_id)
            .await
            .or_internal("removing a membership")?
            .ok_or_else(|| {
                TenancyError::NotFound(format!("{kind} {member_id} is not in {}", parent.name))
            })
    }

    /// The memberships of `kind` (such as `team`) in a workspace.
    pub async fn members_of(
        &self,
        workspace: &TenantRow,
        kind: &str,
    ) -> Result<Vec<MemberRow>, Internal> {
        self.store
            .workspace_members(&workspace.id, kind)
            .await
            .or_internal("listing a workspace's members")
    }

    pub async fn connections_of(
        &self,
        environment: &TenantRow,
    ) -> Result<Vec<MemberRow>, Internal> {
        self.store
            .environment_connections(&environment.id)
            .await
            .or_internal("listing an environment's connections")
    }

    /// A page of the designs in a workspace (`owner` None) or of `owner`'s outside it.
    pub async fn designs(
        &self,
        workspace: &TenantRow,
        owner: Option<&str>,
        search: Option<&str>,
        order: (&'static str, bool),
        page: i64,
        page_size: Option<i64>,
    ) -> Result<(Vec<crate::models::Pattern>, i64), TenancyError> {
        let (docs, total) = self
            .store
            .workspace_patterns(&workspace.id, owner, search, order, page, page_size)
            .await
            .or_internal("listing a workspace's designs")?;
        let designs = docs
            .iter()
            .map(|d| crate::designs::parse_stored(d))
            .collect::<Result<Vec<_>, _>>()
            .or_internal("reading a stored design")?;
        Ok((designs, total))
    }
}

pub fn noun(kind: Tenant) -> &'static str {
    match kind {
        Tenant::Workspace => "workspace",
        Tenant::Environment => "environment",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_read_as_meshery_sends_them() {
        assert!(assigned(None).unwrap());
        assert!(assigned(Some("")).unwrap());
        assert!(assigned(Some(r#"{"assigned":true}"#)).unwrap());
        assert!(!assigned(Some(r#"{"assigned":false,"deletedAt":false}"#)).unwrap());
        assert!(assigned(Some(r#"{"owner":"x"}"#)).unwrap());
        assert!(assigned(Some("{assigned}")).is_err());
        assert!(assigned(Some("[true]")).is_err());
        assert!(assigned(Some(r#"{"assigned":"no"}"#)).is_err());
    }

    #[test]
    fn order_defaults_to_the_latest_change_first() {
        assert_eq!(order(None).unwrap(), ("updated_at", true));
        assert_eq!(
            order(Some("updated_at desc")).unwrap(),
            ("updated_at", true)
        );
        assert_eq!(order(Some("name")).unwrap(), ("name", false));
        assert_eq!(order(Some("Name DESC")).unwrap(), ("name", true));
        assert!(order(Some("owner")).is_err());
    }
}
