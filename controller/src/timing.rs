//! (timing: placeholder until its issue lands)
