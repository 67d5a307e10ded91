//! Client TLS (`--tls-port`, issue 7): redis-cli and the `redis` crate
//! over TLS with a client certificate, a client without one refused, TLS
//! only (`--port 0`), clear start-up errors, and a certificate reloaded on
//! SIGHUP. Every certificate is made here by rcgen, valid for 127.0.0.1.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use meridian_tests::{fails_to_start, free_port, meridian_bin, meridian_only, redis_cli, Server};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// A test CA with a server certificate (for 127.0.0.1 and `localhost`)
/// and a client certificate, written as PEM files in a temporary folder.
struct Pki {
    dir: tempfile::TempDir,
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "meridian test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let pki = Pki {
            dir: tempfile::tempdir().unwrap(),
            ca,
        };
        std::fs::write(pki.path("ca.pem"), pki.ca.pem()).unwrap();
        pki.issue("server", "server");
        pki.issue("client", "client");
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn arg(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    /// Writes `<name>.pem` and `<name>-key.pem`, signed by the CA.
    fn issue(&self, name: &str, cn: &str) {
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        std::fs::write(self.path(&format!("{name}.pem")), cert.pem()).unwrap();
        std::fs::write(self.path(&format!("{name}-key.pem")), key.serialize_pem()).unwrap();
    }

    /// `--tls-port P --tls-cert-file ... --tls-key-file ... --tls-ca-cert-file ...`.
    fn server_args(&self, tls_port: u16) -> Vec<String> {
        vec![
            "--tls-port".into(),
            tls_port.to_string(),
            "--tls-cert-file".into(),
            self.arg("server.pem"),
            "--tls-key-file".into(),
            self.arg("server-key.pem"),
            "--tls-ca-cert-file".into(),
            self.arg("ca.pem"),
        ]
    }

    /// A rustls client trusting the CA, presenting the client certificate
    /// when `with_cert`.
    fn client_config(&self, with_cert: bool) -> Arc<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(self.path("ca.pem")).unwrap())
            .unwrap();
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let config = if with_cert {
            let chain = CertificateDer::pem_file_iter(self.path("client.pem"))
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = PrivateKeyDer::from_pem_file(self.path("client-key.pem")).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        } else {
            builder.with_no_client_auth()
        };
        Arc::new(config)
    }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// A raw TLS client: sends `PING`, returns the reply (or the error) and
/// the certificate the server presented.
fn tls_ping(
    config: Arc<rustls::ClientConfig>,
    port: u16,
) -> (std::io::Result<String>, Option<Vec<u8>>) {
    let name = ServerName::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST).into());
    let conn = rustls::ClientConnection::new(config, name).unwrap();
    let sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    let result = (|| {
        tls.write_all(b"*1\r\n$4\r\nPING\r\n")?;
        let mut buf = [0u8; 64];
        let n = tls.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
    })();
    let served = tls
        .conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.as_ref().to_vec());
    (result, served)
}

/// redis-cli over TLS: `redis-cli --tls --cacert ... [--cert --key] -p P args`.
fn cli_tls(pki: &Pki, port: u16, with_cert: bool, args: &[&str]) -> (bool, String) {
    let mut cmd = Command::new(redis_cli());
    cmd.args(["--tls", "--cacert", &pki.arg("ca.pem")]);
    if with_cert {
        cmd.args(["--cert", &pki.arg("client.pem")]);
        cmd.args(["--key", &pki.arg("client-key.pem")]);
    }
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string()]);
    cmd.args(args);
    let out = cmd.output().expect("running redis-cli");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text.trim().to_owned())
}

#[test]
fn redis_cli_with_a_client_certificate() {
    let pki = Pki::new();
    let tls_port = free_port();
    let server = Server::start_with(&strs(&pki.server_args(tls_port)));
    let (ok, out) = cli_tls(&pki, tls_port, true, &["PING"]);
    assert!(ok && out == "PONG", "{out}");
    let (ok, out) = cli_tls(&pki, tls_port, true, &["SET", "k", "over tls"]);
    assert!(ok && out == "OK", "{out}");
    // The plain port serves the same data beside it.
    let mut plain = server.conn();
    let v: String = redis::cmd("GET").arg("k").query(&mut plain).unwrap();
    assert_eq!(v, "over tls");
}

#[test]
fn redis_crate_over_tls() {
    let pki = Pki::new();
    let tls_port = free_port();
    let _server = Server::start_with(&strs(&pki.server_args(tls_port)));
    let read = |name: &str| std::fs::read(pki.path(name)).unwrap();
    let client = redis::Client::build_with_tls(
        format!("rediss://127.0.0.1:{tls_port}/"),
        redis::TlsCertificates {
            client_tls: Some(redis::ClientTlsConfig {
                client_cert: read("client.pem"),
                client_key: read("client-key.pem"),
            }),
            root_cert: Some(read("ca.pem")),
        },
    )
    .unwrap();
    let mut con = client
        .get_connection_with_timeout(Duration::from_secs(5))
        .unwrap();
    let value = "x".repeat(300_000);
    let _: () = redis::cmd("SET")
        .arg("big")
        .arg(&value)
        .query(&mut con)
        .unwrap();
    let got: String = redis::cmd("GET").arg("big").query(&mut con).unwrap();
    assert_eq!(got.len(), value.len());
    // A pipeline bigger than one TLS record each way.
    let mut pipe = redis::pipe();
    for i in 0..2000 {
        pipe.cmd("INCR").arg("n").ignore();
        if i == 1999 {
            pipe.cmd("GET").arg("n");
        }
    }
    let (n,): (u64,) = pipe.query(&mut con).unwrap();
    assert_eq!(n, 2000);
}

#[test]
fn a_client_without_a_certificate_is_refused() {
    let pki = Pki::new();
    let tls_port = free_port();
    let server = Server::start_with(&strs(&pki.server_args(tls_port)));
    let (ok, out) = cli_tls(&pki, tls_port, false, &["PING"]);
    assert!(
        !(ok && out == "PONG"),
        "served without a certificate: {out}"
    );
    let (reply, _) = tls_ping(pki.client_config(false), tls_port);
    assert!(reply.is_err(), "served without a certificate: {reply:?}");
    let (reply, _) = tls_ping(pki.client_config(true), tls_port);
    assert_eq!(reply.unwrap(), "+PONG\r\n");
    // A certificate from another CA is refused too.
    let stranger = Pki::new();
    let mut config = (*stranger.client_config(true)).clone();
    config
        .dangerous()
        .set_certificate_verifier(Arc::new(
            AnyServer(rustls::crypto::ring::default_provider()),
        ));
    let (reply, _) = tls_ping(Arc::new(config), tls_port);
    assert!(reply.is_err(), "served a stranger's certificate: {reply:?}");
    drop(server);

    // `optional`: no certificate is fine, a bad one is not.
    if !meridian_only("tls-auth-clients optional refusing a bad certificate") {
        return;
    }
    let tls_port = free_port();
    let mut args = pki.server_args(tls_port);
    args.extend(["--tls-auth-clients".into(), "optional".into()]);
    let _server = Server::start_with(&strs(&args));
    let (reply, _) = tls_ping(pki.client_config(false), tls_port);
    assert_eq!(reply.unwrap(), "+PONG\r\n");
    let mut config = (*stranger.client_config(true)).clone();
    config
        .dangerous()
        .set_certificate_verifier(Arc::new(
            AnyServer(rustls::crypto::ring::default_provider()),
        ));
    let (reply, _) = tls_ping(Arc::new(config), tls_port);
    assert!(reply.is_err(), "served a stranger's certificate: {reply:?}");
}

/// Accepts any server certificate (the stranger's CA does not know ours).
#[derive(Debug)]
struct AnyServer(rustls::crypto::CryptoProvider);

impl rustls::client::danger::ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Starts `meridian serve` with only a TLS listener and waits until a TLS
/// PING is answered.
fn start_tls_only(pki: &Pki, tls_port: u16) -> std::process::Child {
    let mut args = vec!["serve".to_string(), "--port".into(), "0".into()];
    args.extend(pki.server_args(tls_port));
    let mut child = Command::new(meridian_bin())
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if TcpStream::connect(("127.0.0.1", tls_port)).is_ok() {
            let (reply, _) = tls_ping(pki.client_config(true), tls_port);
            if reply.is_ok() {
                return child;
            }
        }
        assert!(Instant::now() < deadline, "no TLS listener in time");
        assert!(child.try_wait().unwrap().is_none(), "server exited");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn port_zero_serves_tls_only() {
    if !meridian_only("starts meridian directly") {
        return;
    }
    let pki = Pki::new();
    let tls_port = free_port();
    let mut child = start_tls_only(&pki, tls_port);
    let (ok, out) = cli_tls(&pki, tls_port, true, &["CONFIG", "GET", "port"]);
    assert!(ok, "{out}");
    assert!(out.ends_with('0'), "{out}");
    let _ = child.kill();
    let _ = child.wait();
}

/// A server with `pki`'s TLS listener on a free port, checked to answer
/// PING over TLS with `server.pem`; the server and that port.
fn serving_server_pem(pki: &Pki) -> (Server, u16) {
    let tls_port = free_port();
    let server = Server::start_with(&strs(&pki.server_args(tls_port)));
    let (reply, served) = tls_ping(pki.client_config(true), tls_port);
    assert_eq!(reply.unwrap(), "+PONG\r\n");
    assert_eq!(
        served.expect("a served certificate"),
        der(&pki.path("server.pem"))
    );
    (server, tls_port)
}

#[test]
fn sighup_reloads_the_certificate() {
    if !meridian_only("SIGHUP certificate reload") {
        return;
    }
    let pki = Pki::new();
    let (server, tls_port) = serving_server_pem(&pki);
    // What it served (the helper checked): the certificate before renewal.
    let before = der(&pki.path("server.pem"));

    // A connection opened before the reload keeps working.
    let name = ServerName::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST).into());
    let conn = rustls::ClientConnection::new(pki.client_config(true), name).unwrap();
    let sock = TcpStream::connect(("127.0.0.1", tls_port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut old = rustls::StreamOwned::new(conn, sock);
    old.write_all(b"PING\r\n").unwrap();
    let mut buf = [0u8; 7];
    old.read_exact(&mut buf).unwrap();

    pki.issue("server", "server renewed");
    let renewed = der(&pki.path("server.pem"));
    assert_ne!(renewed, before);
    server.signal(libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (reply, served) = tls_ping(pki.client_config(true), tls_port);
        assert_eq!(reply.unwrap(), "+PONG\r\n");
        if served.as_deref() == Some(&renewed[..]) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still serving the old certificate"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    old.write_all(b"PING\r\n").unwrap();
    old.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"+PONG\r\n");

    // A broken file on reload keeps the running certificate.
    std::fs::write(pki.path("server.pem"), "not a certificate").unwrap();
    server.signal(libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(300));
    let (reply, served) = tls_ping(pki.client_config(true), tls_port);
    assert_eq!(reply.unwrap(), "+PONG\r\n");
    assert_eq!(served.as_deref(), Some(&renewed[..]));
    assert!(
        server.log().contains("TLS reload failed"),
        "{}",
        server.log()
    );
}

fn der(pem: &Path) -> Vec<u8> {
    CertificateDer::from_pem_file(pem)
        .unwrap()
        .as_ref()
        .to_vec()
}

#[test]
fn bad_tls_files_stop_start_up_with_the_option_named() {
    if !meridian_only("meridian's start-up messages") {
        return;
    }
    let pki = Pki::new();
    let port = free_port().to_string();
    let tls = free_port().to_string();
    let ca = pki.arg("ca.pem");
    let cert = pki.arg("server.pem");
    let key = pki.arg("server-key.pem");
    let missing = pki.arg("nope.pem");
    let base = ["--port", &port, "--tls-port", &tls];
    fn with<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
        base.iter().chain(extra).copied().collect()
    }
    fails_to_start(
        &with(
            &base,
            &[
                "--tls-cert-file",
                &missing,
                "--tls-key-file",
                &key,
                "--tls-ca-cert-file",
                &ca,
            ],
        ),
        &format!("tls-cert-file '{missing}': No such file"),
    );
    fails_to_start(
        &with(
            &base,
            &[
                "--tls-cert-file",
                &cert,
                "--tls-key-file",
                &cert,
                "--tls-ca-cert-file",
                &ca,
            ],
        ),
        "tls-key-file",
    );
    fails_to_start(
        &with(&base, &["--tls-cert-file", &cert, "--tls-key-file", &key]),
        "needs --tls-ca-cert-file",
    );
    fails_to_start(
        &with(&base, &["--tls-key-file", &key]),
        "needs --tls-cert-file",
    );
    // Another key than the certificate's.
    let client_key = pki.arg("client-key.pem");
    fails_to_start(
        &with(
            &base,
            &[
                "--tls-cert-file",
                &cert,
                "--tls-key-file",
                &client_key,
                "--tls-auth-clients",
                "no",
            ],
        ),
        "tls-cert-file",
    );
    fails_to_start(&["--port", "0"], "--port 0");
}

/// A rustls client with the client certificate that speaks only TLS 1.2.
fn tls12_only(pki: &Pki) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(pki.path("ca.pem")).unwrap())
        .unwrap();
    let chain = CertificateDer::pem_file_iter(pki.path("client.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(pki.path("client-key.pem")).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    Arc::new(config)
}

#[test]
fn config_set_rotates_the_certificate_for_new_connections() {
    if !meridian_only("CONFIG SET tls-* reload") {
        return;
    }
    let pki = Pki::new();
    let (server, tls_port) = serving_server_pem(&pki);

    // A connection opened before the change, and a redis crate client.
    let name = ServerName::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST).into());
    let conn = rustls::ClientConnection::new(pki.client_config(true), name).unwrap();
    let sock = TcpStream::connect(("127.0.0.1", tls_port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut old = rustls::StreamOwned::new(conn, sock);
    let mut buf = [0u8; 7];
    old.write_all(b"PING\r\n").unwrap();
    old.read_exact(&mut buf).unwrap();

    pki.issue("rotated", "server rotated");
    let rotated = der(&pki.path("rotated.pem"));
    let (ok, out) = cli_tls(
        &pki,
        tls_port,
        true,
        &[
            "CONFIG",
            "SET",
            "tls-cert-file",
            &pki.arg("rotated.pem"),
            "tls-key-file",
            &pki.arg("rotated-key.pem"),
        ],
    );
    assert!(ok && out == "OK", "{out}");
    // Applied before the reply: the next connection sees it.
    let (reply, served) = tls_ping(pki.client_config(true), tls_port);
    assert_eq!(reply.unwrap(), "+PONG\r\n");
    assert_eq!(served.as_deref(), Some(&rotated[..]));
    old.write_all(b"PING\r\n").unwrap();
    old.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"+PONG\r\n");
    let mut plain = server.conn();
    let got: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("tls-cert-file")
        .query(&mut plain)
        .unwrap();
    assert_eq!(got, ["tls-cert-file".to_string(), pki.arg("rotated.pem")]);

    // A bad file, or a key that is not the certificate's, is refused and
    // the running certificate stays.
    let refused = |args: &[&str]| {
        let e = redis::cmd("CONFIG")
            .arg("SET")
            .arg(args)
            .query::<()>(&mut server.conn())
            .unwrap_err();
        assert!(
            e.to_string().contains("Unable to update TLS configuration"),
            "{e}"
        );
        let (reply, served) = tls_ping(pki.client_config(true), tls_port);
        assert_eq!(reply.unwrap(), "+PONG\r\n");
        assert_eq!(served.as_deref(), Some(&rotated[..]));
    };
    refused(&["tls-cert-file", "/nonexistent/cert.pem"]);
    refused(&["tls-key-file", &pki.arg("server-key.pem")]);
    refused(&["tls-ciphersuites", "TLS_NO_SUCH_SUITE"]);
    let e = redis::cmd("CONFIG")
        .arg("SET")
        .arg("tls-port")
        .arg("1")
        .query::<()>(&mut plain)
        .unwrap_err();
    assert!(e.to_string().contains("can't set immutable config"), "{e}");

    // tls-protocols: TLS 1.3 only refuses a TLS 1.2 client.
    assert!(tls_ping(tls12_only(&pki), tls_port).0.is_ok());
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("tls-protocols")
        .arg("TLSv1.3")
        .query(&mut plain)
        .unwrap();
    assert!(tls_ping(tls12_only(&pki), tls_port).0.is_err());
    assert!(tls_ping(pki.client_config(true), tls_port).0.is_ok());
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("tls-protocols")
        .arg("TLSv1.2 TLSv1.3")
        .arg("tls-ciphersuites")
        .arg("TLS_CHACHA20_POLY1305_SHA256")
        .query(&mut plain)
        .unwrap();
    assert!(tls_ping(tls12_only(&pki), tls_port).0.is_ok());

    // tls-auth-clients no: a client without a certificate gets in.
    assert!(tls_ping(pki.client_config(false), tls_port).0.is_err());
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("tls-auth-clients")
        .arg("no")
        .query(&mut plain)
        .unwrap();
    assert_eq!(
        tls_ping(pki.client_config(false), tls_port).0.unwrap(),
        "+PONG\r\n"
    );

    // Only an admin-capable user may change it.
    let _: () = redis::cmd("ACL")
        .arg(&["SETUSER", "app", "on", ">pw", "~*", "+@all", "-@admin"])
        .query(&mut plain)
        .unwrap();
    let mut app = redis::Client::open(format!("redis://app:pw@127.0.0.1:{}/", server.port()))
        .unwrap()
        .get_connection()
        .unwrap();
    let e = redis::cmd("CONFIG")
        .arg(&["SET", "tls-auth-clients", "yes"])
        .query::<()>(&mut app)
        .unwrap_err();
    assert_eq!(e.code(), Some("NOPERM"), "{e}");
}
