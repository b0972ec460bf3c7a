//! The one error shape of the API (SPEC §8): JSON `{"error", "message"}` with the right
//! status — never a stack trace, an engine message or an ID number.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;

use super::schema::ErrorBody;

/// Marks an answer refused for a full disk.
#[derive(Debug, Clone, Copy)]
pub struct DiskWasFull;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Machine-readable code.
    pub code: &'static str,
    /// Words for a person.
    pub message: String,
    /// The problems of a refused check (422).
    pub rejections: Option<Value>,
    /// Seconds for `Retry-After` (429, 503).
    pub retry_after_s: Option<u64>,
}

impl ApiError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: hedui_connectors::idnum::mask_ids_in(&message.into()).into_owned(),
            rejections: None,
            retry_after_s: None,
        }
    }

    /// 429: the token's requests per minute are used up.
    pub fn too_many(wait: std::time::Duration) -> Self {
        let secs = wait.as_secs().max(1);
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            format!("请求过于频繁，请 {secs} 秒后再试（requests_per_minute used up; retry in {secs} s）"),
        );
        e.retry_after_s = Some(secs);
        e
    }

    /// 401: no token, or one that is not configured.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "缺少或无效的访问令牌（missing or unknown bearer token）",
        )
    }

    /// 403: the token's role or regions do not allow it.
    pub fn forbidden(why: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", why)
    }

    /// 413: a body larger than `max_body_mb`.
    pub fn too_large(max_body_bytes: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!(
                "请求体超过 {} MB（the body is larger than max_body_mb）",
                max_body_bytes >> 20
            ),
        )
    }

    /// 408: the body stopped arriving (`limit`: the `[server]` key it ran past).
    pub fn body_stalled(limit: &str) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!(
                "请求体传输中断或过慢，请检查网络后重新提交（the request body stalled past {limit}; send it again）"
            ),
        )
    }

    /// 400: query parameters that cannot be read.
    pub fn bad_query(e: axum::extract::rejection::QueryRejection) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!(
                "查询参数有误：请检查参数名、取值，且每个参数只给一次（bad query parameters: {}）",
                e.body_text()
            ),
        )
    }

    /// `status` for a check date that is not a date.
    pub fn bad_as_of(status: StatusCode, code: &'static str, given: &str) -> Self {
        Self::new(
            status,
            code,
            format!(
                "核对日期 as_of 应为 YYYY-MM-DD 格式的日期，收到“{given}”（as_of must be a date YYYY-MM-DD）"
            ),
        )
    }

    /// 503: the one-household checks waiting are at their bound.
    pub fn busy() -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "queue_full",
            "等待核对的请求已满，请稍后再试（too many checks are waiting; try again shortly）",
        );
        e.retry_after_s = Some(1);
        e
    }

    /// 503: the check workers are gone (the server is stopping).
    pub fn stopping() -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "核对服务正在停止，请稍后再试（the server is stopping; try again shortly）",
        );
        e.retry_after_s = Some(5);
        e
    }

    /// 404 for what does not exist or is outside the caller's regions (told apart
    /// nowhere).
    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "没有找到，或不在您的行政区划内（not found）",
        )
    }

    /// 503: the state database cannot be used now.
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "状态数据库暂不可用，请稍后再试（the state database is unavailable; try again later）",
        )
    }

    /// 500 for a fault: the details go to the log (masked), not to the client. A
    /// missing audit key is 503: nothing is checked until it is restored.
    pub fn internal(e: &crate::error::Error) -> Self {
        if let Some(disk) = e.disk_full() {
            tracing::error!("{}", hedui_connectors::idnum::mask_ids_in(&e.to_string()));
            let mut full = Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "disk_full",
                match disk {
                    crate::error::DiskFull::State => "状态目录所在磁盘已满，暂不能受理：请管理员释放磁盘空间（the state folder's disk is full; try again once space is freed）",
                    crate::error::DiskFull::Temp => "临时目录所在磁盘已满，暂不能核对：请管理员释放磁盘空间（the temporary folder's disk is full; try again once space is freed）",
                },
            );
            full.retry_after_s = Some(60);
            return full;
        }
        if let crate::error::Error::State(crate::state::StateError::AuditEnd { .. }) = e {
            tracing::error!("{e}");
            return Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "audit_unavailable",
                "审计日志的末尾与其锚点不符（可能被删改），核对已暂停：请管理员运行 hedui audit verify 并从备份恢复（the audit log does not reach its anchor: checks are paused until it is restored）",
            );
        }
        if let crate::error::Error::State(crate::state::StateError::AuditKeyMissing { .. }) = e {
            tracing::error!("{e}");
            return Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "audit_unavailable",
                "审计密钥缺失，核对已暂停：请管理员从备份恢复审计密钥（the audit key is missing: checks are paused until an administrator restores it）",
            );
        }
        tracing::error!(
            "request failed: {}",
            hedui_connectors::idnum::mask_ids_in(&e.to_string())
        );
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "内部错误，已记录（internal error; it has been logged）",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code.to_owned(),
            message: self.message,
            rejections: self.rejections,
        };
        let full = self.code == "disk_full";
        let mut resp = (self.status, Json(body)).into_response();
        if full {
            // Seen by the request middleware: /healthz and /metrics tell it.
            resp.extensions_mut().insert(DiskWasFull);
        }
        if let Some(s) = self.retry_after_s {
            if let Ok(v) = axum::http::HeaderValue::from_str(&s.to_string()) {
                resp.headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A full disk under the state database is 503 in words (try again later), not a
    /// 500 fault.
    #[test]
    fn a_full_disk_is_503() {
        let full = crate::error::Error::State(crate::state::StateError::Query {
            path: "state/hedui.db".into(),
            what: "queue a job".into(),
            source: rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
                None,
            ),
        });
        let e = ApiError::internal(&full);
        assert_eq!(
            (e.status, e.code),
            (StatusCode::SERVICE_UNAVAILABLE, "disk_full")
        );
        assert!(e.message.contains("磁盘已满"), "{}", e.message);
        assert_eq!(e.retry_after_s, Some(60));
    }
}
