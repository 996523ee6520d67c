//! The Kubernetes objects of one session, as plain builders: a Pod running the template's
//! image with its VNC port, and a PersistentVolumeClaim for the home directory. No Service:
//! the agent reaches VNC through the Pod's port-forward, and nothing else should reach it.
//! `streamspace-k8s-agent render` prints them for review and `kubectl apply --dry-run`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource, Pod, PodSecurityContext, PodSpec,
    Probe, ResourceRequirements, SeccompProfile, SecurityContext, TCPSocketAction, Volume,
    VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use streamspace_protocol::SessionSpec;

pub use crate::runtime::labels::{AGENT_LABEL, HOME_LABEL, MANAGED_BY, SESSION_LABEL};
use crate::runtime::labels::{TEMPLATE_LABEL, USER_LABEL};
use crate::runtime::session_env::session_env;
use uuid::Uuid;

pub use crate::runtime::session_env::HOME_PATH;
/// The container's name.
pub const CONTAINER: &str = "desktop";

/// How sessions are laid out in the cluster.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Namespace of every object.
    pub namespace: String,
    /// This agent's id (a label on everything).
    pub agent_id: String,
    /// Size of each home volume, e.g. `10Gi`.
    pub home_size: String,
    /// Storage class of home volumes; the cluster default when `None`.
    pub storage_class: Option<String>,
    /// Size of `/dev/shm` (browsers and desktops need more than the 64 MiB default).
    pub shm_size: String,
    /// The user id the desktop runs as.
    pub run_as_user: i64,
}

/// Object name of a session's Pod.
pub fn session_name(id: Uuid) -> String {
    format!("ss-{id}")
}

/// Object name of the home volume claim of a session that has a home of its own (sent by
/// control planes before protocol 1.2, which did not key homes by user and template).
pub fn home_name(id: Uuid) -> String {
    format!("ss-{id}-home")
}

/// Object name of a persistent home's claim, shared by the sessions of one user and template.
pub fn shared_home_name(home_id: Uuid) -> String {
    format!("ss-home-{home_id}")
}

/// The claim a session's home lives on (when it is persistent).
pub fn claim_name(spec: &SessionSpec) -> String {
    spec.home_id
        .map_or_else(|| home_name(spec.session_id), shared_home_name)
}

/// Labels of every object of a session.
pub fn labels(layout: &Layout, spec: &SessionSpec) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned()),
        (
            "app.kubernetes.io/name".to_owned(),
            "streamspace-session".to_owned(),
        ),
        (SESSION_LABEL.to_owned(), spec.session_id.to_string()),
        (AGENT_LABEL.to_owned(), layout.agent_id.clone()),
        (USER_LABEL.to_owned(), spec.user.clone()),
        (TEMPLATE_LABEL.to_owned(), spec.template.name.clone()),
    ])
}

/// Label selector for every session object of this agent.
pub fn agent_selector(layout: &Layout) -> String {
    format!(
        "{}={},{AGENT_LABEL}={}",
        MANAGED_BY.0, MANAGED_BY.1, layout.agent_id
    )
}

/// Label selector for the Pods that mount a home.
pub fn home_selector(layout: &Layout, home_id: Uuid) -> String {
    format!("{},{HOME_LABEL}={home_id}", agent_selector(layout))
}

fn meta(layout: &Layout, spec: &SessionSpec, name: String) -> ObjectMeta {
    let mut labels = labels(layout, spec);
    if let Some(home_id) = spec.home_id {
        labels.insert(HOME_LABEL.to_owned(), home_id.to_string());
    }
    ObjectMeta {
        name: Some(name),
        namespace: Some(layout.namespace.clone()),
        labels: Some(labels),
        ..ObjectMeta::default()
    }
}

/// The desktop Pod.
pub fn pod(layout: &Layout, spec: &SessionSpec) -> Pod {
    let quantities = BTreeMap::from([
        ("cpu".to_owned(), Quantity(spec.resources.cpu.clone())),
        ("memory".to_owned(), Quantity(spec.resources.memory.clone())),
    ]);
    let env: Vec<EnvVar> = session_env(spec)
        .into_iter()
        .map(|(name, value)| EnvVar {
            name,
            value: Some(value),
            ..EnvVar::default()
        })
        .collect();
    let home = if spec.persistent_home {
        Volume {
            name: "home".into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim_name(spec),
                read_only: None,
            }),
            ..Volume::default()
        }
    } else {
        Volume {
            name: "home".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        }
    };
    let shm = Volume {
        name: "shm".into(),
        empty_dir: Some(EmptyDirVolumeSource {
            medium: Some("Memory".into()),
            size_limit: Some(Quantity(layout.shm_size.clone())),
        }),
        ..Volume::default()
    };
    let vnc_port = i32::from(spec.template.vnc_port);
    Pod {
        metadata: meta(layout, spec, session_name(spec.session_id)),
        spec: Some(PodSpec {
            automount_service_account_token: Some(false),
            enable_service_links: Some(false),
            restart_policy: Some("Always".into()),
            termination_grace_period_seconds: Some(10),
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(layout.run_as_user),
                run_as_group: Some(layout.run_as_user),
                fs_group: Some(layout.run_as_user),
                seccomp_profile: Some(SeccompProfile {
                    type_: "RuntimeDefault".into(),
                    localhost_profile: None,
                }),
                ..PodSecurityContext::default()
            }),
            containers: vec![Container {
                name: CONTAINER.into(),
                image: Some(spec.template.image.clone()),
                image_pull_policy: Some("IfNotPresent".into()),
                env: Some(env),
                ports: Some(vec![ContainerPort {
                    name: Some("vnc".into()),
                    container_port: vnc_port,
                    protocol: Some("TCP".into()),
                    ..ContainerPort::default()
                }]),
                resources: Some(ResourceRequirements {
                    requests: Some(quantities.clone()),
                    limits: Some(quantities),
                    ..ResourceRequirements::default()
                }),
                readiness_probe: Some(Probe {
                    tcp_socket: Some(TCPSocketAction {
                        port: IntOrString::String("vnc".into()),
                        host: None,
                    }),
                    period_seconds: Some(2),
                    ..Probe::default()
                }),
                security_context: Some(SecurityContext {
                    allow_privilege_escalation: Some(false),
                    capabilities: Some(Capabilities {
                        drop: Some(vec!["ALL".into()]),
                        add: None,
                    }),
                    ..SecurityContext::default()
                }),
                volume_mounts: Some(vec![
                    VolumeMount {
                        name: "home".into(),
                        mount_path: HOME_PATH.into(),
                        ..VolumeMount::default()
                    },
                    VolumeMount {
                        name: "shm".into(),
                        mount_path: "/dev/shm".into(),
                        ..VolumeMount::default()
                    },
                ]),
                ..Container::default()
            }],
            volumes: Some(vec![home, shm]),
            ..PodSpec::default()
        }),
        status: None,
    }
}

/// The home directory's claim (only for sessions with a persistent home). A shared home's
/// claim outlives its sessions, so it is not labelled with one.
pub fn home_claim(layout: &Layout, spec: &SessionSpec) -> PersistentVolumeClaim {
    let mut metadata = meta(layout, spec, claim_name(spec));
    if spec.home_id.is_some()
        && let Some(labels) = metadata.labels.as_mut()
    {
        labels.remove(SESSION_LABEL);
        labels.insert("app.kubernetes.io/name".into(), "streamspace-home".into());
    }
    PersistentVolumeClaim {
        metadata,
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: layout.storage_class.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_owned(),
                    Quantity(layout.home_size.clone()),
                )])),
                limits: None,
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use streamspace_protocol::{Resources, TemplateSpec};

    use super::*;

    fn layout() -> Layout {
        Layout {
            namespace: "streamspace".into(),
            agent_id: "k8s-eu-1".into(),
            home_size: "5Gi".into(),
            storage_class: Some("fast".into()),
            shm_size: "1Gi".into(),
            run_as_user: 1000,
        }
    }

    fn spec() -> SessionSpec {
        SessionSpec {
            session_id: Uuid::from_u128(0xabc),
            user: "alice".into(),
            template: TemplateSpec {
                name: "xfce".into(),
                image: "example/xfce:1".into(),
                vnc_port: 5901,
                env: BTreeMap::from([("TZ".into(), "UTC".into())]),
            },
            resources: Resources {
                cpu: "2".into(),
                memory: "4Gi".into(),
            },
            persistent_home: true,
            home_id: None,
        }
    }

    #[test]
    fn a_shared_home_is_a_claim_named_after_it_without_a_session_label() {
        let mut spec = spec();
        let home = Uuid::from_u128(0x40e);
        spec.home_id = Some(home);
        let claim = home_claim(&layout(), &spec);
        assert_eq!(
            claim.metadata.name.as_deref(),
            Some(shared_home_name(home).as_str())
        );
        let labels = claim.metadata.labels.unwrap();
        assert_eq!(labels[HOME_LABEL], home.to_string());
        assert!(!labels.contains_key(SESSION_LABEL));
        let pod = pod(&layout(), &spec);
        assert_eq!(pod.metadata.labels.unwrap()[HOME_LABEL], home.to_string());
        let volumes = pod.spec.unwrap().volumes.unwrap();
        let mounted = volumes[0].persistent_volume_claim.as_ref().unwrap();
        assert_eq!(mounted.claim_name, shared_home_name(home));
        assert!(shared_home_name(Uuid::max()).len() <= 63);
    }

    #[test]
    fn the_pod_carries_the_labels_port_resources_home_and_shm() {
        let pod = pod(&layout(), &spec());
        let labels = pod.metadata.labels.as_ref().unwrap();
        assert_eq!(labels["app.kubernetes.io/managed-by"], "streamspace");
        assert_eq!(
            labels["streamspace.io/session-id"],
            Uuid::from_u128(0xabc).to_string()
        );
        assert_eq!(labels["streamspace.io/agent-id"], "k8s-eu-1");
        let container = &pod.spec.as_ref().unwrap().containers[0];
        assert_eq!(container.ports.as_ref().unwrap()[0].container_port, 5901);
        assert_eq!(
            container
                .resources
                .as_ref()
                .unwrap()
                .limits
                .as_ref()
                .unwrap()["memory"]
                .0,
            "4Gi"
        );
        let env: Vec<&str> = container
            .env
            .as_ref()
            .unwrap()
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(
            env,
            ["STREAMSPACE_SESSION_ID", "STREAMSPACE_USER", "HOME", "TZ"]
        );
        let volumes = pod.spec.as_ref().unwrap().volumes.as_ref().unwrap();
        assert_eq!(
            volumes[0]
                .persistent_volume_claim
                .as_ref()
                .unwrap()
                .claim_name,
            home_name(Uuid::from_u128(0xabc))
        );
        assert_eq!(
            volumes[1].empty_dir.as_ref().unwrap().medium.as_deref(),
            Some("Memory")
        );
    }

    #[test]
    fn without_a_persistent_home_the_home_is_an_empty_dir() {
        let mut spec = spec();
        spec.persistent_home = false;
        let pod = pod(&layout(), &spec);
        assert!(pod.spec.unwrap().volumes.unwrap()[0].empty_dir.is_some());
    }

    #[test]
    fn names_are_dns_labels() {
        let name = session_name(Uuid::max());
        assert!(name.len() <= 63 && home_name(Uuid::max()).len() <= 63);
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        );
    }
}
