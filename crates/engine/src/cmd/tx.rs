//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.

use crate::table::Command;

/// The family's table rows.
pub(crate) const COMMANDS: &[Command] = &[];
