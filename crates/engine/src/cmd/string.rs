//! The string family: GET, SET and friends.

use resp::{Args, Out};

use crate::engine::{Engine, Session};
use crate::error::{CmdError, CmdResult};
use crate::keyspace::{Expiry, ValueRef};
use crate::table::{row, Command, DENYOOM, FAST, READONLY, WRITE};

/// The family's table rows.
pub(crate) const COMMANDS: &[Command] = &[
    row("get", 2, READONLY | FAST, (1, 1, 1), "string", "Returns the string value of a key.", get),
    row("set", -3, WRITE | DENYOOM, (1, 1, 1), "string", "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.", set),
];

fn get(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    let found = match eng.read(s.db, &args[1]) {
        None => {
            out.null();
            false
        }
        Some(e) => match e.value {
            ValueRef::Str(v) => {
                out.bulk(v);
                true
            }
        },
    };
    eng.count_lookup(found);
    Ok(())
}

fn set(eng: &mut Engine, s: &mut Session, args: Args<'_>, out: &mut Out) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::Syntax);
    }
    eng.dbs[s.db].set_str(&args[1], &args[2], Expiry::Set(None));
    eng.dirty += 1;
    out.ok();
    Ok(())
}
