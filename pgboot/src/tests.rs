//! Unit tests of the crate, against the real local server and a real private cluster.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rand::Rng;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};

use super::*;
use crate::cluster::{ClusterPaths, major_from_version_output, parse_version, stop_private_cluster};
use crate::os::effective_uid;
use crate::sql::{create_unless_exists, redact, validate_name, with_database};

const LOCAL_SERVER: &str = "postgres://postgres@127.0.0.1:5432/postgres";

fn unique(prefix: &str) -> String {
    format!("{prefix}_{:08x}", rand::rng().random::<u32>())
}

async fn current_database(url: &str) -> String {
    let mut conn = PgConnection::connect(url).await.unwrap();
    let name: String = sqlx::query_scalar("SELECT current_database()").fetch_one(&mut conn).await.unwrap();
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
    assert!(matches!(drop_database(LOCAL_SERVER, "x; DROP").await, Err(BootstrapError::InvalidName { .. })));
    assert!(matches!(create_database(LOCAL_SERVER, "a\"b").await, Err(BootstrapError::InvalidName { .. })));
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
    let (a, b) =
        tokio::join!(start_private_cluster(state_dir, &name), start_private_cluster(state_dir, "other_db"));
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

#[test]
fn cluster_ports_are_outside_the_ephemeral_range() {
    for _ in 0..50 {
        let port = crate::os::pick_free_port().unwrap();
        assert!((20_000..32_768).contains(&port), "{port}");
        assert!((20_000..32_768).contains(&crate::os::socket_port()));
    }
}

async fn setting(url: &str, name: &str) -> String {
    let mut conn = PgConnection::connect(url).await.unwrap();
    let value: String =
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SHOW {name}"))).fetch_one(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    value
}

#[tokio::test]
async fn socket_only_cluster_starts_stops_and_resumes() {
    let dir = PathBuf::from(format!("/tmp/pgboot-{:08x}", rand::rng().random::<u32>()));
    let options = ClusterOptions {
        listen: Listen::SocketOnly,
        settings: vec![("fsync".into(), "off".into()), ("max_connections".into(), "50".into())],
        no_sync: true,
    };
    let cluster = PrivateCluster::start(&dir, options).await.unwrap();
    assert!(cluster.data_dir().join("PG_VERSION").is_file());
    assert!(cluster.socket_dir().starts_with(&dir));
    assert!((20_000..32_768).contains(&cluster.port()));
    let url = cluster.url("postgres");
    assert_eq!(setting(&url, "listen_addresses").await, "");
    assert_eq!(setting(&url, "fsync").await, "off");
    assert_eq!(setting(&url, "max_connections").await, "50");
    let db_url = create_database(&url, "pgboot_socket").await.unwrap();
    assert_eq!(current_database(&db_url).await, "pgboot_socket");

    // Immediate stop, then a start from the same data directory on the same socket.
    cluster.stop(StopMode::Immediate).await.unwrap();
    assert!(PgConnection::connect(&url).await.is_err());
    cluster.resume().await.unwrap();
    assert_eq!(current_database(&db_url).await, "pgboot_socket");
    assert_eq!(setting(&url, "fsync").await, "off");

    // A second start in the same directory reuses the stopped cluster.
    cluster.stop(StopMode::Fast).await.unwrap();
    let again = PrivateCluster::start(&dir, ClusterOptions::default()).await.unwrap();
    assert_eq!(current_database(&again.url("pgboot_socket")).await, "pgboot_socket");
    again.stop(StopMode::Fast).await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn loopback_cluster_listens_on_a_port_outside_the_ephemeral_range() {
    let dir = PathBuf::from(format!("/tmp/pgboot-{:08x}", rand::rng().random::<u32>()));
    let options = ClusterOptions { listen: Listen::Loopback, no_sync: true, ..ClusterOptions::default() };
    let cluster = PrivateCluster::start(&dir, options).await.unwrap();
    let port = cluster.port();
    assert!((20_000..32_768).contains(&port));
    let url = cluster.url("postgres");
    assert_eq!(url, format!("postgres://postgres@127.0.0.1:{port}/postgres"));
    assert_eq!(setting(&url, "listen_addresses").await, "127.0.0.1");
    cluster.stop(StopMode::Fast).await.unwrap();
    assert!(PgConnection::connect(&url).await.is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}
