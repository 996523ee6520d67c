//! Control-plane configuration, read once from the environment at start.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

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

/// A variable that is missing or malformed; the message names it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    /// The environment variable.
    pub variable: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars = Vars(&lookup);
        let database_url = vars.required("DATABASE_URL")?;
        if !database_url.starts_with("postgres://") && !database_url.starts_with("postgresql://") {
            return Err(vars.error(
                "DATABASE_URL",
                "must start with postgres:// or postgresql://",
            ));
        }
        let jwt_secret = vars.required("JWT_SECRET")?.into_bytes();
        if jwt_secret.len() < MIN_JWT_SECRET_LEN {
            return Err(vars.error(
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
            return Err(vars.error(
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
            },
            vnc_proxy_enabled: vars.boolean("VNC_PROXY_ENABLED", true)?,
            admin_password: vars.optional("STREAMSPACE_ADMIN_PASSWORD"),
            static_dir: vars
                .optional("STATIC_DIR")
                .unwrap_or_else(|| "static".into())
                .into(),
        })
    }
}

/// Typed access to configuration variables, each failure naming its variable.
pub(crate) struct Vars<'a, F: Fn(&str) -> Option<String>>(pub(crate) &'a F);

impl<F: Fn(&str) -> Option<String>> Vars<'_, F> {
    pub(crate) fn error(&self, variable: &'static str, problem: impl Into<String>) -> ConfigError {
        ConfigError {
            variable,
            problem: problem.into(),
        }
    }

    /// A set, non-blank value.
    pub(crate) fn optional(&self, variable: &'static str) -> Option<String> {
        (self.0)(variable).filter(|v| !v.trim().is_empty())
    }

    pub(crate) fn required(&self, variable: &'static str) -> Result<String, ConfigError> {
        self.optional(variable)
            .ok_or_else(|| self.error(variable, "is required but not set"))
    }

    pub(crate) fn parsed<T: std::str::FromStr>(
        &self,
        variable: &'static str,
        default: &str,
        expected: &str,
    ) -> Result<T, ConfigError> {
        let value = self
            .optional(variable)
            .unwrap_or_else(|| default.to_owned());
        value
            .trim()
            .parse()
            .map_err(|_| self.error(variable, format!("{value:?} is not {expected}")))
    }

    pub(crate) fn duration(
        &self,
        variable: &'static str,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        match self.optional(variable) {
            None => Ok(default),
            Some(value) => parse_duration(&value).ok_or_else(|| {
                self.error(
                    variable,
                    format!("{value:?} is not a positive duration like 500ms, 30s, 5m, 1h or 7d"),
                )
            }),
        }
    }

    pub(crate) fn boolean(
        &self,
        variable: &'static str,
        default: bool,
    ) -> Result<bool, ConfigError> {
        match self
            .optional(variable)
            .map(|v| v.trim().to_ascii_lowercase())
        {
            None => Ok(default),
            Some(v) if matches!(v.as_str(), "true" | "1" | "yes" | "on") => Ok(true),
            Some(v) if matches!(v.as_str(), "false" | "0" | "no" | "off") => Ok(false),
            Some(v) => Err(self.error(variable, format!("{v:?} is not true or false"))),
        }
    }
}

/// Parses `500ms`, `30s`, `5m`, `1h` (a bare number is seconds). Zero is refused.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let duration = match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60)?),
        "h" => Duration::from_secs(n.checked_mul(3600)?),
        "d" => Duration::from_secs(n.checked_mul(86400)?),
        _ => return None,
    };
    (!duration.is_zero()).then_some(duration)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

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

    #[test]
    fn durations_accept_the_usual_units() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("45"), Some(Duration::from_secs(45)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(parse_duration("7d"), Some(Duration::from_secs(7 * 86400)));
        assert_eq!(parse_duration("1w"), None);
    }
}
