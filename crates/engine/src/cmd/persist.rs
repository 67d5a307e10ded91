//! Snapshot commands: SAVE, BGSAVE, LASTSAVE, and `INFO persistence`.
//!
//! The engine owns no files: each command asks the node's
//! [`PersistHooks`] (the server's snapshot writer), handing it the engine
//! so the hook can take a consistent copy while the engine is locked.

use std::fmt::Write as _;

use resp::{Args, Out};

use crate::engine::{Engine, Session};
use crate::error::{CmdError, CmdResult};
use crate::table::{row, Command, ADMIN, FAST, NO_MULTI, RANDOM, STALE};

/// What the node does for the snapshot commands. Called with the engine
/// locked and handed to it: an implementation must not lock the engine.
pub trait PersistHooks: Send + Sync {
    /// `SAVE`: writes the snapshot file before returning (the node waits,
    /// as Redis's `SAVE` blocks). `Err` is the error line without `-`.
    fn save(&self, engine: &Engine) -> Result<(), String>;
    /// `BGSAVE`: copies the snapshot out of `engine` and writes it on
    /// another thread. `Err` when one is already running.
    fn bgsave(&self, engine: &Engine) -> Result<(), String>;
    /// Unix seconds of the last successful save (the start time when
    /// none happened).
    fn lastsave(&self) -> u64;
    /// Appends the fields of `INFO persistence` after its header, each
    /// line ending in `\r\n`. `dirty` is the engine's change counter.
    fn info(&self, dirty: u64, out: &mut String);
}

/// The family's table rows.
pub(crate) const COMMANDS: &[Command] = &[
    row(
        "save",
        1,
        ADMIN | NO_MULTI,
        (0, 0, 0),
        "server",
        "Synchronously saves the database(s) to disk.",
        save,
    ),
    row(
        "bgsave",
        -1,
        ADMIN | NO_MULTI,
        (0, 0, 0),
        "server",
        "Asynchronously saves the database(s) to disk.",
        bgsave,
    ),
    row(
        "bgrewriteaof",
        1,
        ADMIN | NO_MULTI,
        (0, 0, 0),
        "server",
        "Asynchronously rewrites the append-only file to disk.",
        bgrewriteaof,
    ),
    row(
        "lastsave",
        1,
        ADMIN | FAST | RANDOM | STALE,
        (0, 0, 0),
        "server",
        "Returns the Unix timestamp of the last successful save to disk.",
        lastsave,
    ),
];

impl Engine {
    /// Installs the node's snapshot writer (`SAVE`, `BGSAVE`, `LASTSAVE`,
    /// `INFO persistence`).
    pub fn set_persist_hooks(&mut self, hooks: std::sync::Arc<dyn PersistHooks>) {
        self.persist = Some(hooks);
    }

    /// The change counter: grows by at least one with every write that
    /// changed data (`rdb_changes_since_last_save` counts from it).
    pub fn dirty(&self) -> u64 {
        self.dirty
    }

    /// Units of change ops this batch completed that the change log has
    /// not taken yet (one entry each, appended when the engine unlocks):
    /// the data is this many entries past the log's last position.
    pub fn pending_units(&self) -> u64 {
        if self.journal.enabled {
            self.journal.units.len() as u64
        } else {
            0
        }
    }
}

fn hooks(eng: &Engine) -> Result<std::sync::Arc<dyn PersistHooks>, CmdError> {
    eng.persist
        .clone()
        .ok_or_else(|| CmdError::err("this node has no snapshot files"))
}

fn save(eng: &mut Engine, _: &mut Session, _: Args<'_>, out: &mut Out) -> CmdResult {
    hooks(eng)?.save(eng).map_err(CmdError::Other)?;
    out.ok();
    Ok(())
}

/// `BGSAVE [SCHEDULE]`: `SCHEDULE` is accepted and behaves as plain
/// `BGSAVE` (no fork here, so nothing else could be in the way but another
/// save).
fn bgsave(eng: &mut Engine, _: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    match args.len() {
        1 => {}
        2 if crate::cmd::eq_ic(&args[1], "schedule") => {}
        _ => return Err(CmdError::Syntax),
    }
    hooks(eng)?.bgsave(eng).map_err(CmdError::Other)?;
    out.simple("Background saving started");
    Ok(())
}

/// `BGREWRITEAOF`: Meridian's append-only file is the change log on disk;
/// rewriting it is taking a snapshot, which then compacts the log.
fn bgrewriteaof(eng: &mut Engine, _: &mut Session, _: Args<'_>, out: &mut Out) -> CmdResult {
    hooks(eng)?.bgsave(eng).map_err(CmdError::Other)?;
    out.simple("Background append only file rewriting started");
    Ok(())
}

fn lastsave(eng: &mut Engine, _: &mut Session, _: Args<'_>, out: &mut Out) -> CmdResult {
    out.int(hooks(eng)?.lastsave() as i64);
    Ok(())
}

/// The `INFO persistence` section's fields.
pub(crate) fn info(eng: &Engine, t: &mut String) {
    match &eng.persist {
        Some(hooks) => hooks.info(eng.dirty, t),
        None => {
            let _ = write!(t, "loading:0\r\nrdb_changes_since_last_save:{}\r\nrdb_bgsave_in_progress:0\r\nrdb_last_save_time:0\r\nrdb_last_bgsave_status:ok\r\naof_enabled:0\r\n", eng.dirty);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testutil::Tester;

    #[test]
    fn without_a_node_the_commands_say_so() {
        let mut t = Tester::new();
        assert!(t.q("SAVE").starts_with("-ERR this node has no snapshot"));
        assert!(t.q("BGSAVE x").starts_with("-ERR syntax"));
        assert!(t
            .q("BGREWRITEAOF")
            .starts_with("-ERR this node has no snapshot"));
        assert!(t.q("INFO persistence").contains("rdb_bgsave_in_progress:0"));
        assert_eq!(t.eng.pending_units(), 0);
    }
}
