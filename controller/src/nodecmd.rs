//! (signed node commands sent over MQTT: placeholder until its issue lands)
