//! signpost-health
