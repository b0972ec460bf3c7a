//! A run the user interrupts (Ctrl-C, SIGTERM) from the terminal: the server's shutdown
//! and the interruptible commands wait for the same signals.

use crate::error::Error;

/// Completes on SIGTERM or Ctrl-C.
pub async fn interrupted() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// `work`, or [`Error::Interrupted`] once the user interrupts it (Ctrl-C, SIGTERM): the
/// work is dropped with all it holds — its temporary folder, its output files not yet
/// published — so nothing it wrote (ID numbers among it) is left behind.
pub async fn interruptible<T>(
    work: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    tokio::select! {
        done = work => done,
        _ = interrupted() => Err(Error::Interrupted),
    }
}
