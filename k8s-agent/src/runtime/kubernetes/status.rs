//! Reading a Pod's status: is it Ready, still starting (and why), or unable to start.

use k8s_openapi::api::core::v1::Pod;

/// Container states that will not fix themselves: fail at once instead of waiting.
const FATAL_WAITING: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "CrashLoopBackOff",
];

/// Where a starting Pod stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Starting {
    /// Ready condition true.
    Ready,
    /// Not yet; says what it waits for.
    Waiting(String),
    /// Will not become ready by itself; says why.
    Failed(String),
}

/// Reads a Pod's status the way `kubectl describe` would summarise it.
pub fn starting_state(pod: &Pod) -> Starting {
    let Some(status) = &pod.status else {
        return Starting::Waiting("no status yet".into());
    };
    let phase = status.phase.as_deref().unwrap_or("Pending");
    if phase == "Failed" || phase == "Succeeded" {
        let why = status
            .message
            .clone()
            .or(status.reason.clone())
            .unwrap_or_default();
        return Starting::Failed(format!("Pod is {phase} {why}").trim().to_owned());
    }
    for container in status.container_statuses.iter().flatten() {
        if let Some(waiting) = container.state.as_ref().and_then(|s| s.waiting.as_ref()) {
            let reason = waiting.reason.clone().unwrap_or_default();
            if FATAL_WAITING.contains(&reason.as_str()) {
                let message = waiting.message.clone().unwrap_or_default();
                return Starting::Failed(
                    format!("{reason}: {message}")
                        .trim_end_matches(": ")
                        .to_owned(),
                );
            }
        }
    }
    let conditions = status.conditions.iter().flatten();
    let mut waiting = format!("phase {phase}");
    for condition in conditions {
        if condition.type_ == "Ready" && condition.status == "True" {
            return Starting::Ready;
        }
        if condition.type_ == "PodScheduled" && condition.status == "False" {
            let reason = condition.reason.clone().unwrap_or_default();
            let message = condition.message.clone().unwrap_or_default();
            waiting = format!("{reason}: {message}");
        }
    }
    Starting::Waiting(waiting)
}

/// The Pod's VNC port (the container port named `vnc`), 5900 if it names none.
pub fn vnc_port(pod: &Pod) -> u16 {
    pod.spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.ports.as_ref())
        .and_then(|ports| ports.iter().find(|p| p.name.as_deref() == Some("vnc")))
        .and_then(|p| u16::try_from(p.container_port).ok())
        .unwrap_or(5900)
}
