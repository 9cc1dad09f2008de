//! Who calls a secured operation, as the identity layer established it. A leaf: every
//! layer may take a [`Session`]; only `auth` makes one.

use crate::models::User;

#[derive(Clone)]
pub struct Session {
    pub provider: String,
    pub user: User,
    /// The credential the request carried, if any (the Local provider needs none).
    pub token: Option<String>,
    /// Whether a remote provider vouched for the token (else the user is the Local one).
    pub remote: bool,
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
    /// The key that owns this user's stored data: provider and user id, so two
    /// providers' users never share data.
    pub fn owner(&self) -> String {
        if self.remote {
            format!("{}:{}", self.provider, self.user.id)
        } else {
            self.user.id.clone()
        }
    }
}
