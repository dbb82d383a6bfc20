//! The client's address: the TCP peer, or, when the peer is a trusted proxy, the rightmost address
//! in `X-Forwarded-For` that is not itself a trusted proxy (each proxy appends the address it saw,
//! so addresses to the left of the first untrusted one may be forged by the client).

use std::net::IpAddr;

use axum::http::HeaderMap;

/// An address block: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    addr: IpAddr,
    prefix: u8,
}

impl Block {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// An entry of `server.trusted_proxies` that is not an address or a CIDR block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    #[error("{0:?} is not an address or CIDR block")]
    NotAnAddress(String),
    #[error("{entry:?}: the prefix must be 0 to {max}")]
    Prefix { entry: String, max: u8 },
}

/// Parses `server.trusted_proxies`: `ADDRESS` or `ADDRESS/PREFIX`.
pub fn parse_proxies(raw: &[String]) -> Result<Vec<Block>, ProxyError> {
    raw.iter()
        .map(|entry| {
            let (addr, prefix) = match entry.split_once('/') {
                Some((a, p)) => (a, Some(p)),
                None => (entry.as_str(), None),
            };
            let addr: IpAddr = addr
                .trim()
                .parse()
                .map_err(|_| ProxyError::NotAnAddress(entry.clone()))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let prefix = match prefix {
                None => max,
                Some(p) => p
                    .trim()
                    .parse::<u8>()
                    .ok()
                    .filter(|p| *p <= max)
                    .ok_or_else(|| ProxyError::Prefix {
                        entry: entry.clone(),
                        max,
                    })?,
            };
            Ok(Block { addr, prefix })
        })
        .collect()
}

/// The address a request came from, as rate limits and the audit log see it.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[Block]) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: IpAddr| trusted.iter().any(|b| b.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    // Each proxy appends the address it received from, so the header is read right to left, from
    // the hop nearest to us: the first address a trusted proxy did not write is the client. Entries
    // left of it were written by the client or by proxies we do not know, and prove nothing. An entry
    // that does not parse ends the walk at the last hop known (a trusted proxy): the client cannot use
    // garbage to make an earlier, forged entry count.
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| v.to_str().unwrap_or(""))
        .flat_map(|v| v.split(','))
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else {
            return client;
        };
        client = ip.to_canonical();
        if !is_trusted(client) {
            return client;
        }
    }
    client
}

/// The client address of the request being served (set by the `observe` middleware).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn only_trusted_proxies_may_name_the_client() {
        let trusted = parse_proxies(&["10.0.0.0/8".into(), "192.0.2.1".into()]).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // An untrusted peer cannot pick its address.
        assert_eq!(
            client_ip(ip("203.0.113.9"), &headers(&["198.51.100.1"]), &trusted),
            ip("203.0.113.9")
        );
        // Through two trusted proxies: the rightmost untrusted address, not the forgeable leftmost.
        assert_eq!(
            client_ip(
                ip("10.1.2.3"),
                &headers(&["6.6.6.6, 198.51.100.7", "192.0.2.1"]),
                &trusted
            ),
            ip("198.51.100.7")
        );
        // IPv4-mapped IPv6 peers count as their IPv4 address.
        assert_eq!(
            client_ip(ip("::ffff:10.0.0.5"), &headers(&["198.51.100.8"]), &trusted),
            ip("198.51.100.8")
        );
        // A trusted peer without the header, or with garbage, is the client itself.
        assert_eq!(
            client_ip(ip("10.0.0.5"), &headers(&[]), &trusted),
            ip("10.0.0.5")
        );
        assert_eq!(
            client_ip(ip("10.0.0.5"), &headers(&["not-an-address"]), &trusted),
            ip("10.0.0.5")
        );
    }

    /// Security review 2 (issue 14): the client wrote `6.6.6.6, x` and the proxy appended the real
    /// address; reading left to right up to the garbage made the forged 6.6.6.6 the client.
    #[test]
    fn forwarded_for_is_read_right_to_left_and_garbage_cannot_promote_a_forged_hop() {
        let trusted = parse_proxies(&["10.0.0.0/8".into()]).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let peer = ip("10.0.0.1");
        assert_eq!(
            client_ip(peer, &headers(&["6.6.6.6, x, 203.0.113.5"]), &trusted),
            ip("203.0.113.5")
        );
        assert_eq!(
            client_ip(peer, &headers(&["6.6.6.6, x", "203.0.113.5"]), &trusted),
            ip("203.0.113.5"),
            "the same across two header lines"
        );
        // Garbage written by (or after) a trusted proxy: the walk stops at the last hop known.
        assert_eq!(
            client_ip(peer, &headers(&["6.6.6.6, x, 10.0.0.9"]), &trusted),
            ip("10.0.0.9")
        );
        assert_eq!(client_ip(peer, &headers(&["6.6.6.6, x"]), &trusted), peer);
        // Every hop trusted: the leftmost is the client.
        assert_eq!(
            client_ip(peer, &headers(&["10.0.0.7, 10.0.0.8"]), &trusted),
            ip("10.0.0.7")
        );
    }

    #[test]
    fn bad_proxy_entries_are_refused() {
        for bad in ["10.0.0.0/33", "example.com", "::1/129", "10.0.0.0/x"] {
            assert!(parse_proxies(&[bad.into()]).is_err(), "{bad}");
        }
        assert!(parse_proxies(&["::1".into(), "fd00::/8".into(), "0.0.0.0/0".into()]).is_ok());
    }
}
