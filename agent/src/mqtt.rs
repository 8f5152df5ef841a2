//! The MQTT link: birth/Last Will, reconnect with backoff, store-and-forward (placeholder until its issue lands).
