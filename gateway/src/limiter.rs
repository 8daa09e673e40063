//! [`ConnLimiter`]: bounds on open TCP connections, per node and per client
//! IP. A [`ConnPermit`] is held for the life of a connection (including the
//! WebSocket session it upgrades to) and gives its slot back on drop;
//! [`ConnInfo`] carries it, with the peer's address, to every request.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use dashmap::DashMap;

use crate::metrics::{Metrics, Rejection};

/// What each request learns about its connection (an axum `Extension`).
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The client's address.
    pub peer: SocketAddr,
    /// The connection's slot; a WebSocket session keeps it.
    pub permit: Arc<ConnPermit>,
}

/// Counts open connections against the configured limits.
#[derive(Debug)]
pub struct ConnLimiter {
    max_total: usize,
    max_per_ip: usize,
    total: AtomicUsize,
    per_ip: DashMap<IpAddr, usize>,
    metrics: Metrics,
}

/// One open connection's slot (and its address's, unless the address
/// is a trusted proxy's: the client's is then counted once known, with
/// [`ConnLimiter::acquire_ip`]).
#[derive(Debug)]
pub struct ConnPermit {
    limiter: Arc<ConnLimiter>,
    _ip: Option<IpPermit>,
}

/// One connection's slot among its client address's.
#[derive(Debug)]
pub struct IpPermit {
    limiter: Arc<ConnLimiter>,
    ip: IpAddr,
}

impl ConnLimiter {
    /// A limiter allowing `max_total` connections, `max_per_ip` per IP.
    pub fn new(max_total: usize, max_per_ip: usize, metrics: Metrics) -> Arc<Self> {
        Arc::new(Self {
            max_total,
            max_per_ip,
            total: AtomicUsize::new(0),
            per_ip: DashMap::new(),
            metrics,
        })
    }

    /// Takes a slot for a connection from `ip` (`None`: counted in the
    /// node's total only), or says which limit is hit.
    pub fn acquire(self: &Arc<Self>, ip: Option<IpAddr>) -> Result<ConnPermit, Rejection> {
        if self.total.fetch_add(1, Ordering::AcqRel) >= self.max_total {
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(Rejection::MaxConnections);
        }
        let ip = match ip.map(|ip| self.acquire_ip(ip)).transpose() {
            Ok(ip) => ip,
            Err(why) => {
                self.total.fetch_sub(1, Ordering::AcqRel);
                return Err(why);
            }
        };
        self.metrics.connections_open.inc();
        Ok(ConnPermit {
            limiter: Arc::clone(self),
            _ip: ip,
        })
    }

    /// Takes a slot among `ip`'s connections (`limits.max_connections_per_ip`).
    pub fn acquire_ip(self: &Arc<Self>, ip: IpAddr) -> Result<IpPermit, Rejection> {
        let mut count = self.per_ip.entry(ip).or_insert(0);
        if *count >= self.max_per_ip {
            return Err(Rejection::PerIpLimit);
        }
        *count += 1;
        Ok(IpPermit {
            limiter: Arc::clone(self),
            ip,
        })
    }

    /// Open connections now.
    pub fn open(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        let l = &self.limiter;
        l.total.fetch_sub(1, Ordering::AcqRel);
        l.metrics.connections_open.dec();
    }
}

impl Drop for IpPermit {
    fn drop(&mut self) {
        self.limiter.per_ip.remove_if_mut(&self.ip, |_, n| {
            *n -= 1;
            *n == 0
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_and_total_limits_release_on_drop() {
        let l = ConnLimiter::new(3, 2, Metrics::new());
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let p1 = l.acquire(Some(a)).unwrap();
        let _p2 = l.acquire(Some(a)).unwrap();
        assert_eq!(l.acquire(Some(a)).unwrap_err(), Rejection::PerIpLimit);
        assert_eq!(l.open(), 2);
        let _p3 = l.acquire(Some(b)).unwrap();
        assert_eq!(l.acquire(Some(b)).unwrap_err(), Rejection::MaxConnections);
        drop(p1);
        assert_eq!(l.open(), 2);
        l.acquire(Some(a)).unwrap();
    }

    #[test]
    fn a_proxys_connections_count_per_client_once_known() {
        let l = ConnLimiter::new(10, 1, Metrics::new());
        let proxy = l.acquire(None).unwrap();
        let _other = l.acquire(None).unwrap();
        let client: IpAddr = [10, 0, 0, 9].into();
        let slot = l.acquire_ip(client).unwrap();
        assert_eq!(l.acquire_ip(client).unwrap_err(), Rejection::PerIpLimit);
        drop(slot);
        l.acquire_ip(client).unwrap();
        drop(proxy);
        assert_eq!(l.open(), 1);
    }
}
