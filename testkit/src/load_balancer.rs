//! A real load balancer in front of control-plane replicas: HAProxy from Debian, checking
//! each replica's `/readyz` every 100 ms, as a Kubernetes Service or an Ingress would route
//! to ready Pods only. Stopped when dropped.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running HAProxy.
pub struct LoadBalancer {
    /// Where it listens.
    pub addr: SocketAddr,
    child: Child,
    _dir: tempfile::TempDir,
}

impl LoadBalancer {
    /// HAProxy on a free loopback port, balancing over `replicas` (round robin).
    pub fn start(replicas: &[SocketAddr]) -> Result<LoadBalancer, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let servers: String = replicas
            .iter()
            .enumerate()
            .map(|(i, addr)| format!("    server replica{i} {addr} check\n"))
            .collect();
        // WebSockets (agents, viewers) live long: the tunnel timeout covers them. A request
        // that reached a replica as it stopped is retried on another.
        let config = format!(
            "global\n    maxconn 4096\n\
             defaults\n    mode http\n    timeout connect 1s\n    timeout client 1h\n    timeout server 1h\n    timeout tunnel 1h\n\
             \x20   retries 3\n    option redispatch\n    retry-on conn-failure empty-response response-timeout\n\
             frontend streamspace\n    bind 127.0.0.1:{port}\n    default_backend replicas\n\
             backend replicas\n    balance roundrobin\n    option httpchk GET /readyz\n\
             \x20   default-server inter 100ms fall 1 rise 1\n{servers}"
        );
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, config).map_err(|e| e.to_string())?;
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("haproxy (Debian package haproxy): {e}"))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            if Instant::now() > deadline {
                return Err("haproxy did not listen within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(LoadBalancer {
            addr,
            child,
            _dir: dir,
        })
    }

    /// `ws://` base URL.
    pub fn ws_base(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// `http://` base URL.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for LoadBalancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
