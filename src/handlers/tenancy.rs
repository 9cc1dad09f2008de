//! Workspaces and environments (`/api/workspaces`, `/api/environments`): each request is
//! admitted in the organization of what it names (the user must be in it, 404 otherwise,
//! and hold the key the operation needs, 403 naming it), then `tenancy` does the rest.

use crate::error::ApiError;
use crate::generated::rest::*;
use crate::models::Connection;
use crate::server::Api;
use crate::session::Session;
use crate::store::{Listing, MemberRow, Tenant, TenantQuery, TenantRow};
use crate::tenancy::{self, Change, TenancyError};

use super::identity::Needs;

/// The keys of Meshery's keychain (`orgs/keychain.csv`) each operation needs.
mod keys {
    use super::Needs;
    pub const VIEW_WORKSPACE: Needs = Needs {
        id: "bc9379e8-dc18-4655-b53c-c641271c4ba3",
        function: "View Workspace",
    };
    pub const CREATE_WORKSPACE: Needs = Needs {
        id: "eb42ac41-a883-465e-843c-d64e962a3a0e",
        function: "Create Workspace",
    };
    pub const EDIT_WORKSPACE: Needs = Needs {
        id: "4112230f-5d1e-4d30-9790-942ad5c1dc50",
        function: "Edit Workspace",
    };
    pub const DELETE_WORKSPACE: Needs = Needs {
        id: "09eb0507-2f14-4bc4-92c5-9e26a4efbd5e",
        function: "Delete Workspace",
    };
    pub const ASSIGN_TEAM: Needs = Needs {
        id: "6ab4263b-0bb3-492e-9878-6936a5b6312f",
        function: "Assign team to workspace",
    };
    pub const REMOVE_TEAM: Needs = Needs {
        id: "c4ed82f5-783d-4451-9b34-44f50cae71df",
        function: "Remove team from workspace",
    };
    pub const ASSIGN_ENVIRONMENT: Needs = Needs {
        id: "f421fc20-c14a-4282-b526-776c6cacfd99",
        function: "Assign environment to workspace",
    };
    pub const REMOVE_ENVIRONMENT: Needs = Needs {
        id: "d0657715-80fb-4b00-af27-b78bb0fa56df",
        function: "Remove environment from workspace",
    };
    pub const ASSIGN_DESIGN: Needs = Needs {
        id: "64a1bad5-30f1-431a-aea0-8073d14a0262",
        function: "Assign Designs to Workspaces",
    };
    pub const REMOVE_DESIGN: Needs = Needs {
        id: "076515f1-f696-4211-ae27-58d5463a229e",
        function: "Remove Designs from Workspaces",
    };
    pub const VIEW_ENVIRONMENT: Needs = Needs {
        id: "e3656bbc-fba2-483d-9996-34f8614cd21b",
        function: "View Environment",
    };
    pub const CREATE_ENVIRONMENT: Needs = Needs {
        id: "a97b7f3b-3349-4a86-b917-2ce0b64a540b",
        function: "Create Environment",
    };
    pub const EDIT_ENVIRONMENT: Needs = Needs {
        id: "145ab6ed-b4b6-4e34-ada5-78dada250f89",
        function: "Edit Environment",
    };
    pub const DELETE_ENVIRONMENT: Needs = Needs {
        id: "70747966-dfad-4523-93ce-bd7421258955",
        function: "Delete Environment",
    };
    pub const VIEW_CONNECTIONS: Needs = Needs {
        id: "b35c9ce0-e787-4de6-8560-631007b0b947",
        function: "View Connections",
    };
    pub const ASSIGN_CONNECTION: Needs = Needs {
        id: "52cbe0b8-9aa7-4605-8eed-aa37e595adbb",
        function: "Assign connections to environment",
    };
    pub const REMOVE_CONNECTION: Needs = Needs {
        id: "65648682-e47f-43d7-a5ad-dc042803f951",
        function: "Remove connections from environments",
    };

    /// Every key named here, for the test that holds them to the keychain.
    #[cfg(test)]
    pub const ALL: &[Needs] = &[
        VIEW_WORKSPACE,
        CREATE_WORKSPACE,
        EDIT_WORKSPACE,
        DELETE_WORKSPACE,
        ASSIGN_TEAM,
        REMOVE_TEAM,
        ASSIGN_ENVIRONMENT,
        REMOVE_ENVIRONMENT,
        ASSIGN_DESIGN,
        REMOVE_DESIGN,
        VIEW_ENVIRONMENT,
        CREATE_ENVIRONMENT,
        EDIT_ENVIRONMENT,
        DELETE_ENVIRONMENT,
        VIEW_CONNECTIONS,
        ASSIGN_CONNECTION,
        REMOVE_CONNECTION,
    ];
}

impl From<TenancyError> for ApiError {
    fn from(e: TenancyError) -> Self {
        match e {
            TenancyError::BadInput(m) => ApiError::bad_request(m),
            TenancyError::NotFound(m) => ApiError::not_found(m),
            TenancyError::Conflict(m) => ApiError::new(409, crate::error::codes::CONFLICT, m),
            TenancyError::Internal(i) => i.into(),
        }
    }
}

fn listing(
    page: Option<i64>,
    pagesize: Option<&str>,
    page_size: Option<&str>,
) -> Result<Listing, ApiError> {
    Ok(crate::store::listing(
        page,
        pagesize.or(page_size),
        None,
        None,
        None,
        None,
    )?)
}

impl Api {
    /// A workspace or environment the session may act on with `needs`: 404 for one of an
    /// organization (or provider) the user is not in, as if it did not exist.
    async fn reach(
        &self,
        session: &Session,
        kind: Tenant,
        id: &str,
        needs: Needs,
    ) -> Result<TenantRow, ApiError> {
        let missing = || ApiError::not_found(format!("{} {id} not found", tenancy::noun(kind)));
        let row = self.tenancy.get(kind, id).await.map_err(|e| match e {
            TenancyError::NotFound(_) => missing(),
            other => other.into(),
        })?;
        if row.provider != session.provider {
            return Err(missing());
        }
        match self.admit(session, &row.org_id, needs).await {
            Err(e) if e.status == 404 => Err(missing()),
            other => other.map(|_| row),
        }
    }

    /// A page of workspaces or environments of an organization, or of a workspace.
    async fn tenant_page(
        &self,
        session: &Session,
        kind: Tenant,
        org_id: &str,
        (listing, search, order): (&Listing, Option<&str>, Option<&str>),
        workspace: Option<(&str, bool)>,
    ) -> Result<(Vec<TenantRow>, i64), ApiError> {
        let order = tenancy::order(order)?;
        Ok(self
            .tenancy
            .list(
                kind,
                &TenantQuery {
                    provider: &session.provider,
                    org_id,
                    search,
                    search_description: kind == Tenant::Environment,
                    order,
                    page: listing.page,
                    page_size: listing.page_size,
                    workspace,
                },
            )
            .await?)
    }

    /// An `orgId` sent along a request by id must be the row's organization.
    fn same_org(kind: Tenant, row: &TenantRow, org_id: Option<&str>) -> Result<(), ApiError> {
        match org_id.filter(|o| !o.is_empty()) {
            Some(o) if o != row.org_id => Err(ApiError::not_found(format!(
                "{} {} not found in organization {o}",
                tenancy::noun(kind),
                row.id
            ))),
            _ => Ok(()),
        }
    }

    /// A change may not move a workspace or environment to another organization.
    fn stays(kind: Tenant, row: &TenantRow, org_id: &str) -> Result<(), ApiError> {
        if org_id != row.org_id {
            return Err(ApiError::bad_request(format!(
                "{} {} is in organization {}: it cannot move to {org_id}",
                tenancy::noun(kind),
                row.id,
                row.org_id
            ))
            .remedy(
                "Send its own organizationId, or create a new one in the other organization.",
            ));
        }
        Ok(())
    }

    /// Creates a workspace or environment in `org_id` (with the key `needs`), noted.
    async fn create_tenant(
        &self,
        session: &Session,
        kind: Tenant,
        org_id: &str,
        change: Change,
        needs: Needs,
    ) -> Result<TenantRow, ApiError> {
        self.admit(session, org_id, needs).await?;
        let row = self.tenancy.create(session, kind, org_id, change).await?;
        self.note(session, kind, "create", &row).await;
        Ok(row)
    }

    /// Changes a workspace or environment, which stays in its organization, noted.
    async fn update_tenant(
        &self,
        session: &Session,
        kind: Tenant,
        (id, org_id): (&str, &str),
        change: Change,
        needs: Needs,
    ) -> Result<TenantRow, ApiError> {
        let row = self.reach(session, kind, id, needs).await?;
        Self::stays(kind, &row, org_id)?;
        let row = self.tenancy.update(kind, row, change).await?;
        self.note(session, kind, "update", &row).await;
        Ok(row)
    }

    /// Deletes a workspace or environment with its memberships, noted; what it was.
    async fn delete_tenant(
        &self,
        session: &Session,
        kind: Tenant,
        id: &str,
        needs: Needs,
    ) -> Result<TenantRow, ApiError> {
        let row = self.reach(session, kind, id, needs).await?;
        self.tenancy.delete(kind, &row).await?;
        self.note(session, kind, "delete", &row).await;
        Ok(row)
    }

    async fn note(&self, session: &Session, kind: Tenant, action: &str, row: &TenantRow) {
        let noun = tenancy::noun(kind);
        let event = crate::events::NewEvent::new(
            noun,
            action,
            crate::models::EventSeverity::Informational,
            format!("{} {} {action}d", capitalized(noun), row.name),
        )
        .acted_upon(row.id.clone());
        self.events.note(session, event).await;
    }

    /// The ids of the provider's teams or views of a workspace's organization.
    async fn provided_ids(
        &self,
        session: &Session,
        kind: Provided,
        workspace: &TenantRow,
    ) -> Result<Vec<String>, ApiError> {
        Ok(match kind {
            Provided::Team => self
                .teams_in(session, &workspace.org_id)
                .await?
                .into_iter()
                .map(|t| t.id)
                .collect(),
            Provided::View => self
                .views_in(session, &workspace.org_id, (&workspace.id, &workspace.name))
                .await?
                .into_iter()
                .map(|v| v.id)
                .collect(),
        })
    }

    /// Makes a provider's team or view a member of a workspace: only one the provider
    /// lists for the workspace's organization (404 otherwise).
    async fn add_provided(
        &self,
        session: &Session,
        (workspace_id, id): (&str, &str),
        kind: Provided,
        needs: Needs,
    ) -> Result<MemberRow, ApiError> {
        let workspace = self
            .reach(session, Tenant::Workspace, workspace_id, needs)
            .await?;
        if !self
            .provided_ids(session, kind, &workspace)
            .await?
            .iter()
            .any(|known| known == id)
        {
            return Err(no_such(kind.noun(), id));
        }
        Ok(self
            .tenancy
            .add(&workspace, kind.noun(), id, &session.owner())
            .await?)
    }

    /// Ends a team's or view's membership of a workspace; what it was.
    async fn remove_provided(
        &self,
        session: &Session,
        (workspace_id, id): (&str, &str),
        kind: Provided,
        needs: Needs,
    ) -> Result<MemberRow, ApiError> {
        let workspace = self
            .reach(session, Tenant::Workspace, workspace_id, needs)
            .await?;
        Ok(self.tenancy.remove(&workspace, kind.noun(), id).await?)
    }
}

/// What a workspace takes as members from the remote provider: it keeps only which.
#[derive(Debug, Clone, Copy)]
enum Provided {
    Team,
    View,
}

impl Provided {
    fn noun(self) -> &'static str {
        match self {
            Provided::Team => "team",
            Provided::View => "view",
        }
    }
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn workspaces(rows: &[TenantRow]) -> Result<Vec<crate::models::Workspace>, ApiError> {
    rows.iter()
        .map(|r| tenancy::workspace_view(r).map_err(ApiError::from))
        .collect()
}

fn environments(rows: &[TenantRow]) -> Result<Vec<crate::models::Environment>, ApiError> {
    rows.iter()
        .map(|r| tenancy::environment_view(r).map_err(ApiError::from))
        .collect()
}

impl WorkspacesApi for Api {
    async fn get_workspaces(
        &self,
        r: GetWorkspacesRequest<Session>,
    ) -> Result<GetWorkspacesResponse, ApiError> {
        let listing = listing(r.page, r.pagesize.as_deref(), r.page_size.as_deref())?;
        self.admit(&r.session, &r.org_id, keys::VIEW_WORKSPACE)
            .await?;
        let (rows, total) = self
            .tenant_page(
                &r.session,
                Tenant::Workspace,
                &r.org_id,
                (&listing, r.search.as_deref(), r.order.as_deref()),
                None,
            )
            .await?;
        Ok(GetWorkspacesResponse::Ok(
            listing.page_of(workspaces(&rows)?, total),
        ))
    }

    async fn create_workspace(
        &self,
        r: CreateWorkspaceRequest<Session>,
    ) -> Result<CreateWorkspaceResponse, ApiError> {
        let b = r.body;
        let change = Change {
            name: Some(b.name.to_string()),
            description: b.description.map(|d| d.to_string()),
            metadata: Some(b.metadata),
        };
        let row = self
            .create_tenant(
                &r.session,
                Tenant::Workspace,
                &b.organization_id,
                change,
                keys::CREATE_WORKSPACE,
            )
            .await?;
        Ok(CreateWorkspaceResponse::Created(tenancy::workspace_view(
            &row,
        )?))
    }

    async fn get_workspace_by_id(
        &self,
        r: GetWorkspaceByIdRequest<Session>,
    ) -> Result<GetWorkspaceByIdResponse, ApiError> {
        let row = self
            .reach(
                &r.session,
                Tenant::Workspace,
                &r.workspace_id,
                keys::VIEW_WORKSPACE,
            )
            .await?;
        Self::same_org(Tenant::Workspace, &row, r.org_id.as_deref())?;
        Ok(GetWorkspaceByIdResponse::Ok(tenancy::workspace_view(&row)?))
    }

    async fn update_workspace(
        &self,
        r: UpdateWorkspaceRequest<Session>,
    ) -> Result<UpdateWorkspaceResponse, ApiError> {
        let b = r.body;
        let change = Change {
            name: b.name.map(|n| n.to_string()),
            description: b.description.map(|d| d.to_string()),
            // Meshery's clients send no metadata on a change: none keeps it.
            metadata: Some(b.metadata).filter(|m| !m.is_empty()),
        };
        let row = self
            .update_tenant(
                &r.session,
                Tenant::Workspace,
                (&r.workspace_id, &b.organization_id),
                change,
                keys::EDIT_WORKSPACE,
            )
            .await?;
        Ok(UpdateWorkspaceResponse::Ok(tenancy::workspace_view(&row)?))
    }

    async fn delete_workspace(
        &self,
        r: DeleteWorkspaceRequest<Session>,
    ) -> Result<DeleteWorkspaceResponse, ApiError> {
        let row = self
            .delete_tenant(
                &r.session,
                Tenant::Workspace,
                &r.workspace_id,
                keys::DELETE_WORKSPACE,
            )
            .await?;
        Ok(DeleteWorkspaceResponse::Ok(tenancy::workspace_view(&row)?))
    }

    async fn get_environments_of_workspace(
        &self,
        r: GetEnvironmentsOfWorkspaceRequest<Session>,
    ) -> Result<GetEnvironmentsOfWorkspaceResponse, ApiError> {
        let listing = listing(r.page, r.pagesize.as_deref(), r.page_size.as_deref())?;
        let assigned = tenancy::assigned(r.filter.as_deref())?;
        let workspace = self
            .reach(
                &r.session,
                Tenant::Workspace,
                &r.workspace_id,
                keys::VIEW_WORKSPACE,
            )
            .await?;
        let (rows, total) = self
            .tenant_page(
                &r.session,
                Tenant::Environment,
                &workspace.org_id,
                (&listing, r.search.as_deref(), r.order.as_deref()),
                Some((&workspace.id, assigned)),
            )
            .await?;
        Ok(GetEnvironmentsOfWorkspaceResponse::Ok(
            listing.page_of(environments(&rows)?, total),
        ))
    }

    async fn assign_environment_to_workspace(
        &self,
        r: AssignEnvironmentToWorkspaceRequest<Session>,
    ) -> Result<AssignEnvironmentToWorkspaceResponse, ApiError> {
        let workspace = self
            .reach(
                &r.session,
                Tenant::Workspace,
                &r.workspace_id,
                keys::ASSIGN_ENVIRONMENT,
            )
            .await?;
        let environment = self
            .reach(
                &r.session,
                Tenant::Environment,
                &r.environment_id,
                keys::VIEW_ENVIRONMENT,
            )
            .await?;
        if environment.org_id != workspace.org_id {
            return Err(TenancyError::Conflict(format!(
                "environment {} is in organization {}, workspace {} in {}: a workspace holds its own organization's environments",
                environment.id, environment.org_id, workspace.id, workspace.org_id
            ))
            .into());
        }
        let kept = self
            .tenancy
            .add(
                &workspace,
                "environment",
                &environment.id,
                &r.session.owner(),
            )
            .await?;
        Ok(AssignEnvironmentToWorkspaceResponse::Ok(
            tenancy::environment_mapping(&kept)?,
        ))
    }

    async fn unassign_environment_from_workspace(
        &self,
        r: UnassignEnvironmentFromWorkspaceRequest<Session>,
    ) -> Result<UnassignEnvironmentFromWorkspaceResponse, ApiError> {
        let workspace = self
            .reach(
                &r.session,
                Tenant::Workspace,
                &r.workspace_id,
                keys::REMOVE_ENVIRONMENT,
            )
            .await?;
        let removed = self
            .tenancy
            .remove(&workspace, "environment", &r.environment_id)
            .await?;
        Ok(UnassignEnvironmentFromWorkspaceResponse::Ok(
            tenancy::environment_mapping(&removed)?,
        ))
    }

    async fn get_designs_of_workspace(
        &self,
        r: GetDesignsOfWorkspaceRequest<Session>,
    ) -> Result<GetDesignsOfWorkspaceResponse, ApiError> {
        let listing = listing(r.page, r.pagesize.as_deref(), r.page_size.as_deref())?;
        let assigned = tenancy::assigned(r.filter.as_deref())?;
        let order = tenancy::order(r.order.as_deref())?;
        let workspace = self
            .reach(
                &r.session,
                Tenant::Workspace,
                &r.workspace_id,
                keys::VIEW_WORKSPACE,
            )
            .await?;
        let owner = r.session.owner();
        let (designs, total) = self
            .tenancy
            .designs(
                &workspace,
                (!assigned).then_some(owner.as_str()),
                r.search.as_deref(),
                order,
                listing.page,
                listing.page_size,
            )
            .await?;
        Ok(GetDesignsOfWorkspaceResponse::Ok(
            listing.page_of(designs, total),
        ))
    }

    async fn assign_design_to_workspace(
        &self,
        r: AssignDesignToWorkspaceRequest<Session>,
    ) -> Result<AssignDesignToWorkspaceResponse, ApiError> {
        let workspace = self
            .reach(
                &r.session,
                Tenant::Workspace,
                &r.workspace_id,
                keys::ASSIGN_DESIGN,
            )
            .await?;
        // Sharing a design needs the right to read it.
        let design = self.designs.readable(&r.session, &r.design_id).await?;
        let kept = self
            .tenancy
            .add(&workspace, "design", &design.id, &r.session.owner())
            .await?;
        Ok(AssignDesignToWorkspaceResponse::Ok(
            tenancy::design_mapping(&kept)?,
        ))
    }

    async fn unassign_design_from_workspace(
        &self,
        r: UnassignDesignFromWorkspaceRequest<Session>,
    ) -> Result<UnassignDesignFromWorkspaceResponse, ApiError> {
        let workspace = self
            .reach(
                &r.session,
                Tenant::Workspace,
                &r.workspace_id,
                keys::REMOVE_DESIGN,
            )
            .await?;
        let removed = self
            .tenancy
            .remove(&workspace, "design", &r.design_id)
            .await?;
        Ok(UnassignDesignFromWorkspaceResponse::Ok(
            tenancy::design_mapping(&removed)?,
        ))
    }

    async fn get_teams_of_workspace(
        &self,
        r: GetTeamsOfWorkspaceRequest<Session>,
    ) -> Result<GetTeamsOfWorkspaceResponse, ApiError> {
        let listing = listing(r.page, r.pagesize.as_deref(), r.page_size.as_deref())?;
        let assigned = tenancy::assigned(r.filter.as_deref())?;
        let (column, descending) = tenancy::order(r.order.as_deref())?;
        let workspace = self
            .reach(
                &r.session,
                Tenant::Workspace,
                &r.workspace_id,
                keys::VIEW_WORKSPACE,
            )
            .await?;
        // Teams are the provider's; the workspace keeps which of them are its members.
        let members = self.tenancy.members_of(&workspace, "team").await?;
        let mut teams = self.teams_in(&r.session, &workspace.org_id).await?;
        teams.retain(|t| members.iter().any(|m| m.member_id == t.id) == assigned);
        if let Some(search) = r.search.as_deref().map(str::to_lowercase) {
            teams.retain(|t| t.name.to_lowercase().contains(&search));
        }
        super::identity::sort_teams(&mut teams, (column, descending));
        let (items, total) = super::identity::page(teams, &listing);
        Ok(GetTeamsOfWorkspaceResponse::Ok(
            listing.page_of(items, total),
        ))
    }

    async fn assign_team_to_workspace(
        &self,
        r: AssignTeamToWorkspaceRequest<Session>,
    ) -> Result<AssignTeamToWorkspaceResponse, ApiError> {
        let kept = self
            .add_provided(
                &r.session,
                (&r.workspace_id, &r.team_id),
                Provided::Team,
                keys::ASSIGN_TEAM,
            )
            .await?;
        Ok(AssignTeamToWorkspaceResponse::Ok(tenancy::team_mapping(
            &kept,
        )?))
    }

    async fn unassign_team_from_workspace(
        &self,
        r: UnassignTeamFromWorkspaceRequest<Session>,
    ) -> Result<UnassignTeamFromWorkspaceResponse, ApiError> {
        let removed = self
            .remove_provided(
                &r.session,
                (&r.workspace_id, &r.team_id),
                Provided::Team,
                keys::REMOVE_TEAM,
            )
            .await?;
        Ok(UnassignTeamFromWorkspaceResponse::Ok(
            tenancy::team_mapping(&removed)?,
        ))
    }

    async fn get_views_of_workspace(
        &self,
        r: GetViewsOfWorkspaceRequest<Session>,
    ) -> Result<GetViewsOfWorkspaceResponse, ApiError> {
        let listing = listing(r.page, r.pagesize.as_deref(), r.page_size.as_deref())?;
        let assigned = tenancy::assigned(r.filter.as_deref())?;
        let (column, descending) = tenancy::order(r.order.as_deref())?;
        let workspace = self
            .reach(
                &r.session,
                Tenant::Workspace,
                &r.workspace_id,
                keys::VIEW_WORKSPACE,
            )
            .await?;
        // Views are the provider's: the workspace keeps which of them are its members.
        let members = self.tenancy.members_of(&workspace, "view").await?;
        let mut views = self
            .views_in(
                &r.session,
                &workspace.org_id,
                (&workspace.id, &workspace.name),
            )
            .await?;
        views.retain(|v| members.iter().any(|m| m.member_id == v.id) == assigned);
        if let Some(search) = r.search.as_deref().map(str::to_lowercase) {
            views.retain(|v| v.name.to_lowercase().contains(&search));
        }
        views.sort_by(|a, b| match column {
            "name" => a.name.cmp(&b.name),
            "created_at" => a.created_at.cmp(&b.created_at),
            _ => a.updated_at.cmp(&b.updated_at),
        });
        if descending {
            views.reverse();
        }
        let (items, total) = super::identity::page(views, &listing);
        Ok(GetViewsOfWorkspaceResponse::Ok(
            listing.page_of(items, total),
        ))
    }

    async fn assign_view_to_workspace(
        &self,
        r: AssignViewToWorkspaceRequest<Session>,
    ) -> Result<AssignViewToWorkspaceResponse, ApiError> {
        // Meshery's keychain has no view key: editing the workspace is what it takes.
        let member = self
            .add_provided(
                &r.session,
                (&r.workspace_id, &r.view_id),
                Provided::View,
                keys::EDIT_WORKSPACE,
            )
            .await?;
        Ok(AssignViewToWorkspaceResponse::Ok(tenancy::view_mapping(
            &member,
        )?))
    }

    async fn unassign_view_from_workspace(
        &self,
        r: UnassignViewFromWorkspaceRequest<Session>,
    ) -> Result<UnassignViewFromWorkspaceResponse, ApiError> {
        let removed = self
            .remove_provided(
                &r.session,
                (&r.workspace_id, &r.view_id),
                Provided::View,
                keys::EDIT_WORKSPACE,
            )
            .await?;
        Ok(UnassignViewFromWorkspaceResponse::Ok(
            tenancy::view_mapping(&removed)?,
        ))
    }
}

/// Another member's connection as the organization sees it: no user name or password in
/// its URLs (metadata is free-form and a URL may carry them).
fn shared_view(c: &mut Connection) {
    fn clean(text: &str) -> Option<String> {
        let mut url = reqwest::Url::parse(text).ok()?;
        if url.username().is_empty() && url.password().is_none() {
            return None;
        }
        url.set_username("").ok()?;
        url.set_password(None).ok()?;
        Some(url.to_string())
    }
    if let Some(url) = c.url.as_deref().and_then(clean) {
        c.url = Some(url);
    }
    for value in c.metadata.values_mut() {
        if let Some(url) = value.as_str().and_then(clean) {
            *value = serde_json::Value::String(url);
        }
    }
}

/// Teams and views are a remote provider's (Meshery Cloud's): one it does not list is
/// none (the Local provider has neither).
fn no_such(what: &str, id: &str) -> ApiError {
    ApiError::not_found(format!(
        "no {what} {id} in this organization at your provider"
    ))
    .remedy(format!(
        "{what}s belong to a remote provider such as Meshery Cloud; the Local provider has none."
    ))
}

impl EnvironmentsApi for Api {
    async fn get_environments(
        &self,
        r: GetEnvironmentsRequest<Session>,
    ) -> Result<GetEnvironmentsResponse, ApiError> {
        let listing = listing(r.page, r.pagesize.as_deref(), r.page_size.as_deref())?;
        self.admit(&r.session, &r.org_id, keys::VIEW_ENVIRONMENT)
            .await?;
        let (rows, total) = self
            .tenant_page(
                &r.session,
                Tenant::Environment,
                &r.org_id,
                (&listing, r.search.as_deref(), r.order.as_deref()),
                None,
            )
            .await?;
        Ok(GetEnvironmentsResponse::Ok(
            listing.page_of(environments(&rows)?, total),
        ))
    }

    async fn create_environment(
        &self,
        r: CreateEnvironmentRequest<Session>,
    ) -> Result<CreateEnvironmentResponse, ApiError> {
        let b = r.body;
        let change = Change {
            name: Some(b.name.to_string()),
            description: b.description.map(|d| d.to_string()),
            metadata: None,
        };
        let row = self
            .create_tenant(
                &r.session,
                Tenant::Environment,
                &b.organization_id,
                change,
                keys::CREATE_ENVIRONMENT,
            )
            .await?;
        Ok(CreateEnvironmentResponse::Ok(tenancy::environment_view(
            &row,
        )?))
    }

    async fn get_environment_by_id(
        &self,
        r: GetEnvironmentByIdRequest<Session>,
    ) -> Result<GetEnvironmentByIdResponse, ApiError> {
        let row = self
            .reach(
                &r.session,
                Tenant::Environment,
                &r.environment_id,
                keys::VIEW_ENVIRONMENT,
            )
            .await?;
        Self::same_org(Tenant::Environment, &row, r.org_id.as_deref())?;
        Ok(GetEnvironmentByIdResponse::Ok(tenancy::environment_view(
            &row,
        )?))
    }

    async fn update_environment(
        &self,
        r: UpdateEnvironmentRequest<Session>,
    ) -> Result<UpdateEnvironmentResponse, ApiError> {
        let b = r.body;
        let change = Change {
            name: b.name.map(|n| n.to_string()),
            description: b.description.map(|d| d.to_string()),
            metadata: None,
        };
        let row = self
            .update_tenant(
                &r.session,
                Tenant::Environment,
                (&r.environment_id, &b.organization_id),
                change,
                keys::EDIT_ENVIRONMENT,
            )
            .await?;
        Ok(UpdateEnvironmentResponse::Ok(tenancy::environment_view(
            &row,
        )?))
    }

    async fn delete_environment(
        &self,
        r: DeleteEnvironmentRequest<Session>,
    ) -> Result<DeleteEnvironmentResponse, ApiError> {
        let row = self
            .delete_tenant(
                &r.session,
                Tenant::Environment,
                &r.environment_id,
                keys::DELETE_ENVIRONMENT,
            )
            .await?;
        Ok(DeleteEnvironmentResponse::Ok(tenancy::environment_view(
            &row,
        )?))
    }

    async fn get_environment_connections(
        &self,
        r: GetEnvironmentConnectionsRequest<Session>,
    ) -> Result<GetEnvironmentConnectionsResponse, ApiError> {
        let listing = listing(r.page, r.pagesize.as_deref(), r.page_size.as_deref())?;
        let assigned = tenancy::assigned(r.filter.as_deref())?;
        let (column, descending) = tenancy::order(r.order.as_deref())?;
        let environment = self
            .reach(
                &r.session,
                Tenant::Environment,
                &r.environment_id,
                keys::VIEW_CONNECTIONS,
            )
            .await?;
        let members = self.tenancy.connections_of(&environment).await?;
        let mut connections: Vec<Connection> = Vec::new();
        if assigned {
            let caller = r.session.owner();
            // One read per member's owner: a connection deleted since it was added drops
            // out, and only this organization's environments show (the owner's others are
            // not the viewer's business).
            let mut by_owner: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
            for m in &members {
                by_owner
                    .entry(m.owner.as_str())
                    .or_default()
                    .push(m.member_id.clone());
            }
            for (owner, ids) in by_owner {
                let mut theirs = self
                    .connections
                    .bare_many(owner, &ids, &environment.org_id)
                    .await?;
                if owner != caller {
                    theirs.iter_mut().for_each(shared_view);
                }
                connections.extend(theirs);
            }
        } else {
            let (mine, _, _) = self
                .connections
                .list(
                    &r.session,
                    &crate::connections::Filter {
                        order: ("name", false),
                        page_size: None,
                        ..Default::default()
                    },
                )
                .await?;
            connections = mine
                .into_iter()
                .filter(|c| !members.iter().any(|m| m.member_id == c.id))
                .collect();
        }
        if let Some(search) = r.search.as_deref().map(str::to_lowercase) {
            connections.retain(|c| c.name.to_lowercase().contains(&search));
        }
        connections.sort_by(|a, b| {
            let by = match column {
                "name" => a.name.cmp(&b.name),
                "created_at" => a.created_at.cmp(&b.created_at),
                _ => a.updated_at.cmp(&b.updated_at),
            };
            by.then_with(|| a.id.cmp(&b.id))
        });
        if descending {
            connections.reverse();
        }
        let (items, total) = super::identity::page(connections, &listing);
        Ok(GetEnvironmentConnectionsResponse::Ok(
            listing.page_of(items, total),
        ))
    }

    async fn add_connection_to_environment(
        &self,
        r: AddConnectionToEnvironmentRequest<Session>,
    ) -> Result<AddConnectionToEnvironmentResponse, ApiError> {
        let environment = self
            .reach(
                &r.session,
                Tenant::Environment,
                &r.environment_id,
                keys::ASSIGN_CONNECTION,
            )
            .await?;
        // Only one's own connections go in (an environment shares them).
        let connection = self.connections.get(&r.session, &r.connection_id).await?;
        let kept = self
            .tenancy
            .add(
                &environment,
                "connection",
                &connection.id,
                &r.session.owner(),
            )
            .await?;
        Ok(AddConnectionToEnvironmentResponse::Ok(
            tenancy::connection_mapping(&kept)?,
        ))
    }

    async fn remove_connection_from_environment(
        &self,
        r: RemoveConnectionFromEnvironmentRequest<Session>,
    ) -> Result<RemoveConnectionFromEnvironmentResponse, ApiError> {
        let environment = self
            .reach(
                &r.session,
                Tenant::Environment,
                &r.environment_id,
                keys::REMOVE_CONNECTION,
            )
            .await?;
        let removed = self
            .tenancy
            .remove(&environment, "connection", &r.connection_id)
            .await?;
        Ok(RemoveConnectionFromEnvironmentResponse::Ok(
            tenancy::connection_mapping(&removed)?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::keys;

    #[test]
    fn every_key_is_in_meshery_s_keychain_with_its_function() {
        for needs in keys::ALL {
            let key = crate::orgs::keychain()
                .iter()
                .find(|k| k.id == needs.id)
                .unwrap_or_else(|| panic!("{} is not in the keychain", needs.id));
            assert_eq!(key.function, needs.function);
        }
    }

    #[test]
    fn every_operation_key_is_in_meshery_s_keychain_with_its_function() {
        let keyed: Vec<_> = crate::generated::rest::OPERATIONS
            .iter()
            .filter_map(|op| op.key.map(|k| (op.id, k)))
            .collect();
        // Designs, performance, connections and inventory need keys (schema/openapi.yaml).
        assert!(
            keyed.len() >= 30,
            "only {} operations need a key",
            keyed.len()
        );
        for (op, needed) in keyed {
            let key = crate::orgs::keychain()
                .iter()
                .find(|k| k.id == needed.id)
                .unwrap_or_else(|| panic!("{op}: {} is not in the keychain", needed.id));
            assert_eq!(key.function, needed.function, "{op}");
        }
    }
}
