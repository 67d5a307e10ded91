//! The set family: SADD, SREM, SINTER and friends.

use crate::table::Command;

/// The family's table rows.
pub(crate) const COMMANDS: &[Command] = &[];
