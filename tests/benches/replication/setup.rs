//! The benchmark's deployment: a real master with follower replicas (the tests' [`Cluster`]),
//! a few hundred registered agent hosts, and `gatehouse-loadgen run` as a child process that
//! loads the replicas with those agents. Not pure: processes, sockets, files, clocks.

use gatehouse_master::admin::client::AdminClient;
use gatehouse_master::admin::proto::{AdminRequest, AdminResponse};
use gatehouse_tests::replication::{Cluster, ReplicaStatus};
use gatehouse_tests::{bin_path, ServerProcess, TestHost, WAIT_LIMIT};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A master, its running followers and the agent identities registered on it.
pub struct Deployment {
    pub cluster: Cluster,
    /// (host name, process) of each running follower.
    pub replicas: Vec<(String, ServerProcess)>,
    pub identities: PathBuf,
    pub agents: usize,
    /// The identity the benchmark probes replicas with (a registered host).
    pub prober: TestHost,
}

impl Deployment {
    /// Starts a master, registers `replicas` and `agents` agent hosts (`agent00000`...) through
    /// the admin socket, writes their identities file, starts the followers and waits until each
    /// has applied the master's whole log.
    pub fn start(replicas: &[&str], agents: usize) -> Deployment {
        let cluster = Cluster::start(replicas);
        let mut admin = AdminClient::connect(&cluster.files.socket).expect("admin socket");
        let mut text = String::from("(identities: [\n");
        for n in 0..agents {
            let name = format!("agent{n:05}");
            let response = admin
                .request(&AdminRequest::HostAdd {
                    name: name.clone(),
                    addresses: Vec::new(),
                    groups: Vec::new(),
                })
                .expect("host add");
            let AdminResponse::HostAdded { node_key, .. } = response else {
                panic!("host add {name}: {response:?}");
            };
            let _ = writeln!(text, "  (host: {name:?}, key: {node_key:?}),");
        }
        text.push_str("])\n");
        let identities = cluster.files.dir.path().join("identities.ron");
        std::fs::write(&identities, text).expect("identities file");
        let prober = TestHost {
            name: "web1".into(),
            key: cluster.key("web1"),
        };
        let running = replicas
            .iter()
            .map(|r| (r.to_string(), cluster.start_replica(r)))
            .collect();
        let deployment = Deployment {
            cluster,
            replicas: running,
            identities,
            agents,
            prober,
        };
        deployment.wait_in_sync();
        deployment
    }

    /// Waits until every running follower has applied the master's sequence.
    pub fn wait_in_sync(&self) {
        let head = self.cluster.sequence();
        for (name, _) in &self.replicas {
            ReplicaStatus::wait_for(&self.cluster.replica_dir(name), "the master's head", |s| {
                s.state == "Established" && s.applied >= head
            });
        }
    }

    /// The agent-facing addresses of the running followers.
    pub fn servers(&self) -> String {
        self.replicas
            .iter()
            .map(|(_, p)| p.addr.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// How hard the agents push the replicas.
#[derive(Debug, Clone, Copy)]
pub struct LoadLevel {
    pub label: &'static str,
    /// Closed-loop think time per agent, ms; `None` runs no load generator at all.
    pub think_ms: Option<u64>,
}

/// What `gatehouse-loadgen` reported for the agents while the changes streamed.
#[derive(Debug, Clone, Default)]
pub struct LoadResult {
    pub throughput_rps: f64,
    pub p99_us: u64,
    pub errors: u64,
}

/// A running `gatehouse-loadgen run`.
pub struct Load {
    child: Child,
    json: PathBuf,
    log: PathBuf,
}

/// Longest run the load generator is asked for, s: it is stopped (SIGINT) as soon as the
/// changes are through, so this only bounds a benchmark that hangs.
const LOAD_MAX_SECS: u64 = 600;
/// Time the agents get to probe, connect and settle before changes start: 2 s (the closed
/// loop spreads agent starts over its first second).
pub const LOAD_WARMUP: Duration = Duration::from_secs(2);

impl Load {
    /// Starts the agents against every running follower, authorize requests only (the
    /// request agents send for every login), one thread, closed loop.
    pub fn start(deployment: &Deployment, think_ms: u64, label: &str) -> Load {
        let dir = deployment.cluster.files.dir.path();
        let json = dir.join(format!("loadgen-{label}.json"));
        let log = dir.join(format!("loadgen-{label}.log"));
        let out = std::fs::File::create(&log).expect("loadgen log");
        let err = out.try_clone().expect("loadgen log");
        let child = Command::new(bin_path("gatehouse-loadgen"))
            .args(["run", "--servers", &deployment.servers(), "--identities"])
            .arg(&deployment.identities)
            .args(["--agents", &deployment.agents.to_string()])
            .args(["--think", &think_ms.to_string()])
            .args(["--duration", &LOAD_MAX_SECS.to_string()])
            .args(["--mix", "authorize=100"])
            .arg("--json")
            .arg(&json)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn gatehouse-loadgen");
        std::thread::sleep(LOAD_WARMUP);
        Load { child, json, log }
    }

    /// Stops the agents (SIGINT, as Ctrl-C) and reads their summary.
    pub fn stop(mut self) -> LoadResult {
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGINT);
        }
        let start = Instant::now();
        // Outstanding requests get up to 6 s after the stop (docs/LOADGEN.md).
        while start.elapsed() < WAIT_LIMIT {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(status.success(), "gatehouse-loadgen failed: {}", self.log());
                let text = std::fs::read_to_string(&self.json).expect("loadgen json");
                let v: serde_json::Value = serde_json::from_str(&text).expect("loadgen json");
                return LoadResult {
                    throughput_rps: v["throughput_rps"].as_f64().unwrap_or(0.0),
                    p99_us: v["latency_us"]["p99"].as_u64().unwrap_or(0),
                    errors: v["errors"].as_u64().unwrap_or(0),
                };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        panic!("gatehouse-loadgen did not stop: {}", self.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
