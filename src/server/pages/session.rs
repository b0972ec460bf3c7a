//! Signing in and out of the staff pages (SPEC §11): the `hedui_session` cookie holds an
//! opaque random value the state database keeps only as its SHA-256; each session has a
//! CSRF token every state-changing form carries. A request without a live session is
//! sent to the sign-in page.

use std::sync::Arc;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use ring::rand::SecureRandom;
use serde::Deserialize;

use crate::server::app::AppState;
use crate::server::config::Role;
use crate::server::who::Who;
use crate::state::accounts::Gate;
use crate::state::credentials::{decoy_hash, password_matches};

use super::{render, PageError};

/// The cookie of a page session.
pub const COOKIE: &str = "hedui_session";

/// The signed-in user of a page request.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The account's name.
    pub name: String,
    /// As whom it acts (`user:NAME`, its role and regions).
    pub who: Who,
    /// The session's CSRF token.
    pub csrf: String,
}

impl Signed {
    /// Whether `given` is this session's CSRF token (compared in constant time).
    pub fn csrf_ok(&self, given: Option<&str>) -> bool {
        let Some(given) = given else { return false };
        given.len() == self.csrf.len()
            && given
                .bytes()
                .zip(self.csrf.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }

    /// 403 unless the account's role may use the pages of permit `P` (the API's).
    /// A page's upload form (`multipart/form-data`) received to disk, its CSRF token
    /// checked before anything else is read: the upload, or (inside) why it could not be
    /// received — for the page to say above its form; a form without its token is the
    /// error page.
    pub async fn receive_form(
        &self,
        app: &crate::server::app::AppState,
        headers: &axum::http::HeaderMap,
        body: axum::body::Body,
    ) -> Result<Result<crate::server::upload::Upload, crate::server::error::ApiError>, PageError>
    {
        let mut received = match crate::server::upload::receive(
            &app.config.state_dir,
            app.config.max_body_bytes,
            headers,
            body,
        )
        .await
        {
            Ok(u) => u,
            Err(e) => return Ok(Err(e)),
        };
        let csrf = received.fields.remove("csrf");
        self.require_csrf(csrf.as_deref())?;
        Ok(Ok(received))
    }

    pub fn permit<P: crate::server::caller::Permit>(&self) -> Result<(), PageError> {
        if P::allows(self.who.role) {
            Ok(())
        } else {
            Err(PageError::new(StatusCode::FORBIDDEN, P::REFUSED))
        }
    }

    /// 403 unless `given` is this session's CSRF token: the form changes nothing.
    pub fn require_csrf(&self, given: Option<&str>) -> Result<(), PageError> {
        if self.csrf_ok(given) {
            Ok(())
        } else {
            Err(PageError::new(
                StatusCode::FORBIDDEN,
                "表单已过期或不是从本系统的页面提交的，未做任何更改：请刷新页面后重试（the form's CSRF token is missing or wrong; nothing was changed）",
            ))
        }
    }
}

/// The role an account's text names (accounts are staff, auditors or admins).
pub fn role_of(text: &str) -> Role {
    match text {
        "admin" => Role::Admin,
        "auditor" => Role::Auditor,
        _ => Role::Staff,
    }
}

/// The hex SHA-256 of a cookie value, as sessions are stored.
fn hash_of(value: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, value.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// 32 random bytes, hex.
fn random_hex() -> Result<String, PageError> {
    let mut b = [0u8; 32];
    ring::rand::SystemRandom::new().fill(&mut b).map_err(|_| {
        PageError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "系统随机数不可用，请稍后再试（no system randomness）",
        )
    })?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// The session cookie's value in a request, if any.
fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A request without a live session: pages send it to sign in.
pub struct SignIn;

impl IntoResponse for SignIn {
    fn into_response(self) -> Response {
        Redirect::to("/ui/login").into_response()
    }
}

impl FromRequestParts<Arc<AppState>> for Signed {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let Some(value) = cookie(&parts.headers) else {
            return Err(SignIn.into_response());
        };
        let hash = hash_of(&value);
        let idle = app.config.session_idle.as_secs() as i64;
        let user = app
            .db(move |s| {
                s.session(&hash, now(), idle)
                    .map_err(|e| crate::server::error::ApiError::internal(&e.into()))
            })
            .await
            .map_err(|e| PageError::from(e).into_response())?;
        let Some(user) = user else {
            return Err(SignIn.into_response());
        };
        // The rate limit as for tokens: one account's pages are bounded too.
        let who = Who::user(
            &user.name,
            role_of(&user.role),
            user.regions,
            crate::server::config::DEFAULT_MAX_PEOPLE_PER_DAY,
        );
        app.limiter.admit(&who.label).map_err(|wait| {
            PageError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "操作过于频繁，请 {} 秒后再试（too many requests）",
                    wait.as_secs().max(1)
                ),
            )
            .into_response()
        })?;
        if let Some(name) = parts.extensions.get::<crate::server::caller::CallerName>() {
            name.set(&who.label);
        }
        Ok(Signed {
            name: user.name,
            who,
            csrf: user.csrf,
        })
    }
}

/// `GET /ui/login`: the sign-in form.
pub async fn form() -> Response {
    login_page(StatusCode::OK, None, "")
}

fn login_page(status: StatusCode, error: Option<&str>, name: &str) -> Response {
    render(
        status,
        "login.html",
        minijinja::context! { error => error, name => name },
    )
}

/// The fields of the sign-in form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    name: String,
    password: String,
}

const WRONG: &str = "用户名或密码错误（wrong name or password）";

/// `POST /ui/login`: a good name and password begin a session (303 to `/ui/`); a wrong
/// one is counted, the fifth in a row locks the account for 15 minutes; a locked or
/// disabled account does not sign in, whatever the password.
pub async fn login(
    State(app): State<Arc<AppState>>,
    form: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(f)) = form else {
        return login_page(
            StatusCode::BAD_REQUEST,
            Some("请填写用户名和密码（give a name and a password）"),
            "",
        );
    };
    if app.limiter.admit("\u{0}sign-in").is_err() {
        return login_page(
            StatusCode::TOO_MANY_REQUESTS,
            Some("登录尝试过于频繁，请稍后再试（too many sign-in attempts）"),
            &f.name,
        );
    }
    let name = f.name.trim().to_owned();
    match sign_in(&app, &name, f.password).await {
        Ok(cookie_value) => {
            let secure = if app.config.tls.is_some() {
                "; Secure"
            } else {
                ""
            };
            let mut resp = Redirect::to("/ui/").into_response();
            if let Ok(v) = HeaderValue::from_str(&format!(
                "{COOKIE}={cookie_value}; Path=/; HttpOnly; SameSite=Strict{secure}"
            )) {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            tracing::info!(user = %name, "signed in");
            resp
        }
        Err(refused) => {
            tracing::info!(user = %name, "sign-in refused");
            login_page(refused.status, Some(&refused.message), &name)
        }
    }
}

/// Checks the password (off the async threads) and begins a session: its cookie value.
async fn sign_in(app: &Arc<AppState>, name: &str, password: String) -> Result<String, PageError> {
    let at = now();
    let who = name.to_owned();
    let gate = app
        .db(move |s| {
            s.sign_in_gate(&who, at)
                .map_err(|e| crate::server::error::ApiError::internal(&e.into()))
        })
        .await?;
    let locked = |until: i64| {
        PageError::new(
            StatusCode::FORBIDDEN,
            format!(
                "连续输错密码5次，账户已锁定，请 {} 分钟后再试，或请管理员重置密码（the account is locked after five wrong passwords）",
                ((until - now()) + 59) / 60
            ),
        )
    };
    // Whatever the name — an account, a locked one, none — the password is checked
    // against a hash (a decoy's when there is none to check), so that the time taken
    // says nothing about the name.
    let hash = match &gate {
        Gate::Open(h) | Gate::Disabled(h) => h.clone(),
        Gate::Locked(_) | Gate::Unknown => decoy_hash().to_owned(),
    };
    let good = tokio::task::spawn_blocking(move || password_matches(&password, &hash))
        .await
        .unwrap_or(false);
    match gate {
        Gate::Locked(until) => return Err(locked(until)),
        // The right password of a disabled account: say so, or the clerk tries until
        // it locks.
        Gate::Disabled(_) if good => {
            return Err(PageError::new(
                StatusCode::FORBIDDEN,
                "此账户已停用，不能登录：请联系管理员启用（the account is disabled）",
            ))
        }
        // A name without an account is counted and locked like one, so that the
        // answers say nothing about which names exist.
        Gate::Unknown | Gate::Disabled(_) => {
            return Err(match unknown_name_failed(name, at) {
                Some(until) => locked(until),
                None => PageError::new(StatusCode::UNAUTHORIZED, WRONG),
            })
        }
        Gate::Open(_) => {}
    }
    let who = name.to_owned();
    if !good {
        let lock = app
            .db(move |s| {
                s.sign_in_failed(&who, at)
                    .map_err(|e| crate::server::error::ApiError::internal(&e.into()))
            })
            .await?;
        return Err(match lock {
            Some(until) => locked(until),
            None => PageError::new(StatusCode::UNAUTHORIZED, WRONG),
        });
    }
    let value = random_hex()?;
    let csrf = random_hex()?;
    let hash = hash_of(&value);
    app.db(move |s| {
        s.sign_in(&who, &hash, &csrf, at)
            .map_err(|e| crate::server::error::ApiError::internal(&e.into()))
    })
    .await?;
    app.wrote();
    Ok(value)
}

/// Wrong tries of names without an account: (tries in a row, locked until), bounded.
fn unknown_names() -> &'static std::sync::Mutex<std::collections::HashMap<String, (i64, i64)>> {
    static NAMES: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<String, (i64, i64)>>,
    > = std::sync::OnceLock::new();
    NAMES.get_or_init(Default::default)
}

/// Counts a try of `name`, which has no account, at `now` as an account's wrong
/// password is counted: the lock's end once it locks (or while it is locked).
fn unknown_name_failed(name: &str, now: i64) -> Option<i64> {
    use crate::state::accounts::{LOCK_AFTER, LOCK_S};
    let mut names = unknown_names().lock().unwrap_or_else(|e| e.into_inner());
    if names.len() >= 10_000 {
        names.retain(|_, (_, until)| *until > now);
        if names.len() >= 10_000 {
            names.clear();
        }
    }
    let entry = names.entry(name.to_owned()).or_insert((0, 0));
    if entry.1 > now {
        return Some(entry.1);
    }
    entry.0 += 1;
    if entry.0 >= LOCK_AFTER {
        *entry = (0, now + LOCK_S);
        return Some(entry.1);
    }
    None
}

/// The fields of a form that only proves where it came from.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf: Option<String>,
}

/// `POST /ui/logout`: ends the session (CSRF token required) and clears the cookie.
pub async fn logout(
    State(app): State<Arc<AppState>>,
    user: Signed,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PageError> {
    let given = form.ok().and_then(|Form(f)| f.csrf);
    user.require_csrf(given.as_deref())?;
    if let Some(value) = cookie(&headers) {
        let hash = hash_of(&value);
        app.db(move |s| {
            s.end_session(&hash)
                .map_err(|e| crate::server::error::ApiError::internal(&e.into()))
        })
        .await?;
    }
    let mut resp = Redirect::to("/ui/login").into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(if app.config.tls.is_some() {
            "hedui_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict; Secure"
        } else {
            "hedui_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict"
        }),
    );
    Ok(resp)
}
