//! Node health sampling from sysinfo and the Pi sysfs (placeholder until its issue lands).
