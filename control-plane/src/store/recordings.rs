//! Recordings of viewers' streams: one row per recorded stream (the bytes live in a file
//! under `RECORDING_DIR`), listed newest first.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use uuid::Uuid;

use super::schema::{recordings, sessions};
use super::{Query, StoreError};

/// A recording as the API shows it.
#[derive(Debug, Clone, Queryable, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = recordings)]
pub struct Recording {
    /// Id.
    pub id: Uuid,
    /// The session recorded (null once it is deleted).
    pub session_id: Option<Uuid>,
    /// The viewer's user (null once deleted).
    pub user_id: Option<Uuid>,
    /// Their name.
    pub username: String,
    /// The session's template.
    pub template: String,
    /// The file, under `RECORDING_DIR`.
    #[serde(skip)]
    pub file: String,
    /// When it began.
    pub started_at: DateTime<Utc>,
    /// When it ended (null while the stream is open).
    pub ended_at: Option<DateTime<Utc>>,
    /// Milliseconds from its first byte to its last.
    pub duration_ms: i64,
    /// Bytes of the desktop's stream it holds.
    pub bytes: i64,
    /// False when the disk fell behind and it was cut short.
    pub complete: bool,
}

/// A recording begins.
pub struct StartRecording {
    /// Its id.
    pub id: Uuid,
    /// The session.
    pub session_id: Uuid,
    /// The viewer's user.
    pub user_id: Uuid,
    /// Their name.
    pub username: String,
    /// Its file's name.
    pub file: String,
}

impl Query for StartRecording {
    type Output = ();
    fn run(self, conn: &mut PgConnection) -> Result<(), StoreError> {
        let template: String = sessions::table
            .find(self.session_id)
            .select(sessions::template_name)
            .first(conn)?;
        diesel::insert_into(recordings::table)
            .values((
                recordings::id.eq(self.id),
                recordings::session_id.eq(self.session_id),
                recordings::user_id.eq(self.user_id),
                recordings::username.eq(self.username),
                recordings::template.eq(template),
                recordings::file.eq(self.file),
            ))
            .execute(conn)?;
        Ok(())
    }
}

/// A recording ended.
pub struct FinishRecording {
    /// Its id.
    pub id: Uuid,
    /// Bytes written.
    pub bytes: u64,
    /// Milliseconds it spans.
    pub duration_ms: u32,
    /// Whether nothing was left out.
    pub complete: bool,
}

impl Query for FinishRecording {
    type Output = ();
    fn run(self, conn: &mut PgConnection) -> Result<(), StoreError> {
        diesel::update(recordings::table.find(self.id))
            .set((
                recordings::ended_at.eq(Some(Utc::now())),
                recordings::bytes.eq(i64::try_from(self.bytes).unwrap_or(i64::MAX)),
                recordings::duration_ms.eq(i64::from(self.duration_ms)),
                recordings::complete.eq(self.complete),
            ))
            .execute(conn)?;
        Ok(())
    }
}

/// One recording.
pub struct RecordingById(pub Uuid);

impl Query for RecordingById {
    type Output = Option<Recording>;
    fn run(self, conn: &mut PgConnection) -> Result<Option<Recording>, StoreError> {
        Ok(recordings::table
            .find(self.0)
            .select(Recording::as_select())
            .first(conn)
            .optional()?)
    }
}

/// A page of recordings, newest first.
pub struct ListRecordings {
    /// Only of this session.
    pub session_id: Option<Uuid>,
    /// Older than this one.
    pub before: Option<Uuid>,
    /// Page size.
    pub limit: i64,
}

impl Query for ListRecordings {
    type Output = Vec<Recording>;
    fn run(self, conn: &mut PgConnection) -> Result<Vec<Recording>, StoreError> {
        let mut query = recordings::table
            .select(Recording::as_select())
            .order((recordings::started_at.desc(), recordings::id.desc()))
            .limit(self.limit)
            .into_boxed();
        if let Some(session) = self.session_id {
            query = query.filter(recordings::session_id.eq(session));
        }
        page_before!(conn, query, self.before, recordings, started_at);
        Ok(query.load(conn)?)
    }
}

/// Deletes a recording's row; the recording it was, for its file.
pub struct DeleteRecording(pub Uuid);

impl Query for DeleteRecording {
    type Output = Option<Recording>;
    fn run(self, conn: &mut PgConnection) -> Result<Option<Recording>, StoreError> {
        Ok(diesel::delete(recordings::table.find(self.0))
            .returning(Recording::as_returning())
            .get_result(conn)
            .optional()?)
    }
}
