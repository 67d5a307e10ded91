//! The list family: LPUSH, LPOP, LRANGE and friends, and the blocking pops.

use crate::table::Command;

/// The family's table rows.
pub(crate) const COMMANDS: &[Command] = &[];
