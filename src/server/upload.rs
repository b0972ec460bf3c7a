//! Uploaded files, streamed to a temporary file of the state folder as they arrive —
//! the request body itself, or the part named `file` of a `multipart/form-data` form —
//! within `max_body_mb` (413) and the body timeouts (408): a file is never held in
//! memory while it arrives, however many arrive at once. Files of uploads cut short are
//! removed at once, and those of a killed server at the next start.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, StatusCode};
use futures::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;

use super::error::ApiError;

/// Text parts of a form kept beside the file, and their bounds.
const MAX_FIELDS: usize = 16;
const MAX_FIELD_BYTES: usize = 4096;

/// A received file.
#[derive(Debug)]
pub struct Upload {
    /// The file, under `[state] path/uploads/` (removed when dropped unless kept).
    pub file: tempfile::NamedTempFile,
    /// Its size.
    pub bytes: u64,
    /// The name the form gave it (multipart `filename`).
    pub file_name: Option<String>,
    /// Its Content-Type: the part's for a form, else the request's.
    pub content_type: Option<String>,
    /// The form's other (text) parts by name.
    pub fields: BTreeMap<String, String>,
}

/// The folder of uploads being received.
pub fn uploads_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("uploads")
}

/// Removes what uploads cut short by a killed server left (at start).
pub fn sweep(state_dir: &Path) {
    let dir = uploads_dir(state_dir);
    if dir.exists() {
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            tracing::warn!(
                "cannot remove the unfinished uploads in {}: {e}",
                dir.display()
            );
        }
    }
}

/// The media type of a Content-Type value, lower case, without parameters.
pub fn media_type(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Receives the upload of a request: the body as the file, or for a multipart form the
/// part named `file` (and its other text parts).
pub async fn receive(
    state_dir: &Path,
    max_bytes: usize,
    headers: &HeaderMap,
    body: Body,
) -> Result<Upload, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut upload = Upload {
        file: new_file(state_dir).await?,
        bytes: 0,
        file_name: None,
        content_type: content_type.clone(),
        fields: BTreeMap::new(),
    };
    let is_form = content_type
        .as_deref()
        .is_some_and(|ct| media_type(ct) == "multipart/form-data");
    if !is_form {
        upload.bytes = copy(body.into_data_stream(), &upload.file, max_bytes).await?;
        return Ok(upload);
    }
    let boundary = content_type
        .as_deref()
        .and_then(|ct| multer::parse_boundary(ct).ok())
        .ok_or_else(|| not_a_form("the Content-Type has no boundary"))?;
    let limits = multer::Constraints::new()
        .size_limit(multer::SizeLimit::new().whole_stream(max_bytes as u64 + 64 * 1024));
    let mut form = multer::Multipart::with_constraints(body.into_data_stream(), boundary, limits);
    let mut found = false;
    while let Some(mut part) = form
        .next_field()
        .await
        .map_err(|e| form_error(e, max_bytes))?
    {
        let name = part.name().unwrap_or("").to_owned();
        if name == "file" {
            if found {
                return Err(not_a_form("the form has more than one part named file"));
            }
            found = true;
            upload.file_name = part.file_name().map(str::to_owned);
            upload.content_type = part.content_type().map(|m| m.to_string());
            upload.bytes = copy_form(&mut part, &upload.file, max_bytes).await?;
        } else {
            if upload.fields.len() >= MAX_FIELDS {
                return Err(not_a_form("the form has too many parts"));
            }
            // One value a name: a second `csrf` or `as_of` would be chosen silently.
            if upload.fields.contains_key(&name) {
                return Err(not_a_form(&format!(
                    "the form has more than one part named {name}"
                )));
            }
            let mut text = Vec::new();
            while let Some(chunk) = part.chunk().await.map_err(|e| form_error(e, max_bytes))? {
                text.extend_from_slice(&chunk);
                if text.len() > MAX_FIELD_BYTES {
                    return Err(not_a_form(&format!("the part {name} is longer than 4 KiB")));
                }
            }
            let text = String::from_utf8(text)
                .map_err(|_| not_a_form(&format!("the part {name} is not UTF-8 text")))?;
            upload.fields.insert(name, text);
        }
    }
    if !found {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "表单中没有名为 file 的文件部分，请选择要上传的文件（the form has no part named file: choose the file to upload）",
        ));
    }
    Ok(upload)
}

/// A new empty file under the uploads folder (off the async threads).
async fn new_file(state_dir: &Path) -> Result<tempfile::NamedTempFile, ApiError> {
    let dir = uploads_dir(state_dir);
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dir)?;
        tempfile::Builder::new().prefix("upload-").tempfile_in(&dir)
    })
    .await
    .map_err(|e| ApiError::internal(&crate::error::Error::Internal(e.to_string())))?
    .map_err(|e| {
        ApiError::internal(&crate::error::Error::Output {
            path: uploads_dir(state_dir).display().to_string(),
            source: e,
        })
    })
}

/// Writes the pieces of a body to `file`, refusing it beyond `max_bytes`.
async fn copy(
    pieces: impl Stream<Item = Result<Bytes, axum::Error>>,
    file: &tempfile::NamedTempFile,
    max_bytes: usize,
) -> Result<u64, ApiError> {
    let pieces = pieces.map(|p| p.map_err(|e| body_error(&e)));
    write_all(pieces, file, max_bytes).await
}

/// As [`copy`], for the pieces of a form's part.
async fn copy_form(
    pieces: impl Stream<Item = Result<Bytes, multer::Error>>,
    file: &tempfile::NamedTempFile,
    max_bytes: usize,
) -> Result<u64, ApiError> {
    let pieces = pieces.map(|p| p.map_err(|e| form_error(e, max_bytes)));
    write_all(pieces, file, max_bytes).await
}

async fn write_all(
    pieces: impl Stream<Item = Result<Bytes, ApiError>>,
    file: &tempfile::NamedTempFile,
    max_bytes: usize,
) -> Result<u64, ApiError> {
    let io = |e: std::io::Error| {
        ApiError::internal(&crate::error::Error::Output {
            path: file.path().display().to_string(),
            source: e,
        })
    };
    let mut out = tokio::fs::File::from_std(file.as_file().try_clone().map_err(io)?);
    let mut total = 0u64;
    let mut pieces = std::pin::pin!(pieces);
    while let Some(piece) = pieces.next().await {
        let piece = piece?;
        total += piece.len() as u64;
        if total > max_bytes as u64 {
            return Err(ApiError::too_large(max_bytes));
        }
        out.write_all(&piece).await.map_err(io)?;
    }
    out.flush().await.map_err(io)?;
    Ok(total)
}

/// The answer to a body that could not be read: 408 when it stalled.
fn body_error(e: &(dyn std::error::Error + 'static)) -> ApiError {
    match super::body::stalled_error(e) {
        Some(limit) => ApiError::body_stalled(limit),
        None => ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("请求体读取失败，请重新提交（the request body could not be read: {e}）"),
        ),
    }
}

fn form_error(e: multer::Error, max_bytes: usize) -> ApiError {
    match e {
        multer::Error::StreamSizeExceeded { .. } | multer::Error::FieldSizeExceeded { .. } => {
            ApiError::too_large(max_bytes)
        }
        multer::Error::StreamReadFailed(inner) => body_error(inner.as_ref()),
        other => not_a_form(&other.to_string()),
    }
}

fn not_a_form(why: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "bad_request",
        format!("上传的表单无法读取，请重新选择文件提交（not a readable multipart form: {why}）"),
    )
}
