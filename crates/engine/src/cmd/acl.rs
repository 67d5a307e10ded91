//! `ACL`: users and their rules (`SETUSER`, `DELUSER`, `GETUSER`,
//! `LIST`, `USERS`, `WHOAMI`), categories (`CAT`) and the denial log
//! (`LOG`).
//!
//! Named users are part of the datastore: `SETUSER` and `DELUSER` are
//! journaled, so they replicate, and a secondary refuses them from its
//! own clients (`-READONLY`). `SETUSER` is journaled as the user's whole
//! state (`ACL SETUSER name reset <rules>`, passwords as `#<sha256>`), so
//! the clear-text password never enters the change log and replaying it
//! is idempotent. The `default` user belongs to each region (its
//! `requirepass`): changing it is not journaled.

use resp::{Args, Out};

use crate::acl::{Universe, User, UserId, CATEGORIES};
use crate::cmd::{eq_ic, int_arg};
use crate::engine::{Action, Engine, Role, Session};
use crate::error::{CmdError, CmdResult};
use crate::table::{row, Command, STALE};

/// The family's table rows. `ACL` is a container: its subcommands'
/// categories are in `acl::cats` (Redis grants them separately).
pub(crate) const COMMANDS: &[Command] = &[row(
    "acl",
    -2,
    STALE,
    (0, 0, 0),
    "server",
    "A container for Access List Control commands.",
    acl,
)];

fn acl(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let sub = args[1].to_ascii_lowercase();
    let arity = |ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(CmdError::Arity(format!(
                "acl|{}",
                String::from_utf8_lossy(&sub)
            )))
        }
    };
    eng.sync_default_user();
    match sub.as_slice() {
        b"setuser" => {
            arity(args.len() >= 3)?;
            setuser(eng, s, args, out)
        }
        b"deluser" => {
            arity(args.len() >= 3)?;
            deluser(eng, s, args, out)
        }
        b"getuser" => {
            arity(args.len() == 3)?;
            getuser(eng, &args[2], out);
            Ok(())
        }
        b"list" => {
            arity(args.len() == 2)?;
            let lines: Vec<String> = eng
                .acl
                .users()
                .map(|u| format!("user {} {}", u.name, u.describe().join(" ")))
                .collect();
            out.array(lines.len());
            for l in lines {
                out.bulk(l.as_bytes());
            }
            Ok(())
        }
        b"users" => {
            arity(args.len() == 2)?;
            let names: Vec<String> = eng.acl.users().map(|u| u.name.clone()).collect();
            out.array(names.len());
            for n in names {
                out.bulk(n.as_bytes());
            }
            Ok(())
        }
        b"whoami" => {
            arity(args.len() == 2)?;
            out.bulk(eng.acl.name_of(s.user).as_bytes());
            Ok(())
        }
        b"cat" => {
            arity(args.len() <= 3)?;
            cat(args.get(2), out)
        }
        b"log" => {
            arity(args.len() <= 3)?;
            log(eng, args.get(2), out)
        }
        b"help" => {
            arity(args.len() == 2)?;
            crate::cmd::help(
                out,
                &[
                    "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                    "CAT [<category>]",
                    "    List all commands that belong to <category>, or all command categories",
                    "    when no category is specified.",
                    "DELUSER <username> [<username> ...]",
                    "    Delete a list of users.",
                    "GETUSER <username>",
                    "    Get the user's details.",
                    "LIST",
                    "    Show users details in config file format.",
                    "USERS",
                    "    List all the registered usernames.",
                    "SETUSER <username> [<property> [<property> ...]]",
                    "    Create or modify a user with the specified properties.",
                    "WHOAMI",
                    "    Return the current connection username.",
                    "LOG [<count> | RESET]",
                    "    Show the ACL log entries.",
                    "HELP",
                    "    Print this help.",
                ],
            );
            Ok(())
        }
        _ => Err(crate::cmd::unknown_subcommand(&args[1], "ACL")),
    }
}

/// Users replicate; a secondary's own clients may not change them.
fn refuse_on_secondary(eng: &Engine, s: &Session) -> CmdResult {
    if eng.role == Role::Secondary && !s.is_primary_link {
        return Err(CmdError::ReadOnly);
    }
    Ok(())
}

fn setuser(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let name = crate::acl::check_name(&args[2])?;
    // The default user is the region's own (not journaled): a secondary's
    // clients may change it, as its `requirepass`.
    if name != "default" {
        refuse_on_secondary(eng, s)?;
    }
    // All rules or none: they apply to a copy.
    let mut user = match eng.acl.id(name.as_bytes()).and_then(|id| eng.acl.user(id)) {
        Some(u) => u.clone(),
        None => User::new(name),
    };
    for rule in args.iter().skip(3) {
        if rule.is_empty() {
            return Err(CmdError::err(
                "Error in ACL SETUSER modifier '': Syntax error",
            ));
        }
        user.apply(rule)?;
    }
    let state = user.describe();
    eng.acl.put(user);
    eng.dirty += 1;
    if name == "default" {
        eng.log_custom();
    } else {
        let mut argv: Vec<&[u8]> = vec![b"ACL", b"SETUSER", name.as_bytes(), b"reset"];
        argv.extend(state.iter().map(|r| r.as_bytes()));
        eng.log_op(s.db, &argv);
    }
    out.ok();
    Ok(())
}

fn deluser(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    refuse_on_secondary(eng, s)?;
    if args.iter().skip(2).any(|n| n == b"default") {
        return Err(CmdError::err("The 'default' user cannot be removed"));
    }
    let mut gone: Vec<UserId> = Vec::new();
    let mut names: Vec<&[u8]> = vec![b"ACL", b"DELUSER"];
    for n in args.iter().skip(2) {
        if let Some(id) = eng.acl.remove(n) {
            gone.push(id);
            names.push(n);
        }
    }
    if !gone.is_empty() {
        eng.dirty += 1;
        eng.log_op(s.db, &names);
        // Redis closes the connections of a deleted user. (Those of a
        // secondary's clients stay open but can run nothing: their user's
        // slot is empty.)
        let victims: Vec<u64> = eng
            .clients
            .iter()
            .filter(|(_, m)| gone.contains(&m.user))
            .map(|(&id, _)| id)
            .collect();
        if !victims.is_empty() {
            s.action = Action::Kill(victims);
        }
    } else {
        eng.log_custom();
    }
    out.int(gone.len() as i64);
    Ok(())
}

fn getuser(eng: &Engine, name: &[u8], out: &mut Out) {
    let Some(u) = eng.acl.id(name).and_then(|id| eng.acl.user(id)) else {
        out.null();
        return;
    };
    out.map(6);
    out.bulk(b"flags");
    let mut flags = vec![if u.enabled { "on" } else { "off" }];
    if u.nopass {
        flags.push("nopass");
    }
    out.array(flags.len());
    for f in flags {
        out.bulk(f.as_bytes());
    }
    out.bulk(b"passwords");
    out.array(u.passwords.len());
    for p in &u.passwords {
        out.bulk(crate::acl::hex(p).as_bytes());
    }
    out.bulk(b"commands");
    out.bulk(u.command_rules().as_bytes());
    out.bulk(b"keys");
    let keys = if u.all_keys {
        "~*".to_string()
    } else {
        u.keys
            .iter()
            .map(|k| format!("~{}", String::from_utf8_lossy(k)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    out.bulk(keys.as_bytes());
    out.bulk(b"channels");
    let channels = if u.all_channels {
        "&*".to_string()
    } else {
        u.channels
            .iter()
            .map(|c| format!("&{}", String::from_utf8_lossy(c)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    out.bulk(channels.as_bytes());
    out.bulk(b"selectors");
    out.array(0);
}

fn cat(category: Option<&[u8]>, out: &mut Out) -> CmdResult {
    let Some(c) = category else {
        out.array(CATEGORIES.len());
        for c in CATEGORIES {
            out.bulk(c.as_bytes());
        }
        return Ok(());
    };
    let lower = String::from_utf8_lossy(c).to_ascii_lowercase();
    let bit = crate::acl::cat_bit(&lower).ok_or_else(|| {
        CmdError::err(format!("Unknown category '{}'", String::from_utf8_lossy(c)))
    })?;
    let u = Universe::get();
    let names: Vec<&str> = u
        .in_category(bit)
        .map(|i| u.cmds[i].name.as_str())
        .collect();
    out.array(names.len());
    for n in names {
        out.bulk(n.as_bytes());
    }
    Ok(())
}

fn log(eng: &mut Engine, arg: Option<&[u8]>, out: &mut Out) -> CmdResult {
    let count = match arg {
        None => usize::MAX,
        Some(a) if eq_ic(a, "reset") => {
            eng.acl.log.clear();
            out.ok();
            return Ok(());
        }
        Some(a) => {
            let n = int_arg(a)?;
            if n < 0 {
                return Err(CmdError::NotInteger);
            }
            n as usize
        }
    };
    let now = eng.now_ms;
    let entries: Vec<_> = eng.acl.log.iter().take(count).collect();
    out.array(entries.len());
    for e in entries {
        out.map(10);
        out.bulk(b"count");
        out.int(e.count as i64);
        out.bulk(b"reason");
        out.bulk(e.reason.as_bytes());
        out.bulk(b"context");
        out.bulk(e.context.as_bytes());
        out.bulk(b"object");
        out.bulk(e.object.as_bytes());
        out.bulk(b"username");
        out.bulk(e.username.as_bytes());
        out.bulk(b"age-seconds");
        out.double(now.saturating_sub(e.created_ms) as f64 / 1000.0);
        out.bulk(b"client-info");
        out.bulk(e.client_info.trim_end().as_bytes());
        out.bulk(b"entry-id");
        out.int(e.entry_id as i64);
        out.bulk(b"timestamp-created");
        out.int(e.created_ms as i64);
        out.bulk(b"timestamp-last-updated");
        out.int(e.updated_ms as i64);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::engine::Role;
    use crate::testutil::{ops, Tester};

    const WRONGPASS: &str = "-WRONGPASS invalid username-password pair or user is disabled.\r\n";

    /// `AUTH user pass` on a fresh connection, so the tester's own
    /// session stays `default`.
    fn auth(t: &mut Tester, user: &str, pass: &str) -> String {
        let mut s = t.eng.connect(crate::engine::ConnInfo {
            addr: "127.0.0.1:6001".into(),
            laddr: "127.0.0.1:7379".into(),
        });
        let argv = resp::ArgvBuf::from_iter(["AUTH", user, pass]);
        let mut out = resp::Out::default();
        t.eng.execute(&mut s, argv.args(), &mut out);
        t.eng.disconnect(&mut s);
        String::from_utf8_lossy(out.as_bytes()).into_owned()
    }

    /// A tester logged in as `user` (created by `rules`).
    fn as_user(rules: &str) -> Tester {
        let mut t = Tester::new();
        assert_eq!(t.q(&format!("ACL SETUSER u {rules}")), "+OK\r\n");
        assert_eq!(t.q("AUTH u pw"), "+OK\r\n");
        t
    }

    #[test]
    fn setuser_list_getuser_like_redis() {
        let mut t = Tester::new();
        assert_eq!(
            t.q("ACL SETUSER u on >p1 >p2 ~session:* &ch* +@read -debug"),
            "+OK\r\n"
        );
        assert_eq!(t.q("ACL SETUSER x"), "+OK\r\n");
        // The exact lines redis-server 7.0 prints for the same commands.
        assert_eq!(
            t.q("ACL LIST"),
            "*3\r\n$34\r\nuser default on nopass ~* &* +@all\r\n\
             $191\r\nuser u on #f64551fcd6f07823cb87971cfb91446425da18286b3ab1ef935e0cbd7a69f68a #3946ca64ff78d93ca61090a437cbb6b3d2ca0d488f5f9ccf3059608368b27693 ~session:* resetchannels &ch* -@all +@read -debug\r\n\
             $30\r\nuser x off resetchannels -@all\r\n"
        );
        assert_eq!(
            t.q("ACL USERS"),
            "*3\r\n$7\r\ndefault\r\n$1\r\nu\r\n$1\r\nx\r\n"
        );
        let g = t.q("ACL GETUSER u");
        assert!(
            g.starts_with("*12\r\n$5\r\nflags\r\n*1\r\n$2\r\non\r\n$9\r\npasswords\r\n*2\r\n"),
            "{g}"
        );
        assert!(
            g.contains("$8\r\ncommands\r\n$19\r\n-@all +@read -debug\r\n"),
            "{g}"
        );
        assert!(
            g.contains("$4\r\nkeys\r\n$10\r\n~session:*\r\n$8\r\nchannels\r\n$4\r\n&ch*\r\n"),
            "{g}"
        );
        assert_eq!(t.q("ACL GETUSER nobody"), "$-1\r\n");
        assert_eq!(t.q("ACL SETUSER x +get -get +get"), "+OK\r\n");
        assert_eq!(t.q("ACL SETUSER x allcommands -config|get"), "+OK\r\n");
        assert!(t
            .q("ACL LIST")
            .contains("user x off resetchannels +@all -config|get\r\n"));
        assert_eq!(
            t.q("ACL SETUSER x nocommands +config|get +acl|whoami"),
            "+OK\r\n"
        );
        assert!(t
            .q("ACL LIST")
            .contains("-@all +config|get +acl|whoami\r\n"));
    }

    #[test]
    fn setuser_errors_are_redis_words_and_atomic() {
        let mut t = Tester::new();
        let err = |rule: &str, why: &str| {
            format!("-ERR Error in ACL SETUSER modifier '{rule}': {why}\r\n")
        };
        assert_eq!(t.q("ACL SETUSER x foo"), err("foo", "Syntax error"));
        assert_eq!(
            t.q("ACL SETUSER x +@nope"),
            err("+@nope", "Unknown command or category name in ACL")
        );
        assert_eq!(
            t.q("ACL SETUSER x +nope"),
            err("+nope", "Unknown command or category name in ACL")
        );
        assert_eq!(t.q("ACL SETUSER x #abc"), err("#abc", "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters"));
        assert_eq!(
            t.q("ACL SETUSER x <zz"),
            err(
                "<zz",
                "The password you are trying to remove from the user does not exist"
            )
        );
        assert_eq!(
            t.q("ACL SETUSER x allkeys ~a"),
            err("~a", "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns")
        );
        assert!(t
            .q("ACL SETUSER x allchannels &a")
            .contains("Try 'resetchannels'"));
        // Nothing was created by the failed commands.
        assert_eq!(t.q("ACL USERS"), "*1\r\n$7\r\ndefault\r\n");
        assert_eq!(
            t.run(&["ACL", "SETUSER", "a b"]),
            "-ERR Usernames can't contain spaces or null characters\r\n"
        );
        assert_eq!(
            t.q("ACL DELUSER default"),
            "-ERR The 'default' user cannot be removed\r\n"
        );
        assert_eq!(
            t.q("ACL DELUSER"),
            "-ERR wrong number of arguments for 'acl|deluser' command\r\n"
        );
        assert_eq!(
            t.q("ACL FOO"),
            "-ERR unknown subcommand 'FOO'. Try ACL HELP.\r\n"
        );
        assert_eq!(
            t.q("ACL"),
            "-ERR wrong number of arguments for 'acl' command\r\n"
        );
    }

    #[test]
    fn passwords_add_remove_hash_nopass_reset() {
        let mut t = Tester::new();
        t.q("ACL SETUSER u on >a >b");
        assert_eq!(auth(&mut t, "u", "a"), "+OK\r\n");
        assert_eq!(auth(&mut t, "u", "b"), "+OK\r\n");
        assert_eq!(auth(&mut t, "u", "c"), WRONGPASS);
        assert_eq!(t.q("ACL SETUSER u <a"), "+OK\r\n");
        assert_eq!(auth(&mut t, "u", "a"), WRONGPASS);
        let h = crate::acl::hex(&crate::acl::sha256(b"c"));
        assert_eq!(t.q(&format!("ACL SETUSER u #{h}")), "+OK\r\n");
        assert_eq!(auth(&mut t, "u", "c"), "+OK\r\n");
        assert_eq!(t.q(&format!("ACL SETUSER u !{h}")), "+OK\r\n");
        assert_eq!(auth(&mut t, "u", "c"), WRONGPASS);
        assert_eq!(t.q("ACL SETUSER u nopass"), "+OK\r\n");
        assert_eq!(auth(&mut t, "u", "anything"), "+OK\r\n");
        assert_eq!(t.q("ACL SETUSER u resetpass"), "+OK\r\n");
        assert_eq!(auth(&mut t, "u", "anything"), WRONGPASS);
        assert_eq!(t.q("ACL SETUSER u >z off"), "+OK\r\n");
        assert_eq!(
            auth(&mut t, "u", "z"),
            WRONGPASS,
            "a disabled user cannot log in"
        );
        assert_eq!(t.q("ACL SETUSER u reset"), "+OK\r\n");
        assert!(t
            .q("ACL LIST")
            .contains("user u off resetchannels -@all\r\n"));
        assert_eq!(auth(&mut t, "nobody", "x"), WRONGPASS);
    }

    #[test]
    fn command_category_key_and_channel_denials() {
        let mut t = as_user("on >pw ~session:* &news.* +@read +@connection +subscribe +publish");
        assert_eq!(
            t.q("ACL WHOAMI"),
            "-NOPERM User u has no permissions to run the 'acl|whoami' command\r\n"
        );
        assert_eq!(t.q("GET session:1"), "$-1\r\n");
        assert_eq!(
            t.q("GET user:1"),
            "-NOPERM No permissions to access a key\r\n"
        );
        assert_eq!(
            t.q("MGET session:1 user:1"),
            "-NOPERM No permissions to access a key\r\n"
        );
        assert_eq!(
            t.q("SET session:1 x"),
            "-NOPERM User u has no permissions to run the 'set' command\r\n"
        );
        assert_eq!(
            t.q("FLUSHALL"),
            "-NOPERM User u has no permissions to run the 'flushall' command\r\n"
        );
        assert_eq!(
            t.q("CONFIG SET maxmemory 1"),
            "-NOPERM User u has no permissions to run the 'config|set' command\r\n"
        );
        assert_eq!(t.q("PUBLISH news.a x"), ":0\r\n");
        assert_eq!(
            t.q("PUBLISH sport x"),
            "-NOPERM No permissions to access a channel\r\n"
        );
        assert_eq!(
            t.q("CLIENT ID"),
            format!(":{}\r\n", t.s.id),
            "client|id is @connection"
        );
        assert_eq!(t.q("PING"), "+PONG\r\n");
        // Counted in INFO stats (INFO itself is @dangerous: ask as default).
        t.q("AUTH default x");
        let info = t.q("INFO stats");
        assert!(info.contains("acl_access_denied_cmd:4\r\n"), "{info}");
        assert!(info.contains("acl_access_denied_key:2\r\n"), "{info}");
        assert!(info.contains("acl_access_denied_channel:1\r\n"), "{info}");
    }

    #[test]
    fn admin_commands_need_admin_or_dangerous() {
        let mut t = as_user("on >pw allkeys allchannels +@all -@dangerous");
        for cmd in [
            "FLUSHALL",
            "FLUSHDB",
            "SHUTDOWN",
            "DEBUG SLEEP 0",
            "CONFIG SET hz 10",
            "CLIENT KILL ID 1",
            "ACL SETUSER y",
            "ACL DELUSER y",
            "KEYS *",
        ] {
            assert!(
                t.q(cmd).starts_with("-NOPERM User u has no permissions"),
                "{cmd}"
            );
        }
        assert_eq!(t.q("ACL WHOAMI"), "$1\r\nu\r\n", "WHOAMI is not @admin");
        assert_eq!(t.q("SET a 1"), "+OK\r\n");
        let mut t = as_user("on >pw allkeys allchannels +@all -@admin");
        assert!(t.q("CONFIG GET hz").starts_with("-NOPERM"));
        assert_eq!(
            t.q("FLUSHDB"),
            "+OK\r\n",
            "FLUSHDB is @dangerous, not @admin"
        );
    }

    #[test]
    fn denials_are_logged_and_folded() {
        let mut t = as_user("on >pw ~a +get");
        t.q("GET b");
        t.q("GET b");
        t.q("SET a 1");
        t.q("AUTH u wrong");
        t.q("AUTH default x");
        let log = t.q("ACL LOG");
        assert!(log.starts_with("*3\r\n"), "{log}");
        assert!(log.contains("$6\r\nreason\r\n$4\r\nauth\r\n"), "{log}");
        assert!(log.contains("$5\r\ncount\r\n:2\r\n$6\r\nreason\r\n$3\r\nkey\r\n$7\r\ncontext\r\n$8\r\ntoplevel\r\n$6\r\nobject\r\n$1\r\nb\r\n$8\r\nusername\r\n$1\r\nu\r\n"), "{log}");
        assert!(log.contains("user=u"), "{log}");
        assert!(!log.contains("wrong"), "the password is never logged");
        assert!(t.q("ACL LOG 1").starts_with("*1\r\n"));
        assert_eq!(
            t.q("ACL LOG x"),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(t.q("ACL LOG RESET"), "+OK\r\n");
        assert_eq!(t.q("ACL LOG"), "*0\r\n");
        assert!(t.q("INFO stats").contains("acl_access_denied_auth:1\r\n"));
    }

    #[test]
    fn multi_refuses_denied_commands_at_queue_time() {
        let mut t = as_user("on >pw allkeys +@transaction +get");
        assert_eq!(t.q("MULTI"), "+OK\r\n");
        assert!(t.q("SET a 1").starts_with("-NOPERM"));
        assert_eq!(
            t.q("EXEC"),
            "-EXECABORT Transaction discarded because of previous errors.\r\n"
        );
    }

    #[test]
    fn cat_and_whoami() {
        let mut t = Tester::new();
        let all = t.q("ACL CAT");
        assert!(
            all.starts_with("*21\r\n$8\r\nkeyspace\r\n$4\r\nread\r\n"),
            "{all}"
        );
        let tx = t.q("ACL CAT transaction");
        for c in ["exec", "multi", "watch", "discard", "unwatch"] {
            assert!(tx.contains(&format!("\r\n{c}\r\n")), "{tx}");
        }
        assert!(t.q("ACL CAT connection").contains("client|id"));
        assert_eq!(t.q("ACL CAT nope"), "-ERR Unknown category 'nope'\r\n");
        assert_eq!(t.q("ACL WHOAMI"), "$7\r\ndefault\r\n");
        assert!(t.q("ACL HELP").starts_with("*"));
    }

    #[test]
    fn requirepass_and_previous_rotate_the_default_password() {
        let mut t = Tester::new();
        assert_eq!(t.q("CONFIG SET requirepass new"), "+OK\r\n");
        assert_eq!(t.q("CONFIG SET requirepass-previous old"), "+OK\r\n");
        assert_eq!(t.q("AUTH new"), "+OK\r\n");
        assert_eq!(t.q("AUTH old"), "+OK\r\n");
        assert_eq!(t.q("AUTH default old"), "+OK\r\n");
        assert_eq!(t.q("CONFIG SET requirepass-previous \"\""), "+OK\r\n");
        t.run(&["CONFIG", "SET", "requirepass-previous", ""]);
        assert_eq!(t.q("AUTH old"), WRONGPASS);
        assert_eq!(t.q("AUTH new"), "+OK\r\n");
        let h = crate::acl::hex(&crate::acl::sha256(b"new"));
        assert!(t
            .q("ACL LIST")
            .contains(&format!("user default on #{h} ~* &* +@all")));
        // A new connection must authenticate; RESET logs out.
        t.q("RESET");
        assert_eq!(t.q("GET a"), "-NOAUTH Authentication required.\r\n");
        assert_eq!(t.q("HELLO 3 AUTH default bad"), WRONGPASS);
        assert!(t.q("HELLO 3 AUTH default new").starts_with("%7"));
        t.run(&["CONFIG", "SET", "requirepass", ""]);
        assert_eq!(
            t.q("AUTH default x"),
            "+OK\r\n",
            "nopass accepts any password"
        );
        assert!(t
            .q("AUTH x")
            .starts_with("-ERR AUTH <password> called without"));
    }

    #[test]
    fn named_users_are_journaled_as_their_whole_state() {
        let mut t = Tester::new();
        ops(&mut t);
        t.q("ACL SETUSER u on >pw ~k* +get");
        t.q("ACL SETUSER u -get +set");
        let h = crate::acl::hex(&crate::acl::sha256(b"pw"));
        assert_eq!(
            ops(&mut t),
            [
                format!("ACL SETUSER u reset on #{h} ~k* resetchannels -@all +get"),
                format!("ACL SETUSER u reset on #{h} ~k* resetchannels -@all -get +set"),
            ]
        );
        t.q("ACL SETUSER default >x");
        t.q("ACL DELUSER nobody");
        assert!(ops(&mut t).is_empty(), "default is the region's own");
        assert_eq!(t.q("ACL DELUSER u nobody"), ":1\r\n");
        assert_eq!(ops(&mut t), ["ACL DELUSER u"]);
    }

    #[test]
    fn replayed_ops_rebuild_the_users_on_a_secondary() {
        let mut t = Tester::new();
        t.q("ACL SETUSER u on >pw ~k* &c +@read -keys");
        t.q("ACL SETUSER v on nopass allkeys +@all");
        t.q("ACL DELUSER v");
        let units = t.eng.take_units();
        let mut sec = Tester::new();
        sec.eng.set_role(Role::Secondary);
        assert_eq!(
            sec.q("ACL SETUSER w"),
            "-READONLY You can't write against a read only replica.\r\n"
        );
        assert_eq!(
            sec.q("ACL DELUSER u"),
            "-READONLY You can't write against a read only replica.\r\n"
        );
        // The default user is the secondary's own to change.
        assert_eq!(sec.q("ACL SETUSER default >own"), "+OK\r\n");
        assert_eq!(sec.q("AUTH default own"), "+OK\r\n");
        assert_eq!(sec.q("ACL SETUSER default nopass"), "+OK\r\n");
        assert!(sec.eng.take_units().is_empty(), "not journaled");
        for u in &units {
            sec.eng.apply(u).unwrap();
        }
        assert_eq!(
            t.q("ACL LIST")
                .split("\r\n")
                .filter(|l| l.starts_with("user u"))
                .collect::<Vec<_>>(),
            sec.q("ACL LIST")
                .split("\r\n")
                .filter(|l| l.starts_with("user u"))
                .collect::<Vec<_>>()
        );
        assert_eq!(sec.q("ACL USERS"), "*2\r\n$7\r\ndefault\r\n$1\r\nu\r\n");
        assert_eq!(sec.q("AUTH u pw"), "+OK\r\n");
        assert_eq!(sec.q("GET k1"), "$-1\r\n");
        assert!(sec.q("KEYS *").starts_with("-NOPERM"));
    }

    #[test]
    fn deleting_a_user_closes_its_connections_and_changes_apply_at_once() {
        let mut t = Tester::new();
        t.q("ACL SETUSER u on >pw allkeys +get");
        let mut other = t.eng.connect(crate::engine::ConnInfo {
            addr: "127.0.0.1:6000".into(),
            laddr: "127.0.0.1:7379".into(),
        });
        let other_id = other.id;
        let mut run = |t: &mut Tester, line: &str| {
            let argv = resp::ArgvBuf::from_iter(line.split(' '));
            let mut out = resp::Out::default();
            t.eng.execute(&mut other, argv.args(), &mut out);
            String::from_utf8_lossy(out.as_bytes()).into_owned()
        };
        assert_eq!(run(&mut t, "AUTH u pw"), "+OK\r\n");
        assert!(run(&mut t, "SET a 1").starts_with("-NOPERM"));
        t.q("ACL SETUSER u +set");
        assert_eq!(
            run(&mut t, "SET a 1"),
            "+OK\r\n",
            "a change applies to logged-in sessions"
        );
        assert!(t.q("CLIENT LIST").contains("user=u"));
        let argv = resp::ArgvBuf::from_iter(["ACL", "DELUSER", "u"]);
        let mut out = resp::Out::default();
        let action = t.eng.execute(&mut t.s, argv.args(), &mut out);
        assert_eq!(action, crate::engine::Action::Kill(vec![other_id]));
        assert!(
            run(&mut t, "GET a").starts_with("-NOPERM"),
            "a deleted user's session runs nothing"
        );
    }
}
