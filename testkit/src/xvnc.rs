//! A real Xvnc server (with an xterm on it, so there are pixels), stopped on drop.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A running Xvnc.
pub struct Xvnc {
    xvnc: Child,
    xterm: Option<Child>,
    /// Its X display number.
    pub display: u32,
    /// Its RFB port on 127.0.0.1.
    pub port: u16,
}

impl Xvnc {
    /// Starts Xvnc on a free display and port (it tells us which display through
    /// `-displayfd 1`), without authentication, plus an xterm.
    pub fn start(geometry: &str, desktop_name: &str) -> std::io::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut xvnc = Command::new("Xvnc")
            .args(["-displayfd", "1", "-rfbport", &port.to_string()])
            .args(["-localhost", "-interface", "127.0.0.1", "-nolisten", "tcp"])
            .args([
                "-SecurityTypes",
                "None",
                "-AlwaysShared",
                "-geometry",
                geometry,
                "-depth",
                "24",
            ])
            .args(["-desktop", desktop_name])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let mut line = String::new();
        let stdout = xvnc
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("no stdout"))?;
        BufReader::new(stdout).read_line(&mut line)?;
        let display: u32 = line.trim().parse().map_err(|_| {
            std::io::Error::other(format!("Xvnc printed {line:?} instead of a display"))
        })?;
        // Wait until the RFB port accepts connections.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if std::time::Instant::now() > deadline {
                let _ = xvnc.kill();
                return Err(std::io::Error::other("Xvnc did not listen within 10s"));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let xterm = Command::new("xterm")
            .args(["-geometry", "80x24+30+30"])
            .env("DISPLAY", format!(":{display}"))
            .env("HOME", std::env::temp_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok();
        Ok(Xvnc {
            xvnc,
            xterm,
            display,
            port,
        })
    }
}

impl Drop for Xvnc {
    fn drop(&mut self) {
        if let Some(xterm) = &mut self.xterm {
            let _ = xterm.kill();
            let _ = xterm.wait();
        }
        let _ = self.xvnc.kill();
        let _ = self.xvnc.wait();
    }
}
