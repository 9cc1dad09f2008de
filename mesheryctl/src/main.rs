//! mesheryctl: Meshery's command line, on meshery-rs's generated clients.
//!
//! Exit codes: 0 done, 2 usage (clap), 3 the config file cannot be read or written,
//! 4 the named thing does not exist, 5 the change conflicts with the current state.

mod config;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use config::{Config, Context};

#[derive(Parser)]
#[command(name = "mesheryctl", version, about = "Meshery's command line")]
struct Cli {
    /// The config file (default ~/.meshery/config.yaml).
    #[arg(long, global = true, env = "MESHERY_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The Meshery server and how to reach it.
    System {
        #[command(subcommand)]
        command: SystemCommand,
    },
}

#[derive(Subcommand)]
enum SystemCommand {
    /// Named servers (contexts) in the config file.
    Context {
        #[command(subcommand)]
        command: ContextCommand,
    },
}

#[derive(Subcommand)]
enum ContextCommand {
    /// Add a context.
    Create {
        name: String,
        /// The server's URL.
        #[arg(long, short = 'u', default_value = config::DEFAULT_ENDPOINT)]
        url: String,
        /// The provider to sign in with.
        #[arg(long, short = 'p')]
        provider: Option<String>,
        /// Where Meshery runs (docker, kubernetes).
        #[arg(long, default_value = "docker")]
        platform: String,
        /// Make it the current context.
        #[arg(long, short = 's')]
        set: bool,
    },
    /// List the contexts; the current one is marked with *.
    List,
    /// Make a context the current one.
    Switch { name: String },
    /// Remove a context (not the current one).
    Delete { name: String },
    /// Show a context (default: the current one) as YAML.
    View { name: Option<String> },
}

/// A failure and its exit code.
struct Failure {
    code: u8,
    message: String,
}

fn config_error(message: String) -> Failure {
    Failure { code: 3, message }
}

fn not_found(what: &str, config: &Config) -> Failure {
    let names: Vec<&str> = config.contexts.keys().map(String::as_str).collect();
    Failure {
        code: 4,
        message: format!(
            "no context {what:?}; there are: {}",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        ),
    }
}

fn conflict(message: String) -> Failure {
    Failure { code: 5, message }
}

/// A server URL: http(s) with a host, no trailing slash.
fn endpoint(url: &str) -> Result<String, Failure> {
    let trimmed = url.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("http://")
        .or_else(|| trimmed.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.starts_with('/') => Ok(trimmed.to_string()),
        _ => Err(Failure {
            code: 2,
            message: format!("--url {url:?} must be an http or https URL with a host"),
        }),
    }
}

fn context(command: ContextCommand, path: &std::path::Path) -> Result<String, Failure> {
    let mut config = config::load(path).map_err(config_error)?;
    let save = |config: &Config| config::save(path, config).map_err(config_error);
    match command {
        ContextCommand::Create {
            name,
            url,
            provider,
            platform,
            set,
        } => {
            if name.trim().is_empty() || name.contains(char::is_whitespace) {
                return Err(Failure {
                    code: 2,
                    message: format!("context name {name:?} must be one word"),
                });
            }
            if config.contexts.contains_key(&name) {
                return Err(conflict(format!(
                    "context {name:?} exists; delete it first or pick another name"
                )));
            }
            let endpoint = endpoint(&url)?;
            config
                .contexts
                .insert(name.clone(), Context::new(&endpoint, provider, &platform));
            if set || config.current_context.is_empty() {
                config.current_context = name.clone();
            }
            save(&config)?;
            Ok(format!("added context {name} ({endpoint})"))
        }
        ContextCommand::List => {
            let mut out = String::new();
            for (name, c) in &config.contexts {
                let mark = if *name == config.current_context {
                    "*"
                } else {
                    " "
                };
                out.push_str(&format!("{mark} {name}\t{}\n", c.endpoint));
            }
            Ok(out.trim_end().to_string())
        }
        ContextCommand::Switch { name } => {
            if !config.contexts.contains_key(&name) {
                return Err(not_found(&name, &config));
            }
            config.current_context = name.clone();
            save(&config)?;
            Ok(format!("switched to context {name}"))
        }
        ContextCommand::Delete { name } => {
            if !config.contexts.contains_key(&name) {
                return Err(not_found(&name, &config));
            }
            if name == config.current_context {
                return Err(conflict(format!(
                    "{name} is the current context; switch to another first (mesheryctl system context switch NAME)"
                )));
            }
            config.contexts.remove(&name);
            save(&config)?;
            Ok(format!("deleted context {name}"))
        }
        ContextCommand::View { name } => {
            let name = name.unwrap_or_else(|| config.current_context.clone());
            let c = config
                .contexts
                .get(&name)
                .ok_or_else(|| not_found(&name, &config))?;
            let mut one = std::collections::BTreeMap::new();
            one.insert(name.clone(), c);
            yaml_serde::to_string(&one)
                .map(|s| s.trim_end().to_string())
                .map_err(|e| config_error(e.to_string()))
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = config::path(cli.config)
        .map_err(config_error)
        .and_then(|path| match cli.command {
            Command::System {
                command: SystemCommand::Context { command },
            } => context(command, &path),
        });
    match result {
        Ok(out) => {
            if !out.is_empty() {
                println!("{out}");
            }
            ExitCode::SUCCESS
        }
        Err(f) => {
            eprintln!("mesheryctl: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}
