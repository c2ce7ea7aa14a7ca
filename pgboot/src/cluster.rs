//! Private clusters: the state directory's shared cluster (step 3 of
//! [`crate::locate_database`]), [`PrivateCluster`] for callers that manage
//! their own, and running `initdb` / `pg_ctl` from the machine's PostgreSQL
//! install.

use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;

use crate::os::{
    RunAs, create_dir_all, lock_state_dir, path_hash, pick_free_port, port_is_free, prepare_dir,
    prepare_log_file, read_or_pick_port, run_as_user, traversable_by, write_port,
};
use crate::sql::{
    close, connect, connect_with_retry, ensure_database, parse_url, shell_quote, validate_name, with_database,
};
use crate::{
    BootstrapError, CLUSTER_SUPERUSER, DatabaseOrigin, INITDB_TIMEOUT, LocatedDatabase, MAX_SOCKET_DIR_LEN,
    PROBE_TIMEOUT, START_WAIT_SECS,
};

/// File system layout of a private cluster.
#[derive(Debug, Clone)]
pub(crate) struct ClusterPaths {
    /// Directory holding the data directory and the log (normally the state dir).
    pub(crate) root: PathBuf,
    pub(crate) data_dir: PathBuf,
    pub(crate) log_file: PathBuf,
    pub(crate) socket_dir: PathBuf,
    /// Remembers the port; always in the state dir.
    pub(crate) port_file: PathBuf,
}

impl ClusterPaths {
    /// Lays the cluster out under `state_dir` (absolute). When `run_as` cannot
    /// reach `state_dir` (root working in a 0700 home), the cluster lives under
    /// `/var/tmp/signpost-<hash>` instead; a socket directory whose path is too
    /// long for a unix socket moves to `/tmp/signpost-<hash>`.
    pub(crate) fn new(state_dir: &Path, run_as: Option<&RunAs>) -> Self {
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
pub(crate) async fn start_private_cluster(
    state_dir: &Path,
    database: &str,
) -> Result<LocatedDatabase, BootstrapError> {
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
            init_cluster(&bindir, &paths, run_as.as_ref(), false).await?;
        }
        if !port_is_free(port) {
            port = pick_free_port()?;
            write_port(&paths.port_file, port).await?;
        }
        start_cluster(&bindir, &paths, port, run_as.as_ref(), "127.0.0.1", &[]).await?;
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
pub(crate) async fn cluster_running(socket_dir: &Path, port: u16) -> bool {
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
pub(crate) async fn init_cluster(
    bindir: &Path,
    paths: &ClusterPaths,
    run_as: Option<&RunAs>,
    no_sync: bool,
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
    if no_sync {
        command.arg("--no-sync");
    }
    let output = run(command, INITDB_TIMEOUT)
        .await
        .map_err(|e| initdb_error(format!("cannot run {}: {e}", bindir.join("initdb").display())))?;
    if !output.status.success() {
        return Err(initdb_error(format!("initdb {}:\n{}", output.status, command_output_text(&output))));
    }
    Ok(())
}

/// Runs `pg_ctl start` and waits until the server accepts connections.
pub(crate) async fn start_cluster(
    bindir: &Path,
    paths: &ClusterPaths,
    port: u16,
    run_as: Option<&RunAs>,
    listen_addresses: &str,
    settings: &[(String, String)],
) -> Result<(), BootstrapError> {
    let start_error = |detail: String| BootstrapError::Start {
        data_dir: paths.data_dir.clone(),
        log_file: paths.log_file.clone(),
        detail,
    };
    prepare_dir(&paths.socket_dir, run_as, 0o700).await?;
    prepare_log_file(&paths.log_file, run_as).await?;

    let socket_dir = paths.socket_dir.to_string_lossy();
    let mut server_options = format!(
        "-p {port} -k {} -c {}",
        shell_quote(&socket_dir),
        shell_quote(&format!("listen_addresses={listen_addresses}"))
    );
    for (name, value) in settings {
        server_options.push_str(" -c ");
        server_options.push_str(&shell_quote(&format!("{name}={value}")));
    }
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
pub(crate) async fn stop_private_cluster(data_dir: &Path) -> Result<(), BootstrapError> {
    let major = read_pg_version(data_dir).await;
    let bindir = find_binaries(major.as_deref()).await.ok_or(BootstrapError::NoPostgres)?;
    let run_as = run_as_user().await?;
    stop_cluster(&bindir, data_dir, run_as.as_ref(), StopMode::Fast).await
}

/// `pg_ctl stop -m <mode>`, waiting until the server is gone.
async fn stop_cluster(
    bindir: &Path,
    data_dir: &Path,
    run_as: Option<&RunAs>,
    mode: StopMode,
) -> Result<(), BootstrapError> {
    let mut command = pg_command(&bindir.join("pg_ctl"), run_as);
    command.arg("-D").arg(data_dir).args(["-m", mode.as_arg(), "-w", "-t", "60", "stop"]);
    let output = run(command, Duration::from_secs(90))
        .await
        .map_err(|e| BootstrapError::io("cannot run pg_ctl stop", e))?;
    if !output.status.success() {
        return Err(BootstrapError::io("pg_ctl stop failed", io::Error::other(command_output_text(&output))));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// A private cluster in a directory of the caller's choosing
// ---------------------------------------------------------------------------

/// How a [`PrivateCluster`] can be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listen {
    /// Only over the Unix socket in its socket directory
    /// (`listen_addresses=''`), so stopping it leaves no TCP port in
    /// TIME_WAIT to block the next start; the port only names the socket.
    SocketOnly,
    /// Also on 127.0.0.1, at a free port outside the ephemeral range
    /// 32768–60999 (so no client connection can hold it when it restarts).
    Loopback,
}

/// How to set up a [`PrivateCluster`].
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Socket only, or also TCP on loopback.
    pub listen: Listen,
    /// Server settings given as `-c name=value` at every start
    /// (e.g. `("fsync", "off")` for a throwaway cluster).
    pub settings: Vec<(String, String)>,
    /// `initdb --no-sync`: faster, for a cluster that needs not survive a
    /// crash of the machine.
    pub no_sync: bool,
}

impl Default for ClusterOptions {
    /// Socket only, default settings, a durable `initdb`.
    fn default() -> Self {
        ClusterOptions { listen: Listen::SocketOnly, settings: Vec::new(), no_sync: false }
    }
}

/// How `pg_ctl stop` ends the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// Sessions are ended and the server shuts down cleanly.
    Fast,
    /// Every server process quits at once; the next start runs crash recovery.
    Immediate,
}

impl StopMode {
    fn as_arg(self) -> &'static str {
        match self {
            StopMode::Fast => "fast",
            StopMode::Immediate => "immediate",
        }
    }
}

/// A cluster in a directory of the caller's choosing, started from the
/// machine's PostgreSQL install whatever other server runs (unlike
/// [`crate::locate_database`], which prefers a running one). The caller
/// stops, restarts and removes it; dropping the value leaves it running.
/// When we are root, the server runs as the `postgres` OS user (or `nobody`).
#[derive(Debug)]
pub struct PrivateCluster {
    paths: ClusterPaths,
    bindir: PathBuf,
    port: u16,
    run_as: Option<RunAs>,
    options: ClusterOptions,
}

impl PrivateCluster {
    /// Initialises a cluster under `dir` (made if missing; the cluster's
    /// data directory is `dir/pgdata`, which must be absent, empty, or hold
    /// a cluster of an earlier start) and starts it. The caller should keep
    /// `dir` short: the socket directory moves to `/tmp` when `dir` is too
    /// long for a socket path, and the whole cluster to
    /// `/var/tmp/signpost-<hash>` when the OS user it runs as cannot reach
    /// `dir` (as for the state directory's cluster).
    pub async fn start(dir: &Path, options: ClusterOptions) -> Result<PrivateCluster, BootstrapError> {
        let dir = std::path::absolute(dir)
            .map_err(|e| BootstrapError::io(format!("cannot resolve {}", dir.display()), e))?;
        let run_as = run_as_user().await?;
        let paths = ClusterPaths::new(&dir, run_as.as_ref());
        let existing_major = read_pg_version(&paths.data_dir).await;
        let bindir = find_binaries(existing_major.as_deref()).await.ok_or(BootstrapError::NoPostgres)?;
        let port = match options.listen {
            Listen::SocketOnly => crate::os::socket_port(),
            Listen::Loopback => pick_free_port()?,
        };
        prepare_dir(&paths.root, None, 0o755).await?;
        if existing_major.is_none() {
            init_cluster(&bindir, &paths, run_as.as_ref(), options.no_sync).await?;
        }
        let cluster = PrivateCluster { paths, bindir, port, run_as, options };
        cluster.resume().await?;
        Ok(cluster)
    }

    /// The cluster's data directory (holds `postmaster.pid` while it runs).
    pub fn data_dir(&self) -> &Path {
        &self.paths.data_dir
    }

    /// The directory of the server's Unix socket.
    pub fn socket_dir(&self) -> &Path {
        &self.paths.socket_dir
    }

    /// The server log.
    pub fn log_file(&self) -> &Path {
        &self.paths.log_file
    }

    /// The port: on 127.0.0.1 with [`Listen::Loopback`], otherwise only the
    /// socket's name (`.s.PGSQL.<port>`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `name` as the `postgres` role: over TCP with
    /// [`Listen::Loopback`], else over the socket. The database is not created.
    pub fn url(&self, name: &str) -> String {
        match self.options.listen {
            Listen::Loopback => format!("postgres://{CLUSTER_SUPERUSER}@127.0.0.1:{}/{name}", self.port),
            Listen::SocketOnly => format!(
                "postgres:///{name}?host={}&port={}&user={CLUSTER_SUPERUSER}",
                crate::sql::percent_encode(&self.paths.socket_dir.to_string_lossy()),
                self.port
            ),
        }
    }

    /// Starts the stopped (or killed) cluster again on the same port and
    /// waits until it accepts connections.
    pub async fn resume(&self) -> Result<(), BootstrapError> {
        let listen_addresses = match self.options.listen {
            Listen::SocketOnly => "",
            Listen::Loopback => "127.0.0.1",
        };
        let run_as = self.run_as.as_ref();
        start_cluster(&self.bindir, &self.paths, self.port, run_as, listen_addresses, &self.options.settings)
            .await?;
        let options = PgConnectOptions::new_without_pgpass()
            .socket(&self.paths.socket_dir)
            .port(self.port)
            .username(CLUSTER_SUPERUSER)
            .database("postgres");
        let target = format!("{} (port {})", self.paths.socket_dir.display(), self.port);
        close(connect_with_retry(&options, &target).await?).await;
        Ok(())
    }

    /// Stops the cluster (`pg_ctl stop -m <mode>`), waiting until it is gone.
    pub async fn stop(&self, mode: StopMode) -> Result<(), BootstrapError> {
        stop_cluster(&self.bindir, &self.paths.data_dir, self.run_as.as_ref(), mode).await
    }
}

/// A command for a PostgreSQL binary, run as `run_as` when given.
pub(crate) fn pg_command(program: &Path, run_as: Option<&RunAs>) -> std::process::Command {
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
pub(crate) async fn run(command: std::process::Command, limit: Duration) -> io::Result<std::process::Output> {
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

pub(crate) fn command_output_text(output: &std::process::Output) -> String {
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

pub(crate) async fn log_tail(path: &Path, lines: usize) -> String {
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
pub(crate) async fn read_pg_version(data_dir: &Path) -> Option<String> {
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
pub(crate) async fn find_binaries(preferred_major: Option<&str>) -> Option<PathBuf> {
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
pub(crate) async fn binary_dir_candidates() -> Vec<PathBuf> {
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
pub(crate) fn versioned_dirs(base: &str, sep: &str, sub: &str) -> Vec<PathBuf> {
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
pub(crate) fn parse_version(text: &str) -> Option<Vec<u32>> {
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
pub(crate) async fn binaries_major(bindir: &Path) -> Option<String> {
    let mut command = std::process::Command::new(bindir.join("pg_ctl"));
    command.arg("--version");
    let output = run(command, Duration::from_secs(10)).await.ok()?;
    major_from_version_output(&String::from_utf8_lossy(&output.stdout))
}

/// "pg_ctl (PostgreSQL) 15.8 (Debian 15.8-0+deb12u1)" → "15"; 9.x keeps its minor.
pub(crate) fn major_from_version_output(text: &str) -> Option<String> {
    let version = text.split(") ").nth(1)?.split_whitespace().next()?;
    let parts = parse_version(version)?;
    match parts.as_slice() {
        [major, minor, ..] if *major < 10 => Some(format!("{major}.{minor}")),
        [major, ..] => Some(major.to_string()),
        [] => None,
    }
}
