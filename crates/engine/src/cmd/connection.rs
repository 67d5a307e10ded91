//! Connection commands: PING, ECHO, SELECT, HELLO, AUTH, QUIT, RESET, CLIENT.

use crate::table::Command;

/// The family's table rows.
pub(crate) const COMMANDS: &[Command] = &[];
