//! Real QUIC connections on 127.0.0.1 between endpoints built from
//! certificate directories. Every wait is bounded.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tokio::sync::mpsc;

use super::*;
use crate::certs::{self, Overwrite};

/// Upper bound on any single wait in these tests.
const WAIT: Duration = Duration::from_secs(5);

async fn bounded<F: Future>(what: &str, fut: F) -> F::Output {
    tokio::time::timeout(WAIT, fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: no result within {WAIT:?}"))
}

fn identities(dir: &Path, regions: &[&str]) -> Vec<RegionIdentity> {
    certs::ensure(dir, regions, Overwrite::Keep).unwrap();
    regions
        .iter()
        .map(|r| certs::load(dir, r).unwrap())
        .collect()
}

fn loopback() -> SocketAddr {
    (Ipv4Addr::LOCALHOST, 0).into()
}

/// What the server's accept loop saw of one incoming connection.
#[derive(Debug)]
enum Seen {
    /// Handshake completed: the peer's region, then whatever it sent on its
    /// first bidirectional stream (echoed back).
    Authenticated(String, Result<Vec<u8>, String>),
    /// Handshake failed on the server side.
    Refused(String),
}

/// Runs an accept loop on `server` that reports every incoming connection.
fn spawn_accept_loop(server: quinn::Endpoint) -> mpsc::UnboundedReceiver<Seen> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(incoming) = server.accept().await {
            let seen = match incoming.await {
                Err(e) => Seen::Refused(e.to_string()),
                Ok(conn) => {
                    let region = peer_region(&conn).unwrap();
                    let echoed = echo_one_stream(&conn).await;
                    Seen::Authenticated(region, echoed)
                }
            };
            if tx.send(seen).is_err() {
                return;
            }
        }
    });
    rx
}

async fn echo_one_stream(conn: &quinn::Connection) -> Result<Vec<u8>, String> {
    let (mut send, mut recv) = conn.accept_bi().await.map_err(|e| e.to_string())?;
    let data = recv.read_to_end(1 << 20).await.map_err(|e| e.to_string())?;
    send.write_all(&data).await.map_err(|e| e.to_string())?;
    send.finish().map_err(|e| e.to_string())?;
    // Wait until the client has read the echo and closed.
    let _ = conn.closed().await;
    Ok(data)
}

/// Opens a stream, sends `payload`, and reads the reply to its end.
async fn round_trip(conn: &quinn::Connection, payload: &[u8]) -> Result<Vec<u8>, String> {
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
    send.write_all(payload).await.map_err(|e| e.to_string())?;
    send.finish().map_err(|e| e.to_string())?;
    recv.read_to_end(1 << 20).await.map_err(|e| e.to_string())
}

#[tokio::test]
async fn mutual_tls_connection_echoes_and_names_the_client_region() {
    let tmp = tempfile::tempdir().unwrap();
    let ids = identities(tmp.path(), &["us-east-1", "eu-west-1"]);
    let (primary, secondary) = (&ids[0], &ids[1]);

    let server = server(loopback(), primary).unwrap();
    let addr = server.local_addr().unwrap();
    let mut seen = spawn_accept_loop(server);

    let client = client(addr, secondary).unwrap();
    let conn = bounded("handshake", client.connect(addr, "us-east-1").unwrap())
        .await
        .unwrap();
    assert_eq!(peer_region(&conn).unwrap(), "us-east-1");
    assert_eq!(
        conn.handshake_data()
            .unwrap()
            .downcast::<quinn::crypto::rustls::HandshakeData>()
            .unwrap()
            .protocol
            .as_deref(),
        Some(tls::ALPN)
    );

    // The transport settings are in force on the live connection.
    assert!(conn
        .congestion_state()
        .into_any()
        .downcast::<quinn::congestion::Bbr>()
        .is_ok());

    let payload = b"SET k v, seq 42".repeat(1000);
    let echoed = bounded("echo", round_trip(&conn, &payload)).await.unwrap();
    assert_eq!(echoed, payload);
    conn.close(0u32.into(), b"done");

    match bounded("server report", seen.recv()).await.unwrap() {
        Seen::Authenticated(region, received) => {
            assert_eq!(region, "eu-west-1");
            assert_eq!(received.unwrap(), payload);
        }
        other => panic!("expected an authenticated connection, got {other:?}"),
    }
    bounded("client idle", client.wait_idle()).await;
}

#[tokio::test]
async fn client_signed_by_another_ca_never_reaches_the_server() {
    let ours = tempfile::tempdir().unwrap();
    let theirs = tempfile::tempdir().unwrap();
    let primary = identities(ours.path(), &["us-east-1"]).remove(0);
    let mut intruder = identities(theirs.path(), &["eu-west-1"]).remove(0);
    // The intruder trusts our CA, so its side of the handshake accepts the
    // server: only the server's check of the client certificate stands in
    // the way.
    intruder.ca = primary.ca.clone();

    let server = server(loopback(), &primary).unwrap();
    let addr = server.local_addr().unwrap();
    let mut seen = spawn_accept_loop(server);

    let client = client(addr, &intruder).unwrap();
    // With TLS 1.3 the client may finish its half of the handshake before
    // the server rejects its certificate (DESIGN §9), so either outcome of
    // `connect` is possible; what must not happen is any exchange.
    let outcome = bounded(
        "intruder handshake",
        client.connect(addr, "us-east-1").unwrap(),
    )
    .await;
    if let Ok(conn) = outcome {
        let echoed = bounded("intruder stream", round_trip(&conn, b"FLUSHALL")).await;
        assert!(echoed.is_err(), "intruder got a reply: {echoed:?}");
    }

    match bounded("server report", seen.recv()).await.unwrap() {
        Seen::Refused(reason) => assert!(reason.contains("certificate"), "{reason}"),
        other => panic!("server accepted a client from another CA: {other:?}"),
    }
    // And nothing else was accepted afterwards.
    let more = tokio::time::timeout(Duration::from_millis(300), seen.recv()).await;
    assert!(more.is_err(), "unexpected second connection: {more:?}");
}

#[tokio::test]
async fn server_signed_by_another_ca_is_refused_by_the_client() {
    let ours = tempfile::tempdir().unwrap();
    let theirs = tempfile::tempdir().unwrap();
    let secondary = identities(ours.path(), &["eu-west-1"]).remove(0);
    let impostor = identities(theirs.path(), &["us-east-1"]).remove(0);

    let server = server(loopback(), &impostor).unwrap();
    let addr = server.local_addr().unwrap();
    let mut seen = spawn_accept_loop(server);

    let client = client(addr, &secondary).unwrap();
    let outcome = bounded("handshake", client.connect(addr, "us-east-1").unwrap()).await;
    assert!(outcome.is_err(), "client accepted a server from another CA");
    match bounded("server report", seen.recv()).await.unwrap() {
        Seen::Refused(reason) => assert!(!reason.is_empty()),
        other => panic!("server kept a connection the client refused: {other:?}"),
    }
}

#[tokio::test]
async fn server_of_another_region_is_refused_by_the_client() {
    let tmp = tempfile::tempdir().unwrap();
    let ids = identities(tmp.path(), &["us-east-1", "eu-west-1"]);

    let server = server(loopback(), &ids[0]).unwrap();
    let addr = server.local_addr().unwrap();
    let _seen = spawn_accept_loop(server);

    let client = client(addr, &ids[1]).unwrap();
    let outcome = bounded("handshake", client.connect(addr, "ap-southeast-1").unwrap()).await;
    let err = outcome.expect_err("client accepted us-east-1 as ap-southeast-1");
    assert!(err.to_string().contains("certificate"), "{err}");
}

/// A node of another protocol version (its ALPN says so) is refused at
/// the TLS handshake, and the refusal says why.
#[tokio::test]
async fn a_peer_of_another_protocol_version_is_refused_at_the_handshake() {
    let tmp = tempfile::tempdir().unwrap();
    let ids = identities(tmp.path(), &["us-east-1", "eu-west-1"]);
    let server = server(loopback(), &ids[0]).unwrap();
    let addr = server.local_addr().unwrap();
    let mut seen = spawn_accept_loop(server);

    let mut old = tls::client_tls(&ids[1]).unwrap();
    old.alpn_protocols = vec![b"meridian-repl/1".to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(old).unwrap();
    let mut client = quinn::Endpoint::client(loopback()).unwrap();
    client.set_default_client_config(quinn::ClientConfig::new(std::sync::Arc::new(crypto)));
    let outcome = bounded("handshake", client.connect(addr, "us-east-1").unwrap()).await;
    let err = outcome.expect_err("a peer of protocol version 1 was accepted");
    assert!(err.to_string().contains("known protocol"), "{err}");
    match bounded("server report", seen.recv()).await.unwrap() {
        Seen::Refused(reason) => assert!(reason.contains("protocol"), "{reason}"),
        other => panic!("server kept a connection of another version: {other:?}"),
    }
}

#[test]
fn transport_windows_are_the_documented_ones() {
    const { assert!(tls::STREAM_RECEIVE_WINDOW <= tls::CONNECTION_RECEIVE_WINDOW) };
    const { assert!(tls::KEEP_ALIVE.as_millis() * 3 <= tls::IDLE_TIMEOUT.as_millis()) };
    // quinn's Debug shows the windows (not the congestion controller, which
    // the connection test checks on a live connection).
    let shown = format!("{:?}", tls::transport_config());
    for expected in [
        format!("stream_receive_window: {}", tls::STREAM_RECEIVE_WINDOW),
        format!("receive_window: {}", tls::CONNECTION_RECEIVE_WINDOW),
        format!("send_window: {}", tls::SEND_WINDOW),
    ] {
        assert!(shown.contains(&expected), "{expected} not in {shown}");
    }
}
