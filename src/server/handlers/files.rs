//! Output files as answers: JSON Lines streamed line by line (edited on the way, e.g.
//! masked for staff) and HTML reports.

use std::path::{Path, PathBuf};

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::server::error::ApiError;

/// Streams a JSON Lines file, each line passed through `edit` (masking for staff).
pub fn stream_jsonl(path: PathBuf, edit: Option<fn(&mut Value)>) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        };
        let mut chunk = Vec::with_capacity(64 * 1024);
        for line in std::io::BufReader::new(file).lines() {
            let line = match line {
                Ok(l) => l,
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            };
            match edit {
                Some(edit) => {
                    let Ok(mut v) = serde_json::from_str::<Value>(&line) else {
                        continue;
                    };
                    edit(&mut v);
                    let _ = serde_json::to_writer(&mut chunk, &v);
                }
                None => chunk.extend_from_slice(line.as_bytes()),
            }
            chunk.push(b'\n');
            if chunk.len() >= 64 * 1024
                && tx
                    .blocking_send(Ok(Bytes::from(std::mem::take(&mut chunk))))
                    .is_err()
            {
                return;
            }
        }
        if !chunk.is_empty() {
            let _ = tx.blocking_send(Ok(Bytes::from(chunk)));
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response()
}

/// An HTML file as the answer.
pub async fn html_file(path: &Path) -> Result<Response, ApiError> {
    let html = tokio::fs::read(path).await.map_err(|e| {
        ApiError::internal(&crate::error::Error::Output {
            path: path.display().to_string(),
            source: e,
        })
    })?;
    Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response())
}
