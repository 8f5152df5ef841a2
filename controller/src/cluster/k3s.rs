//! (k3s backend: placeholder until its issue lands)
