//! `CONFIG GET/SET` of settings kept outside the engine ([`ConfigHooks`]).

use std::sync::{Arc, Mutex};

use crate::engine::ConfigHooks;
use crate::testutil::{arr, Tester};

/// A stand-in for the server's TLS settings: `tls-cert-file` takes any
/// value but `bad`.
#[derive(Default)]
struct Outside {
    cert: Mutex<String>,
}

impl ConfigHooks for Outside {
    fn names(&self) -> &'static [&'static str] {
        &["tls-cert-file"]
    }
    fn get(&self, name: &str) -> Option<String> {
        (name == "tls-cert-file").then(|| self.cert.lock().unwrap().clone())
    }
    fn set(&self, pairs: &[(String, String)]) -> Result<(), (String, String)> {
        for (name, value) in pairs {
            if value == "bad" {
                return Err((name.clone(), "Unable to update TLS configuration".into()));
            }
        }
        for (_, value) in pairs {
            *self.cert.lock().unwrap() = value.clone();
        }
        Ok(())
    }
}

#[test]
fn config_reaches_the_settings_outside_the_engine() {
    let mut t = Tester::new();
    let outside = Arc::new(Outside::default());
    t.eng.set_config_hooks(outside.clone());
    assert_eq!(t.q("CONFIG SET TLS-CERT-FILE a.pem"), "+OK\r\n");
    assert_eq!(*outside.cert.lock().unwrap(), "a.pem");
    assert_eq!(t.q("CONFIG GET tls-*"), arr(&["tls-cert-file", "a.pem"]));
    // All or nothing: a refusal outside leaves the engine's settings too.
    assert_eq!(
        t.q("CONFIG SET maxmemory 1mb tls-cert-file bad"),
        "-ERR CONFIG SET failed (possibly related to argument 'tls-cert-file') - \
         Unable to update TLS configuration\r\n"
    );
    assert_eq!(t.q("CONFIG GET maxmemory"), arr(&["maxmemory", "0"]));
    assert_eq!(*outside.cert.lock().unwrap(), "a.pem");
    // And an engine refusal never reaches the hook.
    assert!(t
        .q("CONFIG SET maxmemory lots tls-cert-file b.pem")
        .starts_with("-ERR"));
    assert_eq!(*outside.cert.lock().unwrap(), "a.pem");
    assert_eq!(
        t.q("CONFIG SET maxmemory 1mb tls-cert-file c.pem"),
        "+OK\r\n"
    );
    assert_eq!(t.q("CONFIG GET maxmemory"), arr(&["maxmemory", "1048576"]));
    assert_eq!(*outside.cert.lock().unwrap(), "c.pem");
}

/// `ROLE` of a node with no replication: a primary with no replicas.
#[test]
fn role_of_a_standalone_node_is_a_primary_without_replicas() {
    let mut t = Tester::new();
    assert_eq!(t.q("ROLE"), "*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n");
    assert!(t.q("ROLE x").starts_with("-ERR wrong number of arguments"));
}
