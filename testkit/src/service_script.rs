//! Services a script in `scripts/` runs for the tests (`scripts/kube-cluster up`,
//! `scripts/docker-engine up`): started with this process's id, which the script watches so
//! it stops when the tests end, and ready once it writes `DIR/ready`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The repository's root (for `scripts/` and `charts/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit lives in the workspace")
        .to_path_buf()
}

/// Runs `scripts/<script> up <dir> <this pid>` and waits up to `within` for `dir/ready`.
pub fn start(script: &str, dir: &Path, within: Duration) -> Result<Child, String> {
    let path = repo_root().join("scripts").join(script);
    let mut process = Command::new(&path)
        .arg("up")
        .arg(dir)
        .arg(std::process::id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let deadline = Instant::now() + within;
    while !dir.join("ready").exists() {
        if let Some(status) = process.try_wait().map_err(|e| e.to_string())? {
            return Err(format!("scripts/{script} exited with {status}"));
        }
        if Instant::now() > deadline {
            let _ = process.kill();
            return Err(format!("scripts/{script} was not ready within {within:?}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(process)
}
