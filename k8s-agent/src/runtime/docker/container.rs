//! The Docker objects of one session, as plain builders: the desktop container (the
//! template's image, limits from the session's resources, no capabilities, VNC published on
//! 127.0.0.1 only) and the named volume of a persistent home.

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, HostConfig, Mount, MountType, NetworkCreateRequest, PortBinding,
    VolumeCreateRequest,
};
use streamspace_protocol::SessionSpec;
use uuid::Uuid;

use crate::runtime::labels::{
    AGENT_LABEL, HOME_LABEL, MANAGED_BY, SESSION_LABEL, TEMPLATE_LABEL, USER_LABEL,
};
use crate::runtime::session_env::{HOME_PATH, session_env};

/// How sessions are laid out on the engine.
#[derive(Debug, Clone)]
pub struct Layout {
    /// This agent's id (a label on everything, and the name of its network).
    pub agent_id: String,
    /// Size of `/dev/shm` in bytes.
    pub shm_bytes: i64,
    /// The user id the desktop runs as.
    pub run_as_user: i64,
}

impl Layout {
    /// The bridge network of this agent's desktops: containers on it cannot reach each
    /// other, so one user's desktop cannot open another's VNC port.
    pub fn network(&self) -> String {
        format!("streamspace-{}", self.agent_id)
    }

    /// Label filters selecting every container of this agent (the Engine API's form).
    pub fn filters(&self) -> HashMap<String, Vec<String>> {
        HashMap::from([(
            "label".to_owned(),
            vec![
                format!("{}={}", MANAGED_BY.0, MANAGED_BY.1),
                format!("{AGENT_LABEL}={}", self.agent_id),
            ],
        )])
    }

    /// [`Self::filters`], narrowed to the containers that mount `home_id`.
    pub fn home_filters(&self, home_id: Uuid) -> HashMap<String, Vec<String>> {
        let mut filters = self.filters();
        if let Some(labels) = filters.get_mut("label") {
            labels.push(format!("{HOME_LABEL}={home_id}"));
        }
        filters
    }
}

/// Name of a session's container.
pub fn container_name(id: Uuid) -> String {
    format!("ss-{id}")
}

/// Name of the home volume of a session that has a home of its own (sent by control planes
/// before protocol 1.2, which did not key homes by user and template).
pub fn own_home_volume(id: Uuid) -> String {
    format!("ss-{id}-home")
}

/// Name of a persistent home's volume, shared by the sessions of one user and template.
pub fn shared_home_volume(home_id: Uuid) -> String {
    format!("ss-home-{home_id}")
}

/// The volume a session's home lives on (when it is persistent).
pub fn home_volume(spec: &SessionSpec) -> Option<String> {
    spec.persistent_home.then(|| {
        spec.home_id
            .map_or_else(|| own_home_volume(spec.session_id), shared_home_volume)
    })
}

fn labels(layout: &Layout, spec: &SessionSpec) -> HashMap<String, String> {
    let mut labels = HashMap::from([
        (MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned()),
        (SESSION_LABEL.to_owned(), spec.session_id.to_string()),
        (AGENT_LABEL.to_owned(), layout.agent_id.clone()),
        (USER_LABEL.to_owned(), spec.user.clone()),
        (TEMPLATE_LABEL.to_owned(), spec.template.name.clone()),
    ]);
    if spec.persistent_home
        && let Some(home_id) = spec.home_id
    {
        labels.insert(HOME_LABEL.to_owned(), home_id.to_string());
    }
    labels
}

/// The desktop container. Fails when the session's resources cannot be expressed as limits.
pub fn container(layout: &Layout, spec: &SessionSpec) -> Result<ContainerCreateBody, String> {
    let nano_cpus = nano_cpus(&spec.resources.cpu)?;
    let memory = bytes(&spec.resources.memory)?;
    let vnc_port = format!("{}/tcp", spec.template.vnc_port);
    let mounts = home_volume(spec).map(|volume| {
        vec![Mount {
            target: Some(HOME_PATH.to_owned()),
            source: Some(volume),
            typ: Some(MountType::VOLUME),
            ..Mount::default()
        }]
    });
    Ok(ContainerCreateBody {
        image: Some(spec.template.image.clone()),
        user: Some(format!("{0}:{0}", layout.run_as_user)),
        env: Some(
            session_env(spec)
                .into_iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect(),
        ),
        labels: Some(labels(layout, spec)),
        exposed_ports: Some(vec![vnc_port.clone()]),
        host_config: Some(HostConfig {
            nano_cpus: Some(nano_cpus),
            memory: Some(memory),
            // No swap beyond the memory limit: the limit is the limit.
            memory_swap: Some(memory),
            shm_size: Some(layout.shm_bytes),
            pids_limit: Some(4096),
            // A desktop needs no privilege: Xvnc listens above 1024 and runs as a user.
            cap_drop: Some(vec!["ALL".to_owned()]),
            security_opt: Some(vec!["no-new-privileges".to_owned()]),
            network_mode: Some(layout.network()),
            // Reachable from this host's loopback only, on a port the engine picks.
            port_bindings: Some(HashMap::from([(
                vnc_port,
                Some(vec![PortBinding {
                    host_ip: Some("127.0.0.1".to_owned()),
                    host_port: Some(String::new()),
                }]),
            )])),
            mounts,
            ..HostConfig::default()
        }),
        ..ContainerCreateBody::default()
    })
}

/// The named volume of a persistent home.
pub fn home_volume_request(layout: &Layout, spec: &SessionSpec, name: &str) -> VolumeCreateRequest {
    let mut labels = HashMap::from([
        (MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned()),
        (AGENT_LABEL.to_owned(), layout.agent_id.clone()),
        (USER_LABEL.to_owned(), spec.user.clone()),
    ]);
    if let Some(home_id) = spec.home_id {
        labels.insert(HOME_LABEL.to_owned(), home_id.to_string());
    }
    VolumeCreateRequest {
        name: Some(name.to_owned()),
        labels: Some(labels),
        ..VolumeCreateRequest::default()
    }
}

/// This agent's network: a bridge whose containers cannot talk to each other.
pub fn network(layout: &Layout) -> NetworkCreateRequest {
    NetworkCreateRequest {
        name: layout.network(),
        driver: Some("bridge".to_owned()),
        options: Some(HashMap::from([(
            "com.docker.network.bridge.enable_icc".to_owned(),
            "false".to_owned(),
        )])),
        labels: Some(HashMap::from([
            (MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned()),
            (AGENT_LABEL.to_owned(), layout.agent_id.clone()),
        ])),
        ..NetworkCreateRequest::default()
    }
}

/// A CPU quantity (`2`, `0.5`, `1500m`) in billionths of a CPU, as `NanoCpus` wants it.
pub fn nano_cpus(quantity: &str) -> Result<i64, String> {
    let (number, scale) = match quantity.strip_suffix('m') {
        Some(milli) => (milli, 1_000_000.0),
        None => (quantity, 1_000_000_000.0),
    };
    number
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n > 0.0)
        .map(|n| (n * scale).round() as i64)
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("cpu {quantity:?} is not a CPU quantity like 2, 0.5 or 1500m"))
}

/// A memory quantity (`512Mi`, `2Gi`, `1G`, `1073741824`) in bytes.
pub fn bytes(quantity: &str) -> Result<i64, String> {
    const SUFFIXES: [(&str, f64); 8] = [
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
    ];
    let (number, scale) = SUFFIXES
        .iter()
        .find_map(|(suffix, scale)| quantity.strip_suffix(suffix).map(|n| (n, *scale)))
        .unwrap_or((quantity, 1.0));
    number
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n > 0.0)
        .map(|n| (n * scale).round())
        .filter(|n| *n >= 1.0 && *n < i64::MAX as f64)
        .map(|n| n as i64)
        .ok_or_else(|| format!("memory {quantity:?} is not a memory quantity like 512Mi or 2Gi"))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use streamspace_protocol::{Resources, TemplateSpec};

    use super::*;

    fn spec(persistent: bool, home_id: Option<Uuid>) -> SessionSpec {
        SessionSpec {
            session_id: Uuid::from_u128(7),
            user: "alice".into(),
            template: TemplateSpec {
                name: "desktop".into(),
                image: "streamspace/desktop:1".into(),
                vnc_port: 5900,
                env: BTreeMap::from([("SCREEN_GEOMETRY".into(), "1024x768".into())]),
            },
            resources: Resources {
                cpu: "1500m".into(),
                memory: "2Gi".into(),
            },
            persistent_home: persistent,
            home_id,
        }
    }

    fn layout() -> Layout {
        Layout {
            agent_id: "docker-1".into(),
            shm_bytes: 1 << 30,
            run_as_user: 1000,
        }
    }

    #[test]
    fn quantities_become_engine_units() {
        assert_eq!(nano_cpus("2"), Ok(2_000_000_000));
        assert_eq!(nano_cpus("0.5"), Ok(500_000_000));
        assert_eq!(nano_cpus("1500m"), Ok(1_500_000_000));
        assert_eq!(bytes("512Mi"), Ok(512 << 20));
        assert_eq!(bytes("1.5Gi"), Ok(3 << 29));
        assert_eq!(bytes("1G"), Ok(1_000_000_000));
        assert_eq!(bytes("1073741824"), Ok(1 << 30));
        for bad in ["", "0", "-1", "m", "NaN", "inf"] {
            assert!(nano_cpus(bad).is_err(), "{bad}");
            assert!(bytes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_container_is_limited_labelled_and_reachable_from_loopback_only() {
        let home = Uuid::from_u128(9);
        let body = container(&layout(), &spec(true, Some(home))).unwrap();
        let host = body.host_config.unwrap();
        assert_eq!(host.nano_cpus, Some(1_500_000_000));
        assert_eq!(host.memory, Some(2 << 30));
        assert_eq!(host.cap_drop, Some(vec!["ALL".to_owned()]));
        assert_eq!(host.network_mode.as_deref(), Some("streamspace-docker-1"));
        let binding = &host.port_bindings.unwrap()["5900/tcp"].clone().unwrap()[0];
        assert_eq!(binding.host_ip.as_deref(), Some("127.0.0.1"));
        let mount = &host.mounts.unwrap()[0];
        assert_eq!(
            mount.source.as_deref(),
            Some(shared_home_volume(home).as_str())
        );
        assert_eq!(mount.target.as_deref(), Some(HOME_PATH));
        let labels = body.labels.unwrap();
        assert_eq!(labels[SESSION_LABEL], Uuid::from_u128(7).to_string());
        assert_eq!(labels[AGENT_LABEL], "docker-1");
        assert_eq!(labels[HOME_LABEL], home.to_string());
        let env = body.env.unwrap();
        assert!(
            env.contains(&"STREAMSPACE_USER=alice".to_owned()),
            "{env:?}"
        );
        assert!(
            env.contains(&"SCREEN_GEOMETRY=1024x768".to_owned()),
            "{env:?}"
        );
        assert_eq!(body.user.as_deref(), Some("1000:1000"));
    }

    #[test]
    fn a_session_without_a_persistent_home_mounts_no_volume() {
        let body = container(&layout(), &spec(false, Some(Uuid::from_u128(9)))).unwrap();
        let host = body.host_config.unwrap();
        assert!(host.mounts.is_none());
        assert!(!body.labels.unwrap().contains_key(HOME_LABEL));
        assert_eq!(
            home_volume(&spec(true, None)).as_deref(),
            Some(own_home_volume(Uuid::from_u128(7)).as_str())
        );
    }
}
