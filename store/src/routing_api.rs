//! The control API's side of the routing data: CIDR collections, the
//! measured latency table and the account's region coordinates, validated on
//! the way in; and the account-wide reads the API needs beside them (zones in
//! creation order for pricing, every zone with its record sets for
//! TestDNSAnswer).
//!
//! Every write locks the account's row (so one account's routing writes run
//! one at a time), changes the tables and appends a `ROUTING` change with
//! NOTIFY in the same transaction: the DNS servers reload the account's
//! routing data when they see it. The DNS servers' own reads are in
//! [`crate::routing`].

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use signpost_core::cidr::{Family, Prefix};
use signpost_core::geo::{REGIONS, builtin_region};
use signpost_core::model::Coordinates;
use signpost_core::{HostedZone, RecordSet, ValidationError};
use sqlx::{PgConnection, Row};

use crate::api::Page;
use crate::feed::{NewChange, append};
use crate::{Result, Store, StoreError, rows};

/// Longest CIDR collection name (Route 53's bound).
pub const MAX_COLLECTION_NAME_LEN: usize = 64;
/// Longest location name (Route 53's bound).
pub const MAX_LOCATION_NAME_LEN: usize = 16;
/// Most CIDR blocks in one collection (Route 53's bound).
pub const MAX_COLLECTION_BLOCKS: usize = 1000;
/// Most CIDR collections per account (Route 53's default quota is 5; ours is
/// a bound on work, not a business rule).
pub const MAX_COLLECTIONS: i64 = 100;
/// Most entries in an account's latency table.
pub const MAX_LATENCY_ENTRIES: usize = 10_000;
/// Largest latency an entry may give, in milliseconds.
pub const MAX_LATENCY_MS: f64 = 100_000.0;
/// Most regions an account may add or override.
pub const MAX_ACCOUNT_REGIONS: i64 = 1000;

/// Whether `id` has the shape of a CIDR collection id: a lower-case UUID,
/// like Route 53's CollectionId (the database's default since
/// `20261202000005_tenancy.sql`), or `C` and 20 upper-case hex digits (the
/// collections made before, whose prefix was the changes' one).
pub fn is_collection_id(id: &str) -> bool {
    let hex = |part: &str, len: usize| {
        part.len() == len && part.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let parts: Vec<&str> = id.split('-').collect();
    let uuid = parts.len() == 5 && parts.iter().zip([8, 4, 4, 4, 12]).all(|(p, len)| hex(p, len));
    let legacy = id.len() == 21
        && id.starts_with('C')
        && id[1..].bytes().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b));
    uuid || legacy
}
/// Longest CIDR block (shortest network) Route 53 accepts, IPv4 and IPv6.
const MAX_BLOCK_LEN: (u8, u8) = (24, 48);

/// A location of a CIDR collection: a name and its blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CidrLocation {
    /// Location name (1 to 16 letters, digits, `-` or `_`).
    pub name: String,
    /// CIDR blocks (`10.0.0.0/16`, `2001:db8::/32`).
    pub cidrs: Vec<String>,
}

/// A CIDR collection as a client sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CidrCollectionSpec {
    /// Collection name, unique in the account.
    pub name: String,
    /// Its locations.
    pub locations: Vec<CidrLocation>,
}

/// A stored CIDR collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CidrCollection {
    /// Public id (`C…`).
    pub id: String,
    /// Collection name.
    pub name: String,
    /// Locations by name, blocks in the order given.
    pub locations: Vec<CidrLocation>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
}

/// One entry of the measured latency table: clients in `cidr` reach
/// `region` in `latency_ms`.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyEntry {
    /// Client network.
    pub cidr: String,
    /// Region code.
    pub region: String,
    /// Milliseconds.
    pub latency_ms: f64,
}

/// A region and its coordinates, as the account sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct RegionInfo {
    /// Region code (`us-east-1`).
    pub code: String,
    /// Where it is.
    pub coordinates: Coordinates,
    /// True when the coordinates are the built-in table's (no account override).
    pub built_in: bool,
}

/// A hosted zone with its creation time (for the hosted-zone price tiers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneCreated {
    /// Zone id.
    pub id: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

fn name_chars_ok(name: &str) -> bool {
    name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Checks a collection against Route 53's rules and normalises its blocks:
/// a name of 1 to 64 `[0-9A-Za-z_-]`; location names of 1 to 16 such
/// characters, unique, never `*` (the default in record sets); at least one
/// block per location; blocks IPv4 /1–/24 or IPv6 /1–/48 without host bits,
/// each in one location only; at most 1,000 blocks. Errors name the field
/// (`locations[1].cidrs[0]`).
pub fn validate_collection(spec: &CidrCollectionSpec) -> Result<CidrCollectionSpec, ValidationError> {
    let name = &spec.name;
    if name.is_empty() || name.len() > MAX_COLLECTION_NAME_LEN || !name_chars_ok(name) {
        return Err(ValidationError::new(
            "name",
            format!("a collection name is 1 to {MAX_COLLECTION_NAME_LEN} letters, digits, - or _"),
        ));
    }
    let blocks: usize = spec.locations.iter().map(|l| l.cidrs.len()).sum();
    if blocks > MAX_COLLECTION_BLOCKS {
        return Err(ValidationError::new(
            "locations",
            format!("{blocks} CIDR blocks; a collection holds at most {MAX_COLLECTION_BLOCKS}"),
        ));
    }
    let mut names = HashSet::new();
    let mut seen: HashMap<Prefix, usize> = HashMap::new();
    let mut locations = Vec::with_capacity(spec.locations.len());
    for (i, location) in spec.locations.iter().enumerate() {
        let field = format!("locations[{i}].name");
        if location.name == "*" {
            return Err(ValidationError::new(
                field,
                "* is not a location name: it is the default location of record sets",
            ));
        }
        if location.name.is_empty()
            || location.name.len() > MAX_LOCATION_NAME_LEN
            || !name_chars_ok(&location.name)
        {
            return Err(ValidationError::new(
                field,
                format!("a location name is 1 to {MAX_LOCATION_NAME_LEN} letters, digits, - or _"),
            ));
        }
        if !names.insert(location.name.as_str()) {
            return Err(ValidationError::new(field, format!("location {} is given twice", location.name)));
        }
        if location.cidrs.is_empty() {
            return Err(ValidationError::new(
                format!("locations[{i}].cidrs"),
                "a location needs at least one CIDR block",
            ));
        }
        let mut cidrs = Vec::with_capacity(location.cidrs.len());
        for (j, text) in location.cidrs.iter().enumerate() {
            let field = format!("locations[{i}].cidrs[{j}]");
            let prefix = Prefix::parse(text.trim(), &field)?;
            let max = match prefix.family() {
                Family::V4 => MAX_BLOCK_LEN.0,
                Family::V6 => MAX_BLOCK_LEN.1,
            };
            if prefix.is_empty() || prefix.len() > max {
                return Err(ValidationError::new(
                    field,
                    format!(
                        "{prefix}: blocks are IPv4 /1 to /{} or IPv6 /1 to /{} (use the location * for everyone else)",
                        MAX_BLOCK_LEN.0, MAX_BLOCK_LEN.1
                    ),
                ));
            }
            if let Some(other) = seen.insert(prefix, i) {
                let message = if other == i {
                    format!("{prefix} is given twice")
                } else {
                    format!(
                        "{prefix} is already in location {}; a block belongs to one location",
                        spec.locations[other].name
                    )
                };
                return Err(ValidationError::new(field, message));
            }
            cidrs.push(prefix.to_string());
        }
        locations.push(CidrLocation { name: location.name.clone(), cidrs });
    }
    locations.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(CidrCollectionSpec { name: name.clone(), locations })
}

/// Checks a latency table (blocks without host bits, latencies 0 to
/// 100,000 ms, one entry per block and region, at most 10,000 entries) and
/// normalises its blocks. Whether the regions exist is checked by the store.
pub fn validate_latency_table(entries: &[LatencyEntry]) -> Result<Vec<LatencyEntry>, ValidationError> {
    if entries.len() > MAX_LATENCY_ENTRIES {
        return Err(ValidationError::new(
            "entries",
            format!("{} entries; the table holds at most {MAX_LATENCY_ENTRIES}", entries.len()),
        ));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let prefix = Prefix::parse(entry.cidr.trim(), &format!("entries[{i}].cidr"))?;
        if !entry.latency_ms.is_finite() || !(0.0..=MAX_LATENCY_MS).contains(&entry.latency_ms) {
            return Err(ValidationError::new(
                format!("entries[{i}].latencyMs"),
                format!("a latency is 0 to {MAX_LATENCY_MS} milliseconds"),
            ));
        }
        if entry.region.is_empty() || entry.region.len() > 64 {
            return Err(ValidationError::new(format!("entries[{i}].region"), "not a region code"));
        }
        if !seen.insert((prefix, entry.region.clone())) {
            return Err(ValidationError::new(
                format!("entries[{i}]"),
                format!("{prefix} has two entries for {}", entry.region),
            ));
        }
        out.push(LatencyEntry {
            cidr: prefix.to_string(),
            region: entry.region.clone(),
            latency_ms: entry.latency_ms,
        });
    }
    Ok(out)
}

/// Checks coordinates (latitude −90 to 90, longitude −180 to 180).
pub fn validate_coordinates(c: Coordinates) -> Result<Coordinates, ValidationError> {
    if !c.latitude.is_finite() || !(-90.0..=90.0).contains(&c.latitude) {
        return Err(ValidationError::new("latitude", "a latitude is -90 to 90 degrees"));
    }
    if !c.longitude.is_finite() || !(-180.0..=180.0).contains(&c.longitude) {
        return Err(ValidationError::new("longitude", "a longitude is -180 to 180 degrees"));
    }
    Ok(c)
}

/// Serialises the account's routing writes (the row's FK share locks are not blocked).
async fn lock_account(conn: &mut PgConnection, account_id: &str) -> Result<()> {
    let found = sqlx::query("SELECT 1 FROM accounts WHERE id = $1 FOR NO KEY UPDATE")
        .bind(account_id)
        .fetch_optional(&mut *conn)
        .await?;
    match found {
        Some(_) => Ok(()),
        None => Err(StoreError::NotFound(format!("account {account_id}"))),
    }
}

/// Appends the account's `ROUTING` change: the last statement before COMMIT.
async fn log_routing(conn: &mut PgConnection, account_id: &str, comment: &str) -> Result<()> {
    append(conn, NewChange::routing(account_id).comment(Some(comment))).await?;
    Ok(())
}

fn collection_in_use(id: &str, user: &str) -> StoreError {
    StoreError::Conflict {
        field: "id".into(),
        message: format!("CIDR collection {id} is in use by the record set {user}; remove that first"),
    }
}

fn collection_name_taken(name: &str) -> StoreError {
    StoreError::Conflict {
        field: "name".into(),
        message: format!("the account already has a CIDR collection named {name}"),
    }
}

/// Writes a collection's locations (replacing none: the caller deleted them).
async fn insert_locations(conn: &mut PgConnection, id: &str, locations: &[CidrLocation]) -> Result<()> {
    if locations.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = locations.iter().map(|l| l.name.as_str()).collect();
    // Array literals of normalised blocks (digits, dots, colons, slashes only).
    let cidrs: Vec<String> = locations.iter().map(|l| format!("{{{}}}", l.cidrs.join(","))).collect();
    sqlx::query(
        "INSERT INTO cidr_locations (collection_id, name, cidrs)
         SELECT $1, n, c::cidr[] FROM unnest($2::text[], $3::text[]) AS t(n, c)",
    )
    .bind(id)
    .bind(&names)
    .bind(&cidrs)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The locations of collections, by collection id.
async fn locations_of<'e, E>(executor: E, ids: &[String]) -> Result<HashMap<String, Vec<CidrLocation>>>
where
    E: sqlx::Executor<'e, Database = sqlx::Postgres>,
{
    let rows = sqlx::query(
        "SELECT collection_id, name, cidrs::text[] AS cidrs FROM cidr_locations
         WHERE collection_id = ANY($1) ORDER BY collection_id, name COLLATE \"C\"",
    )
    .bind(ids)
    .fetch_all(executor)
    .await?;
    let mut out: HashMap<String, Vec<CidrLocation>> = HashMap::new();
    for row in rows {
        let id: String = row.try_get("collection_id")?;
        out.entry(id)
            .or_default()
            .push(CidrLocation { name: row.try_get("name")?, cidrs: row.try_get("cidrs")? });
    }
    Ok(out)
}

fn is_unique_violation(e: &StoreError) -> bool {
    e.sqlstate().as_deref() == Some("23505")
}

impl Store {
    /// Creates a CIDR collection ([`StoreError::Invalid`] with the field for
    /// a bad one, [`StoreError::Conflict`] on `name` when the account has one
    /// of that name).
    pub async fn create_cidr_collection(
        &self,
        account_id: &str,
        spec: &CidrCollectionSpec,
    ) -> Result<CidrCollection> {
        let spec = validate_collection(spec)?;
        let mut tx = self.pool().begin().await?;
        lock_account(&mut tx, account_id).await?;
        let count: i64 = sqlx::query("SELECT count(*) AS n FROM cidr_collections WHERE account_id = $1")
            .bind(account_id)
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
        if count >= MAX_COLLECTIONS {
            return Err(ValidationError::new(
                "",
                format!("the account has {count} CIDR collections; the limit is {MAX_COLLECTIONS}"),
            )
            .into());
        }
        let inserted = sqlx::query(
            "INSERT INTO cidr_collections (account_id, name) VALUES ($1, $2)
             ON CONFLICT (account_id, name) DO NOTHING RETURNING id, created_at",
        )
        .bind(account_id)
        .bind(&spec.name)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = inserted else { return Err(collection_name_taken(&spec.name)) };
        let id: String = row.try_get("id")?;
        insert_locations(&mut tx, &id, &spec.locations).await?;
        log_routing(&mut tx, account_id, &format!("CIDR collection {id} created")).await?;
        tx.commit().await?;
        Ok(CidrCollection {
            id,
            name: spec.name,
            locations: spec.locations,
            created_at: row.try_get("created_at")?,
        })
    }

    /// Replaces a collection's name and locations. Refused with
    /// [`StoreError::Conflict`] (field `locations`) when a record set uses a
    /// location the new set drops; [`StoreError::NotFound`] when missing.
    pub async fn replace_cidr_collection(
        &self,
        account_id: &str,
        collection_id: &str,
        spec: &CidrCollectionSpec,
    ) -> Result<CidrCollection> {
        let spec = validate_collection(spec)?;
        let mut tx = self.pool().begin().await?;
        lock_account(&mut tx, account_id).await?;
        let row = sqlx::query(
            "SELECT created_at FROM cidr_collections WHERE id = $1 AND account_id = $2 FOR UPDATE",
        )
        .bind(collection_id)
        .bind(account_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Err(StoreError::NotFound(format!("CIDR collection {collection_id}")));
        };
        let kept: Vec<&str> = spec.locations.iter().map(|l| l.name.as_str()).collect();
        let user = sqlx::query(
            "SELECT r.name || ' ' || r.type || coalesce(' (' || r.set_identifier || ')', '') AS what,
                    r.cidr_location AS location
             FROM record_sets r
             WHERE r.cidr_collection_id = $1 AND r.cidr_location <> '*' AND NOT (r.cidr_location = ANY($2))
             LIMIT 1",
        )
        .bind(collection_id)
        .bind(&kept)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(user) = user {
            let what: String = user.try_get("what")?;
            let location: String = user.try_get("location")?;
            return Err(StoreError::Conflict {
                field: "locations".into(),
                message: format!(
                    "location {location} is used by the record set {what}; keep it or change that first"
                ),
            });
        }
        let renamed = sqlx::query("UPDATE cidr_collections SET name = $2 WHERE id = $1")
            .bind(collection_id)
            .bind(&spec.name)
            .execute(&mut *tx)
            .await;
        if let Err(e) = renamed {
            let e = StoreError::from(e);
            return Err(if is_unique_violation(&e) { collection_name_taken(&spec.name) } else { e });
        }
        sqlx::query("DELETE FROM cidr_locations WHERE collection_id = $1")
            .bind(collection_id)
            .execute(&mut *tx)
            .await?;
        insert_locations(&mut tx, collection_id, &spec.locations).await?;
        log_routing(&mut tx, account_id, &format!("CIDR collection {collection_id} changed")).await?;
        tx.commit().await?;
        Ok(CidrCollection {
            id: collection_id.to_string(),
            name: spec.name,
            locations: spec.locations,
            created_at: row.try_get("created_at")?,
        })
    }

    /// Deletes a collection. Refused with [`StoreError::Conflict`] (409)
    /// while a record set uses it; [`StoreError::NotFound`] when missing.
    pub async fn delete_cidr_collection(&self, account_id: &str, collection_id: &str) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        lock_account(&mut tx, account_id).await?;
        let found =
            sqlx::query("SELECT id FROM cidr_collections WHERE id = $1 AND account_id = $2 FOR UPDATE")
                .bind(collection_id)
                .bind(account_id)
                .fetch_optional(&mut *tx)
                .await?;
        if found.is_none() {
            return Err(StoreError::NotFound(format!("CIDR collection {collection_id}")));
        }
        let user = sqlx::query(
            "SELECT r.name || ' ' || r.type || coalesce(' (' || r.set_identifier || ')', '') AS what
             FROM record_sets r WHERE r.cidr_collection_id = $1 LIMIT 1",
        )
        .bind(collection_id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(user) = user {
            return Err(collection_in_use(collection_id, &user.try_get::<String, _>("what")?));
        }
        let deleted = sqlx::query("DELETE FROM cidr_collections WHERE id = $1")
            .bind(collection_id)
            .execute(&mut *tx)
            .await;
        if let Err(e) = deleted {
            let e = StoreError::from(e);
            if e.sqlstate().as_deref() == Some("23503") {
                return Err(collection_in_use(collection_id, "added meanwhile"));
            }
            return Err(e);
        }
        log_routing(&mut tx, account_id, &format!("CIDR collection {collection_id} deleted")).await?;
        tx.commit().await?;
        Ok(())
    }

    /// One of the account's collections ([`StoreError::NotFound`]: 404).
    pub async fn cidr_collection(&self, account_id: &str, collection_id: &str) -> Result<CidrCollection> {
        let row = sqlx::query(
            "SELECT id, name, created_at FROM cidr_collections WHERE id = $1 AND account_id = $2",
        )
        .bind(collection_id)
        .bind(account_id)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Err(StoreError::NotFound(format!("CIDR collection {collection_id}")));
        };
        let id: String = row.try_get("id")?;
        let mut locations = locations_of(self.pool(), std::slice::from_ref(&id)).await?;
        Ok(CidrCollection {
            locations: locations.remove(&id).unwrap_or_default(),
            name: row.try_get("name")?,
            created_at: row.try_get("created_at")?,
            id,
        })
    }

    /// The account's collections by name, after the name `after`, at most
    /// `limit`; `more` says whether a next page exists.
    pub async fn list_cidr_collections(
        &self,
        account_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<CidrCollection>> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await?;
        let rows = sqlx::query(
            "SELECT id, name, created_at FROM cidr_collections
             WHERE account_id = $1 AND ($2::text IS NULL OR name COLLATE \"C\" > $2)
             ORDER BY name COLLATE \"C\" LIMIT $3",
        )
        .bind(account_id)
        .bind(after)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX - 1).saturating_add(1))
        .fetch_all(&mut *tx)
        .await?;
        let more = rows.len() > limit;
        let rows = &rows[..rows.len().min(limit)];
        let ids: Vec<String> = rows.iter().map(|r| r.try_get("id")).collect::<Result<_, _>>()?;
        let mut locations = locations_of(&mut *tx, &ids).await?;
        tx.commit().await?;
        let items = rows
            .iter()
            .map(|r| {
                let id: String = r.try_get("id")?;
                Ok(CidrCollection {
                    locations: locations.remove(&id).unwrap_or_default(),
                    name: r.try_get("name")?,
                    created_at: r.try_get("created_at")?,
                    id,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Page { items, more })
    }

    /// Replaces the account's latency table. Regions must be built-in or the
    /// account's own ([`StoreError::Invalid`] naming `entries[i].region`).
    /// Returns the stored table.
    pub async fn set_latency_table(
        &self,
        account_id: &str,
        entries: &[LatencyEntry],
    ) -> Result<Vec<LatencyEntry>> {
        let entries = validate_latency_table(entries)?;
        let mut tx = self.pool().begin().await?;
        lock_account(&mut tx, account_id).await?;
        let own: HashSet<String> = sqlx::query("SELECT code FROM regions WHERE account_id = $1")
            .bind(account_id)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get("code"))
            .collect::<Result<_, _>>()?;
        for (i, entry) in entries.iter().enumerate() {
            if builtin_region(&entry.region).is_none() && !own.contains(&entry.region) {
                return Err(ValidationError::new(
                    format!("entries[{i}].region"),
                    format!(
                        "unknown region {:?}: use a built-in region (GET /v1/regions) or add it with PUT /v1/regions/{{code}}",
                        entry.region
                    ),
                )
                .into());
            }
        }
        sqlx::query("DELETE FROM latency_entries WHERE account_id = $1")
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
        let cidrs: Vec<&str> = entries.iter().map(|e| e.cidr.as_str()).collect();
        let regions: Vec<&str> = entries.iter().map(|e| e.region.as_str()).collect();
        let latencies: Vec<f32> = entries.iter().map(|e| e.latency_ms as f32).collect();
        sqlx::query(
            "INSERT INTO latency_entries (account_id, cidr, region, latency_ms)
             SELECT $1, c::cidr, r, l FROM unnest($2::text[], $3::text[], $4::real[]) AS t(c, r, l)",
        )
        .bind(account_id)
        .bind(&cidrs)
        .bind(&regions)
        .bind(&latencies)
        .execute(&mut *tx)
        .await?;
        let table = latency_rows(&mut tx, account_id).await?;
        log_routing(&mut tx, account_id, &format!("latency table: {} entries", entries.len())).await?;
        tx.commit().await?;
        Ok(table)
    }

    /// The account's latency table, by block and region.
    pub async fn latency_table(&self, account_id: &str) -> Result<Vec<LatencyEntry>> {
        let mut conn = self.pool().acquire().await?;
        latency_rows(&mut conn, account_id).await
    }

    /// The regions the account can use: the built-in table with the
    /// account's overrides applied, and the regions it added; by code.
    pub async fn account_regions(&self, account_id: &str) -> Result<Vec<RegionInfo>> {
        let rows = sqlx::query("SELECT code, latitude, longitude FROM regions WHERE account_id = $1")
            .bind(account_id)
            .fetch_all(self.pool())
            .await?;
        let mut by_code: HashMap<String, RegionInfo> = REGIONS
            .iter()
            .map(|&(code, latitude, longitude)| {
                let info = RegionInfo {
                    code: code.to_string(),
                    coordinates: Coordinates { latitude, longitude },
                    built_in: true,
                };
                (code.to_string(), info)
            })
            .collect();
        for row in rows {
            let code: String = row.try_get("code")?;
            let coordinates =
                Coordinates { latitude: row.try_get("latitude")?, longitude: row.try_get("longitude")? };
            by_code.insert(code.clone(), RegionInfo { code, coordinates, built_in: false });
        }
        let mut out: Vec<RegionInfo> = by_code.into_values().collect();
        out.sort_by(|a, b| a.code.cmp(&b.code));
        Ok(out)
    }

    /// Adds a region for the account, or overrides a built-in one's
    /// coordinates. The code's shape is the caller's to check.
    pub async fn put_region(
        &self,
        account_id: &str,
        code: &str,
        coordinates: Coordinates,
    ) -> Result<RegionInfo> {
        let coordinates = validate_coordinates(coordinates)?;
        let mut tx = self.pool().begin().await?;
        lock_account(&mut tx, account_id).await?;
        let count: i64 =
            sqlx::query("SELECT count(*) AS n FROM regions WHERE account_id = $1 AND code <> $2")
                .bind(account_id)
                .bind(code)
                .fetch_one(&mut *tx)
                .await?
                .try_get("n")?;
        if count >= MAX_ACCOUNT_REGIONS {
            return Err(ValidationError::new(
                "code",
                format!("the account has {count} regions of its own; the limit is {MAX_ACCOUNT_REGIONS}"),
            )
            .into());
        }
        sqlx::query(
            "INSERT INTO regions (account_id, code, latitude, longitude) VALUES ($1, $2, $3, $4)
             ON CONFLICT ((coalesce(account_id, '')), code)
             DO UPDATE SET latitude = excluded.latitude, longitude = excluded.longitude",
        )
        .bind(account_id)
        .bind(code)
        .bind(coordinates.latitude)
        .bind(coordinates.longitude)
        .execute(&mut *tx)
        .await?;
        log_routing(&mut tx, account_id, &format!("region {code} set")).await?;
        tx.commit().await?;
        Ok(RegionInfo { code: code.to_string(), coordinates, built_in: false })
    }

    /// Removes the account's own entry for a region (a built-in region gets
    /// its built-in coordinates back). [`StoreError::NotFound`] when the
    /// account has none; [`StoreError::Conflict`] when a region that is not
    /// built in is still used by the latency table or a record set.
    pub async fn delete_region(&self, account_id: &str, code: &str) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        lock_account(&mut tx, account_id).await?;
        let found = sqlx::query("SELECT 1 FROM regions WHERE account_id = $1 AND code = $2")
            .bind(account_id)
            .bind(code)
            .fetch_optional(&mut *tx)
            .await?;
        if found.is_none() {
            return Err(StoreError::NotFound(format!("region {code} of this account")));
        }
        if builtin_region(code).is_none() {
            let user = sqlx::query(
                "SELECT 'the latency table' AS what FROM latency_entries WHERE account_id = $1 AND region = $2
                 UNION ALL
                 SELECT 'the record set ' || r.name || ' ' || r.type || coalesce(' (' || r.set_identifier || ')', '')
                 FROM record_sets r JOIN hosted_zones z ON z.id = r.zone_id
                 WHERE z.account_id = $1 AND (r.region = $2 OR r.geoproximity_region = $2)
                 LIMIT 1",
            )
            .bind(account_id)
            .bind(code)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(user) = user {
                let what: String = user.try_get("what")?;
                return Err(StoreError::Conflict {
                    field: "code".into(),
                    message: format!("region {code} is used by {what}; change that first"),
                });
            }
        }
        sqlx::query("DELETE FROM regions WHERE account_id = $1 AND code = $2")
            .bind(account_id)
            .bind(code)
            .execute(&mut *tx)
            .await?;
        log_routing(&mut tx, account_id, &format!("region {code} removed")).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The account's zones in creation order (the order of the hosted-zone
    /// price tiers).
    pub async fn zones_by_creation(&self, account_id: &str) -> Result<Vec<ZoneCreated>> {
        let rows = sqlx::query(
            "SELECT id, created_at FROM hosted_zones WHERE account_id = $1 ORDER BY created_at, id",
        )
        .bind(account_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok(ZoneCreated { id: r.try_get("id")?, created_at: r.try_get("created_at")? }))
            .collect()
    }

    /// Every zone of the account with its record sets, read in one
    /// consistent snapshot (what a DNS server would hold for the account).
    pub async fn load_account_zones(&self, account_id: &str) -> Result<Vec<(HostedZone, Vec<RecordSet>)>> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await?;
        let zone_rows = sqlx::query(
            "SELECT id, account_id, name, serial FROM hosted_zones WHERE account_id = $1 ORDER BY id",
        )
        .bind(account_id)
        .fetch_all(&mut *tx)
        .await?;
        let mut zones = Vec::with_capacity(zone_rows.len());
        for row in &zone_rows {
            let zone = rows::zone_from_row(row)?;
            let rrsets = rows::zone_rrsets(&mut *tx, &zone.id).await?;
            zones.push((zone, rrsets));
        }
        tx.commit().await?;
        Ok(zones)
    }
}

async fn latency_rows(conn: &mut PgConnection, account_id: &str) -> Result<Vec<LatencyEntry>> {
    let rows = sqlx::query(
        "SELECT cidr::text AS cidr, region, latency_ms FROM latency_entries WHERE account_id = $1
         ORDER BY family(cidr), cidr, region COLLATE \"C\"",
    )
    .bind(account_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            let ms: f32 = r.try_get("latency_ms")?;
            Ok(LatencyEntry {
                cidr: r.try_get("cidr")?,
                region: r.try_get("region")?,
                latency_ms: f64::from(ms),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collection_ids_are_uuids_or_the_old_shape() {
        assert!(is_collection_id("c8c02a84-aaaa-4bbb-8ccc-0123456789ab"));
        assert!(is_collection_id("C0123456789ABCDEF0123"));
        assert!(!is_collection_id("C8C02A84-AAAA-4BBB-8CCC-0123456789AB"));
        assert!(!is_collection_id("c8c02a84-aaaa-4bbb-8ccc-0123456789a"));
        assert!(!is_collection_id("Z0123456789ABCDEF0123"));
        assert!(!is_collection_id(""));
    }

    fn collection(locations: &[(&str, &[&str])]) -> CidrCollectionSpec {
        CidrCollectionSpec {
            name: "offices".into(),
            locations: locations
                .iter()
                .map(|(name, cidrs)| CidrLocation {
                    name: name.to_string(),
                    cidrs: cidrs.iter().map(|c| c.to_string()).collect(),
                })
                .collect(),
        }
    }

    fn field(spec: &CidrCollectionSpec) -> String {
        validate_collection(spec).unwrap_err().field
    }

    #[test]
    fn collections_follow_route53_rules() {
        let ok =
            validate_collection(&collection(&[("b", &["10.0.0.0/8"]), ("a", &["2001:db8::/32"])])).unwrap();
        assert_eq!(ok.locations[0].name, "a", "locations are sorted by name");
        assert_eq!(field(&CidrCollectionSpec { name: "bad name".into(), ..collection(&[]) }), "name");
        assert_eq!(field(&CidrCollectionSpec { name: "x".repeat(65), ..collection(&[]) }), "name");
        assert_eq!(field(&collection(&[("*", &["10.0.0.0/8"])])), "locations[0].name");
        assert_eq!(field(&collection(&[("seventeen-chars-x", &["10.0.0.0/8"])])), "locations[0].name");
        assert_eq!(
            field(&collection(&[("a", &["10.0.0.0/8"]), ("a", &["11.0.0.0/8"])])),
            "locations[1].name"
        );
        assert_eq!(field(&collection(&[("a", &[])])), "locations[0].cidrs");
        assert_eq!(field(&collection(&[("a", &["10.0.0.1/8"])])), "locations[0].cidrs[0]", "host bits");
        assert_eq!(
            field(&collection(&[("a", &["10.0.0.0/25"])])),
            "locations[0].cidrs[0]",
            "longer than /24"
        );
        assert_eq!(field(&collection(&[("a", &["2001:db8::/49"])])), "locations[0].cidrs[0]");
        assert_eq!(field(&collection(&[("a", &["0.0.0.0/0"])])), "locations[0].cidrs[0]");
        assert_eq!(
            field(&collection(&[("a", &["10.0.0.0/8"]), ("b", &["10.0.0.0/8"])])),
            "locations[1].cidrs[0]"
        );
        let many: Vec<String> = (0..1001).map(|i| format!("10.{}.{}.0/24", i / 256, i % 256)).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(field(&collection(&[("a", &many)])), "locations");
        // Overlapping blocks in different locations are fine (longest match wins).
        assert!(validate_collection(&collection(&[("a", &["10.0.0.0/8"]), ("b", &["10.1.0.0/16"])])).is_ok());
    }

    #[test]
    fn latency_entries_are_checked() {
        let entry = |cidr: &str, region: &str, ms: f64| LatencyEntry {
            cidr: cidr.into(),
            region: region.into(),
            latency_ms: ms,
        };
        let ok = validate_latency_table(&[entry("10.0.0.0/8", "us-east-1", 12.5)]).unwrap();
        assert_eq!(ok[0].cidr, "10.0.0.0/8");
        let field = |entries: &[LatencyEntry]| validate_latency_table(entries).unwrap_err().field;
        assert_eq!(field(&[entry("10.0.0.1/8", "us-east-1", 1.0)]), "entries[0].cidr");
        assert_eq!(field(&[entry("10.0.0.0/8", "us-east-1", -1.0)]), "entries[0].latencyMs");
        assert_eq!(field(&[entry("10.0.0.0/8", "us-east-1", f64::NAN)]), "entries[0].latencyMs");
        assert_eq!(
            field(&[entry("10.0.0.0/8", "us-east-1", 1.0), entry("10.0.0.0/8", "us-east-1", 2.0)]),
            "entries[1]"
        );
        assert_eq!(field(&[entry("10.0.0.0/8", "", 1.0)]), "entries[0].region");
    }

    #[test]
    fn coordinates_are_checked() {
        assert!(validate_coordinates(Coordinates { latitude: 90.0, longitude: -180.0 }).is_ok());
        let bad = validate_coordinates(Coordinates { latitude: 91.0, longitude: 0.0 }).unwrap_err();
        assert_eq!(bad.field, "latitude");
        let bad = validate_coordinates(Coordinates { latitude: 0.0, longitude: 180.5 }).unwrap_err();
        assert_eq!(bad.field, "longitude");
    }
}
