//! The route table: the only place routes are declared (SPEC §8).

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;

use super::app::AppState;
use super::handlers::{
    audit, batches, checks, health, metrics, recipients, reconciliations, submit,
};

/// The OpenAPI 3 document, generated from the handlers' annotations.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "hedui", description = "Household economic-status verification"),
    paths(
        checks::check,
        submit::submit,
        batches::list,
        batches::status,
        batches::results,
        batches::rejected,
        batches::report,
        audit::list,
        reconciliations::list,
        reconciliations::changes,
        reconciliations::report,
        reconciliations::start,
        recipients::replace,
        recipients::list,
        recipients::history,
        health::healthz,
        health::readyz,
        health::livez,
        metrics::scrape,
        openapi,
    ),
    components(schemas(super::schema::SnapshotRef)),
    modifiers(&BearerAuth, &ErrorBodies)
)]
pub struct ApiDoc;

/// Declares the bearer-token scheme the paths refer to.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
    }
}

/// Gives every error answer of every route the one error body, so that each route's
/// annotations say only when it answers so.
struct ErrorBodies;

impl utoipa::Modify for ErrorBodies {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, RefOr};
        use utoipa::PartialSchema;
        let components = doc.components.get_or_insert_with(Default::default);
        components.schemas.insert(
            "ErrorBody".to_owned(),
            <super::schema::ErrorBody as PartialSchema>::schema(),
        );
        for item in doc.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                for (status, response) in op.responses.responses.iter_mut() {
                    let RefOr::T(response) = response else {
                        continue;
                    };
                    if status.as_str() >= "400" && response.content.is_empty() {
                        response.content.insert(
                            "application/json".to_owned(),
                            ContentBuilder::new()
                                .schema(Some(Ref::from_schema_name("ErrorBody")))
                                .build(),
                        );
                    }
                }
            }
        }
    }
}

/// `GET /api/v1/openapi.json`.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    operation_id = "openapi_document",
    responses((status = 200, description = "This OpenAPI document", body = Object))
)]
pub async fn openapi() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(<ApiDoc as utoipa::OpenApi>::openapi())
}

/// The staff pages, under `/ui/` (and `/`, which leads there).
fn pages() -> Router<Arc<AppState>> {
    use super::pages::{
        asset, audit, batch, batches, household, recipients, runs, session, sources, users,
    };
    use axum::response::Redirect;
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(|| async { Redirect::to("/ui/batches") }))
        .route("/ui/login", get(session::form).post(session::login))
        .route("/ui/logout", post(session::logout))
        .route("/ui/assets/{name}", get(asset))
        .route("/ui/batches", get(batches::list).post(batches::upload))
        .route("/ui/batches/{id}", get(batch::show))
        .route("/ui/batches/{id}/files/{name}", get(batch::file))
        .route(
            "/ui/batches/{id}/households/{household_id}",
            get(household::show),
        )
        .route("/ui/reconciliations", get(runs::list).post(runs::start))
        .route(
            "/ui/recipients",
            get(recipients::show).post(recipients::upload),
        )
        .route("/ui/reconciliations/{id}", get(runs::show))
        .route("/ui/reconciliations/{id}/changes/{key}", post(runs::mark))
        .route("/ui/sources", get(sources::show))
        .route("/ui/audit", get(audit::show).post(audit::search_person))
        .route("/ui/users", get(users::list).post(users::change))
}

/// Every route of the API.
pub fn router(app: Arc<AppState>) -> Router {
    let limit = app.config.max_body_bytes;
    Router::new()
        .route("/api/v1/checks", post(checks::check))
        .route("/api/v1/batches", get(batches::list).post(submit::submit))
        .route("/api/v1/batches/{id}", get(batches::status))
        .route("/api/v1/batches/{id}/results", get(batches::results))
        .route("/api/v1/batches/{id}/rejected", get(batches::rejected))
        .route("/api/v1/batches/{id}/report", get(batches::report))
        .route("/api/v1/audit", get(audit::list))
        .route(
            "/api/v1/reconciliations",
            get(reconciliations::list).post(reconciliations::start),
        )
        .route(
            "/api/v1/recipients",
            get(recipients::list).put(recipients::replace),
        )
        .route("/api/v1/recipients/history", get(recipients::history))
        .route(
            "/api/v1/reconciliations/{id}/changes",
            get(reconciliations::changes),
        )
        .route(
            "/api/v1/reconciliations/{id}/report",
            get(reconciliations::report),
        )
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/livez", get(health::livez))
        .route("/metrics", get(metrics::scrape))
        .route("/api/v1/openapi.json", get(openapi))
        .merge(pages())
        .fallback(no_route)
        .method_not_allowed_fallback(no_method)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            super::body::bound,
        ))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            refuse_oversized,
        ))
        .layer(axum::middleware::map_response_with_state(
            app.clone(),
            harden,
        ))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            metrics::track,
        ))
        .with_state(app)
}

/// Bytes of an oversized body read and dropped at most before the 413 is sent.
const DRAIN_BYTES: usize = 64 << 20;

/// A body announced larger than `max_body_mb` is refused before any handler runs. What
/// the client sends meanwhile is read and dropped (up to [`DRAIN_BYTES`], for ten
/// seconds at most), so that it reads the 413 instead of finding the connection closed
/// under it mid-upload.
async fn refuse_oversized(
    axum::extract::State(app): axum::extract::State<Arc<AppState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    use futures::StreamExt;
    let limit = app.config.max_body_bytes;
    let announced = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if !announced.is_some_and(|n| n > limit as u64) {
        return next.run(req).await;
    }
    // A page's form is answered with a page, an API call with JSON.
    let page = req.uri().path().starts_with("/ui/");
    let mut body = req.into_body().into_data_stream();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        let mut read = 0usize;
        while let Some(Ok(chunk)) = body.next().await {
            read += chunk.len();
            if read > DRAIN_BYTES {
                break;
            }
        }
    })
    .await;
    if page {
        let mb = limit >> 20;
        return super::pages::PageError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            format!("上传的文件超过 {mb} MB 的上限，未做任何更改：批量核对可以把名单分成几个文件分别提交；在保名单过大时请管理员调高配置中的 max_body_mb（the file is larger than the {mb} MB limit; nothing changed）"),
        )
        .into_response();
    }
    super::error::ApiError::too_large(limit).into_response()
}

/// The Content-Security-Policy of the HTML the server sends (reports: inline styles and
/// SVG, no script, nothing fetched).
const HTML_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Every answer: never sniffed into another type, never cached by the way (they hold
/// households' data); HTML under a policy that lets it run nothing.
async fn harden(
    axum::extract::State(app): axum::extract::State<Arc<AppState>>,
    mut resp: axum::response::Response,
) -> axum::response::Response {
    use axum::http::{header, HeaderValue};
    let h = resp.headers_mut();
    // Over TLS, browsers are told to come back over TLS only (a year).
    if app.config.tls.is_some() {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let html = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    // A page sets its own policy (its script and styles from hedui itself).
    if html && !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(HTML_CSP),
        );
    }
    resp
}

/// A route asked with a method it does not take: 405 as JSON.
async fn no_method(uri: axum::http::Uri) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    if uri.path().starts_with("/ui/") {
        return super::pages::PageError::new(
            axum::http::StatusCode::METHOD_NOT_ALLOWED,
            "这个地址不能直接打开：请使用页面上的链接和按钮（method not allowed）",
        )
        .into_response();
    }
    super::error::ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "该接口不支持这种请求方法（this route does not take that method; see /api/v1/openapi.json）",
    )
    .into_response()
}

/// Any path that is not a route: 404 as JSON, told apart from a 404 of a route; under
/// `/ui/`, the pages' own 404 in words.
async fn no_route(uri: axum::http::Uri) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    if uri.path().starts_with("/ui/") {
        return super::pages::PageError::not_found().into_response();
    }
    super::error::ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "no_route",
        "没有这个接口（no such route; see /api/v1/openapi.json）",
    )
    .into_response()
}
