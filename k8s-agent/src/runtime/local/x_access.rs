//! Who may reach a local desktop: its VNC server listens on a Unix socket only (mode 0600,
//! owned by the desktop's account), never on TCP where any process of the host could connect,
//! and its X display admits only holders of a fresh MIT-MAGIC-COOKIE-1.

use std::io::Read;
use std::path::{Path, PathBuf};

/// Where a session's private files live (the socket, the cookie), under its directory.
pub fn run_dir(session_dir: &Path) -> PathBuf {
    session_dir.join("run")
}

/// The VNC server's socket.
pub fn vnc_socket(session_dir: &Path) -> PathBuf {
    run_dir(session_dir).join("vnc.sock")
}

/// The X authority file (Xvnc's `-auth`, the desktop's `XAUTHORITY`).
pub fn xauthority(session_dir: &Path) -> PathBuf {
    run_dir(session_dir).join("Xauthority")
}

/// Longest socket path the kernel takes (`sun_path` is 108 bytes with its terminator).
pub const MAX_SOCKET_PATH: usize = 107;

/// An X authority file granting display `:display` to whoever holds a new random cookie
/// (family Wild: any host name, since the display is local only).
pub fn authority_file(display: u32) -> std::io::Result<Vec<u8>> {
    let mut cookie = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut cookie)?;
    let mut file = Vec::new();
    file.extend_from_slice(&0xffffu16.to_be_bytes());
    for field in [
        &b""[..],
        display.to_string().as_bytes(),
        b"MIT-MAGIC-COOKIE-1",
        &cookie,
    ] {
        file.extend_from_slice(&(field.len() as u16).to_be_bytes());
        file.extend_from_slice(field);
    }
    Ok(file)
}

/// Whether X display `:display` is free on this host. What an X server killed outright left
/// behind (its lock naming a dead process, its socket, its compiled keymap) is removed first: the next server may
/// run as another account, which the sticky `/tmp` would not let remove them, and without this
/// every crash would use up a display for good.
pub fn display_free(display: u32) -> bool {
    let lock = PathBuf::from(format!("/tmp/.X{display}-lock"));
    let socket = PathBuf::from(format!("/tmp/.X11-unix/X{display}"));
    // The keyboard map the last server of this display compiled: a server of another
    // account can neither overwrite nor remove it, and then cannot start its keyboard.
    let keymap = PathBuf::from(format!("/tmp/server-{display}.xkm"));
    let free = match std::fs::read_to_string(&lock) {
        Ok(text) => {
            let holder = text.trim().parse::<i32>().ok().filter(|pid| *pid > 0);
            let alive = match holder {
                Some(pid) => Path::new(&format!("/proc/{pid}")).exists(),
                // Being written by a server starting right now, unless it is old.
                None => std::fs::metadata(&lock)
                    .and_then(|m| m.modified())
                    .is_ok_and(|at| at.elapsed().unwrap_or_default() < STALE_AFTER),
            };
            !alive && remove(&lock) && remove(&socket)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => remove(&socket),
        Err(_) => false,
    };
    free && remove(&keymap)
}

/// A lock file left empty this long is not being written any more.
const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(10);

/// Removes `path`; true when it is gone.
fn remove(path: &Path) -> bool {
    match std::fs::remove_file(path) {
        Ok(()) => true,
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_display_whose_server_died_is_cleared_and_one_whose_server_lives_is_not() {
        let display = 990;
        let lock = format!("/tmp/.X{display}-lock");
        let mut dead = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = dead.id();
        dead.wait().unwrap();
        std::fs::write(&lock, format!("{dead_pid:>10}\n")).unwrap();
        let keymap = format!("/tmp/server-{display}.xkm");
        std::fs::write(&keymap, "left by a server of another account").unwrap();
        assert!(display_free(display), "a dead server's lock is cleared");
        assert!(!Path::new(&lock).exists());
        assert!(!Path::new(&keymap).exists(), "and its keymap");
        std::fs::write(&lock, format!("{:>10}\n", std::process::id())).unwrap();
        assert!(!display_free(display), "a live server keeps its display");
        std::fs::write(&lock, "").unwrap();
        assert!(!display_free(display), "a lock being written is respected");
        std::fs::remove_file(&lock).unwrap();
    }

    #[test]
    fn the_authority_file_names_the_display_and_a_16_byte_cookie() {
        let a = authority_file(42).unwrap();
        let b = authority_file(42).unwrap();
        assert_eq!(&a[..6], [0xff, 0xff, 0, 0, 0, 2]);
        assert_eq!(&a[6..8], b"42");
        assert_eq!(&a[8..28], b"\0\x12MIT-MAGIC-COOKIE-1");
        assert_eq!(&a[28..30], [0, 16]);
        assert_eq!(a.len(), 46);
        assert_ne!(a[30..], b[30..], "a new cookie each time");
    }
}
