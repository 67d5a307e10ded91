//! Unit tests of the sorted-set family: replies as Redis 7 gives them
//! (checked against Redis 7.0.15; `ZRANK ... WITHSCORE` against 7.2's
//! source), errors, key deletion, and the journal.

mod algebra;
mod basic;
mod pops;
mod ranges;

use resp::{ArgvBuf, Out, Proto};

use crate::engine::{ConnInfo, Engine, Session};
use crate::testutil::{arr, bulk, err, int, ops, Tester};

/// A RESP3 array of `[member, score]` pairs, scores as doubles.
fn pairs3(items: &[(&str, &str)]) -> String {
    let mut r = format!("*{}\r\n", items.len());
    for (m, s) in items {
        r.push_str(&format!("*2\r\n{},{s}\r\n", bulk(m)));
    }
    r
}

fn exists(t: &Tester, key: &str) -> bool {
    t.eng.dbs[0].contains(key.as_bytes())
}

/// Lets `key` expire: its expiry is set in the past.
fn expire_now(t: &mut Tester, key: &str) {
    assert!(t.eng.dbs[0].set_expire(key.as_bytes(), Some(1)));
}

/// A second client of the same engine.
fn other_client(t: &mut Tester) -> Session {
    t.eng.connect(ConnInfo {
        addr: "127.0.0.1:5001".into(),
        laddr: "127.0.0.1:7379".into(),
    })
}

/// Runs a request for another client; returns its reply.
fn run_as(t: &mut Tester, s: &mut Session, line: &str) -> String {
    let argv: Vec<&str> = line.split(' ').collect();
    let argv = ArgvBuf::from_iter(&argv);
    let mut out = Out::new(Proto::Resp2);
    t.eng.execute(s, argv.args(), &mut out);
    String::from_utf8_lossy(out.as_bytes()).into_owned()
}

/// What other commands wrote for this tester's client.
fn outbox(t: &mut Tester) -> String {
    let mut reply = Out::new(t.proto);
    t.eng.take_outbox(t.s.id, &mut reply);
    String::from_utf8_lossy(reply.as_bytes()).into_owned()
}

/// Runs a handler directly on the session inside `MULTI`.
fn in_multi(t: &mut Tester, line: &str) -> String {
    let argv: Vec<&str> = line.split(' ').collect();
    let argv = ArgvBuf::from_iter(&argv);
    let Some(cmd) = crate::table::Table::get().lookup(&argv.args()[0]) else {
        return "unknown".into();
    };
    let mut out = Out::new(t.proto);
    t.s.in_multi = true;
    let r = (cmd.handler)(&mut t.eng, &mut t.s, argv.args(), &mut out);
    t.s.in_multi = false;
    match r {
        Ok(()) => String::from_utf8_lossy(out.as_bytes()).into_owned(),
        Err(e) => format!("-{e}\r\n"),
    }
}

/// Every key and value of database 0, sorted (values compare by digest).
fn dump(eng: &Engine) -> Vec<(Vec<u8>, crate::keyspace::Value, Option<u64>)> {
    let mut all: Vec<_> = eng.dbs[0]
        .iter()
        .map(|(k, e)| (k.to_vec(), e.value.to_value(), e.expire_at))
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

const NIL: &str = "$-1\r\n";
const NIL_ARR: &str = "*-1\r\n";
const EMPTY: &str = "*0\r\n";
const SYNTAX: &str = "-ERR syntax error\r\n";
const NOT_INT: &str = "-ERR value is not an integer or out of range\r\n";
const NOT_FLOAT: &str = "-ERR value is not a valid float\r\n";
const WRONGTYPE: &str = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
