//! Mutual TLS for replication, and the QUIC transport tuning.
//!
//! Both ends present a region certificate and trust only the datastore CA:
//! the server *requires* a client certificate signed by that CA (a peer
//! without one never gets a connection), and the client checks that the
//! server's certificate is signed by the CA and names the region it meant
//! to reach. Only TLS 1.3 (QUIC needs it) and the `ring` provider are used;
//! the provider is passed to every builder rather than installed as the
//! process default, so nothing depends on start-up order and a second
//! provider pulled in by another crate cannot make rustls panic.

use std::sync::Arc;
use std::time::Duration;

use quinn::congestion::BbrConfig;
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{IdleTimeout, TransportConfig, VarInt};
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{CipherSuite, RootCertStore};

use crate::certs::RegionIdentity;
use crate::Error;

/// The ALPN protocol of Meridian replication: its protocol version
/// ([`crate::protocol::PROTOCOL_VERSION`], 2). A peer that does not offer
/// it (one of another version) is refused during the TLS handshake, with
/// "peer doesn't support any known protocol" on both sides, before any
/// message could be misread.
pub const ALPN: &[u8] = b"meridian-repl/2";

/// Per-stream flow-control window: 8 MiB. The default (~1.25 MB) caps one
/// stream near 15 MB/s on a 40 ms one-way link (DESIGN §9); 8 MiB allows
/// ~100 MB/s at an 80 ms round trip, ~50 MB/s at 160 ms.
pub const STREAM_RECEIVE_WINDOW: u32 = 8 << 20;

/// Per-connection flow-control window: 16 MiB, room for the log stream plus
/// a full-sync snapshot stream at once.
pub const CONNECTION_RECEIVE_WINDOW: u32 = 16 << 20;

/// How much a sender may have in flight per connection: 16 MiB, matched to
/// the receive window so neither side is the narrower one.
pub const SEND_WINDOW: u64 = 16 << 20;

/// A connection with nothing received for this long is closed. Long enough
/// to ride out a brief cross-region outage, short enough for lag alarms.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Keep-alive interval, well inside [`IDLE_TIMEOUT`], so a quiet primary
/// (no writes) does not look dead to its secondaries.
pub const KEEP_ALIVE: Duration = Duration::from_secs(2);

/// The one crypto provider replication uses: *ring*'s, with
/// TLS_AES_128_GCM_SHA256 first. *ring* lists AES-256-GCM first, but every
/// log byte is sealed by the primary once per secondary and opened by each
/// secondary, and AES-128 does 10 rounds a block where AES-256 does 14.
/// AES-128-GCM is the suite QUIC itself uses for its Initial packets; the
/// others stay listed, so a peer that lacks it can still connect.
fn provider() -> Arc<CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    provider
        .cipher_suites
        .sort_by_key(|suite| suite.suite() != CipherSuite::TLS13_AES_128_GCM_SHA256);
    Arc::new(provider)
}

fn roots(identity: &RegionIdentity) -> Result<Arc<RootCertStore>, Error> {
    let mut roots = RootCertStore::empty();
    roots.add(identity.ca.clone())?;
    Ok(Arc::new(roots))
}

/// Transport settings shared by both ends.
///
/// - Congestion control is BBR, not quinn's default Cubic: through 40 ms
///   one-way delay and 1% loss Cubic fell to ~0.23 MB/s while BBR held
///   6–19 MB/s (DESIGN §9). Loss on a long path is not congestion.
/// - Windows are [`STREAM_RECEIVE_WINDOW`], [`CONNECTION_RECEIVE_WINDOW`]
///   and [`SEND_WINDOW`]: sized for the bandwidth-delay product of a
///   cross-region link, not a LAN.
/// - [`IDLE_TIMEOUT`] and [`KEEP_ALIVE`] as documented there.
pub fn transport_config() -> TransportConfig {
    let mut transport = TransportConfig::default();
    transport
        .congestion_controller_factory(Arc::new(BbrConfig::default()))
        .stream_receive_window(VarInt::from_u32(STREAM_RECEIVE_WINDOW))
        .receive_window(VarInt::from_u32(CONNECTION_RECEIVE_WINDOW))
        .send_window(SEND_WINDOW)
        .keep_alive_interval(Some(KEEP_ALIVE));
    // 10 s is far below the 2^62 ms limit, so the conversion cannot fail.
    transport.max_idle_timeout(IdleTimeout::try_from(IDLE_TIMEOUT).ok());
    transport
}

/// The quinn server configuration of a region: presents `identity`'s
/// certificate and requires a client certificate signed by the datastore
/// CA.
pub fn server_config(identity: &RegionIdentity) -> Result<quinn::ServerConfig, Error> {
    let crypto = QuicServerConfig::try_from(server_tls(identity)?)?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(Arc::new(transport_config()));
    Ok(config)
}

/// The quinn client configuration of a region: presents `identity`'s
/// certificate and trusts only servers signed by the datastore CA. Which
/// region the server must be is given per connection, as the server name
/// passed to [`quinn::Endpoint::connect`].
pub fn client_config(identity: &RegionIdentity) -> Result<quinn::ClientConfig, Error> {
    let crypto = QuicClientConfig::try_from(client_tls(identity)?)?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(Arc::new(transport_config()));
    Ok(config)
}

/// The TLS side of [`server_config`].
pub(crate) fn server_tls(identity: &RegionIdentity) -> Result<rustls::ServerConfig, Error> {
    let provider = provider();
    let verifier =
        WebPkiClientVerifier::builder_with_provider(roots(identity)?, provider.clone()).build()?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(identity.chain.clone(), identity.key.clone_key())?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    Ok(tls)
}

/// The TLS side of [`client_config`].
pub(crate) fn client_tls(identity: &RegionIdentity) -> Result<rustls::ClientConfig, Error> {
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots(identity)?)
        .with_client_auth_cert(identity.chain.clone(), identity.key.clone_key())?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    Ok(tls)
}

#[cfg(test)]
mod tests {
    use rustls::pki_types::ServerName;
    use rustls::{ClientConnection, ServerConnection};

    use super::*;
    use crate::certs::{self, Overwrite};

    #[test]
    fn alpn_names_the_protocol_version() {
        assert_eq!(
            ALPN,
            format!("meridian-repl/{}", crate::protocol::PROTOCOL_VERSION).as_bytes()
        );
    }

    /// A TLS 1.3 handshake in memory between the two configurations
    /// replication uses (QUIC negotiates its suite the same way): it must
    /// settle on AES-128-GCM.
    #[test]
    fn peers_agree_on_aes_128_gcm() {
        let dir = tempfile::tempdir().unwrap();
        certs::ensure(dir.path(), &["us-east-1", "eu-west-1"], Overwrite::Keep).unwrap();
        let server_id = certs::load(dir.path(), "us-east-1").unwrap();
        let client_id = certs::load(dir.path(), "eu-west-1").unwrap();
        let name = ServerName::try_from("us-east-1").unwrap();
        let mut client =
            ClientConnection::new(Arc::new(client_tls(&client_id).unwrap()), name).unwrap();
        let mut server = ServerConnection::new(Arc::new(server_tls(&server_id).unwrap())).unwrap();
        // A TLS 1.3 handshake with client authentication takes a few
        // flights; 10 rounds is far more than it needs.
        for _ in 0..10 {
            if !client.is_handshaking() && !server.is_handshaking() {
                break;
            }
            let mut wire = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut wire).unwrap();
            }
            let mut read = &wire[..];
            while !read.is_empty() {
                server.read_tls(&mut read).unwrap();
            }
            server.process_new_packets().unwrap();
            let mut wire = Vec::new();
            while server.wants_write() {
                server.write_tls(&mut wire).unwrap();
            }
            let mut read = &wire[..];
            while !read.is_empty() {
                client.read_tls(&mut read).unwrap();
            }
            client.process_new_packets().unwrap();
        }
        assert!(!client.is_handshaking() && !server.is_handshaking());
        for suite in [
            client.negotiated_cipher_suite(),
            server.negotiated_cipher_suite(),
        ] {
            assert_eq!(
                suite.map(|s| s.suite()),
                Some(CipherSuite::TLS13_AES_128_GCM_SHA256)
            );
        }
    }
}
