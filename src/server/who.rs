//! Who is acting: a system's bearer token or a signed-in staff user, as the one identity
//! every handler and page checks roles, regions, masking and caps on.

use super::config::{Role, Token};

/// The identity of a request.
#[derive(Debug, Clone)]
pub struct Who {
    /// The actor of the audit log and of jobs: `token:NAME` or `user:NAME`.
    pub actor: String,
    /// Its key in the rate limit, the people-a-day count, metrics and logs: the token's
    /// name, or `user:NAME` (token names hold no `:`, so the two never meet).
    pub label: String,
    /// Its role.
    pub role: Role,
    /// Region-code prefixes it may check and see.
    pub regions: Vec<String>,
    /// Distinct people it may have checked a day, API and batches together.
    pub max_people_per_day: usize,
}

impl Who {
    /// The identity of a configured token.
    pub fn token(t: &Token) -> Who {
        Who {
            actor: format!("token:{}", t.name),
            label: t.name.clone(),
            role: t.role,
            regions: t.regions.clone(),
            max_people_per_day: t.max_people_per_day,
        }
    }

    /// The identity of staff account `name`.
    pub fn user(name: &str, role: Role, regions: Vec<String>, max_people_per_day: usize) -> Who {
        Who {
            actor: format!("user:{name}"),
            label: format!("user:{name}"),
            role,
            regions,
            max_people_per_day,
        }
    }

    /// Its name in `/metrics` (an open route): a token's name, but never an account's —
    /// staff accounts are counted together as `pages`, so the names of the centre's
    /// clerks are not published.
    pub fn metric_label(&self) -> &str {
        if self.actor.starts_with("user:") {
            "pages"
        } else {
            &self.label
        }
    }

    /// Whether `region_code` is within its regions.
    pub fn covers(&self, region_code: &str) -> bool {
        self.regions
            .iter()
            .any(|p| region_code.starts_with(p.as_str()))
    }
}
