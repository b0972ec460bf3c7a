//! Who is calling: the one extractor every API handler gets its caller through. The
//! bearer token is authenticated, admitted by the rate limit and its role checked for
//! the route ([`Permit`]) from the request's head — before any body is read.

use std::marker::PhantomData;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::app::AppState;
use super::config::Role;
use super::error::ApiError;
use super::who::Who;

/// Which roles may use a group of routes, and what the others are told (403).
pub trait Permit: Send + Sync + 'static {
    /// Whether `role` may.
    fn allows(role: Role) -> bool;
    /// The refusal, Chinese first.
    const REFUSED: &'static str;
}

/// One-household checks: staff, systems, admins.
pub struct MayCheck;

impl Permit for MayCheck {
    fn allows(role: Role) -> bool {
        role.may_check()
    }
    const REFUSED: &'static str = "此角色不能发起核对（this role may not run checks）";
}

/// Batches: staff, systems, admins.
pub struct MayBatch;

impl Permit for MayBatch {
    fn allows(role: Role) -> bool {
        role.may_check()
    }
    const REFUSED: &'static str =
        "此角色不能提交或查看批量核对（this role may not submit or read batches）";
}

/// The list of batches: every role (auditors list their regions' batches; they read
/// no household data of them).
pub struct MayListBatches;

impl Permit for MayListBatches {
    fn allows(_: Role) -> bool {
        true
    }
    const REFUSED: &'static str = "";
}

/// Reconciliation runs and their changes: every role but auditors.
pub struct MayReadRuns;

impl Permit for MayReadRuns {
    fn allows(role: Role) -> bool {
        role != Role::Auditor
    }
    const REFUSED: &'static str = "审计员只能查看审计日志（auditors read the audit log only）";
}

/// The audit log: auditors and admins.
pub struct MayAudit;

impl Permit for MayAudit {
    fn allows(role: Role) -> bool {
        matches!(role, Role::Auditor | Role::Admin)
    }
    const REFUSED: &'static str =
        "只有审计员和管理员可以查看审计日志（only auditors and admins read the audit log）";
}

/// The recipients list and reconciliations run now: admins and system tokens.
pub struct MayReconcile;

impl Permit for MayReconcile {
    fn allows(role: Role) -> bool {
        matches!(role, Role::Admin | Role::System)
    }
    const REFUSED: &'static str = "只有管理员和系统令牌可以更换在保名单或发起复核（only admins and system tokens replace the recipients list or start a reconciliation）";
}

/// Staff accounts: admins.
pub struct MayAdminister;

impl Permit for MayAdminister {
    fn allows(role: Role) -> bool {
        role == Role::Admin
    }
    const REFUSED: &'static str = "只有管理员可以管理账户（only admins manage accounts）";
}

/// Where the request log finds who called: set by [`Caller`] once the token is known.
#[derive(Debug, Clone, Default)]
pub struct CallerName(Arc<std::sync::OnceLock<String>>);

impl CallerName {
    /// The caller's token name, once authenticated.
    pub fn get(&self) -> Option<&str> {
        self.0.get().map(String::as_str)
    }

    /// Records who called (a token's name, or `user:NAME` for a page).
    pub fn set(&self, who: &str) {
        let _ = self.0.set(who.to_owned());
    }
}

/// The caller of a request whose role `P` permits: 401 without a valid token, 429
/// beyond its rate, 403 for a role `P` refuses.
pub struct Caller<P>(pub Who, pub PhantomData<fn() -> P>);

impl<P: Permit> FromRequestParts<Arc<AppState>> for Caller<P> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let token = app.caller(&parts.headers)?;
        if let Some(name) = parts.extensions.get::<CallerName>() {
            let _ = name.0.set(token.name.clone());
        }
        if !P::allows(token.role) {
            return Err(ApiError::forbidden(P::REFUSED));
        }
        Ok(Caller(Who::token(token), PhantomData))
    }
}

/// The answers of every authenticated route for callers it does not admit (401, 429),
/// documented once in the OpenAPI document (each route says what its 403 means).
impl<P: Permit> utoipa::IntoResponses for Caller<P> {
    fn responses() -> std::collections::BTreeMap<
        String,
        utoipa::openapi::RefOr<utoipa::openapi::response::Response>,
    > {
        use utoipa::openapi::response::ResponseBuilder;
        [
            ("401", "No or unknown bearer token"),
            ("403", P::REFUSED),
            (
                "429",
                "Over the token's requests per minute (`Retry-After` says when to try again)",
            ),
        ]
        .into_iter()
        // A route every role may use answers no 403.
        .filter(|(_, why)| !why.is_empty())
        .map(|(status, why)| {
            (
                status.to_owned(),
                ResponseBuilder::new().description(why).build().into(),
            )
        })
        .collect()
    }
}
