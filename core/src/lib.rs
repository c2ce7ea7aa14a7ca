//! signpost-core: Signpost's pure logic. No IO lives here: the model and its
//! validation, zone-file text, the in-memory snapshot of hosted zones, and
//! `answer`, which turns a question into an answer from a snapshot.

pub mod answer;
pub mod cidr;
pub mod geo;
pub mod maxmind;
pub mod model;
pub mod names;
pub mod policy;
pub mod rdata;
pub mod routing;
pub mod snapshot;
pub mod usage;
pub mod validate;
pub mod zonefile;

pub use answer::{Answer, Client, HealthView, Question, answer};
pub use model::{HostedZone, RecordSet, UsageCategory};
pub use snapshot::{Snapshot, ZoneContent};

/// An input that failed validation, with the field it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    /// Path of the offending field (`changes[0].rrset.records[1]`).
    pub field: String,
    /// What is wrong with it, for a person.
    pub message: String,
}

impl ValidationError {
    /// A new error about `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ValidationError { field: field.into(), message: message.into() }
    }

    /// The same error under a parent path (`changes[3]` + `ttl`).
    pub fn within(mut self, parent: &str) -> Self {
        self.field =
            if self.field.is_empty() { parent.to_string() } else { format!("{parent}.{}", self.field) };
        self
    }
}
