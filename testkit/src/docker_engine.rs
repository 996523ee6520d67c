//! A real Docker engine for tests: a private dockerd with the desktop image built on it,
//! started by `scripts/docker-engine`.
//!
//! One engine serves a whole test binary (or the whole `scripts/test` run, which exports
//! `STREAMSPACE_TEST_DOCKER_HOST` and `STREAMSPACE_TEST_DESKTOP_IMAGE`); tests isolate
//! themselves by agent id, which labels and names everything an agent makes.

use std::collections::HashMap;
use std::process::{Child, Command};
use std::sync::OnceLock;
use std::time::Duration;

use crate::service_script;

/// A running engine.
pub struct DockerEngine {
    /// `DOCKER_HOST` of the engine (`unix://…`).
    pub host: String,
    /// The desktop image, built on it.
    pub desktop_image: String,
    // Kept so the engine lives as long as this value; the script also stops when the test
    // process exits, since statics are never dropped.
    _process: Option<Child>,
}

static SHARED: OnceLock<DockerEngine> = OnceLock::new();

impl DockerEngine {
    /// The engine of this test run: the one `scripts/test` started, else one of its own.
    pub fn shared() -> &'static DockerEngine {
        SHARED.get_or_init(|| {
            if let (Ok(host), Ok(desktop_image)) = (
                std::env::var("STREAMSPACE_TEST_DOCKER_HOST"),
                std::env::var("STREAMSPACE_TEST_DESKTOP_IMAGE"),
            ) {
                return DockerEngine {
                    host,
                    desktop_image,
                    _process: None,
                };
            }
            DockerEngine::start().unwrap_or_else(|e| panic!("cannot start a Docker engine: {e}"))
        })
    }

    /// Starts an engine of its own (builds the desktop image first if needed).
    pub fn start() -> Result<DockerEngine, String> {
        // The script removes the directory when it stops.
        let dir = tempfile::Builder::new()
            .prefix("streamspace-docker-")
            .tempdir()
            .map_err(|e| e.to_string())?
            .keep();
        // A first build (debootstrap, then the image) takes minutes; later ones seconds.
        let process = service_script::start("docker-engine", &dir, Duration::from_secs(1200))?;
        let env = std::fs::read_to_string(dir.join("env")).map_err(|e| e.to_string())?;
        let env: HashMap<&str, &str> = env.lines().filter_map(|l| l.split_once('=')).collect();
        Ok(DockerEngine {
            host: env["DOCKER_HOST"].to_owned(),
            desktop_image: env["DESKTOP_IMAGE"].to_owned(),
            _process: Some(process),
        })
    }

    /// Runs the docker client against this engine; its standard output, or its error output.
    pub fn docker(&self, args: &[&str]) -> Result<String, String> {
        let output = Command::new("docker")
            .env("DOCKER_HOST", &self.host)
            .args(args)
            .output()
            .map_err(|e| format!("docker: {e}"))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
        }
    }
}
