//! The bounded store-and-forward queue behind [`super::MqttLink::publish`].
//! Entries leave the queue only when the broker has acknowledged them
//! (QoS 1 PUBACK, which the broker sends in the order it received the
//! PUBLISHes), so a dropped connection loses nothing: the unacknowledged
//! front is simply sent again on the next connection, from here and only
//! from here (the rumqttc event loop that held them is thrown away).

use std::collections::VecDeque;

use crate::proto::health::BufferStats;

/// One message waiting for the broker.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
    /// Belongs to one connection only (the birth message): removed when that
    /// connection drops, never counted against the bound.
    pub session_only: bool,
}

/// The queue and its counters.
#[derive(Debug)]
pub(crate) struct Outbox {
    entries: VecDeque<Entry>,
    /// How many entries at the front were handed to the current connection
    /// and await their PUBACK.
    in_flight: usize,
    capacity: usize,
    dropped: u64,
}

impl Outbox {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: VecDeque::new(),
            in_flight: 0,
            capacity: capacity.max(1),
            dropped: 0,
        }
    }

    fn queued(&self) -> usize {
        self.entries.iter().filter(|e| !e.session_only).count()
    }

    /// Appends a message. Past the bound the oldest message not yet handed
    /// to the connection is dropped (and counted); returns true if one was.
    pub fn push(&mut self, entry: Entry) -> bool {
        if self.queued() < self.capacity {
            self.entries.push_back(entry);
            return false;
        }
        let oldest_unsent =
            (self.in_flight..self.entries.len()).find(|&i| !self.entries[i].session_only);
        self.dropped += 1;
        if let Some(i) = oldest_unsent {
            self.entries.remove(i);
            self.entries.push_back(entry);
        }
        // else: everything queued is in flight; the new message is the one dropped.
        true
    }

    /// Puts a message right after what is already in flight, so it is the
    /// next one sent (the birth on connect, `offline` on shutdown).
    pub fn push_next(&mut self, entry: Entry) {
        self.entries.insert(self.in_flight, entry);
    }

    /// The next message to hand to the connection, marking it in flight.
    pub fn next_unsent(&mut self, window: usize) -> Option<Entry> {
        if self.in_flight >= window {
            return None;
        }
        let e = self.entries.get(self.in_flight)?.clone();
        self.in_flight += 1;
        Some(e)
    }

    /// The connection refused the last entry returned by `next_unsent`
    /// (its request channel was full): it stays queued, unsent.
    pub fn unsend_last(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// The broker acknowledged the oldest in-flight message.
    pub fn acked(&mut self) -> Option<Entry> {
        if self.in_flight == 0 {
            return None;
        }
        self.in_flight -= 1;
        self.entries.pop_front()
    }

    /// The connection dropped: in-flight messages become unsent again and
    /// the connection's own messages go.
    pub fn disconnected(&mut self) {
        self.in_flight = 0;
        self.entries.retain(|e| !e.session_only);
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn stats(&self) -> BufferStats {
        BufferStats {
            queued: self.queued() as u64,
            capacity: self.capacity as u64,
            dropped: self.dropped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(n: u32) -> Entry {
        Entry {
            topic: "t".into(),
            payload: n.to_string().into_bytes(),
            retain: false,
            session_only: false,
        }
    }

    fn payloads(o: &Outbox) -> Vec<String> {
        o.entries
            .iter()
            .map(|e| String::from_utf8(e.payload.clone()).unwrap())
            .collect()
    }

    #[test]
    fn oldest_unsent_is_dropped_past_the_bound_and_counted() {
        let mut o = Outbox::new(3);
        for n in 1..=3 {
            assert!(!o.push(e(n)));
        }
        assert_eq!(o.next_unsent(8).unwrap().payload, b"1");
        assert!(o.push(e(4)));
        // 1 is in flight and stays; 2 was the oldest unsent.
        assert_eq!(payloads(&o), ["1", "3", "4"]);
        assert_eq!(o.stats().dropped, 1);
        assert_eq!(o.stats().queued, 3);
    }

    #[test]
    fn unacked_messages_are_sent_again_after_a_disconnect_in_order() {
        let mut o = Outbox::new(10);
        for n in 1..=3 {
            o.push(e(n));
        }
        o.push_next(Entry {
            session_only: true,
            ..e(0)
        });
        assert_eq!(o.next_unsent(2).unwrap().payload, b"0");
        assert_eq!(o.next_unsent(2).unwrap().payload, b"1");
        assert!(o.next_unsent(2).is_none(), "window of 2 is full");
        o.acked(); // birth
        o.disconnected(); // 1 was in flight, never acked
        assert_eq!(payloads(&o), ["1", "2", "3"]);
        assert_eq!(o.next_unsent(2).unwrap().payload, b"1");
        o.acked();
        assert_eq!(payloads(&o), ["2", "3"]);
    }

    #[test]
    fn birth_is_not_counted_and_does_not_survive_its_connection() {
        let mut o = Outbox::new(1);
        o.push(e(1));
        o.push_next(Entry {
            session_only: true,
            ..e(0)
        });
        assert_eq!(o.stats().queued, 1);
        o.disconnected();
        assert_eq!(payloads(&o), ["1"]);
    }

    #[test]
    fn when_everything_is_in_flight_the_new_message_is_dropped() {
        let mut o = Outbox::new(1);
        o.push(e(1));
        o.next_unsent(4);
        assert!(o.push(e(2)));
        assert_eq!(payloads(&o), ["1"]);
        o.unsend_last();
        assert_eq!(o.next_unsent(4).unwrap().payload, b"1");
    }
}
