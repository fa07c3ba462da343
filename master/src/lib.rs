//! Gatehouse master (issue 4): not yet built.
