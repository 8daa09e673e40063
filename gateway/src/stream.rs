//! [`Stream`]: the byte stream under every connection, plaintext TCP or
//! TLS over TCP, so HTTP, the upgrade and the session have one
//! monomorphic path whichever the listener speaks.
//!
//! It is tokio-util's `Either`, which forwards reads and (vectored) writes
//! to the side it holds. The TLS side is boxed: rustls's state is large,
//! and boxing keeps a plaintext connection's stream one pointer wide
//! beyond the TCP stream itself, so idle plaintext sessions cost what
//! they did before TLS existed (see the test below).

use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_util::either::Either;

/// A connection's stream: `Left` plaintext, `Right` TLS.
pub type Stream = Either<TcpStream, Box<TlsStream<TcpStream>>>;

/// A plaintext connection's stream.
pub fn plain(tcp: TcpStream) -> Stream {
    Either::Left(tcp)
}

/// A TLS connection's stream, after its handshake.
pub fn tls(stream: TlsStream<TcpStream>) -> Stream {
    Either::Right(Box::new(stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plaintext_stream_costs_at_most_a_word_more_than_tcp() {
        let (stream, tcp) = (size_of::<Stream>(), size_of::<TcpStream>());
        assert!(stream <= tcp + size_of::<usize>(), "{stream} vs {tcp}");
    }
}
