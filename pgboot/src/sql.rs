//! Connections to a server, database creation, and the URL and quoting
//! helpers. The only statements are `CREATE DATABASE`, `DROP DATABASE` and
//! `pg_database` lookups.

use std::fmt::Write as _;
use std::io;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, Connection};

use crate::{BootstrapError, CONNECT_TIMEOUT};

pub(crate) fn parse_url(url: &str) -> Result<PgConnectOptions, BootstrapError> {
    PgConnectOptions::from_str(url)
        .map_err(|e| BootstrapError::InvalidUrl { url: redact(url), reason: e.to_string() })
}

/// Connects with a time limit; `target` names the server in errors.
pub(crate) async fn connect(
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
pub(crate) async fn connect_with_retry(
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
pub(crate) async fn connect_maintenance(
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
pub(crate) async fn ensure_database(conn: &mut PgConnection, name: &str) -> Result<(), BootstrapError> {
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
pub(crate) async fn create_unless_exists(conn: &mut PgConnection, name: &str) -> Result<(), BootstrapError> {
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

pub(crate) async fn close(conn: PgConnection) {
    if let Err(e) = conn.close().await {
        tracing::debug!(error = %e, "closing a bootstrap connection");
    }
}

pub(crate) fn db_error_code(error: &sqlx::Error) -> Option<String> {
    match error {
        sqlx::Error::Database(db) => db.code().map(|code| code.into_owned()),
        _ => None,
    }
}

/// Accepts `[A-Za-z0-9_]{1,63}`, so names can be quoted and put in URLs as they are.
pub(crate) fn validate_name(name: &str) -> Result<(), BootstrapError> {
    let valid =
        !name.is_empty() && name.len() <= 63 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if valid { Ok(()) } else { Err(BootstrapError::InvalidName { name: name.to_owned() }) }
}

/// Quotes an SQL identifier (doubling embedded quotes).
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Single-quotes `text` for the shell `pg_ctl` passes `-o` through.
pub(crate) fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Percent-encodes everything but unreserved URL characters.
pub(crate) fn percent_encode(text: &str) -> String {
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
pub(crate) fn split_url(url: &str) -> Option<(&str, &str, &str, &str)> {
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
pub(crate) fn with_database(url: &str, database: &str) -> Result<String, BootstrapError> {
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
pub(crate) fn redact(url: &str) -> String {
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
