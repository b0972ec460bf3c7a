//! Per-token request rate (SPEC §10 `requests_per_minute`): a fixed one-minute window
//! per token; beyond it 429 with `Retry-After` until the window ends.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Counts requests per token name.
#[derive(Debug)]
pub struct RateLimiter {
    per_minute: u32,
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

impl RateLimiter {
    /// A limiter admitting `per_minute` requests per token and minute.
    pub fn new(per_minute: u32) -> Self {
        RateLimiter {
            per_minute,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Admits one request of `token`, or says how long to wait.
    pub fn admit(&self, token: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let mut w = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = w.entry(token.to_owned()).or_insert((now, 0));
        if now.duration_since(entry.0) >= Duration::from_secs(60) {
            *entry = (now, 0);
        }
        if entry.1 >= self.per_minute {
            return Err(Duration::from_secs(60).saturating_sub(now.duration_since(entry.0)));
        }
        entry.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The n+1-th request of a minute waits; other tokens are not affected.
    #[test]
    fn limits_per_token() {
        let l = RateLimiter::new(2);
        assert!(l.admit("a").is_ok() && l.admit("a").is_ok());
        let wait = l.admit("a").unwrap_err();
        assert!(wait <= Duration::from_secs(60) && wait > Duration::ZERO);
        assert!(l.admit("b").is_ok());
    }
}
