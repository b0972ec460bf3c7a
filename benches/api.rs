//! The one-household API under load: `hedui serve` over HTTPS on a generated city's lake,
//! called by 1, 10 and 50 concurrent clients (a case system's connections), each asking
//! for households of the city's batch in turn. Prints p50/p90/p99/max latency and the
//! rate per client count. Every answer must be 200 with a verdict.
//!
//! ```sh
//! cargo bench --bench api -- --people 1000000 --households 100000 --requests 2000
//! ```
//! (`--dir D` keeps the city, lake and config in D and reuses them on the next run;
//! `--clients 1,10,50` by default.)

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

struct Args {
    people: u64,
    households: u64,
    requests: usize,
    clients: Vec<usize>,
    dir: Option<std::path::PathBuf>,
}

fn args() -> Args {
    let (mut requests, mut clients) = (1000, vec![1, 10, 50]);
    let city = common::args(|k, value| match k {
        "--requests" => requests = value().parse().expect("--requests N"),
        "--clients" => {
            clients = value()
                .split(',')
                .map(|c| c.parse().expect("--clients 1,10,50"))
                .collect()
        }
        _ => {}
    });
    Args {
        people: city.people,
        households: city.households,
        requests,
        clients,
        dir: city.dir,
    }
}

mod common;

use common::TOKEN;

fn main() {
    let a = args();
    let tmp = tempfile::tempdir().unwrap();
    let dir = a.dir.clone().unwrap_or_else(|| tmp.path().to_owned());
    std::fs::create_dir_all(&dir).unwrap();
    let p = |r: &str| dir.join(r).display().to_string();
    let as_of = common::city(&dir, a.people, a.households);
    // The households to ask about: the batch's accepted ones.
    let policy = hedui::policy::Policy::load(std::path::Path::new(&p("city/policy.toml"))).unwrap();
    let batch = hedui::applicants::load(
        std::path::Path::new(&p("city/applicants.csv")),
        &policy,
        as_of.parse().unwrap(),
    )
    .unwrap();
    let bodies: Vec<Value> = batch
        .households
        .iter()
        .map(|h| {
            json!({
                "household_id": h.household_id,
                "region_code": h.region_code,
                "area_type": h.area_type.code(),
                "aid_type": h.aid_type.code(),
                "authorization_id": h.authorization_id,
                "members": h.members.iter().map(|m| json!({
                    "id_number": m.id_number, "name": m.name, "relation": m.relation.code()
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    drop(batch);

    let mut child = Command::new(env!("CARGO_BIN_EXE_hedui"))
        .args(["serve", "--config", &p("hedui.toml")])
        .env("HEDUI_LOG", "warn")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let url = loop {
        let mut line = String::new();
        assert!(err.read_line(&mut line).unwrap() > 0, "the server ended");
        if let Some(u) = line.trim().strip_prefix("hedui: listening on ") {
            break u.to_owned();
        }
    };
    std::thread::spawn(move || for _ in err.lines() {});
    let rss = |pid: u32| -> String {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .map(|l| l.trim_start_matches("VmRSS:").trim().to_owned())
            })
            .unwrap_or_default()
    };
    let ca =
        reqwest::Certificate::from_pem(&std::fs::read(dir.join("server.pem")).unwrap()).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // (A reused --dir holds the city it was made with, whatever --people says now.)
    println!(
        "city in {}: {} households asked about in turn; server RSS at start {}",
        dir.display(),
        bodies.len(),
        rss(child.id())
    );
    println!(
        "| clients | requests | p50 ms | p90 ms | p99 ms | max ms | requests/s | server RSS |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca)
            .pool_max_idle_per_host(256)
            .build()
            .unwrap();
        // Warm-up: the first answers read footers and plan; not counted.
        for b in bodies.iter().take(5) {
            let r = client
                .post(format!("{url}/api/v1/checks"))
                .bearer_auth(TOKEN)
                .json(b)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
        }
        let bodies = std::sync::Arc::new(bodies);
        for &n in &a.clients {
            let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let started = Instant::now();
            let mut tasks = Vec::new();
            for _ in 0..n {
                let (client, url, bodies, next) =
                    (client.clone(), url.clone(), bodies.clone(), next.clone());
                let total = a.requests;
                tasks.push(tokio::spawn(async move {
                    let mut lat = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        if i >= total {
                            break;
                        }
                        let b = &bodies[i % bodies.len()];
                        let t = Instant::now();
                        let r = client
                            .post(format!("{url}/api/v1/checks"))
                            .bearer_auth(TOKEN)
                            .json(b)
                            .send()
                            .await
                            .unwrap();
                        let status = r.status().as_u16();
                        let v: Value = r.json().await.unwrap();
                        assert_eq!(status, 200, "{v}");
                        assert!(v["verdict"].is_string(), "{v}");
                        lat.push(t.elapsed());
                    }
                    lat
                }));
            }
            let mut all: Vec<Duration> = Vec::new();
            for t in tasks {
                all.extend(t.await.unwrap());
            }
            let wall = started.elapsed();
            all.sort();
            let q = |f: usize| all[(all.len() * f / 100).min(all.len() - 1)].as_secs_f64() * 1000.0;
            println!(
                "| {n} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} | {} |",
                all.len(),
                q(50),
                q(90),
                q(99),
                all.last().unwrap().as_secs_f64() * 1000.0,
                all.len() as f64 / wall.as_secs_f64(),
                rss(child.id())
            );
        }
    });
    let _ = child.kill();
    let _ = child.wait();
}
