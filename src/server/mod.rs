//! `hedui serve` (SPEC §8, §10): the HTTPS API for case-management systems, on the same
//! engine, pipelines and lake as `check`.
//!
//! - [`config`]: `[server]` and `[[token]]`, validated before binding.
//! - [`app`]: what every request shares ([`AppState`]).
//! - [`auth`]: bearer tokens by SHA-256, compared in constant time; [`caller`]: the one
//!   extractor of a request's caller, its role checked for the route.
//! - [`routes`]: the route table; [`handlers`]: one file per group of routes;
//!   [`pages`]: the staff pages under `/ui/` (sign-in, batches, reports).
//! - [`body`]: request bodies bounded by time (408); [`upload`]: uploaded files streamed
//!   to disk (a raw body or a multipart form's `file`);
//! - [`error`]: the JSON error shape; [`limit`]: requests per minute per token;
//!   [`metrics`]: Prometheus counters and histograms.
//! - [`checker`]: the queue of one-household checks; [`jobs`]: the jobs' files and ids;
//!   [`work`]: the check workers, the job worker, the schedule and retention.

pub mod app;
pub mod auth;
pub mod body;
pub mod caller;
pub mod checker;
pub mod config;
pub mod cron;
pub mod error;
pub mod handlers;
pub mod jobs;
pub mod limit;
pub mod metrics;
pub mod pages;
pub mod routes;
pub mod schema;
pub mod upload;
pub mod who;
pub mod work;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

pub use app::AppState;

pub use config::MAX_CONNECTIONS;

/// Serves `app` on `listener` (TLS when `tls` is given: each connection gets the
/// certificate current when it arrives) until `shutdown` completes; then stops accepting
/// and lets the connections in progress finish.
pub async fn run(
    listener: TcpListener,
    tls: Option<Arc<Tls>>,
    app: Arc<AppState>,
    shutdown: impl Future<Output = ()>,
) {
    let timeouts = app.config.timeouts;
    let app_per_ip = app.config.max_connections_per_ip;
    let router = routes::router(app);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let per_ip = PerIp::new(app_per_ip);
    // Tells connections to finish: the request in progress is answered, idle
    // keep-alive connections are closed.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors (or another passing failure): retrying at
                    // once would spin a core; wait for connections to close.
                    tracing::warn!(error = %e, "accepting a connection failed; retrying in 100 ms");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        // One address holds at most its share: the rest are closed as they arrive.
        let Some(held) = per_ip.admit(peer.ip()) else {
            drop(tcp);
            continue;
        };
        let router = router.clone();
        let acceptor = tls
            .as_ref()
            .map(|t| tokio_rustls::TlsAcceptor::from(t.current()));
        let stop = stop_rx.clone();
        tasks.spawn(async move {
            let (_permit, _held) = (permit, held);
            match acceptor {
                Some(a) => {
                    // A client that does not complete the handshake in time ends here.
                    let Ok(Ok(stream)) = tokio::time::timeout(timeouts.header, a.accept(tcp)).await
                    else {
                        return;
                    };
                    serve_connection(stream, router, stop, timeouts.header).await;
                }
                None => serve_connection(tcp, router, stop, timeouts.header).await,
            }
        });
    }
    // No new connections; those in progress finish their request (bounded by the
    // caller's patience), idle ones close.
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
}

/// Connections held per client address, bounded.
#[derive(Clone)]
struct PerIp {
    max: usize,
    held: Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>,
}

/// One connection of an address, given back when dropped.
struct Held {
    ip: std::net::IpAddr,
    of: PerIp,
}

impl PerIp {
    fn new(max: usize) -> PerIp {
        PerIp {
            max,
            held: Arc::default(),
        }
    }

    /// A connection for `ip`, unless it holds its share already.
    fn admit(&self, ip: std::net::IpAddr) -> Option<Held> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let n = held.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(Held {
            ip,
            of: self.clone(),
        })
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut held = self.of.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = held.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.ip);
            }
        }
    }
}

/// How long the accept loop waits after a failed accept.
const ACCEPT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(100);

/// Serves one HTTP/1.1 connection until it ends, or until `stop` says so: then the
/// request in progress is answered and the connection closed. Each request head must
/// arrive within `header_timeout` of the server waiting for it — the first, and each
/// next one on a kept-alive connection — or the connection is closed. (HTTP/1 only:
/// hyper's protocol-detecting builder reads the first bytes with no timer at all.)
async fn serve_connection<I>(
    io: I,
    router: axum::Router,
    mut stop: tokio::sync::watch::Receiver<bool>,
    header_timeout: std::time::Duration,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper_util::service::TowerToHyperService::new(router);
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(hyper_util::rt::TokioIo::new(io), svc);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = stop.wait_for(|s| *s) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

/// The server's certificate and key: read from their files at start, and again on
/// [`Tls::reload`] (SIGHUP) — a renewed certificate is served to new connections without
/// a restart; one that does not load leaves the current one in place.
pub struct Tls {
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
    current: std::sync::RwLock<Arc<rustls::ServerConfig>>,
}

impl Tls {
    /// The certificate chain `cert` and its key `key` (PEM files), read now.
    pub fn load(cert: &std::path::Path, key: &std::path::Path) -> Result<Tls, String> {
        Ok(Tls {
            current: std::sync::RwLock::new(tls_config(cert, key)?),
            cert: cert.to_owned(),
            key: key.to_owned(),
        })
    }

    /// The configuration new connections get.
    pub fn current(&self) -> Arc<rustls::ServerConfig> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Reads the files again; on success new connections get the new certificate, on
    /// failure the current one stays and the reason is returned.
    pub fn reload(&self) -> Result<(), String> {
        let fresh = tls_config(&self.cert, &self.key)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }
}

/// The rustls server configuration for a certificate chain and key (PEM files).
pub fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<Arc<rustls::ServerConfig>, String> {
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
    };
    let certs: Vec<_> = rustls_pemfile::certs(&mut read(cert)?.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{} holds no usable certificate: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no certificate", cert.display()));
    }
    let key_der = rustls_pemfile::private_key(&mut read(key)?.as_slice())
        .map_err(|e| format!("{} holds no usable key: {e}", key.display()))?
        .ok_or_else(|| format!("{} holds no private key", key.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_no_client_auth()
    .with_single_cert(certs, key_der)
    .map_err(|e| format!("{} / {}: {e}", cert.display(), key.display()))?;
    Ok(Arc::new(config))
}
