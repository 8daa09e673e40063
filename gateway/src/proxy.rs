//! [`TrustedProxies`]: whose `Forwarded` / `X-Forwarded-For` headers are
//! believed, and so what a request's client address is.
//!
//! A connection from a configured proxy address (`trusted_proxies`, IPs
//! or CIDRs) names its client in those headers; the client is the
//! rightmost address in the chain that is not itself a trusted proxy (the
//! leftmost one if all are). `Forwarded` (RFC 7239, its `for=` parameters)
//! wins over `X-Forwarded-For`. A connection from any other address is its
//! own client, whatever headers it sends: they are ignored.

use std::net::{IpAddr, SocketAddr};

use hyper::HeaderMap;
use ipnet::IpNet;

/// See the module doc.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

/// A `trusted_proxies` entry that is neither an IP nor a CIDR.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not an IP address or a CIDR (e.g. 10.0.0.0/8)")]
pub struct BadProxy(pub String);

impl TrustedProxies {
    /// Parses the configured entries: `10.1.2.3`, `10.0.0.0/8`, `::1`.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, BadProxy> {
        let nets = entries
            .iter()
            .map(|e| {
                let e = e.as_ref().trim();
                e.parse::<IpNet>()
                    .or_else(|_| e.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| BadProxy(e.to_owned()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { nets })
    }

    /// Whether `ip` is a trusted proxy.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// The client address of a request that arrived from `peer` with
    /// `headers`.
    pub fn client_ip(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer.ip());
        if !self.trusts(peer) {
            return peer;
        }
        let chain = forwarded_for(headers).unwrap_or_else(|| x_forwarded_for(headers));
        let mut client = peer;
        for hop in chain.iter().rev() {
            let Some(ip) = hop.map(canonical) else {
                // An entry we cannot read (`unknown`, an obfuscated name):
                // the last address we could read stands.
                break;
            };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }
}

/// An IPv4 address seen as IPv6-mapped (`::ffff:a.b.c.d`) is that IPv4
/// address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The `for=` addresses of every `Forwarded` header, in order; `None`
/// when there is no such header.
fn forwarded_for(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let mut chain = Vec::new();
    let mut any = false;
    for value in headers.get_all("forwarded") {
        any = true;
        let Ok(value) = value.to_str() else {
            chain.push(None);
            continue;
        };
        for element in value.split(',') {
            let node = element.split(';').find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                k.trim().eq_ignore_ascii_case("for").then(|| v.trim())
            });
            if let Some(node) = node {
                chain.push(parse_node(node.trim_matches('"')));
            }
        }
    }
    any.then_some(chain)
}

/// The addresses of every `X-Forwarded-For` header, in order.
fn x_forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|v| match v.to_str() {
            Ok(v) => v.split(',').map(|s| parse_node(s.trim())).collect(),
            Err(_) => vec![None],
        })
        .collect()
}

/// `1.2.3.4`, `1.2.3.4:5678`, `[::1]`, `[::1]:5678` or `::1`.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(addr) = node.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    node.strip_prefix('[')
        .and_then(|rest| rest.split_once(']'))
        .and_then(|(ip, _)| ip.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    fn peer(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), 40000)
    }

    #[test]
    fn only_a_trusted_peer_is_believed() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8", "192.168.1.1"]).unwrap();
        let h = headers(&[("x-forwarded-for", "203.0.113.7")]);
        assert_eq!(
            proxies.client_ip(peer("10.1.2.3"), &h),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            proxies.client_ip(peer("192.168.1.1"), &h),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        // Anyone else's header is ignored.
        assert_eq!(
            proxies.client_ip(peer("198.51.100.1"), &h),
            "198.51.100.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            TrustedProxies::default().client_ip(peer("10.1.2.3"), &h),
            "10.1.2.3".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn the_client_is_the_rightmost_untrusted_hop() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8"]).unwrap();
        // A client may send its own X-Forwarded-For: the proxy appends.
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.7, 10.0.0.2")]);
        assert_eq!(
            proxies.client_ip(peer("10.0.0.1"), &h),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        let h = headers(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "203.0.113.8"),
        ]);
        assert_eq!(
            proxies.client_ip(peer("10.0.0.1"), &h),
            "203.0.113.8".parse::<IpAddr>().unwrap()
        );
        // Unreadable hop: the last readable one stands.
        let h = headers(&[("x-forwarded-for", "garbage, 10.0.0.3")]);
        assert_eq!(
            proxies.client_ip(peer("10.0.0.1"), &h),
            "10.0.0.3".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn forwarded_wins_and_takes_ports_and_brackets() {
        let proxies = TrustedProxies::parse(&["127.0.0.1", "::1"]).unwrap();
        let h = headers(&[
            (
                "forwarded",
                r#"for=198.51.100.2:1234;proto=https, for="[2001:db8::1]:443""#,
            ),
            ("x-forwarded-for", "203.0.113.9"),
        ]);
        assert_eq!(
            proxies.client_ip(peer("127.0.0.1"), &h),
            "2001:db8::1".parse::<IpAddr>().unwrap()
        );
        let h = headers(&[("forwarded", "for=unknown")]);
        assert_eq!(
            proxies.client_ip(peer("::1"), &h),
            "::1".parse::<IpAddr>().unwrap()
        );
        let mapped = SocketAddr::new("::ffff:127.0.0.1".parse().unwrap(), 1);
        let h = headers(&[("x-forwarded-for", "203.0.113.10")]);
        assert_eq!(
            proxies.client_ip(mapped, &h),
            "203.0.113.10".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn bad_entries_are_named() {
        let e = TrustedProxies::parse(&["10.0.0.0/8", "nonsense"]).unwrap_err();
        assert!(e.to_string().contains("nonsense"));
    }
}
