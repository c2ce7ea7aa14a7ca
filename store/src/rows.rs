//! Mapping between `record_sets` / `hosted_zones` rows and the core model.

use signpost_core::model::{
    AliasTarget, AllUnhealthy, CidrRouting, Coordinates, Failover, GeoLocation, GeoProximity,
};
use signpost_core::{HostedZone, RecordSet};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Postgres, Row};

use crate::Result;

macro_rules! rrset_columns {
    () => {
        "zone_id, name, type, set_identifier, ttl, records, weight, region, geo_continent, geo_country, \
         geo_subdivision, geoproximity_region, geoproximity_latitude, geoproximity_longitude, \
         geoproximity_bias, failover, multivalue_answer, health_check_id, cidr_collection_id, \
         cidr_location, alias_target_name, alias_evaluate_target_health, all_unhealthy"
    };
}

/// Every record set of every zone.
pub(crate) const SELECT_ALL_RRSETS: &str =
    concat!("SELECT ", rrset_columns!(), " FROM record_sets ORDER BY zone_id, id");
/// Every record set of one zone (`$1`).
pub(crate) const SELECT_ZONE_RRSETS: &str =
    concat!("SELECT ", rrset_columns!(), " FROM record_sets WHERE zone_id = $1 ORDER BY id");
/// One record set by key (`$1` zone, `$2` name, `$3` type, `$4` set identifier).
pub(crate) const SELECT_RRSET_BY_KEY: &str = concat!(
    "SELECT ",
    rrset_columns!(),
    " FROM record_sets WHERE zone_id = $1 AND name = $2 AND type = $3 \
     AND coalesce(set_identifier, '') = coalesce($4, '') FOR UPDATE"
);

/// A `record_sets` row.
#[derive(sqlx::FromRow)]
pub(crate) struct RrsetRow {
    pub(crate) zone_id: String,
    name: String,
    #[sqlx(rename = "type")]
    rtype: String,
    set_identifier: Option<String>,
    ttl: Option<i32>,
    records: Vec<String>,
    weight: Option<i32>,
    region: Option<String>,
    geo_continent: Option<String>,
    geo_country: Option<String>,
    geo_subdivision: Option<String>,
    geoproximity_region: Option<String>,
    geoproximity_latitude: Option<f64>,
    geoproximity_longitude: Option<f64>,
    geoproximity_bias: Option<i32>,
    failover: Option<String>,
    multivalue_answer: bool,
    health_check_id: Option<String>,
    cidr_collection_id: Option<String>,
    cidr_location: Option<String>,
    alias_target_name: Option<String>,
    alias_evaluate_target_health: Option<bool>,
    all_unhealthy: Option<String>,
}

impl RrsetRow {
    /// The row as the model's record set. Out-of-range stored values become
    /// absent ones; the snapshot builder validates the result again.
    pub(crate) fn into_record_set(self) -> RecordSet {
        let geo_location = if self.geo_continent.is_some() || self.geo_country.is_some() {
            Some(GeoLocation {
                continent: self.geo_continent,
                country: self.geo_country,
                subdivision: self.geo_subdivision,
            })
        } else {
            None
        };
        let has_proximity = self.geoproximity_region.is_some() || self.geoproximity_latitude.is_some();
        let geo_proximity = has_proximity.then(|| GeoProximity {
            region: self.geoproximity_region,
            coordinates: match (self.geoproximity_latitude, self.geoproximity_longitude) {
                (Some(latitude), Some(longitude)) => Some(Coordinates { latitude, longitude }),
                _ => None,
            },
            bias: self.geoproximity_bias.and_then(|b| i8::try_from(b).ok()).unwrap_or(0),
        });
        RecordSet {
            name: self.name,
            rtype: self.rtype,
            ttl: self.ttl.and_then(|t| u32::try_from(t).ok()),
            records: self.records,
            set_identifier: self.set_identifier,
            weight: self.weight.and_then(|w| u8::try_from(w).ok()),
            region: self.region,
            geo_location,
            geo_proximity,
            failover: self.failover.as_deref().and_then(Failover::parse),
            multi_value_answer: self.multivalue_answer.then_some(true),
            health_check_id: self.health_check_id,
            cidr_routing: match (self.cidr_collection_id, self.cidr_location) {
                (Some(collection_id), Some(location_name)) => {
                    Some(CidrRouting { collection_id, location_name })
                }
                _ => None,
            },
            alias_target: self.alias_target_name.map(|name| AliasTarget {
                name,
                evaluate_target_health: self.alias_evaluate_target_health.unwrap_or(false),
            }),
            all_unhealthy: self.all_unhealthy.as_deref().and_then(AllUnhealthy::parse),
        }
    }
}

/// A `hosted_zones` row (id, account_id, name, serial).
pub(crate) fn zone_from_row(row: &PgRow) -> Result<HostedZone> {
    Ok(HostedZone {
        id: row.try_get("id")?,
        account_id: row.try_get("account_id")?,
        name: row.try_get("name")?,
        serial: row.try_get("serial")?,
    })
}

/// Every record set of one zone, in stored order.
pub(crate) async fn zone_rrsets<'e, E>(executor: E, zone_id: &str) -> Result<Vec<RecordSet>>
where
    E: sqlx::Executor<'e, Database = Postgres>,
{
    let rows: Vec<RrsetRow> = sqlx::query_as(SELECT_ZONE_RRSETS).bind(zone_id).fetch_all(executor).await?;
    Ok(rows.into_iter().map(RrsetRow::into_record_set).collect())
}

/// Inserts a canonical record set. A duplicate key surfaces as the
/// database's unique violation (the caller turns it into a conflict).
pub(crate) async fn insert_rrset(conn: &mut PgConnection, zone_id: &str, rrset: &RecordSet) -> Result<()> {
    let geo = rrset.geo_location.as_ref();
    let prox = rrset.geo_proximity.as_ref();
    let coords = prox.and_then(|p| p.coordinates);
    sqlx::query(
        "INSERT INTO record_sets (zone_id, name, type, set_identifier, ttl, records, weight, region,
            geo_continent, geo_country, geo_subdivision, geoproximity_region, geoproximity_latitude,
            geoproximity_longitude, geoproximity_bias, failover, multivalue_answer, health_check_id,
            cidr_collection_id, cidr_location, alias_target_name, alias_evaluate_target_health, all_unhealthy)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,
            $21, $22, $23)",
    )
    .bind(zone_id)
    .bind(&rrset.name)
    .bind(&rrset.rtype)
    .bind(&rrset.set_identifier)
    .bind(rrset.ttl.map(|t| t as i32))
    .bind(&rrset.records)
    .bind(rrset.weight.map(i32::from))
    .bind(&rrset.region)
    .bind(geo.and_then(|g| g.continent.clone()))
    .bind(geo.and_then(|g| g.country.clone()))
    .bind(geo.and_then(|g| g.subdivision.clone()))
    .bind(prox.and_then(|p| p.region.clone()))
    .bind(coords.map(|c| c.latitude))
    .bind(coords.map(|c| c.longitude))
    .bind(prox.map(|p| i32::from(p.bias)))
    .bind(rrset.failover.map(Failover::as_str))
    .bind(rrset.multi_value_answer.unwrap_or(false))
    .bind(&rrset.health_check_id)
    .bind(rrset.cidr_routing.as_ref().map(|c| c.collection_id.clone()))
    .bind(rrset.cidr_routing.as_ref().map(|c| c.location_name.clone()))
    .bind(rrset.alias_target.as_ref().map(|a| a.name.clone()))
    .bind(rrset.alias_target.as_ref().map(|a| a.evaluate_target_health))
    .bind(rrset.all_unhealthy.map(AllUnhealthy::as_str))
    .execute(conn)
    .await?;
    Ok(())
}
