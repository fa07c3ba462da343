//! The Gatehouse bridge and replica daemon.
