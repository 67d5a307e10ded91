//! Server commands: INFO, CONFIG, COMMAND, DEBUG, DBSIZE, FLUSHDB,
//! FLUSHALL, TIME, SHUTDOWN.

use crate::table::Command;

/// The family's table rows.
pub(crate) const COMMANDS: &[Command] = &[];
