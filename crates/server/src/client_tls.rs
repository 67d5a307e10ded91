//! TLS for clients (`--tls-port`): the server configuration built from
//! Redis's option names, its reload on SIGHUP and by `CONFIG SET tls-*`
//! ([`TlsConfigHooks`]), and [`TlsStream`], a
//! TLS session over a `TcpStream` that offers the same readiness API as
//! the socket ([`ClientStream`]), so a connection runs the same loop over
//! either.
//!
//! Why not `tokio-rustls`: its streams are poll-based (`AsyncRead`), while
//! the connection loop waits for `readable` and `writable` at the same
//! time and then calls `try_read`/`try_write`. Driving rustls's own
//! sans-I/O `ServerConnection` from those calls keeps one loop for both
//! kinds of client and adds no dependency. Only the `ring` provider is
//! used, passed to the builder explicitly (as `replication::tls` does).

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;

use crate::connection::ClientStream;

/// `tls-auth-clients`: whether a client must present a certificate signed
/// by `tls-ca-cert-file`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AuthClients {
    /// A certificate is required (Redis's default).
    #[default]
    Yes,
    /// A certificate is checked when one is presented.
    Optional,
    /// Certificates are not asked for.
    No,
}

impl AuthClients {
    /// Parses `yes`, `no` or `optional`.
    pub fn parse(s: &str) -> Option<AuthClients> {
        match s.to_ascii_lowercase().as_str() {
            "yes" => Some(AuthClients::Yes),
            "optional" => Some(AuthClients::Optional),
            "no" => Some(AuthClients::No),
            _ => None,
        }
    }
}

/// The client TLS options, as Redis names them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// `tls-port`: the TLS listener's port; 0 (the default) is no TLS.
    pub port: u16,
    /// `tls-cert-file`: the server's certificate chain (PEM).
    pub cert_file: Option<PathBuf>,
    /// `tls-key-file`: the server's private key (PEM).
    pub key_file: Option<PathBuf>,
    /// `tls-ca-cert-file`: the CA client certificates must chain to (PEM).
    pub ca_cert_file: Option<PathBuf>,
    /// `tls-auth-clients`.
    pub auth_clients: AuthClients,
    /// `tls-protocols`: `TLSv1.2` and/or `TLSv1.3`, blank-separated;
    /// empty is both.
    pub protocols: String,
    /// `tls-ciphersuites`: the TLS 1.3 suites, colon-separated, with
    /// OpenSSL's (IANA) names such as `TLS_AES_256_GCM_SHA384`; empty is
    /// rustls's defaults. TLS 1.2 suites are not filtered (`tls-ciphers`,
    /// OpenSSL's cipher-list language, is not supported).
    pub ciphersuites: String,
}

/// The TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A required option is missing.
    #[error("{0}")]
    Missing(&'static str),
    /// A file could not be read.
    #[error("{option} '{path}': {source}")]
    Read {
        /// The option that named the file.
        option: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A file holds no usable PEM item.
    #[error("{option} '{path}': {reason}")]
    Pem {
        /// The option that named the file.
        option: &'static str,
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// rustls refused the certificate, key or CA.
    #[error("{0}")]
    Rustls(String),
}

/// The one crypto provider client TLS uses.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// `tls-protocols` as rustls versions.
fn protocol_versions(
    text: &str,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, TlsError> {
    let mut out = Vec::new();
    for word in text.split_whitespace() {
        let v = match word.to_ascii_lowercase().as_str() {
            "tlsv1.2" => &rustls::version::TLS12,
            "tlsv1.3" => &rustls::version::TLS13,
            _ => {
                return Err(TlsError::Rustls(format!(
                    "tls-protocols: '{word}' is not supported (TLSv1.2 and TLSv1.3 are)"
                )))
            }
        };
        if !out.contains(&v) {
            out.push(v);
        }
    }
    if out.is_empty() {
        out = vec![&rustls::version::TLS12, &rustls::version::TLS13];
    }
    Ok(out)
}

/// The provider with only the TLS 1.3 suites `tls-ciphersuites` names
/// (empty: all of them).
fn provider_for(ciphersuites: &str) -> Result<Arc<CryptoProvider>, TlsError> {
    let mut p = rustls::crypto::ring::default_provider();
    let names: Vec<String> = ciphersuites
        .split(':')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| n.to_ascii_uppercase())
        .collect();
    if names.is_empty() {
        return Ok(Arc::new(p));
    }
    // rustls spells `TLS_AES_128_GCM_SHA256` as `TLS13_AES_128_GCM_SHA256`.
    let rustls_name = |n: &str| n.strip_prefix("TLS_").map(|rest| format!("TLS13_{rest}"));
    for n in &names {
        let known = p.cipher_suites.iter().any(|s| {
            matches!(s, rustls::SupportedCipherSuite::Tls13(_))
                && s.suite().as_str() == rustls_name(n).as_deref()
        });
        if !known {
            return Err(TlsError::Rustls(format!(
                "tls-ciphersuites: '{n}' is not a TLS 1.3 suite offered here"
            )));
        }
    }
    p.cipher_suites.retain(|s| match s {
        rustls::SupportedCipherSuite::Tls13(_) => names
            .iter()
            .any(|n| s.suite().as_str() == rustls_name(n).as_deref()),
        _ => true,
    });
    Ok(Arc::new(p))
}

fn read(option: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    fs::read(path).map_err(|source| TlsError::Read {
        option,
        path: path.to_path_buf(),
        source,
    })
}

fn pem_error(option: &'static str, path: &Path, reason: impl ToString) -> TlsError {
    TlsError::Pem {
        option,
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

fn certs(option: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(&read(option, path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(option, path, e))?;
    if certs.is_empty() {
        return Err(pem_error(option, path, "no PEM certificate in the file"));
    }
    Ok(certs)
}

/// Reads the files and builds the server configuration. Fails with the
/// option and file at fault.
pub fn server_config(opts: &TlsOptions) -> Result<Arc<ServerConfig>, TlsError> {
    const CERT: &str = "tls-cert-file";
    const KEY: &str = "tls-key-file";
    const CA: &str = "tls-ca-cert-file";
    let cert_path = opts
        .cert_file
        .as_deref()
        .ok_or(TlsError::Missing("--tls-port needs --tls-cert-file"))?;
    let key_path = opts
        .key_file
        .as_deref()
        .ok_or(TlsError::Missing("--tls-port needs --tls-key-file"))?;
    if opts.auth_clients != AuthClients::No && opts.ca_cert_file.is_none() {
        return Err(TlsError::Missing(
            "tls-auth-clients yes|optional needs --tls-ca-cert-file (or set --tls-auth-clients no)",
        ));
    }
    let chain = certs(CERT, cert_path)?;
    let key = PrivateKeyDer::from_pem_slice(&read(KEY, key_path)?)
        .map_err(|e| pem_error(KEY, key_path, format!("no PEM private key ({e})")))?;
    let builder = ServerConfig::builder_with_provider(provider_for(&opts.ciphersuites)?)
        .with_protocol_versions(&protocol_versions(&opts.protocols)?)
        .map_err(|e| TlsError::Rustls(format!("tls-protocols / tls-ciphersuites: {e}")))?;
    let builder = match (opts.auth_clients, opts.ca_cert_file.as_deref()) {
        (AuthClients::No, _) | (_, None) => builder.with_no_client_auth(),
        (auth, Some(ca_path)) => {
            let mut roots = RootCertStore::empty();
            for ca in certs(CA, ca_path)? {
                roots
                    .add(ca)
                    .map_err(|e| pem_error(CA, ca_path, format!("not a usable CA: {e}")))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
            let verifier = if auth == AuthClients::Optional {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier
                .build()
                .map_err(|e| TlsError::Rustls(format!("{CA} '{}': {e}", ca_path.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder.with_single_cert(chain, key).map_err(|e| {
        TlsError::Rustls(format!(
            "{CERT} '{}' and {KEY} '{}': {e}",
            cert_path.display(),
            key_path.display()
        ))
    })?;
    Ok(Arc::new(config))
}

/// The TLS listener's configuration; [`Acceptor::reload`] and
/// [`Acceptor::update`] swap it for new connections while open ones keep
/// theirs.
pub struct Acceptor {
    /// The options `config` was built from.
    opts: RwLock<TlsOptions>,
    config: RwLock<Arc<ServerConfig>>,
}

impl Acceptor {
    /// Reads the certificate files once.
    pub fn new(opts: TlsOptions) -> Result<Acceptor, TlsError> {
        let config = server_config(&opts)?;
        Ok(Acceptor {
            opts: RwLock::new(opts),
            config: RwLock::new(config),
        })
    }

    /// Re-reads the certificate, key and CA files. On failure the old
    /// configuration stays in use.
    pub fn reload(&self) -> Result<(), TlsError> {
        let opts = self.opts.read().clone();
        let config = server_config(&opts)?;
        *self.config.write() = config;
        Ok(())
    }

    /// The options in use.
    pub fn options(&self) -> TlsOptions {
        self.opts.read().clone()
    }

    /// Builds a configuration from `opts` (reading its files) and uses it
    /// for new connections. On failure nothing changes.
    pub fn update(&self, opts: TlsOptions) -> Result<(), TlsError> {
        let config = server_config(&opts)?;
        // Both under the options' lock, so two updates cannot cross.
        let mut current = self.opts.write();
        *self.config.write() = config;
        *current = opts;
        Ok(())
    }

    /// Starts a TLS session on an accepted socket; the handshake runs as
    /// the connection reads and writes.
    pub fn start(&self, tcp: TcpStream) -> io::Result<TlsStream> {
        let config = Arc::clone(&self.config.read());
        let tls = ServerConnection::new(config).map_err(io::Error::other)?;
        Ok(TlsStream { tcp, tls })
    }
}

/// `CONFIG GET/SET tls-*`: the client TLS options, applied to new
/// connections at once. A `CONFIG SET` builds the whole configuration
/// (reading the files) before anything changes, so a bad file or value
/// gets an error and the old configuration stays.
pub struct TlsConfigHooks {
    /// The TLS listener's, if the node has one (`tls-port` at start).
    pub acceptor: Option<Arc<Acceptor>>,
    /// The options at start, shown when there is no TLS listener.
    pub at_start: TlsOptions,
}

/// The `tls-*` names `CONFIG GET` and `CONFIG SET` know.
const TLS_NAMES: &[&str] = &[
    "tls-port",
    "tls-cert-file",
    "tls-key-file",
    "tls-ca-cert-file",
    "tls-auth-clients",
    "tls-protocols",
    "tls-ciphersuites",
];

impl TlsOptions {
    /// One `tls-*` setting as `CONFIG GET` shows it.
    fn get(&self, name: &str) -> Option<String> {
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        Some(match name {
            "tls-port" => self.port.to_string(),
            "tls-cert-file" => path(&self.cert_file).unwrap_or_default(),
            "tls-key-file" => path(&self.key_file).unwrap_or_default(),
            "tls-ca-cert-file" => path(&self.ca_cert_file).unwrap_or_default(),
            "tls-auth-clients" => match self.auth_clients {
                AuthClients::Yes => "yes",
                AuthClients::Optional => "optional",
                AuthClients::No => "no",
            }
            .to_string(),
            "tls-protocols" => self.protocols.clone(),
            "tls-ciphersuites" => self.ciphersuites.clone(),
            _ => return None,
        })
    }

    /// Changes one `tls-*` setting that may change at run time.
    fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        let path = |v: &str| (!v.is_empty()).then(|| PathBuf::from(v));
        match name {
            "tls-cert-file" => self.cert_file = path(value),
            "tls-key-file" => self.key_file = path(value),
            "tls-ca-cert-file" => self.ca_cert_file = path(value),
            "tls-auth-clients" => {
                self.auth_clients = AuthClients::parse(value)
                    .ok_or("argument must be one of the following: no, yes, optional")?
            }
            "tls-protocols" => self.protocols = value.to_string(),
            "tls-ciphersuites" => self.ciphersuites = value.to_string(),
            _ => return Err("can't set immutable config".into()),
        }
        Ok(())
    }
}

impl engine::ConfigHooks for TlsConfigHooks {
    fn names(&self) -> &'static [&'static str] {
        TLS_NAMES
    }

    fn get(&self, name: &str) -> Option<String> {
        match &self.acceptor {
            Some(a) => a.options().get(name),
            None => self.at_start.get(name),
        }
    }

    fn set(&self, pairs: &[(String, String)]) -> Result<(), (String, String)> {
        let first = pairs.first().map(|(n, _)| n.clone()).unwrap_or_default();
        let Some(acceptor) = &self.acceptor else {
            return Err((
                first,
                "TLS is off (no tls-port at start): nothing to reconfigure".into(),
            ));
        };
        let mut next = acceptor.options();
        for (name, value) in pairs {
            next.set(name, value).map_err(|why| (name.clone(), why))?;
        }
        acceptor.update(next).map_err(|e| {
            tracing::warn!(error = %e, "CONFIG SET of client TLS refused; the old configuration stays");
            (first, format!("Unable to update TLS configuration: {e}"))
        })?;
        tracing::info!("Client TLS configuration updated by CONFIG SET (new connections)");
        Ok(())
    }
}

/// How many TLS reads one `try_read` makes at most before giving the loop
/// a turn (a peer sending records without data cannot hold it).
const MAX_RECORD_READS: usize = 32;

/// A server TLS session over a TCP socket, used through readiness.
pub struct TlsStream {
    tcp: TcpStream,
    tls: ServerConnection,
}

/// `io::Read`/`io::Write` over a tokio socket's non-blocking calls, for
/// rustls's `read_tls`/`write_tls`.
struct TryIo<'a>(&'a TcpStream);

impl Read for TryIo<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

impl Write for TryIo<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_write_vectored(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ClientStream for TlsStream {
    async fn readable(&self) -> io::Result<()> {
        // Decrypted data (or the peer's close_notify) is already here.
        if !self.tls.wants_read() && !self.tls.is_handshaking() {
            return Ok(());
        }
        self.tcp.readable().await
    }

    async fn writable(&self) -> io::Result<()> {
        self.tcp.writable().await
    }

    fn try_read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        for _ in 0..MAX_RECORD_READS {
            match self.tls.reader().read(buf) {
                // Ok(0): the peer's close_notify, the end of the stream.
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The socket closed without close_notify: an end all the same.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            let got = self.tls.read_tls(&mut TryIo(&self.tcp))?;
            if let Err(e) = self.tls.process_new_packets() {
                // Send the alert rustls queued, if the socket takes it.
                let _ = self.try_flush();
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            if self.tls.wants_write() {
                // Handshake replies; what does not fit waits for `writable`.
                self.try_flush()?;
            }
            if got == 0 && self.tls.is_handshaking() {
                return Ok(0);
            }
        }
        // Not a socket WouldBlock, so the socket stays ready and the loop
        // comes straight back.
        Err(io::ErrorKind::WouldBlock.into())
    }

    fn try_write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.try_flush()?;
        if self.tls.wants_write() {
            // The socket is full (it said WouldBlock while flushing).
            return Err(io::ErrorKind::WouldBlock.into());
        }
        // rustls takes up to its buffer limit and encrypts it at once.
        let n = self.tls.writer().write(buf)?;
        self.try_flush()?;
        if n == 0 && !buf.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    fn has_pending(&self) -> bool {
        self.tls.wants_write()
    }

    fn try_flush(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut TryIo(&self.tcp)) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn handshaking(&self) -> bool {
        self.tls.is_handshaking()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_clients_words() {
        assert_eq!(AuthClients::parse("YES"), Some(AuthClients::Yes));
        assert_eq!(AuthClients::parse("optional"), Some(AuthClients::Optional));
        assert_eq!(AuthClients::parse("no"), Some(AuthClients::No));
        assert_eq!(AuthClients::parse("maybe"), None);
    }

    #[test]
    fn missing_files_name_the_option() {
        let opts = TlsOptions {
            port: 1,
            cert_file: Some("/nonexistent/cert.pem".into()),
            key_file: Some("/nonexistent/key.pem".into()),
            ca_cert_file: None,
            auth_clients: AuthClients::No,
            ..TlsOptions::default()
        };
        let e = server_config(&opts).unwrap_err().to_string();
        assert!(
            e.starts_with("tls-cert-file '/nonexistent/cert.pem'"),
            "{e}"
        );
        let e = server_config(&TlsOptions {
            auth_clients: AuthClients::Yes,
            ..opts
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("needs --tls-ca-cert-file"), "{e}");
    }

    #[test]
    fn protocols_and_suites_parse() {
        assert_eq!(protocol_versions("").unwrap().len(), 2);
        let v = protocol_versions("TLSv1.3").unwrap();
        assert_eq!(v, [&rustls::version::TLS13]);
        assert!(protocol_versions("TLSv1.1").is_err());
        let p = provider_for("TLS_AES_256_GCM_SHA384").unwrap();
        let tls13: Vec<_> = p
            .cipher_suites
            .iter()
            .filter(|s| matches!(s, rustls::SupportedCipherSuite::Tls13(_)))
            .map(|s| s.suite())
            .collect();
        assert_eq!(tls13, [rustls::CipherSuite::TLS13_AES_256_GCM_SHA384]);
        assert!(p
            .cipher_suites
            .iter()
            .any(|s| matches!(s, rustls::SupportedCipherSuite::Tls12(_))));
        assert!(provider_for("TLS_NOPE").is_err());
        let mut o = TlsOptions::default();
        o.set("tls-auth-clients", "optional").unwrap();
        assert_eq!(o.get("tls-auth-clients").as_deref(), Some("optional"));
        assert!(o.set("tls-auth-clients", "maybe").is_err());
        assert!(o.set("tls-port", "1").is_err());
    }
}
