//! `~/.meshery/config.yaml` in mesheryctl's format: contexts by name, the current one,
//! and the token files. Keys this version does not know are kept as they were.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const DEFAULT_ENDPOINT: &str = "http://localhost:9081";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Context {
    pub endpoint: String,
    #[serde(default = "default_token")]
    pub token: String,
    #[serde(default = "default_platform")]
    pub platform: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(flatten)]
    pub other: BTreeMap<String, yaml_serde::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Token {
    pub name: String,
    pub location: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Config {
    #[serde(default)]
    pub contexts: BTreeMap<String, Context>,
    #[serde(rename = "current-context", default)]
    pub current_context: String,
    #[serde(default)]
    pub tokens: Vec<Token>,
    #[serde(flatten)]
    pub other: BTreeMap<String, yaml_serde::Value>,
}

fn default_token() -> String {
    "default".into()
}

fn default_platform() -> String {
    "docker".into()
}

impl Context {
    pub fn new(endpoint: &str, provider: Option<String>, platform: &str) -> Context {
        Context {
            endpoint: endpoint.to_string(),
            token: default_token(),
            platform: platform.to_string(),
            provider,
            other: BTreeMap::new(),
        }
    }
}

impl Default for Config {
    /// What mesheryctl starts with: one `local` context at the default endpoint.
    fn default() -> Self {
        let mut contexts = BTreeMap::new();
        contexts.insert(
            "local".to_string(),
            Context::new(DEFAULT_ENDPOINT, None, "docker"),
        );
        Config {
            contexts,
            current_context: "local".into(),
            tokens: vec![Token {
                name: "default".into(),
                location: "auth.json".into(),
            }],
            other: BTreeMap::new(),
        }
    }
}

/// Why the config (or a file written next to it) could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("no home directory; pass --config")]
    NoHome,
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Yaml {
        path: PathBuf,
        source: yaml_serde::Error,
    },
}

/// Where the config lives: `--config`, else `~/.meshery/config.yaml`.
pub fn path(explicit: Option<PathBuf>) -> Result<PathBuf, ConfigError> {
    match explicit {
        Some(p) => Ok(p),
        None => std::env::home_dir()
            .map(|h| h.join(".meshery").join("config.yaml"))
            .ok_or(ConfigError::NoHome),
    }
}

/// Reads the config; a missing file is the default config (written on the first change).
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => yaml_serde::from_str(&text).map_err(|source| ConfigError::Yaml {
            path: path.to_path_buf(),
            source,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
        Err(source) => Err(ConfigError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes the config atomically (a temporary file renamed over it), readable by the user only.
pub fn save(path: &Path, config: &Config) -> Result<(), ConfigError> {
    let text = yaml_serde::to_string(config).map_err(|source| ConfigError::Yaml {
        path: path.to_path_buf(),
        source,
    })?;
    write_atomic(path, text.as_bytes())
}

/// Where a context's token file lives: the `tokens` entry it names, relative paths under
/// the config's directory; `auth.json` there when the entry is missing.
pub fn auth_path(config_path: &Path, config: &Config, context: &Context) -> PathBuf {
    let dir = config_path.parent().unwrap_or(Path::new("."));
    let location = config
        .tokens
        .iter()
        .find(|t| t.name == context.token)
        .map(|t| t.location.as_str())
        .unwrap_or("auth.json");
    let location = match location.strip_prefix("~/") {
        Some(rest) => std::env::home_dir()
            .map(|h| h.join(rest))
            .unwrap_or_else(|| PathBuf::from(location)),
        None => PathBuf::from(location),
    };
    if location.is_absolute() {
        location
    } else {
        dir.join(location)
    }
}

/// Replaces `path` with `bytes` in one step (a private temporary file renamed over it).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ConfigError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ConfigError::Io { path, source }
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    write_private(&temp, bytes).map_err(io(&temp))?;
    std::fs::rename(&temp, path).map_err(|source| {
        let _ = std::fs::remove_file(&temp);
        ConfigError::Io {
            path: path.to_path_buf(),
            source,
        }
    })
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}
