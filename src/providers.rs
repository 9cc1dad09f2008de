//! The providers this server offers: Local (alias `None`; single user, no credentials),
//! and the remote providers of `PROVIDER_BASE_URLS`.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::bus::{Bus, Notice, Topic};
use crate::jwt::Policy;
use crate::models::{
    Capability, ProviderCapabilities, ProviderExtensions, ProviderInfo, ProviderType, User,
};
use crate::remote::Remote;
use crate::session::Session;

pub const LOCAL: &str = "Local";

/// Features the Local provider implements itself (Meshery's capability names).
const LOCAL_FEATURES: &[&str] = &["sync-prefs", "users-profile"];

#[derive(Clone)]
pub enum Provider {
    Local,
    Remote(Arc<Remote>),
}

/// Why the providers could not be set up at start.
#[derive(Debug, thiserror::Error)]
pub enum ProvidersError {
    #[error(transparent)]
    Remote(#[from] crate::remote::RemoteError),
    #[error("provider name {name:?} of {url} is taken")]
    NameTaken { name: String, url: String },
    #[error("PROVIDER={name} names no provider this server offers (known: {known})")]
    UnknownEnforced { name: String, known: String },
}

pub struct Providers {
    /// `PROVIDER`: the one provider every request uses.
    enforced: Option<String>,
    version: String,
    /// This installation's id: the Local user's id.
    system_id: String,
    remotes: Vec<Arc<Remote>>,
    /// The Local user's session without a token, built once.
    local: Session,
    bus: Bus,
    /// The ends of remote sessions that streams wait on.
    watchers: Arc<crate::liveness::Watchers>,
}

impl Providers {
    /// Connects to every remote provider (fetching its capabilities) and checks that
    /// `enforced` names a provider this server offers.
    #[allow(clippy::too_many_arguments)]
    pub async fn connect(
        enforced: Option<&str>,
        version: &str,
        base_urls: &[String],
        system_id: &str,
        policy: Policy,
        tls: &Arc<rustls::ClientConfig>,
        retry: crate::remote::Retry,
        bus: Bus,
    ) -> Result<Self, ProvidersError> {
        // All at once: one slow or dead provider must not hold up the others' retries.
        let urls: Vec<&str> = base_urls
            .iter()
            .map(|u| u.trim())
            .filter(|u| !u.is_empty())
            .collect();
        let connected = futures_util::future::join_all(
            urls.iter()
                .map(|url| Remote::connect(url, system_id, version, policy.clone(), tls, retry)),
        )
        .await;
        let mut remotes: Vec<Arc<Remote>> = Vec::new();
        for (url, remote) in urls.into_iter().zip(connected) {
            let remote = remote?;
            if remote.name.eq_ignore_ascii_case(LOCAL)
                || remote.name.eq_ignore_ascii_case("none")
                || remotes
                    .iter()
                    .any(|r| r.name.eq_ignore_ascii_case(&remote.name))
            {
                return Err(ProvidersError::NameTaken {
                    name: remote.name,
                    url: url.to_string(),
                });
            }
            tracing::info!(provider = %remote.name, url, "remote provider ready");
            remotes.push(Arc::new(remote));
        }
        let mut providers = Providers {
            enforced: None,
            version: version.to_string(),
            system_id: system_id.to_string(),
            remotes,
            local: Session::new(LOCAL.to_string(), local_user(system_id), None, false),
            bus,
            watchers: Default::default(),
        };
        // A logout on another replica: drop our cached verification of that token, and
        // end the streams open with it.
        let remotes = providers.remotes.clone();
        let watchers = providers.watchers.clone();
        providers.bus.on(Topic::Revoked, move |notice| {
            let key = match &notice {
                Notice::Changed { key } => parse_key(key),
                Notice::Resync => None,
            };
            for remote in &remotes {
                match &key {
                    Some(key) => remote.forget(key),
                    None => remote.forget_all(),
                }
            }
            match &key {
                Some(key) => watchers.end(key, crate::liveness::Ended::Revoked),
                None => watchers.recheck_all(),
            }
            std::future::ready(())
        });
        if let Some(name) = enforced.filter(|s| !s.trim().is_empty()) {
            let known =
                providers
                    .canonical(name)
                    .ok_or_else(|| ProvidersError::UnknownEnforced {
                        name: name.to_string(),
                        known: providers.names().join(", "),
                    })?;
            providers.enforced = Some(known);
        }
        Ok(providers)
    }

    /// Logs out at a remote provider, and has every replica forget the token.
    pub async fn logout(&self, remote: &Remote, token: &str) {
        let key = crate::remote::token_key(token);
        self.watchers.end(&key, crate::liveness::Ended::Revoked);
        remote.logout(token).await;
        // A request with the token while the provider was being told may have confirmed
        // and cached it again, and opened a stream: forget and end once more.
        remote.forget(&key);
        self.watchers.end(&key, crate::liveness::Ended::Revoked);
        let key: String = key.iter().map(|b| format!("{b:02x}")).collect();
        self.bus.publish(Topic::Revoked, &key).await;
    }

    /// When a session's streams must end (see `liveness`); `None` for a session that
    /// never ends by itself (the Local provider's).
    pub fn session_end(&self, session: &Session) -> Option<crate::liveness::SessionEnd> {
        if !session.remote {
            return None;
        }
        let remote = self.remotes.iter().find(|r| r.name == session.provider)?;
        self.watchers.watch(remote, session)
    }

    /// Tokens whose sessions streams are watching now.
    pub fn watched_sessions(&self) -> usize {
        self.watchers.watched()
    }

    /// This installation's id, which is also the Local user's id.
    pub fn system_id(&self) -> &str {
        &self.system_id
    }

    /// The Local user's session without a token, built once (every Local request has it).
    pub fn local_session(&self) -> &Session {
        &self.local
    }

    fn names(&self) -> Vec<String> {
        std::iter::once(LOCAL.to_string())
            .chain(self.remotes.iter().map(|r| r.name.clone()))
            .collect()
    }

    /// The canonical name of a provider, matched case-insensitively (`None` is Local).
    pub fn canonical(&self, name: &str) -> Option<String> {
        let name = name.trim();
        if name.eq_ignore_ascii_case(LOCAL) || name.eq_ignore_ascii_case("none") {
            return Some(LOCAL.to_string());
        }
        self.remotes
            .iter()
            .find(|r| r.name.eq_ignore_ascii_case(name))
            .map(|r| r.name.clone())
    }

    pub fn get(&self, name: &str) -> Option<Provider> {
        let name = self.canonical(name)?;
        if name == LOCAL {
            return Some(Provider::Local);
        }
        self.remotes
            .iter()
            .find(|r| r.name == name)
            .cloned()
            .map(Provider::Remote)
    }

    /// Picks the provider of a request from what it names (cookie or header, then query),
    /// falling back to the enforced one; with none named, a request that carries a token
    /// goes to the only remote provider, any other to Local.
    pub fn select(&self, named: Option<&str>, has_token: bool) -> Result<String, UnknownProvider> {
        if let Some(enforced) = &self.enforced {
            if let Some(name) = named
                && self.canonical(name).as_ref() != Some(enforced)
            {
                return Err(UnknownProvider {
                    name: name.to_string(),
                    only: Some(enforced.clone()),
                });
            }
            return Ok(enforced.clone());
        }
        match named {
            Some(name) => self.canonical(name).ok_or_else(|| UnknownProvider {
                name: name.to_string(),
                only: None,
            }),
            None if has_token && self.remotes.len() == 1 => Ok(self.remotes[0].name.clone()),
            None => Ok(LOCAL.to_string()),
        }
    }

    fn offered(&self, name: &str) -> bool {
        self.enforced.as_deref().is_none_or(|e| e == name)
    }

    pub async fn list(&self) -> BTreeMap<String, ProviderInfo> {
        let mut out = BTreeMap::new();
        if self.offered(LOCAL) {
            out.insert(LOCAL.to_string(), self.local_info());
        }
        for remote in self.remotes.iter().filter(|r| self.offered(&r.name)) {
            let caps = remote.capabilities.read().await;
            out.insert(
                remote.name.clone(),
                ProviderInfo {
                    provider_name: remote.name.clone(),
                    provider_type: ProviderType::Remote,
                    provider_url: remote.base.as_str().trim_end_matches('/').to_string(),
                    package_version: Some(caps.package_version.clone()),
                    provider_description: caps.provider_description.clone(),
                },
            );
        }
        out
    }

    fn local_info(&self) -> ProviderInfo {
        ProviderInfo {
            provider_name: LOCAL.to_string(),
            provider_type: ProviderType::Local,
            provider_url: String::new(),
            package_version: Some(self.version.clone()),
            provider_description: vec![
                "Single user, no sign-in".into(),
                "Data kept in this server's database".into(),
                "No remote extensions".into(),
            ],
        }
    }

    pub async fn capabilities(&self, provider: &Provider) -> ProviderCapabilities {
        match provider {
            Provider::Remote(remote) => remote.capabilities.read().await.clone(),
            Provider::Local => {
                let info = self.local_info();
                ProviderCapabilities {
                    provider_type: ProviderType::Local,
                    package_version: self.version.clone(),
                    package_url: String::new(),
                    provider_name: info.provider_name,
                    provider_description: info.provider_description,
                    provider_url: String::new(),
                    extensions: ProviderExtensions::default(),
                    capabilities: LOCAL_FEATURES
                        .iter()
                        .map(|f| Capability {
                            feature: f.to_string(),
                            endpoint: String::new(),
                        })
                        .collect(),
                    restricted_access: Default::default(),
                    redirects: Default::default(),
                }
            }
        }
    }
}

/// A request named a provider this server does not offer.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown provider {name:?}")]
pub struct UnknownProvider {
    pub name: String,
    /// The one provider the server enforces, when it enforces one.
    pub only: Option<String>,
}

/// The single user of the Local provider; its id is this installation's id.
pub fn local_user(instance_id: &str) -> User {
    User {
        id: instance_id.to_string(),
        user_id: "meshery".into(),
        user_name: "meshery".into(),
        first_name: "Meshery".into(),
        last_name: "User".into(),
        email: String::new(),
        avatar_url: String::new(),
        provider: LOCAL.into(),
        role_names: vec!["admin".into()],
    }
}

/// A token key from its hex form in a notice.
fn parse_key(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(key)
}
