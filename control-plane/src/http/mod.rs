//! HTTP routes: JSON API under `/api/v1`, probes, metrics, the agent WebSocket.

pub mod access;
pub mod agent_socket;
pub mod agents;
pub mod audit;
pub mod auth;
pub mod bridge;
pub mod caller;
pub mod error;
pub mod health;
pub mod hibernation;
pub mod homes;
pub mod json_object;
pub mod metrics;
pub mod openapi;
pub mod pages;
pub mod paging;
pub mod recordings;
pub mod request_id;
pub mod sessions;
pub mod shares;
pub mod templates;
pub mod upgraded;
pub mod users;
pub mod viewer_socket;
pub mod vnc;

use std::sync::Arc;

use actix::Addr;
use actix_web::{HttpResponse, web};

use self::error::ApiError;
use crate::actors::batcher::Batcher;
use crate::actors::supervisor::Supervisor;
use crate::auth::login_guard::LoginGuard;
use crate::auth::tokens::Keys;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::StoreHandle;
use crate::store::credentials::AuthenticateAgents;

/// What every handler can reach.
pub struct AppState {
    /// The database.
    pub store: StoreHandle,
    /// Where agents connecting are authenticated, in batches.
    pub agent_credentials: Addr<Batcher<AuthenticateAgents>>,
    /// Routing to agents.
    pub supervisor: Addr<Supervisor>,
    /// The same, as the connections and tunnels address it (made once, shared by all).
    pub supervisor_handle: crate::actors::supervisor::SupervisorHandle,
    /// Token signing and verification.
    pub keys: Keys,
    /// This replica's id.
    pub replica_id: uuid::Uuid,
    /// Becomes `true` when this replica shuts down: not ready for new work, and the viewers it
    /// bridges to other replicas are closed.
    pub draining: tokio::sync::watch::Receiver<bool>,
    /// Whether this replica's heartbeats reach the database.
    pub database_reachable: Arc<std::sync::atomic::AtomicBool>,
    /// Login throttling and the cap on concurrent password hashing.
    pub logins: LoginGuard,
    /// Recent callers' user rows.
    pub users: Arc<crate::auth::user_cache::UserCache>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// The configuration.
    pub config: Config,
}

/// Largest JSON request body accepted.
const MAX_JSON_BODY: usize = 64 * 1024;

/// Registers every route: the pages, the internal bridge between replicas, and [`api`].
pub fn configure(
    cfg: &mut utoipa_actix_web::service_config::ServiceConfig,
    static_dir: &std::path::Path,
) {
    cfg.map(|cfg| {
        for files in pages::files(static_dir) {
            cfg.service(files);
        }
        cfg.service(pages::index)
            .service(pages::route)
            .service(pages::viewer)
            .service(pages::player)
            .service(pages::api_docs)
            .service(vnc::bridged)
    })
    .configure(api)
    .default_service(web::to(not_found));
}

/// The API and the probes, each with its place in the API document ([`openapi`]); JSON errors
/// for malformed bodies, queries and paths.
pub fn api(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(MAX_JSON_BODY)
            .error_handler(|e, _| ApiError::invalid(format!("request body: {e}")).into()),
    )
    .app_data(
        web::QueryConfig::default()
            .error_handler(|e, _| ApiError::invalid(format!("query string: {e}")).into()),
    )
    .app_data(web::PathConfig::default().error_handler(|e, req| {
        // `DELETE …/credentials/rotate` reaches the route `…/credentials/{id}`: what the
        // path names takes no DELETE, which is the answer, not a malformed id.
        match openapi::methods_at(req.path()) {
            Some(allow) if !allow.split(", ").any(|m| m == req.method().as_str()) => {
                ApiError::MethodNotAllowed {
                    method: req.method().to_string(),
                    path: req.path().to_owned(),
                    allow,
                }
            }
            _ => ApiError::invalid(format!("path: {e}")),
        }
        .into()
    }))
    .service(health::healthz)
    .service(health::readyz)
    .service(metrics::metrics)
    .service(
        utoipa_actix_web::scope("/api/v1")
            .service(openapi::openapi_json)
            .service(auth::login)
            .service(auth::me)
            .service(auth::change_password)
            .service(users::create)
            .service(users::list)
            .service(users::update)
            .service(users::remove)
            .service(templates::create)
            .service(templates::list)
            .service(templates::get)
            .service(templates::update)
            .service(templates::remove)
            .service(agent_socket::connect)
            .service(agents::register)
            .service(agents::list)
            .service(agents::summary)
            .service(agents::get)
            .service(agents::remove)
            .service(agents::live_sessions)
            .service(agents::list_credentials)
            .service(agents::mint_credential)
            .service(agents::rotate_credentials)
            .service(agents::revoke_credential)
            .service(sessions::create)
            .service(sessions::list)
            .service(sessions::get)
            .service(sessions::remove)
            .service(sessions::activity)
            .service(hibernation::hibernate)
            .service(hibernation::wake)
            .service(shares::create)
            .service(shares::list)
            .service(shares::revoke)
            .service(shares::viewers)
            .service(shares::shared_with_me)
            .service(homes::list)
            .service(homes::get)
            .service(homes::remove)
            .service(vnc::viewer_token)
            .service(vnc::connect)
            .service(recordings::list)
            .service(recordings::get)
            .service(recordings::data)
            .service(recordings::remove)
            .service(audit::list),
    );
}

/// 405 for a documented path asked with a method it does not take, else 404.
async fn not_found(req: actix_web::HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(method_not_allowed(&req).unwrap_or_else(|| ApiError::NotFound("no such endpoint".into())))
}

/// The 405 for a documented path asked with a method it does not take; `None` when no
/// documented path matches or it takes this method.
fn method_not_allowed(req: &actix_web::HttpRequest) -> Option<ApiError> {
    let allow = openapi::methods_at(req.path())?;
    let method = req.method().as_str();
    (!allow.split(", ").any(|m| m == method)).then(|| ApiError::MethodNotAllowed {
        method: method.to_owned(),
        path: req.path().to_owned(),
        allow,
    })
}
