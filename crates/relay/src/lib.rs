//! A UDP relay between two QUIC endpoints that emulates a WAN link.
