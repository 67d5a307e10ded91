//! ACL categories and the command universe a user's permissions index.
//!
//! Categories come from the table rows (flags and family) plus a short
//! list of names Redis marks `@dangerous`, so a new row is categorised
//! without touching this file. Container commands (`CLIENT`, `CONFIG`,
//! `ACL`, ...) get one entry per subcommand, because Redis grants them
//! separately (`ACL WHOAMI` is not `@admin`, `ACL SETUSER` is).

use std::collections::HashMap;
use std::sync::OnceLock;

use resp::Args;

use crate::table::{self, Command, Table};

/// Redis 7's ACL categories, in `ACL CAT` order. A category's bit is its
/// index.
pub(crate) const CATEGORIES: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// The bit of a category name (lowercase, without `@`).
pub(crate) fn cat_bit(name: &str) -> Option<u32> {
    CATEGORIES
        .iter()
        .position(|c| *c == name)
        .map(|i| 1u32 << i)
}

fn bit(name: &str) -> u32 {
    cat_bit(name).unwrap_or(0)
}

/// Commands Redis marks `@dangerous` beyond the `ADMIN` rows.
const DANGEROUS: &[&str] = &["keys", "flushdb", "flushall", "info", "sort", "swapdb"];

/// Subcommands of container commands and their categories (Redis 7).
const SUBCOMMANDS: &[(&str, &[(&str, &str)])] = &[
    (
        "acl",
        &[
            ("cat", "slow"),
            ("deluser", "admin slow dangerous"),
            ("genpass", "slow"),
            ("getuser", "admin slow dangerous"),
            ("help", "slow"),
            ("list", "admin slow dangerous"),
            ("log", "admin slow dangerous"),
            ("setuser", "admin slow dangerous"),
            ("users", "admin slow dangerous"),
            ("whoami", "slow"),
        ],
    ),
    (
        "client",
        &[
            ("getname", "slow connection"),
            ("help", "slow connection"),
            ("id", "slow connection"),
            ("info", "slow connection"),
            ("kill", "admin slow dangerous connection"),
            ("list", "admin slow dangerous connection"),
            ("no-evict", "admin slow dangerous connection"),
            ("no-touch", "slow connection"),
            ("setinfo", "slow connection"),
            ("setname", "slow connection"),
        ],
    ),
    (
        "config",
        &[
            ("get", "admin slow dangerous"),
            ("help", "slow"),
            ("resetstat", "admin slow dangerous"),
            ("rewrite", "admin slow dangerous"),
            ("set", "admin slow dangerous"),
        ],
    ),
    (
        "command",
        &[
            ("count", "slow connection"),
            ("docs", "slow connection"),
            ("getkeys", "slow connection"),
            ("help", "slow connection"),
            ("info", "slow connection"),
            ("list", "slow connection"),
        ],
    ),
    (
        "object",
        &[
            ("encoding", "keyspace read slow"),
            ("freq", "keyspace read slow"),
            ("help", "keyspace slow"),
            ("idletime", "keyspace read slow"),
            ("refcount", "keyspace read slow"),
        ],
    ),
    (
        "memory",
        &[
            ("doctor", "slow"),
            ("help", "slow"),
            ("malloc-stats", "slow"),
            ("purge", "slow"),
            ("stats", "slow"),
            ("usage", "read slow"),
        ],
    ),
    (
        "pubsub",
        &[
            ("channels", "pubsub slow"),
            ("help", "slow"),
            ("numpat", "pubsub slow"),
            ("numsub", "pubsub slow"),
            ("shardchannels", "pubsub slow"),
            ("shardnumsub", "pubsub slow"),
        ],
    ),
];

/// A top-level row's categories, derived from its flags and family.
fn row_cats(c: &Command) -> u32 {
    let mut m = 0;
    for (flag, cat) in [
        (table::WRITE, "write"),
        (table::READONLY, "read"),
        (table::ADMIN, "admin"),
        (table::ADMIN, "dangerous"),
        (table::PUBSUB, "pubsub"),
        (table::BLOCKING, "blocking"),
    ] {
        if c.has(flag) {
            m |= bit(cat);
        }
    }
    m |= bit(if c.has(table::FAST) { "fast" } else { "slow" });
    m |= bit(match c.group {
        "string" => "string",
        "hash" => "hash",
        "list" => "list",
        "set" => "set",
        "sorted-set" | "sorted_set" => "sortedset",
        "generic" => "keyspace",
        "connection" => "connection",
        "transactions" => "transaction",
        "pubsub" => "pubsub",
        _ => "",
    });
    if DANGEROUS.contains(&c.name) {
        m |= bit("dangerous");
    }
    if matches!(c.name, "flushdb" | "flushall" | "dbsize" | "swapdb") {
        m |= bit("keyspace");
    }
    m
}

/// One grantable command: a row, or one subcommand of a container row.
pub(crate) struct AclCmd {
    /// `get`, or `config|get` for a subcommand.
    pub name: String,
    /// Category bits.
    pub cats: u32,
}

/// Every grantable command, numbered; a user's permissions are a bitmap
/// over these numbers.
pub(crate) struct Universe {
    pub cmds: Vec<AclCmd>,
    by_name: HashMap<String, usize>,
    /// Row address to number: rows are `'static`, so the address is a
    /// stable identity (one hash lookup, paid only by restricted users).
    by_row: HashMap<usize, usize, foldhash::fast::RandomState>,
    /// Container number to its subcommands' numbers.
    subs: HashMap<usize, Vec<usize>, foldhash::fast::RandomState>,
}

impl Universe {
    /// The universe, built once from the table.
    pub(crate) fn get() -> &'static Universe {
        static U: OnceLock<Universe> = OnceLock::new();
        U.get_or_init(|| {
            let mut rows: Vec<&'static Command> = Table::get().iter().collect();
            rows.sort_by_key(|c| c.name);
            let mut u = Universe {
                cmds: Vec::new(),
                by_name: HashMap::new(),
                by_row: HashMap::default(),
                subs: HashMap::default(),
            };
            for c in rows {
                let id = u.push(c.name.to_string(), 0);
                u.by_row.insert(c as *const Command as usize, id);
                match SUBCOMMANDS.iter().find(|(n, _)| *n == c.name) {
                    Some((_, subs)) => {
                        let ids = subs
                            .iter()
                            .map(|(sub, cats)| {
                                let cats = cats.split(' ').map(bit).fold(0, |a, b| a | b);
                                u.push(format!("{}|{sub}", c.name), cats)
                            })
                            .collect();
                        u.subs.insert(id, ids);
                    }
                    None => u.cmds[id].cats = row_cats(c),
                }
            }
            u
        })
    }

    fn push(&mut self, name: String, cats: u32) -> usize {
        let id = self.cmds.len();
        self.by_name.insert(name.clone(), id);
        self.cmds.push(AclCmd { name, cats });
        id
    }

    /// Number of a command (`get`) or subcommand (`config|get`) name.
    pub(crate) fn id(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// The subcommands of a container command.
    pub(crate) fn subs_of(&self, id: usize) -> &[usize] {
        self.subs.get(&id).map_or(&[], Vec::as_slice)
    }

    /// The number a request is checked against: its subcommand's when the
    /// row is a container and the subcommand is known, else the row's.
    pub(crate) fn id_of_request(&self, cmd: &'static Command, args: Args<'_>) -> Option<usize> {
        let id = *self.by_row.get(&(cmd as *const Command as usize))?;
        if let (Some(subs), Some(sub)) = (self.subs.get(&id), args.get(1)) {
            let sub = String::from_utf8_lossy(sub).to_ascii_lowercase();
            let full = format!("{}|{sub}", cmd.name);
            if let Some(&s) = self.by_name.get(&full) {
                if subs.contains(&s) {
                    return Some(s);
                }
            }
        }
        Some(id)
    }

    /// The numbers in a category.
    pub(crate) fn in_category(&self, cat: u32) -> impl Iterator<Item = usize> + '_ {
        self.cmds
            .iter()
            .enumerate()
            .filter(move |(_, c)| c.cats & cat != 0)
            .map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cats_of(name: &str) -> Vec<&'static str> {
        let u = Universe::get();
        let c = &u.cmds[u.id(name).unwrap()];
        CATEGORIES
            .iter()
            .enumerate()
            .filter(|(i, _)| c.cats & (1 << i) != 0)
            .map(|(_, n)| *n)
            .collect()
    }

    #[test]
    fn categories_match_redis_for_common_commands() {
        // As `COMMAND INFO` of redis-server 7.0 lists them.
        assert_eq!(cats_of("get"), ["read", "string", "fast"]);
        assert_eq!(cats_of("set"), ["write", "string", "slow"]);
        assert_eq!(cats_of("hset"), ["write", "hash", "fast"]);
        assert_eq!(cats_of("del"), ["keyspace", "write", "slow"]);
        assert_eq!(cats_of("keys"), ["keyspace", "read", "slow", "dangerous"]);
        assert_eq!(
            cats_of("flushall"),
            ["keyspace", "write", "slow", "dangerous"]
        );
        assert_eq!(cats_of("blpop"), ["write", "list", "slow", "blocking"]);
        assert_eq!(cats_of("publish"), ["pubsub", "fast"]);
        assert_eq!(cats_of("config|set"), ["admin", "slow", "dangerous"]);
        assert_eq!(cats_of("acl|whoami"), ["slow"]);
        assert_eq!(cats_of("exec"), ["slow", "transaction"]);
        assert_eq!(cats_of("ping"), ["fast", "connection"]);
        assert!(cats_of("debug").contains(&"admin"));
        assert!(cats_of("shutdown").contains(&"dangerous"));
    }
}
