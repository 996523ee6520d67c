//! The `local` platform: each session is an Xvnc server on 127.0.0.1 plus a desktop program
//! on its display, with a home directory under the data directory: `DATA_DIR/homes/<home id>`
//! for a persistent home (shared by the sessions of one user and template), else the
//! session's own directory.
//!
//! Processes are started in their own process group, so they outlive an agent restart; each
//! session is recorded in `DATA_DIR/sessions/<id>/session.json`, and a restarted agent adopts
//! the sessions whose Xvnc still runs and reports the others as failed.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use streamspace_protocol::{AgentSessionState, SessionReport, SessionSpec, VncEndpoint};
use tokio::net::{TcpStream, UnixStream};
use tokio::process::Command;
use uuid::Uuid;

use self::accounts::{DesktopAccounts, command_as};
use self::held::{Held, Starting, lock};
use self::x_access::{authority_file, display_free, run_dir, vnc_socket, xauthority};
use super::session_locks::SessionLocks;
use super::{Runtime, RuntimeError, RuntimeFuture, VncStream};

pub mod accounts;
mod held;
mod x_access;

pub use self::accounts::DesktopUser;

/// How long Xvnc may take to accept connections.
const START_DEADLINE: Duration = Duration::from_secs(15);
/// How long processes get to exit on SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// Displays tried, from this number up.
const FIRST_DISPLAY: u32 = 20;
const LAST_DISPLAY: u32 = 999;

/// Settings of the local runtime.
#[derive(Debug, Clone)]
pub struct LocalSettings {
    /// Where session records and home directories live.
    pub data_dir: PathBuf,
    /// The Xvnc binary.
    pub xvnc: String,
    /// Screen size, e.g. `1280x800`.
    pub geometry: String,
    /// Most sessions at once.
    pub max_sessions: u32,
    /// Whose accounts desktops run as.
    pub accounts: DesktopAccounts,
}

/// What is kept on disk about a session.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    session_id: Uuid,
    user: String,
    display: u32,
    /// The VNC server's TCP port, for sessions started before VNC moved to a Unix socket.
    #[serde(default)]
    port: u16,
    /// The VNC server's Unix socket.
    #[serde(default)]
    socket: Option<PathBuf>,
    xvnc_pid: i32,
    desktop_pid: Option<i32>,
    program: String,
    /// The persistent home it mounts (records written before homes had ids lack it).
    #[serde(default)]
    home_id: Option<Uuid>,
}

/// The runtime.
pub struct LocalRuntime {
    settings: LocalSettings,
    /// Held for a moment at a time, never across a wait: a desktop that takes seconds to
    /// start holds up neither the other sessions nor the agent's reports.
    held: Mutex<Held>,
    /// One create or delete per session at a time.
    sessions: SessionLocks,
    /// One session starting on a home, stopping on it, or the home's deletion, at a time.
    homes: SessionLocks,
}

impl LocalRuntime {
    /// Opens the data directory and adopts the sessions recorded there.
    pub fn open(settings: LocalSettings) -> Result<Self, RuntimeError> {
        let sessions = settings.data_dir.join("sessions");
        let homes = settings.data_dir.join("homes");
        for dir in [&sessions, &homes] {
            std::fs::create_dir_all(dir).map_err(|e| {
                RuntimeError::Other(format!("DATA_DIR: cannot create {}: {e}", dir.display()))
            })?;
        }
        let longest_socket = settings
            .data_dir
            .join("sessions")
            .join(Uuid::max().to_string());
        let longest_socket = vnc_socket(&longest_socket).as_os_str().len();
        if longest_socket > x_access::MAX_SOCKET_PATH {
            return Err(RuntimeError::Other(format!(
                "DATA_DIR: {} is too long for the desktops' VNC sockets (their paths would have {longest_socket} bytes, at most {} fit); choose a shorter one",
                settings.data_dir.display(),
                x_access::MAX_SOCKET_PATH
            )));
        }
        if settings.accounts.switches_users() {
            // Their homes live under DATA_DIR: every directory above must let them pass.
            let data_dir = std::fs::canonicalize(&settings.data_dir)
                .map_err(|e| RuntimeError::Other(format!("DATA_DIR: {e}")))?;
            for parent in data_dir.ancestors().skip(1) {
                let mode = std::fs::metadata(parent)
                    .map(|m| m.permissions().mode())
                    .unwrap_or(0);
                if mode & 0o001 == 0 {
                    return Err(RuntimeError::Other(format!(
                        "DATA_DIR: {} is closed to others (mode {:o}), so desktops running as their own accounts cannot reach their homes under {}; choose a DATA_DIR below directories others may pass through",
                        parent.display(),
                        mode & 0o777,
                        settings.data_dir.display()
                    )));
                }
            }
            // The desktop accounts pass through (to their homes) but list nothing.
            for dir in [&settings.data_dir, &sessions, &homes] {
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711)).map_err(
                    |e| RuntimeError::Other(format!("DATA_DIR: {}: {e}", dir.display())),
                )?;
            }
        }
        let mut records = HashMap::new();
        for entry in std::fs::read_dir(&sessions).map_err(|e| RuntimeError::Other(e.to_string()))? {
            let path = entry
                .map_err(|e| RuntimeError::Other(e.to_string()))?
                .path()
                .join("session.json");
            match std::fs::read(&path).map(|b| serde_json::from_slice::<Record>(&b)) {
                Ok(Ok(record)) => {
                    let alive = xvnc_alive(&record);
                    log::info!(
                            session_id:% = record.session_id;
                    "local runtime: session {} on display :{} {}",
                            record.session_id,
                            record.display,
                            if alive {
                                "adopted"
                            } else {
                                "found dead; will report it failed"
                            }
                        );
                    records.insert(record.session_id, record);
                }
                Ok(Err(e)) => {
                    log::warn!("local runtime: ignoring unreadable {}: {e}", path.display())
                }
                Err(_) => {} // a directory without a record: a home kept after deletion
            }
        }
        Ok(LocalRuntime {
            settings,
            held: Mutex::new(Held {
                records,
                ..Held::default()
            }),
            sessions: SessionLocks::default(),
            homes: SessionLocks::default(),
        })
    }

    fn held(&self) -> MutexGuard<'_, Held> {
        lock(&self.held)
    }

    /// Counts a create against `max_sessions` and checks its home is free, both with the
    /// creates under way; the caller holds the session's lock and its home's.
    fn reserve(&self, id: Uuid, home_id: Option<Uuid>) -> Result<Starting<'_>, RuntimeError> {
        let mut held = self.held();
        let running = held.records.values().filter(|r| xvnc_alive(r)).count();
        if running + held.starting.len() >= self.settings.max_sessions as usize {
            return Err(RuntimeError::Start(format!(
                "this agent already runs its maximum of {} sessions",
                self.settings.max_sessions
            )));
        }
        if let Some(home) = home_id
            && let Some(other) = held.using_home(home)
        {
            return Err(RuntimeError::Start(format!(
                "home {home} is in use by session {other}"
            )));
        }
        held.starting.insert(id);
        Ok(Starting {
            held: &self.held,
            id,
        })
    }

    fn session_dir(&self, id: Uuid) -> PathBuf {
        self.settings.data_dir.join("sessions").join(id.to_string())
    }

    fn home_dir(&self, home_id: Uuid) -> PathBuf {
        self.settings
            .data_dir
            .join("homes")
            .join(home_id.to_string())
    }

    /// See [`super::Runtime::create`].
    pub async fn create(&self, spec: &SessionSpec) -> Result<SessionReport, RuntimeError> {
        let _serialized = self.sessions.lock(spec.session_id).await;
        if let Some(record) = self.held().records.get(&spec.session_id) {
            return Ok(report(record));
        }
        let program = spec.template.image.trim().to_owned();
        let executable = program.split_whitespace().next().unwrap_or_default();
        if executable.is_empty() || !on_path(executable) {
            return Err(RuntimeError::Start(format!(
                "desktop program {executable:?} is not installed on this host"
            )));
        }
        let dir = self.session_dir(spec.session_id);
        // Only an earlier, interrupted create of this very session leaves its directory.
        let retried = dir.exists();
        let home_id = spec.home_id.filter(|_| spec.persistent_home);
        let home = home_id.map_or_else(|| dir.join("home"), |id| self.home_dir(id));
        // A second session on the same home waits for the first to start, then finds it in use.
        let _home = match home_id {
            Some(id) => Some(self.homes.lock(id).await),
            None => None,
        };
        let starting = self.reserve(spec.session_id, home_id)?;
        let accounts = self.settings.accounts.clone();
        let owner = spec.user.clone();
        let account = tokio::task::spawn_blocking(move || accounts.for_user(&owner))
            .await
            .map_err(|e| RuntimeError::Start(e.to_string()))?
            .map_err(RuntimeError::Start)?;
        let run = run_dir(&dir);
        for made in [&run, &home] {
            tokio::fs::create_dir_all(made).await.map_err(|e| {
                RuntimeError::Start(format!("cannot create {}: {e}", made.display()))
            })?;
        }
        // The session's directory only lets its account pass; its run directory (VNC socket,
        // X cookie) and its home are that account's alone.
        let private = |path: &Path| {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
            match &account {
                Some(user) => std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid)),
                None => Ok(()),
            }
        };
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711))
            .and_then(|()| private(&run))
            .and_then(|()| private(&home))
            .map_err(|e| {
                RuntimeError::Start(format!(
                    "cannot give {} and {} to {}: {e}",
                    run.display(),
                    home.display(),
                    account
                        .as_ref()
                        .map_or("the agent's user", |a| a.name.as_str())
                ))
            })?;

        // An agent killed during an earlier create of this session may have left its
        // processes behind without a record: they hold the session's log files open.
        if retried {
            kill_holders(&dir).await;
        }
        let run_as = account.as_ref();
        let (display, xvnc_pid) = self.start_xvnc(&starting, &dir, &spec.user, run_as).await?;
        let desktop_pid = match start_desktop(&dir, &home, display, spec, &program, run_as) {
            Ok(pid) => pid,
            Err(e) => {
                stop(Some(xvnc_pid), None).await;
                return Err(e);
            }
        };
        let record = Record {
            session_id: spec.session_id,
            user: spec.user.clone(),
            display,
            port: 0,
            socket: Some(vnc_socket(&dir)),
            xvnc_pid,
            desktop_pid: Some(desktop_pid),
            program,
            home_id,
        };
        write_record(&dir, &record).await?;
        let report = report(&record);
        self.held().records.insert(spec.session_id, record);
        Ok(report)
    }

    /// Starts Xvnc on the first free display, as `run_as`; retries the next one if another
    /// server grabbed it meanwhile. Returns display and pid once it accepts connections on its
    /// Unix socket (it listens on no TCP port, and its display wants a fresh cookie).
    async fn start_xvnc(
        &self,
        starting: &Starting<'_>,
        dir: &Path,
        user: &str,
        run_as: Option<&DesktopUser>,
    ) -> Result<(u32, i32), RuntimeError> {
        let mut last_error = String::from("no free X display");
        let socket = vnc_socket(dir);
        let auth = xauthority(dir);
        for display in (FIRST_DISPLAY..=LAST_DISPLAY)
            .filter(|d| display_free(*d) && starting.claim(*d))
            .take(5)
        {
            let _ = std::fs::remove_file(&socket);
            let written = authority_file(display).and_then(|bytes| {
                std::fs::write(&auth, bytes)?;
                std::fs::set_permissions(&auth, std::fs::Permissions::from_mode(0o600))?;
                match run_as {
                    Some(u) => std::os::unix::fs::chown(&auth, Some(u.uid), Some(u.gid)),
                    None => Ok(()),
                }
            });
            written.map_err(|e| {
                RuntimeError::Start(format!("cannot write {}: {e}", auth.display()))
            })?;
            let mut xvnc = command_as(&self.settings.xvnc, run_as);
            xvnc.arg(format!(":{display}"))
                .args(["-rfbport", "-1", "-rfbunixmode", "0600", "-rfbunixpath"])
                .arg(&socket)
                .arg("-auth")
                .arg(&auth)
                .args([
                    "-nolisten",
                    "tcp",
                    "-SecurityTypes",
                    "None",
                    "-AlwaysShared",
                ])
                .args(["-geometry", &self.settings.geometry, "-depth", "24"])
                .args(["-desktop", &format!("{user}'s StreamSpace desktop")]);
            let mut child = spawn_detached(&mut xvnc, &dir.join("xvnc.log")).map_err(|e| {
                RuntimeError::Start(format!("cannot run {}: {e}", self.settings.xvnc))
            })?;
            let pid = child.id().map(|p| p as i32).unwrap_or_default();
            let deadline = tokio::time::Instant::now() + START_DEADLINE;
            loop {
                if UnixStream::connect(&socket).await.is_ok() {
                    // Reap it when it exits, so it never lingers as a zombie.
                    tokio::spawn(async move {
                        let _ = child.wait().await;
                    });
                    return Ok((display, pid));
                }
                if let Ok(Some(status)) = child.try_wait() {
                    let log = tokio::fs::read_to_string(dir.join("xvnc.log"))
                        .await
                        .unwrap_or_default();
                    last_error = format!("Xvnc on :{display} exited ({status}): {}", tail(&log));
                    break;
                }
                if tokio::time::Instant::now() > deadline {
                    let _ = child.kill().await;
                    return Err(RuntimeError::Start(format!(
                        "Xvnc on :{display} did not accept connections within {}s",
                        START_DEADLINE.as_secs()
                    )));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Err(RuntimeError::Start(last_error))
    }

    /// See [`super::Runtime::delete`].
    pub async fn delete(&self, id: Uuid, keep_home: bool) -> Result<(), RuntimeError> {
        let _serialized = self.sessions.lock(id).await;
        let record = self.held().records.get(&id).cloned();
        let mut home_elsewhere = false;
        if let Some(record) = record {
            // A session starting on the same home waits until this one is gone.
            let _home = match record.home_id {
                Some(home) => Some(self.homes.lock(home).await),
                None => None,
            };
            stop(Some(record.xvnc_pid), record.desktop_pid).await;
            self.held().records.remove(&id);
            home_elsewhere = record.home_id.is_some();
        }
        let dir = self.session_dir(id);
        if !dir.exists() {
            return Ok(());
        }
        // A shared home lives outside the session's directory: nothing in it is kept.
        let result = if keep_home && !home_elsewhere {
            remove_all_but(&dir, "home").await
        } else {
            tokio::fs::remove_dir_all(&dir).await
        };
        result.map_err(|e| RuntimeError::Other(format!("cannot remove {}: {e}", dir.display())))
    }

    /// See [`super::Runtime::delete_home`].
    pub async fn delete_home(&self, home_id: Uuid) -> Result<(), RuntimeError> {
        let _serialized = self.homes.lock(home_id).await;
        let user = self.held().using_home(home_id);
        if let Some(user) = user {
            return Err(RuntimeError::Other(format!(
                "home {home_id} is in use by session {user}"
            )));
        }
        let dir = self.home_dir(home_id);
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(RuntimeError::Other(format!(
                "cannot remove {}: {e}",
                dir.display()
            ))),
        }
    }

    /// See [`super::Runtime::list`].
    pub async fn list(&self) -> Result<Vec<SessionReport>, RuntimeError> {
        let mut reports: Vec<SessionReport> = self.held().records.values().map(report).collect();
        reports.sort_by_key(|r| r.session_id);
        Ok(reports)
    }

    /// See [`super::Runtime::open_vnc`].
    pub async fn open_vnc(&self, id: Uuid) -> Result<Box<dyn VncStream>, RuntimeError> {
        let (socket, port) = {
            let held = self.held();
            let record = held.records.get(&id).ok_or(RuntimeError::NotFound(id))?;
            if !xvnc_alive(record) {
                return Err(RuntimeError::Other(format!(
                    "the desktop of session {id} is not running"
                )));
            }
            (record.socket.clone(), record.port)
        };
        let unreachable = |e: std::io::Error| {
            RuntimeError::Other(format!("cannot reach the VNC server of session {id}: {e}"))
        };
        Ok(match socket {
            Some(socket) => Box::new(UnixStream::connect(socket).await.map_err(unreachable)?),
            None => {
                let stream = TcpStream::connect(("127.0.0.1", port))
                    .await
                    .map_err(unreachable)?;
                let _ = stream.set_nodelay(true);
                Box::new(stream)
            }
        })
    }
}

fn report(record: &Record) -> SessionReport {
    if xvnc_alive(record) {
        SessionReport {
            session_id: record.session_id,
            state: AgentSessionState::Running,
            vnc: Some(match &record.socket {
                Some(socket) => VncEndpoint {
                    host: format!("unix:{}", socket.display()),
                    port: 0,
                },
                None => VncEndpoint {
                    host: "127.0.0.1".into(),
                    port: record.port,
                },
            }),
            message: None,
        }
    } else {
        SessionReport {
            session_id: record.session_id,
            state: AgentSessionState::Failed,
            vnc: None,
            message: Some(format!(
                "Xvnc (pid {}) on display :{} is no longer running",
                record.xvnc_pid, record.display
            )),
        }
    }
}

fn start_desktop(
    dir: &Path,
    home: &Path,
    display: u32,
    spec: &SessionSpec,
    program: &str,
    run_as: Option<&DesktopUser>,
) -> Result<i32, RuntimeError> {
    let mut desktop = command_as("sh", run_as);
    desktop
        .args(["-c", &format!("exec {program}")])
        .env_clear()
        .env(
            "PATH",
            std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()),
        )
        .env("DISPLAY", format!(":{display}"))
        .env("XAUTHORITY", xauthority(dir))
        .env("HOME", home)
        .env("USER", &spec.user)
        .env("STREAMSPACE_SESSION_ID", spec.session_id.to_string())
        .envs(&spec.template.env)
        .current_dir(home);
    let mut child = spawn_detached(&mut desktop, &dir.join("desktop.log"))
        .map_err(|e| RuntimeError::Start(format!("cannot start {program:?}: {e}")))?;
    let pid = child.id().map(|p| p as i32).unwrap_or_default();
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
    Ok(pid)
}

/// Starts a session process in its own process group (so it outlives the agent's restart
/// and its signals), output appended to `log`.
/// Kills every process holding a file under `dir` open, and waits for them to go.
async fn kill_holders(dir: &Path) {
    let Ok(dir) = std::fs::canonicalize(dir) else {
        return;
    };
    let holders: Vec<i32> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_dir(format!("/proc/{pid}/fd"))
                .into_iter()
                .flatten()
                .flatten()
                .any(|fd| {
                    std::fs::read_link(fd.path()).is_ok_and(|target| target.starts_with(&dir))
                })
        })
        .collect();
    for pid in &holders {
        log::warn!("killing process {pid}, left behind by an interrupted start");
        let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
    }
    for pid in holders {
        for _ in 0..100 {
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn spawn_detached(command: &mut Command, log: &Path) -> std::io::Result<tokio::process::Child> {
    let log = std::fs::File::create(log)?;
    command
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
}

/// Whether the recorded Xvnc still runs: the pid exists and is still that Xvnc (pids are
/// reused, so the command line must match too).
fn xvnc_alive(record: &Record) -> bool {
    match std::fs::read(format!("/proc/{}/cmdline", record.xvnc_pid)) {
        Ok(cmdline) => {
            let cmdline = String::from_utf8_lossy(&cmdline);
            cmdline.contains("Xvnc")
                && cmdline
                    .split('\0')
                    .any(|arg| arg == format!(":{}", record.display))
        }
        Err(_) => false,
    }
}

async fn stop(xvnc: Option<i32>, desktop: Option<i32>) {
    let pids: Vec<Pid> = [desktop, xvnc]
        .into_iter()
        .flatten()
        .filter(|p| *p > 0)
        .map(Pid::from_raw)
        .collect();
    for pid in &pids {
        // The whole process group: a desktop's children go too.
        let _ = kill(Pid::from_raw(-pid.as_raw()), Signal::SIGTERM);
        let _ = kill(*pid, Signal::SIGTERM);
    }
    let deadline = tokio::time::Instant::now() + STOP_GRACE;
    while pids.iter().any(|p| kill(*p, None).is_ok()) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for pid in &pids {
        let _ = kill(Pid::from_raw(-pid.as_raw()), Signal::SIGKILL);
        let _ = kill(*pid, Signal::SIGKILL);
    }
}

fn on_path(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).is_file();
    }
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(3)..].join(" | ")
}

async fn write_record(dir: &Path, record: &Record) -> Result<(), RuntimeError> {
    let temp = dir.join("session.json.tmp");
    let bytes =
        serde_json::to_vec_pretty(record).map_err(|e| RuntimeError::Other(e.to_string()))?;
    let written = match tokio::fs::write(&temp, bytes).await {
        Ok(()) => tokio::fs::rename(&temp, dir.join("session.json")).await,
        Err(e) => Err(e),
    };
    written.map_err(|e| RuntimeError::Start(format!("cannot record the session: {e}")))
}

async fn remove_all_but(dir: &Path, keep: &str) -> std::io::Result<()> {
    let mut entries = tokio::fs::read_dir(dir).await?;
    while let Some(entry) = entries.next_entry().await? {
        if entry.file_name() == keep {
            continue;
        }
        let path = entry.path();
        if entry.file_type().await?.is_dir() {
            tokio::fs::remove_dir_all(path).await?;
        } else {
            tokio::fs::remove_file(path).await?;
        }
    }
    Ok(())
}

impl Runtime for LocalRuntime {
    fn create<'a>(&'a self, spec: &'a SessionSpec) -> RuntimeFuture<'a, SessionReport> {
        Box::pin(LocalRuntime::create(self, spec))
    }

    fn delete(&self, id: Uuid, keep_home: bool) -> RuntimeFuture<'_, ()> {
        Box::pin(LocalRuntime::delete(self, id, keep_home))
    }

    fn delete_home(&self, home_id: Uuid) -> RuntimeFuture<'_, ()> {
        Box::pin(LocalRuntime::delete_home(self, home_id))
    }

    fn list(&self) -> RuntimeFuture<'_, Vec<SessionReport>> {
        Box::pin(LocalRuntime::list(self))
    }

    fn inventory(&self) -> RuntimeFuture<'_, Vec<SessionReport>> {
        Box::pin(self.sessions.inventory(self.list()))
    }

    fn open_vnc(&self, id: Uuid) -> RuntimeFuture<'_, Box<dyn VncStream>> {
        Box::pin(LocalRuntime::open_vnc(self, id))
    }

    fn max_sessions(&self) -> u32 {
        self.settings.max_sessions
    }
}
