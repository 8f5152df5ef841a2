//! (factory: placeholder until its issue lands)
