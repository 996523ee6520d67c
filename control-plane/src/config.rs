//! Control-plane configuration, read once from the environment at start.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use streamspace_settings::ConfigError;
use streamspace_settings::{Variable, Vars, error};

/// Shortest accepted `JWT_SECRET`: HS256 wants at least as many key bytes as hash bytes.
pub const MIN_JWT_SECRET_LEN: usize = 32;

/// Everything the control plane is told by its environment.
#[derive(Clone)]
pub struct Config {
    /// `DATABASE_URL` (required): Postgres connection URL.
    pub database_url: String,
    /// `JWT_SECRET` (required, ≥ 32 bytes): signs login and viewer tokens.
    pub jwt_secret: Vec<u8>,
    /// `LISTEN_ADDR` (default `0.0.0.0:8080`): HTTP and WebSocket listener.
    pub listen_addr: SocketAddr,
    /// `AGENT_HEARTBEAT_INTERVAL` (default `30s`): how often agents send heartbeats.
    pub agent_heartbeat_interval: Duration,
    /// `AGENT_TIMEOUT` (default `90s`): silence after which an agent is `offline`.
    pub agent_timeout: Duration,
    /// `COMMAND_TIMEOUT` (default `5m`): unanswered commands become `timeout`.
    pub command_timeout: Duration,
    /// `VNC_PROXY_ENABLED` (default `true`): serve `/api/v1/vnc/{session}`.
    pub vnc_proxy_enabled: bool,
    /// `STREAMSPACE_ADMIN_PASSWORD` (optional): password of the first admin; a random one is
    /// generated and printed once when unset.
    pub admin_password: Option<String>,
    /// `STATIC_DIR` (default `static`): the viewer and admin pages, with `node_modules`.
    pub static_dir: PathBuf,
    /// How long history is kept.
    pub retention: Retention,
    /// `REPLICA_ADDRESS` (optional): the URL other replicas reach this one at, e.g.
    /// `http://10.0.0.7:8080`; by default `http://` and the listener's address (its host name
    /// when it listens on every interface).
    pub replica_address: Option<String>,
    /// `REPLICA_HEARTBEAT_INTERVAL` (default `2s`): how often this replica records that it
    /// lives; a replica three beats late is dead and its agents are judged by a survivor.
    pub replica_heartbeat_interval: Duration,
    /// `SHUTDOWN_GRACE` (default `20s`): on SIGTERM, how long requests in flight get to finish
    /// once agents and viewers are handed over (keep it under the pod's grace period).
    pub shutdown_grace: Duration,
    /// `USER_CACHE_TTL` (default `2s`): how long a caller's user row is reused without reading
    /// it again (changes through any replica end it at once).
    pub user_cache_ttl: Duration,
    /// `RECORDING_DIR` (default `recordings`): where recorded streams are written; storage
    /// every replica shares when there are several.
    pub recording_dir: PathBuf,
}

/// How long each kind of history is kept before the pruner deletes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// `COMMAND_RETENTION` (default `7d`): finished commands.
    pub commands: Duration,
    /// `AUDIT_RETENTION` (default `90d`): audit entries.
    pub audit: Duration,
    /// `SESSION_RETENTION` (default `30d`): terminated, failed and lost sessions.
    pub sessions: Duration,
    /// `RECORDING_RETENTION` (default `90d`): recordings (rows and files), by when they ended.
    pub recordings: Duration,
}

const DAY: Duration = Duration::from_secs(86400);

impl std::fmt::Debug for Config {
    // Hand-written so secrets never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen_addr", &self.listen_addr)
            .field("agent_heartbeat_interval", &self.agent_heartbeat_interval)
            .field("agent_timeout", &self.agent_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("vnc_proxy_enabled", &self.vnc_proxy_enabled)
            .field("static_dir", &self.static_dir)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars = Vars(lookup);
        let database_url = vars.required("DATABASE_URL")?;
        if !database_url.starts_with("postgres://") && !database_url.starts_with("postgresql://") {
            return Err(error(
                "DATABASE_URL",
                "must start with postgres:// or postgresql://",
            ));
        }
        let jwt_secret = vars.required("JWT_SECRET")?.into_bytes();
        if jwt_secret.len() < MIN_JWT_SECRET_LEN {
            return Err(error(
                "JWT_SECRET",
                format!(
                    "is {} bytes; at least {MIN_JWT_SECRET_LEN} are required",
                    jwt_secret.len()
                ),
            ));
        }
        let agent_heartbeat_interval =
            vars.duration("AGENT_HEARTBEAT_INTERVAL", Duration::from_secs(30))?;
        let agent_timeout = vars.duration("AGENT_TIMEOUT", Duration::from_secs(90))?;
        if agent_timeout <= agent_heartbeat_interval {
            return Err(error(
                "AGENT_TIMEOUT",
                "must be longer than AGENT_HEARTBEAT_INTERVAL",
            ));
        }
        Ok(Config {
            database_url,
            jwt_secret,
            listen_addr: vars.parsed(
                "LISTEN_ADDR",
                "0.0.0.0:8080",
                "a socket address like 0.0.0.0:8080",
            )?,
            agent_heartbeat_interval,
            agent_timeout,
            command_timeout: vars.duration("COMMAND_TIMEOUT", Duration::from_secs(300))?,
            retention: Retention {
                commands: vars.duration("COMMAND_RETENTION", DAY * 7)?,
                audit: vars.duration("AUDIT_RETENTION", DAY * 90)?,
                sessions: vars.duration("SESSION_RETENTION", DAY * 30)?,
                recordings: vars.duration("RECORDING_RETENTION", DAY * 90)?,
            },
            vnc_proxy_enabled: vars.boolean("VNC_PROXY_ENABLED", true)?,
            admin_password: vars.optional("STREAMSPACE_ADMIN_PASSWORD"),
            static_dir: vars
                .optional("STATIC_DIR")
                .unwrap_or_else(|| "static".into())
                .into(),
            replica_address: match vars.optional("REPLICA_ADDRESS") {
                None => None,
                Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                    Some(url.trim_end_matches('/').to_owned())
                }
                Some(url) => {
                    return Err(error(
                        "REPLICA_ADDRESS",
                        format!("{url:?} is not an http:// or https:// URL"),
                    ));
                }
            },
            replica_heartbeat_interval: vars
                .duration("REPLICA_HEARTBEAT_INTERVAL", Duration::from_secs(2))?,
            shutdown_grace: vars.duration("SHUTDOWN_GRACE", Duration::from_secs(20))?,
            user_cache_ttl: vars.duration("USER_CACHE_TTL", Duration::from_secs(2))?,
            recording_dir: match vars.optional("RECORDING_DIR") {
                Some(dir) if dir.trim().is_empty() => {
                    return Err(error("RECORDING_DIR", "must not be blank"));
                }
                dir => dir.unwrap_or_else(|| "recordings".into()).into(),
            },
        })
    }
}

/// Every variable the control plane's configuration reads, for `--help` (which adds the
/// logger's; the README's table says more).
pub const VARIABLES: &[Variable] = &[
    Variable {
        name: "DATABASE_URL",
        default: "required",
        meaning: "Postgres URL (postgres://…); migrations run at start",
    },
    Variable {
        name: "JWT_SECRET",
        default: "required",
        meaning: "at least 32 bytes; signs login, viewer and replica tokens (the same on every replica)",
    },
    Variable {
        name: "LISTEN_ADDR",
        default: "0.0.0.0:8080",
        meaning: "HTTP and WebSocket listener",
    },
    Variable {
        name: "AGENT_HEARTBEAT_INTERVAL",
        default: "30s",
        meaning: "how often agents send heartbeats and agents and viewers are pinged",
    },
    Variable {
        name: "AGENT_TIMEOUT",
        default: "90s",
        meaning: "silence after which an agent is offline; longer than the interval",
    },
    Variable {
        name: "COMMAND_TIMEOUT",
        default: "5m",
        meaning: "an unanswered command times out (stream commands: 30s)",
    },
    Variable {
        name: "VNC_PROXY_ENABLED",
        default: "true",
        meaning: "serve viewer tokens and the VNC proxy",
    },
    Variable {
        name: "STREAMSPACE_ADMIN_PASSWORD",
        default: "generated",
        meaning: "password of the first admin, else one is printed once",
    },
    Variable {
        name: "STATIC_DIR",
        default: "static",
        meaning: "the pages and their node_modules (noVNC)",
    },
    Variable {
        name: "COMMAND_RETENTION",
        default: "7d",
        meaning: "finished commands older than this are deleted",
    },
    Variable {
        name: "AUDIT_RETENTION",
        default: "90d",
        meaning: "audit entries older than this are deleted",
    },
    Variable {
        name: "SESSION_RETENTION",
        default: "30d",
        meaning: "ended sessions unchanged this long are deleted",
    },
    Variable {
        name: "RECORDING_RETENTION",
        default: "90d",
        meaning: "recordings that ended this long ago are deleted, with their files",
    },
    Variable {
        name: "REPLICA_ADDRESS",
        default: "http://<listener>",
        meaning: "where the other replicas reach this one (the viewer bridge)",
    },
    Variable {
        name: "REPLICA_HEARTBEAT_INTERVAL",
        default: "2s",
        meaning: "how often a replica records that it lives; three missed beats and others take over",
    },
    Variable {
        name: "SHUTDOWN_GRACE",
        default: "20s",
        meaning: "on SIGTERM, how long requests in flight get to finish (under the pod's grace)",
    },
    Variable {
        name: "RECORDING_DIR",
        default: "recordings",
        meaning: "where recorded viewer streams are written (shared storage for several replicas)",
    },
    Variable {
        name: "USER_CACHE_TTL",
        default: "2s",
        meaning: "a caller's user row is reused this long (changes on any replica end it at once)",
    },
];

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn help_lists_exactly_the_variables_the_configuration_reads() {
        let mismatch = streamspace_settings::help_mismatch(
            VARIABLES,
            &[
                ("DATABASE_URL", "postgres://db/x"),
                ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
            ],
            |get| Config::from_lookup(get),
        );
        assert_eq!(
            mismatch,
            (vec![], vec![]),
            "(read but not listed, listed but not read)"
        );
    }

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut env: HashMap<String, String> = [
            ("DATABASE_URL", "postgres://localhost/streamspace"),
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in pairs {
            env.insert(k.to_string(), v.to_string());
        }
        Config::from_lookup(|name| env.get(name).cloned())
    }

    #[test]
    fn defaults_match_the_design() {
        let c = config(&[]).unwrap();
        assert_eq!(c.listen_addr.to_string(), "0.0.0.0:8080");
        assert_eq!(c.agent_heartbeat_interval, Duration::from_secs(30));
        assert_eq!(c.agent_timeout, Duration::from_secs(90));
        assert_eq!(c.command_timeout, Duration::from_secs(300));
        assert!(c.vnc_proxy_enabled);
    }

    #[test]
    fn short_jwt_secret_is_refused_naming_the_variable() {
        let err = config(&[("JWT_SECRET", "short")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "JWT_SECRET: is 5 bytes; at least 32 are required"
        );
    }

    #[test]
    fn missing_database_url_is_refused() {
        let err = config(&[("DATABASE_URL", "")]).unwrap_err();
        assert_eq!(err.to_string(), "DATABASE_URL: is required but not set");
    }

    #[test]
    fn malformed_values_name_their_variable() {
        for (var, value) in [
            ("LISTEN_ADDR", "localhost"),
            ("AGENT_TIMEOUT", "soon"),
            ("COMMAND_TIMEOUT", "0s"),
            ("VNC_PROXY_ENABLED", "maybe"),
            ("DATABASE_URL", "mysql://x"),
        ] {
            let err = config(&[(var, value)]).unwrap_err();
            assert_eq!(err.variable, var, "{err}");
        }
    }

    #[test]
    fn agent_timeout_must_exceed_the_heartbeat_interval() {
        let err = config(&[("AGENT_HEARTBEAT_INTERVAL", "1m"), ("AGENT_TIMEOUT", "30s")]);
        assert_eq!(err.unwrap_err().variable, "AGENT_TIMEOUT");
    }
}
