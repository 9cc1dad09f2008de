use crate::app::App;
use crate::auth::Caller;
use crate::cookies::{cookie, token_cookie_value};
use crate::error::ApiError;
use crate::events::NewEvent;
use crate::generated::rest::*;
use crate::models::AuthFile;
use crate::models::EventSeverity;
use crate::providers::Provider;
use crate::server::Api;
use crate::session::Session;

impl UserApi for Api {
    async fn get_user(
        &self,
        request: GetUserRequest<Session>,
    ) -> Result<GetUserResponse, ApiError> {
        Ok(GetUserResponse::Ok(request.session.user.clone()))
    }

    async fn get_user_prefs(
        &self,
        request: GetUserPrefsRequest<Session>,
    ) -> Result<GetUserPrefsResponse, ApiError> {
        Ok(GetUserPrefsResponse::Ok(
            self.prefs.get(&request.session).await?,
        ))
    }

    async fn update_user_prefs(
        &self,
        request: UpdateUserPrefsRequest<Session>,
    ) -> Result<UpdateUserPrefsResponse, ApiError> {
        Ok(UpdateUserPrefsResponse::Ok(
            self.prefs.update(&request.session, request.body).await?,
        ))
    }

    async fn complete_login(
        &self,
        request: CompleteLoginRequest<Caller>,
    ) -> Result<CompleteLoginResponse, ApiError> {
        complete_login(&self.app, request).await
    }

    async fn get_token(
        &self,
        request: GetTokenRequest<Session>,
    ) -> Result<GetTokenResponse, ApiError> {
        Ok(GetTokenResponse::Ok(AuthFile {
            meshery_provider: request.session.provider.clone(),
            token: request.session.token.clone().unwrap_or_default(),
        }))
    }
}

/// The `ref` a login returns to: base64url of a local path, nothing else.
pub fn local_path(reference: Option<&str>) -> String {
    let decoded = reference
        .filter(|r| !r.is_empty())
        .and_then(|r| {
            base64::Engine::decode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                r.trim_end_matches('='),
            )
            .ok()
        })
        .and_then(|b| String::from_utf8(b).ok());
    match decoded {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.contains('\\')
                && !p.chars().any(|c| c.is_control()) =>
        {
            p
        }
        _ => "/".to_string(),
    }
}

/// The end of a remote sign-in: the token is verified before any cookie is set.
async fn complete_login(
    app: &App,
    request: CompleteLoginRequest<Caller>,
) -> Result<CompleteLoginResponse, ApiError> {
    let named = request
        .provider
        .clone()
        .map(Ok)
        .unwrap_or(request.caller.provider)?;
    let Some(Provider::Remote(remote)) = app.providers.get(&named) else {
        return Err(ApiError::bad_request(format!(
            "{named} is not a remote provider; there is nothing to sign in to"
        )));
    };
    let session = request.session_cookie.unwrap_or_default();
    if !session
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(ApiError::bad_request(
            "session_cookie has characters a cookie cannot carry",
        ));
    }
    // Verified before any cookie is set.
    let claims = remote.authenticate(&request.token).await?;
    remote
        .refresh_capabilities(&request.token, crate::app::BUILD)
        .await;
    let signed_in = crate::session::Session::new(
        remote.name.clone(),
        crate::remote::user_of(&remote.name, &claims),
        None,
        true,
    );
    let event = NewEvent::new(
        "authentication",
        "login",
        EventSeverity::Informational,
        format!("Signed in with {}", remote.name),
    );
    app.events.note(&signed_in, event).await;
    let mut cookies = vec![
        cookie(
            &app.config,
            "token",
            &token_cookie_value(&request.token, claims.exp),
        ),
        cookie(&app.config, "meshery-provider", &remote.name),
    ];
    if !session.is_empty() {
        cookies.push(cookie(&app.config, "session_cookie", &session));
    }
    Ok(CompleteLoginResponse::Found {
        location: local_path(request.r#ref.as_deref()),
        set_cookie: cookies,
    })
}
