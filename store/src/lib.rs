//! signpost-store: the only crate that knows SQL. Queries over the one
//! schema in `migrations/`, change batches as single transactions that also
//! append to the change log and `NOTIFY signpost_changes`, the change feed the
//! DNS servers follow. (Finding or starting a server is signpost-pgboot.)

pub mod api;
mod changes;
pub mod feed;
pub mod health;
pub mod readiness;
pub mod routing;
pub mod routing_api;
mod rows;
pub mod secrets;
pub mod tenancy;
pub mod usage;

use std::time::Duration;

use rand::RngCore;
use sha2::{Digest, Sha256};
use signpost_core::{HostedZone, RecordSet, ValidationError};
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Row};

pub use changes::{
    Change, ChangeAction, ChangeInfo, ChangeStatus, MAX_BATCH_RECORDS, MAX_BATCH_VALUE_CHARS, ZoneCheck,
    apply_changes_in,
};
pub use feed::{ChangeBatch, ChangeFeed, ChangeKind, ChangeRow, NewChange};
use rows::RrsetRow;

/// The schema's migrations, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// The channel every committed change is announced on; the payload is its seq.
pub const CHANGES_CHANNEL: &str = "signpost_changes";

/// A DNS server whose heartbeat is older than this no longer counts as live.
pub const DNS_SERVER_LIVENESS: Duration = Duration::from_secs(30);

/// A DNS server's row is deleted once its heartbeat is this old (a server
/// that died without saying so), so the table stays as small as the fleet.
pub const DNS_SERVER_RETENTION: Duration = Duration::from_secs(600);

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// PostgreSQL cannot be reached (connection refused, pool timed out...).
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    /// Applying migrations failed.
    #[error("migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The input failed validation.
    #[error("{0}")]
    Invalid(#[from] ValidationError),
    /// The change conflicts with what is stored (409).
    #[error("{message}")]
    Conflict {
        /// Field of the input that conflicts.
        field: String,
        /// What conflicts.
        message: String,
    },
    /// The object does not exist (or belongs to another account).
    #[error("{0} not found")]
    NotFound(String),
    /// The command would exceed one of the installation's quotas.
    #[error(transparent)]
    LimitExceeded(#[from] tenancy::LimitExceeded),
    /// A secret could not be sealed or opened (master key missing or wrong).
    #[error(transparent)]
    Secrets(#[from] secrets::SecretsError),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e),
            other => StoreError::Database(other),
        }
    }
}

impl StoreError {
    /// Whether the error means PostgreSQL is unreachable (retry later, 503).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// Result of the store.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// An account just created, with its first API key (shown once).
#[derive(Debug, Clone)]
pub struct NewAccount {
    /// Account id.
    pub account_id: String,
    /// The API key's secret.
    pub api_key: String,
}

/// Settings for zones created by Signpost (SOA and NS of a new zone).
#[derive(Debug, Clone)]
pub struct ZoneDefaults {
    /// The name servers written into NS and the SOA's MNAME.
    pub nameservers: Vec<String>,
}

impl Default for ZoneDefaults {
    fn default() -> Self {
        ZoneDefaults { nameservers: vec!["ns1.signpost.test.".into(), "ns2.signpost.test.".into()] }
    }
}

/// A handle on the database, with the installation's tenancy rules.
#[derive(Clone)]
pub struct Store {
    pool: PgPool,
    rules: tenancy::TenancyRules,
    /// Seals and opens stored secrets (SigV4 secret keys); none: refused.
    master_key: Option<std::sync::Arc<secrets::MasterKeySource>>,
}

impl Store {
    /// Connects (lazily: a down database is reported by the first query, so
    /// services start and recover by themselves).
    pub fn connect_lazy(url: &str) -> Result<Store> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(3))
            .connect_lazy(url)?;
        Ok(Store { pool, rules: tenancy::TenancyRules::default(), master_key: None })
    }

    /// The same handle sealing and opening secrets with `source`'s master key.
    pub fn with_master_key(mut self, source: secrets::MasterKeySource) -> Store {
        self.master_key = Some(std::sync::Arc::new(source));
        self
    }

    /// Loads (or makes) the master key now: `Ok` when secrets can be sealed
    /// and opened. Lets a command fail before it changes anything.
    pub fn master_key_ready(&self) -> Result<()> {
        self.master_key.as_ref().ok_or(secrets::SecretsError::NotConfigured)?.get()?;
        Ok(())
    }

    /// The same handle applying `rules` (quotas, public-suffix zones).
    pub fn with_rules(mut self, rules: tenancy::TenancyRules) -> Store {
        self.rules = rules;
        self
    }

    /// The tenancy rules this handle applies.
    pub fn rules(&self) -> &tenancy::TenancyRules {
        &self.rules
    }

    /// Connects and checks that the database answers.
    pub async fn connect(url: &str) -> Result<Store> {
        let store = Store::connect_lazy(url)?;
        sqlx::query("SELECT 1").execute(&store.pool).await?;
        Ok(store)
    }

    /// The connection pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    /// Creates an account and its first API key.
    pub async fn create_account(&self, name: &str) -> Result<NewAccount> {
        let name = name.trim();
        if name.is_empty() || name.len() > 128 {
            return Err(ValidationError::new("name", "an account name is 1 to 128 characters").into());
        }
        let mut tx = self.pool.begin().await?;
        let row =
            sqlx::query("INSERT INTO accounts (name) VALUES ($1) ON CONFLICT (name) DO NOTHING RETURNING id")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(row) = row else {
            return Err(StoreError::Conflict {
                field: "name".into(),
                message: format!("account {name:?} exists"),
            });
        };
        let account_id: String = row.try_get("id")?;
        let api_key = new_api_key();
        sqlx::query("INSERT INTO api_keys (account_id, name, key_hash) VALUES ($1, 'initial', $2)")
            .bind(&account_id)
            .bind(hash_api_key(&api_key))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(NewAccount { account_id, api_key })
    }

    /// The id of the account called `name`, created (without a key) if missing.
    pub async fn ensure_account(&self, name: &str) -> Result<String> {
        sqlx::query("INSERT INTO accounts (name) VALUES ($1) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .execute(&self.pool)
            .await?;
        let row =
            sqlx::query("SELECT id FROM accounts WHERE name = $1").bind(name).fetch_one(&self.pool).await?;
        Ok(row.try_get("id")?)
    }

    /// Creates a hosted zone with its SOA and NS record sets, in one change.
    ///
    /// Refused: the root, and top-level names and public suffixes unless
    /// the rules allow them ([`StoreError::Invalid`]); a name that another
    /// account hosts, or that lies inside or above one of its zones (the DNS
    /// servers answer from the most specific zone, so it would let one
    /// account answer for another's names; [`StoreError::Conflict`] on
    /// `name`); a zone past the account's quota
    /// ([`StoreError::LimitExceeded`]). The overlap check and the insert run
    /// in one transaction under a transaction-scoped advisory lock that
    /// every zone creation takes, so two racing creations cannot both pass.
    pub async fn create_zone(
        &self,
        account_id: &str,
        name: &str,
        comment: Option<&str>,
        defaults: &ZoneDefaults,
    ) -> Result<HostedZone> {
        let apex = signpost_core::names::parse_name(name, "name")?;
        if apex.is_root() {
            return Err(ValidationError::new("name", "the root zone cannot be hosted").into());
        }
        let apex_text = signpost_core::names::name_text(&apex);
        tenancy::check_zone_name(&apex_text, &self.rules)?;
        let primary = defaults.nameservers.first().cloned().unwrap_or_else(|| "ns1.signpost.test.".into());
        let soa = RecordSet::simple(
            &apex_text,
            "SOA",
            900,
            &[&format!("{primary} hostmaster.{apex_text} 1 7200 900 1209600 86400")],
        );
        let ns_refs: Vec<&str> = defaults.nameservers.iter().map(String::as_str).collect();
        let ns = RecordSet::simple(&apex_text, "NS", 172_800, &ns_refs);
        for (field, rrset) in [("soa", &soa), ("nameservers", &ns)] {
            signpost_core::validate::validate_record_set(&apex, rrset).map_err(|e| e.within(field))?;
        }
        let taken = || StoreError::Conflict {
            field: "name".into(),
            message: format!("a hosted zone named {apex_text} (or one that overlaps it) already exists"),
        };
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(ZONE_CREATION_LOCK).execute(&mut *tx).await?;
        if zone_overlapping_other(&mut tx, account_id, &apex_text).await?.is_some() {
            return Err(taken());
        }
        let zones: i64 = sqlx::query("SELECT count(*) AS n FROM hosted_zones WHERE account_id = $1")
            .bind(account_id)
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
        tenancy::check_quota(tenancy::Quota::ZonesPerAccount, &self.rules.quotas, zones, 1)?;
        let row = sqlx::query(
            "INSERT INTO hosted_zones (account_id, name, comment) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO NOTHING RETURNING id, serial",
        )
        .bind(account_id)
        .bind(&apex_text)
        .bind(comment)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Err(taken()) };
        let zone = HostedZone {
            id: row.try_get("id")?,
            account_id: account_id.to_string(),
            name: apex_text,
            serial: row.try_get("serial")?,
        };
        for rrset in [&soa, &ns] {
            rows::insert_rrset(&mut tx, &zone.id, rrset).await?;
        }
        feed::append(&mut tx, NewChange::zone(account_id, &zone.id).comment(Some("zone created"))).await?;
        tx.commit().await?;
        Ok(zone)
    }

    /// The zone called `name` (any spelling), if hosted.
    pub async fn zone_by_name(&self, name: &str) -> Result<Option<HostedZone>> {
        let canonical = signpost_core::names::canonical_text(name, "name")?;
        let row = sqlx::query("SELECT id, account_id, name, serial FROM hosted_zones WHERE name = $1")
            .bind(canonical)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| rows::zone_from_row(&r)).transpose()
    }

    /// The zone with this id, if it exists.
    pub async fn zone_by_id(&self, zone_id: &str) -> Result<Option<HostedZone>> {
        let row = sqlx::query("SELECT id, account_id, name, serial FROM hosted_zones WHERE id = $1")
            .bind(zone_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| rows::zone_from_row(&r)).transpose()
    }

    /// Every record set of a zone, in stored order.
    pub async fn zone_rrsets(&self, zone_id: &str) -> Result<Vec<RecordSet>> {
        rows::zone_rrsets(&self.pool, zone_id).await
    }

    /// A zone and its record sets, read in one transaction.
    pub async fn load_zone(&self, zone_id: &str) -> Result<Option<(HostedZone, Vec<RecordSet>)>> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await?;
        let row = sqlx::query("SELECT id, account_id, name, serial FROM hosted_zones WHERE id = $1")
            .bind(zone_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let zone = rows::zone_from_row(&row)?;
        let rrsets = rows::zone_rrsets(&mut *tx, zone_id).await?;
        tx.commit().await?;
        Ok(Some((zone, rrsets)))
    }

    /// Every zone with its record sets, and the change-log position they
    /// reflect (at least), read in one consistent snapshot. Appends are
    /// serialized (`feed`), so every change up to that position is in the
    /// snapshot and none below it can commit later: following the log from
    /// it misses nothing.
    pub async fn load_all_zones(&self) -> Result<(i64, Vec<(HostedZone, Vec<RecordSet>)>)> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await?;
        let seq: i64 = sqlx::query("SELECT coalesce(max(seq), 0) AS seq FROM changes")
            .fetch_one(&mut *tx)
            .await?
            .try_get("seq")?;
        let zone_rows = sqlx::query("SELECT id, account_id, name, serial FROM hosted_zones ORDER BY id")
            .fetch_all(&mut *tx)
            .await?;
        let mut zones = Vec::with_capacity(zone_rows.len());
        let mut index = std::collections::HashMap::new();
        for row in &zone_rows {
            let zone = rows::zone_from_row(row)?;
            index.insert(zone.id.clone(), zones.len());
            zones.push((zone, Vec::new()));
        }
        let rrset_rows: Vec<RrsetRow> = sqlx::query_as(rows::SELECT_ALL_RRSETS).fetch_all(&mut *tx).await?;
        for row in rrset_rows {
            if let Some(&i) = index.get(&row.zone_id) {
                zones[i].1.push(row.into_record_set());
            }
        }
        tx.commit().await?;
        Ok((seq, zones))
    }

    /// Records (or refreshes) a DNS server's heartbeat and the last change it
    /// applied (everything up to it), and deletes the rows of servers silent
    /// for [`DNS_SERVER_RETENTION`].
    pub async fn dns_heartbeat(&self, server_id: &str, hostname: &str, last_change_seq: i64) -> Result<()> {
        sqlx::query(
            "WITH pruned AS (
                 DELETE FROM dns_servers
                 WHERE heartbeat_at < now() - make_interval(secs => $4) AND id <> $1
             )
             INSERT INTO dns_servers (id, hostname, last_change_seq) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(),
                 last_change_seq = greatest(dns_servers.last_change_seq, excluded.last_change_seq)",
        )
        .bind(server_id)
        .bind(hostname)
        .bind(last_change_seq)
        .bind(DNS_SERVER_RETENTION.as_secs_f64())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Removes a DNS server's heartbeat row (graceful shutdown).
    pub async fn dns_server_gone(&self, server_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM dns_servers WHERE id = $1").bind(server_id).execute(&self.pool).await?;
        Ok(())
    }

    /// The account an API key belongs to, with its restrictions.
    pub async fn api_key_account(&self, api_key: &str) -> Result<Option<ApiKey>> {
        let row = sqlx::query("SELECT id, account_id, read_only, zone_ids FROM api_keys WHERE key_hash = $1")
            .bind(hash_api_key(api_key))
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(ApiKey {
                id: r.try_get("id")?,
                account_id: r.try_get("account_id")?,
                read_only: r.try_get("read_only")?,
                zone_ids: r.try_get("zone_ids")?,
            })
        })
        .transpose()
    }
}

/// An API key's identity and limits (never its secret).
#[derive(Debug, Clone)]
pub struct ApiKey {
    /// Key id.
    pub id: String,
    /// Owning account.
    pub account_id: String,
    /// Whether the key may only read.
    pub read_only: bool,
    /// The zones the key is limited to, if any.
    pub zone_ids: Option<Vec<String>>,
}

/// A new random API key: `sp_` and 64 hex digits.
pub fn new_api_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("sp_{}", hex::encode(bytes))
}

/// SHA-256 of an API key, the form it is stored in.
pub fn hash_api_key(api_key: &str) -> Vec<u8> {
    Sha256::digest(api_key.as_bytes()).to_vec()
}

/// The advisory lock every zone creation holds until it commits (a
/// constant: "SPZONES" in ASCII).
const ZONE_CREATION_LOCK: i64 = 0x53_505a_4f4e_4553;

/// A zone of another account that `apex` equals, lies inside, or contains.
/// Ancestors are looked up by name (`= ANY`, the unique index), descendants
/// by a range of `reverse(name) COLLATE "C"` (its index).
async fn zone_overlapping_other(
    conn: &mut sqlx::PgConnection,
    account_id: &str,
    apex: &str,
) -> Result<Option<String>> {
    let mut names = tenancy::ancestors(apex);
    names.push(apex.to_string());
    let (low, high) = tenancy::descendant_range(apex);
    let row = sqlx::query(
        "(SELECT name FROM hosted_zones WHERE name = ANY($2) AND account_id <> $1 LIMIT 1)
         UNION ALL
         (SELECT name FROM hosted_zones
          WHERE reverse(name) COLLATE \"C\" >= $3 AND reverse(name) COLLATE \"C\" < $4
            AND account_id <> $1 LIMIT 1)
         LIMIT 1",
    )
    .bind(account_id)
    .bind(&names)
    .bind(&low)
    .bind(&high)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| Ok(r.try_get("name")?)).transpose()
}
