//! A control-plane replica as a process of its own (the real binary), for what an in-process
//! server cannot show: a replica killed with SIGKILL mid-work. Killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::TestDatabase;
use crate::control_plane::{ADMIN_PASSWORD, JWT_SECRET};

/// The control-plane binary of this workspace's build, built first if it is not there yet.
pub fn binary() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| crate::kube_cluster::repo_root().join("target"));
    let path = target.join("debug/streamspace-control-plane");
    if !path.exists() {
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args([
                "build",
                "-p",
                "streamspace-control-plane",
                "--bin",
                "streamspace-control-plane",
            ])
            .current_dir(crate::kube_cluster::repo_root())
            .status()
            .expect("cargo build");
        assert!(status.success(), "building the control plane failed");
    }
    path
}

/// A running replica.
pub struct ReplicaProcess {
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: Child,
}

impl ReplicaProcess {
    /// Starts the binary on `db`, listening on 127.0.0.1:`port`, with `env` on top of what
    /// the in-process test servers use; returns once `/readyz` answers 200.
    pub fn spawn(binary: &Path, db: &TestDatabase, port: u16, env: &[(&str, &str)]) -> Self {
        let replica = Self::start(binary, db, port, env);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !replica.ready() {
            assert!(
                Instant::now() < deadline,
                "replica on {port} not ready in 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        replica
    }

    /// Starts the binary as [`Self::spawn`] does, without waiting for it.
    pub fn start(binary: &Path, db: &TestDatabase, port: u16, env: &[(&str, &str)]) -> Self {
        let child = Command::new(binary)
            .env_clear()
            .env("DATABASE_URL", db.url())
            .env("JWT_SECRET", JWT_SECRET)
            .env("STREAMSPACE_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("start the control plane");
        ReplicaProcess { port, child }
    }

    /// Whether `/readyz` answers 200 now.
    pub fn ready(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let request = "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        let mut answer = String::new();
        stream.write_all(request.as_bytes()).is_ok()
            && stream.read_to_string(&mut answer).is_ok()
            && answer.starts_with("HTTP/1.1 200")
    }

    /// Its process id (for reading its memory from `/proc`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, as an orchestrator stops it (agents told to link again, requests finished);
    /// waits for it to exit.
    pub fn terminate(mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }

    /// SIGKILL: no goodbye, no hand-over; its record ages out.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ReplicaProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
