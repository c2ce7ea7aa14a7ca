//! Verdicts: how the latest states of the live checkers, the operator's
//! override, `disabled`, `inverted` and a calculated check's children make
//! one healthy/unhealthy answer per check. Pure, so the rules are unit-tested.

use std::collections::HashMap;

use super::{CheckType, OverrideState};

/// What the verdict of one check depends on.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckFacts {
    /// Check id.
    pub id: String,
    /// Probe type (CALCULATED checks have children instead of probes).
    pub check_type: CheckType,
    /// The operator's override.
    pub override_state: Option<OverrideState>,
    /// Disabled: not probed, healthy (unhealthy when also inverted).
    pub disabled: bool,
    /// Inverted. Checkers report probe checks already inverted; this
    /// inverts what has no checker data (new, disabled, calculated).
    pub inverted: bool,
    /// Children of a CALCULATED check.
    pub children: Vec<String>,
    /// How many children must be healthy (`None`: all of them).
    pub health_threshold: Option<u32>,
    /// Live checkers with a settled state for the check.
    pub live: u32,
    /// How many of those say healthy.
    pub healthy: u32,
}

/// Whether a probe check (or an unknown id) is healthy, without calculated checks.
fn probe_verdict(facts: &CheckFacts, healthy_share: f64) -> bool {
    match facts.override_state {
        Some(state) => state == OverrideState::Healthy,
        None if facts.disabled || facts.live == 0 => !facts.inverted,
        None => f64::from(facts.healthy) / f64::from(facts.live) > healthy_share,
    }
}

/// The verdict of every check: an override wins; a disabled check is healthy
/// (unhealthy if inverted); a probe check with no settled state from a live
/// checker is healthy (Route 53: healthy until enough data; inverted:
/// unhealthy); otherwise healthy when more than `healthy_share` of the live
/// checkers say so. A CALCULATED check is healthy when at least
/// `health_threshold` of its children are (a missing child counts unhealthy,
/// a disabled one healthy), then inverted if asked.
pub fn verdicts(facts: &[CheckFacts], healthy_share: f64) -> HashMap<String, bool> {
    let mut out: HashMap<String, bool> = facts
        .iter()
        .filter(|f| f.check_type != CheckType::Calculated)
        .map(|f| (f.id.clone(), probe_verdict(f, healthy_share)))
        .collect();
    let calculated: Vec<(String, bool)> = facts
        .iter()
        .filter(|f| f.check_type == CheckType::Calculated)
        .map(|f| {
            let verdict = match f.override_state {
                Some(state) => state == OverrideState::Healthy,
                None if f.disabled => !f.inverted,
                None => {
                    let healthy = f.children.iter().filter(|c| out.get(*c).copied().unwrap_or(false)).count();
                    let needed = f.health_threshold.map_or(f.children.len(), |t| t as usize);
                    (healthy >= needed) != f.inverted
                }
            };
            (f.id.clone(), verdict)
        })
        .collect();
    out.extend(calculated);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(id: &str, live: u32, healthy: u32) -> CheckFacts {
        CheckFacts {
            id: id.into(),
            check_type: CheckType::Http,
            override_state: None,
            disabled: false,
            inverted: false,
            children: vec![],
            health_threshold: None,
            live,
            healthy,
        }
    }

    fn calc(id: &str, children: &[&str], threshold: Option<u32>) -> CheckFacts {
        CheckFacts {
            check_type: CheckType::Calculated,
            children: children.iter().map(|c| c.to_string()).collect(),
            health_threshold: threshold,
            ..probe(id, 0, 0)
        }
    }

    fn one(f: CheckFacts) -> bool {
        let id = f.id.clone();
        verdicts(&[f], 0.18)[&id]
    }

    #[test]
    fn quorum_share() {
        assert!(one(probe("a", 0, 0)), "no data: healthy");
        assert!(one(probe("a", 1, 1)));
        assert!(!one(probe("a", 1, 0)));
        assert!(one(probe("a", 2, 1)), "50% > 18%");
        assert!(one(probe("a", 5, 1)), "20% > 18%");
        assert!(!one(probe("a", 6, 1)), "16.7% ≤ 18%");
        assert!(!one(probe("a", 100, 18)), "exactly 18% is not more than 18%");
        assert!(one(probe("a", 100, 19)));
    }

    #[test]
    fn override_disabled_inverted() {
        assert!(!one(CheckFacts { override_state: Some(OverrideState::Unhealthy), ..probe("a", 3, 3) }));
        assert!(one(CheckFacts { override_state: Some(OverrideState::Healthy), ..probe("a", 3, 0) }));
        assert!(one(CheckFacts { disabled: true, ..probe("a", 3, 0) }), "disabled: healthy");
        assert!(!one(CheckFacts { disabled: true, inverted: true, ..probe("a", 3, 3) }), "disabled+inverted");
        assert!(!one(CheckFacts { inverted: true, ..probe("a", 0, 0) }), "inverted, no data");
        // Checkers report inverted checks already inverted.
        assert!(one(CheckFacts { inverted: true, ..probe("a", 2, 2) }));
    }

    #[test]
    fn calculated_follows_children() {
        let facts = |b_healthy: u32, threshold: Option<u32>| {
            vec![probe("a", 1, 1), probe("b", 1, b_healthy), calc("c", &["a", "b"], threshold)]
        };
        assert!(verdicts(&facts(1, Some(2)), 0.18)["c"]);
        assert!(!verdicts(&facts(0, Some(2)), 0.18)["c"], "AND with one child down");
        assert!(!verdicts(&facts(0, None), 0.18)["c"], "no threshold: all children");
        assert!(verdicts(&facts(0, Some(1)), 0.18)["c"], "OR");
        assert!(verdicts(&facts(0, Some(0)), 0.18)["c"], "threshold 0: always healthy");
        assert!(!verdicts(&facts(1, Some(3)), 0.18)["c"], "threshold above the children: never");
        let mut disabled_child = facts(0, Some(2));
        disabled_child[1].disabled = true;
        assert!(verdicts(&disabled_child, 0.18)["c"], "a disabled child counts healthy");
        let missing = vec![probe("a", 1, 1), calc("c", &["a", "gone"], Some(2))];
        assert!(!verdicts(&missing, 0.18)["c"], "a missing child counts unhealthy");
        let mut inverted = facts(1, Some(2));
        inverted[2].inverted = true;
        assert!(!verdicts(&inverted, 0.18)["c"]);
        let mut overridden = facts(0, Some(2));
        overridden[2].override_state = Some(OverrideState::Healthy);
        assert!(verdicts(&overridden, 0.18)["c"]);
        let mut child_override = facts(0, Some(2));
        child_override[1].override_state = Some(OverrideState::Healthy);
        assert!(verdicts(&child_override, 0.18)["c"], "a child's override counts");
    }
}
