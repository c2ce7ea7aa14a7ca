-- Flush keys are pruned after 40 days (dns-server/src/usage.rs
-- FLUSH_KEY_RETENTION); spills older than 35 days are not replayed, so a
-- replayed batch always finds its key. The index keeps the prune cheap.
CREATE INDEX usage_flushes_flushed_at ON usage_flushes (flushed_at);
