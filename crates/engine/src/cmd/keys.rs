//! The generic key family: DEL, EXISTS, EXPIRE, SCAN and friends.

use crate::table::Command;

/// The family's table rows.
pub(crate) const COMMANDS: &[Command] = &[];
