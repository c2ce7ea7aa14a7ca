//! Where clients and regions are: the client-location trait the DNS server
//! implements with a MaxMind database, the built-in table of cloud regions,
//! and distances on the Earth.

use std::net::IpAddr;

use crate::model::Coordinates;

/// What a geo database says about an address.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Location {
    /// Continent code (AF AN AS EU NA OC SA).
    pub continent: Option<String>,
    /// ISO 3166-1 alpha-2 country code.
    pub country: Option<String>,
    /// Subdivision code (ISO 3166-2 without the country, e.g. `CA` for California).
    pub subdivision: Option<String>,
    /// Position.
    pub coordinates: Option<Coordinates>,
    /// Length of the database network the address fell in (the ECS scope).
    pub network_len: u8,
}

/// Looks up client addresses.
pub trait GeoLocator: Send + Sync {
    /// The location of `addr`, if known.
    fn locate(&self, addr: IpAddr) -> Option<Location>;
}

/// No geo database: every location is unknown.
pub struct NoGeo;

impl GeoLocator for NoGeo {
    fn locate(&self, _addr: IpAddr) -> Option<Location> {
        None
    }
}

/// Mean Earth radius in km.
const EARTH_RADIUS_KM: f64 = 6371.0;

/// Great-circle distance (haversine) in km.
pub fn distance_km(a: Coordinates, b: Coordinates) -> f64 {
    let (lat1, lat2) = (a.latitude.to_radians(), b.latitude.to_radians());
    let dlat = lat2 - lat1;
    let dlon = (b.longitude - a.longitude).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

/// Route 53's geoproximity bias: positive bias shrinks the distance
/// (`d × (1 − bias/100)`), negative bias grows it (`d / (1 + bias/100)`).
pub fn biased_distance(distance: f64, bias: i8) -> f64 {
    let b = f64::from(bias.clamp(-99, 99)) / 100.0;
    if b >= 0.0 { distance * (1.0 - b) } else { distance / (1.0 + b) }
}

/// Built-in cloud regions (AWS codes) and their approximate coordinates.
pub const REGIONS: &[(&str, f64, f64)] = &[
    ("us-east-1", 38.9, -77.4),
    ("us-east-2", 40.0, -83.0),
    ("us-west-1", 37.4, -121.9),
    ("us-west-2", 45.9, -119.3),
    ("ca-central-1", 45.5, -73.6),
    ("ca-west-1", 51.0, -114.1),
    ("mx-central-1", 20.6, -100.4),
    ("sa-east-1", -23.5, -46.6),
    ("eu-west-1", 53.3, -6.3),
    ("eu-west-2", 51.5, -0.1),
    ("eu-west-3", 48.9, 2.4),
    ("eu-central-1", 50.1, 8.7),
    ("eu-central-2", 47.4, 8.5),
    ("eu-north-1", 59.3, 18.1),
    ("eu-south-1", 45.5, 9.2),
    ("eu-south-2", 41.6, -0.9),
    ("me-south-1", 26.1, 50.6),
    ("me-central-1", 25.2, 55.3),
    ("il-central-1", 32.1, 34.8),
    ("af-south-1", -33.9, 18.4),
    ("ap-east-1", 22.3, 114.2),
    ("ap-south-1", 19.1, 72.9),
    ("ap-south-2", 17.4, 78.5),
    ("ap-northeast-1", 35.7, 139.7),
    ("ap-northeast-2", 37.6, 127.0),
    ("ap-northeast-3", 34.7, 135.5),
    ("ap-southeast-1", 1.3, 103.8),
    ("ap-southeast-2", -33.9, 151.2),
    ("ap-southeast-3", -6.2, 106.8),
    ("ap-southeast-4", -37.8, 145.0),
    ("ap-southeast-5", 3.1, 101.7),
    ("ap-southeast-7", 13.8, 100.5),
    ("cn-north-1", 39.9, 116.4),
    ("cn-northwest-1", 37.5, 105.2),
    ("us-gov-east-1", 40.0, -83.0),
    ("us-gov-west-1", 37.4, -121.9),
];

/// Coordinates of a built-in region.
pub fn builtin_region(code: &str) -> Option<Coordinates> {
    REGIONS
        .iter()
        .find(|(c, _, _)| *c == code)
        .map(|&(_, latitude, longitude)| Coordinates { latitude, longitude })
}

/// The continent codes Route 53 accepts.
pub const CONTINENTS: &[&str] = &["AF", "AN", "AS", "EU", "NA", "OC", "SA"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haversine_matches_known_distances() {
        let london = Coordinates { latitude: 51.5074, longitude: -0.1278 };
        let paris = Coordinates { latitude: 48.8566, longitude: 2.3522 };
        let d = distance_km(london, paris);
        assert!((d - 343.5).abs() < 5.0, "{d}");
        assert_eq!(distance_km(paris, paris), 0.0);
    }

    #[test]
    fn bias_follows_route53() {
        assert_eq!(biased_distance(150.0, 50), 75.0);
        assert_eq!(biased_distance(100.0, -50), 200.0);
        assert_eq!(biased_distance(100.0, 0), 100.0);
    }

    #[test]
    fn regions_are_known() {
        assert!(builtin_region("eu-central-1").is_some());
        assert!(builtin_region("mars-1").is_none());
    }
}
