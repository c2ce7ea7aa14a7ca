//! The hysteresis of one checker's view of one check: `failureThreshold`
//! consecutive results flip the state, either way. A new check starts
//! healthy and unsettled; its state counts toward the verdict once it is
//! settled, after `failureThreshold` consecutive agreeing results (Route 53:
//! healthy until there is enough data). Pure and synchronous.

/// What one result did to the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Step {
    /// The state flipped (healthy ↔ unhealthy).
    pub flipped: bool,
    /// The state became settled without flipping.
    pub settled_now: bool,
}

impl Step {
    /// Whether the verdict may have changed: DNS servers must be told.
    pub fn announce(self) -> bool {
        self.flipped || self.settled_now
    }
}

/// One checker's state for one check, before inversion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hysteresis {
    healthy: bool,
    settled: bool,
    agreeing: u32,
    opposing: u32,
}

impl Default for Hysteresis {
    fn default() -> Self {
        Hysteresis::new()
    }
}

impl Hysteresis {
    /// A new check: healthy, unsettled.
    pub fn new() -> Self {
        Hysteresis { healthy: true, settled: false, agreeing: 0, opposing: 0 }
    }

    /// Feeds one probe result (`ok`: the endpoint passed).
    pub fn observe(&mut self, ok: bool, failure_threshold: u32) -> Step {
        let threshold = failure_threshold.max(1);
        if ok == self.healthy {
            self.opposing = 0;
            if self.settled {
                return Step::default();
            }
            self.agreeing += 1;
            if self.agreeing >= threshold {
                self.settled = true;
                return Step { flipped: false, settled_now: true };
            }
            return Step::default();
        }
        self.agreeing = 0;
        self.opposing += 1;
        if self.opposing < threshold {
            return Step::default();
        }
        self.healthy = ok;
        self.opposing = 0;
        self.settled = true;
        Step { flipped: true, settled_now: false }
    }

    /// The endpoint's state as probed (before inversion).
    pub fn healthy(&self) -> bool {
        self.healthy
    }

    /// Whether the state counts toward the verdict yet.
    pub fn settled(&self) -> bool {
        self.settled
    }

    /// What the checker reports: inverted checks report the opposite; a
    /// disabled check is reported healthy (unhealthy when also inverted).
    pub fn reported(&self, inverted: bool, disabled: bool) -> bool {
        if disabled { !inverted } else { self.healthy != inverted }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_check_is_healthy_until_it_settles() {
        let mut h = Hysteresis::new();
        assert!(h.healthy() && !h.settled());
        assert_eq!(h.observe(true, 3), Step::default());
        assert_eq!(h.observe(true, 3), Step::default());
        assert_eq!(h.observe(true, 3), Step { flipped: false, settled_now: true });
        assert!(h.settled() && h.healthy());
        assert_eq!(h.observe(true, 3), Step::default(), "settles once");
    }

    #[test]
    fn threshold_consecutive_failures_flip_either_way() {
        let mut h = Hysteresis::new();
        assert!(!h.observe(false, 3).flipped);
        assert!(!h.observe(false, 3).flipped);
        assert!(h.healthy(), "two failures of three: still healthy");
        let step = h.observe(false, 3);
        assert!(step.flipped && step.announce() && !h.healthy() && h.settled());
        assert!(!h.observe(true, 3).flipped);
        assert!(!h.observe(false, 3).flipped, "a failure resets the success streak");
        assert!(!h.observe(true, 3).flipped);
        assert!(!h.observe(true, 3).flipped);
        assert!(h.observe(true, 3).flipped);
        assert!(h.healthy());
    }

    #[test]
    fn interleaved_results_never_flip() {
        let mut h = Hysteresis::new();
        for i in 0..20 {
            assert!(!h.observe(i % 2 == 0, 2).flipped);
        }
        assert!(h.healthy());
    }

    #[test]
    fn threshold_one_flips_at_once() {
        let mut h = Hysteresis::new();
        assert!(h.observe(false, 1).flipped);
        assert!(h.observe(true, 1).flipped);
        assert!(h.observe(false, 0).flipped, "0 acts as 1");
    }

    #[test]
    fn inverted_and_disabled() {
        let mut h = Hysteresis::new();
        assert!(h.reported(false, false));
        assert!(!h.reported(true, false), "inverted new check: unhealthy");
        h.observe(false, 1);
        assert!(h.reported(true, false), "inverted down endpoint: healthy");
        assert!(h.reported(false, true), "disabled: healthy");
        assert!(!h.reported(true, true), "disabled and inverted: unhealthy");
    }
}
