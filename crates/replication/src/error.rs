//! The crate's error type.

use std::path::PathBuf;

/// What can go wrong with certificates, TLS configuration and endpoints.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A region name that cannot be a DNS name or a file name.
    #[error(
        "invalid region name {0:?}: use 1-63 of a-z, 0-9 and '-', not starting or ending with '-'"
    )]
    InvalidRegion(String),
    /// Only one of `ca.pem` and `ca-key.pem` exists: the CA cannot be used
    /// and will not be silently replaced.
    #[error(
        "incomplete CA in {dir}: {present} exists but {missing} does not (use force to replace)"
    )]
    IncompleteCa {
        /// The certificate directory.
        dir: PathBuf,
        /// The file that exists.
        present: &'static str,
        /// The file that is missing.
        missing: &'static str,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A PEM file could not be parsed, or held no item of the expected kind.
    #[error("{path}: {reason}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// Generating or signing a certificate failed.
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the configuration (bad key, unsupported protocol).
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// The client-certificate verifier could not be built (e.g. no CA).
    #[error("client verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// The rustls configuration has no cipher suite QUIC can use.
    #[error("QUIC crypto: {0}")]
    QuicCrypto(#[from] quinn::crypto::rustls::NoInitialCipherSuite),
    /// Creating a socket or endpoint failed.
    #[error("socket: {0}")]
    Socket(#[source] std::io::Error),
    /// The peer's certificate did not name a region.
    #[error("peer identity: {0}")]
    PeerIdentity(String),
}
