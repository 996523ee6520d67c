//! Passwords, tokens, agent credentials and login throttling. No I/O: the HTTP layer and the
//! agent channel call these and look things up in the store.

pub mod agent_token;
pub mod login_guard;
pub mod password;
pub mod tokens;
