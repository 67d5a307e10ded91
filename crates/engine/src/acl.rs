//! Users and permissions: the `default` user and named ACL users, their
//! passwords (SHA-256 only, never the clear text), command, key and
//! channel rules, the permission check the dispatcher runs, and the log
//! of denials (`ACL LOG`).
//!
//! Cost model: a session of a user with every permission (the `default`
//! user unless restricted) pays one indexed load and a flag test per
//! command ([`Acl::unrestricted`]); only restricted users pay for the
//! bitmap, key and channel checks.
//!
//! Rules follow Redis 7 `ACL SETUSER`; what is missing (selectors,
//! `%R~`/`%W~` key permissions, `+cmd|firstarg` for non-container
//! commands) is refused with Redis's error rather than half-applied.

mod cats;
mod sha256;

use std::collections::{BTreeMap, VecDeque};

use resp::Args;

use crate::engine::{Engine, Session};
use crate::error::CmdError;
use crate::table::{self, Command};

pub(crate) use cats::{cat_bit, Universe, CATEGORIES};
pub(crate) use sha256::{hex, sha256};

/// A user's slot number. Slots are never reused, so a session that holds
/// the id of a deleted user finds an empty slot, never another user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserId(u32);

impl UserId {
    /// The `default` user: slot 0, never deleted.
    pub(crate) const DEFAULT: UserId = UserId(0);
    /// The engine's own sessions (the primary link applying the change
    /// log, re-runs of parked requests, the node's own `INFO` scrape):
    /// never checked.
    pub(crate) const INTERNAL: UserId = UserId(u32::MAX);

    /// True for [`UserId::INTERNAL`].
    pub(crate) fn is_internal(self) -> bool {
        self == Self::INTERNAL
    }
}

impl Default for UserId {
    /// Sessions built by the node itself are internal; client sessions
    /// come from [`Engine::connect`], which sets the `default` user.
    fn default() -> Self {
        Self::INTERNAL
    }
}

/// One user.
#[derive(Clone, Debug)]
pub(crate) struct User {
    pub name: String,
    /// `on`: may authenticate. Turning a user off does not log out its
    /// sessions (Redis's rule).
    pub enabled: bool,
    /// `nopass`: any password authenticates.
    pub nopass: bool,
    /// SHA-256 of each valid password, in the order added.
    pub passwords: Vec<[u8; 32]>,
    /// Allowed command numbers ([`Universe`]), one bit each.
    cmds: Vec<u64>,
    /// The command rules as applied, minus those a later rule overrides,
    /// for `ACL LIST`. Invariant: replaying `-@all` then these rules gives
    /// `cmds`.
    cmd_rules: Vec<String>,
    /// Every bit of `cmds` set.
    all_commands: bool,
    /// `~` patterns; empty when `all_keys`.
    pub keys: Vec<Vec<u8>>,
    pub all_keys: bool,
    /// `&` patterns; empty when `all_channels`.
    pub channels: Vec<Vec<u8>>,
    pub all_channels: bool,
    /// `all_commands && all_keys && all_channels`: the dispatcher's fast
    /// path.
    unrestricted: bool,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Denied {
    /// The command (full name, `config|set`) is not allowed.
    Command(String),
    /// A key matches none of the user's patterns.
    Key(Vec<u8>),
    /// A channel matches none of the user's patterns.
    Channel(Vec<u8>),
}

/// One `ACL LOG` entry; repeats within 60 s fold into `count`.
#[derive(Debug, Clone)]
pub(crate) struct LogEntry {
    pub count: u64,
    /// `auth`, `command`, `key` or `channel`.
    pub reason: &'static str,
    /// `toplevel` or `multi`.
    pub context: &'static str,
    pub object: String,
    pub username: String,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub client_info: String,
    pub entry_id: u64,
}

/// Entries `ACL LOG` keeps (Redis's `acllog-max-len` default).
const LOG_MAX: usize = 128;

/// The users, the denial log and the denial counters.
#[derive(Debug)]
pub(crate) struct Acl {
    /// Users by slot; `None` once deleted.
    slots: Vec<Option<User>>,
    by_name: BTreeMap<String, UserId>,
    /// Newest first.
    pub log: VecDeque<LogEntry>,
    next_entry_id: u64,
    /// `INFO stats` counters.
    pub denied_auth: u64,
    pub denied_cmd: u64,
    pub denied_key: u64,
    pub denied_channel: u64,
    /// The (`requirepass`, `requirepass-previous`) the default user's
    /// passwords were last derived from.
    synced: Option<(String, String)>,
}

impl Default for Acl {
    fn default() -> Self {
        let mut default = User::new("default");
        for rule in ["on", "nopass", "~*", "&*", "+@all"] {
            let _ = default.apply(rule.as_bytes());
        }
        let mut by_name = BTreeMap::new();
        by_name.insert("default".to_string(), UserId::DEFAULT);
        Acl {
            slots: vec![Some(default)],
            by_name,
            log: VecDeque::new(),
            next_entry_id: 0,
            denied_auth: 0,
            denied_cmd: 0,
            denied_key: 0,
            denied_channel: 0,
            synced: None,
        }
    }
}

/// Redis's error for a bad `ACL SETUSER` rule.
fn rule_error(rule: &[u8], why: &str) -> CmdError {
    CmdError::err(format!(
        "Error in ACL SETUSER modifier '{}': {why}",
        String::from_utf8_lossy(rule)
    ))
}

const UNKNOWN_NAME: &str = "Unknown command or category name in ACL";
const NO_SUCH_PASSWORD: &str = "The password you are trying to remove from the user does not exist";

/// Checks a user name as `ACL SETUSER` does: UTF-8, not empty, no space
/// or NUL.
pub(crate) fn check_name(name: &[u8]) -> Result<&str, CmdError> {
    match std::str::from_utf8(name) {
        Ok(n) if !n.contains([' ', '\0']) && !n.is_empty() => Ok(n),
        _ => Err(CmdError::err(
            "Usernames can't contain spaces or null characters",
        )),
    }
}

/// A user built from nothing (`reset`) by `rules`, as an `ACL SETUSER
/// name reset rules...` would leave it; the first bad rule is the error,
/// worded as `ACL SETUSER` words it.
pub(crate) fn build_user<'r>(
    name: &[u8],
    rules: impl IntoIterator<Item = &'r [u8]>,
) -> Result<User, CmdError> {
    let mut user = User::new(check_name(name)?);
    for rule in rules {
        if rule.is_empty() {
            return Err(CmdError::err(
                "Error in ACL SETUSER modifier '': Syntax error",
            ));
        }
        user.apply(rule)?;
    }
    Ok(user)
}

/// Checks a user definition (`user <name> <rules...>` in a config file,
/// a `[users]` entry of a region file) without applying it: `Err` is the
/// reason as `ACL SETUSER` words it.
pub fn check_user(name: &str, rules: &[String]) -> Result<(), String> {
    build_user(name.as_bytes(), rules.iter().map(|r| r.as_bytes()))
        .map(drop)
        .map_err(|e| e.to_string())
}

impl User {
    /// A user as `ACL SETUSER name` with no rules creates it: off, no
    /// password, no keys, no channels, no commands.
    pub(crate) fn new(name: &str) -> User {
        User {
            name: name.to_string(),
            enabled: false,
            nopass: false,
            passwords: Vec::new(),
            cmds: vec![0; Universe::get().cmds.len().div_ceil(64)],
            cmd_rules: Vec::new(),
            all_commands: false,
            keys: Vec::new(),
            all_keys: false,
            channels: Vec::new(),
            all_channels: false,
            unrestricted: false,
        }
    }

    fn set_bit(&mut self, id: usize, on: bool) {
        if on {
            self.cmds[id / 64] |= 1 << (id % 64);
        } else {
            self.cmds[id / 64] &= !(1 << (id % 64));
        }
    }

    /// True when command number `id` is allowed.
    pub(crate) fn allows(&self, id: usize) -> bool {
        self.all_commands
            || self
                .cmds
                .get(id / 64)
                .is_some_and(|w| w & (1 << (id % 64)) != 0)
    }

    /// Applies one `ACL SETUSER` rule. On error the user may be half
    /// changed: callers apply rules to a copy.
    pub(crate) fn apply(&mut self, rule: &[u8]) -> Result<(), CmdError> {
        let lower = rule.to_ascii_lowercase();
        match lower.as_slice() {
            b"on" => self.enabled = true,
            b"off" => self.enabled = false,
            b"nopass" => {
                self.nopass = true;
                self.passwords.clear();
            }
            b"resetpass" => {
                self.nopass = false;
                self.passwords.clear();
            }
            b"allkeys" => {
                self.all_keys = true;
                self.keys.clear();
            }
            b"resetkeys" => {
                self.all_keys = false;
                self.keys.clear();
            }
            b"allchannels" => {
                self.all_channels = true;
                self.channels.clear();
            }
            b"resetchannels" => {
                self.all_channels = false;
                self.channels.clear();
            }
            b"allcommands" => self.command_rule(b"+@all", rule)?,
            b"nocommands" => self.command_rule(b"-@all", rule)?,
            b"sanitize-payload" | b"skip-sanitize-payload" => {}
            b"reset" => *self = User::new(&self.name),
            _ => match rule[0] {
                b'>' => self.add_password(sha256(&rule[1..])),
                b'<' => self.remove_password(&sha256(&rule[1..]), rule)?,
                b'#' => {
                    let h = sha256::parse_hex(&rule[1..]).ok_or_else(|| {
                        rule_error(rule, "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters")
                    })?;
                    self.add_password(h);
                }
                b'!' => {
                    let h = sha256::parse_hex(&rule[1..]).ok_or_else(|| {
                        rule_error(rule, "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters")
                    })?;
                    self.remove_password(&h, rule)?;
                }
                b'~' => {
                    if self.all_keys {
                        return Err(rule_error(rule, "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns"));
                    }
                    let pat = &rule[1..];
                    if pat == b"*" {
                        self.all_keys = true;
                        self.keys.clear();
                    } else if !self.keys.iter().any(|k| k == pat) {
                        self.keys.push(pat.to_vec());
                    }
                }
                b'&' => {
                    if self.all_channels {
                        return Err(rule_error(rule, "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels"));
                    }
                    let pat = &rule[1..];
                    if pat == b"*" {
                        self.all_channels = true;
                        self.channels.clear();
                    } else if !self.channels.iter().any(|c| c == pat) {
                        self.channels.push(pat.to_vec());
                    }
                }
                b'+' | b'-' => self.command_rule(&lower, rule)?,
                _ => return Err(rule_error(rule, "Syntax error")),
            },
        }
        self.refresh();
        Ok(())
    }

    fn add_password(&mut self, h: [u8; 32]) {
        self.nopass = false;
        if !self.passwords.contains(&h) {
            self.passwords.push(h);
        }
    }

    fn remove_password(&mut self, h: &[u8; 32], rule: &[u8]) -> Result<(), CmdError> {
        let before = self.passwords.len();
        self.passwords.retain(|p| p != h);
        if self.passwords.len() == before {
            return Err(rule_error(rule, NO_SUCH_PASSWORD));
        }
        self.nopass = false;
        Ok(())
    }

    /// `+@cat`, `-@cat`, `+cmd`, `-cmd`, `+cmd|sub`, `-cmd|sub`
    /// (`lower` is the lowercased rule).
    fn command_rule(&mut self, lower: &[u8], rule: &[u8]) -> Result<(), CmdError> {
        let on = lower[0] == b'+';
        let name = std::str::from_utf8(&lower[1..]).map_err(|_| rule_error(rule, UNKNOWN_NAME))?;
        let u = Universe::get();
        if name == "@all" {
            self.cmds
                .iter_mut()
                .for_each(|w| *w = if on { !0 } else { 0 });
            self.cmd_rules.clear();
            if on {
                self.cmd_rules.push("+@all".into());
            }
            return Ok(());
        }
        let ids: Vec<usize> = if let Some(cat) = name.strip_prefix('@') {
            let bit = cat_bit(cat).ok_or_else(|| rule_error(rule, UNKNOWN_NAME))?;
            u.in_category(bit).collect()
        } else {
            let id = u.id(name).ok_or_else(|| rule_error(rule, UNKNOWN_NAME))?;
            std::iter::once(id)
                .chain(u.subs_of(id).iter().copied())
                .collect()
        };
        for id in ids {
            self.set_bit(id, on);
        }
        // A later rule on the same name overrides an earlier one whole.
        let text = String::from_utf8_lossy(lower).into_owned();
        self.cmd_rules.retain(|r| r[1..] != text[1..]);
        self.cmd_rules.push(text);
        Ok(())
    }

    /// Recomputes the cached summary flags.
    fn refresh(&mut self) {
        let n = Universe::get().cmds.len();
        self.all_commands = (0..n).all(|i| self.cmds[i / 64] & (1 << (i % 64)) != 0);
        self.unrestricted = self.all_commands && self.all_keys && self.all_channels;
    }

    /// True when `key` matches one of the key patterns.
    pub(crate) fn key_ok(&self, key: &[u8]) -> bool {
        self.all_keys
            || self
                .keys
                .iter()
                .any(|p| crate::glob::matches(p, key, false))
    }

    /// True when `channel` matches one of the channel patterns; a pattern
    /// subscription (`is_pattern`) must equal one of them literally, as in
    /// Redis.
    pub(crate) fn channel_ok(&self, channel: &[u8], is_pattern: bool) -> bool {
        self.all_channels
            || self.channels.iter().any(|p| {
                if is_pattern {
                    p == channel
                } else {
                    crate::glob::matches(p, channel, false)
                }
            })
    }

    /// The command rules as `ACL LIST` shows them.
    pub(crate) fn command_rules(&self) -> String {
        match self.cmd_rules.first().map(String::as_str) {
            None => "-@all".into(),
            Some("+@all") => self.cmd_rules.join(" "),
            Some(_) => format!("-@all {}", self.cmd_rules.join(" ")),
        }
    }

    /// The rules that rebuild this user from `reset`, in `ACL LIST`
    /// order: flags, password hashes, keys, channels, commands.
    pub(crate) fn describe(&self) -> Vec<String> {
        let mut d = vec![if self.enabled { "on" } else { "off" }.to_string()];
        if self.nopass {
            d.push("nopass".into());
        }
        d.extend(self.passwords.iter().map(|h| format!("#{}", hex(h))));
        if self.all_keys {
            d.push("~*".into());
        } else {
            d.extend(
                self.keys
                    .iter()
                    .map(|k| format!("~{}", String::from_utf8_lossy(k))),
            );
        }
        if self.all_channels {
            d.push("&*".into());
        } else {
            d.push("resetchannels".into());
            d.extend(
                self.channels
                    .iter()
                    .map(|c| format!("&{}", String::from_utf8_lossy(c))),
            );
        }
        d.extend(self.command_rules().split(' ').map(str::to_string));
        d
    }

    /// True when `pass` is one of the passwords (or the user has
    /// `nopass`). Every stored hash is compared, in constant time each.
    fn password_ok(&self, pass: &[u8]) -> bool {
        if self.nopass {
            return true;
        }
        let h = sha256(pass);
        let mut ok = false;
        for p in &self.passwords {
            ok |= sha256::ct_eq(p, &h);
        }
        ok
    }
}

impl Acl {
    /// The user in a slot, if it still exists.
    pub(crate) fn user(&self, id: UserId) -> Option<&User> {
        self.slots.get(id.0 as usize)?.as_ref()
    }

    /// A user's id by name.
    pub(crate) fn id(&self, name: &[u8]) -> Option<UserId> {
        std::str::from_utf8(name)
            .ok()
            .and_then(|n| self.by_name.get(n).copied())
    }

    /// True when the user may run anything on any key and channel: the
    /// dispatcher's fast path.
    #[inline]
    pub(crate) fn unrestricted(&self, id: UserId) -> bool {
        matches!(self.slots.get(id.0 as usize), Some(Some(u)) if u.unrestricted)
    }

    /// Every user, by name.
    pub(crate) fn users(&self) -> impl Iterator<Item = &User> + '_ {
        self.by_name.values().filter_map(|&id| self.user(id))
    }

    /// The name of a session's user (`default` for internal sessions).
    pub(crate) fn name_of(&self, id: UserId) -> &str {
        self.user(id).map_or("default", |u| u.name.as_str())
    }

    /// Creates or replaces a user. A new name gets a new slot.
    pub(crate) fn put(&mut self, user: User) -> UserId {
        if let Some(&id) = self.by_name.get(&user.name) {
            self.slots[id.0 as usize] = Some(user);
            return id;
        }
        let id = UserId(self.slots.len() as u32);
        self.by_name.insert(user.name.clone(), id);
        self.slots.push(Some(user));
        id
    }

    /// Deletes a user (never `default`); returns its old id.
    pub(crate) fn remove(&mut self, name: &[u8]) -> Option<UserId> {
        let id = self.id(name)?;
        if id == UserId::DEFAULT {
            return None;
        }
        self.by_name.retain(|_, v| *v != id);
        self.slots[id.0 as usize] = None;
        Some(id)
    }

    /// The named users (every user but `default`, whose passwords belong
    /// to the region), each as the rules that rebuild it from `reset`
    /// (passwords as `#<sha256>`), by name.
    pub(crate) fn named_users(&self) -> Vec<(String, Vec<String>)> {
        self.users()
            .filter(|u| u.name != "default")
            .map(|u| (u.name.clone(), u.describe()))
            .collect()
    }

    /// Makes the named users exactly `users` (a snapshot's): a user of a
    /// name already present keeps its slot, so its sessions stay logged
    /// in under the new rules; a user missing from `users` is deleted
    /// (its sessions can run nothing, as after `ACL DELUSER` on a
    /// secondary). `default` is left alone.
    pub(crate) fn replace_named(&mut self, users: Vec<User>) {
        let gone: Vec<String> = self
            .by_name
            .keys()
            .filter(|n| *n != "default" && !users.iter().any(|u| &u.name == *n))
            .cloned()
            .collect();
        for name in gone {
            self.remove(name.as_bytes());
        }
        for user in users {
            self.put(user);
        }
    }

    /// Derives the `default` user's passwords from `requirepass` and
    /// `requirepass-previous` when either changed since the last call
    /// (Redis's `requirepass` is `resetpass >pass` on `default`; an empty
    /// one is `nopass`).
    pub(crate) fn sync_default(&mut self, requirepass: &str, previous: &str) {
        if self
            .synced
            .as_ref()
            .is_some_and(|(a, b)| a == requirepass && b == previous)
        {
            return;
        }
        self.synced = Some((requirepass.to_string(), previous.to_string()));
        let Some(Some(u)) = self.slots.first_mut() else {
            return;
        };
        u.passwords.clear();
        u.nopass = requirepass.is_empty();
        if !u.nopass {
            u.add_password(sha256(requirepass.as_bytes()));
            if !previous.is_empty() {
                u.add_password(sha256(previous.as_bytes()));
            }
        }
    }

    /// Records a denial in the log, folding a repeat of the last minute.
    pub(crate) fn record(
        &mut self,
        reason: &'static str,
        context: &'static str,
        object: String,
        username: String,
        client_info: impl FnOnce() -> String,
        now_ms: u64,
    ) {
        match reason {
            "auth" => self.denied_auth += 1,
            "command" => self.denied_cmd += 1,
            "key" => self.denied_key += 1,
            _ => self.denied_channel += 1,
        }
        if let Some(e) = self.log.iter_mut().find(|e| {
            e.reason == reason
                && e.context == context
                && e.object == object
                && e.username == username
                && now_ms.saturating_sub(e.updated_ms) < 60_000
        }) {
            e.count += 1;
            e.updated_ms = now_ms;
            e.client_info = client_info();
            return;
        }
        self.log.push_front(LogEntry {
            count: 1,
            reason,
            context,
            object,
            username,
            created_ms: now_ms,
            updated_ms: now_ms,
            client_info: client_info(),
            entry_id: self.next_entry_id,
        });
        self.next_entry_id += 1;
        self.log.truncate(LOG_MAX);
    }
}

/// The channels a pub/sub request names, and whether they are patterns.
fn channels_of<'a>(cmd: &Command, args: Args<'a>) -> (Vec<&'a [u8]>, bool) {
    match cmd.name {
        "subscribe" | "ssubscribe" => (args.iter().skip(1).collect(), false),
        "psubscribe" => (args.iter().skip(1).collect(), true),
        "publish" | "spublish" => (args.iter().skip(1).take(1).collect(), false),
        _ => (Vec::new(), false),
    }
}

impl Engine {
    /// Defines a user from the node's configuration (a config file's
    /// `user` line, a region file's `[users]`): the user is rebuilt from
    /// `reset` by `rules`. A named user is journaled as `ACL SETUSER`
    /// journals it (so on a primary it replicates); `default` belongs to
    /// the region and is not. `Err` is the reason as `ACL SETUSER` words
    /// it; nothing changes then.
    pub fn define_user(&mut self, name: &str, rules: &[String]) -> Result<(), String> {
        self.sync_default_user();
        let user = build_user(name.as_bytes(), rules.iter().map(|r| r.as_bytes()))
            .map_err(|e| e.to_string())?;
        let state = user.describe();
        self.acl.put(user);
        self.dirty += 1;
        if name != "default" && self.journal_enabled() {
            let mut argv: Vec<&[u8]> = vec![b"ACL", b"SETUSER", name.as_bytes(), b"reset"];
            argv.extend(state.iter().map(|r| r.as_bytes()));
            self.log_op(0, &argv);
            self.commit_unit();
        }
        Ok(())
    }

    /// The permission check of a restricted user's request (the
    /// dispatcher skips it for unrestricted users). Commands allowed
    /// before `AUTH` (`AUTH`, `HELLO`, `QUIT`, `RESET`) are never refused.
    pub(crate) fn acl_check(
        &mut self,
        s: &Session,
        cmd: &'static Command,
        args: Args<'_>,
    ) -> Result<(), CmdError> {
        if cmd.has(table::NO_AUTH) {
            return Ok(());
        }
        let u = Universe::get();
        let id = u.id_of_request(cmd, args);
        let denied = match self.acl.user(s.user) {
            None => Some(Denied::Command(
                id.map_or(cmd.name.to_string(), |i| u.cmds[i].name.clone()),
            )),
            Some(user) => {
                if !id.is_some_and(|i| user.allows(i)) {
                    Some(Denied::Command(
                        id.map_or(cmd.name.to_string(), |i| u.cmds[i].name.clone()),
                    ))
                } else if let Some(k) = (!user.all_keys)
                    .then(|| {
                        cmd.keys_of(args)
                            .into_iter()
                            .find(|&i| !user.key_ok(&args[i]))
                    })
                    .flatten()
                {
                    Some(Denied::Key(args[k].to_vec()))
                } else if cmd.has(table::PUBSUB) && !user.all_channels {
                    let (chans, pattern) = channels_of(cmd, args);
                    chans
                        .into_iter()
                        .find(|c| !user.channel_ok(c, pattern))
                        .map(|c| Denied::Channel(c.to_vec()))
                } else {
                    None
                }
            }
        };
        let Some(denied) = denied else {
            return Ok(());
        };
        let username = self.acl.name_of(s.user).to_string();
        let (reason, object, err) = match denied {
            Denied::Command(name) => {
                let err = format!(
                    "NOPERM User {username} has no permissions to run the '{name}' command"
                );
                ("command", name, err)
            }
            Denied::Key(k) => (
                "key",
                String::from_utf8_lossy(&k).into_owned(),
                "NOPERM No permissions to access a key".to_string(),
            ),
            Denied::Channel(c) => (
                "channel",
                String::from_utf8_lossy(&c).into_owned(),
                "NOPERM No permissions to access a channel".to_string(),
            ),
        };
        self.log_denial(s, reason, object, username);
        Err(CmdError::Other(err))
    }

    /// Adds a denial to `ACL LOG` and the `INFO` counters.
    pub(crate) fn log_denial(
        &mut self,
        s: &Session,
        reason: &'static str,
        object: String,
        username: String,
    ) {
        let context = if s.in_multi { "multi" } else { "toplevel" };
        let Engine { acl, clients, .. } = self;
        let info = || {
            clients
                .get(&s.id)
                .map(|m| crate::cmd::connection::client_line(s.id, m, acl.name_of(m.user)))
                .unwrap_or_default()
        };
        let info = info();
        let now = self.now_ms;
        self.acl
            .record(reason, context, object, username, || info, now);
    }

    /// Makes the `default` user's passwords follow `requirepass` and
    /// `requirepass-previous`.
    pub(crate) fn sync_default_user(&mut self) {
        let Engine { acl, config, .. } = self;
        acl.sync_default(&config.requirepass, &config.requirepass_previous);
    }

    /// `AUTH` / `HELLO ... AUTH`: checks the pair and logs the session in
    /// as that user. A failure is counted, logged in `ACL LOG` and traced
    /// (user name and client address, never the password).
    pub(crate) fn authenticate(
        &mut self,
        s: &mut Session,
        user: &[u8],
        pass: &[u8],
    ) -> Result<(), CmdError> {
        self.sync_default_user();
        let found = self.acl.id(user).filter(|&id| {
            self.acl
                .user(id)
                .is_some_and(|u| u.enabled && u.password_ok(pass))
        });
        match found {
            Some(id) => {
                s.user = id;
                s.authenticated = true;
                if let Some(m) = self.clients.get_mut(&s.id) {
                    m.user = id;
                }
                Ok(())
            }
            None => {
                let name = String::from_utf8_lossy(user).into_owned();
                let addr = self
                    .clients
                    .get(&s.id)
                    .map(|m| m.addr.clone())
                    .unwrap_or_default();
                tracing::warn!(client = s.id, %addr, user = %name, "AUTH failed: invalid username-password pair or user is disabled");
                self.log_denial(s, "auth", "AUTH".into(), name);
                Err(CmdError::Other(
                    "WRONGPASS invalid username-password pair or user is disabled.".into(),
                ))
            }
        }
    }
}
