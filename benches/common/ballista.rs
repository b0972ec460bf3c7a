//! A Ballista cluster on this machine for the tests and the `check` bench: a stock
//! scheduler and executors started as separate processes on loopback, every port set
//! per process, stopped when dropped.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port nobody listens on now (the OS's choice, released at once).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A scheduler and its executors; killed when dropped.
pub struct Ballista {
    procs: Vec<Child>,
    port: u16,
    logs: tempfile::TempDir,
    executors: usize,
}

impl Drop for Ballista {
    fn drop(&mut self) {
        for p in &mut self.procs {
            let _ = p.kill();
            let _ = p.wait();
        }
    }
}

impl Ballista {
    /// Starts a scheduler and `executors` executors and waits until all registered.
    pub fn start(scheduler: &Path, executor: &Path, executors: usize) -> Ballista {
        let logs = tempfile::tempdir().unwrap();
        let dir = logs.path().to_path_buf();
        let port = free_port();
        let spawn = |bin: &Path, name: &str, args: Vec<String>| -> Child {
            let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
            Command::new(bin)
                .args(&args)
                .stdout(Stdio::from(log.try_clone().unwrap()))
                .stderr(Stdio::from(log))
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()))
        };
        // Every process on loopback only, and known to the others by that address.
        let on_loopback = || -> Vec<String> {
            ["--bind-host", "127.0.0.1", "--external-host", "127.0.0.1"]
                .map(String::from)
                .to_vec()
        };
        let mut procs = vec![spawn(
            scheduler,
            "scheduler",
            [
                on_loopback(),
                vec![
                    "--bind-port".into(),
                    port.to_string(),
                    "--min-ready-executors".into(),
                    executors.to_string(),
                ],
            ]
            .concat(),
        )];
        for i in 0..executors {
            let work = dir.join(format!("work-{i}"));
            std::fs::create_dir_all(&work).unwrap();
            procs.push(spawn(
                executor,
                &format!("executor-{i}"),
                [
                    on_loopback(),
                    vec![
                        "--bind-port".into(),
                        free_port().to_string(),
                        "--bind-grpc-port".into(),
                        free_port().to_string(),
                        "--bind-health-port".into(),
                        free_port().to_string(),
                        "--scheduler-host".into(),
                        "127.0.0.1".into(),
                        "--scheduler-port".into(),
                        port.to_string(),
                        "--scheduler-connect-timeout-seconds".into(),
                        "60".into(),
                        "--concurrent-tasks".into(),
                        "2".into(),
                        "--work-dir".into(),
                        work.display().to_string(),
                    ],
                ]
                .concat(),
            ));
        }
        let mut c = Ballista {
            procs,
            port,
            logs,
            executors,
        };
        c.wait_ready();
        c
    }

    /// The scheduler, `df://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("df://127.0.0.1:{}", self.port)
    }

    /// Peak resident memory (VmHWM) of the scheduler and of each executor so far, MiB.
    pub fn peak_rss_mib(&self) -> Vec<(String, f64)> {
        self.procs
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let name = if i == 0 {
                    "scheduler".to_owned()
                } else {
                    format!("executor-{}", i - 1)
                };
                let kib = std::fs::read_to_string(format!("/proc/{}/status", p.id()))
                    .ok()
                    .and_then(|s| {
                        s.lines()
                            .find_map(|l| l.strip_prefix("VmHWM:"))
                            .and_then(|v| {
                                v.trim().trim_end_matches("kB").trim().parse::<f64>().ok()
                            })
                    })
                    .unwrap_or(0.0);
                (name, kib / 1024.0)
            })
            .collect()
    }

    /// Waits until the scheduler reports every executor registered (`/readyz` 200).
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        while Instant::now() < deadline {
            if self.readyz() == Some(200) {
                return;
            }
            for p in &mut self.procs {
                if let Ok(Some(status)) = p.try_wait() {
                    panic!("a Ballista process exited ({status}):\n{}", self.log_text());
                }
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!(
            "the Ballista scheduler did not report {} executors within 90 s:\n{}",
            self.executors,
            self.log_text()
        );
    }

    fn readyz(&self) -> Option<u16> {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        s.write_all(b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .ok()?;
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).ok()?;
        let line = String::from_utf8_lossy(&buf[..n]);
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// How many jobs the scheduler has queued so far (its log's `Job queued` lines).
    pub fn jobs(&self) -> usize {
        std::fs::read_to_string(self.logs.path().join("scheduler.log"))
            .unwrap_or_default()
            .matches("Job queued")
            .count()
    }

    /// How many tasks each executor was given so far (its log's `Execute task` lines
    /// under push scheduling, `Received task` under pull).
    pub fn tasks_per_executor(&self) -> Vec<usize> {
        (0..self.executors)
            .map(|i| {
                let log =
                    std::fs::read_to_string(self.logs.path().join(format!("executor-{i}.log")))
                        .unwrap_or_default();
                log.matches("Execute task").count() + log.matches("Received task").count()
            })
            .collect()
    }

    /// The last lines of every process's log.
    pub fn log_text(&self) -> String {
        let mut out = String::new();
        let names = std::iter::once("scheduler".to_owned())
            .chain((0..self.executors).map(|i| format!("executor-{i}")));
        for name in names {
            let text = std::fs::read_to_string(self.logs.path().join(format!("{name}.log")))
                .unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            out.push_str(&format!("--- {name} (last lines)\n"));
            for l in tail.into_iter().rev() {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }
}
