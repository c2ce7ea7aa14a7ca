//! signpost-dns
