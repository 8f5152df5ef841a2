//! (local rack: placeholder until its issue lands)
