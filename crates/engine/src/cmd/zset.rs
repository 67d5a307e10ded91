//! The sorted-set family: ZADD, ZRANGE, ZRANK and friends.

use crate::table::Command;

/// The family's table rows.
pub(crate) const COMMANDS: &[Command] = &[];
