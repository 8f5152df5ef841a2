//! Status LEDs behind a small trait (placeholder until its issue lands).
