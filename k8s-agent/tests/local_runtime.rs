//! The local runtime on its own, with real Xvnc: create, adopt after a restart, report the
//! dead, delete everything.

use std::path::Path;
use std::time::Duration;

use streamspace_k8s_agent::runtime::local::accounts::DesktopAccounts;
use streamspace_k8s_agent::runtime::local::{DesktopUser, LocalRuntime, LocalSettings};
use streamspace_protocol::{AgentSessionState, Resources, SessionSpec, TemplateSpec};
use uuid::Uuid;

fn open(dir: &Path) -> LocalRuntime {
    LocalRuntime::open(LocalSettings {
        data_dir: dir.to_owned(),
        xvnc: "Xvnc".into(),
        geometry: "640x480".into(),
        max_sessions: 2,
        accounts: DesktopAccounts::Agent,
    })
    .unwrap()
}

fn spec(program: &str) -> SessionSpec {
    SessionSpec {
        session_id: Uuid::new_v4(),
        user: "alice".into(),
        template: TemplateSpec {
            name: "xterm".into(),
            image: program.into(),
            vnc_port: 5900,
            env: Default::default(),
        },
        resources: Resources {
            cpu: "1".into(),
            memory: "1Gi".into(),
        },
        persistent_home: true,
        home_id: None,
    }
}

fn pid_of(dir: &Path, id: Uuid, key: &str) -> i32 {
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            dir.join("sessions")
                .join(id.to_string())
                .join("session.json"),
        )
        .unwrap(),
    )
    .unwrap();
    record[key].as_i64().unwrap() as i32
}

fn alive(pid: i32) -> bool {
    // A zombie (exited, not yet reaped) counts as gone.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| !stat.split(") ").nth(1).unwrap_or("").starts_with('Z'))
        .unwrap_or(false)
}

async fn gone(pid: i32) -> bool {
    for _ in 0..100 {
        if !alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[actix_web::test]
async fn create_is_idempotent_and_delete_kills_the_processes_and_keeps_the_home_if_asked() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = open(dir.path());
    let spec = spec("xterm");
    let report = runtime.create(&spec).await.unwrap();
    assert_eq!(report.state, AgentSessionState::Running);
    let port = report.vnc.as_ref().unwrap().port;
    assert_eq!(
        runtime.create(&spec).await.unwrap(),
        report,
        "a repeated create changes nothing"
    );
    assert_eq!(runtime.list().await.unwrap().len(), 1);

    let (xvnc, desktop) = (
        pid_of(dir.path(), spec.session_id, "xvnc_pid"),
        pid_of(dir.path(), spec.session_id, "desktop_pid"),
    );
    assert!(alive(xvnc) && alive(desktop));
    let mut stream = runtime.open_vnc(spec.session_id).await.unwrap();
    let mut greeting = [0u8; 12];
    tokio::io::AsyncReadExt::read_exact(&mut stream, &mut greeting)
        .await
        .unwrap();
    assert_eq!(&greeting, b"RFB 003.008\n");
    drop(stream);

    runtime.delete(spec.session_id, true).await.unwrap();
    assert!(gone(xvnc).await && gone(desktop).await, "processes killed");
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
    );
    let session_dir = dir
        .path()
        .join("sessions")
        .join(spec.session_id.to_string());
    assert!(session_dir.join("home").is_dir(), "home kept");
    assert!(!session_dir.join("session.json").exists());
    assert!(runtime.list().await.unwrap().is_empty());
    runtime.delete(spec.session_id, false).await.unwrap();
    assert!(!session_dir.exists(), "home removed on a full delete");
}

#[actix_web::test]
async fn a_restarted_agent_adopts_live_sessions_and_reports_dead_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (live, dead) = (spec("xterm"), spec("xterm"));
    {
        let runtime = open(dir.path());
        runtime.create(&live).await.unwrap();
        runtime.create(&dead).await.unwrap();
    } // the agent goes away; its sessions do not
    let dead_pid = pid_of(dir.path(), dead.session_id, "xvnc_pid");
    std::process::Command::new("kill")
        .arg("-9")
        .arg(dead_pid.to_string())
        .status()
        .unwrap();
    assert!(gone(dead_pid).await);

    let runtime = open(dir.path());
    let mut reports = runtime.list().await.unwrap();
    reports.sort_by_key(|r| r.session_id != live.session_id);
    assert_eq!(reports[0].state, AgentSessionState::Running);
    assert_eq!(reports[1].session_id, dead.session_id);
    assert_eq!(reports[1].state, AgentSessionState::Failed);
    assert!(
        reports[1]
            .message
            .as_deref()
            .unwrap()
            .contains("is no longer running")
    );
    assert!(
        runtime.open_vnc(live.session_id).await.is_ok(),
        "the adopted desktop is reachable"
    );
    assert!(runtime.open_vnc(dead.session_id).await.is_err());

    for s in [&live, &dead] {
        runtime.delete(s.session_id, false).await.unwrap();
    }
    assert!(runtime.list().await.unwrap().is_empty());
}

#[actix_web::test]
async fn refuses_beyond_capacity_and_unknown_programs_with_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = open(dir.path());
    let err = runtime
        .create(&spec("no-such-desktop --flag"))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "desktop program \"no-such-desktop\" is not installed on this host"
    );
    let (a, b, c) = (spec("xterm"), spec("xterm"), spec("xterm"));
    runtime.create(&a).await.unwrap();
    runtime.create(&b).await.unwrap();
    let err = runtime.create(&c).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "this agent already runs its maximum of 2 sessions"
    );
    for s in [&a, &b] {
        runtime.delete(s.session_id, false).await.unwrap();
    }
}

/// A desktop slow to start (its Xvnc waits for a gate) while another session starts, is
/// listed and viewed, and the capacity counts the one still starting.
#[actix_web::test]
async fn a_desktop_slow_to_start_holds_up_neither_other_sessions_nor_the_list() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let scripts = tempfile::tempdir().unwrap();
    let slow = spec("xterm");
    let (gate, waiting) = (scripts.path().join("gate"), scripts.path().join("waiting"));
    let xvnc = scripts.path().join("gated-xvnc");
    std::fs::write(
        &xvnc,
        format!(
            "#!/bin/sh\ncase \"$*\" in *{}*) touch {}; while [ ! -e {} ]; do sleep 0.02; done;; esac\nexec Xvnc \"$@\"\n",
            slow.session_id,
            waiting.display(),
            gate.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&xvnc, PermissionsExt::from_mode(0o755)).unwrap();
    let runtime = std::sync::Arc::new(
        LocalRuntime::open(LocalSettings {
            data_dir: dir.path().to_owned(),
            xvnc: xvnc.to_string_lossy().into_owned(),
            geometry: "640x480".into(),
            max_sessions: 2,
            accounts: DesktopAccounts::Agent,
        })
        .unwrap(),
    );
    let starting = tokio::spawn({
        let (runtime, slow) = (runtime.clone(), slow.clone());
        async move { runtime.create(&slow).await }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !waiting.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the gated Xvnc never ran"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    assert!(bounded(runtime.list()).await.unwrap().is_empty());
    let other = spec("xterm");
    let report = bounded(runtime.create(&other)).await.unwrap();
    assert_eq!(report.state, AgentSessionState::Running);
    let mut stream = bounded(runtime.open_vnc(other.session_id)).await.unwrap();
    let mut greeting = [0u8; 12];
    tokio::io::AsyncReadExt::read_exact(&mut stream, &mut greeting)
        .await
        .unwrap();
    assert_eq!(&greeting, b"RFB 003.008\n");
    let err = bounded(runtime.create(&spec("xterm"))).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "this agent already runs its maximum of 2 sessions",
        "the session still starting counts"
    );
    assert!(!starting.is_finished());

    std::fs::write(&gate, "").unwrap();
    let report = starting.await.unwrap().unwrap();
    assert_eq!(report.state, AgentSessionState::Running);
    let listed = runtime.list().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|s| s.state == AgentSessionState::Running));
    assert_ne!(
        pid_of(dir.path(), slow.session_id, "display"),
        pid_of(dir.path(), other.session_id, "display"),
        "two starts at once on two displays"
    );
    for s in [&slow, &other] {
        runtime.delete(s.session_id, false).await.unwrap();
    }
}

/// A regression waits for the gate, which nothing opens: bounded, so it fails.
async fn bounded<T>(what: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), what)
        .await
        .expect("held up by the desktop still starting")
}

/// The real user id of a process.
fn uid_of(pid: i32) -> u32 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap()
}

/// Runs `program` as the account `uid`/`gid`, as a desktop would; whether it succeeded.
fn succeeds_as(uid: u32, gid: u32, program: &str, args: &[&str], env: &[(&str, &str)]) -> bool {
    std::process::Command::new("setpriv")
        .args([format!("--reuid={uid}"), format!("--regid={gid}")])
        .args(["--clear-groups", "--", program])
        .args(args)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success()
}

#[tokio::test]
async fn an_agent_running_as_root_runs_each_users_desktops_as_their_own_unprivileged_account() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if !nix::unistd::geteuid().is_root() {
        // Not root: desktops already run as the (unprivileged) agent's user.
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let runtime = LocalRuntime::open(LocalSettings {
        data_dir: dir.path().to_owned(),
        xvnc: "Xvnc".into(),
        geometry: "640x480".into(),
        max_sessions: 2,
        accounts: DesktopAccounts::PerUser {
            prefix: "ss-test".into(),
        },
    })
    .unwrap();
    let alice = spec("xterm");
    let mut bob = spec("xterm");
    bob.user = "bob".into();
    let mut ids = Vec::new();
    for session in [&alice, &bob] {
        let report = runtime.create(session).await.unwrap();
        assert_eq!(report.state, AgentSessionState::Running);
        let socket = report.vnc.unwrap().host;
        assert!(
            socket.starts_with("unix:"),
            "VNC on a Unix socket, not TCP: {socket}"
        );
        let xvnc = pid_of(dir.path(), session.session_id, "xvnc_pid");
        let desktop = pid_of(dir.path(), session.session_id, "desktop_pid");
        // The desktop was just spawned: give setpriv its moment to switch users and exec.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(uid_of(xvnc), uid_of(desktop));
        assert!(alive(desktop), "the desktop program exited");
        let uid = uid_of(xvnc);
        assert_ne!(uid, 0);
        let session_dir = dir
            .path()
            .join("sessions")
            .join(session.session_id.to_string());
        let gid = std::fs::metadata(session_dir.join("home")).unwrap().gid();
        for private in ["home", "run"] {
            let meta = std::fs::metadata(session_dir.join(private)).unwrap();
            assert_eq!(
                (meta.uid(), meta.permissions().mode() & 0o777),
                (uid, 0o700)
            );
        }
        let socket = std::fs::metadata(session_dir.join("run/vnc.sock")).unwrap();
        assert_eq!(
            (socket.uid(), socket.permissions().mode() & 0o777),
            (uid, 0o600)
        );
        ids.push((session_dir, uid, gid));
    }
    let [(alice_dir, alice_uid, alice_gid), (_, bob_uid, bob_gid)] = &ids[..] else {
        unreachable!()
    };
    assert_ne!(alice_uid, bob_uid, "each user has an account of their own");

    // Alice's own account reaches her display with her cookie; Bob's reaches neither her
    // files nor her cookie, so not her display either.
    let display = format!(":{}", pid_of(dir.path(), alice.session_id, "display"));
    let cookie = alice_dir.join("run/Xauthority");
    let cookie = cookie.to_str().unwrap();
    let x = [("DISPLAY", display.as_str()), ("XAUTHORITY", cookie)];
    assert!(succeeds_as(*alice_uid, *alice_gid, "xdpyinfo", &[], &x));
    assert!(!succeeds_as(*bob_uid, *bob_gid, "xdpyinfo", &[], &x));
    let no_cookie = [
        ("DISPLAY", display.as_str()),
        ("XAUTHORITY", "/nonexistent"),
    ];
    assert!(!succeeds_as(
        *alice_uid,
        *alice_gid,
        "xdpyinfo",
        &[],
        &no_cookie
    ));
    std::fs::write(alice_dir.join("home/secret"), "alice's").unwrap();
    let secret = alice_dir.join("home/secret");
    assert!(!succeeds_as(
        *bob_uid,
        *bob_gid,
        "cat",
        &[secret.to_str().unwrap()],
        &[]
    ));
    for session in [&alice, &bob] {
        runtime.delete(session.session_id, false).await.unwrap();
    }
    // The accounts are this test's own (their prefix says so): leave none behind.
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    for name in passwd.lines().filter_map(|l| l.split(':').next()) {
        if name.starts_with("ss-test-") {
            std::process::Command::new("userdel")
                .arg(name)
                .status()
                .unwrap();
        }
    }
}

#[test]
fn desktops_creating_the_same_account_at_once_share_one_the_system_knows_by_its_uid() {
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    // Not `ss-test-`: the test above deletes those when it ends.
    let name = "ss-race-test";
    let created: Vec<Result<DesktopUser, String>> = std::thread::scope(|scope| {
        let creating: Vec<_> = (0..8)
            .map(|_| scope.spawn(|| DesktopUser::ensure(name, "StreamSpace race test")))
            .collect();
        creating
            .into_iter()
            .map(|thread| thread.join().unwrap())
            .collect()
    });
    // Who has the uid the first creator got (setpriv looks the account up by uid).
    let owner = created[0].as_ref().ok().map(|user| {
        std::process::Command::new("getent")
            .args(["passwd", &user.uid.to_string()])
            .output()
            .unwrap()
            .stdout
    });
    std::process::Command::new("userdel")
        .arg(name)
        .status()
        .unwrap();
    let first = created[0].clone().unwrap();
    assert!(
        created.iter().all(|user| *user == Ok(first.clone())),
        "{created:?}"
    );
    let owner = String::from_utf8(owner.unwrap()).unwrap();
    assert!(
        owner.starts_with(&format!("{name}:")),
        "uid {}: {owner:?}",
        first.uid
    );
}

fn home_of(pid: i32) -> Option<String> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    environ
        .split(|b| *b == 0)
        .filter_map(|v| std::str::from_utf8(v).ok())
        .find_map(|v| v.strip_prefix("HOME=").map(str::to_owned))
}

/// The desktop's `HOME`, once its program runs. Read right after the desktop was started,
/// `/proc/PID/environ` was once cut short (a cold run read the home's path without its last
/// twelve characters: the process was presumably still being exec'd), so the full value is
/// waited for, up to 5 s.
async fn assert_home(pid: i32, expected: &Path) {
    let expected = expected.display().to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while home_of(pid).as_ref() != Some(&expected) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(home_of(pid), Some(expected));
}

#[actix_web::test]
async fn a_shared_home_outlives_its_sessions_serves_one_at_a_time_and_is_deleted_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = open(dir.path());
    let home_id = Uuid::new_v4();
    let home = dir.path().join("homes").join(home_id.to_string());
    let mut first = spec("xterm");
    first.home_id = Some(home_id);
    runtime.create(&first).await.unwrap();
    let desktop = pid_of(dir.path(), first.session_id, "desktop_pid");
    assert_home(desktop, &home).await;
    std::fs::write(home.join("notes.txt"), "kept").unwrap();

    let mut second = spec("xterm");
    second.home_id = Some(home_id);
    let busy = runtime.create(&second).await.unwrap_err().to_string();
    assert_eq!(
        busy,
        format!("home {home_id} is in use by session {}", first.session_id)
    );
    let refused = runtime.delete_home(home_id).await.unwrap_err().to_string();
    assert_eq!(
        refused,
        format!("home {home_id} is in use by session {}", first.session_id)
    );

    runtime.delete(first.session_id, true).await.unwrap();
    let first_dir = dir
        .path()
        .join("sessions")
        .join(first.session_id.to_string());
    assert!(
        !first_dir.exists(),
        "nothing of the session is left but its home"
    );
    runtime.create(&second).await.unwrap();
    let desktop = pid_of(dir.path(), second.session_id, "desktop_pid");
    assert_home(desktop, &home).await;
    assert_eq!(
        std::fs::read_to_string(home.join("notes.txt")).unwrap(),
        "kept"
    );

    runtime.delete(second.session_id, true).await.unwrap();
    runtime.delete_home(home_id).await.unwrap();
    assert!(!home.exists());
    runtime.delete_home(home_id).await.unwrap();
}
