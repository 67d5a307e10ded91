//! QUIC endpoints between regions: sockets, server and client endpoints,
//! and who the peer is.
//!
//! Sockets are made here rather than by quinn so their buffers can be
//! raised first: at full speed the default ~208 KB UDP receive buffer
//! overflows and drops datagrams on loopback (DESIGN §9), which QUIC then
//! has to detect and resend.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::Arc;

use socket2::{Domain, Protocol, Socket, Type};
use tracing::warn;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::certs::RegionIdentity;
use crate::{tls, Error};

/// The UDP receive and send buffer size asked of the kernel: 8 MiB, about
/// 40 ms of a 200 MB/s stream. Linux caps the request at `net.core.rmem_max`
/// / `wmem_max` (often 208 KB); raise those sysctls on replication hosts.
/// What was obtained is logged when it falls short.
pub const UDP_BUFFER_BYTES: usize = 8 << 20;

/// Binds a UDP socket on `addr` with [`UDP_BUFFER_BYTES`] asked for both
/// buffers. A smaller grant is not an error (the node still works, only
/// slower under load); it is logged at `warn`.
pub fn bind_udp(addr: SocketAddr) -> Result<UdpSocket, Error> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
        .map_err(Error::Socket)?;
    if addr.is_ipv6() {
        // Best effort: some systems refuse to change it; the address alone
        // then decides.
        let _ = socket.set_only_v6(false);
    }
    // Failing to raise a buffer is not fatal, and is reported below.
    let _ = socket.set_recv_buffer_size(UDP_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(UDP_BUFFER_BYTES);
    // Linux reports twice what it grants (bookkeeping overhead), so half the
    // request is the threshold for "capped".
    let recv = socket.recv_buffer_size().unwrap_or(0);
    let send = socket.send_buffer_size().unwrap_or(0);
    if recv < UDP_BUFFER_BYTES / 2 || send < UDP_BUFFER_BYTES / 2 {
        warn!(
            requested = UDP_BUFFER_BYTES,
            recv, send, "UDP buffers capped by the kernel; raise net.core.rmem_max and wmem_max"
        );
    }
    socket.bind(&addr.into()).map_err(Error::Socket)?;
    Ok(socket.into())
}

fn endpoint(
    socket: UdpSocket,
    server: Option<quinn::ServerConfig>,
) -> Result<quinn::Endpoint, Error> {
    quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        server,
        socket,
        Arc::new(quinn::TokioRuntime),
    )
    .map_err(Error::Socket)
}

/// A region's replication server endpoint on `addr`: accepts only peers
/// whose certificate the datastore CA signed. Must be called inside a tokio
/// runtime.
pub fn server(addr: SocketAddr, identity: &RegionIdentity) -> Result<quinn::Endpoint, Error> {
    endpoint(bind_udp(addr)?, Some(tls::server_config(identity)?))
}

/// A region's replication client endpoint on an ephemeral port of the
/// family of `peer` (the address it will connect to). Must be called inside
/// a tokio runtime.
pub fn client(peer: SocketAddr, identity: &RegionIdentity) -> Result<quinn::Endpoint, Error> {
    let local: SocketAddr = if peer.is_ipv6() {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    };
    let mut endpoint = endpoint(bind_udp(local)?, None)?;
    endpoint.set_default_client_config(tls::client_config(identity)?);
    Ok(endpoint)
}

/// A region's replication endpoint on `addr` that both accepts peers (as
/// [`server`]) and dials them (as [`client`]), so every region listens on
/// its replication address whatever its role, and a promotion needs no new
/// socket. Must be called inside a tokio runtime.
pub fn node(addr: SocketAddr, identity: &RegionIdentity) -> Result<quinn::Endpoint, Error> {
    let mut endpoint = endpoint(bind_udp(addr)?, Some(tls::server_config(identity)?))?;
    endpoint.set_default_client_config(tls::client_config(identity)?);
    Ok(endpoint)
}

/// The region named by the peer's certificate (its subject common name),
/// which the TLS handshake has already checked against the datastore CA.
///
/// On the server side this is who connected; the client side already
/// checked the server's name when it connected.
pub fn peer_region(connection: &quinn::Connection) -> Result<String, Error> {
    let identity = connection
        .peer_identity()
        .ok_or_else(|| Error::PeerIdentity("no certificate".into()))?;
    let chain = identity
        .downcast::<Vec<rustls_pki_types::CertificateDer<'static>>>()
        .map_err(|_| Error::PeerIdentity("not an X.509 chain".into()))?;
    let leaf = chain
        .first()
        .ok_or_else(|| Error::PeerIdentity("empty certificate chain".into()))?;
    let (_, cert) = X509Certificate::from_der(leaf)
        .map_err(|e| Error::PeerIdentity(format!("unparsable certificate: {e}")))?;
    let name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .ok_or_else(|| Error::PeerIdentity("certificate has no common name".into()))?;
    crate::certs::validate_region(name)?;
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests;
