//! Start-up: database, migrations, HTTP server.

use std::net::SocketAddr;

use actix_web::{App, HttpServer, web};
use thiserror::Error;

use crate::config::Config;
use crate::store::{self, PgPool};

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
}

/// Connects to the database, migrates it, and starts serving. Must run inside an actix system.
pub fn start(config: Config) -> Result<Running, StartError> {
    let pool = store::connect(&config.database_url, 8).map_err(StartError::Database)?;
    migrate(&pool)?;
    let data = web::Data::new(pool);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .wrap(actix_web::middleware::Logger::default())
            .configure(crate::http::configure)
    })
    .bind(config.listen_addr)
    .map_err(|source| StartError::Listen {
        addr: config.listen_addr,
        source,
    })?;
    let addr = server.addrs()[0];
    Ok(Running {
        addr,
        server: server.run(),
    })
}

fn migrate(pool: &PgPool) -> Result<(), StartError> {
    let mut conn = pool
        .get()
        .map_err(|e| StartError::Database(e.to_string()))?;
    let applied = store::migrations::run_pending(&mut conn)
        .map_err(|e| StartError::Migrations(e.to_string()))?;
    log::info!("database ready ({applied} migrations applied)");
    Ok(())
}
