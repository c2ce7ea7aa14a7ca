//! Client location from a MaxMind DB (GeoLite2-City, GeoIP2-City or any
//! database with the same field names) through the `maxminddb` crate. The
//! database is given as bytes; reading the file is the caller's IO.

use std::net::IpAddr;

use serde::Deserialize;

use crate::geo::{GeoLocator, Location};
use crate::model::Coordinates;

/// A database that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("not a MaxMind database: {0}")]
pub struct GeoIpError(#[from] maxminddb::MaxMindDbError);

/// A MaxMind database held in memory.
pub struct MaxMindLocator {
    reader: maxminddb::Reader<Vec<u8>>,
}

#[derive(Deserialize)]
struct CityRecord<'a> {
    #[serde(borrow)]
    continent: Option<Coded<'a>>,
    #[serde(borrow)]
    country: Option<IsoCoded<'a>>,
    #[serde(borrow)]
    subdivisions: Option<Vec<IsoCoded<'a>>>,
    location: Option<Position>,
}

#[derive(Deserialize)]
struct Coded<'a> {
    code: Option<&'a str>,
}

#[derive(Deserialize)]
struct IsoCoded<'a> {
    iso_code: Option<&'a str>,
}

#[derive(Deserialize)]
struct Position {
    latitude: Option<f64>,
    longitude: Option<f64>,
}

impl MaxMindLocator {
    /// A locator over the database's bytes.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, GeoIpError> {
        Ok(MaxMindLocator { reader: maxminddb::Reader::from_source(bytes)? })
    }
}

impl GeoLocator for MaxMindLocator {
    fn locate(&self, addr: IpAddr) -> Option<Location> {
        let result = self.reader.lookup(addr).ok()?;
        let network_len = result.network().map(|n| n.prefix()).unwrap_or(0);
        let record: Option<CityRecord<'_>> = result.decode().ok().flatten();
        let Some(record) = record else {
            // Not in the database: the location is unknown for the whole network.
            return Some(Location { network_len, ..Location::default() });
        };
        let coordinates = record.location.and_then(|l| match (l.latitude, l.longitude) {
            (Some(latitude), Some(longitude)) => Some(Coordinates { latitude, longitude }),
            _ => None,
        });
        Some(Location {
            continent: record.continent.and_then(|c| c.code).map(str::to_string),
            country: record.country.and_then(|c| c.iso_code).map(str::to_string),
            subdivision: record
                .subdivisions
                .and_then(|s| s.into_iter().next())
                .and_then(|s| s.iso_code)
                .map(str::to_string),
            coordinates,
            network_len,
        })
    }
}
