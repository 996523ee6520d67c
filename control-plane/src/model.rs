//! Domain states shared by the store, the actors and the API, with their text forms
//! (as stored in the database and shown in JSON).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The text form, as stored and shown.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!(
                        "{other:?} is not one of {}",
                        [$($text),+].join(", ")
                    )),
                }
            }
        }
    };
}

/// CPU and memory as Kubernetes quantities (`"500m"`, `"2Gi"`): a template's defaults (either
/// may be absent) and a session's resources (both present).
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(
    try_from = "std::collections::BTreeMap<String, Option<String>>",
    deny_unknown_fields
)]
pub struct ResourceAmounts {
    /// CPU cores, e.g. `"1"` or `"500m"`; not zero.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^(?=[0-9.]*[1-9])[0-9]+([.][0-9]+)?m?$")]
    pub cpu: Option<String>,
    /// Memory, e.g. `"2Gi"`; not zero.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^(?=[0-9.]*[1-9])[0-9]+([.][0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$")]
    pub memory: Option<String>,
}

/// A platform name, from the protocol's list (`kubernetes`, `docker`, `local`): for the API
/// document, as the API takes and shows platforms as text.
pub struct Platform;

impl utoipa::PartialSchema for Platform {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .enum_values(Some(streamspace_protocol::PLATFORMS))
            .into()
    }
}

impl utoipa::ToSchema for Platform {}

/// Read from an object only (serde would take a struct from an array too), with no other keys.
impl TryFrom<std::collections::BTreeMap<String, Option<String>>> for ResourceAmounts {
    type Error = String;

    fn try_from(
        mut fields: std::collections::BTreeMap<String, Option<String>>,
    ) -> Result<Self, String> {
        let amounts = ResourceAmounts {
            cpu: fields.remove("cpu").flatten(),
            memory: fields.remove("memory").flatten(),
        };
        match fields.keys().next() {
            Some(other) => Err(format!(
                "unknown field `{other}`, expected `cpu` or `memory`"
            )),
            None => Ok(amounts),
        }
    }
}

text_enum! {
    /// What a user a desktop is shared with may do in it.
    ShareMode {
        /// Watch: their keyboard, pointer and clipboard never reach the desktop.
        View = "view",
        /// Watch and use it, as its owner does.
        Control = "control",
    }
}

text_enum! {
    /// Liveness of an agent as the control plane sees it.
    AgentStatus {
        /// Connected, heartbeats on time.
        Online = "online",
        /// Heartbeat late or connection lost; may come back.
        Warning = "warning",
        /// Nothing heard for `AGENT_TIMEOUT`.
        Offline = "offline",
        /// Refused (e.g. incompatible protocol); needs an admin.
        Error = "error",
    }
}

text_enum! {
    /// Lifecycle of a session.
    SessionState {
        /// Recorded, command not yet answered.
        Pending = "pending",
        /// The agent acknowledged and is creating it.
        Creating = "creating",
        /// Desktop up.
        Running = "running",
        /// Its agent is offline; it may still be running there.
        Degraded = "degraded",
        /// Its agent came back without it.
        Lost = "lost",
        /// Deletion requested.
        Terminating = "terminating",
        /// Gone.
        Terminated = "terminated",
        /// Could not be created or died; `state_reason` says why.
        Failed = "failed",
        /// Its workload is being stopped; its home stays.
        Hibernating = "hibernating",
        /// No workload, only its home, on the agent that keeps it; opening it wakes it.
        Hibernated = "hibernated",
        /// Its workload is being started again on its home's agent.
        Waking = "waking",
    }
}

text_enum! {
    /// What a template's idle timeout does to a desktop.
    IdleAction {
        /// End it.
        Stop = "stop",
        /// Hibernate it (a desktop without a persistent home stops instead).
        Hibernate = "hibernate",
    }
}

text_enum! {
    /// Lifecycle of a command sent to an agent.
    CommandStatus {
        /// Persisted, not yet handed to a connection.
        Pending = "pending",
        /// Written to the agent's WebSocket.
        Sent = "sent",
        /// The agent acknowledged it.
        Ack = "ack",
        /// The agent finished it.
        Completed = "completed",
        /// The agent could not carry it out.
        Failed = "failed",
        /// No answer within `COMMAND_TIMEOUT`.
        Timeout = "timeout",
    }
}

text_enum! {
    /// What a user may do.
    Role {
        /// Own sessions only.
        User = "user",
        /// Everything.
        Admin = "admin",
    }
}

impl SessionState {
    /// States that hold resources on an agent and count against its capacity.
    pub const ACTIVE: &'static [SessionState] = &[
        SessionState::Pending,
        SessionState::Creating,
        SessionState::Running,
        SessionState::Degraded,
        SessionState::Terminating,
        SessionState::Hibernating,
        SessionState::Waking,
    ];

    /// The text forms of [`Self::ACTIVE`], for `IN (…)` filters.
    pub fn active_names() -> Vec<&'static str> {
        Self::ACTIVE.iter().map(|s| s.as_str()).collect()
    }

    /// Whether a session in this state still has its home: an active one, or a hibernated
    /// one. A persistent home serves one such session at a time.
    pub fn holds_home(self) -> bool {
        Self::ACTIVE.contains(&self) || self == SessionState::Hibernated
    }

    /// The text forms of the states that [hold a home](Self::holds_home).
    pub fn holding_home_names() -> Vec<&'static str> {
        Self::ALL
            .iter()
            .filter(|s| s.holds_home())
            .map(|s| s.as_str())
            .collect()
    }

    /// No further transition will happen.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            SessionState::Terminated | SessionState::Failed | SessionState::Lost
        )
    }
}

impl CommandStatus {
    /// Still waiting for the agent: redelivered on reconnect, swept on timeout.
    pub const UNFINISHED: &'static [CommandStatus] = &[
        CommandStatus::Pending,
        CommandStatus::Sent,
        CommandStatus::Ack,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms_round_trip_and_match_serde() {
        for state in SessionState::ALL {
            assert_eq!(state.as_str().parse::<SessionState>(), Ok(*state));
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
        }
        for status in AgentStatus::ALL {
            assert_eq!(status.as_str().parse::<AgentStatus>(), Ok(*status));
        }
    }

    #[test]
    fn the_states_holding_a_home_are_the_active_ones_and_hibernated() {
        let names = SessionState::holding_home_names();
        assert_eq!(names.len(), SessionState::ACTIVE.len() + 1);
        assert!(names.contains(&"hibernated") && names.contains(&"waking"));
        assert!(!names.contains(&"terminated"));
    }

    #[test]
    fn unknown_text_lists_the_valid_values() {
        assert_eq!(
            "admn".parse::<Role>(),
            Err("\"admn\" is not one of user, admin".to_owned())
        );
    }
}
