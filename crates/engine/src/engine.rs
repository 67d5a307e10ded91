//! The engine: databases, connected clients, stats, and dispatch through
//! the command table.

use std::collections::HashMap;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use resp::{Args, Out};

use crate::acl::{Acl, UserId};
use crate::config::Config;
use crate::error::CmdError;
use crate::keyspace::{EntryRef, Keyspace, Prefetch};
use crate::ops::{Op, Unit};
use crate::table::{self, Table};

/// What the connection must do after a command.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Action {
    /// Go on reading.
    #[default]
    Continue,
    /// Send what was written, then close this connection (`QUIT`).
    Close,
    /// Send what was written, then stop the server (`SHUTDOWN`).
    Shutdown,
    /// Close these connections (`CLIENT KILL`); the ids may include this
    /// connection's own.
    Kill(Vec<u64>),
    /// The client is parked by a blocking command until its reply lands in
    /// its outbox ([`Engine::take_outbox`]) or, at this unix-ms deadline
    /// (`None`: never), [`Engine::unblock_timeout`] answers for it. Run no
    /// further request of this client until then.
    Block(Option<u64>),
}

/// What the server knows of a new connection.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// Peer address, `ip:port`.
    pub addr: String,
    /// Local address, `ip:port`.
    pub laddr: String,
}

/// One connection's state as the engine sees it. The connection owns it
/// and passes it to every [`Engine::execute`].
#[derive(Debug, Default)]
pub struct Session {
    /// The client id (`CLIENT ID`), unique for the life of the node.
    pub id: u64,
    /// The selected database.
    pub db: usize,
    /// True once `AUTH` succeeded, or when no password is required.
    pub authenticated: bool,
    /// Set on the session that applies the primary's change log: its
    /// writes pass a read-only secondary.
    pub is_primary_link: bool,
    /// What the connection must do once this command's reply is sent.
    pub(crate) action: Action,
    /// Between `MULTI` and `EXEC`/`DISCARD` (and while `EXEC` runs).
    pub(crate) in_multi: bool,
    /// Requests queued by `MULTI`.
    pub(crate) queued: Vec<resp::ArgvBuf>,
    /// A queued request was refused: `EXEC` must answer `EXECABORT`.
    pub(crate) multi_error: bool,
    /// Watched keys: database, key, and whether it was alive at `WATCH`.
    pub(crate) watched: Vec<(usize, Vec<u8>, bool)>,
    /// Channels plus patterns subscribed to.
    pub(crate) subscriptions: usize,
    /// The user the session runs as: [`UserId::INTERNAL`] (never checked)
    /// unless it came from [`Engine::connect`].
    pub(crate) user: UserId,
}

impl Session {
    /// True while subscribed to a channel or pattern (the idle `timeout`
    /// does not apply then, as in Redis).
    pub fn is_subscribed(&self) -> bool {
        self.subscriptions > 0
    }
}

/// What `CLIENT LIST` shows of a connection.
#[derive(Debug, Clone)]
pub(crate) struct ClientMeta {
    pub addr: String,
    pub laddr: String,
    pub name: Vec<u8>,
    pub db: usize,
    pub created_ms: u64,
    pub last_ms: u64,
    pub last_cmd: &'static str,
    pub resp: u8,
    pub lib_name: String,
    pub lib_ver: String,
    /// The authenticated user (`CLIENT LIST user=`, `ACL DELUSER`).
    pub user: UserId,
}

/// The node's role in a datastore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Takes writes; expires and evicts on its own, logging `DEL`s.
    Primary,
    /// Read-only: applies the primary's ops, never expires on its own,
    /// hides logically expired keys.
    Secondary,
}

/// Counters for `INFO stats`.
#[derive(Debug, Default, Clone)]
pub(crate) struct Stats {
    pub commands: u64,
    pub connections: u64,
    pub expired_keys: u64,
    pub evicted_keys: u64,
    pub hits: u64,
    pub misses: u64,
    pub errors: u64,
    /// Clients closed for passing an output buffer limit (any class).
    pub output_limit_closes: u64,
    /// Clients closed for passing `client-query-buffer-limit`.
    pub query_limit_closes: u64,
}

/// Forks for `INFO stats` (`total_forks`, `latest_fork_usec`): atomics,
/// as the node records a fork while it holds the engine only to read it.
#[derive(Debug, Default)]
pub(crate) struct ForkStats {
    pub total: std::sync::atomic::AtomicU64,
    pub latest_usec: std::sync::atomic::AtomicU64,
}

/// The change ops being collected (see [`crate::ops`]).
#[derive(Default)]
pub(crate) struct Journal {
    /// When false (no replication, no persistence) nothing is collected.
    pub enabled: bool,
    /// Ops of the command executing now.
    pub current: Vec<Op>,
    /// True when the executing command logged its own deterministic form,
    /// so the dispatcher must not log the request as typed.
    pub custom: bool,
    /// Completed units, oldest first, until [`Engine::take_units`].
    pub units: Vec<Unit>,
    /// Emptied argument lists and op lists given back by
    /// [`Engine::recycle_units`], reused so that journaling a write
    /// allocates nothing in the steady state.
    spare_argvs: Vec<changelog::Argv>,
    spare_ops: Vec<Vec<Op>>,
}

/// At most this many spare argument lists (and as many op lists) are kept:
/// enough for the units of a few batches, which is all that circulates.
const SPARES: usize = 256;
/// Buffers over these capacities are freed, not kept: a spare holds at
/// most ~1 KiB, however large a value was once logged.
const SPARE_BYTES: usize = 1024;
const SPARE_ARGS: usize = 64;

/// What the node around the engine reports and does that the engine cannot
/// know itself: replication state for `INFO replication`, and node-level
/// `DEBUG` subcommands. Called with the engine locked: an implementation
/// must not lock the engine.
pub trait NodeHooks: Send + Sync {
    /// Appends the fields of `INFO replication` after its header, each
    /// line ending in `\r\n`.
    fn info_replication(&self, out: &mut String);
    /// The reply of `ROLE`: this node's place in replication.
    fn role(&self) -> ReplRole;
    /// Handles `DEBUG <sub> ...` subcommands the engine does not know
    /// (`args[0]` is the subcommand): `None` when unknown, else the reply
    /// (`Ok` is a simple string, `Err` an error line without the `-`).
    fn debug(&self, args: &[&[u8]]) -> Option<Result<String, String>>;
}

/// A node's place in replication, as `ROLE` gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplRole {
    /// A primary (`master`): its replication offset and its replicas
    /// that are online (streaming the log), as Redis lists them.
    Master {
        /// The offset (Meridian: the change log's last seq).
        offset: u64,
        /// Each replica's address, port and acknowledged offset.
        replicas: Vec<(String, u16, u64)>,
    },
    /// A replica (`slave`) of the primary at `host`:`port`.
    Replica {
        /// The primary's address.
        host: String,
        /// The primary's port.
        port: u16,
        /// `connecting`, `sync` or `connected`, as Redis says them.
        state: &'static str,
        /// The offset applied (Meridian: the last seq applied), while
        /// the link is up (`-1` otherwise, as Redis gives it).
        offset: Option<u64>,
    },
}

/// Settings the node keeps outside the engine (the client TLS listener's
/// `tls-*`), reached by `CONFIG GET` and `CONFIG SET`. Called with the
/// engine locked: an implementation must not lock the engine.
pub trait ConfigHooks: Send + Sync {
    /// The names this hook owns, in `CONFIG GET` order.
    fn names(&self) -> &'static [&'static str];
    /// A setting's current value, as `CONFIG GET` shows it.
    fn get(&self, name: &str) -> Option<String>;
    /// Applies every (name, value) pair, or none of them. `Err` is
    /// (the name at fault, the reason).
    fn set(&self, pairs: &[(String, String)]) -> Result<(), (String, String)>;
}

/// One command-table row remembered by the exact bytes of the name that
/// found it (names are short; a longer one is not remembered).
#[derive(Default)]
struct CmdCache {
    name: [u8; 16],
    len: usize,
    cmd: Option<&'static table::Command>,
}

impl CmdCache {
    /// The row found by `name` last time, if `name` is the remembered one.
    fn get(&self, name: &[u8]) -> Option<&'static table::Command> {
        let cmd = self.cmd?;
        (name.len() == self.len && *name == self.name[..self.len]).then_some(cmd)
    }

    /// Remembers what `name` found (`None` forgets).
    fn put(&mut self, name: &[u8], cmd: Option<&'static table::Command>) {
        self.cmd = None;
        if let Some(slot) = self.name.get_mut(..name.len()) {
            slot.copy_from_slice(name);
            self.len = name.len();
            self.cmd = cmd;
        }
    }

    /// The row of `name`: the remembered one, or the table's (then
    /// remembered).
    #[inline]
    fn lookup(&mut self, name: &[u8]) -> Option<&'static table::Command> {
        if let Some(cmd) = self.get(name) {
            return Some(cmd);
        }
        let cmd = Table::get().lookup(name);
        self.put(name, cmd);
        cmd
    }
}

/// How many commands' keys [`Engine::prefetch_keys`] is best given at a
/// time: enough for their cache misses to overlap, few enough that what
/// it loads (three lines a key) is still in the L1 cache when they run.
pub const PREFETCH_WINDOW: usize = 32;

/// A region node's data and the machinery around it.
pub struct Engine {
    /// The argument vector [`Engine::apply_op`] reuses.
    apply_argv: resp::ArgvBuf,
    /// The discarded reply [`Engine::apply_args`] reuses.
    apply_out: Out,
    /// The command of the last op [`Engine::apply_op`] looked up.
    apply_cmd: CmdCache,
    /// The command of the last request [`Engine::execute`] looked up.
    exec_cmd: CmdCache,
    /// The node's hooks (none for a standalone node).
    pub(crate) hooks: Option<std::sync::Arc<dyn NodeHooks>>,
    /// The node's snapshot files (`SAVE`, `BGSAVE`, `LASTSAVE`); none in
    /// unit tests.
    pub(crate) persist: Option<std::sync::Arc<dyn crate::cmd::persist::PersistHooks>>,
    /// The node's settings outside the engine (`tls-*`); none in unit
    /// tests.
    pub(crate) config_hooks: Option<std::sync::Arc<dyn ConfigHooks>>,
    pub(crate) config: Config,
    pub(crate) dbs: Vec<Keyspace>,
    /// Bit `i`: database `i` may have changed since the engine was made
    /// (a command ran with it selected, `COPY ... DB i`, a snapshot was
    /// installed). The others are still empty, so the `maxmemory` check,
    /// which runs before every command, sums only these
    /// ([`Engine::used_memory_for_limit`]).
    pub(crate) touched_dbs: u64,
    /// (database, hash) of the keys [`Engine::prefetch_keys`] is loading;
    /// kept to reuse its allocation.
    prefetch_hashes: Vec<(usize, u64)>,
    /// What an untouched (empty, never used) database takes.
    empty_db_bytes: usize,
    pub(crate) role: Role,
    /// Wall clock (unix ms) when the executing command started: every
    /// expiry decision in one command uses this one instant.
    pub(crate) now_ms: u64,
    pub(crate) stats: Stats,
    /// Forks of the node (`BGSAVE`, full syncs), for `INFO stats`.
    pub(crate) forks: ForkStats,
    /// Connected clients by id (a hash map: looked up on every command).
    pub(crate) clients: HashMap<u64, ClientMeta, foldhash::fast::RandomState>,
    pub(crate) journal: Journal,
    /// Count of changes to the dataset; a write that changed nothing
    /// leaves it alone and is not journaled.
    pub(crate) dirty: u64,
    pub(crate) rng: SmallRng,
    pub(crate) started: Instant,
    /// Watchers and keys that got data for blocked clients.
    pub(crate) signals: crate::signal::Signals,
    /// Parked clients and outboxes.
    pub(crate) blocking: crate::blocking::Blocking,
    /// Pub/sub subscriptions.
    pub(crate) pubsub: crate::cmd::pubsub::PubSub,
    /// Users, permissions and the denial log.
    pub(crate) acl: Acl,
    /// Random hex id of this process's run (`run_id`, `master_replid`).
    pub(crate) run_id: String,
    /// The busy-poll window in force, in microseconds (0: off), as the
    /// node reports it (`INFO server` `busy_poll_us`).
    pub(crate) busy_poll_window_us: u32,
    /// True while executing ops from the primary's change log: then every
    /// key counts as live, whatever this node's clock says, because the
    /// primary decided (and logged `DEL` for) what expired.
    pub(crate) applying: bool,
    /// True between [`Engine::begin_batch`] and [`Engine::end_batch`]:
    /// `now_ms` was read once for the whole batch.
    batch_clock: bool,
    /// False after `DEBUG SET-ACTIVE-EXPIRE 0`.
    pub(crate) active_expire: bool,
    next_client_id: u64,
    /// Where active expiry resumes: database and that database's cursor.
    expire_cursor: (usize, u64),
}

/// The current wall clock in unix milliseconds.
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Engine {
    /// A node with empty databases.
    pub fn new(config: Config) -> Self {
        let dbs: Vec<Keyspace> = (0..config.databases.max(1))
            .map(|_| Keyspace::new())
            .collect();
        let empty_db_bytes = dbs[0].mem_bytes();
        Engine {
            apply_argv: resp::ArgvBuf::default(),
            apply_out: Out::default(),
            apply_cmd: CmdCache::default(),
            exec_cmd: CmdCache::default(),
            hooks: None,
            persist: None,
            config_hooks: None,
            config,
            dbs,
            prefetch_hashes: Vec::new(),
            touched_dbs: 0,
            empty_db_bytes,
            role: Role::Primary,
            now_ms: unix_ms(),
            stats: Stats::default(),
            forks: ForkStats::default(),
            clients: HashMap::default(),
            journal: Journal::default(),
            dirty: 0,
            rng: SmallRng::from_entropy(),
            started: Instant::now(),
            busy_poll_window_us: 0,
            run_id: {
                let mut r = SmallRng::from_entropy();
                (0..40)
                    .map(|_| char::from(b"0123456789abcdef"[r.gen_range(0..16)]))
                    .collect()
            },
            applying: false,
            signals: Default::default(),
            blocking: Default::default(),
            pubsub: Default::default(),
            acl: Acl::default(),
            batch_clock: false,
            active_expire: true,
            next_client_id: 1,
            expire_cursor: (0, 0),
        }
    }

    /// The settings in force (`CONFIG SET` changes them).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The node's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Switches the role. A secondary refuses client writes with
    /// `-READONLY` and stops expiring keys on its own.
    pub fn set_role(&mut self, role: Role) {
        self.role = role;
    }

    /// Installs the node's hooks (replication state, node `DEBUG`
    /// subcommands).
    pub fn set_hooks(&mut self, hooks: std::sync::Arc<dyn NodeHooks>) {
        self.hooks = Some(hooks);
    }

    /// Counts a client the node closed for passing an output buffer limit
    /// (`INFO stats` `client_output_buffer_limit_disconnections`).
    pub fn count_output_limit_close(&mut self) {
        self.stats.output_limit_closes += 1;
    }

    /// Counts a client the node closed for passing
    /// `client-query-buffer-limit` (`INFO stats`
    /// `client_query_buffer_limit_disconnections`).
    pub fn count_query_limit_close(&mut self) {
        self.stats.query_limit_closes += 1;
    }

    /// Installs the settings kept outside the engine (`CONFIG GET/SET
    /// tls-*`).
    pub fn set_config_hooks(&mut self, hooks: std::sync::Arc<dyn ConfigHooks>) {
        self.config_hooks = Some(hooks);
    }

    /// Starts or stops collecting change ops.
    pub fn set_journal(&mut self, enabled: bool) {
        self.journal.enabled = enabled;
        if !enabled {
            self.journal.units.clear();
        }
    }

    /// Whether change ops are being collected.
    pub fn journal_enabled(&self) -> bool {
        self.journal.enabled
    }

    /// Takes the units of change ops completed since the last call.
    pub fn take_units(&mut self) -> Vec<Unit> {
        std::mem::take(&mut self.journal.units)
    }

    /// Records the busy-poll window the node applies (`busy-poll-us`
    /// resolved against its thread and CPU placement), for `INFO server`.
    pub fn set_busy_poll_window_us(&mut self, us: u32) {
        self.busy_poll_window_us = us;
    }

    /// Gives back units taken with [`Engine::take_units`] once they are
    /// logged: their buffers are reused for the next writes' ops.
    pub fn recycle_units(&mut self, mut units: Vec<Unit>) {
        let j = &mut self.journal;
        for unit in units.drain(..) {
            let mut ops = unit.ops;
            for op in ops.drain(..) {
                let mut argv = op.argv;
                let (args, bytes) = argv.capacity();
                if j.spare_argvs.len() < SPARES && args <= SPARE_ARGS && bytes <= SPARE_BYTES {
                    argv.clear();
                    j.spare_argvs.push(argv);
                }
            }
            if j.spare_ops.len() < SPARES && ops.capacity() <= SPARE_ARGS {
                j.spare_ops.push(ops);
            }
        }
        if j.units.is_empty() && j.units.capacity() < units.capacity() {
            j.units = units;
        }
    }

    /// An argument list holding `args`, in a spare one's buffers when
    /// there is one, else allocated to size.
    fn journal_argv<'a, I>(&mut self, args: impl Fn() -> I) -> changelog::Argv
    where
        I: ExactSizeIterator<Item = &'a [u8]>,
    {
        let Some(mut argv) = self.journal.spare_argvs.pop() else {
            return exact_argv(args);
        };
        for arg in args() {
            argv.push(arg);
        }
        argv
    }

    /// Registers a new connection.
    pub fn connect(&mut self, info: ConnInfo) -> Session {
        let id = self.next_client_id;
        self.next_client_id += 1;
        self.stats.connections += 1;
        let now = unix_ms();
        self.clients.insert(
            id,
            ClientMeta {
                addr: info.addr,
                laddr: info.laddr,
                name: Vec::new(),
                db: 0,
                created_ms: now,
                last_ms: now,
                last_cmd: "NULL",
                resp: 2,
                lib_name: String::new(),
                lib_ver: String::new(),
                user: UserId::DEFAULT,
            },
        );
        // As in Redis, a `default` user that is on and has `nopass` logs
        // every new connection in.
        self.sync_default_user();
        let open = self
            .acl
            .user(UserId::DEFAULT)
            .is_some_and(|u| u.enabled && u.nopass);
        Session {
            id,
            authenticated: open,
            user: UserId::DEFAULT,
            ..Session::default()
        }
    }

    /// Forgets a closed connection: its watches, subscriptions, parking
    /// place and outbox.
    pub fn disconnect(&mut self, session: &mut Session) {
        self.unwatch_all(session);
        self.pubsub.forget(session.id);
        self.forget_blocking(session.id);
        self.clients.remove(&session.id);
    }

    /// Records a fork of the node that took `usec` microseconds (the
    /// pause clients saw), as Redis reports its own in `INFO stats`.
    pub fn record_fork(&self, usec: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.forks.total.fetch_add(1, Relaxed);
        self.forks.latest_usec.store(usec, Relaxed);
    }

    /// Number of connected clients.
    pub fn connected_clients(&self) -> usize {
        self.clients.len()
    }

    /// Executes one request and writes its reply to `out`. An empty
    /// request does nothing.
    pub fn execute(&mut self, s: &mut Session, args: Args<'_>, out: &mut Out) -> Action {
        if args.is_empty() {
            return Action::Continue;
        }
        if !self.batch_clock {
            self.now_ms = unix_ms();
        }
        // Clients, too, mostly send runs of one command.
        let cmd = self.exec_cmd.lookup(&args[0]);
        self.execute_found(s, cmd, args, out)
    }

    /// [`Engine::execute`] once `args[0]` was looked up (`cmd`).
    fn execute_found(
        &mut self,
        s: &mut Session,
        cmd: Option<&'static table::Command>,
        args: Args<'_>,
        out: &mut Out,
    ) -> Action {
        self.stats.commands += 1;
        let Some(cmd) = cmd else {
            self.stats.errors += 1;
            if s.in_multi {
                s.multi_error = true;
            }
            out.error(&unknown_command(args));
            return Action::Continue;
        };
        if let Some(meta) = self.clients.get_mut(&s.id) {
            meta.last_ms = self.now_ms;
            meta.last_cmd = cmd.name;
        }
        if let Err(e) = self.check(s, cmd, args, out.proto) {
            self.stats.errors += 1;
            if s.in_multi {
                s.multi_error = true;
            }
            out.error(&e.to_string());
            return Action::Continue;
        }
        if s.in_multi && !crate::cmd::tx::runs_inside_multi(cmd.name) {
            s.queued.push(resp::ArgvBuf::from(args));
            out.simple("QUEUED");
            return Action::Continue;
        }
        if self.config.maxmemory > 0 {
            if let Err(e) = self.enforce_maxmemory(cmd.has(table::DENYOOM)) {
                self.stats.errors += 1;
                out.error(&e.to_string());
                if self.journal.enabled {
                    self.commit_unit();
                }
                return Action::Continue;
            }
        }
        self.run_command(s, cmd, args, out);
        if self.journal.enabled {
            self.commit_unit();
        }
        if !self.signals.ready.is_empty() {
            self.serve_ready();
        }
        std::mem::take(&mut s.action)
    }

    /// Runs one command that passed its checks: the handler, then the
    /// journal and the key signals. Shared by [`Engine::execute`], `EXEC`
    /// and the re-run of parked requests; it does not close the unit of
    /// change ops, so a transaction's ops stay one unit.
    pub(crate) fn run_command(
        &mut self,
        s: &mut Session,
        cmd: &'static table::Command,
        args: Args<'_>,
        out: &mut Out,
    ) {
        let dirty = self.dirty;
        self.mark_db(s.db);
        self.applying = s.is_primary_link;
        if self.journal.enabled {
            self.journal.custom = false;
        }
        // Access clocks matter only when eviction can happen; without a
        // limit the hot path skips them (and the policy lookup).
        let tracks_access = self.config.maxmemory > 0 && self.policy().tracks_access();
        if tracks_access {
            let clock = self.write_clock();
            self.dbs[s.db].set_lru_clock(clock);
        }
        let ok = match (cmd.handler)(self, s, args, out) {
            Ok(()) => true,
            Err(e) => {
                self.stats.errors += 1;
                out.error(&e.to_string());
                false
            }
        };
        let changed = ok && cmd.has(table::WRITE) && self.dirty != dirty;
        // A failed command is never journaled as typed: replaying it would
        // fail too. What it changed before failing (a `DEL` of an expired
        // key) was logged as its own op.
        if self.journal.enabled && changed && !self.journal.custom {
            let argv = self.journal_argv(|| args.iter());
            self.journal.current.push(Op {
                db: s.db as u32,
                argv,
            });
        }
        if changed && self.tracks_keys() {
            for i in cmd.written_keys_of(args) {
                self.touch_key(s.db, &args[i]);
            }
        }
        if ok && tracks_access && !self.applying {
            for i in cmd.keys_of(args) {
                self.touch_access(s.db, &args[i]);
            }
        }
        if matches!(s.action, Action::Block(_)) {
            self.finish_block(s, args);
        }
    }

    /// Whether session `s` (speaking `proto`) may run `args` as far as
    /// authentication, arity, its user's permissions, a RESP2 subscriber's
    /// limits and a transaction go: for commands the node answers itself
    /// (`MERIDIAN`), which still obey them. A denial is counted and logged
    /// as for any command; one inside `MULTI` makes `EXEC` abort, as for
    /// any command.
    pub fn admit(
        &mut self,
        s: &mut Session,
        proto: resp::Proto,
        args: Args<'_>,
    ) -> Result<(), String> {
        let Some(cmd) = Table::get().lookup(&args[0]) else {
            return Err(unknown_command(args));
        };
        // The checks every command passes; a refusal inside MULTI makes
        // EXEC abort, as in `execute_found`.
        self.check(s, cmd, args, proto).map_err(|e| {
            if s.in_multi {
                s.multi_error = true;
            }
            e.to_string()
        })
    }

    /// Starts a batch of requests that arrived together: the clock is read
    /// once for all of them (Redis likewise caches its clock per event-loop
    /// turn). Call [`Engine::end_batch`] before releasing the engine.
    pub fn begin_batch(&mut self) {
        self.now_ms = unix_ms();
        self.batch_clock = true;
    }

    /// Ends a batch: later commands read the clock again.
    pub fn end_batch(&mut self) {
        self.batch_clock = false;
    }

    /// Refusals decided before the handler runs: authentication, arity,
    /// permissions, then the row's flags. Inlined into the dispatch of
    /// every command (`admit`, its other caller, is rare).
    #[inline(always)]
    fn check(
        &mut self,
        s: &Session,
        cmd: &'static table::Command,
        args: Args<'_>,
        proto: resp::Proto,
    ) -> Result<(), CmdError> {
        if !s.authenticated && !cmd.has(table::NO_AUTH) {
            return Err(CmdError::Other("NOAUTH Authentication required.".into()));
        }
        if !cmd.arity_ok(args.len()) {
            return Err(CmdError::Arity(cmd.name.to_string()));
        }
        // The fast path: one comparison and one flag for a user with every
        // permission (the `default` user unless restricted).
        if !s.user.is_internal() && !self.acl.unrestricted(s.user) {
            self.acl_check(s, cmd, args)?;
        }
        if s.subscriptions > 0
            && proto == resp::Proto::Resp2
            && !crate::cmd::pubsub::allowed_while_subscribed(cmd.name)
        {
            return Err(CmdError::err(format!(
                "Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                cmd.name
            )));
        }
        if s.in_multi && cmd.has(table::NO_MULTI) {
            return Err(CmdError::err("Command not allowed inside a transaction"));
        }
        if cmd.has(table::WRITE) && self.role == Role::Secondary && !s.is_primary_link {
            return Err(CmdError::ReadOnly);
        }
        Ok(())
    }

    /// Applies one unit of ops from the primary's change log. The ops are
    /// already deterministic; they are journaled again as this node's own
    /// log so a promoted secondary continues the same history.
    pub fn apply(&mut self, unit: &Unit) -> Result<(), CmdError> {
        for op in &unit.ops {
            self.apply_op(op.db, op.argv.iter())?;
        }
        Ok(())
    }

    /// Applies one op of the primary's change log (part of a unit: apply
    /// a unit's ops back to back under one lock). Reuses its buffers: no
    /// allocation per op once they have grown.
    pub fn apply_op<'a, I>(&mut self, db: u32, argv: I) -> Result<(), CmdError>
    where
        I: IntoIterator<Item = &'a [u8]>,
    {
        let mut buf = std::mem::take(&mut self.apply_argv);
        buf.clear();
        for arg in argv {
            buf.push(arg);
        }
        let result = self.apply_args(db, buf.args());
        self.apply_argv = buf;
        result
    }

    /// Starts loading, without waiting, what commands on `keys` (database,
    /// key) will read first: their buckets, chain entries and stored keys,
    /// all keys stage by stage so that their cache misses overlap instead
    /// of each command paying its own in turn. A hint only: any bytes may
    /// be passed (a command whose first argument is not a key), and
    /// nothing changes. Returns how many keys it was given.
    ///
    /// Give it a window of the next few tens of commands, not a whole
    /// large batch: lines loaded too early are evicted before they are
    /// used.
    pub fn prefetch_keys<'k>(&mut self, keys: impl Iterator<Item = (u32, &'k [u8])>) -> usize {
        let mut hashes = std::mem::take(&mut self.prefetch_hashes);
        hashes.clear();
        let mut given = 0;
        for (db, key) in keys {
            given += 1;
            if let Some(ks) = self.dbs.get(db as usize) {
                hashes.push((db as usize, ks.hash(key)));
            }
        }
        for stage in [
            Prefetch::Bucket,
            Prefetch::Entry,
            Prefetch::Key,
            Prefetch::NextKey,
        ] {
            for &(db, h) in &hashes {
                self.dbs[db].prefetch(h, stage);
            }
        }
        self.prefetch_hashes = hashes;
        given
    }

    /// [`Engine::apply_op`] for arguments that already lie in a buffer
    /// (the change-log frame they arrived in): no copy of them.
    pub fn apply_args(&mut self, db: u32, args: Args<'_>) -> Result<(), CmdError> {
        let mut sink = std::mem::take(&mut self.apply_out);
        sink.clear();
        let mut session = Session {
            db: db as usize,
            authenticated: true,
            is_primary_link: true,
            ..Session::default()
        };
        if !args.is_empty() {
            if !self.batch_clock {
                self.now_ms = unix_ms();
            }
            // A log is mostly runs of one command: look its name up once
            // per run (same bytes, same row).
            let cmd = self.apply_cmd.lookup(&args[0]);
            self.execute_found(&mut session, cmd, args, &mut sink);
        }
        let result = match sink.as_bytes().first() {
            Some(&b'-') => {
                let text = String::from_utf8_lossy(&sink.as_bytes()[1..]);
                Err(CmdError::Other(text.trim_end().to_string()))
            }
            _ => Ok(()),
        };
        self.apply_out = sink;
        result
    }

    /// The periodic work, `hz` times a second: active expiry on a primary.
    pub fn cron(&mut self) {
        self.now_ms = unix_ms();
        if self.role == Role::Primary && self.active_expire {
            self.active_expire();
        }
        if self.config.maxmemory > 0 {
            // Finishes what a command's bounded eviction left over.
            let _ = self.enforce_maxmemory(false);
            self.commit_unit();
        }
    }

    /// Active expiry, bounded like Redis's: walks the databases' buckets
    /// from where the last cycle stopped, at most a fixed number of
    /// buckets and at most a quarter of the cron period.
    fn active_expire(&mut self) {
        const STEP: usize = 64;
        const MAX_STEPS: usize = 1024;
        let deadline = Instant::now()
            + std::time::Duration::from_micros(250_000 / u64::from(self.config.hz.max(1)));
        let now = self.now_ms;
        let ndb = self.dbs.len();
        let mut visited_dbs = 0;
        for _ in 0..MAX_STEPS {
            let (db, cursor) = self.expire_cursor;
            let db = db % ndb;
            if self.dbs[db].volatile_len() == 0 {
                self.expire_cursor = ((db + 1) % ndb, 0);
                visited_dbs += 1;
                if visited_dbs >= ndb {
                    break;
                }
                continue;
            }
            let track = self.tracks_keys();
            let mut touched: Vec<Vec<u8>> = Vec::new();
            let Engine {
                dbs,
                journal,
                stats,
                dirty,
                ..
            } = self;
            let next = dbs[db].expire_step(cursor, STEP, now, |key| {
                stats.expired_keys += 1;
                *dirty += 1;
                if track {
                    touched.push(key.to_vec());
                }
                if journal.enabled {
                    journal.current.push(crate::ops::del(db as u32, key));
                }
            });
            self.commit_unit();
            for key in touched {
                self.touch_key(db, &key);
            }
            self.expire_cursor = if next == 0 {
                visited_dbs += 1;
                ((db + 1) % ndb, 0)
            } else {
                (db, next)
            };
            if visited_dbs >= ndb || Instant::now() >= deadline {
                break;
            }
        }
    }

    /// Closes the executing command's unit of ops, if it has any.
    pub(crate) fn commit_unit(&mut self) {
        if !self.journal.current.is_empty() {
            let spare = self.journal.spare_ops.pop().unwrap_or_default();
            let ops = std::mem::replace(&mut self.journal.current, spare);
            self.journal.units.push(Unit { ops });
        }
    }

    /// Logs a deterministic op in place of the request as typed.
    pub(crate) fn log_op(&mut self, db: usize, argv: &[&[u8]]) {
        if self.journal.enabled {
            self.journal.custom = true;
            let argv = self.journal_argv(|| argv.iter().copied());
            self.journal.current.push(Op {
                db: db as u32,
                argv,
            });
        }
    }

    /// Marks the command as having logged its own ops (possibly none).
    pub(crate) fn log_custom(&mut self) {
        self.journal.custom = true;
    }

    /// True when an entry with this expiry is logically gone now. Never
    /// while applying the primary's ops.
    pub(crate) fn is_expired(&self, expire_at: Option<u64>) -> bool {
        !self.applying && expire_at.is_some_and(|t| t <= self.now_ms)
    }

    /// Reads a key, hiding it when it has logically expired. Reads never
    /// delete: on a primary, expired keys are removed by writers and by
    /// active expiry, each logging a `DEL`.
    pub(crate) fn read(&self, db: usize, key: &[u8]) -> Option<EntryRef<'_>> {
        self.dbs[db]
            .get(key)
            .filter(|e| !self.is_expired(e.expire_at))
    }

    /// Counts a keyspace hit or miss for `INFO stats`.
    pub(crate) fn count_lookup(&mut self, found: bool) {
        if found {
            self.stats.hits += 1;
        } else {
            self.stats.misses += 1;
        }
    }

    /// Before a write touches `key`: if it has logically expired, delete
    /// it (logging a `DEL`) so the write sees no key. Returns true when the
    /// key exists afterwards. A secondary deletes nothing on its own: it
    /// applies the primary's ops, for which every key is live.
    pub(crate) fn prepare_write(&mut self, db: usize, key: &[u8]) -> bool {
        let expired = match self.dbs[db].get(key) {
            None => return false,
            Some(e) => self.is_expired(e.expire_at),
        };
        if expired && self.role == Role::Primary {
            self.dbs[db].remove(key);
            self.expired_by_write(db, key);
            return false;
        }
        true
    }

    /// What follows a write's finding that `key` had expired (and
    /// removing or replacing it): the key is touched for tracking, counted
    /// as expired, and its `DEL` journaled, before the write's own op.
    pub(crate) fn expired_by_write(&mut self, db: usize, key: &[u8]) {
        if self.tracks_keys() {
            self.touch_key(db, key);
        }
        self.stats.expired_keys += 1;
        self.dirty += 1;
        if self.journal.enabled {
            self.journal.current.push(crate::ops::del(db as u32, key));
        }
    }

    /// A random u64, for `RANDOMKEY` and sampling.
    pub(crate) fn random(&mut self) -> u64 {
        self.rng.gen()
    }

    /// Heap bytes used by the data, for `INFO memory` and `maxmemory`.
    pub fn used_memory(&self) -> usize {
        self.dbs.iter().map(Keyspace::mem_bytes).sum::<usize>()
            + self.clients.len() * std::mem::size_of::<ClientMeta>()
    }

    /// Marks database `db` as possibly changed (see `touched_dbs`).
    pub(crate) fn mark_db(&mut self, db: usize) {
        self.touched_dbs |= 1u64.checked_shl(db as u32).unwrap_or(0);
    }

    /// [`Engine::used_memory`], summing only the databases that were ever
    /// touched (the rest are empty and take `empty_db_bytes` each): the
    /// same figure, for the check that runs before every command. With
    /// more than 64 databases, the full sum.
    pub(crate) fn used_memory_for_limit(&self) -> usize {
        if self.dbs.len() > 64 {
            return self.used_memory();
        }
        let mut bits = self.touched_dbs;
        let mut sum = (self.dbs.len() - bits.count_ones() as usize) * self.empty_db_bytes;
        while bits != 0 {
            let db = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            sum += self
                .dbs
                .get(db)
                .map_or(self.empty_db_bytes, Keyspace::mem_bytes);
        }
        sum + self.clients.len() * std::mem::size_of::<ClientMeta>()
    }

    /// Number of keys in database `db` (0 past the last database).
    pub fn dbsize(&self, db: usize) -> usize {
        self.dbs.get(db).map_or(0, Keyspace::len)
    }
}

/// Redis's reply to an unknown command, quoting its first arguments.
fn unknown_command(args: Args<'_>) -> String {
    let name = String::from_utf8_lossy(&args[0]);
    let name: String = name.chars().take(128).collect();
    let mut rest = String::new();
    for a in args.iter().skip(1) {
        if rest.len() >= 128 {
            break;
        }
        let room = 128 - rest.len();
        let a = String::from_utf8_lossy(a);
        let a: String = a.chars().take(room).collect();
        rest.push('\'');
        rest.push_str(&a);
        rest.push_str("' ");
    }
    format!("ERR unknown command '{name}', with args beginning with: {rest}")
}

/// The arguments as a [`changelog::Argv`] allocated at its exact size (two
/// allocations, no growth): this runs for every journaled write.
fn exact_argv<'a, I>(args: impl Fn() -> I) -> changelog::Argv
where
    I: ExactSizeIterator<Item = &'a [u8]>,
{
    let bytes = args().map(<[u8]>::len).sum();
    let mut argv = changelog::Argv::with_capacity(args().len(), bytes);
    for arg in args() {
        argv.push(arg);
    }
    argv
}

#[cfg(test)]
mod tests {
    use crate::testutil::{ops, Tester};

    /// A local publish reaches this node's subscribers, channel and
    /// pattern, like `PUBLISH`, but journals nothing.
    #[test]
    fn a_local_publish_is_delivered_and_not_journaled() {
        let mut t = Tester::new();
        t.q("SUBSCRIBE news");
        t.q("PSUBSCRIBE n*");
        assert_eq!(t.eng.publish_local(b"news", b"hello"), 2);
        let mut out = resp::Out::new(resp::Proto::Resp2);
        t.eng.take_outbox(t.s.id, &mut out);
        let got = String::from_utf8_lossy(out.as_bytes()).into_owned();
        assert_eq!(got.matches("hello").count(), 2, "{got:?}");
        assert!(ops(&mut t).is_empty(), "nothing journaled");
        // PUBLISH itself is journaled, for the other regions.
        t.q("UNSUBSCRIBE");
        t.q("PUNSUBSCRIBE");
        t.q("PUBLISH news again");
        assert_eq!(ops(&mut t), ["PUBLISH news again"]);
    }

    /// Units given back are reused for the next writes' ops, which hold
    /// exactly their own arguments; large buffers are not kept.
    #[test]
    fn recycled_units_journal_the_next_writes_exactly() {
        let mut t = Tester::new();
        t.q("SET a-long-key-name a-long-value-of-some-bytes");
        t.q("MULTI");
        t.q("SET k1 v1");
        t.q("INCR n");
        t.q("EXEC");
        let units = t.eng.take_units();
        assert_eq!(units.len(), 2);
        t.eng.recycle_units(units);
        assert_eq!(t.eng.journal.spare_argvs.len(), 3);
        assert_eq!(t.eng.journal.spare_ops.len(), 2);

        t.q("SET b c");
        t.q("DEL a-long-key-name k1 n");
        assert_eq!(ops(&mut t), ["SET b c", "DEL a-long-key-name k1 n"]);
        assert_eq!(t.eng.journal.spare_argvs.len(), 1, "two spares were used");

        // A 2 KiB value's buffer is freed, not kept as a spare.
        let big = "x".repeat(2048);
        t.q(&format!("SET big {big}"));
        let units = t.eng.take_units();
        t.eng.recycle_units(units);
        assert_eq!(t.eng.journal.spare_argvs.len(), 0);
        t.q("SET small 1");
        assert_eq!(ops(&mut t), ["SET small 1"]);
    }
}
