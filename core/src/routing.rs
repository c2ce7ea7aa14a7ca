//! Per-account routing data the policies read: CIDR collections (IP-based
//! routing), the measured latency table, and region coordinates.

use std::collections::HashMap;

use crate::cidr::{Prefix, PrefixMap};
use crate::geo::builtin_region;
use crate::model::Coordinates;

/// One account's routing data, as loaded into the snapshot.
#[derive(Debug, Default)]
pub struct AccountRouting {
    /// CIDR collection id → blocks → location name.
    pub cidr_collections: HashMap<String, PrefixMap<String>>,
    /// Measured latency: client network → (region, milliseconds).
    pub latency: PrefixMap<Vec<(String, f32)>>,
    /// Region coordinates the account added or overrode.
    pub regions: HashMap<String, Coordinates>,
}

/// A CIDR collection as stored: id and its locations' blocks.
#[derive(Debug, Clone)]
pub struct CidrCollectionData {
    /// Collection id.
    pub id: String,
    /// Location name and its blocks.
    pub locations: Vec<(String, Vec<Prefix>)>,
}

impl AccountRouting {
    /// Builds the lookup tables.
    pub fn build(
        collections: Vec<CidrCollectionData>,
        latency: Vec<(Prefix, String, f32)>,
        regions: Vec<(String, Coordinates)>,
    ) -> Self {
        let cidr_collections = collections
            .into_iter()
            .map(|c| {
                let blocks = c
                    .locations
                    .into_iter()
                    .flat_map(|(name, prefixes)| prefixes.into_iter().map(move |p| (p, name.clone())));
                (c.id, PrefixMap::new(blocks))
            })
            .collect();
        let mut by_block: HashMap<Prefix, Vec<(String, f32)>> = HashMap::new();
        for (prefix, region, ms) in latency {
            by_block.entry(prefix).or_default().push((region, ms));
        }
        AccountRouting {
            cidr_collections,
            latency: PrefixMap::new(by_block),
            regions: regions.into_iter().collect(),
        }
    }

    /// Coordinates of a region: the account's own, else the built-in table.
    pub fn region(&self, code: &str) -> Option<Coordinates> {
        self.regions.get(code).copied().or_else(|| builtin_region(code))
    }
}
