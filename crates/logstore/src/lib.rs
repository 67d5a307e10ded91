//! The change log and snapshots at rest.
