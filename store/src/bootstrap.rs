//! Zero-config database bootstrap: finds or starts a PostgreSQL server so that
//! `signpost serve` and `cargo test` work on a fresh machine without a
//! `DATABASE_URL`.
//!
//! [`locate_database`] tries, in order:
//!
//! 1. a configured URL (used as-is; its database is created if it is missing
//!    and the server lets us),
//! 2. a local server: `127.0.0.1:5432`, then the socket directory
//!    `/var/run/postgresql`, as the `postgres` role and as the current OS user,
//! 3. a private cluster under `<state_dir>/` started from the machine's
//!    PostgreSQL binaries (`initdb` + `pg_ctl`; when running as root the
//!    server runs as the `postgres` OS user, or `nobody`),
//!
//! and fails with [`BootstrapError::NoPostgres`], which explains how to install
//! PostgreSQL, when there is none of these. A private cluster keeps running
//! after the process exits and is reused by the next caller.

use std::fmt::Write as _;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::str::FromStr;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, Connection};

/// How long a probe of a possible local server may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long connecting to a server we know should be there may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `initdb` may run.
const INITDB_TIMEOUT: Duration = Duration::from_secs(180);
/// How long `pg_ctl start` waits for the server (its `-t`), in seconds.
const START_WAIT_SECS: u64 = 60;
/// How long we wait for another process that is starting the same cluster.
const LOCK_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest socket directory we use; the socket path adds `/.s.PGSQL.NNNNN`
/// and must stay below the 104/108-byte `sun_path` limit.
const MAX_SOCKET_DIR_LEN: usize = 80;
/// Socket directory of distribution-packaged servers (Debian, Ubuntu, Fedora).
const SYSTEM_SOCKET_DIR: &str = "/var/run/postgresql";
/// Role created by `initdb -U` in a private cluster.
const CLUSTER_SUPERUSER: &str = "postgres";

/// Display text of [`BootstrapError::NoPostgres`].
const NO_POSTGRES_MESSAGE: &str = "\
PostgreSQL was not found on this machine, and no database is configured.
Signpost keeps its data in PostgreSQL. Either install PostgreSQL, and Signpost
will use the local server or start a private one under .signpost/ by itself:
    Debian/Ubuntu:  sudo apt-get install postgresql
    Fedora:         sudo dnf install postgresql-server
    macOS:          brew install postgresql@16
or point Signpost at an existing server:
    DATABASE_URL=postgres://USER@HOST:PORT/DB   (or --database-url URL)";

/// A database that is ready to use, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocatedDatabase {
    /// Connection URL of the database, suitable for `PgConnectOptions::from_str`.
    pub url: String,
    /// Which step of the search produced it.
    pub origin: DatabaseOrigin,
}

/// Where a [`LocatedDatabase`] came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseOrigin {
    /// The URL was passed in (`--database-url` / `DATABASE_URL`).
    Configured,
    /// A PostgreSQL server already running on this machine.
    LocalServer,
    /// A private cluster under the state directory, started by Signpost.
    PrivateCluster {
        /// The cluster's data directory (absolute).
        data_dir: PathBuf,
    },
}

/// Why no database could be provided.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// No server was reachable and no PostgreSQL binaries were found.
    #[error("{}", NO_POSTGRES_MESSAGE)]
    NoPostgres,
    /// A database name outside `[A-Za-z0-9_]{1,63}`.
    #[error("invalid database name {name:?}: use 1 to 63 ASCII letters, digits and underscores")]
    InvalidName {
        /// The rejected name.
        name: String,
    },
    /// A URL that sqlx cannot parse as a PostgreSQL connection string.
    #[error("invalid database URL {url}: {reason}")]
    InvalidUrl {
        /// The URL, with any password hidden.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `initdb` could not be run or failed.
    #[error("could not initialise a PostgreSQL cluster in {}: {detail}", data_dir.display())]
    Initdb {
        /// The data directory being initialised.
        data_dir: PathBuf,
        /// What went wrong, including initdb's own output.
        detail: String,
    },
    /// `pg_ctl start` could not be run or failed.
    #[error(
        "could not start the PostgreSQL cluster in {} (log: {}): {detail}",
        data_dir.display(),
        log_file.display()
    )]
    Start {
        /// The cluster's data directory.
        data_dir: PathBuf,
        /// The server log file.
        log_file: PathBuf,
        /// What went wrong, including the end of the server log.
        detail: String,
    },
    /// A server that should be there did not accept a connection.
    #[error("could not connect to PostgreSQL at {target}: {source}")]
    Connect {
        /// The server, as a URL with any password hidden.
        target: String,
        /// The connection error (an I/O `TimedOut` error for a timeout).
        source: sqlx::Error,
    },
    /// `CREATE DATABASE` failed.
    #[error("could not create database {name:?}: {source}")]
    CreateDatabase {
        /// The database being created.
        name: String,
        /// The server's error.
        source: sqlx::Error,
    },
    /// `DROP DATABASE` failed.
    #[error("could not drop database {name:?}: {source}")]
    DropDatabase {
        /// The database being dropped.
        name: String,
        /// The server's error.
        source: sqlx::Error,
    },
    /// A file system or process operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: io::Error,
    },
}

impl BootstrapError {
    fn io(context: impl Into<String>, source: io::Error) -> Self {
        BootstrapError::Io { context: context.into(), source }
    }
}

/// Finds or starts a PostgreSQL server and makes sure `database` exists on it.
///
/// `configured` is the URL from the command line or environment, if any (an
/// empty string counts as none); it is returned unchanged. Otherwise a local
/// server is used, else a private cluster under `state_dir` (normally
/// `.signpost/`) is started or reused, and the URL of `database` on it is
/// returned.
pub async fn locate_database(
    configured: Option<&str>,
    state_dir: &Path,
    database: &str,
) -> Result<LocatedDatabase, BootstrapError> {
    validate_name(database)?;
    if let Some(url) = configured.map(str::trim).filter(|url| !url.is_empty()) {
        ensure_configured_database(url).await;
        return Ok(LocatedDatabase { url: url.to_owned(), origin: DatabaseOrigin::Configured });
    }
    if let Some(url) = try_local_servers(database).await? {
        return Ok(LocatedDatabase { url, origin: DatabaseOrigin::LocalServer });
    }
    start_private_cluster(state_dir, database).await
}

/// Creates `name` on the server `server_url` points at, if missing (used by
/// tests to make one database per test), and returns the URL of `name`.
///
/// Safe to call concurrently for the same name.
pub async fn create_database(server_url: &str, name: &str) -> Result<String, BootstrapError> {
    validate_name(name)?;
    let options = parse_url(server_url)?;
    let target = redact(server_url);
    let mut conn = connect_maintenance(&options, &target, Some(name)).await?;
    let created = ensure_database(&mut conn, name).await;
    close(conn).await;
    created?;
    with_database(server_url, name)
}

/// Drops `name` (`WITH (FORCE)`, disconnecting its sessions) on the server
/// `server_url` points at; a missing database is not an error. Errors are
/// returned, callers may ignore them.
pub async fn drop_database(server_url: &str, name: &str) -> Result<(), BootstrapError> {
    validate_name(name)?;
    let options = parse_url(server_url)?;
    let target = redact(server_url);
    let mut conn = connect_maintenance(&options, &target, Some(name)).await?;
    let quoted = quote_ident(name);
    let forced = format!("DROP DATABASE IF EXISTS {quoted} WITH (FORCE)");
    let mut result = sqlx::raw_sql(AssertSqlSafe(forced)).execute(&mut conn).await.map(drop);
    if result.as_ref().is_err_and(|e| db_error_code(e).as_deref() == Some("42601")) {
        // Servers before 13 have no WITH (FORCE): disconnect sessions by hand.
        result = sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(name)
        .execute(&mut conn)
        .await
        .map(drop);
        if result.is_ok() {
            let plain = format!("DROP DATABASE IF EXISTS {quoted}");
            result = sqlx::raw_sql(AssertSqlSafe(plain)).execute(&mut conn).await.map(drop);
        }
    }
    close(conn).await;
    result.map_err(|source| BootstrapError::DropDatabase { name: name.to_owned(), source })
}

// ---------------------------------------------------------------------------
// Step 1: configured URL
// ---------------------------------------------------------------------------

/// Best effort: creates the database a configured URL names if the server
/// says it does not exist. Problems are only logged; the caller's own
/// connection attempt reports them properly.
async fn ensure_configured_database(url: &str) {
    let target = redact(url);
    let options = match PgConnectOptions::from_str(url) {
        Ok(options) => options,
        Err(e) => {
            tracing::warn!(url = %target, error = %e, "cannot parse the configured database URL");
            return;
        }
    };
    let Some(name) = options.get_database().map(str::to_owned) else {
        return;
    };
    match connect(&options, &target, CONNECT_TIMEOUT).await {
        Ok(conn) => close(conn).await,
        Err(BootstrapError::Connect { source, .. }) if db_error_code(&source).as_deref() == Some("3D000") => {
            let created = match connect_maintenance(&options, &target, Some(&name)).await {
                Ok(mut conn) => {
                    let created = ensure_database(&mut conn, &name).await;
                    close(conn).await;
                    created
                }
                Err(e) => Err(e),
            };
            if let Err(e) = created {
                tracing::warn!(url = %target, error = %e, "configured database is missing and could not be created");
            }
        }
        Err(e) => {
            tracing::warn!(url = %target, error = %e, "configured database is not reachable yet");
        }
    }
}

// ---------------------------------------------------------------------------
// Step 2: a server already running on this machine
// ---------------------------------------------------------------------------

/// Server URLs (all naming the `postgres` database) worth probing.
async fn local_server_candidates() -> Vec<String> {
    let user = current_user_name().await;
    let mut users = vec![CLUSTER_SUPERUSER.to_owned()];
    if let Some(user) = user.filter(|u| u != CLUSTER_SUPERUSER) {
        users.push(user);
    }
    let mut candidates =
        vec![format!("postgres://{}@127.0.0.1:5432/postgres", percent_encode(CLUSTER_SUPERUSER))];
    for user in &users {
        candidates.push(format!(
            "postgres:///postgres?host={}&user={}",
            percent_encode(SYSTEM_SOCKET_DIR),
            percent_encode(user)
        ));
    }
    // Homebrew's server knows only the OS user, and listens on TCP.
    for user in users.iter().skip(1) {
        candidates.push(format!("postgres://{}@127.0.0.1:5432/postgres", percent_encode(user)));
    }
    candidates
}

/// Probes the local candidates; on the first that answers, creates `database`
/// and returns its URL.
async fn try_local_servers(database: &str) -> Result<Option<String>, BootstrapError> {
    for candidate in local_server_candidates().await {
        let Ok(options) = PgConnectOptions::from_str(&candidate) else {
            continue;
        };
        let mut conn = match connect(&options, &candidate, PROBE_TIMEOUT).await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::debug!(server = %candidate, error = %e, "no usable local PostgreSQL here");
                continue;
            }
        };
        let created = ensure_database(&mut conn, database).await;
        close(conn).await;
        match created {
            Ok(()) => {
                tracing::info!(server = %candidate, database, "using the local PostgreSQL server");
                return with_database(&candidate, database).map(Some);
            }
            Err(BootstrapError::CreateDatabase { source, .. })
                if db_error_code(&source).as_deref() == Some("42501") =>
            {
                tracing::debug!(server = %candidate, "role may not create databases; trying further");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

// ---------------------------------------------------------------------------
// Step 3: a private cluster under the state directory
// ---------------------------------------------------------------------------

/// An unprivileged OS account to run `initdb` and the server as, when we are root.
#[derive(Debug, Clone)]
struct RunAs {
    name: String,
    uid: u32,
    gid: u32,
}

/// File system layout of a private cluster.
#[derive(Debug, Clone)]
struct ClusterPaths {
    /// Directory holding the data directory and the log (normally the state dir).
    root: PathBuf,
    data_dir: PathBuf,
    log_file: PathBuf,
    socket_dir: PathBuf,
    /// Remembers the port; always in the state dir.
    port_file: PathBuf,
}

impl ClusterPaths {
    /// Lays the cluster out under `state_dir` (absolute). When `run_as` cannot
    /// reach `state_dir` (root working in a 0700 home), the cluster lives under
    /// `/var/tmp/signpost-<hash>` instead; a socket directory whose path is too
    /// long for a unix socket moves to `/tmp/signpost-<hash>`.
    fn new(state_dir: &Path, run_as: Option<&RunAs>) -> Self {
        let hash = path_hash(state_dir);
        let root = match run_as {
            Some(user) if !traversable_by(state_dir, user) => {
                PathBuf::from(format!("/var/tmp/signpost-{hash}"))
            }
            _ => state_dir.to_path_buf(),
        };
        let mut socket_dir = root.join("run");
        if socket_dir.as_os_str().len() > MAX_SOCKET_DIR_LEN {
            socket_dir = PathBuf::from(format!("/tmp/signpost-{hash}"));
        }
        ClusterPaths {
            data_dir: root.join("pgdata"),
            log_file: root.join("postgres.log"),
            port_file: state_dir.join("port"),
            socket_dir,
            root,
        }
    }
}

/// Starts (or reuses) the private cluster under `state_dir` and makes sure
/// `database` exists on it. This is step 3 of [`locate_database`].
async fn start_private_cluster(state_dir: &Path, database: &str) -> Result<LocatedDatabase, BootstrapError> {
    validate_name(database)?;
    let state_dir = std::path::absolute(state_dir).map_err(|e| {
        BootstrapError::io(format!("cannot resolve state directory {}", state_dir.display()), e)
    })?;
    create_dir_all(&state_dir).await?;
    let lock = lock_state_dir(&state_dir).await?;
    let run_as = run_as_user().await?;
    let paths = ClusterPaths::new(&state_dir, run_as.as_ref());
    if paths.root != state_dir {
        tracing::warn!(
            state_dir = %state_dir.display(),
            cluster = %paths.root.display(),
            "the PostgreSQL user cannot reach the state directory; keeping the private cluster elsewhere"
        );
    }
    let mut port = read_or_pick_port(&paths.port_file).await?;

    if !cluster_running(&paths.socket_dir, port).await {
        let preferred_major = read_pg_version(&paths.data_dir).await;
        let bindir = find_binaries(preferred_major.as_deref()).await.ok_or(BootstrapError::NoPostgres)?;
        tracing::info!(
            data_dir = %paths.data_dir.display(),
            bindir = %bindir.display(),
            "starting a private PostgreSQL cluster"
        );
        prepare_dir(&paths.root, None, 0o755).await?;
        if preferred_major.is_none() {
            init_cluster(&bindir, &paths, run_as.as_ref()).await?;
        }
        if !port_is_free(port) {
            port = pick_free_port()?;
            write_port(&paths.port_file, port).await?;
        }
        start_cluster(&bindir, &paths, port, run_as.as_ref()).await?;
    }
    drop(lock);

    let server_url = format!("postgres://{CLUSTER_SUPERUSER}@127.0.0.1:{port}/postgres");
    let options = parse_url(&server_url)?;
    let mut conn = connect_with_retry(&options, &server_url).await?;
    let created = ensure_database(&mut conn, database).await;
    close(conn).await;
    created?;
    Ok(LocatedDatabase {
        url: with_database(&server_url, database)?,
        origin: DatabaseOrigin::PrivateCluster { data_dir: paths.data_dir },
    })
}

/// Whether our cluster answers on its private socket directory (which no other
/// server uses, so an answer means it is ours).
async fn cluster_running(socket_dir: &Path, port: u16) -> bool {
    if !socket_dir.join(format!(".s.PGSQL.{port}")).exists() {
        return false;
    }
    let options = PgConnectOptions::new_without_pgpass()
        .socket(socket_dir)
        .port(port)
        .username(CLUSTER_SUPERUSER)
        .database("postgres");
    let target = format!("{} (port {port})", socket_dir.display());
    match connect(&options, &target, PROBE_TIMEOUT).await {
        Ok(conn) => {
            close(conn).await;
            true
        }
        Err(e) => {
            tracing::debug!(error = %e, "private cluster is not running");
            false
        }
    }
}

/// Runs `initdb` unless the data directory already holds a cluster.
async fn init_cluster(
    bindir: &Path,
    paths: &ClusterPaths,
    run_as: Option<&RunAs>,
) -> Result<(), BootstrapError> {
    let data_dir = &paths.data_dir;
    let initdb_error = |detail: String| BootstrapError::Initdb { data_dir: data_dir.clone(), detail };
    match tokio::fs::read_dir(data_dir).await {
        Ok(mut entries) => {
            let first = entries
                .next_entry()
                .await
                .map_err(|e| BootstrapError::io(format!("cannot list {}", data_dir.display()), e))?;
            if let Some(entry) = first {
                return Err(initdb_error(format!(
                    "the directory is not empty but holds no cluster (found {:?}); \
                     remove it to let Signpost create a fresh one",
                    entry.file_name()
                )));
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(BootstrapError::io(format!("cannot read {}", data_dir.display()), e));
        }
    }
    prepare_dir(data_dir, run_as, 0o700).await?;

    let mut command = pg_command(&bindir.join("initdb"), run_as);
    command
        .arg("-D")
        .arg(data_dir)
        .args(["-U", CLUSTER_SUPERUSER, "--auth=trust", "-E", "UTF8"])
        // C locale: works whatever LANG says, and sorts by bytes.
        .arg("--no-locale");
    let output = run(command, INITDB_TIMEOUT)
        .await
        .map_err(|e| initdb_error(format!("cannot run {}: {e}", bindir.join("initdb").display())))?;
    if !output.status.success() {
        return Err(initdb_error(format!("initdb {}:\n{}", output.status, command_output_text(&output))));
    }
    Ok(())
}

/// Runs `pg_ctl start` and waits until the server accepts connections.
async fn start_cluster(
    bindir: &Path,
    paths: &ClusterPaths,
    port: u16,
    run_as: Option<&RunAs>,
) -> Result<(), BootstrapError> {
    let start_error = |detail: String| BootstrapError::Start {
        data_dir: paths.data_dir.clone(),
        log_file: paths.log_file.clone(),
        detail,
    };
    prepare_dir(&paths.socket_dir, run_as, 0o700).await?;
    prepare_log_file(&paths.log_file, run_as).await?;

    let socket_dir = paths.socket_dir.to_string_lossy();
    let server_options = format!("-p {port} -k {} -c listen_addresses=127.0.0.1", shell_quote(&socket_dir));
    let pg_ctl = bindir.join("pg_ctl");
    let mut command = pg_command(&pg_ctl, run_as);
    command
        .arg("-D")
        .arg(&paths.data_dir)
        .arg("-l")
        .arg(&paths.log_file)
        .args(["-w", "-t", &START_WAIT_SECS.to_string(), "-o", &server_options, "start"])
        // Keep the server out of our process group: Ctrl-C on Signpost or
        // `cargo test` must not take the shared cluster down.
        .process_group(0);
    let output = run(command, Duration::from_secs(START_WAIT_SECS + 30))
        .await
        .map_err(|e| start_error(format!("cannot run {}: {e}", pg_ctl.display())))?;
    if !output.status.success() {
        let log = log_tail(&paths.log_file, 20).await;
        return Err(start_error(format!(
            "pg_ctl {}:\n{}\nlast lines of the server log:\n{log}",
            output.status,
            command_output_text(&output)
        )));
    }
    Ok(())
}

/// Stops the private cluster in `data_dir` (`pg_ctl stop -m fast`).
#[cfg(test)]
async fn stop_private_cluster(data_dir: &Path) -> Result<(), BootstrapError> {
    let major = read_pg_version(data_dir).await;
    let bindir = find_binaries(major.as_deref()).await.ok_or(BootstrapError::NoPostgres)?;
    let run_as = run_as_user().await?;
    let mut command = pg_command(&bindir.join("pg_ctl"), run_as.as_ref());
    command.arg("-D").arg(data_dir).args(["-m", "fast", "-w", "stop"]);
    let output = run(command, Duration::from_secs(90))
        .await
        .map_err(|e| BootstrapError::io("cannot run pg_ctl stop", e))?;
    if !output.status.success() {
        return Err(BootstrapError::io("pg_ctl stop failed", io::Error::other(command_output_text(&output))));
    }
    Ok(())
}

/// A command for a PostgreSQL binary, run as `run_as` when given.
fn pg_command(program: &Path, run_as: Option<&RunAs>) -> std::process::Command {
    let mut command = std::process::Command::new(program);
    // Absolute paths everywhere; "/" is a working directory any user may enter.
    command.current_dir("/").stdin(Stdio::null());
    if let Some(user) = run_as {
        // std drops supplementary groups (setgroups) before setuid.
        command.uid(user.uid).gid(user.gid);
    }
    command
}

/// Runs a command to completion with captured output and a time limit.
async fn run(command: std::process::Command, limit: Duration) -> io::Result<std::process::Output> {
    let mut command = tokio::process::Command::from(command);
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    command.kill_on_drop(true);
    match tokio::time::timeout(limit, command.output()).await {
        Ok(output) => output,
        Err(_) => {
            Err(io::Error::new(io::ErrorKind::TimedOut, format!("no result within {} s", limit.as_secs())))
        }
    }
}

fn command_output_text(output: &std::process::Output) -> String {
    let mut text = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stdout = stdout.trim();
    if !stdout.is_empty() {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(stdout);
    }
    text
}

async fn log_tail(path: &Path, lines: usize) -> String {
    match tokio::fs::read(path).await {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// `PG_VERSION` of an initialised data directory ("15", "9.6"), if any.
async fn read_pg_version(data_dir: &Path) -> Option<String> {
    let text = tokio::fs::read_to_string(data_dir.join("PG_VERSION")).await.ok()?;
    let version = text.trim();
    (!version.is_empty()).then(|| version.to_owned())
}

// ---------------------------------------------------------------------------
// Finding PostgreSQL binaries
// ---------------------------------------------------------------------------

/// Directory holding `initdb` and `pg_ctl`: preferably of major version
/// `preferred_major` (that of an existing data directory); otherwise from
/// `pg_config --bindir`, the newest `/usr/lib/postgresql/*/bin`, other usual
/// install locations, then `PATH`.
async fn find_binaries(preferred_major: Option<&str>) -> Option<PathBuf> {
    let candidates = binary_dir_candidates().await;
    if let Some(major) = preferred_major {
        for dir in &candidates {
            if binaries_major(dir).await.as_deref() == Some(major) {
                return Some(dir.clone());
            }
        }
    }
    candidates.into_iter().next()
}

/// All directories with both `initdb` and `pg_ctl`, best first, deduplicated.
async fn binary_dir_candidates() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut pg_config = std::process::Command::new("pg_config");
    pg_config.arg("--bindir");
    if let Ok(output) = run(pg_config, Duration::from_secs(10)).await
        && output.status.success()
    {
        let dir = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        if !dir.is_empty() {
            dirs.push(PathBuf::from(dir));
        }
    }
    dirs.extend(versioned_dirs("/usr/lib/postgresql", "", "bin"));
    dirs.extend(versioned_dirs("/usr/pgsql-", "", "bin"));
    dirs.extend(versioned_dirs("/opt/homebrew/opt/postgresql", "@", "bin"));
    dirs.extend(versioned_dirs("/usr/local/opt/postgresql", "@", "bin"));
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    let mut found: Vec<PathBuf> = Vec::new();
    for dir in dirs {
        if dir.join("initdb").is_file() && dir.join("pg_ctl").is_file() {
            let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
            if !found.contains(&dir) {
                found.push(dir);
            }
        }
    }
    found
}

/// `<base><sep><version>/<sub>` directories, newest version first. With an
/// empty `sep`, `base` is a directory whose entries are versions
/// (`/usr/lib/postgresql/15`); otherwise `base` is a name prefix
/// (`/usr/pgsql-15` uses sep "", `postgresql@16` uses sep "@").
fn versioned_dirs(base: &str, sep: &str, sub: &str) -> Vec<PathBuf> {
    let (parent, prefix) = if base.ends_with('-') || !sep.is_empty() {
        let path = Path::new(base);
        let parent = path.parent().unwrap_or(Path::new("/"));
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        (parent.to_path_buf(), format!("{name}{sep}"))
    } else {
        (PathBuf::from(base), String::new())
    };
    let Ok(entries) = std::fs::read_dir(&parent) else {
        return Vec::new();
    };
    let mut versions: Vec<(Vec<u32>, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let version = parse_version(name.strip_prefix(&prefix)?)?;
            Some((version, entry.path().join(sub)))
        })
        .collect();
    versions.sort_by(|a, b| b.0.cmp(&a.0));
    versions.into_iter().map(|(_, dir)| dir).collect()
}

/// "15" → [15], "9.6" → [9, 6], "16beta1" → [16]; None for non-versions.
fn parse_version(text: &str) -> Option<Vec<u32>> {
    let mut parts = Vec::new();
    for part in text.split('.') {
        let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
        if digits.is_empty() {
            break;
        }
        parts.push(digits.parse().ok()?);
        if digits.len() != part.len() {
            break;
        }
    }
    (!parts.is_empty()).then_some(parts)
}

/// Major version ("15", "9.6") of the binaries in `bindir`, from `pg_ctl --version`.
async fn binaries_major(bindir: &Path) -> Option<String> {
    let mut command = std::process::Command::new(bindir.join("pg_ctl"));
    command.arg("--version");
    let output = run(command, Duration::from_secs(10)).await.ok()?;
    major_from_version_output(&String::from_utf8_lossy(&output.stdout))
}

/// "pg_ctl (PostgreSQL) 15.8 (Debian 15.8-0+deb12u1)" → "15"; 9.x keeps its minor.
fn major_from_version_output(text: &str) -> Option<String> {
    let version = text.split(") ").nth(1)?.split_whitespace().next()?;
    let parts = parse_version(version)?;
    match parts.as_slice() {
        [major, minor, ..] if *major < 10 => Some(format!("{major}.{minor}")),
        [major, ..] => Some(major.to_string()),
        [] => None,
    }
}

// ---------------------------------------------------------------------------
// Users, permissions, ports, locking
// ---------------------------------------------------------------------------

/// Effective uid of this process: `/proc/self/status`, else `id -u`.
async fn effective_uid() -> Option<u32> {
    if let Ok(status) = tokio::fs::read_to_string("/proc/self/status").await {
        let uid = status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            .and_then(|euid| euid.parse().ok());
        if uid.is_some() {
            return uid;
        }
    }
    let mut command = std::process::Command::new("id");
    command.arg("-u");
    let output = run(command, Duration::from_secs(5)).await.ok()?;
    String::from_utf8_lossy(&output.stdout).trim().parse().ok()
}

/// Entries of `/etc/passwd` as (name, uid, gid).
fn passwd_entries() -> Vec<(String, u32, u32)> {
    let Ok(text) = std::fs::read_to_string("/etc/passwd") else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let _password = fields.next()?;
            let uid = fields.next()?.parse().ok()?;
            let gid = fields.next()?.parse().ok()?;
            Some((name.to_owned(), uid, gid))
        })
        .collect()
}

/// Name of the OS user we run as.
async fn current_user_name() -> Option<String> {
    if let Some(uid) = effective_uid().await
        && let Some((name, _, _)) = passwd_entries().into_iter().find(|(_, u, _)| *u == uid)
    {
        return Some(name);
    }
    ["USER", "LOGNAME"].into_iter().find_map(|var| std::env::var(var).ok().filter(|v| !v.is_empty()))
}

/// `None` unless we are root; then the account to run PostgreSQL as
/// (`postgres`, else `nobody`), since initdb and the server refuse root.
async fn run_as_user() -> Result<Option<RunAs>, BootstrapError> {
    if effective_uid().await != Some(0) {
        return Ok(None);
    }
    let entries = passwd_entries();
    for wanted in [CLUSTER_SUPERUSER, "nobody"] {
        if let Some((name, uid, gid)) = entries.iter().find(|(name, _, _)| name == wanted) {
            if *uid == 0 {
                continue;
            }
            return Ok(Some(RunAs { name: name.clone(), uid: *uid, gid: *gid }));
        }
    }
    Err(BootstrapError::Initdb {
        data_dir: PathBuf::new(),
        detail: "running as root, and PostgreSQL refuses to run as root, but there is \
                 neither a `postgres` nor a `nobody` user to run it as; create a \
                 `postgres` user or run Signpost as an ordinary user"
            .to_owned(),
    })
}

/// Whether `user` can enter `dir` and every directory above it, judging by the
/// permission bits (supplementary groups and ACLs are ignored, which errs on
/// the side of "no").
fn traversable_by(dir: &Path, user: &RunAs) -> bool {
    dir.ancestors().all(|ancestor| {
        let Ok(meta) = std::fs::metadata(ancestor) else {
            // Not created yet: we create it ourselves, world-traversable.
            return true;
        };
        let mode = meta.mode();
        if meta.uid() == user.uid {
            mode & 0o100 != 0
        } else if meta.gid() == user.gid {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        }
    })
}

async fn create_dir_all(dir: &Path) -> Result<(), BootstrapError> {
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| BootstrapError::io(format!("cannot create {}", dir.display()), e))
}

/// Creates `dir` if needed with `mode`, refusing symlinks and directories of
/// other users (it may live in /tmp), and hands it to `owner`.
async fn prepare_dir(dir: &Path, owner: Option<&RunAs>, mode: u32) -> Result<(), BootstrapError> {
    let created = match tokio::fs::symlink_metadata(dir).await {
        Ok(meta) => {
            let mine = effective_uid().await;
            let acceptable_owner =
                Some(meta.uid()) == mine || owner.is_some_and(|user| user.uid == meta.uid());
            if !meta.is_dir() || !acceptable_owner {
                return Err(BootstrapError::io(
                    format!("refusing to use {}", dir.display()),
                    io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        "it is not a directory owned by this user",
                    ),
                ));
            }
            false
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            create_dir_all(dir).await?;
            true
        }
        Err(e) => {
            return Err(BootstrapError::io(format!("cannot inspect {}", dir.display()), e));
        }
    };
    if created || owner.is_some() {
        tokio::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
            .await
            .map_err(|e| BootstrapError::io(format!("cannot chmod {}", dir.display()), e))?;
    }
    if let Some(user) = owner {
        chown(dir, user)?;
    }
    Ok(())
}

/// Makes sure the server log exists and that `owner` (who runs `pg_ctl`) can append to it.
async fn prepare_log_file(path: &Path, owner: Option<&RunAs>) -> Result<(), BootstrapError> {
    if let Some(user) = owner {
        tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .await
            .map_err(|e| BootstrapError::io(format!("cannot create {}", path.display()), e))?;
        chown(path, user)?;
    }
    Ok(())
}

fn chown(path: &Path, user: &RunAs) -> Result<(), BootstrapError> {
    std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
        .map_err(|e| BootstrapError::io(format!("cannot give {} to user {}", path.display(), user.name), e))
}

/// Holds an exclusive lock on `<state_dir>/lock` while the cluster is checked,
/// created and started, so concurrent callers (threads or processes) do not race.
async fn lock_state_dir(state_dir: &Path) -> Result<std::fs::File, BootstrapError> {
    let path = state_dir.join("lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| BootstrapError::io(format!("cannot open {}", path.display()), e))?;
    let deadline = Instant::now() + LOCK_TIMEOUT;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(BootstrapError::io(
                    format!("cannot lock {}", path.display()),
                    io::Error::new(io::ErrorKind::TimedOut, "another process held it for too long"),
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(BootstrapError::io(format!("cannot lock {}", path.display()), e));
            }
        }
    }
}

/// The port remembered in `port_file`, or a newly picked free one (remembered).
async fn read_or_pick_port(port_file: &Path) -> Result<u16, BootstrapError> {
    if let Ok(text) = tokio::fs::read_to_string(port_file).await
        && let Ok(port) = text.trim().parse::<u16>()
        && port != 0
    {
        return Ok(port);
    }
    let port = pick_free_port()?;
    write_port(port_file, port).await?;
    Ok(port)
}

async fn write_port(port_file: &Path, port: u16) -> Result<(), BootstrapError> {
    tokio::fs::write(port_file, format!("{port}\n"))
        .await
        .map_err(|e| BootstrapError::io(format!("cannot write {}", port_file.display()), e))
}

fn pick_free_port() -> Result<u16, BootstrapError> {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| BootstrapError::io("cannot find a free TCP port on 127.0.0.1", e))
}

fn port_is_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

fn path_hash(path: &Path) -> String {
    let digest = Sha256::digest(path.as_os_str().as_encoded_bytes());
    hex::encode(&digest[..8])
}

// ---------------------------------------------------------------------------
// Connections and SQL
// ---------------------------------------------------------------------------

fn parse_url(url: &str) -> Result<PgConnectOptions, BootstrapError> {
    PgConnectOptions::from_str(url)
        .map_err(|e| BootstrapError::InvalidUrl { url: redact(url), reason: e.to_string() })
}

/// Connects with a time limit; `target` names the server in errors.
async fn connect(
    options: &PgConnectOptions,
    target: &str,
    limit: Duration,
) -> Result<PgConnection, BootstrapError> {
    let result = match tokio::time::timeout(limit, PgConnection::connect_with(options)).await {
        Ok(result) => result,
        Err(_) => Err(sqlx::Error::Io(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no answer within {} s", limit.as_secs()),
        ))),
    };
    result.map_err(|source| BootstrapError::Connect { target: target.to_owned(), source })
}

/// Connects to a freshly started server, allowing it a moment to settle.
async fn connect_with_retry(
    options: &PgConnectOptions,
    target: &str,
) -> Result<PgConnection, BootstrapError> {
    let mut attempt = 0;
    loop {
        match connect(options, target, CONNECT_TIMEOUT).await {
            Ok(conn) => return Ok(conn),
            Err(e) if attempt >= 9 => return Err(e),
            Err(_) => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    }
}

/// Connects to a maintenance database of the server `options` describe:
/// `postgres`, else the URL's own database (unless it is `avoid`, the one
/// about to be created or dropped), else `template1`.
async fn connect_maintenance(
    options: &PgConnectOptions,
    target: &str,
    avoid: Option<&str>,
) -> Result<PgConnection, BootstrapError> {
    let mut databases = vec!["postgres"];
    if let Some(own) = options.get_database()
        && Some(own) != avoid
        && !databases.contains(&own)
    {
        databases.push(own);
    }
    databases.push("template1");
    let mut last_error = None;
    for database in databases {
        let options = options.clone().database(database);
        match connect(&options, target, CONNECT_TIMEOUT).await {
            Ok(conn) => return Ok(conn),
            Err(BootstrapError::Connect { target, source })
                if db_error_code(&source).as_deref() == Some("3D000") =>
            {
                last_error = Some(BootstrapError::Connect { target, source });
            }
            Err(e) => return Err(e),
        }
    }
    Err(last_error.unwrap_or(BootstrapError::InvalidUrl {
        url: target.to_owned(),
        reason: "no maintenance database".to_owned(),
    }))
}

/// Creates database `name` unless it exists; tolerates losing a creation race.
async fn ensure_database(conn: &mut PgConnection, name: &str) -> Result<(), BootstrapError> {
    let create_error = |source| BootstrapError::CreateDatabase { name: name.to_owned(), source };
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_optional(&mut *conn)
        .await
        .map_err(create_error)?;
    if exists.is_some() {
        return Ok(());
    }
    create_unless_exists(conn, name).await
}

/// Runs `CREATE DATABASE`, treating "already exists" (also when a concurrent
/// creator won the race) as success.
async fn create_unless_exists(conn: &mut PgConnection, name: &str) -> Result<(), BootstrapError> {
    let create_error = |source| BootstrapError::CreateDatabase { name: name.to_owned(), source };
    let statement = format!("CREATE DATABASE {}", quote_ident(name));
    let mut attempt = 0;
    loop {
        let result = sqlx::raw_sql(AssertSqlSafe(statement.clone())).execute(&mut *conn).await;
        match result {
            Ok(_) => {
                tracing::info!(database = name, "created database");
                return Ok(());
            }
            // duplicate_database, or unique_violation when a concurrent
            // CREATE DATABASE won the race for the catalog row.
            Err(e) if matches!(db_error_code(&e).as_deref(), Some("42P04" | "23505")) => {
                return Ok(());
            }
            // object_in_use: someone is connected to template1; retry shortly.
            Err(e) if db_error_code(&e).as_deref() == Some("55006") && attempt < 5 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
            Err(e) => return Err(create_error(e)),
        }
    }
}

async fn close(conn: PgConnection) {
    if let Err(e) = conn.close().await {
        tracing::debug!(error = %e, "closing a bootstrap connection");
    }
}

fn db_error_code(error: &sqlx::Error) -> Option<String> {
    match error {
        sqlx::Error::Database(db) => db.code().map(|code| code.into_owned()),
        _ => None,
    }
}

/// Accepts `[A-Za-z0-9_]{1,63}`, so names can be quoted and put in URLs as they are.
fn validate_name(name: &str) -> Result<(), BootstrapError> {
    let valid =
        !name.is_empty() && name.len() <= 63 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if valid { Ok(()) } else { Err(BootstrapError::InvalidName { name: name.to_owned() }) }
}

/// Quotes an SQL identifier (doubling embedded quotes).
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Single-quotes `text` for the shell `pg_ctl` passes `-o` through.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Percent-encodes everything but unreserved URL characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// Splits a URL into (scheme + "://" + authority, path, query without '?',
/// fragment including '#').
fn split_url(url: &str) -> Option<(&str, &str, &str, &str)> {
    let authority_start = url.find("://")? + 3;
    let authority_len = url[authority_start..].find(['/', '?', '#']).unwrap_or(url.len() - authority_start);
    let (head, rest) = url.split_at(authority_start + authority_len);
    let (rest, fragment) = match rest.find('#') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, query),
        None => (rest, ""),
    };
    Some((head, path, query, fragment))
}

/// `url` with its database replaced by `database` (a validated name), keeping
/// user, password, host and parameters.
fn with_database(url: &str, database: &str) -> Result<String, BootstrapError> {
    let invalid = |reason: &str| BootstrapError::InvalidUrl { url: redact(url), reason: reason.to_owned() };
    let (head, _path, query, fragment) = split_url(url).ok_or_else(|| invalid("expected postgres://..."))?;
    let query: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.is_empty() && pair.split('=').next() != Some("dbname"))
        .collect();
    let mut new_url = format!("{head}/{database}");
    if !query.is_empty() {
        new_url.push('?');
        new_url.push_str(&query.join("&"));
    }
    new_url.push_str(fragment);
    parse_url(&new_url)?;
    Ok(new_url)
}

/// `url` with any password replaced by `***`, for messages.
fn redact(url: &str) -> String {
    let Some((head, path, query, fragment)) = split_url(url) else {
        return url.to_owned();
    };
    let authority_start = head.find("://").map_or(0, |i| i + 3);
    let (scheme, authority) = head.split_at(authority_start);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let query: Vec<String> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some(("password", _)) => "password=***".to_owned(),
            _ => pair.to_owned(),
        })
        .collect();
    let mut out = format!("{scheme}{authority}{path}");
    if !query.is_empty() {
        out.push('?');
        out.push_str(&query.join("&"));
    }
    out.push_str(fragment);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    const LOCAL_SERVER: &str = "postgres://postgres@127.0.0.1:5432/postgres";

    fn unique(prefix: &str) -> String {
        format!("{prefix}_{:08x}", rand::rng().random::<u32>())
    }

    async fn current_database(url: &str) -> String {
        let mut conn = PgConnection::connect(url).await.unwrap();
        let name: String =
            sqlx::query_scalar("SELECT current_database()").fetch_one(&mut conn).await.unwrap();
        conn.close().await.unwrap();
        name
    }

    async fn database_exists(server_url: &str, name: &str) -> bool {
        let mut conn = PgConnection::connect(server_url).await.unwrap();
        let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
            .bind(name)
            .fetch_optional(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        found.is_some()
    }

    #[test]
    fn names_are_validated() {
        assert!(validate_name("signpost_test_1").is_ok());
        assert!(validate_name(&"a".repeat(63)).is_ok());
        for bad in ["", "a-b", "a b", "a\"b", "é", &"a".repeat(64)] {
            assert!(matches!(validate_name(bad), Err(BootstrapError::InvalidName { .. })), "{bad:?}");
        }
    }

    #[test]
    fn database_is_replaced_in_urls() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x1").unwrap(),
            "postgres://postgres@127.0.0.1:5432/x1"
        );
        assert_eq!(
            with_database("postgres://u:p%2Fw@db.example:6543", "x1").unwrap(),
            "postgres://u:p%2Fw@db.example:6543/x1"
        );
        assert_eq!(
            with_database("postgres:///postgres?host=/var/run/postgresql&user=me&dbname=zz", "x1").unwrap(),
            "postgres:///x1?host=/var/run/postgresql&user=me"
        );
        assert_eq!(
            with_database("postgresql://h/old?sslmode=disable", "x1").unwrap(),
            "postgresql://h/x1?sslmode=disable"
        );
        let options = PgConnectOptions::from_str(
            &with_database("postgres:///postgres?host=/var/run/postgresql&user=me", "x1").unwrap(),
        )
        .unwrap();
        assert_eq!(options.get_database(), Some("x1"));
        assert_eq!(options.get_username(), "me");
        assert_eq!(options.get_socket(), Some(&PathBuf::from("/var/run/postgresql")));
        assert!(with_database("not a url", "x1").is_err());
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://u:secret@h:1/db?password=x&sslmode=require"),
            "postgres://u:***@h:1/db?password=***&sslmode=require"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }

    #[test]
    fn versions_are_parsed() {
        assert_eq!(parse_version("15"), Some(vec![15]));
        assert_eq!(parse_version("9.6"), Some(vec![9, 6]));
        assert_eq!(parse_version("16beta1"), Some(vec![16]));
        assert_eq!(parse_version("main"), None);
        assert_eq!(
            major_from_version_output("pg_ctl (PostgreSQL) 15.8 (Debian 15.8-0+deb12u1)\n").as_deref(),
            Some("15")
        );
        assert_eq!(major_from_version_output("pg_ctl (PostgreSQL) 9.6.24").as_deref(), Some("9.6"));
    }

    #[test]
    fn no_postgres_message_says_what_to_do() {
        let text = BootstrapError::NoPostgres.to_string();
        assert!(text.contains("apt-get install postgresql"));
        assert!(text.contains("dnf install postgresql-server"));
        assert!(text.contains("brew install postgresql@16"));
        assert!(text.contains("DATABASE_URL=postgres://USER@HOST:PORT/DB"));
        assert!(text.lines().count() > 3);
    }

    #[test]
    fn long_socket_dirs_move_to_tmp() {
        let short = ClusterPaths::new(Path::new("/srv/app/.signpost"), None);
        assert_eq!(short.socket_dir, Path::new("/srv/app/.signpost/run"));
        assert_eq!(short.data_dir, Path::new("/srv/app/.signpost/pgdata"));
        let deep = PathBuf::from(format!("/{}/.signpost", "d".repeat(100)));
        let long = ClusterPaths::new(&deep, None);
        assert!(long.socket_dir.starts_with("/tmp"));
        assert!(long.socket_dir.as_os_str().len() <= MAX_SOCKET_DIR_LEN);
        assert_eq!(long.data_dir, deep.join("pgdata"));
    }

    #[tokio::test]
    async fn local_server_is_used_and_database_created() {
        let state_dir = std::env::temp_dir().join(unique("signpost_state"));
        let name = unique("bootstrap_local");
        let located = locate_database(None, &state_dir, &name).await.unwrap();
        assert_eq!(located.origin, DatabaseOrigin::LocalServer);
        assert_eq!(current_database(&located.url).await, name);
        // Second call finds the existing database.
        let again = locate_database(None, &state_dir, &name).await.unwrap();
        assert_eq!(again, located);
        drop_database(&located.url, &name).await.unwrap();
        assert!(!database_exists(LOCAL_SERVER, &name).await);
        assert!(!state_dir.exists(), "no private cluster expected");
    }

    #[tokio::test]
    async fn configured_url_is_returned_and_its_database_created() {
        let name = unique("bootstrap_conf");
        let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
        let located = locate_database(Some(&url), Path::new("/nonexistent"), "ignored").await.unwrap();
        assert_eq!(located.url, url);
        assert_eq!(located.origin, DatabaseOrigin::Configured);
        assert_eq!(current_database(&url).await, name);
        drop_database(LOCAL_SERVER, &name).await.unwrap();
        // Unreachable servers are not an error here.
        let dead = "postgres://postgres@127.0.0.1:1/x";
        let located = locate_database(Some(dead), Path::new("/nonexistent"), "x").await.unwrap();
        assert_eq!(located.url, dead);
    }

    #[tokio::test]
    async fn concurrent_creation_succeeds() {
        let name = unique("bootstrap_race");
        let results = futures_join_all((0..8).map(|_| {
            let name = name.clone();
            async move { create_database(LOCAL_SERVER, &name).await }
        }))
        .await;
        for result in results {
            assert_eq!(result.unwrap(), format!("postgres://postgres@127.0.0.1:5432/{name}"));
        }
        assert!(database_exists(LOCAL_SERVER, &name).await);
        drop_database(LOCAL_SERVER, &name).await.unwrap();
    }

    #[tokio::test]
    async fn racing_create_statements_both_succeed() {
        let name = unique("bootstrap_stmt_race");
        let mut conns = Vec::new();
        for _ in 0..6 {
            conns.push(PgConnection::connect(LOCAL_SERVER).await.unwrap());
        }
        let results = futures_join_all(conns.into_iter().map(|mut conn| {
            let name = name.clone();
            async move {
                // Skips the existence check, so the server reports the race.
                let result = create_unless_exists(&mut conn, &name).await;
                // Sequentially again: 42P04 duplicate_database.
                let again = create_unless_exists(&mut conn, &name).await;
                conn.close().await.unwrap();
                (result, again)
            }
        }))
        .await;
        for (result, again) in results {
            result.unwrap();
            again.unwrap();
        }
        drop_database(LOCAL_SERVER, &name).await.unwrap();
    }

    /// Runs futures concurrently on the current task (no futures crate here).
    async fn futures_join_all<F: std::future::Future + Send + 'static>(
        futures: impl Iterator<Item = F>,
    ) -> Vec<F::Output>
    where
        F::Output: Send + 'static,
    {
        let handles: Vec<_> = futures.map(tokio::spawn).collect();
        let mut outputs = Vec::new();
        for handle in handles {
            outputs.push(handle.await.unwrap());
        }
        outputs
    }

    #[tokio::test]
    async fn drop_database_removes_it_even_when_in_use() {
        let name = unique("bootstrap_drop");
        let url = create_database(LOCAL_SERVER, &name).await.unwrap();
        let mut session = PgConnection::connect(&url).await.unwrap();
        drop_database(&url, &name).await.unwrap();
        assert!(!database_exists(LOCAL_SERVER, &name).await);
        assert!(sqlx::query("SELECT 1").execute(&mut session).await.is_err());
        // Dropping a missing database is fine; bad names are refused.
        drop_database(LOCAL_SERVER, &name).await.unwrap();
        assert!(matches!(
            drop_database(LOCAL_SERVER, "x; DROP").await,
            Err(BootstrapError::InvalidName { .. })
        ));
        assert!(matches!(
            create_database(LOCAL_SERVER, "a\"b").await,
            Err(BootstrapError::InvalidName { .. })
        ));
    }

    #[tokio::test]
    async fn unreachable_server_is_a_connect_error() {
        let err = create_database("postgres://postgres:pw@127.0.0.1:1/postgres", "x").await.unwrap_err();
        assert!(matches!(err, BootstrapError::Connect { .. }), "{err}");
        assert!(!err.to_string().contains("pw@"), "{err}");
    }

    async fn private_cluster_round_trip(state_dir: &Path) {
        let name = unique("bootstrap_private");
        let located = start_private_cluster(state_dir, &name).await.unwrap();
        let DatabaseOrigin::PrivateCluster { data_dir } = &located.origin else {
            panic!("{located:?}");
        };
        assert!(data_dir.join("PG_VERSION").is_file());
        let port: u16 = std::fs::read_to_string(state_dir.join("port")).unwrap().trim().parse().unwrap();
        assert_eq!(located.url, format!("postgres://postgres@127.0.0.1:{port}/{name}"));
        assert_eq!(current_database(&located.url).await, name);

        // Concurrent callers reuse the running cluster.
        let (a, b) = tokio::join!(
            start_private_cluster(state_dir, &name),
            start_private_cluster(state_dir, "other_db")
        );
        assert_eq!(a.unwrap(), located);
        assert_eq!(current_database(&b.unwrap().url).await, "other_db");

        // Stopped, it is started again from the existing data directory.
        stop_private_cluster(data_dir).await.unwrap();
        let restarted = start_private_cluster(state_dir, &name).await.unwrap();
        assert_eq!(restarted, located);
        assert_eq!(current_database(&restarted.url).await, name);

        stop_private_cluster(data_dir).await.unwrap();
        let _ = std::fs::remove_dir_all(data_dir.parent().unwrap());
        let _ = std::fs::remove_dir_all(state_dir);
    }

    #[tokio::test]
    async fn private_cluster_is_initialised_started_and_reused() {
        let parent = std::env::temp_dir().join(unique("signpost_pc"));
        private_cluster_round_trip(&parent.join(".signpost")).await;
        let _ = std::fs::remove_dir_all(&parent);
    }

    #[tokio::test]
    async fn private_cluster_moves_out_of_unreachable_state_dirs_as_root() {
        if effective_uid().await != Some(0) {
            return;
        }
        let parent = std::env::temp_dir().join(unique("signpost_private_home"));
        std::fs::create_dir(&parent).unwrap();
        std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o700)).unwrap();
        let state_dir = parent.join(".signpost");
        private_cluster_round_trip(&state_dir).await;
        let _ = std::fs::remove_dir_all(&parent);
    }
}
