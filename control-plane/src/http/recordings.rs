//! Recordings (admins): the list, one recording's details, its bytes for the player page, and
//! deleting it (row and file). Templates turn recording on (`record`); each viewer's stream of
//! such a desktop is recorded by the replica carrying it (`recording`).

use actix_web::{HttpResponse, delete, get, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::AppState;
use super::caller::Caller;
use super::error::ApiError;
use super::paging::{next_before, page_size};
use crate::store::audit::Record;
use crate::store::recordings::{DeleteRecording, ListRecordings, Recording, RecordingById};

/// Filters and paging.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RecordingQuery {
    /// Only this session's.
    session_id: Option<Uuid>,
    /// Page size (default 100, at most 500).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// Recordings older than this one: the previous page's `next_before`.
    before: Option<Uuid>,
}

/// A page of recordings.
#[derive(Serialize, ToSchema)]
pub struct RecordingPage {
    /// Newest first.
    recordings: Vec<Recording>,
    /// The next page's `before`; null on the last page.
    next_before: Option<Uuid>,
}

/// `GET /api/v1/recordings` (admin): newest first, paged.
#[utoipa::path(
    tag = "recordings",
    params(RecordingQuery),
    responses(
        (status = 200, description = "A page", body = RecordingPage),
        (status = 403, description = "Admins only"),
    )
)]
#[get("/recordings")]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<RecordingQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let RecordingQuery {
        session_id,
        limit,
        before,
    } = query.into_inner();
    let limit = page_size(limit, super::paging::DEFAULT_BY_NAME)?;
    let recordings = state
        .store
        .run(ListRecordings {
            session_id,
            before,
            limit,
        })
        .await?;
    let next_before = next_before(&recordings, limit, |r| r.id);
    Ok(HttpResponse::Ok().json(RecordingPage {
        recordings,
        next_before,
    }))
}

async fn recording(state: &AppState, caller: &Caller, id: Uuid) -> Result<Recording, ApiError> {
    caller.require_admin()?;
    state
        .store
        .run(RecordingById(id))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no recording {id}")))
}

/// `GET /api/v1/recordings/{id}` (admin).
#[utoipa::path(
    tag = "recordings",
    responses(
        (status = 200, description = "The recording", body = Recording),
        (status = 403, description = "Admins only"),
        (status = 404, description = "No such recording"),
    )
)]
#[get("/recordings/{id}")]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(recording(&state, &caller, id.into_inner()).await?))
}

/// `GET /api/v1/recordings/{id}/data` (admin): the file, for the player (format in
/// `recording`).
#[utoipa::path(
    tag = "recordings",
    responses(
        (status = 200, description = "The recording's bytes", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 403, description = "Admins only"),
        (status = 404, description = "No such recording, or its file is not on this replica's RECORDING_DIR"),
    )
)]
#[get("/recordings/{id}/data")]
pub async fn data(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let recording = recording(&state, &caller, id.into_inner()).await?;
    let path = state.config.recording_dir.join(&recording.file);
    let bytes = tokio::fs::read(&path).await.map_err(|e| {
        ApiError::NotFound(format!(
            "recording {}: its file {} cannot be read here ({e}); with several replicas RECORDING_DIR must be storage they share",
            recording.id,
            path.display()
        ))
    })?;
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .body(bytes))
}

/// `DELETE /api/v1/recordings/{id}` (admin): the row and the file.
#[utoipa::path(
    tag = "recordings",
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Admins only"),
        (status = 404, description = "No such recording"),
    )
)]
#[delete("/recordings/{id}")]
pub async fn remove(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let id = id.into_inner();
    let deleted = state
        .store
        .run(DeleteRecording(id))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no recording {id}")))?;
    let path = state.config.recording_dir.join(&deleted.file);
    if let Err(e) = tokio::fs::remove_file(&path).await
        && e.kind() != std::io::ErrorKind::NotFound
    {
        log::warn!("recording {id}: cannot remove {}: {e}", path.display());
    }
    state.store.spawn(Record(
        caller
            .audit("recording_delete")
            .target("recording", id)
            .details(
                serde_json::json!({ "session_id": deleted.session_id, "bytes": deleted.bytes }),
            ),
    ));
    Ok(HttpResponse::NoContent().finish())
}
