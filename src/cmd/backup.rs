//! `hedui backup --config F --to DIR` and `hedui restore --from DIR --config F`.
//!
//! A backup is a folder:
//!
//! ```text
//! DIR/backup.json          what it holds (written last: a folder without it is not a backup)
//! DIR/state/audit.key      the audit key (0600) and the anchor of the log's end
//! DIR/state/audit.anchor
//! DIR/state/hedui.db       the state database, by SQLite's online backup
//! DIR/state/jobs/…         the jobs' inputs and results, the hub's recipients lists
//! DIR/state/recipients/…
//! DIR/lake/sources/…       every committed snapshot: its files, then its manifest
//! ```
//!
//! It is taken while the server runs. The order makes the copy consistent: the key and
//! the anchor first, then the database in one read transaction (so it holds at least
//! every entry the anchor names, and `hedui audit verify --state DIR/state` passes on
//! it), then the files the database names, then the lake. A restore puts each part where
//! the config says — places that must be empty — moves the database's paths of its own
//! files to the new state folder, and verifies the chain before it says it is done.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::cli::{BackupArgs, RestoreArgs};
use crate::config::Deployment;
use crate::error::Error;
use crate::lake::store::Lake;
use crate::state::{AuditFiles, State, DB_FILE};

/// The backup's own description.
const DESCRIPTION: &str = "backup.json";

/// The state folder's parts a backup copies besides the database.
const STATE_FOLDERS: [&str; 2] = ["jobs", "recipients"];

/// Takes a backup; the summary to print.
pub async fn backup(args: &BackupArgs) -> Result<String, Error> {
    let d = Deployment::load(&args.config)?;
    let audit = AuditFiles::of(&d);
    let to = args.to.clone();
    if to.exists()
        && std::fs::read_dir(&to)
            .map(|mut e| e.next().is_some())
            .unwrap_or(true)
    {
        return Err(Error::Usage(format!(
            "备份目录 {} 已存在且不是空的：请指定一个新目录，备份不会覆盖已有的文件（the backup folder exists and is not empty: name a new one）",
            to.display()
        )));
    }
    // Not inside what it copies: the copy would copy itself, or put the key in the lake.
    let mut inside: Vec<(&str, PathBuf)> = vec![("状态目录", d.state_path.clone())];
    if let crate::config::LakeLocation::Local(dir) = &d.lake.location {
        inside.push(("数据湖", dir.clone()));
    }
    for f in [&audit.key, &audit.anchor] {
        if let Some(dir) = f.parent() {
            inside.push(("审计密钥所在目录", dir.to_owned()));
        }
    }
    let target = resolved(&to);
    for (what, dir) in inside {
        if target.starts_with(resolved(&dir)) {
            return Err(Error::Usage(format!(
                "备份目录 {} 位于{what} {} 之内：请把备份放在它之外（最好在另一块磁盘上）（the backup folder lies inside what it copies: put it elsewhere）",
                to.display(),
                dir.display()
            )));
        }
    }
    // The lake is looked for before anything is written.
    let lake = match Lake::open_existing(&d.lake).await {
        Ok(lake) => Some(lake),
        Err(crate::lake::LakeError::NotFound { .. }) if args.without_lake => None,
        Err(crate::lake::LakeError::NotFound { url, why }) => {
            return Err(Error::Usage(format!(
                "找不到数据湖 {url}（{why}）：数据湖所在的磁盘是否已挂载？若这是尚未拉取过数据的新部署，请加 --without-lake（no lake there: is its volume mounted? for a new installation with nothing pulled yet, add --without-lake）"
            )))
        }
        Err(e) => return Err(e.into()),
    };
    private_dir(&to)?;
    // A backup that does not finish leaves no half of itself (the next night's, into a
    // folder of the same name, would be refused).
    let mut undo = Cleanup(vec![to.clone()]);
    #[cfg(unix)]
    std::fs::set_permissions(&to, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .map_err(output_err(&to))?;
    let state_to = to.join("state");
    private_dir(&state_to)?;
    // The key and the anchor before the database: the copy then holds every entry the
    // anchor names.
    copy_private(&audit.key, &state_to.join(crate::state::db::KEY_FILE))?;
    copy_private(&audit.anchor, &state_to.join(crate::state::db::ANCHOR_FILE))?;
    let (from, db_to) = (d.state_path.clone(), state_to.join(DB_FILE));
    let (copied, files, bytes) = tokio::task::spawn_blocking(move || {
        let copied = crate::state::backup::backup_database(&from, &db_to)?;
        #[cfg(unix)]
        std::fs::set_permissions(&db_to, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .map_err(output_err(&db_to))?;
        let mut n = (0, 0);
        for folder in STATE_FOLDERS {
            let (f, b) = copy_tree(&from.join(folder), &db_to.with_file_name(folder), 0)?;
            n = (n.0 + f, n.1 + b);
        }
        Ok::<_, Error>((copied, n.0, n.1))
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))??;
    let lake = match lake {
        Some(lake) => Some(lake.export_to(&to.join("lake")).await?),
        None => None,
    };
    // The copy verifies before the backup says it is one.
    let verified = verify(&state_to, AuditFiles::beside(&state_to))?;
    let lake_json = lake.as_ref().map(|l| {
        json!({
            "url": d.lake.url,
            "sources": l.sources.iter().map(|(s, seq)| (s.clone(), json!(seq))).collect::<serde_json::Map<_, _>>(),
            "manifests": l.manifests,
            "files": l.files,
            "bytes": l.bytes,
        })
    });
    let description = json!({
        "hedui": env!("CARGO_PKG_VERSION"),
        "made_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "config": d.file.display().to_string(),
        "state_path": std::path::absolute(&d.state_path)
            .unwrap_or_else(|_| d.state_path.clone())
            .display()
            .to_string(),
        // As the config wrote it (a server started with a relative config keeps its
        // files' paths in that form).
        "state_path_as_configured": d.state_path.display().to_string(),
        "schema": copied.schema,
        "audit_entries": verified,
        "state_files": files,
        "state_bytes": bytes,
        "lake": lake_json,
    });
    write_file(
        &to.join(DESCRIPTION),
        serde_json::to_string_pretty(&description)
            .map_err(|e| Error::Internal(e.to_string()))?
            .as_bytes(),
    )?;
    undo.0.clear();
    Ok(format!(
        "备份完成（backup complete）: {}: state schema {}, {verified} audit entries (chain intact), {files} files of jobs and lists; {}",
        to.display(),
        copied.schema,
        match &lake {
            Some(l) => format!(
                "lake: {} sources, {} snapshots, {} files, {} MB",
                l.sources.len(),
                l.manifests,
                l.files,
                l.bytes / 1_000_000
            ),
            None => "no lake yet (--without-lake)".to_owned(),
        }
    ))
}

/// Restores a backup into the places the config names; the summary to print. Nothing
/// is written until the backup is found whole (its description, its database, every
/// file its manifests name) and its chain verified; the state is assembled beside its
/// place and moved in last; a restore that fails removes what it wrote.
pub async fn restore(args: &RestoreArgs) -> Result<String, Error> {
    let d = Deployment::load(&args.config)?;
    let audit = AuditFiles::of(&d);
    let from = args.from.clone();
    let not_backup = |zh: &str, en: &str| {
        Error::Usage(format!(
            "{} 不是一份完整的备份（{zh}），未做任何恢复：请指定 hedui backup 做成的目录（not a complete backup: {en}; nothing was restored）",
            from.display()
        ))
    };
    let description: serde_json::Value = std::fs::read(from.join(DESCRIPTION))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| not_backup("没有可读的 backup.json", "no readable backup.json"))?;
    let old_state = match description["state_path"].as_str() {
        Some(p) if Path::new(p).is_absolute() => PathBuf::from(p),
        _ => {
            return Err(not_backup(
                "backup.json 没有写明原状态目录的绝对路径",
                "backup.json names no absolute state_path",
            ))
        }
    };
    let as_configured = description["state_path_as_configured"]
        .as_str()
        .filter(|p| !p.trim().is_empty() && Path::new(p) != old_state)
        .map(PathBuf::from);
    let state_from = from.join("state");
    if !state_from.join(DB_FILE).is_file() {
        return Err(not_backup("没有状态数据库", "it holds no state database"));
    }
    // The backup's own chain, against its own anchor, before anything is written.
    verify(&state_from, AuditFiles::beside(&state_from))?;
    refuse_used(&d, &audit)?;
    let lake = Lake::open(&d.lake)?;
    if lake.has_commits().await? {
        return Err(Error::Usage(format!(
            "数据湖 {} 中已有快照：恢复不会覆盖现有数据，请指定一个空的数据湖位置；如果是上一次被中断的恢复留下的，请删除它后重试（the lake holds snapshots already: restore into an empty one, or remove what an interrupted restore left）",
            d.lake.url
        )));
    }
    // The places of the key and the anchor can be made before anything is copied.
    for f in [&audit.key, &audit.anchor] {
        if let Some(dir) = f.parent() {
            private_dir(dir)?;
        }
    }
    // The state is assembled beside its place (same disk), then moved in.
    let name = d
        .state_path
        .file_name()
        .map_or_else(|| "state".into(), |n| n.to_string_lossy().into_owned());
    let staging = d
        .state_path
        .with_file_name(format!(".{name}.restoring-{}", std::process::id()));
    // What an interrupted restore left beside it (a whole copy of a database) goes.
    if let Some(parent) = staging.parent() {
        let stale = format!(".{name}.restoring-");
        for e in std::fs::read_dir(parent).into_iter().flatten().flatten() {
            if e.file_name().to_string_lossy().starts_with(&stale) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let cleanup = Cleanup(vec![staging.clone()]);
    private_dir(&staging)?;
    // The files' paths are written absolute, so that they hold from any folder.
    let dir = std::path::absolute(&d.state_path).unwrap_or_else(|_| d.state_path.clone());
    let (src, at) = (state_from.clone(), staging.clone());
    let (files, moved, missing) = tokio::task::spawn_blocking(move || {
        let db = at.join(DB_FILE);
        copy_private(&src.join(DB_FILE), &db)?;
        let mut files = 0;
        for folder in STATE_FOLDERS {
            files += copy_tree(&src.join(folder), &at.join(folder), 0)?.0;
        }
        let olds: Vec<&Path> = std::iter::once(old_state.as_path())
            .chain(as_configured.as_deref())
            .collect();
        let paths = crate::state::backup::relocate(&db, &olds, &dir, &at)?;
        if let Some(stray) = paths.strays.first() {
            return Err(Error::Usage(format!(
                "备份说明中的原状态目录 {} 与数据库中记下的文件位置不符（例如 {stray}）：备份说明可能被改过，未做任何恢复（the backup's state_path does not match the paths its database keeps; nothing was restored）",
                old_state.display(),
            )));
        }
        let (moved, missing) = (paths.moved, paths.missing);
        Ok::<_, Error>((files, moved, missing))
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))??;
    let lake_copied = if from.join("lake").is_dir() {
        // A backup whose manifests or files are missing or damaged is unusable input,
        // refused before anything is written to the lake.
        Some(
            lake.import_from(&from.join("lake"))
                .await
                .map_err(|e| match e {
                    crate::lake::LakeError::BadFile { .. }
                    | crate::lake::LakeError::BadManifest { .. } => {
                        not_backup("数据湖快照缺失或已损坏", &e.to_string())
                    }
                    e => e.into(),
                })?,
        )
    } else {
        None
    };
    // From here a failure also removes what the import wrote.
    let (placed, verified) = match place(&d, &audit, &staging, &state_from).await {
        Ok(v) => v,
        Err(e) => {
            if let Some(l) = &lake_copied {
                lake.remove_objects(&l.written).await;
            }
            return Err(e);
        }
    };
    let mut placed = placed;
    placed.0.clear();
    drop(cleanup);
    let warning = if missing.is_empty() {
        String::new()
    } else {
        format!(
            "\n注意（warning）: {} 个作业或名单文件在备份中没有，相关的批次或名单无法再读取（files the database names that the backup does not hold）: {}",
            missing.len(),
            missing.join(", ")
        )
    };
    Ok(format!(
        "恢复完成（restored）: {} → {}: {verified} audit entries (chain intact), {files} files of jobs and lists ({moved} paths moved to the new state folder); {}{warning}",
        from.display(),
        d.state_path.display(),
        match lake_copied {
            Some(l) => format!(
                "lake {}: {} sources, {} snapshots, {} files",
                d.lake.url,
                l.sources.len(),
                l.manifests,
                l.files
            ),
            None => "the backup holds no lake".to_owned(),
        }
    ))
}

/// Nothing is overwritten: each place a restore writes must be empty.
fn refuse_used(d: &Deployment, audit: &AuditFiles) -> Result<(), Error> {
    let taken = |p: &Path, what: &str| -> Result<(), Error> {
        let used = match std::fs::read_dir(p) {
            Ok(mut entries) => entries.next().is_some(),
            Err(_) => p.exists(),
        };
        if used {
            return Err(Error::Usage(format!(
                "{what} {} 已存在：恢复不会覆盖现有数据。请先把它移走（或在配置中指定新的位置）再恢复（{} exists already: restore never overwrites; move it away first）",
                p.display(),
                p.display()
            )));
        }
        Ok(())
    };
    let db = d.state_path.join(DB_FILE);
    taken(&db, "状态数据库")?;
    // A database's journal left behind would be replayed into the restored one.
    for suffix in ["-wal", "-shm", "-journal"] {
        taken(
            &PathBuf::from(format!("{}{suffix}", db.display())),
            "状态数据库的日志文件",
        )?;
    }
    for folder in STATE_FOLDERS {
        taken(&d.state_path.join(folder), "状态目录中的文件夹")?;
    }
    taken(&audit.key, "审计密钥")?;
    taken(&audit.anchor, "审计锚点")?;
    Ok(())
}

/// Moves the assembled state from `staging` into its place, then writes the key and
/// the anchor, and verifies what is there: the entries of the chain, and what to remove
/// should anything after fail (cleared by the caller once all is done).
async fn place(
    d: &Deployment,
    audit: &AuditFiles,
    staging: &Path,
    state_from: &Path,
) -> Result<(Cleanup, usize), Error> {
    // Moved in: the database and its folders, then the key and the anchor.
    private_dir(&d.state_path)?;
    let mut placed = Cleanup(Vec::new());
    for part in std::iter::once(DB_FILE).chain(STATE_FOLDERS) {
        let (a, b) = (staging.join(part), d.state_path.join(part));
        if a.exists() {
            std::fs::rename(&a, &b).map_err(output_err(&b))?;
            placed.0.push(b);
        }
    }
    for (src, dst) in [
        (crate::state::db::KEY_FILE, &audit.key),
        (crate::state::db::ANCHOR_FILE, &audit.anchor),
    ] {
        if let Some(dir) = dst.parent() {
            private_dir(dir)?;
        }
        copy_private(&state_from.join(src), dst)?;
        placed.0.push(dst.clone());
    }
    // Opened as the server opens it (brought forward to this hedui's schema), its end at
    // its anchor, its chain whole. (Opening makes the database's journal files: removed
    // too if this fails.)
    for suffix in ["-wal", "-shm"] {
        placed.0.push(PathBuf::from(format!(
            "{}{suffix}",
            d.state_path.join(DB_FILE).display()
        )));
    }
    let state = State::open_with(&d.state_path, audit.clone())?;
    state.audit_end_ok()?;
    drop(state);
    let verified = verify(&d.state_path, audit.clone())?;
    Ok((placed, verified))
}

/// Paths removed when dropped (a restore that did not finish), unless emptied first.
struct Cleanup(Vec<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_dir_all(p).or_else(|_| std::fs::remove_file(p));
        }
    }
}

/// The chain of the state in `dir` verified: its entries.
fn verify(dir: &Path, audit: AuditFiles) -> Result<usize, Error> {
    let state = State::open_read_only(dir, audit)?;
    let path = state.path().display().to_string();
    match state.verify_audit()? {
        Ok(n) => Ok(n),
        Err((seq, why)) => Err(Error::AuditBroken { path, seq, why }),
    }
}

fn output_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Output {
        path: path.display().to_string(),
        source,
    }
}

/// `p` with its existing part resolved (links, `..`) and the rest as written: where it
/// is, for comparing, though it may not exist yet.
fn resolved(p: &Path) -> PathBuf {
    use std::path::Component;
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
    // Component by component, as the kernel walks it: each part that exists resolved
    // (links), `..` from what was reached (`new/../state/bk` is inside the state folder).
    let mut cur = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                cur.pop();
            }
            Component::CurDir => {}
            other => {
                cur.push(other);
                if let Ok(real) = cur.canonicalize() {
                    cur = real;
                }
            }
        }
    }
    cur
}

/// Makes folder `dir` (and its parents) readable by the owner only, if it is new.
fn private_dir(dir: &Path) -> Result<(), Error> {
    let mut mk = std::fs::DirBuilder::new();
    mk.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut mk, 0o700);
    mk.create(dir).map_err(output_err(dir))
}

/// Writes `body` to a new file `to`, synced.
fn write_file(to: &Path, body: &[u8]) -> Result<(), Error> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(to).map_err(output_err(to))?;
    std::io::Write::write_all(&mut f, body).map_err(output_err(to))?;
    f.sync_all().map_err(output_err(to))
}

/// Copies file `from` to a new file `to` readable by the owner only; a file that is not
/// there is skipped (a log that never audited has no key yet).
fn copy_private(from: &Path, to: &Path) -> Result<(), Error> {
    match std::fs::read(from) {
        Ok(body) => write_file(to, &body),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::Output {
            path: from.display().to_string(),
            source: e,
        }),
    }
}

/// Copies the folder `from` into `to`, file by file: (files, bytes). Files that vanish
/// meanwhile (retention, a finished upload) are skipped.
fn copy_tree(from: &Path, to: &Path, depth: usize) -> Result<(usize, u64), Error> {
    if depth > 16 {
        return Err(Error::Usage(format!(
            "{} 的文件夹嵌套过深（是否有指向上级目录的链接？）（folders nested too deep: a link to a parent folder?）",
            from.display()
        )));
    }
    let entries = match std::fs::read_dir(from) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, 0)),
        Err(e) => return Err(output_err(from)(e)),
    };
    private_dir(to)?;
    let (mut files, mut bytes) = (0, 0);
    for entry in entries.flatten() {
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        // A link is copied as what it points to (an operator may have moved a folder).
        match std::fs::metadata(&src) {
            Ok(t) if t.is_dir() => {
                let (f, b) = copy_tree(&src, &dst, depth + 1)?;
                files += f;
                bytes += b;
            }
            // Streamed (a batch's results can be large), then the owner's only.
            Ok(t) if t.is_file() => match std::fs::copy(&src, &dst) {
                Ok(n) => {
                    #[cfg(unix)]
                    std::fs::set_permissions(
                        &dst,
                        std::os::unix::fs::PermissionsExt::from_mode(0o600),
                    )
                    .map_err(output_err(&dst))?;
                    files += 1;
                    bytes += n;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(output_err(&src)(e)),
            },
            _ => {}
        }
    }
    Ok((files, bytes))
}
