//! JWT verification against a remote provider's JWKS, hardened where Meshery is not:
//! the algorithm is pinned by the key (never `none`, never HMAC), `kid` is only a map key,
//! `exp`/`nbf` are checked with bounded leeway, `iss`/`aud` when configured, and unknown
//! `kid`s refetch the JWKS at most once per interval so bad tokens cannot flood the provider.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::sync::{Mutex, RwLock};

/// Claims the server reads from a provider's token.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Claims {
    pub sub: String,
    pub exp: i64,
    #[serde(default)]
    pub iss: Option<String>,
    #[serde(default)]
    pub jti: Option<String>,
    #[serde(default)]
    pub preferred_username: Option<String>,
    #[serde(default)]
    pub given_name: Option<String>,
    #[serde(default)]
    pub family_name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub picture: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum JwtError {
    #[error("the token is not a JWT")]
    Malformed,
    #[error("the token names no key (kid)")]
    NoKid,
    #[error("the token's key is unknown to the provider")]
    UnknownKid,
    #[error("the token's algorithm does not match its key")]
    AlgorithmMismatch,
    #[error("the token is invalid: {0}")]
    Invalid(String),
    #[error("the provider's keys could not be fetched: {0}")]
    Keys(String),
}

/// Verification settings.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Clock skew allowed on `exp` and `nbf`; capped at 60 s.
    pub leeway: Duration,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    /// The least time between two JWKS fetches caused by unknown `kid`s.
    pub refetch_interval: Duration,
    /// How long a provider's confirmation that a token is active is trusted (a
    /// revocation at the provider takes effect within it).
    pub confirm_ttl: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            leeway: Duration::from_secs(30),
            issuer: None,
            audience: None,
            refetch_interval: Duration::from_secs(30),
            confirm_ttl: Duration::from_secs(60),
        }
    }
}

struct Key {
    key: DecodingKey,
    alg: Algorithm,
}

struct KeySet {
    keys: HashMap<String, Key>,
    /// When a fetch was last started, successful or not.
    last_fetch: Option<Instant>,
}

/// What fetches the JWKS; a trait so the verifier is testable without HTTP.
pub trait KeySource: Send + Sync {
    type Error: std::fmt::Display;
    fn fetch(&self) -> impl std::future::Future<Output = Result<JwkSet, Self::Error>> + Send;
}

pub struct Verifier<S> {
    source: S,
    policy: Policy,
    keys: RwLock<KeySet>,
    /// Single flight for refetches.
    fetching: Mutex<()>,
}

/// The one algorithm a key may be used with: its `alg`, or the one its type implies.
/// HMAC keys are refused: a public JWKS has no business holding shared secrets.
fn pinned_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    let implied = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => Algorithm::ES256,
            EllipticCurve::P384 => Algorithm::ES384,
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(_) => Algorithm::EdDSA,
        // Shared secrets, and whatever a newer library adds: never.
        _ => return None,
    };
    let alg = match jwk.common.key_algorithm {
        Some(a) => Algorithm::try_from(a).ok()?,
        None => implied,
    };
    let family_ok = matches!(
        (&jwk.algorithm, alg),
        (
            AlgorithmParameters::RSA(_),
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
        ) | (
            AlgorithmParameters::EllipticCurve(_),
            Algorithm::ES256 | Algorithm::ES384
        ) | (AlgorithmParameters::OctetKeyPair(_), Algorithm::EdDSA)
    );
    family_ok.then_some(alg)
}

impl<S: KeySource> Verifier<S> {
    pub fn new(source: S, mut policy: Policy) -> Self {
        policy.leeway = policy.leeway.min(Duration::from_secs(60));
        Verifier {
            source,
            policy,
            keys: RwLock::new(KeySet {
                keys: HashMap::new(),
                last_fetch: None,
            }),
            fetching: Mutex::new(()),
        }
    }

    /// Fetches the JWKS now, unless another fetch ran within the refetch interval.
    async fn refetch(&self) -> Result<(), JwtError> {
        let _single = self.fetching.lock().await;
        {
            let keys = self.keys.read().await;
            if keys
                .last_fetch
                .is_some_and(|t| t.elapsed() < self.policy.refetch_interval)
            {
                return Ok(());
            }
        }
        self.keys.write().await.last_fetch = Some(Instant::now());
        let set = self
            .source
            .fetch()
            .await
            .map_err(|e| JwtError::Keys(e.to_string()))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let (Some(kid), Some(alg)) = (jwk.common.key_id.clone(), pinned_algorithm(jwk)) else {
                tracing::warn!(kid = ?jwk.common.key_id, "ignoring a JWKS key without kid or with an unusable algorithm");
                continue;
            };
            match DecodingKey::from_jwk(jwk) {
                Ok(key) => {
                    keys.insert(kid, Key { key, alg });
                }
                Err(e) => tracing::warn!(%kid, error = %e, "ignoring an unreadable JWKS key"),
            }
        }
        self.keys.write().await.keys = keys;
        Ok(())
    }

    /// Verifies a token; the `kid` picks the key and the key fixes the algorithm.
    pub async fn verify(&self, token: &str) -> Result<Claims, JwtError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| JwtError::Malformed)?;
        let kid = header.kid.ok_or(JwtError::NoKid)?;
        if !self.keys.read().await.keys.contains_key(&kid) {
            // Unknown: maybe rotated in. Refetch, but at most once per interval.
            self.refetch().await?;
        }
        let keys = self.keys.read().await;
        let key = keys.keys.get(&kid).ok_or(JwtError::UnknownKid)?;
        if header.alg != key.alg {
            return Err(JwtError::AlgorithmMismatch);
        }
        let mut validation = Validation::new(key.alg);
        validation.leeway = self.policy.leeway.as_secs();
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        match &self.policy.issuer {
            Some(iss) => validation.set_issuer(&[iss]),
            None => validation.iss = None,
        }
        match &self.policy.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        jsonwebtoken::decode::<Claims>(token, &key.key, &validation)
            .map(|data| data.claims)
            .map_err(|e| JwtError::Invalid(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshery_provider::{ProviderConfig, RefProvider};
    use serde_json::json;

    struct Static(JwkSet);

    impl KeySource for Static {
        type Error = std::convert::Infallible;
        async fn fetch(&self) -> Result<JwkSet, Self::Error> {
            Ok(self.0.clone())
        }
    }

    fn token(p: &RefProvider, changes: serde_json::Value) -> String {
        let now = chrono::Utc::now().timestamp();
        let mut claims = json!({"sub": "u", "iss": "http://p", "aud": "meshery", "exp": now + 600, "nbf": now - 1});
        for (k, v) in changes.as_object().into_iter().flatten() {
            claims[k] = v.clone();
        }
        p.sign(&claims).unwrap()
    }

    #[tokio::test]
    async fn leeway_is_bounded_and_applies_to_exp_and_nbf() {
        let p = RefProvider::new(ProviderConfig::default(), "http://p").unwrap();
        let policy = Policy {
            leeway: Duration::from_secs(600),
            issuer: Some("http://p".into()),
            audience: Some("meshery".into()),
            ..Policy::default()
        };
        let v = Verifier::new(Static(p.jwks()), policy);
        let now = chrono::Utc::now().timestamp();
        assert!(v.verify(&token(&p, json!({}))).await.is_ok());
        // Asked for 600 s, the verifier allows 60 s.
        assert!(v.verify(&token(&p, json!({"exp": now - 30}))).await.is_ok());
        assert!(
            v.verify(&token(&p, json!({"exp": now - 120})))
                .await
                .is_err()
        );
        assert!(v.verify(&token(&p, json!({"nbf": now + 30}))).await.is_ok());
        assert!(
            v.verify(&token(&p, json!({"nbf": now + 120})))
                .await
                .is_err()
        );
        assert!(matches!(
            v.verify(&token(&p, json!({"iss": "http://q"}))).await,
            Err(JwtError::Invalid(_))
        ));
    }

    #[tokio::test]
    async fn hmac_keys_in_a_jwks_are_never_used() {
        let secret = jsonwebtoken::EncodingKey::from_secret(b"shared");
        let mut jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&secret, Algorithm::HS256).unwrap();
        jwk.common.key_id = Some("k".into());
        assert_eq!(pinned_algorithm(&jwk), None);
        let v = Verifier::new(Static(JwkSet { keys: vec![jwk] }), Policy::default());
        let mut header = jsonwebtoken::Header::new(Algorithm::HS256);
        header.kid = Some("k".into());
        let t = jsonwebtoken::encode(
            &header,
            &json!({"sub": "u", "exp": chrono::Utc::now().timestamp() + 60}),
            &secret,
        )
        .unwrap();
        assert_eq!(v.verify(&t).await, Err(JwtError::UnknownKid));
    }
}
