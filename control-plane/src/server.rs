//! Start-up: database, migrations, first admin, actors, HTTP server.

use std::net::SocketAddr;
use std::sync::Arc;

use actix::Actor;
use actix_http::HttpService;
use actix_service::{IntoServiceFactory, ServiceFactoryExt, map_config};
use actix_web::dev::AppConfig;
use actix_web::{App, web};
use thiserror::Error;
use utoipa_actix_web::AppExt;

use crate::actors::analyser::Analyser;
use crate::actors::batcher::{Batcher, CommandWrites};
use crate::actors::limit_keeper::LimitKeeper;
use crate::actors::pruner::Pruner;
use crate::actors::replica::{Leave, ReplicaActor, ReplicaIdentity};
use crate::actors::supervisor::{Drain, Supervisor, Timing};
use crate::auth::login_guard::LoginGuard;
use crate::auth::user_cache::UserCache;
use crate::auth::{password, tokens::Keys};
use crate::config::Config;
use crate::http::AppState;
use crate::metrics::Metrics;
use crate::store::users::{AnyUsers, CreateFirstAdmin};
use crate::store::{self, PgPool, StoreHandle};

/// Threads running store queries (diesel is blocking). The four batchers hold one each at most;
/// with four threads, API requests queued behind batches (686 → 836 creations/s with 4
/// clients, 1,078 → 1,310 with 16, going from four to eight: `streamspace-bench
/// --creations-only --clients N`).
const STORE_THREADS: usize = 8;

/// Connections waiting to be accepted: actix-web's default, which its server set for us before
/// (4,096 made no measurable difference to 10,000 agents linking at once).
const LISTEN_BACKLOG: i32 = 1024;
/// actix-web's default, which its server set for us before.
const CLIENT_REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Why the control plane could not start.
#[derive(Debug, Error)]
pub enum StartError {
    /// The database is unreachable.
    #[error("DATABASE_URL: cannot connect: {0}")]
    Database(String),
    /// A migration failed.
    #[error("migrations failed: {0}")]
    Migrations(String),
    /// The listener could not be bound.
    #[error("LISTEN_ADDR: cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A running control plane.
pub struct Running {
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    /// Resolves when the server stops.
    pub server: actix_web::dev::Server,
    /// Stops it in order.
    pub stopper: Stopper,
    /// The generated password of the first admin, when this start created it without
    /// `STREAMSPACE_ADMIN_PASSWORD`.
    pub generated_admin_password: Option<String>,
    /// This replica among the others on the database.
    pub replica: ReplicaIdentity,
}

/// Connects, migrates, bootstraps and starts serving. Must run inside an actix system.
pub async fn start(config: Config) -> Result<Running, StartError> {
    // Bound first: a taken address is reported before anything starts. Failing after the
    // actors had started, the process panicked on its way out (an actor dropped unpolled
    // runs its start outside the runtime).
    let listen_addr = config.listen_addr;
    let cannot_listen = |source| StartError::Listen {
        addr: listen_addr,
        source,
    };
    let listener = listen(listen_addr).map_err(cannot_listen)?;
    let addr = listener.local_addr().map_err(cannot_listen)?;
    let pool = store::connect(&config.database_url, STORE_THREADS as u32 + 2)
        .map_err(StartError::Database)?;
    migrate(&pool)?;
    let store = StoreHandle::start(pool, STORE_THREADS);
    let generated_admin_password = first_admin(&store, config.admin_password.clone()).await?;
    let metrics = Arc::new(Metrics::default());
    let timing = Timing {
        heartbeat_interval: config.agent_heartbeat_interval,
        agent_timeout: config.agent_timeout,
        command_timeout: config.command_timeout,
        replica_heartbeat: config.replica_heartbeat_interval,
    };
    let replica_id = uuid::Uuid::new_v4();
    let writes = CommandWrites::start(&store);
    let users = Arc::new(UserCache::new(config.user_cache_ttl));
    // Its handle is made once, before it runs, and shared with the HTTP handlers.
    let context = actix::Context::<Supervisor>::new();
    let supervisor_handle = Supervisor::handle(&actix::AsyncContext::address(&context));
    let supervisor = context.run(Supervisor::new(
        store.clone(),
        metrics.clone(),
        timing,
        replica_id,
        writes,
        Batcher::new(store.clone()).start(),
        users.clone(),
        supervisor_handle.clone(),
    ));
    Pruner::new(
        store.clone(),
        config.retention,
        config.recording_dir.clone(),
    )
    .start();
    Analyser::new(store.clone()).start();
    LimitKeeper::new(
        store.clone(),
        supervisor.clone(),
        config.replica_heartbeat_interval,
        config.command_timeout,
    )
    .start();
    let shutdown_grace = config.shutdown_grace;
    let (database_url, replica_heartbeat) = (
        config.database_url.clone(),
        config.replica_heartbeat_interval,
    );
    let configured_address = config.replica_address.clone();
    let (draining, draining_seen) = tokio::sync::watch::channel(false);
    let database_reachable = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let state = web::Data::new(AppState {
        database_reachable: database_reachable.clone(),
        draining: draining_seen,
        agent_credentials: Batcher::new(store.clone()).start(),
        store: store.clone(),
        supervisor_handle,
        supervisor: supervisor.clone(),
        keys: Keys::new(&config.jwt_secret),
        replica_id,
        logins: LoginGuard::per_core(),
        users,
        metrics,
        config,
    });
    let static_dir = state.config.static_dir.clone();
    let make_app = move || {
        App::new()
            .app_data(state.clone())
            .wrap(security_headers())
            .wrap(actix_web::middleware::from_fn(
                crate::http::request_id::assign,
            ))
            .into_utoipa_app()
            .configure(|cfg| crate::http::configure(cfg, &static_dir))
            .into_app()
    };
    let builder = actix_server::Server::build();
    let graceful = builder.graceful_shutdown_signal();
    // Shutdown is ours (see `Stopper`): agents and viewers are handed over first.
    let server = builder
        .disable_signals()
        .shutdown_timeout(shutdown_grace.as_secs())
        .listen("streamspace-http", listener, move || {
            let graceful = graceful.clone();
            HttpService::build()
                .graceful_shutdown_signal(move || {
                    let graceful = graceful.clone();
                    async move { graceful.notified().await }
                })
                // Credit frames and keystrokes are tiny: Nagle's algorithm would hold them
                // back for a delayed ACK (~40 ms) and stall every stream.
                .tcp_nodelay(true)
                .client_request_timeout(CLIENT_REQUEST_TIMEOUT)
                .client_disconnect_timeout(crate::http::upgraded::LINGER)
                .local_addr(addr)
                .upgrade(crate::http::upgraded::factory(make_app.clone()))
                // Boxed: each connection's future is allocated for its whole life, and holds
                // the application's (large) future inline unless it is boxed.
                .finish(actix_service::boxed::factory(map_config(
                    make_app().into_factory().map_err(|e| e.error_response()),
                    |()| AppConfig::default(),
                )))
                .tcp()
        })
        .map_err(cannot_listen)?;
    let replica = ReplicaIdentity {
        id: replica_id,
        address: configured_address.unwrap_or_else(|| replica_address(addr)),
    };
    log::info!("replica {} at {}", replica.id, replica.address);
    let replica_actor = ReplicaActor::new(
        replica.clone(),
        store.clone(),
        database_url,
        replica_heartbeat,
        supervisor.clone().recipient(),
        database_reachable,
    )
    .start();
    let server = server.run();
    Ok(Running {
        addr,
        stopper: Stopper {
            http: server.handle(),
            supervisor,
            replica: replica_actor,
            store,
            replica_id,
            replica_heartbeat,
            draining,
        },
        server,
        generated_admin_password,
        replica,
    })
}

/// Stops a running control plane in the order that loses nothing: it stops claiming to be
/// ready (load balancers take it out), refuses new agent links, tells its agents to
/// reconnect at once and closes its viewers with a reason (both come back through another
/// replica), lets go of its commands (their agents' new replica drives them), waits (at most
/// [`HANDOVER_WAIT`]) while another replica can take its agents and some have not linked there
/// yet, removes its replica record (survivors claim what is left at once), and lets requests in
/// flight finish.
pub struct Stopper {
    http: actix_web::dev::ServerHandle,
    supervisor: actix::Addr<Supervisor>,
    replica: actix::Addr<ReplicaActor>,
    store: StoreHandle,
    replica_id: uuid::Uuid,
    replica_heartbeat: std::time::Duration,
    draining: tokio::sync::watch::Sender<bool>,
}

/// How long a draining replica keeps its record while its agents link to another replica.
/// Without the record, a survivor claimed an agent still on its way (marking it `warning`,
/// not placeable) and a session created meanwhile got `no_agent_available` (the rolling-restart
/// test saw it); an agent told to reconnect links again within a few hundred milliseconds.
pub const HANDOVER_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

impl Stopper {
    /// Stops, as above; returns when the HTTP server has.
    pub async fn stop(&self) {
        self.draining.send_replace(true);
        if let Err(e) = self
            .store
            .run(crate::store::replicas::DrainReplica(self.replica_id))
            .await
        {
            log::warn!(
                "replica {}: cannot record that it drains: {e}",
                self.replica_id
            );
        }
        let _ = self.supervisor.send(Drain).await;
        self.hand_over().await;
        let _ = self.replica.send(Leave).await;
        self.http.stop(true).await;
    }

    /// Waits while another replica can take this one's agents and some are still linked here
    /// (in the store), for at most [`HANDOVER_WAIT`]; at once when there is no other replica.
    async fn hand_over(&self) {
        let started = std::time::Instant::now();
        let handover = || crate::store::replicas::Handover {
            id: self.replica_id,
            dead_after: crate::store::replicas::dead_after(self.replica_heartbeat),
        };
        while started.elapsed() < HANDOVER_WAIT {
            match self.store.run(handover()).await {
                Ok(state) if state.takers > 0 && state.still_here > 0 => {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                _ => return,
            }
        }
    }
}

/// Where other replicas reach this one when `REPLICA_ADDRESS` does not say: the listener's
/// address, or this host's name when it listens on every interface.
fn replica_address(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "localhost".into());
        format!("http://{host}:{}", addr.port())
    } else {
        format!("http://{addr}")
    }
}

/// On every response: no page may be framed (a framed desktop could be driven by another
/// site), no script but our own files runs, no type is guessed, no URL leaks as a referrer.
/// Styles may be inline: noVNC sizes its canvas through the style attribute.
/// The listening socket, as actix-web makes it.
fn listen(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

fn security_headers() -> actix_web::middleware::DefaultHeaders {
    actix_web::middleware::DefaultHeaders::new()
        .add((
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
             img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; \
             base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ))
        .add(("X-Frame-Options", "DENY"))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Referrer-Policy", "no-referrer"))
}

fn migrate(pool: &PgPool) -> Result<(), StartError> {
    let mut conn = pool
        .get()
        .map_err(|e| StartError::Database(e.to_string()))?;
    // Replicas starting together take turns.
    let applied = store::migrations::run_pending_exclusively(&mut conn.pg)
        .map_err(|e| StartError::Migrations(e.to_string()))?;
    log::info!("database ready ({applied} migrations applied)");
    Ok(())
}

/// Creates the `admin` user on an empty database.
async fn first_admin(
    store: &StoreHandle,
    configured: Option<String>,
) -> Result<Option<String>, StartError> {
    // Hashing is deliberately slow: skip it on every start but the first.
    let has_users = store
        .run(AnyUsers)
        .await
        .map_err(|e| StartError::Database(e.to_string()))?;
    if has_users {
        return Ok(None);
    }
    let generated = configured.is_none();
    let password = configured.unwrap_or_else(password::generate);
    let to_hash = password.clone();
    let password_hash = web::block(move || password::hash(&to_hash))
        .await
        .map_err(|e| StartError::Database(e.to_string()))?;
    let created = store
        .run(CreateFirstAdmin { password_hash })
        .await
        .map_err(|e| StartError::Database(e.to_string()))?;
    Ok((created && generated).then_some(password))
}
