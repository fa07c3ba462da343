//! Gatehouse agent library (issue 3).
