use crate::credentials::NewCredential;
use crate::error::ApiError;
use crate::generated::rest::*;
use crate::server::Api;
use crate::session::Session;

/// `order` of credentials: `<field> [asc|desc]`; newest first by default.
fn order(text: Option<&str>) -> Result<(&'static str, bool), ApiError> {
    crate::store::parse_order(
        text,
        &[
            ("created_at", "created_at"),
            ("updated_at", "updated_at"),
            ("name", "name"),
            ("type", "type"),
        ],
        "created_at",
        |column| column.ends_with("_at"),
    )
    .map_err(ApiError::bad_request)
}

impl CredentialsApi for Api {
    async fn list_credentials(
        &self,
        r: ListCredentialsRequest<Session>,
    ) -> Result<ListCredentialsResponse, ApiError> {
        let listing = crate::store::listing(
            r.page,
            r.pagesize.as_deref().or(r.page_size.as_deref()),
            None,
            None,
            None,
            None,
        )?;
        let (items, total) = self
            .credentials
            .list(
                &r.session,
                r.search.as_deref(),
                order(r.order.as_deref())?,
                listing.page,
                listing.page_size,
            )
            .await?;
        Ok(ListCredentialsResponse::Ok(listing.page_of(items, total)))
    }

    async fn save_credential(
        &self,
        r: SaveCredentialRequest<Session>,
    ) -> Result<SaveCredentialResponse, ApiError> {
        let b = r.body;
        let credential = self
            .credentials
            .create(
                &r.session,
                NewCredential {
                    id: b.id.map(|i| i.to_string()),
                    name: b.name.to_string(),
                    r#type: b.type_.to_string(),
                    secret: b.secret,
                },
            )
            .await?;
        let event = crate::events::NewEvent::new(
            "credential",
            "create",
            crate::models::EventSeverity::Informational,
            format!("Credential {} stored", credential.name),
        )
        .acted_upon(credential.id.clone());
        self.events.note(&r.session, event).await;
        Ok(SaveCredentialResponse::Ok(credential))
    }

    async fn update_credential(
        &self,
        r: UpdateCredentialRequest<Session>,
    ) -> Result<UpdateCredentialResponse, ApiError> {
        let b = r.body;
        let id =
            b.id.as_deref()
                .filter(|i| !i.trim().is_empty())
                .ok_or_else(|| ApiError::bad_request("`id` names the credential to change"))?;
        Ok(UpdateCredentialResponse::Ok(
            self.credentials
                .update(&r.session, id, &b.name, &b.type_, &b.secret)
                .await?,
        ))
    }

    async fn delete_credential(
        &self,
        r: DeleteCredentialRequest<Session>,
    ) -> Result<DeleteCredentialResponse, ApiError> {
        self.credentials
            .delete(&r.session, &r.credential_id)
            .await?;
        Ok(DeleteCredentialResponse::NoContent)
    }

    async fn get_credential(
        &self,
        r: GetCredentialRequest<Session>,
    ) -> Result<GetCredentialResponse, ApiError> {
        Ok(GetCredentialResponse::Ok(
            self.credentials.get(&r.session, &r.credential_id).await?,
        ))
    }

    async fn delete_credential_by_id(
        &self,
        r: DeleteCredentialByIdRequest<Session>,
    ) -> Result<DeleteCredentialByIdResponse, ApiError> {
        Ok(DeleteCredentialByIdResponse::Ok(
            self.credentials
                .delete(&r.session, &r.credential_id)
                .await?,
        ))
    }
}
