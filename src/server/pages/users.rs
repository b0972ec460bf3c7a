//! `/ui/users` (admins): the staff accounts, a page at a time, and the forms to add one,
//! disable or enable it, reset its password and set its role and regions — the same
//! checks and the same audited state calls as `hedui user`. An admin cannot disable
//! their own account or take away their own admin role (nobody would be left to undo it).

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::{Deserialize, Serialize};

use crate::server::app::AppState;
use crate::server::caller::MayAdminister;
use crate::server::error::ApiError;
use crate::state::credentials::{account_name, account_regions, account_role, hash_password};
use crate::state::StateError;

use super::batches::{local_time, role_zh};
use super::session::{role_of, Signed};
use super::{render, PageError};

/// Accounts a page.
const PER_PAGE: usize = 100;

/// The list's page and what the last change did.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    /// The name the page before ended at.
    #[serde(default)]
    after: String,
    /// What was done (`added`, `disabled`, `enabled`, `passwd`, `access`).
    #[serde(default)]
    done: String,
    /// To whom.
    #[serde(default)]
    name: String,
}

/// One account as the page shows it.
#[derive(Debug, Serialize)]
struct Row {
    name: String,
    role: String,
    role_zh: &'static str,
    regions: String,
    state: &'static str,
    state_zh: String,
    created_at: String,
    me: bool,
}

/// `GET /ui/users`.
pub async fn list(
    State(app): State<Arc<AppState>>,
    user: Signed,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    user.permit::<MayAdminister>()?;
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let notice = match q.done.as_str() {
        "added" => Some(format!("已添加账户 {}。", q.name)),
        "disabled" => Some(format!("已停用账户 {}，其会话已结束。", q.name)),
        "enabled" => Some(format!("已启用账户 {}。", q.name)),
        "passwd" => Some(format!(
            "已重设账户 {} 的密码，锁定已解除，其会话已结束。请把新密码当面交给本人。",
            q.name
        )),
        "access" => Some(format!("已更新账户 {} 的角色和地区。", q.name)),
        _ => None,
    };
    page(&app, &user, &q.after, StatusCode::OK, notice, None).await
}

/// The page of accounts after `after`, with a notice or an error above it.
async fn page(
    app: &Arc<AppState>,
    user: &Signed,
    after: &str,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
) -> Result<Response, PageError> {
    let after = after.to_owned();
    let mut accounts = app
        .db(move |s| {
            s.accounts_page(&after, PER_PAGE + 1)
                .map_err(|e| ApiError::internal(&e.into()))
        })
        .await?;
    let more = accounts.len() > PER_PAGE;
    accounts.truncate(PER_PAGE);
    let now = chrono::Utc::now().timestamp();
    let next = more
        .then(|| accounts.last().map(|a| a.name.clone()))
        .flatten();
    let rows: Vec<Row> = accounts
        .into_iter()
        .map(|a| {
            let (state, state_zh) = match a.locked_until {
                _ if a.disabled => ("disabled", "已停用".to_owned()),
                Some(t) if t > now => (
                    "locked",
                    format!("已锁定（约 {} 分钟后解除）", (t - now + 59) / 60),
                ),
                _ => ("active", "正常".to_owned()),
            };
            Row {
                me: a.name == user.name,
                role_zh: role_zh(role_of(&a.role)),
                role: a.role,
                regions: a.regions.join(","),
                state,
                state_zh,
                created_at: local_time(&a.created_at),
                name: a.name,
            }
        })
        .collect();
    Ok(render(
        status,
        "users.html",
        minijinja::context! {
            nav => "users",
            user => user.name,
            role => role_zh(user.who.role),
            csrf => user.csrf,
            rows => rows,
            next => next,
            notice => notice,
            error => error,
            min_password => crate::state::credentials::MIN_PASSWORD_CHARS,
        },
    ))
}

/// Every form of the page: `action` says which.
#[derive(Debug, Deserialize)]
pub struct UserForm {
    csrf: Option<String>,
    #[serde(default)]
    action: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    regions: String,
    #[serde(default)]
    password: String,
}

/// `POST /ui/users`: one change to one account (CSRF token required).
pub async fn change(
    State(app): State<Arc<AppState>>,
    user: Signed,
    form: Result<Form<UserForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PageError> {
    let Form(f) = form.map_err(|_| {
        PageError::new(
            StatusCode::BAD_REQUEST,
            "表单内容无法读取，请回到账户页面重试（the form could not be read）",
        )
    })?;
    user.require_csrf(f.csrf.as_deref())?;
    user.permit::<MayAdminister>()?;
    match apply(&app, &user, &f).await {
        Ok(done) => {
            let name = f.name.trim();
            let to = format!("/ui/users?done={done}&name={}", super::enc(name));
            Ok(Redirect::to(&to).into_response())
        }
        Err((status, message)) => page(&app, &user, "", status, None, Some(message)).await,
    }
}

/// Does what form `f` asks; the word for what was done, or the status and words of
/// what is wrong.
async fn apply(
    app: &Arc<AppState>,
    user: &Signed,
    f: &UserForm,
) -> Result<&'static str, (StatusCode, String)> {
    let bad = |m: String| (StatusCode::UNPROCESSABLE_ENTITY, m);
    let name = account_name(&f.name).map_err(bad)?;
    let actor = user.who.actor.clone();
    let me = name == user.name;
    // The Argon2id hash is made off the async threads and off the database lock.
    let hashed = |password: String| async move {
        tokio::task::spawn_blocking(move || hash_password(&password))
            .await
            .map_err(|_| {
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "内部错误（internal error）".to_owned(),
                )
            })?
            .map_err(bad)
    };
    let (done, call): (
        &'static str,
        Box<dyn FnOnce(&mut crate::state::State) -> Result<(), StateError> + Send>,
    ) = match f.action.as_str() {
        "add" => {
            let role = account_role(&f.role).map_err(bad)?;
            let regions = account_regions(&f.regions).map_err(bad)?;
            let hash = hashed(f.password.clone()).await?;
            (
                "added",
                Box::new(move |s| s.add_account(&actor, &name, &role, &regions, &hash)),
            )
        }
        "disable" | "enable" => {
            let disable = f.action == "disable";
            if disable && me {
                return Err(bad("不能停用自己的账户：请由另一位管理员操作（you cannot disable your own account）".into()));
            }
            (
                if disable { "disabled" } else { "enabled" },
                Box::new(move |s| s.set_account_disabled(&actor, &name, disable)),
            )
        }
        "passwd" => {
            let hash = hashed(f.password.clone()).await?;
            (
                "passwd",
                Box::new(move |s| s.set_account_password(&actor, &name, &hash)),
            )
        }
        "access" => {
            let role = account_role(&f.role).map_err(bad)?;
            let regions = account_regions(&f.regions).map_err(bad)?;
            if me && role != "admin" {
                return Err(bad("不能取消自己的管理员角色：请由另一位管理员操作（you cannot take away your own admin role）".into()));
            }
            (
                "access",
                Box::new(move |s| s.set_account_access(&actor, &name, &role, &regions)),
            )
        }
        _ => {
            return Err((
                StatusCode::BAD_REQUEST,
                "未知的操作，请回到账户页面重试（unknown action）".into(),
            ))
        }
    };
    app.db(move |s| {
        call(s).map_err(|e| match e {
            StateError::AccountExists { .. } => {
                ApiError::new(StatusCode::CONFLICT, "account_exists", e.to_string())
            }
            StateError::NoAccount { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "no_account", e.to_string())
            }
            e => ApiError::internal(&e.into()),
        })
    })
    .await
    .map_err(|e| (e.status, e.message))?;
    Ok(done)
}
