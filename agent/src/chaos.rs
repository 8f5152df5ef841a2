//! Signed node-chaos commands executed by the node role (placeholder until its issue lands).
