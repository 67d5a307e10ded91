//! Helpers for the engine's unit tests: run a command, get its reply as
//! RESP text.

use resp::{ArgvBuf, Out, Proto};

use crate::config::Config;
use crate::engine::{ConnInfo, Engine, Session};

/// An engine with one connected client.
pub(crate) struct Tester {
    pub eng: Engine,
    pub s: Session,
    pub proto: Proto,
}

impl Tester {
    /// A fresh engine with the journal on.
    pub fn new() -> Self {
        let mut eng = Engine::new(Config::default());
        eng.set_journal(true);
        let s = eng.connect(ConnInfo {
            addr: "127.0.0.1:5000".into(),
            laddr: "127.0.0.1:7379".into(),
        });
        Tester {
            eng,
            s,
            proto: Proto::Resp2,
        }
    }

    /// Runs a command given as separate arguments; returns the raw reply.
    pub fn run<T: AsRef<[u8]>>(&mut self, argv: &[T]) -> String {
        let argv = ArgvBuf::from_iter(argv);
        let mut out = Out::new(self.proto);
        self.eng.execute(&mut self.s, argv.args(), &mut out);
        self.proto = out.proto;
        String::from_utf8_lossy(out.as_bytes()).into_owned()
    }

    /// Runs a command written as one line split on spaces.
    pub fn q(&mut self, line: &str) -> String {
        let argv: Vec<&str> = line.split(' ').filter(|a| !a.is_empty()).collect();
        self.run(&argv)
    }
}

/// The ops journaled since the last call, one `"CMD arg ..."` string each.
pub(crate) fn ops(t: &mut Tester) -> Vec<String> {
    t.eng
        .take_units()
        .into_iter()
        .flat_map(|u| u.ops)
        .map(|op| {
            op.argv
                .iter()
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// A bulk string reply.
pub(crate) fn bulk(s: &str) -> String {
    format!("${}\r\n{s}\r\n", s.len())
}

/// A RESP2 array of bulk strings.
pub(crate) fn arr(items: &[&str]) -> String {
    let mut r = format!("*{}\r\n", items.len());
    items.iter().for_each(|s| r.push_str(&bulk(s)));
    r
}

/// An integer reply.
pub(crate) fn int(n: i64) -> String {
    format!(":{n}\r\n")
}

/// An error reply; `msg` includes its code.
pub(crate) fn err(msg: &str) -> String {
    format!("-{msg}\r\n")
}

/// Database 0 as sorted `(key, value, expiry)` triples, to compare two
/// engines' raw contents.
pub(crate) fn dump(eng: &Engine) -> Vec<(Vec<u8>, crate::keyspace::Value, Option<u64>)> {
    let mut all: Vec<_> = eng.dbs[0]
        .iter()
        .map(|(k, e)| (k.to_vec(), e.value.to_value(), e.expire_at))
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

/// A fresh secondary that applied every unit `t` journaled so far.
pub(crate) fn replica_of(t: &mut Tester) -> Engine {
    let mut replica = Engine::new(Config::default());
    replica.set_role(crate::engine::Role::Secondary);
    for unit in t.eng.take_units() {
        if let Err(e) = replica.apply(&unit) {
            panic!("op refused on replay: {unit:?}: {e}");
        }
    }
    replica
}
