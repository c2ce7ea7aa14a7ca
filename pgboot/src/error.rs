//! The one error type of signpost-pgboot.

use std::io;
use std::path::PathBuf;

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
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        BootstrapError::Io { context: context.into(), source }
    }
}
