//! The policy engine: the security database model (RON), access-route parsing and matching, and
//! the decisions a worker makes. Pure: time is passed in; argon2 verification is CPU work only.
//! TODO(policy helper)
