//! Pub/sub: SUBSCRIBE, PSUBSCRIBE, PUBLISH, PUBSUB.

use crate::table::Command;

/// The family's table rows.
pub(crate) const COMMANDS: &[Command] = &[];
