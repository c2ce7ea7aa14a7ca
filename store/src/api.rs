//! Queries of the control API: API keys, zone listing and details, record-set
//! listing in Route 53's order, zone deletion that refuses a zone with
//! content, and the lookups that validate references (health checks, CIDR
//! collections, alias targets). Every query is scoped to an account: another
//! account's object is indistinguishable from a missing one.

use std::cmp::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};
use signpost_core::zonefile::route53_order;
use signpost_core::{RecordSet, ValidationError};
use sqlx::Row;
use sqlx::postgres::{PgPoolOptions, PgRow};

use crate::feed::{NewChange, append};
use crate::tenancy::{Quota, check_quota};
use rand::{Rng, RngCore};
use zeroize::Zeroize;

use crate::secrets::{Sealed, SecretString, SecretsError};
use crate::{ApiKey, ChangeInfo, Result, Store, StoreError, hash_api_key, new_api_key};

/// Longest API key name.
pub const MAX_KEY_NAME_LEN: usize = 128;
/// Most zones one API key may be limited to.
pub const MAX_KEY_ZONES: usize = 100;

/// What kind of credential an API key is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum KeyKind {
    /// A secret sent as `Authorization: Bearer …` (/v1).
    #[default]
    Bearer,
    /// An AWS access key pair that signs requests with SigV4 (/2013-04-01).
    Aws,
}

impl KeyKind {
    /// The stored spelling (`bearer`, `aws`).
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Bearer => "bearer",
            KeyKind::Aws => "aws",
        }
    }
}

/// An API key as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyInfo {
    /// Key id (`K…`).
    pub id: String,
    /// Bearer key or AWS access key pair.
    pub kind: KeyKind,
    /// The access key id of an AWS key pair (not secret: sent with every request).
    pub access_key_id: Option<String>,
    /// A name for people.
    pub name: Option<String>,
    /// Whether the key may only read.
    pub read_only: bool,
    /// The zones the key is limited to; `None`: every zone of the account.
    pub zone_ids: Option<Vec<String>>,
    /// When the key was made.
    pub created_at: DateTime<Utc>,
}

/// A key just made, with its secret (shown this once).
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// The key's identity and limits.
    pub info: ApiKeyInfo,
    /// The secret.
    pub secret: NewKeySecret,
}

/// The secret of a key just made.
#[derive(Debug, Clone)]
pub enum NewKeySecret {
    /// The secret to send as `Authorization: Bearer …`.
    Bearer(SecretString),
    /// The secret access key of an AWS key pair (its id is in the info).
    Aws(SecretString),
}

/// An AWS access key pair found by its access key id: the key's identity
/// and limits, and its unsealed secret (to verify a signature with).
#[derive(Debug, Clone)]
pub struct AwsAccessKey {
    /// The key and its account and scopes.
    pub key: ApiKey,
    /// The secret access key.
    pub secret: SecretString,
}

/// A new access key id: `AKIA` and 16 upper-case letters and digits, as AWS's.
pub fn new_access_key_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    let tail: String = (0..16).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])).collect();
    format!("AKIA{tail}")
}

/// A new secret access key: 40 base64 characters (30 random bytes), as AWS's.
pub fn new_secret_access_key() -> SecretString {
    use base64::Engine as _;
    let mut bytes = [0u8; 30];
    rand::rng().fill_bytes(&mut bytes);
    let secret = base64::engine::general_purpose::STANDARD.encode(bytes);
    bytes.zeroize();
    SecretString::new(secret)
}

/// The sealing scheme of stored secrets (ChaCha20-Poly1305, AAD = access key id).
const SEAL_VERSION: i16 = 1;

/// What to make a key with.
#[derive(Debug, Clone, Default)]
pub struct KeySpec {
    /// Bearer key or AWS access key pair.
    pub kind: KeyKind,
    /// A name for people.
    pub name: Option<String>,
    /// Only reads allowed.
    pub read_only: bool,
    /// Limit to these zones of the account.
    pub zone_ids: Option<Vec<String>>,
}

/// A hosted zone with the details the API shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneDetails {
    /// Zone id (`Z…`).
    pub id: String,
    /// Fully qualified, lower-case name.
    pub name: String,
    /// The owner's comment.
    pub comment: Option<String>,
    /// Current serial.
    pub serial: i64,
    /// Number of record sets, SOA and NS included.
    pub record_set_count: i64,
    /// The apex NS records: the name servers to delegate to.
    pub name_servers: Vec<String>,
    /// When the zone was made.
    pub created_at: DateTime<Utc>,
}

/// One page of a listing; `more` says whether items follow the last one.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items, in listing order.
    pub items: Vec<T>,
    /// Whether a next page exists.
    pub more: bool,
}

impl<T> Page<T> {
    fn from_overfetch(mut items: Vec<T>, limit: usize) -> Self {
        let more = items.len() > limit;
        items.truncate(limit);
        Page { items, more }
    }
}

/// The identity of a record set within a zone (the listing cursor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RrsetKey {
    /// Canonical owner name.
    pub name: String,
    /// Type mnemonic.
    pub rtype: String,
    /// Set identifier, for members of a policy group.
    pub set_identifier: Option<String>,
}

impl RrsetKey {
    /// The key of a record set.
    pub fn of(rrset: &RecordSet) -> Self {
        RrsetKey {
            name: rrset.name.clone(),
            rtype: rrset.rtype.clone(),
            set_identifier: rrset.set_identifier.clone(),
        }
    }

    fn as_rrset(&self) -> RecordSet {
        RecordSet {
            name: self.name.clone(),
            rtype: self.rtype.clone(),
            set_identifier: self.set_identifier.clone(),
            ..RecordSet::default()
        }
    }
}

/// A record-set listing request: exact `name`/`rtype` filters (canonical),
/// the key after which to start, and the page size.
#[derive(Debug, Clone, Default)]
pub struct RrsetQuery {
    /// Only record sets with this canonical name.
    pub name: Option<String>,
    /// Only record sets of this type.
    pub rtype: Option<String>,
    /// Start after this record set.
    pub after: Option<RrsetKey>,
    /// Page size.
    pub limit: usize,
}

/// Route 53's listing order made total: reversed labels, then type, then set
/// identifier, then the raw name (for names whose labels compare equal).
pub fn listing_order(a: &RecordSet, b: &RecordSet) -> Ordering {
    route53_order(a, b).then_with(|| a.name.cmp(&b.name))
}

impl StoreError {
    /// The SQLSTATE of a database error, if the error carries one.
    pub fn sqlstate(&self) -> Option<String> {
        match self {
            StoreError::Database(sqlx::Error::Database(db)) => db.code().map(|c| c.into_owned()),
            _ => None,
        }
    }
}

macro_rules! zone_details_select {
    () => {
        "SELECT z.id, z.name, z.comment, z.serial, z.created_at,
        (SELECT count(*) FROM record_sets r WHERE r.zone_id = z.id) AS record_set_count,
        coalesce((SELECT r.records FROM record_sets r
                  WHERE r.zone_id = z.id AND r.name = z.name AND r.type = 'NS'
                  ORDER BY r.id LIMIT 1), '{}') AS name_servers
         FROM hosted_zones z"
    };
}

fn zone_details(row: &PgRow) -> Result<ZoneDetails> {
    Ok(ZoneDetails {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        comment: row.try_get("comment")?,
        serial: row.try_get("serial")?,
        record_set_count: row.try_get("record_set_count")?,
        name_servers: row.try_get("name_servers")?,
        created_at: row.try_get("created_at")?,
    })
}

fn key_info(row: &PgRow) -> Result<ApiKeyInfo> {
    Ok(ApiKeyInfo {
        id: row.try_get("id")?,
        kind: match row.try_get::<&str, _>("kind")? {
            "aws" => KeyKind::Aws,
            _ => KeyKind::Bearer,
        },
        access_key_id: row.try_get("access_key_id")?,
        name: row.try_get("name")?,
        read_only: row.try_get("read_only")?,
        zone_ids: row.try_get("zone_ids")?,
        created_at: row.try_get("created_at")?,
    })
}

/// Serializes the commands that count an account's objects against `quota`
/// and then add one (a transaction-scoped advisory lock per account and quota).
pub(crate) async fn lock_account_quota(
    conn: &mut sqlx::PgConnection,
    quota: Quota,
    account_id: &str,
) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind(0x5350_0000_i32 + quota as i32)
        .bind(account_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX - 1).saturating_add(1)
}

impl Store {
    /// A second handle on the same database with its own pool: the API uses
    /// one with a short acquire timeout, so that an unreachable database is
    /// reported (503) quickly instead of holding requests.
    pub fn with_pool(&self, max_connections: u32, acquire_timeout: Duration) -> Store {
        let options = (*self.pool.connect_options()).clone();
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(acquire_timeout)
            .connect_lazy_with(options);
        Store { pool, rules: self.rules, master_key: self.master_key.clone() }
    }

    /// Makes an API key for an account. Every zone in `spec.zone_ids` must be
    /// the account's; past the account's key quota:
    /// [`StoreError::LimitExceeded`].
    pub async fn create_api_key(&self, account_id: &str, spec: &KeySpec) -> Result<NewApiKey> {
        if let Some(name) = &spec.name
            && (name.chars().count() > MAX_KEY_NAME_LEN || name.chars().any(char::is_control))
        {
            return Err(ValidationError::new(
                "name",
                format!("a key name is at most {MAX_KEY_NAME_LEN} characters, without control characters"),
            )
            .into());
        }
        let zone_ids = match &spec.zone_ids {
            None => None,
            Some(ids) => {
                if ids.is_empty() || ids.len() > MAX_KEY_ZONES {
                    return Err(ValidationError::new(
                        "zoneIds",
                        format!("list 1 to {MAX_KEY_ZONES} zones, or leave zoneIds out for every zone"),
                    )
                    .into());
                }
                let owned = self.owned_zone_ids(account_id, ids).await?;
                if let Some(i) = ids.iter().position(|id| !owned.contains(id)) {
                    return Err(ValidationError::new(
                        format!("zoneIds[{i}]"),
                        format!("no hosted zone {} in this account", ids[i]),
                    )
                    .into());
                }
                let mut unique = ids.clone();
                unique.sort();
                unique.dedup();
                Some(unique)
            }
        };
        // An AWS pair: the access key id in the clear, the secret sealed with
        // the master key and bound to the access key id.
        let (secret, key_hash, access_key_id, sealed) = match spec.kind {
            KeyKind::Bearer => {
                let api_key = new_api_key();
                let hash = hash_api_key(&api_key);
                (NewKeySecret::Bearer(SecretString::new(api_key)), Some(hash), None, None)
            }
            KeyKind::Aws => {
                let master = self.master_key.as_ref().ok_or(SecretsError::NotConfigured)?.get()?;
                let access_key_id = new_access_key_id();
                let secret = new_secret_access_key();
                let sealed = master.seal(&access_key_id, secret.expose());
                (NewKeySecret::Aws(secret), None, Some(access_key_id), Some(sealed))
            }
        };
        let mut tx = self.pool.begin().await?;
        lock_account_quota(&mut tx, Quota::ApiKeysPerAccount, account_id).await?;
        let keys: i64 = sqlx::query("SELECT count(*) AS n FROM api_keys WHERE account_id = $1")
            .bind(account_id)
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
        check_quota(Quota::ApiKeysPerAccount, &self.rules().quotas, keys, 1)?;
        let row = sqlx::query(
            "INSERT INTO api_keys (account_id, name, key_hash, read_only, zone_ids, kind, access_key_id,
                                   secret_nonce, secret_sealed, kek_id, key_version)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             RETURNING id, kind, access_key_id, name, read_only, zone_ids, created_at",
        )
        .bind(account_id)
        .bind(&spec.name)
        .bind(key_hash)
        .bind(spec.read_only)
        .bind(&zone_ids)
        .bind(spec.kind.as_str())
        .bind(&access_key_id)
        .bind(sealed.as_ref().map(|s| s.nonce.clone()))
        .bind(sealed.as_ref().map(|s| s.ciphertext.clone()))
        .bind(sealed.as_ref().map(|s| s.kek_id.clone()))
        .bind(sealed.as_ref().map(|_| SEAL_VERSION))
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(NewApiKey { info: key_info(&row)?, secret })
    }

    /// The AWS access key pair with access key id `access_key_id`, with its
    /// secret unsealed; `None` when there is no such key.
    pub async fn aws_access_key(&self, access_key_id: &str) -> Result<Option<AwsAccessKey>> {
        let row = sqlx::query(
            "SELECT id, account_id, read_only, zone_ids, secret_nonce, secret_sealed, kek_id
             FROM api_keys WHERE access_key_id = $1 AND kind = 'aws'",
        )
        .bind(access_key_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let master = self.master_key.as_ref().ok_or(SecretsError::NotConfigured)?.get()?;
        let sealed = Sealed {
            nonce: row.try_get("secret_nonce")?,
            ciphertext: row.try_get("secret_sealed")?,
            kek_id: row.try_get("kek_id")?,
        };
        let secret = master.open(access_key_id, &sealed)?;
        Ok(Some(AwsAccessKey {
            key: ApiKey {
                id: row.try_get("id")?,
                account_id: row.try_get("account_id")?,
                read_only: row.try_get("read_only")?,
                zone_ids: row.try_get("zone_ids")?,
            },
            secret,
        }))
    }

    /// The account's keys, by id, after the key id `after`.
    pub async fn list_api_keys(
        &self,
        account_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<ApiKeyInfo>> {
        let rows = sqlx::query(
            "SELECT id, kind, access_key_id, name, read_only, zone_ids, created_at FROM api_keys
             WHERE account_id = $1 AND ($2::text IS NULL OR id > $2) ORDER BY id LIMIT $3",
        )
        .bind(account_id)
        .bind(after)
        .bind(limit_param(limit))
        .fetch_all(&self.pool)
        .await?;
        let items = rows.iter().map(key_info).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_overfetch(items, limit))
    }

    /// One of the account's keys.
    pub async fn api_key_info(&self, account_id: &str, key_id: &str) -> Result<ApiKeyInfo> {
        let row = sqlx::query(
            "SELECT id, kind, access_key_id, name, read_only, zone_ids, created_at FROM api_keys WHERE id = $1 AND account_id = $2",
        )
        .bind(key_id)
        .bind(account_id)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => key_info(&row),
            None => Err(StoreError::NotFound(format!("API key {key_id}"))),
        }
    }

    /// Deletes one of the account's keys; it stops working at once.
    pub async fn delete_api_key(&self, account_id: &str, key_id: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM api_keys WHERE id = $1 AND account_id = $2")
            .bind(key_id)
            .bind(account_id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("API key {key_id}")));
        }
        Ok(())
    }

    /// Those of `zone_ids` that are zones of the account.
    pub async fn owned_zone_ids(&self, account_id: &str, zone_ids: &[String]) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT id FROM hosted_zones WHERE account_id = $1 AND id = ANY($2)")
            .bind(account_id)
            .bind(zone_ids)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
    }

    /// The account's zones ordered by name, after the name `after`, limited
    /// to `only` when given.
    pub async fn list_zones(
        &self,
        account_id: &str,
        only: Option<&[String]>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<ZoneDetails>> {
        let sql = concat!(
            zone_details_select!(),
            " WHERE z.account_id = $1 AND ($2::text[] IS NULL OR z.id = ANY($2))
               AND ($3::text IS NULL OR z.name COLLATE \"C\" > $3)
             ORDER BY z.name COLLATE \"C\" LIMIT $4"
        );
        let rows = sqlx::query(sql)
            .bind(account_id)
            .bind(only)
            .bind(after)
            .bind(limit_param(limit))
            .fetch_all(&self.pool)
            .await?;
        let items = rows.iter().map(zone_details).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_overfetch(items, limit))
    }

    /// One of the account's zones, with its details.
    pub async fn zone_details(&self, account_id: &str, zone_id: &str) -> Result<ZoneDetails> {
        let sql = concat!(zone_details_select!(), " WHERE z.id = $1 AND z.account_id = $2");
        let row = sqlx::query(sql).bind(zone_id).bind(account_id).fetch_optional(&self.pool).await?;
        match row {
            Some(row) => zone_details(&row),
            None => Err(StoreError::NotFound(format!("hosted zone {zone_id}"))),
        }
    }

    /// The change that created a zone (the first of its log).
    pub async fn zone_creation_change(&self, zone_id: &str) -> Result<ChangeInfo> {
        let row = sqlx::query("SELECT id FROM changes WHERE zone_id = $1 ORDER BY seq LIMIT 1")
            .bind(zone_id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Err(StoreError::NotFound(format!("change of zone {zone_id}"))) };
        let id: String = row.try_get("id")?;
        self.change(&id, None).await
    }

    /// The zone a change of the account was made to (`None` for changes that
    /// are not a zone's).
    pub async fn change_zone(&self, change_id: &str, account_id: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT zone_id FROM changes WHERE id = $1 AND account_id = $2")
            .bind(change_id)
            .bind(account_id)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => Ok(row.try_get("zone_id")?),
            None => Err(StoreError::NotFound(format!("change {change_id}"))),
        }
    }

    /// Deletes one of the account's zones, refusing (Conflict on `zone`)
    /// while it holds record sets other than the apex SOA and NS, like
    /// Route 53's HostedZoneNotEmpty.
    pub async fn delete_empty_zone(&self, zone_id: &str, account_id: &str) -> Result<ChangeInfo> {
        let mut tx = self.pool.begin().await?;
        let row =
            sqlx::query("SELECT id, name FROM hosted_zones WHERE id = $1 AND account_id = $2 FOR UPDATE")
                .bind(zone_id)
                .bind(account_id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(row) = row else { return Err(StoreError::NotFound(format!("hosted zone {zone_id}"))) };
        let name: String = row.try_get("name")?;
        let others: i64 = sqlx::query(
            "SELECT count(*) AS n FROM record_sets
             WHERE zone_id = $1 AND NOT (name = $2 AND type IN ('SOA', 'NS') AND set_identifier IS NULL)",
        )
        .bind(zone_id)
        .bind(&name)
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
        if others > 0 {
            return Err(StoreError::Conflict {
                field: "zone".into(),
                message: format!(
                    "the hosted zone {name} contains {others} record sets that are not its SOA or NS; \
                     delete them first"
                ),
            });
        }
        sqlx::query("DELETE FROM hosted_zones WHERE id = $1").bind(zone_id).execute(&mut *tx).await?;
        let info =
            append(&mut tx, NewChange::zone_deleted(account_id, zone_id).comment(Some("zone deleted")))
                .await?;
        tx.commit().await?;
        Ok(info)
    }

    /// One page of a zone's record sets in Route 53's order ([`listing_order`]).
    pub async fn list_rrsets(&self, zone_id: &str, query: &RrsetQuery) -> Result<Page<RecordSet>> {
        let mut rrsets = self.zone_rrsets(zone_id).await?;
        rrsets.retain(|r| {
            query.name.as_ref().is_none_or(|n| *n == r.name)
                && query.rtype.as_ref().is_none_or(|t| *t == r.rtype)
        });
        rrsets.sort_by(listing_order);
        let start = match &query.after {
            None => 0,
            Some(key) => {
                let probe = key.as_rrset();
                rrsets.partition_point(|r| listing_order(r, &probe) != Ordering::Greater)
            }
        };
        let page: Vec<RecordSet> = rrsets.drain(start..).take(query.limit.saturating_add(1)).collect();
        Ok(Page::from_overfetch(page, query.limit))
    }

    /// Those of `ids` that are health checks of the account.
    pub async fn owned_health_checks(&self, account_id: &str, ids: &[String]) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT id FROM health_checks WHERE account_id = $1 AND id = ANY($2)")
            .bind(account_id)
            .bind(ids)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
    }

    /// The location names of one of the account's CIDR collections (`None`
    /// when it has no such collection).
    pub async fn cidr_collection_locations(
        &self,
        account_id: &str,
        collection_id: &str,
    ) -> Result<Option<Vec<String>>> {
        let exists = sqlx::query("SELECT 1 FROM cidr_collections WHERE id = $1 AND account_id = $2")
            .bind(collection_id)
            .bind(account_id)
            .fetch_optional(&self.pool)
            .await?;
        if exists.is_none() {
            return Ok(None);
        }
        let rows = sqlx::query("SELECT name FROM cidr_locations WHERE collection_id = $1 ORDER BY name")
            .bind(collection_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(Some(rows.iter().map(|r| r.try_get("name")).collect::<Result<Vec<String>, _>>()?))
    }

    /// Whether a record set named `name` of type `rtype` exists in one of
    /// the account's zones (an alias target outside the zone being changed).
    pub async fn rrset_exists_in_account(&self, account_id: &str, name: &str, rtype: &str) -> Result<bool> {
        let row = sqlx::query(
            "SELECT EXISTS (SELECT 1 FROM record_sets r JOIN hosted_zones z ON z.id = r.zone_id
                            WHERE z.account_id = $1 AND r.name = $2 AND r.type = $3) AS found",
        )
        .bind(account_id)
        .bind(name)
        .bind(rtype)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("found")?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_order_is_route53_order_and_total() {
        let mut sets = [
            RecordSet::simple("b.example.com.", "A", 1, &["192.0.2.1"]),
            RecordSet::simple("example.com.", "NS", 1, &["ns."]),
            RecordSet::simple("a.b.example.com.", "A", 1, &["192.0.2.1"]),
            RecordSet::simple("example.com.", "SOA", 1, &["x"]),
            RecordSet::simple("example.com.", "A", 1, &["192.0.2.1"]),
            RecordSet::simple("a.example.com.", "TXT", 1, &["\"x\""]),
        ];
        sets.sort_by(listing_order);
        let names: Vec<String> = sets.iter().map(|r| format!("{} {}", r.name, r.rtype)).collect();
        assert_eq!(
            names,
            [
                "example.com. SOA",
                "example.com. NS",
                "example.com. A",
                "a.example.com. TXT",
                "b.example.com. A",
                "a.b.example.com. A"
            ]
        );
    }

    #[test]
    fn pages_know_whether_more_follow() {
        let page = Page::from_overfetch(vec![1, 2, 3], 2);
        assert_eq!(page, Page { items: vec![1, 2], more: true });
        let page = Page::from_overfetch(vec![1, 2], 2);
        assert!(!page.more);
    }
}
