//! Which of a link's subscription filters are subscribed at the broker:
//! only those no other filter of the link covers. A broker delivers one copy
//! of a message per matching subscription of a client, so `rack/#` beside
//! `rack/nodes/+/health` would bring every health sample twice; the link
//! routes each message to all of its matching subscribers itself.

/// `true` when every topic matching `narrow` also matches `wide`.
pub(super) fn covers(wide: &str, narrow: &str) -> bool {
    let (w, n): (Vec<&str>, Vec<&str>) = (wide.split('/').collect(), narrow.split('/').collect());
    // A leading wildcard never matches `$SYS`-style topics (MQTT 4.7.2).
    if narrow.starts_with('$') && matches!(w[0], "#" | "+") {
        return false;
    }
    for (i, level) in w.iter().enumerate() {
        if *level == "#" {
            return true;
        }
        let Some(other) = n.get(i) else {
            return false;
        };
        match *level {
            "+" if *other == "#" => return false,
            "+" => {}
            exact if exact != *other => return false,
            _ => {}
        }
    }
    w.len() == n.len()
}

/// The filters to hold at the broker for these subscriber filters: each
/// distinct filter that no other distinct filter covers, in first-seen order.
pub(super) fn at_broker<'a>(filters: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut distinct: Vec<&str> = Vec::new();
    for f in filters {
        if !distinct.contains(&f) {
            distinct.push(f);
        }
    }
    distinct
        .iter()
        .filter(|f| !distinct.iter().any(|g| g != *f && covers(g, f)))
        .map(|f| f.to_string())
        .collect()
}

/// Filters to subscribe (first, so nothing is missed) and to unsubscribe
/// when the broker set changes from `before` to `after`.
pub(super) fn change(before: &[String], after: &[String]) -> (Vec<String>, Vec<String>) {
    let add = after
        .iter()
        .filter(|f| !before.contains(f))
        .cloned()
        .collect();
    let drop = before
        .iter()
        .filter(|f| !after.contains(f))
        .cloned()
        .collect();
    (add, drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_follows_the_wildcards() {
        assert!(covers("r/#", "r/nodes/+/health"));
        assert!(covers("r/#", "r"));
        assert!(covers("r/nodes/+/health", "r/nodes/pi1/health"));
        assert!(covers("r/+/+/health", "r/nodes/+/health"));
        assert!(!covers("r/nodes/+/health", "r/#"));
        assert!(!covers("r/+", "r/#"));
        assert!(!covers("r/nodes/+/health", "r/nodes/+/status"));
        assert!(!covers("r/nodes/+", "r/nodes/pi1/health"));
        assert!(!covers("#", "$SYS/broker/uptime"));
        assert!(covers("$SYS/#", "$SYS/broker/uptime"));
    }

    #[test]
    fn the_broker_holds_only_uncovered_distinct_filters() {
        let subs = ["r/nodes/+/status", "r/nodes/+/health", "r/#", "x/y", "x/y"];
        assert_eq!(at_broker(subs), vec!["r/#".to_string(), "x/y".to_string()]);
        assert_eq!(
            at_broker(["r/nodes/+/status", "r/nodes/+/health"]),
            vec![
                "r/nodes/+/status".to_string(),
                "r/nodes/+/health".to_string()
            ]
        );
    }

    #[test]
    fn a_wider_filter_is_subscribed_before_the_narrow_ones_go() {
        let before = at_broker(["r/nodes/+/status", "r/nodes/+/health"]);
        let after = at_broker(["r/nodes/+/status", "r/nodes/+/health", "r/#"]);
        let (add, drop) = change(&before, &after);
        assert_eq!(add, vec!["r/#".to_string()]);
        assert_eq!(drop, before);
        assert_eq!(change(&after, &before), (before.clone(), after.clone()));
    }
}
