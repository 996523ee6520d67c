//! Passwords, tokens, agent credentials, login throttling and the cache of recent callers. No
//! I/O: the HTTP layer and the agent channel call these and look things up in the store.

pub mod agent_token;
pub mod login_guard;
pub mod password;
pub mod tokens;
pub mod user_cache;
