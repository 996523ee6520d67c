//! Agent configuration, read once from the environment at start.

use std::path::PathBuf;

pub use streamspace_settings::ConfigError;
use streamspace_settings::{Variable, Vars, error};

use crate::runtime::docker::Engine;
use crate::runtime::local::accounts::MAX_PREFIX;

/// Where the Docker engine usually listens.
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

/// Where sessions run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// Pods and PVCs in a Kubernetes namespace.
    Kubernetes,
    /// Containers and volumes on a Docker engine.
    Docker,
    /// Xvnc and a desktop program as processes on this host.
    Local,
}

impl Platform {
    /// The name used on the wire and in `PLATFORM`.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Kubernetes => "kubernetes",
            Platform::Docker => "docker",
            Platform::Local => "local",
        }
    }
}

/// Everything the agent is told by its environment.
#[derive(Clone)]
pub struct Config {
    /// `AGENT_ID` (required): this agent's name, bound to its credential.
    pub agent_id: String,
    /// `CONTROL_PLANE_URL` (required): `ws://` or `wss://` base URL of the control plane.
    pub control_plane_url: String,
    /// `AGENT_TOKEN`, or the contents of the file `AGENT_TOKEN_FILE` names: the agent's
    /// credential, minted by an admin.
    pub agent_token: Option<String>,
    /// `PLATFORM` (default `kubernetes`).
    pub platform: Platform,
    /// `REGION` (optional): used for placement.
    pub region: Option<String>,
    /// `NAMESPACE` (default `streamspace`): where session objects live.
    pub namespace: String,
    /// `DOCKER_HOST` (docker platform, default `unix:///var/run/docker.sock`): the engine.
    pub docker_host: Engine,
    /// `KUBECONFIG` (optional): otherwise in-cluster configuration is used.
    pub kubeconfig: Option<PathBuf>,
    /// `HEALTH_ADDR` (default `0.0.0.0:8081`): `/healthz` and `/readyz` for probes.
    pub health_addr: std::net::SocketAddr,
    /// `MAX_SESSIONS` (default `20`): sessions this agent accepts at once.
    pub max_sessions: u32,
    /// `DATA_DIR` (local platform, default `/var/lib/streamspace-agent`): session records and
    /// home directories.
    pub data_dir: PathBuf,
    /// `XVNC` (local platform, default `Xvnc`): the VNC server binary.
    pub xvnc: String,
    /// `SCREEN_GEOMETRY` (local platform, default `1280x800`): desktop size.
    pub screen_geometry: String,
    /// `DESKTOP_USER` (local platform, default `streamspace-desktop`): when the agent runs as
    /// root, the unprivileged account desktops run as (`shared`), or the prefix of each
    /// StreamSpace user's own account (`per-user`); created if missing.
    pub desktop_user: String,
    /// `DESKTOP_ACCOUNTS` (local platform, default `per-user`): `per-user` gives each
    /// StreamSpace user's desktops an account of their own, `shared` runs them all as one.
    pub per_user_accounts: bool,
    /// `HOME_SIZE` (kubernetes, default `5Gi`): size of each session's home volume.
    pub home_size: String,
    /// `STORAGE_CLASS` (kubernetes, optional): storage class of home volumes.
    pub storage_class: Option<String>,
    /// `SHM_SIZE` (kubernetes and docker, default `1Gi`): size of each desktop's `/dev/shm`.
    pub shm_size: String,
    /// `RUN_AS_USER` (kubernetes and docker, default `1000`): user id of the desktop container.
    pub run_as_user: i64,
    /// `SESSION_READY_TIMEOUT` (kubernetes and docker, default `5m`): how long a Pod may take
    /// to be Ready, or a container to answer on its VNC port.
    pub ready_timeout: std::time::Duration,
    /// `RECONCILE_INTERVAL` (default `60s`): how often the agent reports every session it
    /// holds, so the control plane notices sessions gone or left over without a reconnect.
    pub reconcile_interval: std::time::Duration,
}

impl std::fmt::Debug for Config {
    // Hand-written so the token never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("agent_id", &self.agent_id)
            .field("control_plane_url", &self.control_plane_url)
            .field("platform", &self.platform)
            .field("region", &self.region)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

/// Kubernetes names: lowercase RFC 1123 labels, which also keeps ids safe in URLs and paths.
fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars = Vars(lookup);
        let get = |name: &str| vars.optional(name);
        let agent_id = vars.required("AGENT_ID")?;
        // A Kubernetes label value: session objects are labelled and selected by it.
        let label_value = agent_id.len() <= 63
            && agent_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            && agent_id.starts_with(|c: char| c.is_ascii_alphanumeric())
            && agent_id.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !label_value {
            return Err(error(
                "AGENT_ID",
                format!(
                    "{agent_id:?} may only hold letters, digits, '.', '_' and '-' (at most 63), starting and ending with a letter or digit"
                ),
            ));
        }
        let control_plane_url = get("CONTROL_PLANE_URL")
            .ok_or_else(|| error("CONTROL_PLANE_URL", "is required but not set"))?;
        let rest = control_plane_url
            .strip_prefix("ws://")
            .or_else(|| control_plane_url.strip_prefix("wss://"))
            .ok_or_else(|| {
                error(
                    "CONTROL_PLANE_URL",
                    format!("{control_plane_url:?} must start with ws:// or wss://"),
                )
            })?;
        if rest.is_empty() || rest.starts_with('/') {
            return Err(error(
                "CONTROL_PLANE_URL",
                format!("{control_plane_url:?} has no host"),
            ));
        }
        // The link carries the agent's credential and every desktop's pixels and keystrokes:
        // unencrypted only on this host, or where an operator says the network is trusted.
        let allow_insecure = vars.boolean("ALLOW_INSECURE_CONTROL_PLANE", false)?;
        if control_plane_url.starts_with("ws://") && !is_loopback(rest) && !allow_insecure {
            return Err(error(
                "CONTROL_PLANE_URL",
                format!(
                    "{control_plane_url:?} is not encrypted: use wss:// (TLS), or set ALLOW_INSECURE_CONTROL_PLANE=true on a network you trust"
                ),
            ));
        }
        let platform = match get("PLATFORM").as_deref() {
            None | Some("kubernetes") => Platform::Kubernetes,
            Some("docker") => Platform::Docker,
            Some("local") => Platform::Local,
            Some(other) => {
                return Err(error(
                    "PLATFORM",
                    format!("{other:?} is not kubernetes, docker or local"),
                ));
            }
        };
        let namespace = get("NAMESPACE").unwrap_or_else(|| "streamspace".into());
        if !is_dns_label(&namespace) {
            return Err(error(
                "NAMESPACE",
                format!("{namespace:?} is not a valid namespace name"),
            ));
        }
        let health_addr = get("HEALTH_ADDR").unwrap_or_else(|| "0.0.0.0:8081".into());
        let health_addr = health_addr.parse().map_err(|_| {
            error(
                "HEALTH_ADDR",
                format!("{health_addr:?} is not a socket address like 0.0.0.0:8081"),
            )
        })?;
        let max_sessions = match get("MAX_SESSIONS") {
            None => 20,
            Some(v) => v.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| {
                error(
                    "MAX_SESSIONS",
                    format!("{v:?} is not a positive whole number"),
                )
            })?,
        };
        let screen_geometry = get("SCREEN_GEOMETRY").unwrap_or_else(|| "1280x800".into());
        let valid_geometry = screen_geometry.split_once('x').is_some_and(|(w, h)| {
            w.parse::<u16>().is_ok_and(|w| w >= 320) && h.parse::<u16>().is_ok_and(|h| h >= 200)
        });
        if !valid_geometry {
            return Err(error(
                "SCREEN_GEOMETRY",
                format!("{screen_geometry:?} is not WIDTHxHEIGHT like 1280x800"),
            ));
        }
        let quantity = |variable: &'static str, default: &str| {
            let value = get(variable).unwrap_or_else(|| default.into());
            let number = value.trim_end_matches(|c: char| c.is_ascii_alphabetic());
            let valid = !number.is_empty()
                && number.bytes().all(|b| b.is_ascii_digit() || b == b'.')
                && ["", "Ki", "Mi", "Gi", "Ti", "k", "M", "G", "T"]
                    .contains(&&value[number.len()..]);
            if valid {
                Ok(value)
            } else {
                Err(error(
                    variable,
                    format!("{value:?} is not a quantity like 512Mi or 5Gi"),
                ))
            }
        };
        let run_as_user =
            match get("RUN_AS_USER") {
                None => 1000,
                Some(v) => v.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                    error("RUN_AS_USER", format!("{v:?} is not a non-root user id"))
                })?,
            };
        let duration = |variable: &'static str, default: u64| {
            vars.duration(variable, std::time::Duration::from_secs(default))
        };
        let per_user_accounts = match get("DESKTOP_ACCOUNTS").as_deref() {
            None | Some("per-user") => true,
            Some("shared") => false,
            Some(other) => {
                return Err(error(
                    "DESKTOP_ACCOUNTS",
                    format!("{other:?} is neither per-user nor shared"),
                ));
            }
        };
        let desktop_user = get("DESKTOP_USER").unwrap_or_else(|| "streamspace-desktop".into());
        let longest = if per_user_accounts { MAX_PREFIX } else { 32 };
        let account_name = desktop_user.len() <= longest
            && desktop_user.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && desktop_user
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-".contains(&b));
        if !account_name {
            return Err(error(
                "DESKTOP_USER",
                format!(
                    "{desktop_user:?} is not an account name: lowercase letters, digits, '_' and '-', starting with a letter or '_', at most {longest} characters{}",
                    if per_user_accounts {
                        " (per-user accounts add 11)"
                    } else {
                        ""
                    }
                ),
            ));
        }
        let docker_host = get("DOCKER_HOST").unwrap_or_else(|| DEFAULT_DOCKER_HOST.into());
        let docker_host = Engine::new(&docker_host).map_err(|e| error("DOCKER_HOST", e))?;
        let ready_timeout = duration("SESSION_READY_TIMEOUT", 300)?;
        let reconcile_interval = duration("RECONCILE_INTERVAL", 60)?;
        Ok(Config {
            reconcile_interval,
            home_size: quantity("HOME_SIZE", "5Gi")?,
            storage_class: get("STORAGE_CLASS"),
            shm_size: quantity("SHM_SIZE", "1Gi")?,
            run_as_user,
            ready_timeout,
            health_addr,
            max_sessions,
            data_dir: get("DATA_DIR")
                .unwrap_or_else(|| "/var/lib/streamspace-agent".into())
                .into(),
            xvnc: get("XVNC").unwrap_or_else(|| "Xvnc".into()),
            desktop_user,
            per_user_accounts,
            screen_geometry,
            agent_id,
            control_plane_url: control_plane_url.trim_end_matches('/').to_owned(),
            agent_token: agent_token(get("AGENT_TOKEN"), get("AGENT_TOKEN_FILE"))?,
            platform,
            region: get("REGION"),
            namespace,
            kubeconfig: get("KUBECONFIG").map(PathBuf::from),
            docker_host,
        })
    }
}

/// The credential from the environment or from a file (a mounted Secret: unlike the
/// environment, other processes of the same user cannot read it from `/proc`).
fn agent_token(value: Option<String>, file: Option<String>) -> Result<Option<String>, ConfigError> {
    match (value, file) {
        (Some(_), Some(_)) => Err(error(
            "AGENT_TOKEN_FILE",
            "is set together with AGENT_TOKEN: set one of them",
        )),
        (value, None) => Ok(value),
        (None, Some(path)) => {
            let token = std::fs::read_to_string(&path)
                .map_err(|e| error("AGENT_TOKEN_FILE", format!("cannot read {path}: {e}")))?;
            let token = token.trim().to_owned();
            if token.is_empty() {
                return Err(error("AGENT_TOKEN_FILE", format!("{path} is empty")));
            }
            Ok(Some(token))
        }
    }
}

/// Whether the host of `host_and_path` (a URL without its scheme) is this machine.
fn is_loopback(host_and_path: &str) -> bool {
    let authority = host_and_path.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority
            .rsplit_once(':')
            .map_or(authority, |(host, _)| host),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Every variable the agent's configuration reads, for `--help` (which adds the logger's;
/// the README's table says more).
pub const VARIABLES: &[Variable] = &[
    Variable {
        name: "AGENT_ID",
        default: "required",
        meaning: "the agent's name; its credential is bound to it",
    },
    Variable {
        name: "CONTROL_PLANE_URL",
        default: "required",
        meaning: "ws:// or wss:// URL of the control plane",
    },
    Variable {
        name: "AGENT_TOKEN",
        default: "—",
        meaning: "the agent's credential, minted by an admin",
    },
    Variable {
        name: "AGENT_TOKEN_FILE",
        default: "—",
        meaning: "a file holding the credential instead",
    },
    Variable {
        name: "ALLOW_INSECURE_CONTROL_PLANE",
        default: "false",
        meaning: "allow a ws:// URL that is not this host",
    },
    Variable {
        name: "PLATFORM",
        default: "kubernetes",
        meaning: "kubernetes, docker or local",
    },
    Variable {
        name: "REGION",
        default: "—",
        meaning: "used to place sessions",
    },
    Variable {
        name: "MAX_SESSIONS",
        default: "20",
        meaning: "sessions accepted at once (announced as capacity)",
    },
    Variable {
        name: "HEALTH_ADDR",
        default: "0.0.0.0:8081",
        meaning: "/healthz and /readyz (ready = linked)",
    },
    Variable {
        name: "NAMESPACE",
        default: "streamspace",
        meaning: "kubernetes: namespace of the session objects",
    },
    Variable {
        name: "KUBECONFIG",
        default: "in-cluster",
        meaning: "kubernetes: path to a kubeconfig",
    },
    Variable {
        name: "DOCKER_HOST",
        default: DEFAULT_DOCKER_HOST,
        meaning: "docker: the engine's unix:// socket",
    },
    Variable {
        name: "HOME_SIZE",
        default: "5Gi",
        meaning: "kubernetes: size of each home volume",
    },
    Variable {
        name: "STORAGE_CLASS",
        default: "cluster default",
        meaning: "kubernetes: storage class of home volumes",
    },
    Variable {
        name: "SHM_SIZE",
        default: "1Gi",
        meaning: "kubernetes, docker: size of each desktop's /dev/shm",
    },
    Variable {
        name: "RUN_AS_USER",
        default: "1000",
        meaning: "kubernetes, docker: user id of the desktop container",
    },
    Variable {
        name: "RECONCILE_INTERVAL",
        default: "60s",
        meaning: "how often the agent reports every session it holds",
    },
    Variable {
        name: "SESSION_READY_TIMEOUT",
        default: "5m",
        meaning: "how long a desktop may take to be ready",
    },
    Variable {
        name: "DATA_DIR",
        default: "/var/lib/streamspace-agent",
        meaning: "local: session records and home directories",
    },
    Variable {
        name: "XVNC",
        default: "Xvnc",
        meaning: "local: the VNC server binary",
    },
    Variable {
        name: "DESKTOP_ACCOUNTS",
        default: "per-user",
        meaning: "local, as root: per-user accounts, or shared",
    },
    Variable {
        name: "DESKTOP_USER",
        default: "streamspace-desktop",
        meaning: "local: the shared account, or the per-user accounts' prefix",
    },
    Variable {
        name: "SCREEN_GEOMETRY",
        default: "1280x800",
        meaning: "local: desktop size",
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
            &[("AGENT_ID", "k8s-eu-1"), ("CONTROL_PLANE_URL", "wss://cp/")],
            |get| Config::from_lookup(get),
        );
        assert_eq!(
            mismatch,
            (vec![], vec![]),
            "(read but not listed, listed but not read)"
        );
    }

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut env: HashMap<&str, &str> = [
            ("AGENT_ID", "k8s-eu-1"),
            ("CONTROL_PLANE_URL", "ws://cp:8080/"),
            ("ALLOW_INSECURE_CONTROL_PLANE", "true"),
        ]
        .into();
        env.extend(pairs.iter().copied());
        Config::from_lookup(|name| env.get(name).map(|v| v.to_string()))
    }

    #[test]
    fn defaults_match_the_design() {
        let c = config(&[]).unwrap();
        assert_eq!(c.platform, Platform::Kubernetes);
        assert_eq!(c.namespace, "streamspace");
        assert_eq!(c.control_plane_url, "ws://cp:8080");
        assert_eq!(c.agent_token, None);
    }

    #[test]
    fn the_token_comes_from_the_environment_or_a_file_not_both() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "ssa_secret\n").unwrap();
        let path = file.to_string_lossy().into_owned();
        let c = config(&[("AGENT_TOKEN_FILE", path.as_str())]).unwrap();
        assert_eq!(c.agent_token.as_deref(), Some("ssa_secret"));
        let both = config(&[("AGENT_TOKEN_FILE", path.as_str()), ("AGENT_TOKEN", "x")]);
        assert_eq!(
            both.unwrap_err().to_string(),
            "AGENT_TOKEN_FILE: is set together with AGENT_TOKEN: set one of them"
        );
        let missing = dir.path().join("nope").to_string_lossy().into_owned();
        let err = config(&[("AGENT_TOKEN_FILE", missing.as_str())]).unwrap_err();
        assert!(
            err.to_string().starts_with("AGENT_TOKEN_FILE: cannot read"),
            "{err}"
        );
    }

    #[test]
    fn plain_ws_is_refused_beyond_this_host_unless_allowed() {
        let refused = config(&[("ALLOW_INSECURE_CONTROL_PLANE", "false")]).unwrap_err();
        assert_eq!(refused.variable, "CONTROL_PLANE_URL");
        assert!(refused.problem.contains("use wss://"), "{refused}");
        for local in [
            "ws://127.0.0.1:8080",
            "ws://localhost:8080/",
            "ws://[::1]:8080",
            "ws://127.0.0.2",
        ] {
            let c = config(&[
                ("ALLOW_INSECURE_CONTROL_PLANE", "false"),
                ("CONTROL_PLANE_URL", local),
            ]);
            assert!(c.is_ok(), "{local}");
        }
        assert!(
            config(&[
                ("ALLOW_INSECURE_CONTROL_PLANE", "false"),
                ("CONTROL_PLANE_URL", "wss://cp.example.com"),
            ])
            .is_ok()
        );
        assert_eq!(
            config(&[("ALLOW_INSECURE_CONTROL_PLANE", "maybe")])
                .unwrap_err()
                .to_string(),
            "ALLOW_INSECURE_CONTROL_PLANE: \"maybe\" is not true or false"
        );
    }

    #[test]
    fn each_bad_value_names_its_variable() {
        for (var, value, message) in [
            ("AGENT_ID", "", "AGENT_ID: is required but not set"),
            (
                "AGENT_ID",
                "a b",
                "AGENT_ID: \"a b\" may only hold letters, digits, '.', '_' and '-' (at most 63), starting and ending with a letter or digit",
            ),
            (
                "AGENT_ID",
                "qa-",
                "AGENT_ID: \"qa-\" may only hold letters, digits, '.', '_' and '-' (at most 63), starting and ending with a letter or digit",
            ),
            (
                "CONTROL_PLANE_URL",
                "http://cp",
                "CONTROL_PLANE_URL: \"http://cp\" must start with ws:// or wss://",
            ),
            (
                "CONTROL_PLANE_URL",
                "ws://",
                "CONTROL_PLANE_URL: \"ws://\" has no host",
            ),
            (
                "PLATFORM",
                "podman",
                "PLATFORM: \"podman\" is not kubernetes, docker or local",
            ),
            (
                "DOCKER_HOST",
                "tcp://10.0.0.1:2375",
                "DOCKER_HOST: \"tcp://10.0.0.1:2375\" is not a unix:// socket like unix:///var/run/docker.sock",
            ),
            (
                "NAMESPACE",
                "Stream_Space",
                "NAMESPACE: \"Stream_Space\" is not a valid namespace name",
            ),
            (
                "HEALTH_ADDR",
                "8081",
                "HEALTH_ADDR: \"8081\" is not a socket address like 0.0.0.0:8081",
            ),
            (
                "MAX_SESSIONS",
                "0",
                "MAX_SESSIONS: \"0\" is not a positive whole number",
            ),
            (
                "SCREEN_GEOMETRY",
                "big",
                "SCREEN_GEOMETRY: \"big\" is not WIDTHxHEIGHT like 1280x800",
            ),
        ] {
            assert_eq!(config(&[(var, value)]).unwrap_err().to_string(), message);
        }
    }
}
