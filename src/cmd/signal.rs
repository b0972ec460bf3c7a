//! A run the user interrupts (Ctrl-C, SIGTERM) from the terminal: the server's shutdown
//! and the interruptible commands wait for the same signals.

use crate::error::Error;

/// The interrupting signals, listened to from the moment this is made (so that a
/// signal arriving while a run is still starting is not the default end of the process).
struct Interrupts {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
}

impl Interrupts {
    fn listen() -> Interrupts {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Interrupts {
                term: signal(SignalKind::terminate()).ok(),
                int: signal(SignalKind::interrupt()).ok(),
            }
        }
        #[cfg(not(unix))]
        Interrupts {}
    }

    async fn wait(&mut self) {
        #[cfg(unix)]
        {
            let term = async {
                match &mut self.term {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let int = async {
                match &mut self.int {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = term => {},
                _ = int => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn interrupted() {
    Interrupts::listen().wait().await;
}

/// `work`, or [`Error::Interrupted`] once the user interrupts it (Ctrl-C, SIGTERM): the
/// work is dropped with all it holds — its temporary folder, its output files not yet
/// published — so nothing it wrote (ID numbers among it) is left behind. The signals are
/// listened to before the work starts.
pub async fn interruptible<T>(
    work: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    let mut interrupts = Interrupts::listen();
    tokio::select! {
        biased;
        _ = interrupts.wait() => Err(Error::Interrupted),
        done = work => done,
    }
}
