//! The Docker engine this agent drives, and what its errors mean to a user.

use bollard::errors::Error;
use bollard::{ClientVersion, Docker};

use crate::runtime::RuntimeError;

/// Docker Engine API 1.41 (dockerd 20.10, Podman 4): every call here exists in it, and
/// newer engines serve it too, so no version negotiation is needed before the first call.
const API_VERSION: ClientVersion = ClientVersion {
    major_version: 1,
    minor_version: 41,
};

/// How long one Engine API call may take (a pull is a stream of calls' worth).
const CALL_TIMEOUT_SECS: u64 = 120;

/// Where the engine listens: a `unix://` socket.
#[derive(Debug, Clone)]
pub struct Engine {
    host: String,
}

impl Engine {
    /// An engine at `host` (`unix:///var/run/docker.sock`); checked, not yet contacted.
    pub fn new(host: &str) -> Result<Engine, String> {
        match host.strip_prefix("unix://") {
            Some(path) if path.starts_with('/') => Ok(Engine {
                host: host.to_owned(),
            }),
            _ => Err(format!(
                "{host:?} is not a unix:// socket like unix:///var/run/docker.sock"
            )),
        }
    }

    /// `DOCKER_HOST` as given.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// A client. Made per operation: it only checks that the socket exists, so an engine
    /// that was down when the agent started, or restarted since, is found when it is back.
    pub fn client(&self) -> Result<Docker, RuntimeError> {
        Docker::connect_with_unix(&self.host, CALL_TIMEOUT_SECS, &API_VERSION)
            .map_err(|e| self.error("connecting", e))
    }

    /// What went wrong, in words a user can act on: the engine's own message, or that the
    /// engine does not answer at all.
    pub fn error(&self, what: &str, e: Error) -> RuntimeError {
        match e {
            Error::DockerResponseServerError { message, .. } => {
                RuntimeError::Other(format!("{what}: {}", message.trim()))
            }
            Error::SocketNotFoundError(path) => RuntimeError::Other(format!(
                "the Docker engine at {} does not answer: no socket at {path}",
                self.host
            )),
            other => RuntimeError::Other(format!(
                "the Docker engine at {} does not answer ({what}): {other}",
                self.host
            )),
        }
    }
}

/// The engine's answer was this HTTP status.
pub fn is_status(e: &Error, status: u16) -> bool {
    matches!(e, Error::DockerResponseServerError { status_code, .. } if *status_code == status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unix_sockets_are_accepted() {
        assert!(Engine::new("unix:///var/run/docker.sock").is_ok());
        for bad in [
            "tcp://10.0.0.1:2375",
            "/var/run/docker.sock",
            "unix://relative",
        ] {
            assert!(Engine::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_missing_socket_says_the_engine_does_not_answer() {
        let engine = Engine::new("unix:///nonexistent/docker.sock").unwrap();
        let err = engine.client().unwrap_err().to_string();
        assert_eq!(
            err,
            "the Docker engine at unix:///nonexistent/docker.sock does not answer: no socket at /nonexistent/docker.sock"
        );
    }
}
