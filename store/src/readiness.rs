//! Whether the database can be used yet, as the services see it: they bind
//! and serve first (DNS from its disk copy) and follow this state, which the
//! binary sets while it connects and applies migrations in the background.

use crate::Store;

/// What the process knows of its database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseState {
    /// Not tried yet, or the first attempt is under way.
    Connecting,
    /// The last attempt found PostgreSQL unreachable; still retrying.
    Unreachable,
    /// Reachable once and migrated: queries may run (they can still fail).
    Ready,
}

impl Store {
    /// Which database this store points at (`host:port/dbname`, no
    /// credentials): files kept for one database (the DNS server's disk
    /// copy, spilled usage counts) are not used with another.
    pub fn database_identity(&self) -> String {
        let options = self.pool().connect_options();
        format!(
            "{}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or_else(|| options.get_username())
        )
    }
}

impl Store {
    /// Whether PostgreSQL answers a trivial query (needs no schema).
    pub async fn ping(&self) -> crate::Result<()> {
        sqlx::query("SELECT 1").execute(self.pool()).await?;
        Ok(())
    }
}
