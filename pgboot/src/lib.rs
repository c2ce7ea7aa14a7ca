//! signpost-pgboot: the zero-config PostgreSQL manager. It finds or starts a
//! PostgreSQL server so that `signpost serve` and `cargo test` work on a fresh
//! machine without a `DATABASE_URL`, and it starts throwaway private clusters
//! for tests that stop and kill their database.
//!
//! Invariant: this crate knows how to find or start a PostgreSQL server and
//! how to create or drop a database on it. It knows no Signpost table and
//! runs no query of Signpost's schema (that is signpost-store's job); the
//! only SQL here is `CREATE DATABASE`, `DROP DATABASE` and catalog lookups.
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
//!
//! [`PrivateCluster`] starts a cluster in a directory of the caller's choosing
//! (socket only, or 127.0.0.1 on a port outside the ephemeral range), whatever
//! else runs on the machine; tests use it to stop, kill and restart their own
//! database.
//!
//! Modules: `cluster` (initdb, pg_ctl, finding the binaries), `os` (the OS
//! user to run as, ownership, the state-dir lock, ports), `sql` (connections,
//! database creation, URLs).

mod cluster;
mod error;
mod os;
mod sql;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::AssertSqlSafe;
use sqlx::postgres::PgConnectOptions;

pub use cluster::{ClusterOptions, Listen, PrivateCluster, StopMode};
pub use error::BootstrapError;

use cluster::start_private_cluster;
use os::current_user_name;
use sql::{
    close, connect, connect_maintenance, db_error_code, ensure_database, parse_url, percent_encode,
    quote_ident, redact, validate_name, with_database,
};

/// How long a probe of a possible local server may take.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long connecting to a server we know should be there may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `initdb` may run.
pub(crate) const INITDB_TIMEOUT: Duration = Duration::from_secs(180);
/// How long `pg_ctl start` waits for the server (its `-t`), in seconds.
pub(crate) const START_WAIT_SECS: u64 = 60;
/// How long we wait for another process that is starting the same cluster.
pub(crate) const LOCK_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest socket directory we use; the socket path adds `/.s.PGSQL.NNNNN`
/// and must stay below the 104/108-byte `sun_path` limit.
pub(crate) const MAX_SOCKET_DIR_LEN: usize = 80;
/// Socket directory of distribution-packaged servers (Debian, Ubuntu, Fedora).
pub(crate) const SYSTEM_SOCKET_DIR: &str = "/var/run/postgresql";
/// Role created by `initdb -U` in a private cluster.
pub(crate) const CLUSTER_SUPERUSER: &str = "postgres";

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
