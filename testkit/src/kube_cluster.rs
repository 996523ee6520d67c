//! A real Kubernetes control plane for tests (kube-apiserver, etcd, scheduler,
//! controller-manager, kwok as the node), started by `scripts/kube-cluster`.
//!
//! One cluster serves a whole test binary (or the whole `scripts/test` run, which exports
//! `STREAMSPACE_TEST_KUBECONFIG`); tests isolate themselves by namespace. A namespace is set up
//! the way the agent's Helm chart sets it up (`scripts/kube-cluster agent-namespace`: Pod
//! Security `restricted`, the chart's own ServiceAccount, Role, RoleBinding and
//! NetworkPolicy), and the agent gets a kubeconfig holding that ServiceAccount's token, never
//! the cluster admin's.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::service_script;
pub use crate::service_script::repo_root;

/// Where `scripts/kube-cluster` keeps the binaries it built (kept in step with
/// `scripts/lib/kubernetes.sh`).
pub fn bin_dir() -> PathBuf {
    let cache = std::env::var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into())).join(".cache")
        });
    cache.join("streamspace/k8s-1.36.1/bin")
}

/// A running cluster.
pub struct KubeCluster {
    /// The cluster admin's kubeconfig.
    pub kubeconfig: PathBuf,
    // Kept so the cluster lives as long as this value; the script also stops when the test
    // process exits, since statics are never dropped.
    _process: Option<Child>,
    _dir: Option<tempfile::TempDir>,
}

static SHARED: OnceLock<KubeCluster> = OnceLock::new();

impl KubeCluster {
    /// The cluster of this test run: `STREAMSPACE_TEST_KUBECONFIG` if set, else one started on
    /// first use and stopped when this process exits.
    pub fn shared() -> &'static KubeCluster {
        SHARED.get_or_init(|| {
            if let Ok(path) = std::env::var("STREAMSPACE_TEST_KUBECONFIG") {
                return KubeCluster {
                    kubeconfig: path.into(),
                    _process: None,
                    _dir: None,
                };
            }
            KubeCluster::start()
                .unwrap_or_else(|e| panic!("cannot start a Kubernetes cluster: {e}"))
        })
    }

    /// Starts a cluster of its own (builds the binaries first if needed).
    pub fn start() -> Result<KubeCluster, String> {
        let parent = tempfile::Builder::new()
            .prefix("streamspace-kube-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let dir = parent.path().join("cluster");
        // A cold build takes minutes; a warm start a few seconds.
        let process = service_script::start("kube-cluster", &dir, Duration::from_secs(1800))?;
        Ok(KubeCluster {
            kubeconfig: dir.join("kubeconfig"),
            _process: Some(process),
            _dir: Some(parent),
        })
    }

    /// Runs kubectl as the cluster admin; returns its standard output, or its error output.
    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
        run(
            Command::new(bin_dir().join("kubectl"))
                .arg("--kubeconfig")
                .arg(&self.kubeconfig)
                .args(args),
            stdin,
        )
    }

    /// A fresh namespace set up for an agent as its chart would, and a kubeconfig for that
    /// agent's ServiceAccount. `chart_values` are extra `--set` values for the agent chart.
    /// Blocking: call it from `spawn_blocking` in async tests.
    pub fn agent_namespace(
        &'static self,
        prefix: &str,
        chart_values: &[&str],
    ) -> Result<AgentNamespace, String> {
        let name = format!(
            "{prefix}-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let kubeconfig = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
        let mut command = Command::new(repo_root().join("scripts/kube-cluster"));
        command
            .arg("agent-namespace")
            .arg(&self.kubeconfig)
            .arg(&name)
            .arg(kubeconfig.path());
        for value in chart_values {
            command.args(["--set", value]);
        }
        run(&mut command, None)?;
        Ok(AgentNamespace {
            name,
            kubeconfig,
            cluster: self,
        })
    }
}

/// A namespace for one agent; deleted (with everything in it) on drop.
pub struct AgentNamespace {
    /// Its name.
    pub name: String,
    /// Kubeconfig of the agent's ServiceAccount, scoped by the chart's Role.
    pub kubeconfig: tempfile::NamedTempFile,
    /// The cluster it lives in.
    pub cluster: &'static KubeCluster,
}

impl AgentNamespace {
    /// Path of the agent's kubeconfig.
    pub fn kubeconfig_path(&self) -> String {
        self.kubeconfig.path().display().to_string()
    }

    /// kubectl as the cluster admin, in this namespace.
    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        self.cluster.kubectl(&all, stdin)
    }

    /// Names of the objects of one kind in this namespace.
    pub fn names(&self, kind: &str) -> Vec<String> {
        self.kubectl(&["get", kind, "-o", "name"], None)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once('/').map(|(_, n)| n.to_owned()))
            .collect()
    }
}

impl Drop for AgentNamespace {
    fn drop(&mut self) {
        let _ = self
            .cluster
            .kubectl(&["delete", "namespace", &self.name, "--wait=false"], None);
    }
}

fn run(command: &mut Command, stdin: Option<&str>) -> Result<String, String> {
    let mut child = command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{command:?}: {e}"))?;
    if let Some(input) = stdin
        && let Some(mut pipe) = child.stdin.take()
    {
        pipe.write_all(input.as_bytes())
            .map_err(|e| format!("{command:?}: {e}"))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| format!("{command:?}: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
    }
}
