//! mesheryctl: Meshery's command line, on meshery-rs's generated clients (progenitor for
//! REST, cynic for GraphQL). Exit codes: see [`failure::Class`].

mod api;
mod cluster;
mod config;
mod design;
mod events;
mod failure;
mod output;
mod perf;
mod registry;
mod system;
mod tenancy;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser, Subcommand};

use api::{Overrides, Target};
use config::{Config, Context};
use failure::{Class, Failure, Outcome};
use output::Format;

#[derive(Parser)]
#[command(name = "mesheryctl", version, about = "Meshery's command line", after_help = failure::EXIT_CODES)]
struct Cli {
    /// The config file (default ~/.meshery/config.yaml).
    #[arg(long, global = true, env = "MESHERY_CONFIG")]
    config: Option<PathBuf>,
    /// Use this context instead of the current one.
    #[arg(long, global = true, env = "MESHERY_CONTEXT")]
    context: Option<String>,
    /// Talk to this server instead of the context's endpoint.
    #[arg(long, global = true, env = "MESHERY_SERVER")]
    server: Option<String>,
    /// Output format of lists and views.
    #[arg(long, short = 'o', global = true, value_enum, default_value = "table")]
    output: Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The Meshery server: login, status, contexts.
    System {
        #[command(subcommand)]
        command: SystemCommand,
    },
    /// Load tests and their results.
    Perf {
        #[command(subcommand)]
        command: PerfCommand,
    },
    /// Designs (Meshery patterns).
    Design {
        #[command(subcommand)]
        command: DesignCommand,
    },
    /// The registry of models and components.
    Registry {
        #[command(subcommand)]
        command: RegistryCommand,
    },
    /// What happened on the server.
    Events {
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// Connections: each uploaded Kubernetes context, and its state.
    Connection {
        #[command(subcommand)]
        command: ConnectionCommand,
    },
    /// What runs in your clusters (the server's inventory).
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// Environments: connections grouped in an organization.
    Environment {
        #[command(subcommand)]
        command: EnvironmentCommand,
    },
    /// Workspaces: environments and designs grouped in an organization.
    Workspace {
        #[command(subcommand)]
        command: WorkspaceCommand,
    },
    /// Prints a shell completion script: `source <(mesheryctl completion bash)`.
    Completion { shell: clap_complete::Shell },
}

#[derive(Subcommand)]
enum SystemCommand {
    /// Log in: get a token from a provider and save it (~/.meshery/auth.json).
    Login {
        /// The provider (as `/api/providers` lists it); asked for when there are several.
        #[arg(long, short = 'p')]
        provider: Option<String>,
        /// No browser here: approve a code on any machine (device sign-in), or paste a token.
        #[arg(long)]
        headless: bool,
        /// With --headless: paste a token from the web UI instead of a device code.
        #[arg(long, requires = "headless")]
        paste: bool,
        /// Use an auth.json downloaded from the web UI ("Get Token").
        #[arg(long, conflicts_with = "headless")]
        token_file: Option<PathBuf>,
        /// How long to wait for the sign-in, in seconds.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
    },
    /// Log out: end the session at the server and remove the token file.
    Logout,
    /// The server, provider, user and token expiry.
    Status,
    /// The saved token.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Named servers (contexts) in the config file.
    Context {
        #[command(subcommand)]
        command: ContextCommand,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Shows the token file: provider, token (shortened), expiry.
    View {
        /// Print the whole token.
        #[arg(long)]
        show: bool,
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

#[derive(clap::Args)]
struct Page {
    /// Page number, from 0.
    #[arg(long, default_value_t = 0)]
    page: i64,
    /// Items per page, or `all`.
    #[arg(long, default_value = "25")]
    pagesize: String,
    /// Only items whose name contains this text.
    #[arg(long, short = 's')]
    search: Option<String>,
}

impl From<Page> for perf::ListArgs {
    fn from(p: Page) -> Self {
        perf::ListArgs {
            page: p.page,
            pagesize: p.pagesize,
            search: p.search,
        }
    }
}

#[derive(Subcommand)]
enum PerfCommand {
    /// Run a load test now and print its percentiles.
    Apply(perf::Apply),
    /// Saved performance profiles.
    Profile {
        #[command(subcommand)]
        command: ProfileCommand,
    },
    /// Stored results.
    Result {
        #[command(subcommand)]
        command: ResultCommand,
    },
}

#[derive(Subcommand)]
enum ProfileCommand {
    List(Page),
    View { id: String },
    Delete { id: String },
}

#[derive(Subcommand)]
enum ResultCommand {
    List {
        /// Only this profile's results.
        #[arg(long)]
        profile: Option<String>,
        #[command(flatten)]
        page: Page,
    },
    View {
        id: String,
    },
}

#[derive(Subcommand)]
enum DesignCommand {
    List(Page),
    /// A design's details and YAML.
    View {
        id: String,
    },
    /// Import a design or Kubernetes manifests from a file or a URL.
    Import {
        #[arg(
            long,
            short = 'f',
            required_unless_present = "url",
            conflicts_with = "url"
        )]
        file: Option<PathBuf>,
        #[arg(long, short = 'u')]
        url: Option<String>,
        /// The design's name (default: from the file).
        #[arg(long)]
        name: Option<String>,
    },
    /// Print or save a design (or its Kubernetes manifests with --manifest); save it as a
    /// Helm chart or an OCI image with --type.
    Export {
        id: String,
        #[arg(long)]
        manifest: bool,
        /// design, manifest, helm-chart (a .tgz) or oci (an image .tar); files are saved
        /// under the server's file name unless --file names one.
        #[arg(long = "type", short = 't', value_enum, conflicts_with = "manifest")]
        kind: Option<design::ExportType>,
        /// Write to this file instead of standard output.
        #[arg(long = "file", short = 'f')]
        out: Option<PathBuf>,
    },
    Delete {
        id: String,
    },
    /// Deploy a design (its id, its name, or a design file) to your clusters.
    Deploy(DeployArgs),
    /// Delete a design's resources from your clusters.
    Undeploy(DeployArgs),
}

#[derive(clap::Args)]
struct DeployArgs {
    /// A design's id or name, or a design file.
    design: String,
    /// Have each API server check without storing anything.
    #[arg(long)]
    dry_run: bool,
    /// A Kubernetes context id to act on (repeat for several; default: all of yours).
    /// Not `--context`, which names mesheryctl's own server context.
    #[arg(long = "k8s-context")]
    contexts: Vec<String>,
    /// Leave CustomResourceDefinitions out.
    #[arg(long)]
    skip_crd: bool,
    /// Deploy only: wait until Deployments, StatefulSets and DaemonSets are ready (the
    /// server bounds the wait); one that is not counts as failed.
    #[arg(long)]
    verify: bool,
}

#[derive(Subcommand)]
enum ConnectionCommand {
    /// Your connections, by name.
    List {
        #[command(flatten)]
        page: Page,
        /// Only connections in this state (repeatable): connected, disconnected, ...
        #[arg(long)]
        status: Vec<String>,
    },
    /// One connection (by id or name): its cluster, state and why.
    View { connection: String },
    /// Deletes a connection (by id or name) with its context and inventory.
    Delete { connection: String },
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// Objects in your clusters, as the server last saw them.
    Resources {
        #[command(flatten)]
        page: Page,
        /// Only this cluster: a connection's id or name, or a context id (repeatable).
        #[arg(long)]
        cluster: Vec<String>,
        /// Only this kind (repeatable), e.g. Deployment.
        #[arg(long)]
        kind: Vec<String>,
        /// Only this namespace (repeatable).
        #[arg(long, short = 'n')]
        namespace: Vec<String>,
        /// A label selector: key=value, key!=value, key, !key (comma-separated).
        #[arg(long, short = 'l')]
        selector: Option<String>,
    },
}

/// The organization a command acts in: Meshery's `--orgId` (also `--orgID`, `--org-id`);
/// optional when you are in one organization.
#[derive(clap::Args)]
struct Org {
    #[arg(
        long = "orgId",
        visible_alias = "org-id",
        alias = "orgID",
        value_name = "ORG_ID"
    )]
    org_id: Option<String>,
}

#[derive(Subcommand)]
enum EnvironmentCommand {
    /// Creates an environment.
    Create {
        #[command(flatten)]
        org: Org,
        #[arg(long, short = 'n')]
        name: String,
        #[arg(long, short = 'd')]
        description: Option<String>,
    },
    /// The organization's environments, by name.
    List {
        #[command(flatten)]
        org: Org,
        #[command(flatten)]
        page: Page,
        /// Only print how many there are.
        #[arg(long, short = 'c')]
        count: bool,
    },
    /// One environment, by id or name.
    View {
        environment: String,
        #[command(flatten)]
        org: Org,
    },
    /// Deletes an environment (its connections stay).
    Delete { id: String },
}

#[derive(Subcommand)]
enum WorkspaceCommand {
    /// Creates a workspace.
    Create {
        #[command(flatten)]
        org: Org,
        #[arg(long, short = 'n')]
        name: String,
        #[arg(long, short = 'd')]
        description: Option<String>,
    },
    /// The organization's workspaces, by name.
    List {
        #[command(flatten)]
        org: Org,
        #[command(flatten)]
        page: Page,
        /// Only print how many there are.
        #[arg(long, short = 'c')]
        count: bool,
    },
    /// One workspace, by id or name.
    View {
        workspace: String,
        #[command(flatten)]
        org: Org,
    },
    /// Changes a workspace's name or description.
    Update {
        workspace: String,
        #[command(flatten)]
        org: Org,
        #[arg(long, short = 'n')]
        name: Option<String>,
        #[arg(long, short = 'd')]
        description: Option<String>,
    },
    /// Deletes a workspace (its environments and designs stay).
    Delete {
        workspace: String,
        #[command(flatten)]
        org: Org,
    },
}

#[derive(Subcommand)]
enum RegistryCommand {
    Model {
        #[command(subcommand)]
        command: ModelCommand,
    },
}

#[derive(Subcommand)]
enum ModelCommand {
    List {
        #[command(flatten)]
        page: Page,
        #[arg(long)]
        category: Option<String>,
    },
    /// A model's components and relationships.
    View {
        name: String,
        #[arg(long)]
        version: Option<String>,
    },
}

#[derive(Subcommand)]
enum EventsCommand {
    List {
        #[command(flatten)]
        page: Page,
        /// Only these categories (repeatable).
        #[arg(long)]
        category: Vec<String>,
        /// Only these severities (repeatable).
        #[arg(long)]
        severity: Vec<String>,
    },
    /// Print events as they happen (GraphQL subscription) until Ctrl-C.
    Watch {
        /// Stop after this many events.
        #[arg(long)]
        count: Option<usize>,
    },
}

fn not_found(what: &str, config: &Config) -> Failure {
    let names: Vec<&str> = config.contexts.keys().map(String::as_str).collect();
    Failure::new(
        Class::NotFound,
        format!(
            "no context {what:?}; there are: {}",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        ),
    )
}

fn context(command: ContextCommand, path: &std::path::Path) -> Outcome {
    let mut config = config::load(path).map_err(|e| failure::config(e.to_string()))?;
    let save =
        |config: &Config| config::save(path, config).map_err(|e| failure::config(e.to_string()));
    match command {
        ContextCommand::Create {
            name,
            url,
            provider,
            platform,
            set,
        } => {
            if name.trim().is_empty() || name.contains(char::is_whitespace) {
                return Err(failure::usage(format!(
                    "context name {name:?} must be one word"
                )));
            }
            if config.contexts.contains_key(&name) {
                return Err(Failure::new(
                    Class::Conflict,
                    format!("context {name:?} exists; delete it first or pick another name"),
                ));
            }
            let endpoint = api::endpoint(&url)?;
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
                return Err(Failure::new(
                    Class::Conflict,
                    format!(
                        "{name} is the current context; switch to another first (mesheryctl system context switch NAME)"
                    ),
                ));
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
                .map_err(|e| failure::config(e.to_string()))
        }
    }
}

async fn run(cli: Cli) -> Outcome {
    let overrides = Overrides {
        config: cli.config.clone(),
        context: cli.context.clone(),
        server: cli.server.clone(),
    };
    let format = cli.output;
    let target = || Target::resolve(&overrides);
    match cli.command {
        Command::Completion { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "mesheryctl",
                &mut std::io::stdout(),
            );
            Ok(String::new())
        }
        Command::System { command } => match command {
            SystemCommand::Context { command } => {
                let path = config::path(cli.config).map_err(|e| failure::config(e.to_string()))?;
                context(command, &path)
            }
            SystemCommand::Login {
                provider,
                headless,
                paste,
                token_file,
                timeout,
            } => {
                system::login(
                    &target()?,
                    system::LoginOptions {
                        provider,
                        headless,
                        paste,
                        token_file,
                        timeout: Duration::from_secs(timeout.max(1)),
                    },
                )
                .await
            }
            SystemCommand::Logout => system::logout(&target()?).await,
            SystemCommand::Status => system::status(&target()?).await,
            SystemCommand::Token {
                command: TokenCommand::View { show },
            } => system::token_view(&target()?, show),
        },
        Command::Perf { command } => {
            let t = target()?;
            match command {
                PerfCommand::Apply(a) => perf::apply(&t, a, format).await,
                PerfCommand::Profile { command } => match command {
                    ProfileCommand::List(p) => perf::profile_list(&t, p.into(), format).await,
                    ProfileCommand::View { id } => perf::profile_view(&t, id, format).await,
                    ProfileCommand::Delete { id } => perf::profile_delete(&t, id).await,
                },
                PerfCommand::Result { command } => match command {
                    ResultCommand::List { profile, page } => {
                        perf::result_list(&t, profile, page.into(), format).await
                    }
                    ResultCommand::View { id } => perf::result_view(&t, id, format).await,
                },
            }
        }
        Command::Design { command } => {
            let t = target()?;
            match command {
                DesignCommand::List(p) => design::list(&t, p.into(), format).await,
                DesignCommand::View { id } => design::view(&t, id, format).await,
                DesignCommand::Import { file, url, name } => {
                    design::import(&t, file, url, name, format).await
                }
                DesignCommand::Export {
                    id,
                    manifest,
                    kind,
                    out,
                } => {
                    let kind = kind.unwrap_or(if manifest {
                        design::ExportType::Manifest
                    } else {
                        design::ExportType::Design
                    });
                    design::export(&t, id, kind, out).await
                }
                DesignCommand::Delete { id } => design::delete(&t, id).await,
                DesignCommand::Deploy(a) => {
                    design::deploy(
                        &t, &a.design, false, a.dry_run, a.contexts, a.skip_crd, a.verify, format,
                    )
                    .await
                }
                DesignCommand::Undeploy(a) => {
                    design::deploy(
                        &t, &a.design, true, a.dry_run, a.contexts, a.skip_crd, false, format,
                    )
                    .await
                }
            }
        }
        Command::Registry {
            command: RegistryCommand::Model { command },
        } => {
            let t = target()?;
            match command {
                ModelCommand::List { page, category } => {
                    registry::list(&t, page.into(), category, format).await
                }
                ModelCommand::View { name, version } => {
                    registry::view(&t, name, version, format).await
                }
            }
        }
        Command::Connection { command } => {
            let t = target()?;
            match command {
                ConnectionCommand::List { page, status } => {
                    cluster::list(&t, page.into(), status, format).await
                }
                ConnectionCommand::View { connection } => {
                    cluster::view(&t, connection, format).await
                }
                ConnectionCommand::Delete { connection } => cluster::delete(&t, connection).await,
            }
        }
        Command::Cluster {
            command:
                ClusterCommand::Resources {
                    page,
                    cluster,
                    kind,
                    namespace,
                    selector,
                },
        } => {
            let t = target()?;
            let args = cluster::ResourceArgs {
                list: page.into(),
                clusters: cluster,
                kinds: kind,
                namespaces: namespace,
                selector,
            };
            cluster::resources(&t, args, format).await
        }
        Command::Environment { command } => {
            let t = target()?;
            match command {
                EnvironmentCommand::Create {
                    org,
                    name,
                    description,
                } => tenancy::environment_create(&t, org.org_id, name, description).await,
                EnvironmentCommand::List { org, page, count } => {
                    tenancy::environment_list(&t, org.org_id, page.into(), count, format).await
                }
                EnvironmentCommand::View { environment, org } => {
                    tenancy::environment_view(&t, environment, org.org_id, format).await
                }
                EnvironmentCommand::Delete { id } => tenancy::environment_delete(&t, id).await,
            }
        }
        Command::Workspace { command } => {
            let t = target()?;
            match command {
                WorkspaceCommand::Create {
                    org,
                    name,
                    description,
                } => tenancy::workspace_create(&t, org.org_id, name, description).await,
                WorkspaceCommand::List { org, page, count } => {
                    tenancy::workspace_list(&t, org.org_id, page.into(), count, format).await
                }
                WorkspaceCommand::View { workspace, org } => {
                    tenancy::workspace_view(&t, workspace, org.org_id, format).await
                }
                WorkspaceCommand::Update {
                    workspace,
                    org,
                    name,
                    description,
                } => tenancy::workspace_update(&t, workspace, org.org_id, name, description).await,
                WorkspaceCommand::Delete { workspace, org } => {
                    tenancy::workspace_delete(&t, workspace, org.org_id).await
                }
            }
        }
        Command::Events { command } => {
            let t = target()?;
            match command {
                EventsCommand::List {
                    page,
                    category,
                    severity,
                } => events::list(&t, page.into(), category, severity, format).await,
                EventsCommand::Watch { count } => events::watch(&t, count, format).await,
            }
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mesheryctl: {e}");
            return ExitCode::from(Class::Server as u8);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(out) => {
            if !out.is_empty() {
                println!("{out}");
            }
            ExitCode::SUCCESS
        }
        Err(f) => {
            eprintln!("mesheryctl: {}", f.message);
            ExitCode::from(f.code())
        }
    }
}
