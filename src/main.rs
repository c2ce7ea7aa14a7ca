//! The `signpost` command: every service of Signpost and its tools.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use signpost_core::RecordSet;
use signpost_core::geo::GeoLocator;
use signpost_core::names::parse_name;
use signpost_core::zonefile::{parse_zone_file, render_zone_file};
use signpost_health::CheckerConfig;
use signpost_pgboot::{DatabaseOrigin, locate_database};
use signpost_store::health::TargetPolicy;
use signpost_store::readiness::DatabaseState;
use signpost_store::tenancy::{Quotas, TenancyRules};
use signpost_store::{Store, ZoneDefaults};
use tokio::sync::watch;

/// Self-hosted Route 53: authoritative DNS from PostgreSQL.
#[derive(Parser)]
#[command(name = "signpost", version, about)]
struct Cli {
    /// PostgreSQL URL. Without it Signpost finds a local server, or starts a
    /// private one under --state-dir from the machine's PostgreSQL install.
    #[arg(long, env = "DATABASE_URL", global = true)]
    database_url: Option<String>,
    /// Where a private PostgreSQL cluster lives when one is needed.
    #[arg(long, default_value = ".signpost", global = true)]
    state_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run everything in one process: DNS server, HTTP API and a health checker (region `local`).
    Serve {
        #[command(flatten)]
        dns: DnsArgs,
        /// HTTP API address.
        #[arg(long, default_value = "127.0.0.1:8080")]
        api_addr: SocketAddr,
        #[command(flatten)]
        api: ApiArgs,
        /// Zone files loaded into an empty database (account `default`).
        #[arg(long, default_value = "zones")]
        zones_dir: PathBuf,
        #[command(flatten)]
        zones: ZoneArgs,
    },
    /// Run only the DNS server (many can share one database).
    Dns {
        #[command(flatten)]
        dns: DnsArgs,
    },
    /// Run only the HTTP API.
    Api {
        /// HTTP API address.
        #[arg(long, default_value = "127.0.0.1:8080")]
        api_addr: SocketAddr,
        #[command(flatten)]
        api: ApiArgs,
        /// Local mode for health-check targets, as `serve`: loopback allowed
        /// unless the installation's target policy decides (private networks
        /// follow the stored policy, which allows them by default).
        #[arg(long)]
        allow_private_targets: bool,
        /// MaxMind DB file for client locations in TestDNSAnswer (use the DNS servers' file).
        #[arg(long)]
        geoip_db: Option<PathBuf>,
        #[command(flatten)]
        zones: ZoneArgs,
    },
    /// Run only a health checker (one or more per region; they share the work of judging).
    Checker {
        #[command(flatten)]
        checker: CheckerArgs,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage accounts.
    Accounts {
        #[command(subcommand)]
        command: AccountsCommand,
    },
    /// Import and export zones as RFC 1035 zone files.
    Zone {
        #[command(subcommand)]
        command: ZoneCommand,
    },
    /// Show or change the installation's health-check target policy (the
    /// API and every checker apply it; checkers pick a change up at once).
    TargetPolicy {
        #[command(subcommand)]
        command: TargetPolicyCommand,
    },
}

#[derive(Subcommand)]
enum TargetPolicyCommand {
    /// Print the stored policy as JSON.
    Show,
    /// Change the stored policy; settings not given keep their value.
    Set(TargetPolicyArgs),
}

/// Whether a class of targets is allowed.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Allow {
    Allow,
    Refuse,
}

/// Loopback: allowed, refused, or allowed only in local mode (`serve`).
#[derive(Clone, Copy, clap::ValueEnum)]
enum LoopbackAllow {
    Allow,
    Refuse,
    Local,
}

#[derive(clap::Args)]
struct TargetPolicyArgs {
    /// Loopback targets (`local`: only `serve` and `--allow-private-targets` processes).
    #[arg(long)]
    loopback: Option<LoopbackAllow>,
    /// RFC 1918, RFC 6598, RFC 2544 and unique-local targets.
    #[arg(long)]
    private: Option<Allow>,
    /// Link-local targets.
    #[arg(long)]
    link_local: Option<Allow>,
    /// Cloud-metadata endpoints.
    #[arg(long)]
    metadata: Option<Allow>,
    /// Networks allowed whatever their class (replaces the list; repeat or comma-separate; "" clears).
    #[arg(long, value_delimiter = ',', num_args = 0..)]
    allow_networks: Option<Vec<String>>,
    /// Networks always refused (replaces the list; repeat or comma-separate; "" clears).
    #[arg(long, value_delimiter = ',', num_args = 0..)]
    refuse_networks: Option<Vec<String>>,
}

#[derive(clap::Args)]
struct DnsArgs {
    /// DNS address, UDP and TCP (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:5300")]
    dns_addr: SocketAddr,
    /// UDP worker threads (default: one per core).
    #[arg(long)]
    udp_workers: Option<usize>,
    /// Most TCP connections open at once.
    #[arg(long, default_value_t = 512)]
    tcp_max_connections: usize,
    /// MaxMind DB file (GeoLite2-City or compatible) for client locations.
    #[arg(long)]
    geoip_db: Option<PathBuf>,
    /// Seconds between writes of usage counts (also written at shutdown).
    #[arg(long, default_value_t = 10.0)]
    usage_flush_interval: f64,
    /// Do not count queries (usage and metrics); for benchmarks.
    #[arg(long)]
    no_usage_counting: bool,
    #[command(flatten)]
    limits: DnsLimitArgs,
}

/// TCP connection limits and UDP response rate limiting.
#[derive(clap::Args)]
struct DnsLimitArgs {
    /// Most TCP connections open at once from one client address.
    #[arg(long, default_value_t = 16)]
    tcp_max_per_address: usize,
    /// Most TCP connections open at once from one IPv4 /24 or IPv6 /56.
    #[arg(long, default_value_t = 64)]
    tcp_max_per_network: usize,
    /// Seconds a TCP connection may wait for its next query.
    #[arg(long, default_value_t = 10.0, value_parser = positive_seconds)]
    tcp_idle_timeout: f64,
    /// Seconds a TCP client may take to read an answer before it is disconnected.
    #[arg(long, default_value_t = 5.0, value_parser = positive_seconds)]
    tcp_write_timeout: f64,
    /// Seconds after which any TCP connection is closed.
    #[arg(long, default_value_t = 120.0, value_parser = positive_seconds)]
    tcp_max_lifetime: f64,
    /// UDP responses per second per client network and answer (response rate limiting; 0: off).
    #[arg(long, default_value_t = 200)]
    rrl_rate: u32,
    /// Every Nth rate-limited response is sent truncated (TC=1) so real clients retry over TCP; 0: drop all.
    #[arg(long, default_value_t = 2)]
    rrl_slip: u32,
    /// Prefix length that groups IPv4 clients for rate limiting.
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u8).range(0..=32))]
    rrl_ipv4_prefix: u8,
    /// Prefix length that groups IPv6 clients for rate limiting.
    #[arg(long, default_value_t = 56, value_parser = clap::value_parser!(u8).range(0..=128))]
    rrl_ipv6_prefix: u8,
    /// Buckets in the rate limiter's fixed-size table (rounded up to a power of two).
    #[arg(long, default_value_t = 1 << 17)]
    rrl_table_size: usize,
    /// Rate-limit loopback sources too (by default they are exempt).
    #[arg(long)]
    rrl_include_loopback: bool,
}

impl DnsLimitArgs {
    fn tcp(&self, max_connections: usize) -> signpost_dns::TcpLimits {
        use std::time::Duration;
        signpost_dns::TcpLimits {
            max_connections,
            max_per_address: self.tcp_max_per_address,
            max_per_network: self.tcp_max_per_network,
            idle_timeout: Duration::from_secs_f64(self.tcp_idle_timeout),
            write_timeout: Duration::from_secs_f64(self.tcp_write_timeout),
            max_lifetime: Duration::from_secs_f64(self.tcp_max_lifetime),
            ..Default::default()
        }
    }

    fn rrl(&self) -> signpost_dns::rrl::RrlConfig {
        signpost_dns::rrl::RrlConfig {
            responses_per_second: self.rrl_rate,
            slip: self.rrl_slip,
            ipv4_prefix: self.rrl_ipv4_prefix,
            ipv6_prefix: self.rrl_ipv6_prefix,
            table_size: self.rrl_table_size,
            exempt_loopback: !self.rrl_include_loopback,
        }
    }
}

/// A number of seconds above 0 and at most a day.
fn positive_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s > 0.0 && s <= 86_400.0 => Ok(s),
        _ => Err(format!("{text:?} is not a number of seconds in (0, 86400]")),
    }
}

#[derive(clap::Args)]
struct ApiArgs {
    /// Requests per second allowed per API key (0: no limit).
    #[arg(long, default_value_t = 10)]
    api_rate_limit: u32,
    /// Requests per API key allowed at once above the rate.
    #[arg(long, default_value_t = 20)]
    api_rate_burst: u32,
    /// Largest request body in bytes (413 above).
    #[arg(long, default_value_t = signpost_api::DEFAULT_MAX_BODY_BYTES)]
    api_max_body: usize,
    /// Longest wait for a database connection before answering 503, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    api_db_timeout_ms: u64,
    /// JSON price list for usage costs (PriceTable's camelCase fields; missing ones keep Route 53's prices).
    #[arg(long)]
    prices: Option<PathBuf>,
    /// Requests per second allowed per account, over all its keys (default: twice --api-rate-limit).
    #[arg(long)]
    api_account_rate_limit: Option<u32>,
    /// Requests per account allowed at once above the rate (default: twice --api-rate-burst).
    #[arg(long)]
    api_account_rate_burst: Option<u32>,
    /// Requests per second without a valid key allowed per client address (IPv6: per /64).
    #[arg(long, default_value_t = 20)]
    api_address_rate_limit: u32,
    /// Requests without a valid key allowed at once per client address.
    #[arg(long, default_value_t = 100)]
    api_address_rate_burst: u32,
    #[command(flatten)]
    tenancy: TenancyArgs,
}

#[derive(clap::Args)]
struct TenancyArgs {
    /// Allow zones named by a top-level name or a public suffix (`net.`, `co.uk.`, `in-addr.arpa.`).
    #[arg(long)]
    allow_public_suffix_zones: bool,
    /// Hosted zones per account (Route 53's default quota).
    #[arg(long, default_value_t = Quotas::default().zones_per_account)]
    max_zones_per_account: u32,
    /// Record sets per hosted zone, SOA and NS included (Route 53's default quota).
    #[arg(long, default_value_t = Quotas::default().record_sets_per_zone)]
    max_record_sets_per_zone: u32,
    /// Health checks per account (Route 53's default quota).
    #[arg(long, default_value_t = Quotas::default().health_checks_per_account)]
    max_health_checks_per_account: u32,
    /// API keys per account.
    #[arg(long, default_value_t = Quotas::default().api_keys_per_account)]
    max_api_keys_per_account: u32,
}

impl TenancyArgs {
    fn rules(&self) -> TenancyRules {
        TenancyRules {
            allow_public_suffix_zones: self.allow_public_suffix_zones,
            quotas: Quotas {
                zones_per_account: self.max_zones_per_account,
                record_sets_per_zone: self.max_record_sets_per_zone,
                health_checks_per_account: self.max_health_checks_per_account,
                api_keys_per_account: self.max_api_keys_per_account,
            },
        }
    }
}

#[derive(clap::Args)]
struct CheckerArgs {
    /// The region this checker reports as (shown per checker in a check's status).
    #[arg(long)]
    region: String,
    /// Local mode for targets, as `serve`: loopback allowed unless the
    /// installation's target policy decides.
    #[arg(long)]
    allow_private_targets: bool,
    /// Most probes in flight at once.
    #[arg(long, default_value_t = 256)]
    max_concurrent_probes: usize,
    /// Source address of probe connections (default: the system's choice).
    #[arg(long)]
    source_addr: Option<std::net::IpAddr>,
}

#[derive(clap::Args)]
struct ZoneArgs {
    /// Name servers written into the NS and SOA of new zones.
    #[arg(long, value_delimiter = ',', default_value = "ns1.signpost.test.,ns2.signpost.test.")]
    nameservers: Vec<String>,
}

#[derive(Subcommand)]
enum AccountsCommand {
    /// Create an account; prints `{"accountId", "apiKey"}` (the key is shown once).
    Create {
        /// Account name.
        name: String,
        /// Also make an AWS access key pair for Route 53's API (SigV4) and
        /// print `accessKeyId` and `secretAccessKey` (shown once).
        #[arg(long)]
        aws: bool,
    },
}

#[derive(Subcommand)]
enum ZoneCommand {
    /// Make a zone equal to a zone file, in one atomic change (creating the
    /// zone and the account if missing).
    Import {
        /// The zone file.
        file: PathBuf,
        /// Owning account.
        #[arg(long, default_value = "default")]
        account: String,
        /// Origin when the file has no $ORIGIN (default: the file name without .zone).
        #[arg(long)]
        origin: Option<String>,
        /// Allow a zone named by a top-level name or a public suffix.
        #[arg(long)]
        allow_public_suffix_zones: bool,
        #[command(flatten)]
        zones: ZoneArgs,
    },
    /// Print a zone as a zone file.
    Export {
        /// Zone name.
        name: String,
    },
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    if let Err(e) = run(cli).await {
        eprintln!("signpost: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<()> {
    // Taken before anything starts: a SIGTERM during start-up stops the
    // process gracefully once it is up, instead of killing it.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let service = matches!(
        cli.command,
        Command::Serve { .. } | Command::Dns { .. } | Command::Api { .. } | Command::Checker { .. }
    );
    // Services bind first and connect, migrate (and, for `serve`, load the
    // example zones) in the background: DNS answers from its disk copy
    // while PostgreSQL is down. One-shot commands fail fast.
    let examples = match &cli.command {
        Command::Serve { zones_dir, zones, .. } => {
            Some((zones_dir.clone(), ZoneDefaults { nameservers: zones.nameservers.clone() }))
        }
        _ => None,
    };
    let (store, database) = if service {
        open_store_in_background(cli.database_url.as_deref(), &cli.state_dir, examples).await?
    } else {
        (
            open_store(cli.database_url.as_deref(), &cli.state_dir).await?,
            watch::channel(DatabaseState::Ready).1,
        )
    };
    let store = store.with_master_key(signpost_store::secrets::MasterKeySource::new(&cli.state_dir));
    let state_dir = cli.state_dir.clone();
    match cli.command {
        Command::Migrate => {
            println!("migrations applied");
            Ok(())
        }
        Command::Accounts { command: AccountsCommand::Create { name, aws } } => {
            if aws {
                store.master_key_ready().context("the master key for the access key's secret")?;
            }
            let account = store.create_account(&name).await.context("creating the account")?;
            let mut shown = serde_json::json!({"accountId": account.account_id, "apiKey": account.api_key});
            if aws {
                let spec = signpost_store::api::KeySpec {
                    kind: signpost_store::api::KeyKind::Aws,
                    name: Some("initial-aws".into()),
                    ..Default::default()
                };
                let made = store
                    .create_api_key(&account.account_id, &spec)
                    .await
                    .context("making the access key")?;
                if let signpost_store::api::NewKeySecret::Aws(secret) = &made.secret {
                    shown["accessKeyId"] = made.info.access_key_id.clone().into();
                    shown["secretAccessKey"] = secret.expose().into();
                }
            }
            println!("{shown}");
            Ok(())
        }
        Command::Zone {
            command: ZoneCommand::Import { file, account, origin, allow_public_suffix_zones, zones },
        } => {
            let defaults = ZoneDefaults { nameservers: zones.nameservers };
            let rules = TenancyRules { allow_public_suffix_zones, ..TenancyRules::default() };
            let store = store.with_rules(rules);
            let (name, count) =
                import_zone_file(&store, &file, &account, origin.as_deref(), &defaults).await?;
            println!("imported {name}: {count} record sets");
            Ok(())
        }
        Command::Zone { command: ZoneCommand::Export { name } } => {
            let zone =
                store.zone_by_name(&name).await?.with_context(|| format!("no hosted zone named {name}"))?;
            let rrsets = store.zone_rrsets(&zone.id).await?;
            let origin = parse_name(&zone.name, "name")?;
            let serial = u32::try_from(zone.serial).unwrap_or(u32::MAX);
            print!("{}", render_zone_file(&origin, serial, &rrsets));
            Ok(())
        }
        Command::TargetPolicy { command } => {
            let mut policy = store.target_policy().await?;
            if let TargetPolicyCommand::Set(args) = command {
                apply_target_policy_args(&mut policy, args)?;
                store.set_target_policy(&policy).await.context("storing the target policy")?;
            }
            print_target_policy(&policy);
            Ok(())
        }
        Command::Serve { dns, api_addr, api, zones_dir: _, zones } => {
            let defaults = ZoneDefaults { nameservers: zones.nameservers };
            let (stop, shutdown) = watch::channel(false);
            let registry = prometheus::Registry::new();
            let geo = load_geo(dns.geoip_db.as_deref())?;
            let dns_server = start_dns(
                &store,
                &dns,
                geo.clone(),
                Some(registry.clone()),
                &state_dir,
                &database,
                shutdown.clone(),
            )
            .await?;
            let checker_config = CheckerConfig::new("local", true);
            let checker = tokio::spawn(checker_when_ready(
                store.clone(),
                checker_config,
                database.clone(),
                shutdown.clone(),
            ));
            // `serve` is for local use: loopback health-check targets are
            // allowed unless the installation's stored policy decides.
            let setup = ApiSetup {
                zone_defaults: defaults,
                local_targets: true,
                geo,
                database,
                readiness: Some(dns_readiness(dns_server.state.clone())),
            };
            let api = start_api(&store, api_addr, &api, setup, registry, shutdown).await?;
            wait_for_signal(&mut term).await;
            let _ = stop.send(true);
            let dns_result = dns_server.join().await;
            if let Ok(Some(checker)) = checker.await {
                checker.join().await;
            }
            let _ = api.await;
            Ok(dns_result?)
        }
        Command::Checker { checker: args } => {
            let (stop, shutdown) = watch::channel(false);
            let config = CheckerConfig {
                max_concurrent_probes: args.max_concurrent_probes.max(1),
                source_addr: args.source_addr,
                ..CheckerConfig::new(&args.region, args.allow_private_targets)
            };
            let checker = tokio::spawn(checker_when_ready(store.clone(), config, database, shutdown));
            wait_for_signal(&mut term).await;
            let _ = stop.send(true);
            if let Ok(Some(checker)) = checker.await {
                checker.join().await;
            }
            Ok(())
        }
        Command::Dns { dns } => {
            let (stop, shutdown) = watch::channel(false);
            let geo = load_geo(dns.geoip_db.as_deref())?;
            let dns_server = start_dns(&store, &dns, geo, None, &state_dir, &database, shutdown).await?;
            wait_for_signal(&mut term).await;
            let _ = stop.send(true);
            Ok(dns_server.join().await?)
        }
        Command::Api { api_addr, api, allow_private_targets, geoip_db, zones } => {
            let (stop, shutdown) = watch::channel(false);
            let setup = ApiSetup {
                zone_defaults: ZoneDefaults { nameservers: zones.nameservers },
                local_targets: allow_private_targets,
                geo: load_geo(geoip_db.as_deref())?,
                database,
                readiness: None,
            };
            let api = start_api(&store, api_addr, &api, setup, prometheus::Registry::new(), shutdown).await?;
            wait_for_signal(&mut term).await;
            let _ = stop.send(true);
            let _ = api.await;
            Ok(())
        }
    }
}

/// For one-shot commands: finds the database, connects and applies pending
/// migrations, or fails at once with the reason (services use
/// [`open_store_in_background`]).
async fn open_store(configured: Option<&str>, state_dir: &Path) -> Result<Store> {
    let located = locate_database(configured, state_dir, "signpost").await?;
    match &located.origin {
        DatabaseOrigin::Configured => {}
        DatabaseOrigin::LocalServer => tracing::info!("using the local PostgreSQL server"),
        DatabaseOrigin::PrivateCluster { data_dir } => {
            tracing::info!(data_dir = %data_dir.display(), "using a private PostgreSQL cluster")
        }
    }
    let attempt = async {
        let store = Store::connect(&located.url).await?;
        store.migrate().await?;
        Ok::<_, signpost_store::StoreError>(store)
    };
    attempt.await.context("connecting to PostgreSQL and applying migrations")
}

/// How long the background preparation waits for an answer before it
/// reports the database unreachable (the DNS server then serves its disk
/// copy); the attempt itself goes on.
const CONNECT_CHECK: std::time::Duration = std::time::Duration::from_millis(300);

/// For services: finds the database without waiting for it and returns a
/// lazy store at once; a background task connects, applies migrations and
/// (for `serve`) loads the example zones, retrying until it works, and
/// reports its progress in the returned state.
async fn open_store_in_background(
    configured: Option<&str>,
    state_dir: &Path,
    examples: Option<(PathBuf, ZoneDefaults)>,
) -> Result<(Store, watch::Receiver<DatabaseState>)> {
    let configured = configured.map(str::trim).filter(|url| !url.is_empty()).map(str::to_owned);
    let url = match &configured {
        // Checked (and created if missing) in the background.
        Some(url) => url.clone(),
        None => {
            let located = locate_database(None, state_dir, "signpost").await?;
            if let DatabaseOrigin::PrivateCluster { data_dir } = &located.origin {
                tracing::info!(data_dir = %data_dir.display(), "using a private PostgreSQL cluster");
            } else {
                tracing::info!("using the local PostgreSQL server");
            }
            located.url
        }
    };
    let store = Store::connect_lazy(&url).context("the database URL")?;
    let (state, receiver) = watch::channel(DatabaseState::Connecting);
    let state_dir = state_dir.to_path_buf();
    let background = store.clone();
    tokio::spawn(async move {
        let store = background;
        // A configured database that is missing is created once it answers.
        let mut ensured = configured.is_none();
        let mut delay = std::time::Duration::from_millis(250);
        loop {
            let connect = Store::connect(&url);
            tokio::pin!(connect);
            let connected = tokio::select! {
                connected = &mut connect => connected,
                _ = tokio::time::sleep(CONNECT_CHECK) => {
                    // Slow or down: say so (DNS serves its disk copy), keep trying.
                    tracing::warn!("PostgreSQL does not answer yet");
                    state.send_replace(DatabaseState::Unreachable);
                    connect.await
                }
            };
            match connected {
                Ok(probe) => {
                    probe.pool().close().await;
                    let prepared = async {
                        store.migrate().await?;
                        if let Some((dir, defaults)) = &examples {
                            load_example_zones(&store, dir, defaults).await?;
                        }
                        Ok::<_, anyhow::Error>(())
                    };
                    match prepared.await {
                        Ok(()) => {
                            tracing::info!("database reachable and migrated");
                            state.send_replace(DatabaseState::Ready);
                            return;
                        }
                        Err(e) => tracing::error!(error = format!("{e:#}"), "preparing the database failed"),
                    }
                }
                Err(e) if !e.is_unavailable() && !ensured => {
                    ensured = true;
                    let _ = locate_database(Some(&url), &state_dir, "signpost").await;
                    continue;
                }
                Err(e) if !e.is_unavailable() => {
                    tracing::error!(error = %e, "connecting to PostgreSQL failed")
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?delay, "PostgreSQL unreachable; waiting for it");
                    state.send_replace(DatabaseState::Unreachable);
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(std::time::Duration::from_secs(2));
        }
    });
    Ok((store, receiver))
}

/// Starts a health checker once the database is migrated (None: stopped before).
async fn checker_when_ready(
    store: Store,
    config: CheckerConfig,
    mut database: watch::Receiver<DatabaseState>,
    mut shutdown: watch::Receiver<bool>,
) -> Option<signpost_health::Checker> {
    tokio::select! {
        _ = database.wait_for(|s| *s == DatabaseState::Ready) => {}
        _ = shutdown.wait_for(|stop| *stop) => return None,
    }
    match start_checker(&store, config, shutdown).await {
        Ok(checker) => Some(checker),
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "the health checker did not start");
            None
        }
    }
}

/// `/readyz`'s DNS part in `serve`: a snapshot, loaded from the database.
fn dns_readiness(state: Arc<signpost_dns::ServerState>) -> signpost_api::ReadinessCheck {
    Arc::new(move || {
        if !state.ready.load(std::sync::atomic::Ordering::Acquire) {
            Err("the DNS server has no snapshot yet (it answers SERVFAIL)".to_string())
        } else if !state.is_following() {
            Err("the DNS server answers from its disk copy and is not following the database yet".to_string())
        } else {
            Ok(())
        }
    })
}

/// Reads a MaxMind database file, if one is given.
fn load_geo(path: Option<&Path>) -> Result<Option<Arc<dyn GeoLocator>>> {
    let Some(path) = path else { return Ok(None) };
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let locator = signpost_core::maxmind::MaxMindLocator::from_bytes(bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(Some(Arc::new(locator)))
}

async fn start_dns(
    store: &Store,
    args: &DnsArgs,
    geo: Option<Arc<dyn GeoLocator>>,
    registry: Option<prometheus::Registry>,
    state_dir: &Path,
    database: &watch::Receiver<DatabaseState>,
    shutdown: watch::Receiver<bool>,
) -> Result<signpost_dns::DnsServer> {
    let workers =
        args.udp_workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let config = signpost_dns::DnsConfig {
        addr: args.dns_addr,
        udp_workers: workers,
        tcp: args.limits.tcp(args.tcp_max_connections),
        rrl: args.limits.rrl(),
        geo,
        count_usage: !args.no_usage_counting,
        usage_flush_interval: std::time::Duration::from_secs_f64(
            args.usage_flush_interval.clamp(0.05, 3600.0),
        ),
        registry,
        state_dir: Some(state_dir.to_path_buf()),
        database: Some(database.clone()),
        server_id: format!(
            "dns-{}-{}",
            std::process::id(),
            signpost_store::new_api_key().get(3..15).unwrap_or("x")
        ),
    };
    let server = signpost_dns::DnsServer::start(config, store.clone(), shutdown).await?;
    // Tests and scripts read this line to find the port.
    println!("dns listening on {}", server.local_addr);
    Ok(server)
}

/// Starts a health checker on its own connection pool (probes write often;
/// they must not starve the API or the DNS follower).
async fn start_checker(
    store: &Store,
    config: CheckerConfig,
    shutdown: watch::Receiver<bool>,
) -> Result<signpost_health::Checker> {
    let checker_store = store.with_pool(4, std::time::Duration::from_secs(5));
    let checker = signpost_health::Checker::start(checker_store, config, shutdown)
        .await
        .context("starting the health checker")?;
    // Tests and scripts read this line to know the checker runs.
    println!("health checker {} running", checker.id);
    Ok(checker)
}

/// What `serve` and `api` set differently for the API.
struct ApiSetup {
    /// SOA and NS of new zones.
    zone_defaults: ZoneDefaults,
    /// Local mode for health-check targets (loopback unless the stored policy decides).
    local_targets: bool,
    /// Client locations for TestDNSAnswer.
    geo: Option<Arc<dyn GeoLocator>>,
    /// Whether the database is migrated (/v1 answers 503 before).
    database: watch::Receiver<DatabaseState>,
    /// What else `/readyz` requires (serve: the DNS server follows).
    readiness: Option<signpost_api::ReadinessCheck>,
}

/// Starts the HTTP API on its own connection pool, whose short acquire
/// timeout turns an unreachable database into a quick 503.
async fn start_api(
    store: &Store,
    addr: SocketAddr,
    args: &ApiArgs,
    setup: ApiSetup,
    registry: prometheus::Registry,
    shutdown: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<std::io::Result<()>>> {
    let rate_limit = match (
        std::num::NonZeroU32::new(args.api_rate_limit),
        std::num::NonZeroU32::new(args.api_rate_burst.max(1)),
    ) {
        (Some(per_second), Some(burst)) => Some(signpost_api::RateLimit { per_second, burst }),
        _ => None,
    };
    let account_rate_limit = rate_limit.map(|key| {
        let doubled = key.doubled();
        let nonzero = |v: Option<u32>, default| v.and_then(std::num::NonZeroU32::new).unwrap_or(default);
        signpost_api::RateLimit {
            per_second: nonzero(args.api_account_rate_limit, doubled.per_second),
            burst: nonzero(args.api_account_rate_burst, doubled.burst),
        }
    });
    let address_rate_limit = signpost_api::RateLimit {
        per_second: std::num::NonZeroU32::new(args.api_address_rate_limit)
            .unwrap_or(std::num::NonZeroU32::MIN),
        burst: std::num::NonZeroU32::new(args.api_address_rate_burst).unwrap_or(std::num::NonZeroU32::MIN),
    };
    let geo = setup.geo;
    let setup_database = setup.database.clone();
    let prices = match &args.prices {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            signpost_api::pricing::parse_price_table(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
        None => Default::default(),
    };
    let config = signpost_api::ApiConfig {
        max_body_bytes: args.api_max_body,
        rate_limit,
        account_rate_limit,
        address_rate_limit,
        zone_defaults: setup.zone_defaults,
        local_targets: setup.local_targets,
        geo,
        prices,
        database: Some(setup.database.clone()),
        readiness: setup.readiness,
        ..Default::default()
    };
    let api_store = store
        .with_pool(16, std::time::Duration::from_millis(args.api_db_timeout_ms.max(1)))
        .with_rules(args.tenancy.rules());
    let state =
        signpost_api::ApiState::new(api_store, registry, config).context("registering the API's metrics")?;
    let (local, serve) =
        signpost_api::bind(addr, state, shutdown).await.with_context(|| format!("listening on {addr}"))?;
    let serve = tokio::spawn(serve);
    // Bound and answering (/v1 with 503 until the database is prepared);
    // announced once the database is prepared or known to be unreachable.
    let mut database = setup_database;
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        database.wait_for(|s| *s != DatabaseState::Connecting),
    )
    .await;
    println!("api listening on {local}");
    Ok(serve)
}

async fn wait_for_signal(term: &mut Option<tokio::signal::unix::Signal>) {
    match term {
        Some(term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        None => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    tracing::info!("shutting down");
}

/// Imports one zone file; returns the zone name and the number of record sets.
async fn import_zone_file(
    store: &Store,
    file: &Path,
    account: &str,
    origin: Option<&str>,
    defaults: &ZoneDefaults,
) -> Result<(String, usize)> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let origin = match origin {
        Some(o) => Some(o.to_string()),
        None => file
            .file_name()
            .and_then(|n| n.to_str())
            .map(|n| n.strip_suffix(".zone").unwrap_or(n).to_string()),
    };
    let origin_name = origin.as_deref().and_then(|o| parse_name(o, "origin").ok());
    let parsed = parse_zone_file(&text, origin_name.as_ref())
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let zone_name = signpost_core::names::name_text(&parsed.origin);
    let account_id = store.ensure_account(account).await?;
    let zone = match store.zone_by_name(&zone_name).await? {
        Some(zone) if zone.account_id != account_id => {
            bail!("{zone_name} is hosted by another account; choose it with --account")
        }
        Some(zone) => zone,
        None => store.create_zone(&account_id, &zone_name, None, defaults).await?,
    };
    // A file without SOA or apex NS keeps the zone's own.
    let mut rrsets = parsed.rrsets;
    let current = store.zone_rrsets(&zone.id).await?;
    for rtype in ["SOA", "NS"] {
        let has = |sets: &[RecordSet]| sets.iter().any(|r| r.name == zone.name && r.rtype == rtype);
        if !has(&rrsets)
            && let Some(existing) = current.iter().find(|r| r.name == zone.name && r.rtype == rtype)
        {
            rrsets.push(existing.clone());
        }
    }
    let count = rrsets.len();
    store
        .replace_zone_contents(&zone.id, Some(&account_id), &rrsets, Some("zone import"))
        .await
        .with_context(|| format!("importing {}", file.display()))?;
    Ok((zone_name, count))
}

fn apply_target_policy_args(policy: &mut TargetPolicy, args: TargetPolicyArgs) -> Result<()> {
    let allowed = |a: Allow| matches!(a, Allow::Allow);
    if let Some(loopback) = args.loopback {
        policy.allow_loopback = match loopback {
            LoopbackAllow::Allow => Some(true),
            LoopbackAllow::Refuse => Some(false),
            LoopbackAllow::Local => None,
        };
    }
    if let Some(a) = args.private {
        policy.allow_private = allowed(a);
    }
    if let Some(a) = args.link_local {
        policy.allow_link_local = allowed(a);
    }
    if let Some(a) = args.metadata {
        policy.allow_metadata = allowed(a);
    }
    let networks = |texts: Vec<String>| -> Result<Vec<signpost_store::health::target::IpNet>> {
        texts
            .iter()
            .filter(|t| !t.trim().is_empty())
            .map(|t| t.trim().parse().with_context(|| format!("{t:?} is not a network like 10.0.0.0/8")))
            .collect()
    };
    if let Some(list) = args.allow_networks {
        policy.allowed_networks = networks(list)?;
    }
    if let Some(list) = args.refuse_networks {
        policy.refused_networks = networks(list)?;
    }
    Ok(())
}

fn print_target_policy(policy: &TargetPolicy) {
    let texts = |nets: &[signpost_store::health::target::IpNet]| {
        nets.iter().map(|n| n.to_string()).collect::<Vec<_>>()
    };
    let loopback = match policy.allow_loopback {
        Some(true) => "allow",
        Some(false) => "refuse",
        None => "local",
    };
    let word = |b: bool| if b { "allow" } else { "refuse" };
    println!(
        "{}",
        serde_json::json!({
            "loopback": loopback,
            "private": word(policy.allow_private),
            "linkLocal": word(policy.allow_link_local),
            "metadata": word(policy.allow_metadata),
            "allowNetworks": texts(&policy.allowed_networks),
            "refuseNetworks": texts(&policy.refused_networks),
        })
    );
}

/// Loads `dir/*.zone` into a database that hosts no zone yet.
async fn load_example_zones(store: &Store, dir: &Path, defaults: &ZoneDefaults) -> Result<()> {
    let (_, zones) = store.load_all_zones().await?;
    if !zones.is_empty() {
        return Ok(());
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        tracing::info!(dir = %dir.display(), "no zones directory; starting empty");
        return Ok(());
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "zone"))
        .collect();
    files.sort();
    for file in files {
        let (name, count) = import_zone_file(store, &file, "default", None, defaults).await?;
        tracing::info!(zone = %name, record_sets = count, "example zone loaded");
    }
    Ok(())
}
