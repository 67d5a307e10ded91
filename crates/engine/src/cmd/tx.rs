//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.
//!
//! Between `MULTI` and `EXEC` the dispatcher queues requests after checking
//! them (unknown command, arity, permissions): a refusal marks the
//! transaction, and `EXEC` then answers `EXECABORT` and runs nothing. Errors
//! at run time do not stop the others, as in Redis. A transaction is one
//! unit in the change log: a secondary never shows half of it.

use resp::{Args, Out};

use crate::engine::{Engine, Role, Session};
use crate::error::{CmdError, CmdResult};
use crate::table::{row, Command, Table, FAST, NO_MULTI, STALE, WRITE};

/// The family's table rows.
pub(crate) const COMMANDS: &[Command] = &[
    row(
        "multi",
        1,
        FAST | STALE,
        (0, 0, 0),
        "transactions",
        "Starts a transaction.",
        multi,
    ),
    row(
        "exec",
        1,
        STALE,
        (0, 0, 0),
        "transactions",
        "Executes all commands in a transaction.",
        exec,
    ),
    row(
        "discard",
        1,
        FAST | STALE,
        (0, 0, 0),
        "transactions",
        "Discards a transaction.",
        discard,
    ),
    row(
        "watch",
        -2,
        FAST | STALE | NO_MULTI,
        (1, -1, 1),
        "transactions",
        "Monitors changes to keys to determine the execution of a transaction.",
        watch,
    ),
    row(
        "unwatch",
        1,
        FAST | STALE,
        (0, 0, 0),
        "transactions",
        "Forgets about watched keys of a transaction.",
        unwatch,
    ),
];

/// Commands that run at once even between `MULTI` and `EXEC`.
pub(crate) fn runs_inside_multi(name: &str) -> bool {
    matches!(
        name,
        "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
    )
}

fn multi(_: &mut Engine, s: &mut Session, _: Args<'_>, out: &mut Out) -> CmdResult {
    if s.in_multi {
        return Err(CmdError::err("MULTI calls can not be nested"));
    }
    s.in_multi = true;
    s.multi_error = false;
    s.queued.clear();
    out.ok();
    Ok(())
}

/// Leaves transaction state (queue, abort flag, watches).
fn reset_tx(eng: &mut Engine, s: &mut Session) {
    s.in_multi = false;
    s.multi_error = false;
    s.queued.clear();
    eng.unwatch_all(s);
}

fn discard(eng: &mut Engine, s: &mut Session, _: Args<'_>, out: &mut Out) -> CmdResult {
    if !s.in_multi {
        return Err(CmdError::err("DISCARD without MULTI"));
    }
    reset_tx(eng, s);
    out.ok();
    Ok(())
}

fn exec(eng: &mut Engine, s: &mut Session, _: Args<'_>, out: &mut Out) -> CmdResult {
    if !s.in_multi {
        return Err(CmdError::err("EXEC without MULTI"));
    }
    if s.multi_error {
        reset_tx(eng, s);
        return Err(CmdError::Other(
            "EXECABORT Transaction discarded because of previous errors.".into(),
        ));
    }
    let table = Table::get();
    let queued = std::mem::take(&mut s.queued);
    let writes = queued
        .iter()
        .filter_map(|a| table.lookup(&a.args()[0]))
        .any(|c| c.has(WRITE));
    if writes && eng.role == Role::Secondary && !s.is_primary_link {
        reset_tx(eng, s);
        return Err(CmdError::Other(
            "EXECABORT Transaction contains write commands but instance is now a read-only replica. EXEC aborted.".into(),
        ));
    }
    if eng.watch_failed(s) {
        reset_tx(eng, s);
        out.null_array();
        return Ok(());
    }
    eng.unwatch_all(s);
    out.array(queued.len());
    // `in_multi` stays set while the queue runs, so blocking commands answer
    // at once instead of blocking (Redis's rule).
    for argv in &queued {
        let args = argv.args();
        match table.lookup(&args[0]) {
            Some(cmd) => eng.run_command(s, cmd, args, out),
            None => out.error("ERR unknown command"),
        }
    }
    reset_tx(eng, s);
    Ok(())
}

fn watch(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    for key in args.iter().skip(1) {
        eng.watch(s, key);
    }
    out.ok();
    Ok(())
}

fn unwatch(eng: &mut Engine, s: &mut Session, _: Args<'_>, out: &mut Out) -> CmdResult {
    eng.unwatch_all(s);
    out.ok();
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::engine::{ConnInfo, Role};
    use crate::testutil::Tester;

    #[test]
    fn queued_commands_run_at_exec() {
        let mut t = Tester::new();
        assert_eq!(t.q("MULTI"), "+OK\r\n");
        assert_eq!(t.q("SET a 1"), "+QUEUED\r\n");
        assert_eq!(t.q("INCR a"), "+QUEUED\r\n");
        assert_eq!(t.q("GET a"), "+QUEUED\r\n");
        assert_eq!(t.q("EXEC"), "*3\r\n+OK\r\n:2\r\n$1\r\n2\r\n");
        assert_eq!(t.q("EXEC"), "-ERR EXEC without MULTI\r\n");
        assert_eq!(t.q("DISCARD"), "-ERR DISCARD without MULTI\r\n");
    }

    #[test]
    fn queue_time_errors_abort_and_runtime_errors_do_not() {
        let mut t = Tester::new();
        t.q("MULTI");
        t.q("SET a 1");
        assert!(t.q("NOSUCH x").starts_with("-ERR unknown command"));
        assert!(t.q("GET").starts_with("-ERR wrong number of arguments"));
        assert_eq!(
            t.q("EXEC"),
            "-EXECABORT Transaction discarded because of previous errors.\r\n"
        );
        assert_eq!(t.q("GET a"), "$-1\r\n", "nothing ran");
        t.q("SET s text");
        t.q("MULTI");
        t.q("INCR s");
        t.q("SET b 2");
        assert_eq!(
            t.q("EXEC"),
            "*2\r\n-ERR value is not an integer or out of range\r\n+OK\r\n"
        );
        assert_eq!(t.q("MULTI"), "+OK\r\n");
        assert_eq!(t.q("MULTI"), "-ERR MULTI calls can not be nested\r\n");
        assert_eq!(t.q("DISCARD"), "+OK\r\n");
    }

    #[test]
    fn a_transaction_is_one_unit_of_ops() {
        let mut t = Tester::new();
        t.eng.take_units();
        t.q("MULTI");
        t.q("SET a 1");
        t.q("SET b 2 EX 100");
        t.q("GET a");
        t.q("EXEC");
        let units = t.eng.take_units();
        assert_eq!(units.len(), 1);
        assert_eq!(units[0].ops.len(), 2);
    }

    #[test]
    fn watch_fails_exec_on_touch_by_another_client() {
        let mut t = Tester::new();
        let mut other = t.eng.connect(ConnInfo {
            addr: "127.0.0.1:6000".into(),
            laddr: "127.0.0.1:7379".into(),
        });
        t.q("SET k 1");
        assert_eq!(t.q("WATCH k"), "+OK\r\n");
        let argv = resp::ArgvBuf::from_iter(["SET", "k", "2"]);
        t.eng
            .execute(&mut other, argv.args(), &mut resp::Out::default());
        t.q("MULTI");
        t.q("SET k 3");
        assert_eq!(t.q("EXEC"), "*-1\r\n");
        assert_eq!(t.q("GET k"), "$1\r\n2\r\n");
        // Watches end with EXEC: the next transaction runs.
        t.q("MULTI");
        t.q("SET k 4");
        assert_eq!(t.q("EXEC"), "*1\r\n+OK\r\n");
    }

    /// A `*STORE` command (and `COPY`) changes its destination and only
    /// reads its sources, and a pop from several keys changes the one it
    /// popped from: a watch on any other key survives it, as in Redis.
    #[test]
    fn a_write_fails_watchers_of_the_keys_it_changed_only() {
        let cases: [(&str, &[&str], &str); 16] = [
            ("SINTERSTORE dst s1 s2", &["s1", "s2"], "dst"),
            ("SUNIONSTORE dst s1 s2", &["s1", "s2"], "dst"),
            ("SDIFFSTORE dst s1 s2", &["s1", "s2"], "dst"),
            ("ZUNIONSTORE dst 2 z1 z2", &["z1", "z2"], "dst"),
            ("ZINTERSTORE dst 2 z1 z2", &["z1", "z2"], "dst"),
            ("ZDIFFSTORE dst 2 z1 z2", &["z1", "z2"], "dst"),
            ("ZRANGESTORE dst z1 0 -1", &["z1"], "dst"),
            ("COPY s1 dst", &["s1"], "dst"),
            // A pop from the first non-empty of several keys changes that
            // one only.
            ("BLPOP l2 l1 0", &["l2"], "l1"),
            ("BRPOP l2 l1 0", &["l2"], "l1"),
            ("LMPOP 2 l2 l1 LEFT", &["l2"], "l1"),
            ("BLMPOP 0 2 l2 l1 RIGHT COUNT 2", &["l2"], "l1"),
            ("BZPOPMIN z3 z1 0", &["z3"], "z1"),
            ("BZPOPMAX z3 z1 0", &["z3"], "z1"),
            ("ZMPOP 2 z3 z1 MIN", &["z3"], "z1"),
            ("BZMPOP 0 2 z3 z1 MAX", &["z3"], "z1"),
        ];
        for (store, sources, dst) in cases {
            for (watched, fails) in sources.iter().map(|&k| (k, false)).chain([(dst, true)]) {
                let mut t = Tester::new();
                let mut other = t.eng.connect(ConnInfo {
                    addr: "127.0.0.1:6000".into(),
                    laddr: "127.0.0.1:7379".into(),
                });
                t.q("SADD s1 a b");
                t.q("SADD s2 b c");
                t.q("ZADD z1 1 a 2 b");
                t.q("ZADD z2 2 b 3 c");
                t.q("RPUSH l1 a b c");
                t.q(&format!("WATCH {watched}"));
                let argv = resp::ArgvBuf::from_iter(store.split(' '));
                let mut out = resp::Out::default();
                t.eng.execute(&mut other, argv.args(), &mut out);
                assert!(
                    !String::from_utf8_lossy(out.as_bytes()).starts_with('-'),
                    "{store}: {:?}",
                    String::from_utf8_lossy(out.as_bytes())
                );
                t.q("MULTI");
                t.q("SET x 1");
                let expected = if fails { "*-1\r\n" } else { "*1\r\n+OK\r\n" };
                assert_eq!(t.q("EXEC"), expected, "{store} with {watched} watched");
            }
        }
    }

    #[test]
    fn watch_fails_exec_when_the_key_expires() {
        let mut t = Tester::new();
        let at = crate::engine::unix_ms() + 30;
        t.q(&format!("SET k v PXAT {at}"));
        t.q("WATCH k");
        std::thread::sleep(std::time::Duration::from_millis(60));
        t.q("MULTI");
        t.q("SET other 1");
        assert_eq!(t.q("EXEC"), "*-1\r\n");
    }

    #[test]
    fn untouched_watch_lets_exec_run_and_unwatch_forgets() {
        let mut t = Tester::new();
        t.q("WATCH k");
        t.q("MULTI");
        t.q("SET k 1");
        assert_eq!(t.q("EXEC"), "*1\r\n+OK\r\n");
        t.q("WATCH k");
        t.q("SET k 2");
        assert_eq!(t.q("UNWATCH"), "+OK\r\n");
        t.q("MULTI");
        t.q("SET k 3");
        assert_eq!(t.q("EXEC"), "*1\r\n+OK\r\n");
        t.q("MULTI");
        assert_eq!(
            t.q("WATCH k"),
            "-ERR Command not allowed inside a transaction\r\n"
        );
    }

    #[test]
    fn flushdb_fails_watchers() {
        let mut t = Tester::new();
        t.q("SET k 1");
        t.q("WATCH k");
        t.q("FLUSHDB");
        t.q("MULTI");
        t.q("SET k 2");
        assert_eq!(t.q("EXEC"), "*-1\r\n");
    }

    #[test]
    fn exec_with_writes_on_a_secondary_aborts() {
        let mut t = Tester::new();
        t.q("MULTI");
        t.q("SET k 1");
        t.eng.set_role(Role::Secondary);
        assert!(t
            .q("EXEC")
            .starts_with("-EXECABORT Transaction contains write commands"));
    }
}
