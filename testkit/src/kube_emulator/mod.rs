//! An emulator of the parts of the Kubernetes API the agent uses, for end-to-end tests on
//! machines where no real API server can be had. It is not shipped: it lives in the test
//! support crate.
//!
//! What it implements: Pods, Services and PersistentVolumeClaims in any namespace — create,
//! get, list (with equality label selectors), delete, and server-side apply (`PATCH` with
//! `application/apply-patch+yaml` and a `fieldManager`); `resourceVersion` and `uid`;
//! `Status` error bodies like the real API (404 NotFound, 409 AlreadyExists, 422 Invalid for
//! names that are not DNS labels, 415 for unsupported patches). Pods start `Pending` and turn
//! `Running`/`Ready` with a pod IP after a short delay, running a **real Xvnc** for the
//! desktop; the `portforward` subresource speaks `v4.channel.k8s.io` over WebSocket and is
//! bridged to that Xvnc. Images steer failures: an image containing `unschedulable` stays
//! Pending (Unschedulable), one containing `missing` fails with ErrImagePull.

mod objects;
mod portforward;
mod routes;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpServer, web};

pub use objects::Cluster;

/// A running emulator.
pub struct KubeEmulator {
    /// Where it listens (plain HTTP).
    pub addr: SocketAddr,
    /// The objects, for assertions.
    pub cluster: Arc<Mutex<Cluster>>,
    handle: actix_web::dev::ServerHandle,
}

impl KubeEmulator {
    /// Starts on `addr` (port 0 for a free one) in the current actix system; Pods become
    /// Ready after `ready_delay`.
    pub fn start(addr: &str, ready_delay: Duration) -> std::io::Result<Self> {
        let cluster = Arc::new(Mutex::new(Cluster::new(ready_delay)));
        let data = web::Data::from(cluster.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .configure(routes::configure)
        })
        .workers(1)
        .disable_signals()
        .bind(addr)?;
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Ok(KubeEmulator {
            addr,
            cluster,
            handle,
        })
    }

    /// A kubeconfig pointing at this emulator, with `namespace` as the default.
    pub fn kubeconfig(&self, namespace: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: emulator\n  cluster:\n    server: http://{}\n\
             users:\n- name: emulator\n  user: {{}}\ncontexts:\n- name: emulator\n  context:\n    cluster: emulator\n    \
             user: emulator\n    namespace: {namespace}\ncurrent-context: emulator\n",
            self.addr
        )
    }

    /// Names of the objects of one kind (`pods`, `services`, `persistentvolumeclaims`).
    pub fn names(&self, resource: &str) -> Vec<String> {
        self.cluster
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .names(resource)
    }

    /// Stops the HTTP server (pods' Xvnc servers stop when the emulator is dropped).
    pub async fn stop(&self) {
        self.handle.stop(false).await;
    }
}

impl Drop for KubeEmulator {
    fn drop(&mut self) {
        // The server's workers hold the cluster too; its pods' desktops must not outlive us.
        self.cluster
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .stop_pods();
        drop(self.handle.stop(false));
    }
}
