//! signpost-health: the health checker. Probes HTTP, HTTPS and TCP
//! endpoints with Route 53's pass criteria and timings (`probe`), feeds
//! the results through the failure-threshold hysteresis (`state`), keeps
//! every check on its interval (`schedule`), follows the checks in the
//! database (`feed`) and writes what it sees (`writer`); `checker` ties
//! them into a service. Many checkers may run against one database; the
//! verdict that DNS uses combines them (`signpost_store::health`).

// Issue 10: the services do not unwrap outside unit tests.
#![warn(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod checker;
pub mod feed;
pub mod probe;
pub mod schedule;
pub mod state;
mod tls;
pub mod writer;

pub use checker::{Checker, CheckerConfig, CheckerError};
pub use probe::{ProbeOutcome, Prober};
pub use signpost_store::health::TargetPolicy;
pub use state::Hysteresis;
