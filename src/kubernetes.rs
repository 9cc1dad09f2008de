//! Kubernetes contexts: kubeconfig parsing, per-user storage with credentials encrypted
//! at rest (AES-256-GCM, key in the data directory), and `ping` (GET /version with the
//! context's credentials).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::fault::{Internal, OrInternal};
use crate::models::{K8sContext, K8sContextAuth, K8sServerVersion};
use crate::sealing::{Sealer, SecretKeyError};
use crate::session::Session;
use crate::store::{Listing, Store, stamp};

pub use crate::kube_client::Credentials;

/// A parsed context: what may be shown, and its credentials.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub context: K8sContext,
    pub credentials: Credentials,
}

/// Which contexts of a kubeconfig to store, by the ids `parse` gives them (all when
/// `selected` is None), and under which names (Meshery's wizard renames them).
#[derive(Debug, Default)]
pub struct Choice {
    pub selected: Option<Vec<String>>,
    pub names: std::collections::HashMap<String, String>,
}

/// What an upload did: the contexts it stored, each with its connection's status before
/// the upload (`None`: new), and those it could not use (by name).
#[derive(Debug, Default)]
pub struct Upload {
    pub stored: Vec<(K8sContext, Option<String>)>,
    pub errored: Vec<(String, KubeError)>,
}

/// Why a Kubernetes context operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// The uploaded kubeconfig cannot be used.
    #[error("{0}")]
    BadKubeconfig(String),
    #[error("no Kubernetes context {0:?} of yours")]
    NotFound(String),
    #[error("cluster of context {context:?} is unreachable: {why}")]
    Unreachable { context: String, why: String },
    #[error(transparent)]
    Target(#[from] crate::policy::TargetError),
    #[error(transparent)]
    Internal(#[from] Internal),
}

fn bad(message: impl Into<String>) -> KubeError {
    KubeError::BadKubeconfig(message.into())
}

/// `*-data` fields are base64; a file path cannot be read on the server.
fn data(place: &str, m: &Value, key: &str) -> Result<Option<Vec<u8>>, KubeError> {
    use base64::Engine;
    if m.get(key.trim_end_matches("-data"))
        .is_some_and(|v| !v.is_null())
    {
        return Err(bad(format!(
            "{place}: `{}` names a file on your machine; use `{key}` (kubectl config view --raw --flatten)",
            key.trim_end_matches("-data")
        )));
    }
    match m.get(key).and_then(Value::as_str) {
        None => Ok(None),
        Some(s) => base64::engine::general_purpose::STANDARD
            .decode(s.trim())
            .map(Some)
            .map_err(|e| bad(format!("{place}: {key} is not base64: {e}"))),
    }
}

fn named<'a>(list: &'a Value, name: &str) -> Option<&'a Value> {
    list.as_array()?
        .iter()
        .find(|e| e.get("name").and_then(Value::as_str) == Some(name))
}

/// A short, stable id for the same context of the same user on the same server.
fn context_id(owner: &str, name: &str, server: &str, user: &str) -> String {
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        format!("{owner}\n{name}\n{server}\n{user}").as_bytes(),
    );
    digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The id of the connection a context is: a UUID whose first half is the context id's
/// (so the context is found from it) and whose second binds it to the owner.
pub fn connection_id(owner: &str, context_id: &str) -> String {
    let mut bytes = [0u8; 16];
    for (i, b) in bytes.iter_mut().take(8).enumerate() {
        *b = context_id
            .get(2 * i..2 * i + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .unwrap_or(0);
    }
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        format!("connection\n{owner}\n{context_id}").as_bytes(),
    );
    bytes[8..].copy_from_slice(&digest.as_ref()[..8]);
    uuid::Uuid::new_v8(bytes).to_string()
}

/// The context a connection id names, if it is one of `owner`'s ids at all.
pub fn context_of_connection(owner: &str, connection_id: &str) -> Option<String> {
    let uuid = uuid::Uuid::parse_str(connection_id).ok()?;
    // new_v8 overwrites the version and variant bits (bytes 6 and 8): recover them
    // from a rebuilt id instead of from the bytes.
    let prefix: String = uuid.as_bytes()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let candidates = (0u8..16).map(|hi| {
        let mut p = prefix.clone().into_bytes();
        let nibble = format!("{hi:x}");
        p[12] = nibble.as_bytes()[0];
        String::from_utf8(p).unwrap_or_default()
    });
    let want = connection_id.to_ascii_lowercase();
    candidates
        .into_iter()
        .find(|ctx| connection_id_matches(owner, ctx, &want))
}

fn connection_id_matches(owner: &str, context_id: &str, want: &str) -> bool {
    connection_id(owner, context_id) == want
}

/// Parses every context of a kubeconfig; the first unusable context fails it all.
pub fn parse(owner: &str, text: &str) -> Result<Vec<Parsed>, KubeError> {
    parse_each(owner, text)?
        .into_iter()
        .map(|(_, parsed)| parsed)
        .collect()
}

/// A context's name (or place, when it has none) and what parsing it gave.
pub type Labelled = (String, Result<Parsed, KubeError>);

/// Parses a kubeconfig's contexts one by one: a document that is no kubeconfig fails
/// whole; an unusable context is answered by name beside the usable ones, as Meshery
/// imports what it can of a kubeconfig.
pub fn parse_each(owner: &str, text: &str) -> Result<Vec<Labelled>, KubeError> {
    let doc: Value = yaml_serde::from_str(text).map_err(|e| match e.location() {
        Some(l) => bad(format!(
            "kubeconfig: line {}, column {}: {e}",
            l.line(),
            l.column()
        )),
        None => bad(format!("kubeconfig: {e}")),
    })?;
    if doc
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k != "Config")
    {
        return Err(bad("kubeconfig: `kind` must be Config"));
    }
    let current = doc
        .get("current-context")
        .and_then(Value::as_str)
        .unwrap_or("");
    let contexts = doc
        .get("contexts")
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| bad("kubeconfig: no contexts"))?;
    let now = chrono::Utc::now();
    Ok(contexts
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let label = c
                .get("name")
                .and_then(Value::as_str)
                .map_or_else(|| format!("contexts[{i}]"), str::to_string);
            (label, parse_context(owner, &doc, current, now, i, c))
        })
        .collect())
}

fn parse_context(
    owner: &str,
    doc: &Value,
    current: &str,
    now: chrono::DateTime<chrono::Utc>,
    i: usize,
    c: &Value,
) -> Result<Parsed, KubeError> {
    {
        let name = c
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("contexts[{i}]: no name")))?;
        let place = format!("context {name:?}");
        let ctx = c.get("context").cloned().unwrap_or(Value::Null);
        let cluster_name = ctx.get("cluster").and_then(Value::as_str).unwrap_or("");
        let user_name = ctx.get("user").and_then(Value::as_str).unwrap_or("");
        let cluster = named(&doc["clusters"], cluster_name)
            .and_then(|c| c.get("cluster"))
            .ok_or_else(|| {
                bad(format!(
                    "{place}: no cluster {cluster_name:?} in `clusters`"
                ))
            })?;
        let server = cluster
            .get("server")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("{place}: cluster {cluster_name:?} has no server")))?;
        let parsed = reqwest::Url::parse(server)
            .map_err(|e| bad(format!("{place}: server {server:?}: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(bad(format!(
                "{place}: server {server:?} is not http or https"
            )));
        }
        let user = if user_name.is_empty() {
            Value::Null
        } else {
            named(&doc["users"], user_name)
                .and_then(|u| u.get("user"))
                .cloned()
                .ok_or_else(|| bad(format!("{place}: no user {user_name:?} in `users`")))?
        };
        let credentials = Credentials {
            ca: data(&place, cluster, "certificate-authority-data")?,
            insecure: cluster
                .get("insecure-skip-tls-verify")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            token: user
                .get("token")
                .and_then(Value::as_str)
                .map(str::to_string),
            client_cert: data(&place, &user, "client-certificate-data")?,
            client_key: data(&place, &user, "client-key-data")?,
            username: user
                .get("username")
                .and_then(Value::as_str)
                .map(str::to_string),
            password: user
                .get("password")
                .and_then(Value::as_str)
                .map(str::to_string),
        };
        if user.get("exec").is_some() || user.get("auth-provider").is_some() {
            return Err(bad(format!(
                "{place}: user {user_name:?} signs in with a command (exec/auth-provider), which the server cannot run; use a token or client certificate"
            )));
        }
        let auth = if credentials.client_cert.is_some() {
            K8sContextAuth::ClientCertificate
        } else if credentials.token.is_some() {
            K8sContextAuth::Token
        } else if credentials.username.is_some() {
            K8sContextAuth::Basic
        } else {
            K8sContextAuth::None
        };
        let id = context_id(owner, name, server, user_name);
        Ok(Parsed {
            context: K8sContext {
                connection_id: None,
                id: id.clone(),
                cluster_id: id,
                cluster_configured: true,
                name: name.to_string(),
                server: server.to_string(),
                cluster: cluster_name.to_string(),
                user: user_name.to_string(),
                namespace: ctx
                    .get("namespace")
                    .and_then(Value::as_str)
                    .unwrap_or("default")
                    .to_string(),
                is_current: name == current,
                auth,
                certificate_authority: credentials.ca.is_some(),
                insecure_skip_tls_verify: credentials.insecure,
                created_at: now,
                updated_at: now,
            },
            credentials,
        })
    }
}

/// A stored context; one stored before Meshery's `clusterConfigured` and `clusterId` were
/// kept gets them (both follow from its being stored).
pub fn decode(doc: &str) -> Result<K8sContext, serde_json::Error> {
    let mut value: Value = serde_json::from_str(doc)?;
    if let Some(map) = value.as_object_mut() {
        let id = map.get("id").cloned().unwrap_or(Value::Null);
        map.entry("clusterId").or_insert(id);
        map.entry("clusterConfigured").or_insert(Value::Bool(true));
    }
    serde_json::from_value(value)
}

pub struct Kubernetes {
    store: Store,
    sealer: Arc<Sealer>,
}

impl Kubernetes {
    /// Opens the sealing key (see `Sealer::open`) and checks that it is the one the
    /// database's credentials were sealed with: the first server to start records its
    /// key's id, and a replica with another key refuses to start instead of failing
    /// every context later.
    pub async fn open(
        store: Store,
        home: &Path,
        key_file: Option<&Path>,
    ) -> Result<Kubernetes, SecretKeyError> {
        let (sealer, ours) = Sealer::open(home, key_file)?;
        let stored = store.setting_or_init("kubeconfig_key_id", &ours).await?;
        if stored != ours {
            return Err(SecretKeyError::Mismatch { stored, ours });
        }
        Ok(Kubernetes {
            store,
            sealer: Arc::new(sealer),
        })
    }

    /// The installation's sealing key, for other stored secrets (credentials).
    pub fn sealer(&self) -> Arc<Sealer> {
        self.sealer.clone()
    }

    /// Stores every usable context of a kubeconfig, or those `choice` selects, renamed as
    /// it says (the same context uploaded again is updated). Fails when it stores none.
    pub async fn upload(
        &self,
        session: &Session,
        text: &str,
        choice: &Choice,
    ) -> Result<Upload, KubeError> {
        let selected = choice.selected.as_deref();
        let owner = session.owner();
        let mut upload = Upload::default();
        for (name, parsed) in parse_each(&owner, text)? {
            let p = match parsed {
                Ok(p) => p,
                // A selection names contexts that discovery could read; the others are
                // not part of this import.
                Err(_) if selected.is_some() => continue,
                Err(e) => {
                    upload.errored.push((name, e));
                    continue;
                }
            };
            if selected.is_some_and(|ids| !ids.contains(&p.context.id)) {
                continue;
            }
            let mut context = p.context;
            if let Some(name) = choice
                .names
                .get(&context.id)
                .filter(|n| !n.trim().is_empty())
            {
                // A renamed context is another context: its id follows from its name.
                context.name = name.trim().to_string();
                context.id = context_id(&owner, &context.name, &context.server, &context.user);
                context.cluster_id = context.id.clone();
            }
            if upload.stored.iter().any(|(c, _)| c.id == context.id) {
                // Two contexts renamed alike would be one: the second is refused.
                upload.errored.push((
                    context.name.clone(),
                    bad(format!(
                        "context {:?}: another context of this upload has the same name, server and user",
                        context.name
                    )),
                ));
                continue;
            }
            if let Some(old) = self.get_opt(&owner, &context.id).await? {
                context.created_at = old.created_at;
            }
            let prior = self
                .store
                .k8s_context_status(&owner, &context.id)
                .await
                .or_internal("reading a context's status")?;
            let secret = serde_json::to_vec(&p.credentials).or_internal("encoding credentials")?;
            let sealed = self.sealer.seal(&context.id, &secret)?;
            let doc = serde_json::to_string(&context).or_internal("encoding a context")?;
            self.store
                .put_k8s_context(
                    &owner,
                    &context.id,
                    &context.name,
                    &doc,
                    &sealed,
                    &stamp(context.created_at),
                )
                .await
                .or_internal("storing a context")?;
            upload.stored.push((context, prior));
        }
        if upload.stored.is_empty() {
            return Err(match upload.errored.into_iter().next() {
                Some((_, e)) => e,
                None => bad("none of the selected contexts is in the kubeconfig"),
            });
        }
        Ok(upload)
    }

    async fn get_opt(&self, owner: &str, id: &str) -> Result<Option<K8sContext>, KubeError> {
        let doc = self
            .store
            .k8s_context(owner, id)
            .await
            .or_internal("reading a context")?;
        Ok(doc
            .map(|(d, _)| decode(&d))
            .transpose()
            .or_internal("decoding a context")?)
    }

    pub async fn get(&self, session: &Session, id: &str) -> Result<K8sContext, KubeError> {
        self.get_opt(&session.owner(), id)
            .await?
            .ok_or_else(|| KubeError::NotFound(id.to_string()))
    }

    pub async fn list(
        &self,
        session: &Session,
        listing: &Listing,
    ) -> Result<(Vec<K8sContext>, i64), KubeError> {
        let (docs, total) = self
            .store
            .k8s_contexts(&session.owner(), listing)
            .await
            .or_internal("listing contexts")?;
        let contexts = docs
            .iter()
            .map(|d| decode(d))
            .collect::<Result<Vec<K8sContext>, _>>()
            .or_internal("decoding a context")?;
        Ok((contexts, total))
    }

    pub async fn delete(&self, session: &Session, id: &str) -> Result<(), KubeError> {
        let deleted = self
            .store
            .delete_k8s_context(&session.owner(), id)
            .await
            .or_internal("deleting a context")?;
        if deleted {
            Ok(())
        } else {
            Err(KubeError::NotFound(id.to_string()))
        }
    }

    /// The owner's contexts with their connection states, by name.
    pub async fn states(&self, owner: &str) -> Result<Vec<crate::store::ConnectionRow>, KubeError> {
        let (rows, _) = self
            .store
            .connection_rows(owner, &[], None, ("name", false), 0, None)
            .await
            .or_internal("reading connection states")?;
        Ok(rows)
    }

    /// One of the user's contexts with its credentials, to act on its cluster (never to
    /// show: credentials do not leave the server).
    pub async fn access(
        &self,
        session: &Session,
        id: &str,
    ) -> Result<(K8sContext, Credentials), KubeError> {
        self.access_owned(&session.owner(), id).await
    }

    /// `access` for work no request asked for (the inventory), by owner.
    pub async fn access_owned(
        &self,
        owner: &str,
        id: &str,
    ) -> Result<(K8sContext, Credentials), KubeError> {
        let (doc, sealed) = self
            .store
            .k8s_context(owner, id)
            .await
            .or_internal("reading a context")?
            .ok_or_else(|| KubeError::NotFound(id.to_string()))?;
        let context = decode(&doc).or_internal("decoding a context")?;
        let credentials: Credentials = serde_json::from_slice(&self.sealer.open_blob(id, &sealed)?)
            .or_internal("decoding credentials")?;
        Ok((context, credentials))
    }

    /// Asks the context's API server for its version with the context's credentials.
    pub async fn ping(
        &self,
        session: &Session,
        id: &str,
        targets: &crate::policy::Targets,
    ) -> Result<(K8sContext, K8sServerVersion), KubeError> {
        let (context, credentials) = self.access(session, id).await?;
        let unreachable = |why: String| KubeError::Unreachable {
            context: context.name.clone(),
            why,
        };
        let client = crate::kube_client::client(&context.server, &credentials, "default", targets)
            .await
            .map_err(|e| match e {
                crate::kube_client::ClientError::Target(t) => KubeError::Target(t),
                other => unreachable(other.to_string()),
            })?;
        let info = tokio::time::timeout(Duration::from_secs(10), client.apiserver_version())
            .await
            .map_err(|_| unreachable("no answer within 10 s".into()))?
            .map_err(|e| unreachable(crate::fault::chain(&e)))?;
        let version = K8sServerVersion {
            major: info.major,
            minor: info.minor,
            git_version: info.git_version,
            platform: Some(info.platform).filter(|p| !p.is_empty()),
        };
        Ok((context, version))
    }
}
