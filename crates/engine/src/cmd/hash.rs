//! The hash family: HSET, HGET and friends.

use crate::table::Command;

/// The family's table rows.
pub(crate) const COMMANDS: &[Command] = &[];
