//! Connection commands: PING, ECHO, SELECT, HELLO, AUTH, QUIT, RESET, CLIENT.

use std::fmt::Write as _;

use resp::{Args, Out, Proto};

use crate::cmd::{eq_ic, int_arg, parse_i64};
use crate::engine::{Action, ClientMeta, Engine, Role, Session};
use crate::error::{CmdError, CmdResult};
use crate::table::{row, Command, ADMIN, FAST, NO_AUTH, STALE};

/// The family's table rows.
pub(crate) const COMMANDS: &[Command] = &[
    row(
        "ping",
        -1,
        FAST | STALE,
        (0, 0, 0),
        "connection",
        "Returns the server's liveliness response.",
        ping,
    ),
    row(
        "echo",
        2,
        FAST,
        (0, 0, 0),
        "connection",
        "Returns the given string.",
        echo,
    ),
    row(
        "select",
        2,
        FAST | STALE,
        (0, 0, 0),
        "connection",
        "Changes the selected database.",
        select,
    ),
    row(
        "hello",
        -1,
        FAST | NO_AUTH | STALE,
        (0, 0, 0),
        "connection",
        "Handshakes with the Redis server.",
        hello,
    ),
    row(
        "auth",
        -2,
        FAST | NO_AUTH | STALE,
        (0, 0, 0),
        "connection",
        "Authenticates the connection.",
        auth,
    ),
    row(
        "quit",
        -1,
        FAST | NO_AUTH | STALE,
        (0, 0, 0),
        "connection",
        "Closes the connection.",
        quit,
    ),
    row(
        "reset",
        1,
        FAST | NO_AUTH | STALE,
        (0, 0, 0),
        "connection",
        "Resets the connection.",
        reset,
    ),
    row(
        "client",
        -2,
        ADMIN | STALE,
        (0, 0, 0),
        "connection",
        "A container for client connection commands.",
        client,
    ),
];

/// The Redis version clients are told, for features they gate on it.
pub(crate) const REDIS_VERSION: &str = "7.2.4";

fn ping(_: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    if args.len() > 2 {
        return Err(CmdError::Arity("ping".into()));
    }
    if s.is_subscribed() && out.proto == Proto::Resp2 {
        // In RESP2 subscribe mode PING answers in the shape of a message.
        out.array(2);
        out.bulk(b"pong");
        out.bulk(args.get(1).unwrap_or(b""));
        return Ok(());
    }
    match args.get(1) {
        None => out.simple("PONG"),
        Some(msg) => out.bulk(msg),
    }
    Ok(())
}

fn echo(_: &mut Engine, _: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    out.bulk(&args[1]);
    Ok(())
}

fn select(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let db = int_arg(&args[1])?;
    if db < 0 || db as usize >= eng.dbs.len() {
        return Err(CmdError::DbIndex);
    }
    s.db = db as usize;
    if let Some(m) = eng.clients.get_mut(&s.id) {
        m.db = s.db;
    }
    out.ok();
    Ok(())
}

/// `AUTH [user] password`. With one argument the user is `default`,
/// which Redis refuses while `default` has no password.
fn auth(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let (user, pass): (&[u8], &[u8]) = match args.len() {
        2 => (b"default", &args[1]),
        3 => (&args[1], &args[2]),
        _ => return Err(CmdError::Syntax),
    };
    eng.sync_default_user();
    let default_nopass = eng
        .acl
        .user(crate::acl::UserId::DEFAULT)
        .is_some_and(|u| u.nopass);
    if args.len() == 2 && default_nopass {
        return Err(CmdError::err(
            "AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
        ));
    }
    eng.authenticate(s, user, pass)?;
    out.ok();
    Ok(())
}

fn hello(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let mut proto = out.proto;
    let mut i = 1;
    if args.len() > 1 {
        match parse_i64(&args[1]) {
            Some(2) => proto = Proto::Resp2,
            Some(3) => proto = Proto::Resp3,
            Some(_) => {
                return Err(CmdError::Other(
                    "NOPROTO unsupported protocol version".into(),
                ))
            }
            None => {
                return Err(CmdError::err(
                    "Protocol version is not an integer or out of range",
                ))
            }
        }
        i = 2;
    }
    let mut name = None;
    let mut creds = None;
    while i < args.len() {
        let more = args.len() - i - 1;
        if eq_ic(&args[i], "auth") && more >= 2 {
            creds = Some((&args[i + 1], &args[i + 2]));
            i += 3;
        } else if eq_ic(&args[i], "setname") && more >= 1 {
            name = Some(&args[i + 1]);
            i += 2;
        } else {
            return Err(CmdError::err(format!(
                "Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(&args[i])
            )));
        }
    }
    if let Some((user, pass)) = creds {
        eng.authenticate(s, user, pass)?;
    }
    if !s.authenticated {
        return Err(CmdError::Other(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time".into(),
        ));
    }
    if let Some(n) = name {
        valid_name(n)?;
    }
    let meta = eng.clients.get_mut(&s.id);
    if let Some(m) = meta {
        if let Some(n) = name {
            m.name = n.to_vec();
        }
        m.resp = if proto == Proto::Resp3 { 3 } else { 2 };
    }
    out.proto = proto;
    out.map(7);
    out.bulk(b"server");
    out.bulk(b"redis");
    out.bulk(b"version");
    out.bulk(REDIS_VERSION.as_bytes());
    out.bulk(b"proto");
    out.int(if proto == Proto::Resp3 { 3 } else { 2 });
    out.bulk(b"id");
    out.int(s.id as i64);
    out.bulk(b"mode");
    out.bulk(b"standalone");
    out.bulk(b"role");
    out.bulk(match eng.role {
        Role::Primary => b"master",
        Role::Secondary => b"replica",
    });
    out.bulk(b"modules");
    out.array(0);
    Ok(())
}

fn quit(_: &mut Engine, s: &mut Session, _: Args<'_>, out: &mut Out) -> CmdResult {
    out.ok();
    s.action = Action::Close;
    Ok(())
}

fn reset(eng: &mut Engine, s: &mut Session, _: Args<'_>, out: &mut Out) -> CmdResult {
    s.in_multi = false;
    s.multi_error = false;
    s.queued.clear();
    eng.unwatch_all(s);
    eng.pubsub.forget(s.id);
    s.subscriptions = 0;
    s.db = 0;
    // Back to `default`, logged in only if it needs no password.
    eng.sync_default_user();
    s.user = crate::acl::UserId::DEFAULT;
    s.authenticated = eng.acl.user(s.user).is_some_and(|u| u.enabled && u.nopass);
    out.proto = Proto::Resp2;
    if let Some(m) = eng.clients.get_mut(&s.id) {
        m.db = 0;
        m.name.clear();
        m.resp = 2;
        m.user = s.user;
    }
    out.simple("RESET");
    Ok(())
}

/// Redis refuses client names with spaces or non-printable bytes.
fn valid_name(name: &[u8]) -> CmdResult {
    if name.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
        return Err(CmdError::err(
            "Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    Ok(())
}

fn client(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let sub = args[1].to_ascii_lowercase();
    let argc = args.len();
    let arity = |ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(CmdError::Arity(format!(
                "client|{}",
                String::from_utf8_lossy(&sub)
            )))
        }
    };
    match sub.as_slice() {
        b"id" => {
            arity(argc == 2)?;
            out.int(s.id as i64);
        }
        b"setname" => {
            arity(argc == 3)?;
            valid_name(&args[2])?;
            if let Some(m) = eng.clients.get_mut(&s.id) {
                m.name = args[2].to_vec();
            }
            out.ok();
        }
        b"getname" => {
            arity(argc == 2)?;
            match eng.clients.get(&s.id) {
                Some(m) if !m.name.is_empty() => out.bulk(&m.name),
                _ => out.null(),
            }
        }
        b"setinfo" => {
            arity(argc == 4)?;
            let value = String::from_utf8_lossy(&args[3]).into_owned();
            if value.contains(|c: char| c == ' ' || c.is_control()) {
                return Err(CmdError::err(format!(
                    "{} cannot contain spaces, newlines or special characters.",
                    String::from_utf8_lossy(&args[2])
                )));
            }
            let m = eng.clients.get_mut(&s.id);
            if eq_ic(&args[2], "lib-name") {
                if let Some(m) = m {
                    m.lib_name = value;
                }
            } else if eq_ic(&args[2], "lib-ver") {
                if let Some(m) = m {
                    m.lib_ver = value;
                }
            } else {
                return Err(CmdError::err(format!(
                    "Unrecognized option '{}'",
                    String::from_utf8_lossy(&args[2])
                )));
            }
            out.ok();
        }
        b"info" => {
            arity(argc == 2)?;
            let line = eng
                .clients
                .get(&s.id)
                .map(|m| client_line(s.id, m, eng.acl.name_of(m.user)))
                .unwrap_or_default();
            out.verbatim("txt", line.as_bytes());
        }
        b"list" => {
            let wanted = list_filter(args.tail(2))?;
            let mut text = String::new();
            let mut all: Vec<u64> = eng.clients.keys().copied().collect();
            all.sort_unstable();
            for (id, m) in all
                .iter()
                .filter_map(|id| Some((*id, eng.clients.get(id)?)))
            {
                if wanted.as_ref().is_none_or(|w| w.contains(&id)) {
                    text.push_str(&client_line(id, m, eng.acl.name_of(m.user)));
                }
            }
            out.verbatim("txt", text.as_bytes());
        }
        b"kill" => kill(eng, s, args, out)?,
        b"no-evict" | b"no-touch" => {
            arity(argc == 3)?;
            if !eq_ic(&args[2], "on") && !eq_ic(&args[2], "off") {
                return Err(CmdError::Syntax);
            }
            out.ok();
        }
        b"help" => {
            let lines: &[&str] = &[
                "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "ID",
                "    Return the ID of the current connection.",
                "GETNAME",
                "    Return the name of the current connection.",
                "SETNAME <name>",
                "    Assign the name <name> to the current connection.",
                "SETINFO <LIB-NAME|LIB-VER> <value>",
                "    Set client meta attributes.",
                "INFO",
                "    Return information about the current client connection.",
                "LIST [TYPE <normal|master|replica|pubsub>] [ID <id> [<id> ...]]",
                "    Return information about client connections.",
                "KILL <ip:port>",
                "    Kill connection made from <ip:port>.",
                "KILL <option> <value> [<option> <value> [...]]",
                "    Kill connections. Options: ID, ADDR, LADDR, SKIPME, TYPE, USER.",
            ];
            crate::cmd::help(out, lines);
        }
        _ => return Err(crate::cmd::unknown_subcommand(&args[1], "CLIENT")),
    }
    Ok(())
}

/// `CLIENT LIST [TYPE t] [ID id...]`: the ids to show, or `None` for all.
fn list_filter(args: Args<'_>) -> Result<Option<Vec<u64>>, CmdError> {
    let mut ids: Option<Vec<u64>> = None;
    let mut i = 0;
    while i < args.len() {
        if eq_ic(&args[i], "type") && i + 1 < args.len() {
            let t = &args[i + 1];
            if !["normal", "master", "replica", "pubsub"]
                .iter()
                .any(|w| eq_ic(t, w))
            {
                return Err(CmdError::err(format!(
                    "Unknown client type '{}'",
                    String::from_utf8_lossy(t)
                )));
            }
            if !eq_ic(t, "normal") {
                ids = Some(Vec::new());
            }
            i += 2;
        } else if eq_ic(&args[i], "id") && i + 1 < args.len() {
            let mut list = ids.take().unwrap_or_default();
            for a in args.iter().skip(i + 1) {
                match parse_i64(a) {
                    Some(n) if n > 0 => list.push(n as u64),
                    _ => return Err(CmdError::err("Invalid client ID")),
                }
            }
            ids = Some(list);
            i = args.len();
        } else {
            return Err(CmdError::Syntax);
        }
    }
    Ok(ids)
}

/// One `CLIENT LIST` line, with Redis's fields (`user` is the name of
/// the client's user).
pub(crate) fn client_line(id: u64, m: &ClientMeta, user: &str) -> String {
    let now = crate::engine::unix_ms();
    let age = now.saturating_sub(m.created_ms) / 1000;
    let idle = now.saturating_sub(m.last_ms) / 1000;
    let mut line = String::new();
    let _ = writeln!(
        line,
        "id={id} addr={} laddr={} fd=-1 name={} age={age} idle={idle} flags=N db={} sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user={user} redir=-1 resp={} lib-name={} lib-ver={}",
        m.addr,
        m.laddr,
        String::from_utf8_lossy(&m.name),
        m.db,
        m.last_cmd,
        m.resp,
        m.lib_name,
        m.lib_ver,
    );
    line
}

/// `CLIENT KILL addr` (old form) or `CLIENT KILL <filter> <value> ...`.
fn kill(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    if args.len() == 3 {
        let addr = &args[2];
        let found: Vec<u64> = eng
            .clients
            .iter()
            .filter(|(_, m)| m.addr.as_bytes() == addr)
            .map(|(&id, _)| id)
            .collect();
        if found.is_empty() {
            return Err(CmdError::err("No such client"));
        }
        s.action = Action::Kill(found);
        out.ok();
        return Ok(());
    }
    if args.len() % 2 != 0 {
        return Err(CmdError::Syntax);
    }
    let mut skipme = true;
    let mut filters: Vec<(&str, Vec<u8>)> = Vec::new();
    for pair in (2..args.len()).step_by(2) {
        let (k, v) = (&args[pair], &args[pair + 1]);
        let key = k.to_ascii_lowercase();
        match key.as_slice() {
            b"id" => {
                if parse_i64(v).is_none_or(|n| n <= 0) {
                    return Err(CmdError::err("client-id should be greater than 0"));
                }
                filters.push(("id", v.to_vec()));
            }
            b"addr" => filters.push(("addr", v.to_vec())),
            b"laddr" => filters.push(("laddr", v.to_vec())),
            b"user" => filters.push(("user", v.to_vec())),
            b"type" => filters.push(("type", v.to_ascii_lowercase())),
            b"skipme" => {
                skipme = if eq_ic(v, "yes") {
                    true
                } else if eq_ic(v, "no") {
                    false
                } else {
                    return Err(CmdError::Syntax);
                }
            }
            _ => return Err(CmdError::Syntax),
        }
    }
    let found: Vec<u64> = eng
        .clients
        .iter()
        .filter(|(&id, m)| {
            !(skipme && id == s.id)
                && filters.iter().all(|(k, v)| match *k {
                    "id" => id.to_string().as_bytes() == v.as_slice(),
                    "addr" => m.addr.as_bytes() == v.as_slice(),
                    "laddr" => m.laddr.as_bytes() == v.as_slice(),
                    "user" => eng.acl.name_of(m.user).as_bytes() == v.as_slice(),
                    "type" => v.as_slice() == b"normal",
                    _ => false,
                })
        })
        .map(|(&id, _)| id)
        .collect();
    out.int(found.len() as i64);
    if !found.is_empty() {
        s.action = Action::Kill(found);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::testutil::Tester;

    #[test]
    fn ping_echo_select() {
        let mut t = Tester::new();
        assert_eq!(t.q("PING"), "+PONG\r\n");
        assert_eq!(t.q("ping hi"), "$2\r\nhi\r\n");
        assert_eq!(
            t.q("PING a b"),
            "-ERR wrong number of arguments for 'ping' command\r\n"
        );
        assert_eq!(t.q("ECHO x"), "$1\r\nx\r\n");
        assert_eq!(t.q("SELECT 15"), "+OK\r\n");
        assert_eq!(t.s.db, 15);
        assert_eq!(t.q("SELECT 16"), "-ERR DB index is out of range\r\n");
        assert_eq!(
            t.q("SELECT x"),
            "-ERR value is not an integer or out of range\r\n"
        );
    }

    #[test]
    fn unknown_commands_quote_their_args() {
        let mut t = Tester::new();
        assert_eq!(
            t.q("FOO a b"),
            "-ERR unknown command 'FOO', with args beginning with: 'a' 'b' \r\n"
        );
    }

    #[test]
    fn hello_switches_protocol() {
        let mut t = Tester::new();
        let r = t.q("HELLO 3");
        assert!(
            r.starts_with("%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n"),
            "{r}"
        );
        assert_eq!(t.q("HELLO 4"), "-NOPROTO unsupported protocol version\r\n");
        let r = t.q("HELLO 2 SETNAME app");
        assert!(r.starts_with("*14\r\n"), "{r}");
        assert_eq!(t.q("CLIENT GETNAME"), "$3\r\napp\r\n");
        assert_eq!(
            t.q("HELLO 3 BOGUS"),
            "-ERR Syntax error in HELLO option 'BOGUS'\r\n"
        );
    }

    #[test]
    fn auth_with_and_without_password() {
        let mut t = Tester::new();
        assert!(t
            .q("AUTH x")
            .starts_with("-ERR AUTH <password> called without"));
        t.eng.config.requirepass = "secret".into();
        t.s.authenticated = false;
        assert_eq!(t.q("GET a"), "-NOAUTH Authentication required.\r\n");
        assert_eq!(
            t.q("AUTH nope"),
            "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
        );
        assert_eq!(t.q("AUTH secret"), "+OK\r\n");
        assert_eq!(t.q("GET a"), "$-1\r\n");
        t.s.authenticated = false;
        assert_eq!(t.q("AUTH default secret"), "+OK\r\n");
    }

    #[test]
    fn client_subcommands() {
        let mut t = Tester::new();
        assert_eq!(t.q("CLIENT ID"), format!(":{}\r\n", t.s.id));
        assert_eq!(t.q("CLIENT GETNAME"), "$-1\r\n");
        assert!(t
            .q("CLIENT SETNAME a\nb")
            .starts_with("-ERR Client names cannot"));
        assert_eq!(t.q("CLIENT SETNAME worker"), "+OK\r\n");
        assert_eq!(t.q("CLIENT SETINFO lib-name redis-py"), "+OK\r\n");
        let list = t.q("CLIENT LIST");
        assert!(list.contains("name=worker"), "{list}");
        assert!(list.contains("lib-name=redis-py"), "{list}");
        assert!(list.contains("addr=127.0.0.1:5000"), "{list}");
        assert_eq!(t.q("CLIENT KILL 1.2.3.4:5"), "-ERR No such client\r\n");
        assert_eq!(t.q("CLIENT KILL ID 999"), ":0\r\n");
        assert_eq!(
            t.q("CLIENT SETNAME"),
            "-ERR wrong number of arguments for 'client|setname' command\r\n"
        );
        assert!(t
            .q("CLIENT BOGUS")
            .starts_with("-ERR unknown subcommand 'BOGUS'"));
    }

    #[test]
    fn client_kill_reports_the_victims() {
        let mut t = Tester::new();
        let other = t.eng.connect(crate::engine::ConnInfo {
            addr: "127.0.0.1:6000".into(),
            laddr: "127.0.0.1:7379".into(),
        });
        let argv = resp::ArgvBuf::from_iter(["CLIENT", "KILL", "ID", &other.id.to_string()]);
        let mut out = resp::Out::default();
        let action = t.eng.execute(&mut t.s, argv.args(), &mut out);
        assert_eq!(out.as_bytes(), b":1\r\n");
        assert_eq!(action, crate::engine::Action::Kill(vec![other.id]));
    }
}
