//! The providers this server offers. The Local provider (alias `None`) runs inside the
//! server: single user, no credentials.

use std::collections::BTreeMap;

use crate::error::{ApiError, codes};
use crate::models::{
    Capability, ProviderCapabilities, ProviderExtensions, ProviderInfo, ProviderType,
};

pub const LOCAL: &str = "Local";

/// Features the Local provider implements itself (Meshery's capability names).
const LOCAL_FEATURES: &[&str] = &["sync-prefs", "users-profile"];

#[derive(Debug, Clone)]
pub enum Provider {
    Local,
}

#[derive(Debug, Clone)]
pub struct Providers {
    /// `PROVIDER`: the one provider every request uses.
    enforced: Option<String>,
    version: String,
}

impl Providers {
    /// Fails when `enforced` names no provider this server offers.
    pub fn new(enforced: Option<&str>, version: &str) -> Result<Self, String> {
        let providers = Providers {
            enforced: None,
            version: version.to_string(),
        };
        let enforced = match enforced.filter(|s| !s.trim().is_empty()) {
            None => None,
            Some(name) => Some(providers.canonical(name).ok_or_else(|| {
                format!("PROVIDER={name} names no provider this server offers (known: {LOCAL})")
            })?),
        };
        Ok(Providers {
            enforced,
            ..providers
        })
    }

    /// The canonical name of a provider, matched case-insensitively (`None` is Local).
    pub fn canonical(&self, name: &str) -> Option<String> {
        let name = name.trim();
        (name.eq_ignore_ascii_case(LOCAL) || name.eq_ignore_ascii_case("none"))
            .then(|| LOCAL.to_string())
    }

    pub fn get(&self, name: &str) -> Option<Provider> {
        self.canonical(name).map(|_| Provider::Local)
    }

    /// Picks the provider of a request from what it names, in Meshery's order (cookie or
    /// header, then query), falling back to the enforced or the only provider.
    pub fn select(&self, named: Option<&str>) -> Result<String, ApiError> {
        if let Some(enforced) = &self.enforced {
            if let Some(name) = named
                && self.canonical(name).as_ref() != Some(enforced)
            {
                return Err(unknown(name).cause(format!("this server only offers {enforced}")));
            }
            return Ok(enforced.clone());
        }
        match named {
            Some(name) => self.canonical(name).ok_or_else(|| unknown(name)),
            None => Ok(LOCAL.to_string()),
        }
    }

    pub fn list(&self) -> BTreeMap<String, ProviderInfo> {
        let mut out = BTreeMap::new();
        if self.enforced.as_deref().is_none_or(|e| e == LOCAL) {
            out.insert(LOCAL.to_string(), self.local_info());
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

    pub fn capabilities(&self, provider: &Provider) -> ProviderCapabilities {
        match provider {
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

fn unknown(name: &str) -> ApiError {
    ApiError::new(
        400,
        codes::UNKNOWN_PROVIDER,
        format!("unknown provider {name:?}"),
    )
    .remedy("List the providers with GET /api/providers and choose one of them.")
}
