//! The address of an Apache Ballista scheduler, `df://HOST[:PORT]`: `[engine] url` in the
//! deployment config and `--engine` on the command line. Only the address: the engine's
//! cluster backend (`crate::engine::cluster`) connects to it.

/// The scheduler's port when the URL names none (Ballista's default).
pub const DEFAULT_PORT: u16 = 50050;

/// Not a `df://HOST:PORT` URL.
#[derive(Debug, thiserror::Error)]
#[error("invalid engine {url:?}: {why}")]
pub struct BadClusterUrl {
    /// as given
    pub url: String,
    /// what is wrong
    pub why: String,
}

/// A Ballista scheduler: `df://HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterAddress {
    url: String,
    host: String,
    port: u16,
}

impl ClusterAddress {
    /// Reads `df://HOST[:PORT]` (port 50050 when absent).
    pub fn parse(s: &str) -> Result<ClusterAddress, BadClusterUrl> {
        let bad = |why: &str| BadClusterUrl {
            url: s.to_owned(),
            why: why.to_owned(),
        };
        const FORM: &str = "expected df://HOST:PORT, the address of a Ballista scheduler";
        let u = url::Url::parse(s.trim()).map_err(|_| bad(FORM))?;
        if u.scheme() != "df" {
            return Err(bad(FORM));
        }
        let host = match u.host() {
            Some(url::Host::Domain(d)) if !d.is_empty() => d.to_owned(),
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => format!("[{a}]"),
            _ => return Err(bad("no host: expected df://HOST:PORT")),
        };
        if !u.username().is_empty() || u.password().is_some() {
            return Err(bad("a scheduler URL carries no user or password"));
        }
        if !matches!(u.path(), "" | "/") || u.query().is_some() || u.fragment().is_some() {
            return Err(bad("nothing may follow HOST:PORT"));
        }
        let port = u.port().unwrap_or(DEFAULT_PORT);
        Ok(ClusterAddress {
            url: format!("df://{host}:{port}"),
            host,
            port,
        })
    }

    /// `df://HOST:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The scheduler's host (an IPv6 address in brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The scheduler's port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scheduler is `df://HOST[:PORT]`; anything else is refused with the form to use.
    #[test]
    fn engine_urls() {
        let c = ClusterAddress::parse("df://127.0.0.1:50123").unwrap();
        assert_eq!((c.url(), c.port()), ("df://127.0.0.1:50123", 50123));
        assert_eq!(
            ClusterAddress::parse("df://scheduler.internal")
                .unwrap()
                .url(),
            "df://scheduler.internal:50050"
        );
        assert_eq!(
            ClusterAddress::parse("df://[::1]:7").unwrap().url(),
            "df://[::1]:7"
        );
        for bad in [
            "",
            "127.0.0.1:50050",
            "http://127.0.0.1:50050",
            "df://",
            "df://user:pw@host:1",
            "df://host:1/path",
            "df://host:99999",
        ] {
            let e = ClusterAddress::parse(bad).unwrap_err().to_string();
            assert!(e.starts_with(&format!("invalid engine {bad:?}")), "{e}");
        }
    }
}
