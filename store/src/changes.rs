//! Change batches: CREATE / UPSERT / DELETE of record sets applied in one
//! transaction that also bumps the zone's serial, appends to the change log
//! and notifies the DNS servers. A batch with any bad change changes nothing.

use serde::{Deserialize, Serialize};
use signpost_core::validate::{check_zone_consistency, validate_record_set};
use signpost_core::{HostedZone, RecordSet, ValidationError};
use sqlx::{PgConnection, Row};

use crate::feed::{NewChange, append};
use crate::rows::{RrsetRow, SELECT_RRSET_BY_KEY, insert_rrset, zone_from_row, zone_rrsets};
use crate::{DNS_SERVER_LIVENESS, Result, Store, StoreError};

/// Route 53's bound on records in one batch.
pub const MAX_BATCH_RECORDS: usize = 1000;
/// Route 53's bound on characters of record values in one batch.
pub const MAX_BATCH_VALUE_CHARS: usize = 32_000;

/// What a change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ChangeAction {
    /// Add a record set that must not exist.
    Create,
    /// Add or replace.
    Upsert,
    /// Remove a record set that must match exactly.
    Delete,
}

/// One change of a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// What to do.
    pub action: ChangeAction,
    /// The record set.
    pub rrset: RecordSet,
}

/// Propagation state of a change (Route 53's PENDING → INSYNC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ChangeStatus {
    /// Not yet applied by every live DNS server.
    Pending,
    /// Applied by every live DNS server.
    Insync,
}

/// A committed change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeInfo {
    /// Public id (`C…`).
    pub id: String,
    /// Propagation state.
    pub status: ChangeStatus,
    /// When it was committed.
    pub submitted_at: chrono::DateTime<chrono::Utc>,
    /// Position in the change log.
    #[serde(skip)]
    pub seq: i64,
}

fn is_unique_violation(e: &StoreError) -> bool {
    match e {
        StoreError::Database(sqlx::Error::Database(db)) => db.code().as_deref() == Some("23505"),
        _ => false,
    }
}

/// Checks Route 53's batch bounds.
fn check_batch_bounds(changes: &[Change]) -> Result<(), ValidationError> {
    if changes.is_empty() {
        return Err(ValidationError::new("changes", "a batch needs at least one change"));
    }
    let records: usize = changes.iter().map(|c| c.rrset.records.len().max(1)).sum();
    if records > MAX_BATCH_RECORDS {
        return Err(ValidationError::new(
            "changes",
            format!("{records} records in one batch; the limit is {MAX_BATCH_RECORDS}"),
        ));
    }
    let chars: usize = changes.iter().flat_map(|c| c.rrset.records.iter()).map(|r| r.chars().count()).sum();
    if chars > MAX_BATCH_VALUE_CHARS {
        return Err(ValidationError::new(
            "changes",
            format!("{chars} characters of record values in one batch; the limit is {MAX_BATCH_VALUE_CHARS}"),
        ));
    }
    Ok(())
}

fn same_rrset(a: &RecordSet, b: &RecordSet) -> bool {
    let mut a = a.clone();
    let mut b = b.clone();
    a.records.sort();
    b.records.sort();
    a == b
}

/// A check of a zone's record sets as a batch leaves them, run inside the
/// batch's transaction before it commits (an error rolls the batch back).
pub type ZoneCheck<'a> = &'a (dyn Fn(&HostedZone, &[RecordSet]) -> Result<()> + Send + Sync);

impl Store {
    /// Applies a batch of changes to a zone atomically and returns the change.
    /// `account_id`, when given, must own the zone (else NotFound).
    pub async fn apply_changes(
        &self,
        zone_id: &str,
        account_id: Option<&str>,
        changes: &[Change],
        comment: Option<&str>,
    ) -> Result<ChangeInfo> {
        self.apply_changes_checked(zone_id, account_id, changes, comment, &|_, _| Ok(())).await
    }

    /// [`Store::apply_changes`] with `check` run on the zone's record sets
    /// after the batch, under the zone's lock (the control API's group rules).
    pub async fn apply_changes_checked(
        &self,
        zone_id: &str,
        account_id: Option<&str>,
        changes: &[Change],
        comment: Option<&str>,
        check: ZoneCheck<'_>,
    ) -> Result<ChangeInfo> {
        let mut tx = self.pool().begin().await?;
        // Route 53's record-set quota, checked on the zone as the batch leaves it.
        let quotas = &self.rules().quotas;
        let with_quota = |zone: &HostedZone, all: &[RecordSet]| -> Result<()> {
            crate::tenancy::check_record_set_quota(quotas, all.len(), changes)?;
            check(zone, all)
        };
        let info = apply_changes_in(&mut tx, zone_id, account_id, changes, comment, &with_quota).await?;
        tx.commit().await?;
        Ok(info)
    }

    /// Makes a zone's content equal to `rrsets` (zone import) in one change.
    pub async fn replace_zone_contents(
        &self,
        zone_id: &str,
        account_id: Option<&str>,
        rrsets: &[RecordSet],
        comment: Option<&str>,
    ) -> Result<ChangeInfo> {
        let mut tx = self.pool().begin().await?;
        let zone = lock_zone(&mut tx, zone_id, account_id).await?;
        let apex = signpost_core::names::parse_name(&zone.name, "zone")?;
        let mut canonical = Vec::with_capacity(rrsets.len());
        for (i, rrset) in rrsets.iter().enumerate() {
            let parsed = validate_record_set(&apex, rrset).map_err(|e| e.within(&format!("rrsets[{i}]")))?;
            canonical.push(parsed.canonical);
        }
        check_zone_consistency(&apex, &canonical)?;
        sqlx::query("DELETE FROM record_sets WHERE zone_id = $1").bind(&zone.id).execute(&mut *tx).await?;
        for (i, rrset) in canonical.iter().enumerate() {
            insert_rrset(&mut tx, &zone.id, rrset).await.map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict {
                        field: format!("rrsets[{i}]"),
                        message: "duplicate record set".into(),
                    }
                } else {
                    e
                }
            })?;
        }
        let info = finish_zone_change(&mut tx, &zone, account_id, comment).await?;
        tx.commit().await?;
        Ok(info)
    }

    /// Deletes a zone and everything in it.
    pub async fn delete_zone(&self, zone_id: &str, account_id: Option<&str>) -> Result<ChangeInfo> {
        let mut tx = self.pool().begin().await?;
        let zone = lock_zone(&mut tx, zone_id, account_id).await?;
        sqlx::query("DELETE FROM hosted_zones WHERE id = $1").bind(&zone.id).execute(&mut *tx).await?;
        let info = append(
            &mut tx,
            NewChange::zone_deleted(&zone.account_id, &zone.id).comment(Some("zone deleted")),
        )
        .await?;
        tx.commit().await?;
        Ok(info)
    }

    /// A change by id, with its propagation state.
    pub async fn change(&self, change_id: &str, account_id: Option<&str>) -> Result<ChangeInfo> {
        let row = sqlx::query(
            "SELECT c.seq, c.id, c.submitted_at,
                    NOT EXISTS (SELECT 1 FROM dns_servers s
                                WHERE s.heartbeat_at > now() - make_interval(secs => $3)
                                  AND s.last_change_seq < c.seq) AS insync
             FROM changes c WHERE c.id = $1 AND ($2::text IS NULL OR c.account_id = $2)",
        )
        .bind(change_id)
        .bind(account_id)
        .bind(DNS_SERVER_LIVENESS.as_secs_f64())
        .fetch_optional(self.pool())
        .await?;
        let row = row.ok_or_else(|| StoreError::NotFound(format!("change {change_id}")))?;
        let insync: bool = row.try_get("insync")?;
        Ok(ChangeInfo {
            id: row.try_get("id")?,
            status: if insync { ChangeStatus::Insync } else { ChangeStatus::Pending },
            submitted_at: row.try_get("submitted_at")?,
            seq: row.try_get("seq")?,
        })
    }
}

/// [`Store::apply_changes_checked`] inside the caller's transaction, which
/// the caller commits: locks the zone, applies the batch, runs the checks,
/// bumps the serial and appends the change to the log as the last statement
/// (from then on other appends wait for this transaction to end).
pub async fn apply_changes_in(
    conn: &mut PgConnection,
    zone_id: &str,
    account_id: Option<&str>,
    changes: &[Change],
    comment: Option<&str>,
    check: ZoneCheck<'_>,
) -> Result<ChangeInfo> {
    check_batch_bounds(changes)?;
    let zone = lock_zone(&mut *conn, zone_id, account_id).await?;
    let apex = signpost_core::names::parse_name(&zone.name, "zone")?;
    for (i, change) in changes.iter().enumerate() {
        let field = format!("changes[{i}].rrset");
        let parsed = validate_record_set(&apex, &change.rrset).map_err(|e| e.within(&field))?;
        let rrset = parsed.canonical;
        if matches!(rrset.rtype.as_str(), "SOA") && change.action != ChangeAction::Upsert {
            return Err(ValidationError::new(
                format!("{field}.type"),
                "the SOA record set can only be changed with UPSERT",
            )
            .into());
        }
        let existing: Option<RrsetRow> = sqlx::query_as(SELECT_RRSET_BY_KEY)
            .bind(&zone.id)
            .bind(&rrset.name)
            .bind(&rrset.rtype)
            .bind(&rrset.set_identifier)
            .fetch_optional(&mut *conn)
            .await?;
        let existing = existing.map(RrsetRow::into_record_set);
        let describe = || format!("[name='{}', type='{}'{}]", rrset.name, rrset.rtype, set_id_text(&rrset));
        match change.action {
            ChangeAction::Create => {
                if existing.is_some() {
                    return Err(StoreError::Conflict {
                        field,
                        message: format!(
                            "Tried to create resource record set {} but it already exists",
                            describe()
                        ),
                    });
                }
                insert_rrset(&mut *conn, &zone.id, &rrset).await?;
            }
            ChangeAction::Upsert => {
                if existing.is_some() {
                    delete_by_key(&mut *conn, &zone.id, &rrset).await?;
                }
                insert_rrset(&mut *conn, &zone.id, &rrset).await?;
            }
            ChangeAction::Delete => {
                if matches!(rrset.rtype.as_str(), "NS") && rrset.name == zone.name {
                    return Err(ValidationError::new(
                        format!("{field}.type"),
                        "the apex NS record set cannot be deleted",
                    )
                    .into());
                }
                match existing {
                    Some(stored) if same_rrset(&stored, &rrset) => {
                        delete_by_key(&mut *conn, &zone.id, &rrset).await?;
                    }
                    Some(_) => {
                        return Err(StoreError::Conflict {
                            field,
                            message: format!(
                                "Tried to delete resource record set {} but the values provided do not match the current values",
                                describe()
                            ),
                        });
                    }
                    None => {
                        return Err(StoreError::NotFound(format!(
                            "resource record set {} (changes[{i}])",
                            describe()
                        )));
                    }
                }
            }
        }
    }
    let all = zone_rrsets(&mut *conn, &zone.id).await?;
    check(&zone, &all)?;
    check_zone_consistency(&apex, &all)?;
    finish_zone_change(conn, &zone, account_id, comment).await
}

fn set_id_text(rrset: &RecordSet) -> String {
    match &rrset.set_identifier {
        Some(id) => format!(", set-identifier='{id}'"),
        None => String::new(),
    }
}

async fn lock_zone(conn: &mut PgConnection, zone_id: &str, account_id: Option<&str>) -> Result<HostedZone> {
    let row = sqlx::query(
        "SELECT id, account_id, name, serial FROM hosted_zones
         WHERE id = $1 AND ($2::text IS NULL OR account_id = $2) FOR UPDATE",
    )
    .bind(zone_id)
    .bind(account_id)
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some(row) => zone_from_row(&row),
        None => Err(StoreError::NotFound(format!("hosted zone {zone_id}"))),
    }
}

async fn delete_by_key(conn: &mut PgConnection, zone_id: &str, rrset: &RecordSet) -> Result<()> {
    sqlx::query(
        "DELETE FROM record_sets WHERE zone_id = $1 AND name = $2 AND type = $3
         AND coalesce(set_identifier, '') = coalesce($4, '')",
    )
    .bind(zone_id)
    .bind(&rrset.name)
    .bind(&rrset.rtype)
    .bind(&rrset.set_identifier)
    .execute(conn)
    .await?;
    Ok(())
}

/// Bumps the serial (wrapping within 32 bits, never 0) and logs the change.
async fn finish_zone_change(
    conn: &mut PgConnection,
    zone: &HostedZone,
    account_id: Option<&str>,
    comment: Option<&str>,
) -> Result<ChangeInfo> {
    sqlx::query("UPDATE hosted_zones SET serial = CASE WHEN serial >= 4294967295 THEN 1 ELSE serial + 1 END WHERE id = $1")
        .bind(&zone.id)
        .execute(&mut *conn)
        .await?;
    let account_id = account_id.unwrap_or(&zone.account_id);
    append(conn, NewChange::zone(account_id, &zone.id).comment(comment)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_bounds_follow_route53() {
        let change = |n: usize| Change {
            action: ChangeAction::Create,
            rrset: RecordSet {
                records: (0..n).map(|i| format!("192.0.2.{}", i % 250)).collect(),
                ..RecordSet::default()
            },
        };
        assert!(check_batch_bounds(&[]).is_err());
        assert!(check_batch_bounds(&[change(1000)]).is_ok());
        assert!(check_batch_bounds(&[change(1000), change(1)]).unwrap_err().message.contains("1000"));
        let long = Change {
            action: ChangeAction::Create,
            rrset: RecordSet { records: vec!["x".repeat(32_001)], ..RecordSet::default() },
        };
        assert!(check_batch_bounds(&[long]).unwrap_err().message.contains("32000"));
    }
}
