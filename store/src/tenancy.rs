//! The installation's tenancy rules, applied by the store so that every
//! front end (the /v1 API, `signpost zone import`, anything later) gets
//! them: which zone names may be hosted (no top-level names or public
//! suffixes unless the operator allows them), the names a zone overlaps
//! (its ancestors and descendants, the rows the overlap rule reads), and
//! Route 53's per-account quotas. Pure; the queries live beside the
//! commands that run them (`Store::create_zone`, ...).

use signpost_core::ValidationError;

/// Route 53's default quotas (its DNS quotas page), with a bound on API keys
/// that Route 53 does not have (its keys are IAM's): 100 per account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    /// Hosted zones per account (Route 53: 500).
    pub zones_per_account: u32,
    /// Record sets per hosted zone, SOA and NS included (Route 53: 10,000).
    pub record_sets_per_zone: u32,
    /// Health checks per account (Route 53: 200).
    pub health_checks_per_account: u32,
    /// API keys per account (Signpost's choice: 100).
    pub api_keys_per_account: u32,
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            zones_per_account: 500,
            record_sets_per_zone: 10_000,
            health_checks_per_account: 200,
            api_keys_per_account: 100,
        }
    }
}

/// The installation's rules for tenants, held by the [`crate::Store`] handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TenancyRules {
    /// Allow zones named by a top-level name or a public suffix (`net.`,
    /// `co.uk.`, `in-addr.arpa.`); off by default.
    pub allow_public_suffix_zones: bool,
    /// Per-account quotas.
    pub quotas: Quotas,
}

/// Which quota a refused command would have exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    /// [`Quotas::zones_per_account`].
    ZonesPerAccount,
    /// [`Quotas::record_sets_per_zone`].
    RecordSetsPerZone,
    /// [`Quotas::health_checks_per_account`].
    HealthChecksPerAccount,
    /// [`Quotas::api_keys_per_account`].
    ApiKeysPerAccount,
}

impl Quota {
    /// The setting that raises it (`--max-zones-per-account`, ...).
    pub fn setting(self) -> &'static str {
        match self {
            Quota::ZonesPerAccount => "max-zones-per-account",
            Quota::RecordSetsPerZone => "max-record-sets-per-zone",
            Quota::HealthChecksPerAccount => "max-health-checks-per-account",
            Quota::ApiKeysPerAccount => "max-api-keys-per-account",
        }
    }

    /// What is counted, for messages ("hosted zones per account").
    pub fn counts(self) -> &'static str {
        match self {
            Quota::ZonesPerAccount => "hosted zones per account",
            Quota::RecordSetsPerZone => "record sets per hosted zone",
            Quota::HealthChecksPerAccount => "health checks per account",
            Quota::ApiKeysPerAccount => "API keys per account",
        }
    }

    /// The limit of this quota in `quotas`.
    pub fn limit(self, quotas: &Quotas) -> u32 {
        match self {
            Quota::ZonesPerAccount => quotas.zones_per_account,
            Quota::RecordSetsPerZone => quotas.record_sets_per_zone,
            Quota::HealthChecksPerAccount => quotas.health_checks_per_account,
            Quota::ApiKeysPerAccount => quotas.api_keys_per_account,
        }
    }
}

/// A command refused because it would exceed a quota.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the limit of {limit} {} is reached (the operator's {} setting)", quota.counts(), quota.setting())]
pub struct LimitExceeded {
    /// The quota.
    pub quota: Quota,
    /// Its limit.
    pub limit: u32,
}

/// Refuses when `count` existing objects leave no room for `adding` more.
pub fn check_quota(quota: Quota, quotas: &Quotas, count: i64, adding: i64) -> Result<(), LimitExceeded> {
    let limit = quota.limit(quotas);
    if count.saturating_add(adding) > i64::from(limit) {
        return Err(LimitExceeded { quota, limit });
    }
    Ok(())
}

/// Refuses a batch that leaves a zone with more than the quota of record
/// sets (`after`, counted under the zone's lock). A batch of deletes only is
/// never refused, so a zone above a lowered quota can shrink.
pub fn check_record_set_quota(
    quotas: &Quotas,
    after: usize,
    changes: &[crate::Change],
) -> Result<(), LimitExceeded> {
    let limit = quotas.record_sets_per_zone;
    let only_deletes = changes.iter().all(|c| c.action == crate::ChangeAction::Delete);
    if !only_deletes && after > limit as usize {
        return Err(LimitExceeded { quota: Quota::RecordSetsPerZone, limit });
    }
    Ok(())
}

/// Refuses a zone name that is a top-level name or a public suffix (by the
/// Public Suffix List the `psl` crate embeds; a name under an unlisted
/// top-level domain has that TLD as its suffix) unless allowed. `apex` is
/// canonical text with the trailing dot.
pub fn check_zone_name(apex: &str, rules: &TenancyRules) -> Result<(), ValidationError> {
    if rules.allow_public_suffix_zones {
        return Ok(());
    }
    let bare = apex.strip_suffix('.').unwrap_or(apex);
    if psl::domain(bare.as_bytes()).is_none() {
        let what = if bare.contains('.') { "a public suffix" } else { "a top-level name" };
        return Err(ValidationError::new(
            "name",
            format!(
                "{apex} is {what}: a zone for it would block every other account's zones below it; \
                 the operator can allow such zones with --allow-public-suffix-zones"
            ),
        ));
    }
    Ok(())
}

/// The names above `apex` (canonical text, trailing dot), nearest first,
/// the root excluded: `a.b.c.` → `b.c.`, `c.`. Labels holding an escaped
/// dot (`a\.b`) stay whole.
pub fn ancestors(apex: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = apex;
    while let Some(cut) = label_end(rest) {
        rest = &rest[cut + 1..];
        if rest.is_empty() {
            break;
        }
        out.push(rest.to_string());
    }
    out
}

/// The index of the first unescaped `.` of `text`.
fn label_end(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'.' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// The half-open range `[low, high)` of `reverse(name)` (compared bytewise,
/// `COLLATE "C"`) that holds exactly the names ending in `.apex`: the
/// zones below `apex`. `apex` is ASCII canonical text ending in `.`.
pub fn descendant_range(apex: &str) -> (String, String) {
    let low: String = format!(".{apex}").chars().rev().collect();
    // `low` ends with '.', and the next byte after '.' is '/'.
    let high = format!("{}/", &low[..low.len() - 1]);
    (low, high)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_suffixes_and_top_level_names_are_refused() {
        let rules = TenancyRules::default();
        for name in ["net.", "com.", "co.uk.", "in-addr.arpa.", "test.", "example.", "github.io."] {
            let e = check_zone_name(name, &rules).unwrap_err();
            assert_eq!(e.field, "name");
            assert!(e.message.contains("--allow-public-suffix-zones"), "{e}");
        }
        assert!(check_zone_name("test.", &rules).unwrap_err().message.contains("top-level"));
        assert!(check_zone_name("co.uk.", &rules).unwrap_err().message.contains("public suffix"));
        for name in [
            "example.com.",
            "shop.example.",
            "alpha.test.",
            "acme.co.uk.",
            "2.0.192.in-addr.arpa.",
            "foo.net.",
        ] {
            assert!(check_zone_name(name, &rules).is_ok(), "{name}");
        }
        let open = TenancyRules { allow_public_suffix_zones: true, ..TenancyRules::default() };
        assert!(check_zone_name("net.", &open).is_ok());
    }

    #[test]
    fn ancestors_are_the_parent_names() {
        assert_eq!(ancestors("w.r1.race."), ["r1.race.", "race."]);
        assert_eq!(ancestors("race."), Vec::<String>::new());
        assert_eq!(ancestors("a\\.b.c."), ["c."]);
    }

    #[test]
    fn the_descendant_range_holds_exactly_the_names_below() {
        let (low, high) = descendant_range("r1.race.");
        let rev = |s: &str| s.chars().rev().collect::<String>();
        let inside = |name: &str| {
            let r = rev(name);
            r.as_str() >= low.as_str() && r.as_str() < high.as_str()
        };
        assert!(inside("w.r1.race."));
        assert!(inside("a.b.r1.race."));
        assert!(!inside("r1.race."));
        assert!(!inside("xr1.race."));
        assert!(!inside("r1.race.x."));
        assert!(!inside("w.r2.race."));
    }

    #[test]
    fn quotas_count_what_is_added() {
        let quotas = Quotas { zones_per_account: 2, ..Quotas::default() };
        assert!(check_quota(Quota::ZonesPerAccount, &quotas, 1, 1).is_ok());
        let e = check_quota(Quota::ZonesPerAccount, &quotas, 2, 1).unwrap_err();
        assert_eq!(e.limit, 2);
        assert!(e.to_string().contains("max-zones-per-account"), "{e}");
        assert_eq!(Quotas::default().record_sets_per_zone, 10_000);
    }
}
