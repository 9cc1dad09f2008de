//! Who calls a secured operation, as the identity layer established it. A leaf: every
//! layer may take a [`Session`]; only the identity layer makes one (`auth`, with the
//! Local session from `providers` and remote ones cached by `remote`).

use std::sync::Arc;

use crate::models::User;

/// A verified caller; cheap to clone (one `Arc`), so a verification cached per token is
/// handed to each request without copying the user.
#[derive(Clone)]
pub struct Session(Arc<Identity>);

pub struct Identity {
    pub provider: String,
    pub user: User,
    /// The credential the request carried, if any (the Local provider needs none).
    pub token: Option<String>,
    /// Whether a remote provider vouched for the token (else the user is the Local one).
    pub remote: bool,
    /// When the token expires (its `exp`, seconds since 1970), if it does: streams the
    /// session opened end then.
    pub expires_at: Option<i64>,
    owner: String,
}

impl std::ops::Deref for Session {
    type Target = Identity;
    fn deref(&self) -> &Identity {
        &self.0
    }
}

impl std::fmt::Debug for Session {
    // The token stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("provider", &self.provider)
            .field("user", &self.user.id)
            .finish()
    }
}

impl Session {
    pub fn new(provider: String, user: User, token: Option<String>, remote: bool) -> Session {
        // Provider and user id, so two providers' users never share data.
        let owner = if remote {
            format!("{}:{}", provider, user.id)
        } else {
            user.id.clone()
        };
        Session(Arc::new(Identity {
            provider,
            user,
            token,
            remote,
            expires_at: None,
            owner,
        }))
    }

    /// A remote provider's session, for a token that expires at `expires_at`.
    pub fn remote(provider: String, user: User, token: String, expires_at: i64) -> Session {
        let mut session = Session::new(provider, user, Some(token), true);
        if let Some(identity) = Arc::get_mut(&mut session.0) {
            identity.expires_at = Some(expires_at);
        }
        session
    }

    /// The key that owns this user's stored data: provider and user id, so two
    /// providers' users never share data.
    pub fn owner(&self) -> String {
        self.0.owner.clone()
    }

    /// Whether the user may change what every user shares (the model registry): the
    /// Local user (single-user installation), or a remote user whose token carries the
    /// `admin` role.
    pub fn is_admin(&self) -> bool {
        !self.remote
            || self
                .user
                .role_names
                .iter()
                .any(|r| r.eq_ignore_ascii_case(ADMIN_ROLE))
    }
}

/// The role a remote provider's token carries for administrators (Meshery's role name).
pub const ADMIN_ROLE: &str = "admin";
