//! `hedui backup` while the server works, and `hedui restore` into other places: the
//! restored hub gives the same answers (checks, a batch's results, the recipients list,
//! the runs), its audit chain verifies, and it goes on working (a reconciliation of the
//! restored list). A backup never overwrites, a restore never overwrites.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::Value;
use support::server::*;

/// A check's answer without what differs from one asking to the next.
fn answer_of(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("checked_at");
        o.remove("request_id");
    }
    v
}

async fn check(c: &reqwest::Client, s: &Server, body: &Value) -> Value {
    let resp = c
        .post(format!("{}/api/v1/checks", s.url))
        .bearer_auth(ADMIN)
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    answer_of(resp.json().await.unwrap())
}

async fn json_of(c: &reqwest::Client, s: &Server, path: &str) -> Value {
    let resp = get_as(c, s, ADMIN, path).await;
    assert_eq!(resp.status().as_u16(), 200, "{path}");
    resp.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_load_restores_to_the_same_answers() {
    let site = Site::new();
    site.reconcile();
    let server = site.serve();
    let c = client(&server);
    // The hub holds a recipients list and a finished batch.
    let list = accepted_rows(&site, &["41", "51"]);
    let (status, body) = put_list(&c, &server, ADMIN, list).await;
    assert_eq!(status, 200, "{body}");
    let resp = c
        .post(format!("{}/api/v1/batches?file_name=郑州.csv", server.url))
        .bearer_auth(ADMIN)
        .header("content-type", "text/csv")
        .body(rows_of(&site, &["41"]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let batch: Value = resp.json().await.unwrap();
    let batch = batch["batch_id"].as_str().unwrap().to_owned();
    assert_eq!(
        wait_batch(&c, &server, ADMIN, &batch).await["status"],
        "done"
    );

    // Checks keep arriving (each one an audit entry) while the backup is taken.
    let bodies: Vec<Value> = bodies(&site)
        .into_iter()
        .map(|(_, b)| b)
        .filter(|b| {
            let r = b["region_code"].as_str().unwrap();
            r.starts_with("41") || r.starts_with("51")
        })
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let during = Arc::new(AtomicUsize::new(0));
    let load = {
        let (c, url, bodies, stop, during) = (
            c.clone(),
            server.url.clone(),
            bodies.clone(),
            stop.clone(),
            during.clone(),
        );
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let r = c
                    .post(format!("{url}/api/v1/checks"))
                    .bearer_auth(ADMIN)
                    .json(&bodies[i % bodies.len()])
                    .send()
                    .await;
                if r.is_ok_and(|r| r.status().is_success()) {
                    during.fetch_add(1, Ordering::Relaxed);
                }
                i += 1;
            }
        })
    };
    while during.load(Ordering::Relaxed) < 5 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (config, to) = (site.p("hedui.toml"), site.p("backup"));
    let out =
        tokio::task::spawn_blocking(move || hedui(&["backup", "--config", &config, "--to", &to]))
            .await
            .unwrap();
    let at_end = during.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("备份完成") && said.contains("chain intact"),
        "{said}"
    );
    assert!(at_end > 5, "checks ran during the backup");
    // The backup on its own verifies, as a copy on other media would.
    let verify = hedui(&["audit", "verify", "--state", &site.p("backup/state")]);
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    for f in [
        "backup.json",
        "state/hedui.db",
        "state/audit.key",
        "state/audit.anchor",
    ] {
        assert!(site.dir.path().join("backup").join(f).is_file(), "{f}");
    }
    let key = site.dir.path().join("backup/state/audit.key");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).unwrap().permissions())
            & 0o777,
        0o600
    );
    // Its copy of the lake is the owner's alone, whatever the umask.
    let part = walk(&site.dir.path().join("backup/lake"))
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "parquet"))
        .expect("a snapshot file");
    assert_eq!(mode(&part), 0o600, "{}", part.display());
    assert_eq!(mode(&site.dir.path().join("backup/state/hedui.db")), 0o600);
    assert_eq!(mode(&site.dir.path().join("backup")), 0o700);
    // Not inside what it copies; not when the lake is missing (an unmounted volume).
    for (to, says, lands) in [
        ("state/jobs/bk", "位于状态目录", "state/jobs/bk"),
        ("lake/sources/bk", "位于数据湖", "lake/sources/bk"),
        ("nothere/../state/bk", "位于状态目录", "state/bk"),
        ("nothere/../lake/bk", "位于数据湖", "lake/bk"),
    ] {
        let out = hedui(&[
            "backup",
            "--config",
            &site.p("hedui.toml"),
            "--to",
            &site.p(to),
        ]);
        assert_eq!(out.status.code(), Some(2), "{to}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(says), "{to}");
        assert!(
            !site.dir.path().join(lands).exists(),
            "nothing written: {to}"
        );
    }
    let cfg = std::fs::read_to_string(site.p("hedui.toml")).unwrap();
    std::fs::write(
        site.p("unmounted.toml"),
        cfg.replacen("url = \"lake\"", "url = \"not-mounted/lake\"", 1),
    )
    .unwrap();
    let out = hedui(&[
        "backup",
        "--config",
        &site.p("unmounted.toml"),
        "--to",
        &site.p("bk-nolake"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--without-lake"));
    // A second backup into the same folder is refused: nothing is overwritten.
    let again = hedui(&[
        "backup",
        "--config",
        &site.p("hedui.toml"),
        "--to",
        &site.p("backup"),
    ]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("不是空的"));

    // Restored into other places: another lake, state and key volume.
    let cfg = std::fs::read_to_string(site.p("hedui.toml")).unwrap();
    let moved = cfg.replacen(
        "[lake]\nurl = \"lake\"\n[state]\npath = \"state\"\n",
        "[lake]\nurl = \"lake2\"\n[state]\npath = \"state2\"\naudit_key = \"keys2/audit.key\"\naudit_anchor = \"keys2/audit.anchor\"\n",
        1,
    );
    assert_ne!(moved, cfg);
    std::fs::write(site.p("restored.toml"), moved).unwrap();
    // A damaged backup (a snapshot file lost): refused before anything is written, so
    // the good one restores after it.
    copy_dir(
        &site.dir.path().join("backup"),
        &site.dir.path().join("damaged"),
    );
    let lost = walk(&site.dir.path().join("damaged/lake"))
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "parquet"))
        .unwrap();
    std::fs::remove_file(&lost).unwrap();
    let out = restore_from(&site, "damaged");
    // Unusable input: exit 2, said in Chinese first.
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("不是一份完整的备份") && said.contains("does not hold it"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for left in [
        "state2/hedui.db",
        "keys2/audit.key",
        "keys2/audit.anchor",
        "lake2/sources",
    ] {
        assert!(
            !site.dir.path().join(left).exists(),
            "a failed restore left {left}"
        );
    }
    // A description whose state folder is not the database's: refused, nothing left.
    for said in ["/", "state"] {
        let mut d: serde_json::Value =
            serde_json::from_slice(&std::fs::read(site.p("damaged/backup.json")).unwrap()).unwrap();
        d["state_path"] = serde_json::json!(said);
        d.as_object_mut()
            .unwrap()
            .remove("state_path_as_configured");
        copy_dir(
            &site.dir.path().join("backup"),
            &site.dir.path().join("tampered"),
        );
        std::fs::write(
            site.p("tampered/backup.json"),
            serde_json::to_vec(&d).unwrap(),
        )
        .unwrap();
        let out = restore_from(&site, "tampered");
        assert_eq!(out.status.code(), Some(2), "{said}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("不符") || err.contains("绝对路径"),
            "{said}: {err}"
        );
        for left in ["state2/hedui.db", "keys2/audit.key", "lake2/sources"] {
            assert!(
                !site.dir.path().join(left).exists(),
                "{said}: a refused restore left {left}"
            );
        }
        std::fs::remove_dir_all(site.p("tampered")).unwrap();
    }
    // A journal left in the target would be replayed into the restored database.
    std::fs::create_dir_all(site.p("state2")).unwrap();
    std::fs::write(site.p("state2/hedui.db-wal"), b"left over").unwrap();
    let out = restore_from(&site, "backup");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("hedui.db-wal"));
    std::fs::remove_file(site.p("state2/hedui.db-wal")).unwrap();
    let restored = restore_from(&site, "backup");
    let said = String::from_utf8_lossy(&restored.stdout).into_owned();
    assert_eq!(
        restored.status.code(),
        Some(0),
        "{said}{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    assert!(
        said.contains("恢复完成") && said.contains("chain intact"),
        "{said}"
    );
    assert!(
        !said.contains("warning"),
        "a whole backup holds every file it names: {said}"
    );
    let verify = hedui(&["audit", "verify", "--config", &site.p("restored.toml")]);
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    // Its own files are named in their new place; the log's entries are as written.
    let db = rusqlite::Connection::open(site.p("state2/hedui.db")).unwrap();
    for (what, sql) in [
        ("list", "SELECT path FROM recipient_lists"),
        ("job", "SELECT input FROM jobs WHERE kind = 'batch'"),
    ] {
        let paths: Vec<String> = db
            .prepare(sql)
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(!paths.is_empty(), "{what}");
        for p in paths {
            assert!(p.starts_with(&site.p("state2/")), "{what}: {p}");
            assert!(std::path::Path::new(&p).is_file(), "{what}: {p}");
        }
    }
    drop(db);
    // Restoring again over it is refused.
    let twice = restore_from(&site, "backup");
    assert_eq!(twice.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&twice.stderr).contains("已存在"));
    // Not a backup: said so.
    std::fs::create_dir_all(site.p("not-a-backup")).unwrap();
    let not = restore_from(&site, "not-a-backup");
    assert_eq!(not.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&not.stderr).contains("不是一份完整的备份"));

    // The same answers from the restored hub.
    let second = site.serve_with("restored.toml", &[]);
    let c2 = client(&second);
    for body in bodies.iter().take(10) {
        assert_eq!(
            check(&c, &server, body).await,
            check(&c2, &second, body).await
        );
    }
    let results = |s: &Server, c: &reqwest::Client| {
        let (c, url) = (
            c.clone(),
            format!("{}/api/v1/batches/{batch}/results", s.url),
        );
        async move {
            c.get(url)
                .bearer_auth(ADMIN)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let (a, b) = (results(&server, &c).await, results(&second, &c2).await);
    assert!(a.lines().count() > 5);
    assert_eq!(a, b, "the batch's results");
    assert_eq!(
        json_of(&c, &server, "/api/v1/recipients?limit=1000").await,
        json_of(&c2, &second, "/api/v1/recipients?limit=1000").await
    );
    assert_eq!(
        json_of(&c, &server, "/api/v1/reconciliations").await,
        json_of(&c2, &second, "/api/v1/reconciliations").await
    );
    // And it goes on: a reconciliation of the restored list (its file moved with it).
    let resp = c2
        .post(format!("{}/api/v1/reconciliations", second.url))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let mut done = false;
    for _ in 0..300 {
        let runs = json_of(&c2, &second, "/api/v1/reconciliations").await;
        let newest = &runs["reconciliations"][0];
        if newest["id"] == 2 && newest["status"] == "done" {
            done = true;
            break;
        }
        assert_ne!(newest["status"], "failed", "{runs}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(done, "the restored hub reconciles its list");
    drop(second);
    let verify = hedui(&["audit", "verify", "--config", &site.p("restored.toml")]);
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().map(Result::unwrap) {
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn mode(p: &std::path::Path) -> u32 {
    std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions()) & 0o777
}

/// `hedui restore` of the site's folder `from` into the places of `restored.toml`.
fn restore_from(site: &Site, from: &str) -> std::process::Output {
    hedui(&[
        "restore",
        "--from",
        &site.p(from),
        "--config",
        &site.p("restored.toml"),
    ])
}
