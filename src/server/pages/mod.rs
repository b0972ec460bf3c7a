//! The staff pages (SPEC §11): server-rendered HTML in simplified Chinese under `/ui/`,
//! on the same engine, state database, roles and regions as the API. Templates and
//! assets are compiled into the binary (the centre's network is closed); pages run
//! under `Content-Security-Policy: default-src 'self'`.
//!
//! - [`session`]: signing in and out, the session cookie, CSRF tokens.
//! - [`batches`]: the batch list and upload form; [`batch`]: a batch's progress, its
//!   households a page at a time, its downloads; [`household`]: a household's
//!   printable 核对报告; [`members`]: households' members from their own file.
//! - [`runs`]: the nightly reconciliations as a work list, marked handled (admins start
//!   one now); [`recipients`]: the recipients list the night reads (admins).
//! - [`sources`]: each department's freshness; [`audit`]: the audit log, searched by
//!   person; [`users`]: the staff accounts (admins).

pub mod audit;
pub mod batch;
pub mod batches;
pub mod household;
pub mod members;
pub mod recipients;
pub mod runs;
pub mod session;
pub mod sources;
pub mod users;

use std::sync::OnceLock;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

/// The policy of every page: everything from hedui itself, nothing inline, no frames.
pub const PAGE_CSP: &str =
    "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The templates, compiled in.
const TEMPLATES: [(&str, &str); 13] = [
    ("recipients.html", include_str!("templates/recipients.html")),
    ("sources.html", include_str!("templates/sources.html")),
    ("audit.html", include_str!("templates/audit.html")),
    ("users.html", include_str!("templates/users.html")),
    ("macros.html", include_str!("templates/macros.html")),
    ("runs.html", include_str!("templates/runs.html")),
    ("run.html", include_str!("templates/run.html")),
    ("base.html", include_str!("templates/base.html")),
    ("login.html", include_str!("templates/login.html")),
    ("error.html", include_str!("templates/error.html")),
    ("batches.html", include_str!("templates/batches.html")),
    ("batch.html", include_str!("templates/batch.html")),
    ("household.html", include_str!("templates/household.html")),
];

/// The assets, compiled in: (path under /ui/assets/, content type, bytes).
const ASSETS: [(&str, &str, &str); 2] = [
    (
        "hedui.css",
        "text/css; charset=utf-8",
        include_str!("assets/hedui.css"),
    ),
    (
        "hedui.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/hedui.js"),
    ),
];

/// Percent-encodes a query value or a path segment: every byte but the unreserved.
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn env() -> &'static minijinja::Environment<'static> {
    static ENV: OnceLock<minijinja::Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = minijinja::Environment::new();
        // A value as one segment of a path: every byte but the unreserved ones
        // percent-encoded (`/` too, which `urlencode` leaves), so a 申请编号 holding a
        // slash still links to its own page.
        env.add_filter("seg", |v: String| enc(&v));
        for (name, text) in TEMPLATES {
            // The templates are part of the binary: one that does not parse is caught
            // by the tests that render every page.
            if let Err(e) = env.add_template(name, text) {
                tracing::error!(template = name, error = %e, "a page template does not parse");
            }
        }
        env
    })
}

/// Renders template `name` with `ctx` as an HTML page with `status`.
pub fn render(status: StatusCode, name: &str, ctx: minijinja::Value) -> Response {
    let html = env().get_template(name).and_then(|t| t.render(ctx));
    match html {
        Ok(html) => {
            let mut resp = (status, html).into_response();
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            h.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(PAGE_CSP),
            );
            resp
        }
        Err(e) => {
            tracing::error!(template = name, error = %e, "a page could not be rendered");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "内部错误（internal error）",
            )
                .into_response()
        }
    }
}

/// A page's failure: the error page, with its status and words.
#[derive(Debug)]
pub struct PageError {
    /// The status.
    pub status: StatusCode,
    /// What went wrong and what to do, Chinese first.
    pub message: String,
}

impl PageError {
    /// A failure with `status` and `message`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> PageError {
        PageError {
            status,
            message: message.into(),
        }
    }

    /// 404, as for anything outside the user's regions.
    pub fn not_found() -> PageError {
        PageError::new(
            StatusCode::NOT_FOUND,
            "没有找到这个页面，或您无权查看（not found）",
        )
    }
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> PageError {
        PageError::new(e.status, e.message)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        render(
            self.status,
            "error.html",
            minijinja::context! { status => self.status.as_u16(), message => self.message },
        )
    }
}

/// `GET /ui/assets/{name}`.
pub async fn asset(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, ty, body)) => {
            let mut resp = (*body).into_response();
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(ty));
            resp
        }
        None => PageError::not_found().into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every template parses, and the sign-in and error pages render.
    #[test]
    fn templates_parse_and_render() {
        let mut env = minijinja::Environment::new();
        env.add_filter("seg", |v: String| enc(&v));
        for (name, text) in TEMPLATES {
            if let Err(e) = env.add_template(name, text) {
                panic!("{name}: {e:#}");
            }
        }
        let login = env
            .get_template("login.html")
            .and_then(|t| t.render(minijinja::context! { error => "x", name => "王" }))
            .unwrap();
        assert!(login.contains("name=\"password\""));
        // The pages that import the macros render with findings and members.
        let finding = minijinja::context! { rule => "vehicle", member => "", who => "", text => "有车", severity => "需复核", evidence => vec![("车辆登记", "a 第2行", "品牌")] };
        let member =
            minijinja::context! { name => "王", id_number => "4101**", relation => "本人" };
        for name in ["household.html", "run.html"] {
            let page = env
                .get_template(name)
                .and_then(|t| {
                    t.render(minijinja::context! {
                        findings => vec![finding.clone()], members => vec![member.clone()],
                        run => minijinja::context! { id => 1 }, summary => minijinja::context! { first_run => true },
                        changes => vec![minijinja::context! { household_id => "H1", key => "k", members => vec![member.clone()], added => vec![finding.clone()] }],
                    })
                })
                .unwrap_or_else(|e| panic!("{name}: {e:#}"));
            assert!(
                page.contains("data-rule=\"vehicle\"") && page.contains("4101**"),
                "{name}"
            );
        }
    }
}
