//! Support for StreamSpace's tests: real services, started and cleaned up per test.

pub mod api_contract;
pub mod control_plane;
mod database;
pub mod docker_engine;
pub mod json_log;
pub mod kube_cluster;
pub mod kwok_desktops;
pub mod latencies;
pub mod load_balancer;
pub mod network_proxy;
pub mod own_thread;
pub mod replica_process;
pub mod rfb;
pub mod round_trips;
pub mod scripted_control_plane;
mod service_script;
pub mod xvnc;

pub use database::TestDatabase;

/// A loopback port free at this moment.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
