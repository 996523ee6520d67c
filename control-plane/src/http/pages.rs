//! The bundled pages: the app (`/` and its routes: `/desktops`, `/agents`, `/sessions`,
//! `/templates`, `/users`, `/audit`, `/recordings`, all the same page, which routes in the
//! browser so deep links and the back button work), the viewer (`/vnc-viewer/{session}`), the
//! recording player (`/recording-player/{recording}`), their assets, and
//! noVNC from its npm package (`STATIC_DIR/node_modules/@novnc/novnc`).

use std::path::PathBuf;

use actix_files::{Files, NamedFile};
use actix_web::{HttpRequest, HttpResponse, get, web};

use super::AppState;
use super::error::ApiError;

fn page(state: &AppState, name: &str, req: &HttpRequest) -> Result<HttpResponse, ApiError> {
    let path: PathBuf = state.config.static_dir.join(name);
    let file = NamedFile::open(&path).map_err(|e| {
        ApiError::Internal(format!("{}: {e} (is STATIC_DIR right?)", path.display()))
    })?;
    Ok(file.use_etag(true).into_response(req))
}

/// The app: sign-in, desktops and the admin pages.
#[get("/")]
pub async fn index(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    page(&state, "index.html", &req)
}

/// The app's routes, each a deep link into the same page.
#[get("/{route:desktops|agents|sessions|templates|users|audit|recordings}")]
pub async fn route(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    page(&state, "index.html", &req)
}

/// The noVNC viewer for one session. Any id loads the page, which says itself when the id is
/// malformed or not the caller's.
#[get("/vnc-viewer/{id}")]
pub async fn viewer(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    page(&state, "viewer.html", &req)
}

/// The player of one recording (admins; the page says itself when it cannot play it).
#[get("/recording-player/{id}")]
pub async fn player(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    page(&state, "player.html", &req)
}

/// The API reference: the API document rendered by Swagger UI.
#[get("/api-docs")]
pub async fn api_docs(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    page(&state, "api-docs.html", &req)
}

/// Static file services: our assets, noVNC's modules and Swagger UI's.
pub fn files(static_dir: &std::path::Path) -> [Files; 3] {
    [
        Files::new("/assets", static_dir.join("assets")),
        Files::new("/novnc", static_dir.join("node_modules/@novnc/novnc")),
        Files::new(
            "/swagger-ui",
            static_dir.join("node_modules/swagger-ui-dist"),
        ),
    ]
}
