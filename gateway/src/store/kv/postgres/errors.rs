//! What a PostgreSQL failure means for the caller: the server could not
//! be reached or did not answer ([`StoreError::Unavailable`]: retry
//! later), or something is wrong that retrying will not fix
//! ([`StoreError::Failed`]).

use crate::store::kv::StoreError;

pub(super) fn failed(e: impl std::fmt::Display) -> StoreError {
    StoreError::Failed(e.to_string())
}

/// SQLSTATE classes and codes that clear up by themselves: connection
/// exceptions (08), cancelled statements (57014: `statement_timeout`),
/// an operator shutting the server down or restarting it (57P01–57P03),
/// too many connections (53300), lock and serialization conflicts
/// (55P03, 40001, 40P01), a server starting up or in recovery.
fn transient(code: &str) -> bool {
    code.starts_with("08")
        || matches!(
            code,
            "57014" | "57P01" | "57P02" | "57P03" | "53300" | "55P03" | "40001" | "40P01"
        )
}

// By value: it is passed to `map_err`.
#[allow(clippy::needless_pass_by_value)]
pub(super) fn store_error(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => StoreError::Unavailable(format!("PostgreSQL: {e}")),
        sqlx::Error::Database(db) if db.code().is_some_and(|c| transient(&c)) => {
            StoreError::Unavailable(format!("PostgreSQL: {e}"))
        }
        _ => StoreError::Failed(format!("PostgreSQL: {e}")),
    }
}

pub(super) fn migrate_error(e: sqlx::migrate::MigrateError) -> StoreError {
    use sqlx::migrate::MigrateError;
    match e {
        MigrateError::Execute(e) => store_error(e),
        MigrateError::VersionMissing(v) => failed(format!(
            "the database's schema has migration {v}, which this build does not know: \
             it was migrated by a newer tokenim; run that version, or restore a backup"
        )),
        MigrateError::VersionMismatch(v) => failed(format!(
            "migration {v} applied to the database differs from this build's"
        )),
        MigrateError::Dirty(v) => failed(format!(
            "migration {v} was left half-applied; repair the database before starting"
        )),
        other => failed(format!("migrations: {other}")),
    }
}
