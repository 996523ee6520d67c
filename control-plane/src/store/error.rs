use diesel::result::{DatabaseErrorKind, Error as DieselError};
use thiserror::Error;

/// What can go wrong in the store.
#[derive(Debug, Error)]
pub enum StoreError {
    /// No such row.
    #[error("not found")]
    NotFound,
    /// A unique or foreign-key constraint refused the write.
    #[error("{0}")]
    Conflict(String),
    /// Text the database cannot store (a NUL character): the caller's input, refused.
    #[error("{0}")]
    InvalidText(String),
    /// The pool or the store actors are unavailable.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else the database reported.
    #[error("database error: {0}")]
    Database(#[source] DieselError),
}

impl From<DieselError> for StoreError {
    fn from(e: DieselError) -> Self {
        match e {
            DieselError::NotFound => StoreError::NotFound,
            DieselError::DatabaseError(
                DatabaseErrorKind::UniqueViolation | DatabaseErrorKind::ForeignKeyViolation,
                ref info,
            ) => StoreError::Conflict(info.message().to_owned()),
            // Postgres text cannot hold NUL; such input is the client's mistake, not ours.
            DieselError::DatabaseError(_, ref info)
                if info.message().contains("invalid byte sequence")
                    || info
                        .message()
                        .contains("unsupported Unicode escape sequence") =>
            {
                StoreError::InvalidText(info.message().trim().to_owned())
            }
            // The statement timeout: the database is too busy or something holds a lock.
            DieselError::DatabaseError(_, ref info)
                if info.message().contains("statement timeout") =>
            {
                StoreError::Unavailable(format!(
                    "a query took longer than {} s",
                    super::STATEMENT_TIMEOUT.as_secs()
                ))
            }
            // The connection broke (the database restarted or went away): it is dropped from
            // the pool; the request is refused as an outage, not as our fault.
            DieselError::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                ref info,
            ) => StoreError::Unavailable(info.message().trim().to_owned()),
            DieselError::DatabaseError(_, ref info)
                if [
                    "terminating connection",
                    "server closed the connection",
                    "no connection to the server",
                ]
                .iter()
                .any(|broken| info.message().contains(broken)) =>
            {
                StoreError::Unavailable(info.message().trim().to_owned())
            }
            other => StoreError::Database(other),
        }
    }
}
