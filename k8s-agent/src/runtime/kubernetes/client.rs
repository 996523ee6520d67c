//! Building the Kubernetes client from `KUBECONFIG` or the in-cluster service account.

use std::path::Path;

/// A client for the cluster named by `kubeconfig`, or the one the agent runs in.
pub async fn client(kubeconfig: Option<&Path>) -> Result<kube::Client, String> {
    let config = match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| format!("KUBECONFIG: cannot read {}: {e}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| format!("KUBECONFIG: {}: {e}", path.display()))?
        }
        None => kube::Config::incluster().map_err(|e| {
            format!("KUBECONFIG is not set and in-cluster configuration failed: {e}")
        })?,
    };
    kube::Client::try_from(config).map_err(|e| format!("cannot build the Kubernetes client: {e}"))
}
