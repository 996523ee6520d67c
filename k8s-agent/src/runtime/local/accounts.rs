//! Whose host account a local desktop runs as. Never root: a desktop running as the agent's
//! root could read its credential and every other desktop. By default each StreamSpace user
//! gets an account of their own, so one user's desktop can read neither another's files, nor
//! their X display, nor their VNC socket (all owned by that account, mode 0600/0700).

use std::fs::File;

use nix::fcntl::{Flock, FlockArg};
use tokio::process::Command;

/// An account to run desktops as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesktopUser {
    /// Its name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
}

/// How desktops are assigned accounts (`DESKTOP_ACCOUNTS` with `DESKTOP_USER`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DesktopAccounts {
    /// As the agent's own user: the agent is not root, so it cannot switch users.
    Agent,
    /// Every desktop as this one account (`DESKTOP_ACCOUNTS=shared`).
    Shared(DesktopUser),
    /// Each StreamSpace user's desktops as their own account `PREFIX-<hash of the name>`,
    /// created on first use (`DESKTOP_ACCOUNTS=per-user`, the default).
    PerUser {
        /// `DESKTOP_USER`.
        prefix: String,
    },
}

/// Longest `DESKTOP_USER` in per-user mode: Linux names have at most 32 characters, and the
/// suffix takes 11.
pub const MAX_PREFIX: usize = 21;

impl DesktopAccounts {
    /// The account `user`'s desktops run as (`None`: as the agent's own user). Creates it when
    /// missing, which blocks: call it off the async threads.
    pub fn for_user(&self, user: &str) -> Result<Option<DesktopUser>, String> {
        match self {
            DesktopAccounts::Agent => Ok(None),
            DesktopAccounts::Shared(account) => Ok(Some(account.clone())),
            DesktopAccounts::PerUser { prefix } => {
                let name = format!("{prefix}-{}", name_hash(user));
                DesktopUser::ensure(&name, &format!("StreamSpace desktops of {user}")).map(Some)
            }
        }
    }

    /// Whether desktops run as someone other than the agent.
    pub fn switches_users(&self) -> bool {
        !matches!(self, DesktopAccounts::Agent)
    }
}

/// Ten hex digits of FNV-1a over the name: stable, valid in an account name whatever the
/// StreamSpace user name's case or punctuation, and with 40 bits, collision-free in practice.
fn name_hash(user: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in user.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{:010x}", hash & 0xff_ffff_ffff)
}

impl DesktopUser {
    /// Looks `name` up, creating a system account without a login shell when it is missing
    /// (that needs root, which is when desktops must not run as the agent's user).
    pub fn ensure(name: &str, comment: &str) -> Result<DesktopUser, String> {
        if let Some(user) = lookup(name) {
            return Ok(user);
        }
        let _one_at_a_time = accounts_lock()?;
        // Another agent (or another desktop of this one) may have created it meanwhile.
        if let Some(user) = lookup(name) {
            return Ok(user);
        }
        let status = std::process::Command::new("useradd")
            .args(["--system", "--user-group", "--no-create-home"])
            .args(["--comment", comment, "--shell", "/usr/sbin/nologin", name])
            .status()
            .map_err(|e| format!("DESKTOP_USER: cannot run useradd: {e}"))?;
        if !status.success() {
            return Err(format!("DESKTOP_USER: useradd {name} failed ({status})"));
        }
        lookup(name).ok_or_else(|| format!("DESKTOP_USER: no account {name:?}"))
    }
}

/// Held while an account is created. Two `useradd` at once on one host lost one of their
/// writes (seen in a test run: two agents created the same account, the first with uid 999,
/// and the second's write replaced it with uid 995 while the first's desktop started as 999),
/// so the agents of a host create accounts one at a time.
fn accounts_lock() -> Result<Flock<File>, String> {
    let path = std::env::temp_dir().join("streamspace-accounts.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("DESKTOP_USER: cannot open {}: {e}", path.display()))?;
    Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, e)| format!("DESKTOP_USER: cannot lock {}: {e}", path.display()))
}

/// The account `name` from the system's user database (`getent passwd`).
fn lookup(name: &str) -> Option<DesktopUser> {
    let out = std::process::Command::new("getent")
        .args(["passwd", name])
        .output()
        .ok()?;
    let line = String::from_utf8(out.stdout).ok()?;
    let fields: Vec<&str> = line.trim().split(':').collect();
    Some(DesktopUser {
        name: name.to_owned(),
        uid: fields.get(2)?.parse().ok()?,
        gid: fields.get(3)?.parse().ok()?,
    })
}

/// `program` run as `user` (through util-linux's `setpriv`: its groups, no capabilities, no
/// new privileges), or as ourselves.
pub fn command_as(program: &str, user: Option<&DesktopUser>) -> Command {
    match user {
        None => Command::new(program),
        Some(user) => {
            let mut command = Command::new("setpriv");
            command
                .arg(format!("--reuid={}", user.uid))
                .arg(format!("--regid={}", user.gid))
                .args(["--init-groups", "--inh-caps=-all", "--no-new-privs", "--"])
                .arg(program);
            command
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_user_names_are_stable_distinct_and_fit_a_linux_account() {
        assert_eq!(name_hash("alice"), name_hash("alice"));
        assert_ne!(name_hash("alice"), name_hash("Alice"));
        let name = format!("{}-{}", "a".repeat(MAX_PREFIX), name_hash("x"));
        assert_eq!(name.len(), 32);
        assert!(
            name_hash("bob.smith_2")
                .bytes()
                .all(|b| b.is_ascii_hexdigit())
        );
    }
}
