use crate::auth::Session;
use crate::generated::rest::*;
use crate::models::AuthFile;
use crate::server::App;

impl UserApi for App {
    async fn get_user(&self, request: GetUserRequest<Session>) -> GetUserResponse {
        GetUserResponse::Ok(request.session.user)
    }

    async fn get_user_prefs(&self, request: GetUserPrefsRequest<Session>) -> GetUserPrefsResponse {
        match self.prefs.get(&request.session.user.id).await {
            Ok(prefs) => GetUserPrefsResponse::Ok(prefs),
            Err(e) => e.to(),
        }
    }

    async fn update_user_prefs(
        &self,
        request: UpdateUserPrefsRequest<Session>,
    ) -> UpdateUserPrefsResponse {
        match self
            .prefs
            .update(&request.session.user.id, request.body)
            .await
        {
            Ok(prefs) => UpdateUserPrefsResponse::Ok(prefs),
            Err(e) => e.to(),
        }
    }

    async fn get_token(&self, request: GetTokenRequest<Session>) -> GetTokenResponse {
        GetTokenResponse::Ok(AuthFile {
            meshery_provider: request.session.provider,
            token: request.session.token.unwrap_or_default(),
        })
    }
}
