//! Request bodies bounded by time: a client that starts a body and stalls (or drips it)
//! is answered 408 instead of holding its connection and the bytes read so far.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use futures::StreamExt;

use super::app::AppState;

/// Why a body stopped: no piece arrived for the idle timeout, or the whole took too long.
#[derive(Debug, thiserror::Error)]
#[error("request body stalled: {0}")]
pub struct Stalled(&'static str);

/// Every request's body, wrapped so that reading it fails with [`Stalled`] after
/// `[server] body_idle_timeout_s` without a piece or `body_timeout_s` in all.
pub async fn bound(State(app): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let t = app.config.timeouts;
    next.run(req.map(|b| timed(b, t.body_idle, t.body))).await
}

fn timed(body: Body, idle: Duration, whole: Duration) -> Body {
    let deadline = tokio::time::Instant::now() + whole;
    let pieces = futures::stream::unfold(Some(body.into_data_stream()), move |s| async move {
        let mut s = s?;
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let (wait, why) = if left < idle {
            (left, "body_timeout_s")
        } else {
            (idle, "body_idle_timeout_s")
        };
        match tokio::time::timeout(wait, s.next()).await {
            Ok(Some(Ok(piece))) => Some((Ok(piece), Some(s))),
            Ok(Some(Err(e))) => Some((Err(axum::BoxError::from(e)), None)),
            Ok(None) => None,
            Err(_) => Some((Err(axum::BoxError::from(Stalled(why))), None)),
        }
    });
    Body::from_stream(pieces)
}

/// Whether a body extractor failed because the body stalled, and which limit it hit.
pub fn stalled(e: &BytesRejection) -> Option<&'static str> {
    stalled_error(e)
}

/// Whether reading a body failed because it stalled (`e` or one of its causes), and
/// which limit it hit.
pub fn stalled_error(e: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(s) = c.downcast_ref::<Stalled>() {
            return Some(s.0);
        }
        cause = c.source();
    }
    None
}
