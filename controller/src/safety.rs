//! (safety: placeholder until its issue lands)
