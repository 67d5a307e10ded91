//! The datastore's certificate authority and one certificate per region.
//!
//! A certificate directory holds:
//!
//! | file | what |
//! |---|---|
//! | `ca.pem`, `ca-key.pem` | the datastore CA (self-signed, ECDSA P-256) |
//! | `<region>.pem`, `<region>-key.pem` | a region's certificate, signed by the CA |
//!
//! A region certificate serves both roles of a region (QUIC server for its
//! secondaries, QUIC client of its primary), so it carries both the
//! `serverAuth` and `clientAuth` extended key usages. Its subject common name
//! is the region name, and its subject alternative names are the region name,
//! `localhost` and `127.0.0.1`, so a client can check it is talking to the
//! region it meant on a one-machine datastore too. Private keys are written
//! with mode 0600, through a temporary file and a rename so that a crash
//! never leaves half a key behind.
//!
//! An existing CA is never replaced unless the caller forces it: every region
//! certificate signed by it would stop being trusted.

use std::fs;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::Error;

/// The CA certificate's file name in a certificate directory.
pub const CA_CERT_FILE: &str = "ca.pem";
/// The CA private key's file name in a certificate directory.
pub const CA_KEY_FILE: &str = "ca-key.pem";

/// The CA certificate's subject common name.
const CA_COMMON_NAME: &str = "Meridian datastore CA";

/// Checks that `region` can be both a DNS name in a certificate and a file
/// name in the certificate directory: 1 to 63 of `a-z`, `0-9` and `-`, not
/// starting or ending with `-` (an RFC 1123 label, lower case).
pub fn validate_region(region: &str) -> Result<(), Error> {
    let ok = !region.is_empty()
        && region.len() <= 63
        && !region.starts_with('-')
        && !region.ends_with('-')
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidRegion(region.to_owned()))
    }
}

/// The path of `region`'s certificate in `dir`.
pub fn region_cert_path(dir: &Path, region: &str) -> PathBuf {
    dir.join(format!("{region}.pem"))
}

/// The path of `region`'s private key in `dir`.
pub fn region_key_path(dir: &Path, region: &str) -> PathBuf {
    dir.join(format!("{region}-key.pem"))
}

/// What [`ensure`] should do with material already in the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overwrite {
    /// Keep an existing CA and existing region certificates; add only what
    /// is missing.
    Keep,
    /// Make a new CA and new certificates for every requested region.
    Replace,
}

/// What [`ensure`] did, for the caller to report.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// True when a new CA was written; false when the existing one was kept.
    pub ca_created: bool,
    /// Regions whose certificate and key were written, in request order.
    pub regions_created: Vec<String>,
    /// Regions whose existing certificate and key were kept.
    pub regions_kept: Vec<String>,
    /// Every file written, in the order written.
    pub written: Vec<PathBuf>,
}

/// Makes sure `dir` holds a CA and a certificate for each of `regions`.
///
/// With [`Overwrite::Keep`], an existing CA is loaded and used to sign only
/// the region certificates that are missing (a region whose certificate or
/// key is missing gets both anew). When there is no CA yet, a new one is made
/// and every requested region gets a new certificate, since any older one
/// could not chain to the new CA. With [`Overwrite::Replace`], everything
/// requested is made anew.
///
/// Creates `dir` if needed. Region names are checked before anything is
/// written.
pub fn ensure(dir: &Path, regions: &[&str], overwrite: Overwrite) -> Result<Outcome, Error> {
    for region in regions {
        validate_region(region)?;
    }
    fs::create_dir_all(dir).map_err(|source| io_error(dir, source))?;
    let mut outcome = Outcome::default();

    let existing = match overwrite {
        Overwrite::Keep => load_ca_issuer(dir)?,
        Overwrite::Replace => None,
    };
    let (issuer, new_ca) = match existing {
        Some(issuer) => (issuer, false),
        None => {
            let (issuer, cert_pem, key_pem) = new_ca()?;
            write_file(&dir.join(CA_CERT_FILE), &cert_pem, false)?;
            write_file(&dir.join(CA_KEY_FILE), &key_pem, true)?;
            outcome.written.push(dir.join(CA_CERT_FILE));
            outcome.written.push(dir.join(CA_KEY_FILE));
            outcome.ca_created = true;
            (issuer, true)
        }
    };

    for &region in regions {
        let cert_path = region_cert_path(dir, region);
        let key_path = region_key_path(dir, region);
        if !new_ca && cert_path.exists() && key_path.exists() {
            outcome.regions_kept.push(region.to_owned());
            continue;
        }
        let (cert_pem, key_pem) = new_region_cert(region, &issuer)?;
        write_file(&cert_path, &cert_pem, false)?;
        write_file(&key_path, &key_pem, true)?;
        outcome.written.push(cert_path);
        outcome.written.push(key_path);
        outcome.regions_created.push(region.to_owned());
    }
    Ok(outcome)
}

/// A region's TLS identity as loaded from a certificate directory: what both
/// its QUIC server and its QUIC client present and trust.
#[derive(Debug)]
pub struct RegionIdentity {
    /// The region this identity belongs to (its certificate's name).
    pub region: String,
    /// The datastore CA: the only root trusted for peers.
    pub ca: CertificateDer<'static>,
    /// The region's certificate chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The region's private key.
    pub key: PrivateKeyDer<'static>,
}

impl Clone for RegionIdentity {
    fn clone(&self) -> Self {
        Self {
            region: self.region.clone(),
            ca: self.ca.clone(),
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

/// Loads `region`'s identity (CA certificate, region certificate and key)
/// from `dir`, as written by [`ensure`]. The CA private key is not read.
pub fn load(dir: &Path, region: &str) -> Result<RegionIdentity, Error> {
    load_files(
        region,
        &dir.join(CA_CERT_FILE),
        &region_cert_path(dir, region),
        &region_key_path(dir, region),
    )
}

/// Loads `region`'s identity from explicit files: the datastore CA
/// certificate, the region's certificate chain and its private key (PEM).
pub fn load_files(
    region: &str,
    ca_path: &Path,
    cert_path: &Path,
    key_path: &Path,
) -> Result<RegionIdentity, Error> {
    validate_region(region)?;
    let ca = CertificateDer::from_pem_slice(&read(ca_path)?).map_err(|e| pem_error(ca_path, e))?;
    let chain = CertificateDer::pem_slice_iter(&read(cert_path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(cert_path, e))?;
    if chain.is_empty() {
        return Err(Error::Pem {
            path: cert_path.to_owned(),
            reason: "no certificate found".into(),
        });
    }
    let key =
        PrivateKeyDer::from_pem_slice(&read(key_path)?).map_err(|e| pem_error(key_path, e))?;
    Ok(RegionIdentity {
        region: region.to_owned(),
        ca,
        chain,
        key,
    })
}

/// The existing CA as an issuer, `None` when neither file exists.
fn load_ca_issuer(dir: &Path) -> Result<Option<Issuer<'static, KeyPair>>, Error> {
    let cert_path = dir.join(CA_CERT_FILE);
    let key_path = dir.join(CA_KEY_FILE);
    match (cert_path.exists(), key_path.exists()) {
        (false, false) => return Ok(None),
        (true, false) => {
            return Err(Error::IncompleteCa {
                dir: dir.to_owned(),
                present: CA_CERT_FILE,
                missing: CA_KEY_FILE,
            })
        }
        (false, true) => {
            return Err(Error::IncompleteCa {
                dir: dir.to_owned(),
                present: CA_KEY_FILE,
                missing: CA_CERT_FILE,
            })
        }
        (true, true) => {}
    }
    let key_pem = read_string(&key_path)?;
    let key = KeyPair::from_pem(&key_pem).map_err(|e| Error::Pem {
        path: key_path,
        reason: e.to_string(),
    })?;
    let cert_pem = read_string(&cert_path)?;
    let issuer = Issuer::from_ca_cert_pem(&cert_pem, key).map_err(|e| Error::Pem {
        path: cert_path,
        reason: e.to_string(),
    })?;
    Ok(Some(issuer))
}

/// A new self-signed CA: the issuer, its certificate PEM and its key PEM.
fn new_ca() -> Result<(Issuer<'static, KeyPair>, String, String), Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(DnType::CommonName, CA_COMMON_NAME);
    // Path length 0: the CA signs region certificates only, never another CA.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate()?;
    let key_pem = key.serialize_pem();
    let ca = CertifiedIssuer::self_signed(params, key)?;
    let cert_pem = ca.pem();
    // Parsed back from the PEM just written, as a later run loads it, so a
    // fresh CA and a kept one sign region certificates the same way.
    let issuer = Issuer::from_ca_cert_pem(&cert_pem, KeyPair::from_pem(&key_pem)?)?;
    Ok((issuer, cert_pem, key_pem))
}

/// A new certificate for `region` signed by `issuer`: certificate PEM and
/// key PEM.
fn new_region_cert(region: &str, issuer: &Issuer<'_, KeyPair>) -> Result<(String, String), Error> {
    let mut params = CertificateParams::new(vec![region.to_owned(), "localhost".to_owned()])?;
    params
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    params.distinguished_name.push(DnType::CommonName, region);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    // Both: the region is a QUIC server to its secondaries and a QUIC client
    // of its primary, with the same certificate.
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Writes `contents` to `path` through a temporary file in the same
/// directory and a rename; `private` files get mode 0600 from the start.
fn write_file(path: &Path, contents: &str, private: bool) -> Result<(), Error> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(&tmp).map_err(|e| io_error(&tmp, e))?;
    // `mode` applies only when the file is created; a leftover temporary
    // file keeps its old mode unless set again.
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(|e| io_error(&tmp, e))?;
    }
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| io_error(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| io_error(path, e))
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    fs::read(path).map_err(|e| io_error(path, e))
}

fn read_string(path: &Path) -> Result<String, Error> {
    fs::read_to_string(path).map_err(|e| io_error(path, e))
}

fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_owned(),
        source,
    }
}

fn pem_error(path: &Path, e: rustls_pki_types::pem::Error) -> Error {
    Error::Pem {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "ap-southeast-1"];

    fn names(paths: &[PathBuf]) -> Vec<String> {
        paths
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn first_run_writes_ca_and_every_region() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("certs");
        let out = ensure(&dir, &REGIONS, Overwrite::Keep).unwrap();
        assert!(out.ca_created);
        assert_eq!(out.regions_created, REGIONS);
        assert!(out.regions_kept.is_empty());
        assert_eq!(
            names(&out.written),
            [
                "ca.pem",
                "ca-key.pem",
                "us-east-1.pem",
                "us-east-1-key.pem",
                "eu-west-1.pem",
                "eu-west-1-key.pem",
                "ap-southeast-1.pem",
                "ap-southeast-1-key.pem",
            ]
        );
        for region in REGIONS {
            let id = load(&dir, region).unwrap();
            assert_eq!(id.region, region);
            assert_eq!(id.chain.len(), 1);
        }
        // No temporary files are left behind.
        let leftovers: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| {
                let name = e.unwrap().file_name().to_string_lossy().into_owned();
                name.ends_with(".tmp").then_some(name)
            })
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[cfg(unix)]
    #[test]
    fn private_keys_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        ensure(tmp.path(), &["us-east-1"], Overwrite::Keep).unwrap();
        let mode = |name: &str| {
            fs::metadata(tmp.path().join(name))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("ca-key.pem"), 0o600);
        assert_eq!(mode("us-east-1-key.pem"), 0o600);
        assert_eq!(mode("ca.pem"), 0o644);
        assert_eq!(mode("us-east-1.pem"), 0o644);
    }

    #[test]
    fn second_run_keeps_the_ca_and_adds_only_missing_regions() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        ensure(dir, &REGIONS[..2], Overwrite::Keep).unwrap();
        let ca_before = fs::read(dir.join(CA_CERT_FILE)).unwrap();
        let us_before = fs::read(region_cert_path(dir, "us-east-1")).unwrap();
        // A region that lost its key gets a new pair.
        fs::remove_file(region_key_path(dir, "eu-west-1")).unwrap();

        let out = ensure(dir, &REGIONS, Overwrite::Keep).unwrap();
        assert!(!out.ca_created);
        assert_eq!(out.regions_kept, ["us-east-1"]);
        assert_eq!(out.regions_created, ["eu-west-1", "ap-southeast-1"]);
        assert_eq!(fs::read(dir.join(CA_CERT_FILE)).unwrap(), ca_before);
        assert_eq!(
            fs::read(region_cert_path(dir, "us-east-1")).unwrap(),
            us_before
        );
        // The added region chains to the kept CA: same issuer bytes in use.
        let ap = load(dir, "ap-southeast-1").unwrap();
        assert_eq!(ap.ca.as_ref(), load(dir, "us-east-1").unwrap().ca.as_ref());
    }

    #[test]
    fn replace_makes_a_new_ca_and_new_region_certificates() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        ensure(dir, &REGIONS[..1], Overwrite::Keep).unwrap();
        let ca_before = fs::read(dir.join(CA_CERT_FILE)).unwrap();
        let us_before = fs::read(region_cert_path(dir, "us-east-1")).unwrap();
        let out = ensure(dir, &REGIONS[..1], Overwrite::Replace).unwrap();
        assert!(out.ca_created);
        assert_eq!(out.regions_created, ["us-east-1"]);
        assert_ne!(fs::read(dir.join(CA_CERT_FILE)).unwrap(), ca_before);
        assert_ne!(
            fs::read(region_cert_path(dir, "us-east-1")).unwrap(),
            us_before
        );
    }

    #[test]
    fn half_a_ca_is_an_error_not_a_silent_replacement() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        ensure(dir, &[], Overwrite::Keep).unwrap();
        fs::remove_file(dir.join(CA_KEY_FILE)).unwrap();
        let err = ensure(dir, &REGIONS, Overwrite::Keep).unwrap_err();
        assert!(matches!(err, Error::IncompleteCa { .. }), "{err}");
        assert!(!region_cert_path(dir, "us-east-1").exists());
    }

    #[test]
    fn bad_region_names_are_refused_before_writing() {
        let tmp = tempfile::tempdir().unwrap();
        for bad in [
            "",
            "../etc",
            "US-EAST-1",
            "-a",
            "a-",
            "a.b",
            &"x".repeat(64),
        ] {
            let err = ensure(tmp.path(), &["us-east-1", bad], Overwrite::Keep).unwrap_err();
            assert!(matches!(err, Error::InvalidRegion(_)), "{bad:?}: {err}");
        }
        assert!(!tmp.path().join(CA_CERT_FILE).exists());
        validate_region("ap-southeast-1").unwrap();
    }

    #[test]
    fn loading_a_missing_region_names_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        ensure(tmp.path(), &["us-east-1"], Overwrite::Keep).unwrap();
        let err = load(tmp.path(), "eu-west-1").unwrap_err();
        assert!(err.to_string().contains("eu-west-1.pem"), "{err}");
    }
}
