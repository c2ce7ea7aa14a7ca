//! When each check is probed: a min-heap of due times with lazy removal
//! (an entry names the check's generation; stale ones are skipped), and
//! the fixed-rate arithmetic that keeps every check on its interval.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use tokio::time::Instant;

/// Due times of checks.
#[derive(Debug, Default)]
pub struct Schedule {
    heap: BinaryHeap<Reverse<(Instant, u64, String)>>,
}

impl Schedule {
    /// An empty schedule.
    pub fn new() -> Self {
        Schedule::default()
    }

    /// Schedules generation `generation` of check `id` at `at`.
    pub fn push(&mut self, id: &str, generation: u64, at: Instant) {
        self.heap.push(Reverse((at, generation, id.to_string())));
    }

    /// The earliest due time.
    pub fn next_at(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Removes and returns every entry due at `now`, earliest first, as
    /// (id, generation, due time).
    pub fn pop_due(&mut self, now: Instant) -> Vec<(String, u64, Instant)> {
        let mut due = Vec::new();
        while let Some(Reverse((at, _, _))) = self.heap.peek() {
            if *at > now {
                break;
            }
            if let Some(Reverse((at, generation, id))) = self.heap.pop() {
                due.push((id, generation, at));
            }
        }
        due
    }

    /// Entries held (stale ones included).
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether nothing is scheduled.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

/// The due time after `due`: one interval later, on the same grid, skipping
/// the cycles already missed (so a late probe never causes a burst).
pub fn next_due(due: Instant, interval: Duration, now: Instant) -> Instant {
    let interval = interval.max(Duration::from_millis(1));
    let mut next = due + interval;
    if next <= now {
        let behind = now.duration_since(next).as_nanos() / interval.as_nanos() + 1;
        let behind = u32::try_from(behind).unwrap_or(u32::MAX);
        next += interval.saturating_mul(behind);
    }
    next
}

/// The delay of a check's first probe when a checker starts with many
/// checks: spread over the interval (at most 10 s), so that the probes
/// and the database writes of thousands of checks do not come in bursts.
/// `unit` is a random number in [0, 1).
pub fn startup_delay(interval: Duration, unit: f64) -> Duration {
    interval.min(Duration::from_secs(10)).mul_f64(unit.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_order() {
        let t = Instant::now();
        let mut s = Schedule::new();
        s.push("b", 1, t + Duration::from_secs(2));
        s.push("a", 1, t + Duration::from_secs(1));
        s.push("c", 1, t + Duration::from_secs(3));
        assert_eq!(s.next_at(), Some(t + Duration::from_secs(1)));
        let due: Vec<String> =
            s.pop_due(t + Duration::from_secs(2)).into_iter().map(|(id, _, _)| id).collect();
        assert_eq!(due, ["a", "b"]);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn fixed_rate_without_bursts() {
        let t = Instant::now();
        let i = Duration::from_secs(10);
        assert_eq!(next_due(t, i, t + Duration::from_millis(5)), t + i, "on time: one interval later");
        assert_eq!(next_due(t, i, t + Duration::from_secs(10)), t + 2 * i, "exactly late: next slot");
        assert_eq!(next_due(t, i, t + Duration::from_secs(35)), t + 4 * i, "missed cycles are skipped");
    }

    #[test]
    fn startup_spread() {
        assert_eq!(startup_delay(Duration::from_secs(30), 0.5), Duration::from_secs(5));
        assert_eq!(startup_delay(Duration::from_secs(1), 0.5), Duration::from_millis(500));
        assert!(startup_delay(Duration::from_secs(10), 0.999) < Duration::from_secs(10));
    }
}
