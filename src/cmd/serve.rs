//! `hedui serve --config F`: validate the config, open the lake and the state database,
//! bind, and serve until SIGTERM or Ctrl-C.

use std::sync::{Arc, Mutex};

use crate::cli::ServeArgs;
use crate::config::Deployment;
use crate::error::Error;
use crate::policy::Policy;
use crate::server::app::stopped;
use crate::server::config::ServerConfig;
use crate::server::{run, work, AppState, Tls};
use crate::state::State;

/// Runs the server until it is told to stop.
pub async fn execute(args: &ServeArgs) -> Result<(), Error> {
    // SIGHUP (`systemctl reload`) is listened to before anything else: its default
    // would end the process, and systemd does not restart one that a SIGHUP ended.
    let hangups = hangups();
    let d = Deployment::load(&args.config)?;
    let config = ServerConfig::from_deployment(&d)?;
    let policy = Policy::load(&config.policy)?;
    let input = crate::sources::SourceInput::of_deployment(&d, None);
    let setup = crate::check::open(&input, d.memory_limit, d.cluster.as_ref()).await?;
    let mut state = State::open_with(&d.state_path, crate::state::AuditFiles::of(&d))?;
    // A log that does not reach its anchor (entries removed from its end) is not served
    // over: the first entry appended would make the shortened log verify again.
    state.audit_end_ok()?;
    let tls = match &config.tls {
        Some((cert, key)) => Some(Arc::new(Tls::load(cert, key).map_err(|why| {
            Error::Config(crate::config::ConfigError {
                file: d.file.display().to_string(),
                key: "server.tls_cert".into(),
                why,
            })
        })?)),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| Error::Usage(format!("cannot listen on {}: {e}", config.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Internal(format!("cannot read the bound address: {e}")))?;
    // Jobs a previous process left running are queued again (or failed after
    // MAX_ATTEMPTS interruptions) before any new one is taken.
    let requeued = state.requeue_interrupted()?;
    for id in &requeued.queued {
        tracing::warn!(job = %id, "job interrupted by the last stop: queued again");
    }
    for id in &requeued.failed {
        tracing::error!(job = %id, "job interrupted too many times: failed");
    }
    // Uploads a killed server was receiving are gone with it.
    crate::server::upload::sweep(&config.state_dir);
    // Said once the state is as it will be served (interrupted jobs queued again,
    // leftover uploads gone): a client that reads this line sees that state.
    eprintln!(
        "hedui: listening on {}://{addr}",
        if tls.is_some() { "https" } else { "http" }
    );
    let grace = config.shutdown_grace;
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    let app = Arc::new(AppState {
        limiter: crate::server::limit::RateLimiter::new(config.requests_per_minute),
        metrics: Default::default(),
        jobs: Default::default(),
        checks: Default::default(),
        sources_label: input.label(),
        deployment: d.clone(),
        config,
        policy,
        setup,
        state: Mutex::new(state),
        disk_full: Default::default(),
        reading: tokio::sync::Semaphore::new(cores),
    });
    // One shutdown for the server and every worker: SIGTERM or Ctrl-C.
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let rt = tokio::runtime::Handle::current();
    work::jobs::start_worker(app.clone(), rt.clone(), shutdown.clone())?;
    // One check worker per core: more would only take turns on the same cores.
    let (drained_tx, drained) = tokio::sync::watch::channel(false);
    work::checks::start(app.clone(), rt, cores, drained)?;
    let schedule = tokio::spawn(work::schedule::run_schedule(app.clone(), shutdown.clone()));
    let retention = tokio::spawn(work::schedule::run_retention(app.clone(), shutdown.clone()));
    let signal = tokio::spawn(async move {
        super::signal::interrupted().await;
        let _ = stop.send(true);
    });
    let reload = tokio::spawn(reload_on_hangup(hangups, tls.clone()));
    let mut server_stop = shutdown.clone();
    run(listener, tls, app.clone(), async move {
        stopped(&mut server_stop).await
    })
    .await;
    signal.abort();
    reload.abort();
    let _ = drained_tx.send(true);
    // No new requests; the running job finishes or is queued again.
    work::jobs::stop_worker(&app, grace).await;
    let _ = tokio::join!(schedule, retention);
    eprintln!("hedui: stopped");
    Ok(())
}

/// The SIGHUPs of the process, from now on.
#[cfg(unix)]
fn hangups() -> Option<tokio::signal::unix::Signal> {
    use tokio::signal::unix::{signal, SignalKind};
    signal(SignalKind::hangup()).ok()
}

#[cfg(not(unix))]
fn hangups() -> Option<()> {
    None
}

/// Reads the certificate and key again on each SIGHUP (`systemctl reload hedui`): new
/// connections get the renewed certificate, those open keep theirs; a pair that does not
/// load is logged and the current one kept. Without TLS there is nothing to reload: the
/// signal is logged and ignored.
#[cfg(unix)]
async fn reload_on_hangup(hup: Option<tokio::signal::unix::Signal>, tls: Option<Arc<Tls>>) {
    let Some(mut hup) = hup else {
        tracing::warn!("SIGHUP cannot be listened to: the certificate is read only at start");
        return;
    };
    while hup.recv().await.is_some() {
        let Some(tls) = &tls else {
            tracing::info!("SIGHUP: this server runs without TLS, nothing to reload");
            eprintln!("hedui: SIGHUP ignored (no TLS certificate to reload)");
            continue;
        };
        match tls.reload() {
            Ok(()) => {
                tracing::info!("certificate reloaded (SIGHUP): new connections get it");
                eprintln!("hedui: certificate reloaded");
            }
            Err(why) => {
                tracing::error!(error = %why, "the certificate could not be reloaded; the one in use is kept");
                eprintln!("hedui: 证书重新加载失败，继续使用当前证书：{why}（the certificate could not be reloaded; the current one is kept）");
            }
        }
    }
}

#[cfg(not(unix))]
async fn reload_on_hangup(_: Option<()>, _: Option<Arc<Tls>>) {}
