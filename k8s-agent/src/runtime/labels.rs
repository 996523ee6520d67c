//! The labels on everything an agent makes, on every container platform: how an agent finds
//! (only) its own objects again, after a restart too.

/// Label every object carries.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "streamspace");
/// Label naming the session.
pub const SESSION_LABEL: &str = "streamspace.io/session-id";
/// Label naming the agent that owns the objects.
pub const AGENT_LABEL: &str = "streamspace.io/agent-id";
/// Label naming the persistent home a volume holds, or a desktop mounts.
pub const HOME_LABEL: &str = "streamspace.io/home-id";
/// Label naming the session's owner.
pub const USER_LABEL: &str = "streamspace.io/user";
/// Label naming the session's template.
pub const TEMPLATE_LABEL: &str = "streamspace.io/template";
