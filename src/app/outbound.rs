//! Where yihao's own outbound requests may go (clients' `jwks_uri`, back-channel logout URIs). In
//! production a loopback, link-local, private (RFC 1918, `fc00::/7`), unspecified or multicast
//! address is refused unless it lies in `server.outbound_private_networks` (security review 11: a
//! client must not make the server call into its own network). The check runs on every address a
//! name resolves to, inside the HTTP client's resolver, so a name that resolves elsewhere at
//! request time (DNS rebinding) is caught too; an address written in the URL is checked before the
//! request.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::web::client_ip::Block;

/// The destinations outbound requests may reach.
#[derive(Debug, Clone, Default)]
pub struct Destinations {
    /// False in development: every address is allowed.
    pub enforce: bool,
    /// Private blocks allowed anyway (`server.outbound_private_networks`).
    pub allowed: Vec<Block>,
}

/// A destination refused by [`Destinations`].
#[derive(Debug, thiserror::Error)]
#[error("{0} is a local or private address not listed in server.outbound_private_networks")]
pub struct Refused(pub IpAddr);

impl Destinations {
    /// Whether `ip` may be called.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        !self.enforce || is_public(ip) || self.allowed.iter().any(|b| b.contains(ip))
    }

    /// Checks a URL whose host is an address (names are checked when they resolve).
    pub fn check_url(&self, uri: &str) -> Result<(), Refused> {
        let host = url::Url::parse(uri).ok().and_then(|u| match u.host()? {
            url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
            url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
            url::Host::Domain(_) => None,
        });
        match host {
            Some(ip) if !self.permits(ip) => Err(Refused(ip)),
            _ => Ok(()),
        }
    }

    /// The process's outbound HTTP client: no redirects followed, a 5-second default limit, and
    /// names resolved only to permitted addresses.
    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            // A proxy from the environment would resolve names itself, past the check below.
            .no_proxy()
            .dns_resolver(Arc::new(self.clone()))
            .build()
            .unwrap_or_default()
    }
}

fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                // 100.64.0.0/10, shared address space (RFC 6598).
                || (v4.octets()[0] == 100 && v4.octets()[1] & 0xc0 == 64))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // fc00::/7 unique local, fe80::/10 link-local.
                || first & 0xfe00 == 0xfc00
                || first & 0xffc0 == 0xfe80)
        }
    }
}

impl reqwest::dns::Resolve for Destinations {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let destinations = self.clone();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let permitted: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| destinations.permits(a.ip()))
                .collect();
            match (permitted.is_empty(), found.first()) {
                (true, Some(first)) => Err(Box::new(Refused(first.ip())) as _),
                _ => Ok(Box::new(permitted.into_iter()) as reqwest::dns::Addrs),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Security review 11: a client could make the server call loopback, link-local or private
    /// addresses through its jwks_uri or back-channel logout URI.
    #[test]
    fn in_production_only_public_or_listed_addresses_are_called() {
        let allowed = crate::web::client_ip::parse_proxies(&["10.20.0.0/16".into()]).unwrap();
        let production = Destinations {
            enforce: true,
            allowed,
        };
        for refused in [
            "http://127.0.0.1/jwks",
            "http://169.254.169.254/latest",
            "http://10.0.0.1/bc",
            "http://192.168.1.1/",
            "http://[::1]/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://0.0.0.0/",
            "http://[::ffff:127.0.0.1]/",
        ] {
            assert!(production.check_url(refused).is_err(), "{refused}");
        }
        for permitted in [
            "https://203.0.113.5/jwks",
            "http://10.20.3.4/bc",
            "https://dept.example.gov.cn/jwks",
        ] {
            assert!(production.check_url(permitted).is_ok(), "{permitted}");
        }
        let development = Destinations::default();
        assert!(development.check_url("http://127.0.0.1/jwks").is_ok());
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_refused_in_production() {
        let production = Destinations {
            enforce: true,
            allowed: Vec::new(),
        };
        let refused = production
            .client()
            .get("http://localhost:9/jwks")
            .send()
            .await
            .unwrap_err();
        let chain = crate::telemetry::ErrorChain(&refused).to_string();
        assert!(chain.contains("local or private address"), "{chain}");
    }
}
