//! The environment a desktop is started with, the same on every container platform.

use streamspace_protocol::SessionSpec;

/// Where the home volume is mounted in a desktop container.
pub const HOME_PATH: &str = "/home/streamspace";

/// The session's id and owner, the home, then the template's own variables (which may set
/// more, e.g. `SCREEN_GEOMETRY`).
pub fn session_env(spec: &SessionSpec) -> Vec<(String, String)> {
    let mut env = vec![
        (
            "STREAMSPACE_SESSION_ID".to_owned(),
            spec.session_id.to_string(),
        ),
        ("STREAMSPACE_USER".to_owned(), spec.user.clone()),
        ("HOME".to_owned(), HOME_PATH.to_owned()),
    ];
    env.extend(
        spec.template
            .env
            .iter()
            .map(|(name, value)| (name.clone(), value.clone())),
    );
    env
}
