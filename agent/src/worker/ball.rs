//! Decoding and validating an incoming ball (`POST /v1/balls` body): the
//! worker's bad-input boundary. A ball that fails here is answered with a 4xx
//! and a JSON error and is never forwarded or published.

use serde::Serialize;

use crate::proto::Ball;

/// The limits a ball must respect to be accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted `ttl`.
    pub max_ttl: u32,
    /// Longest accepted hop trail.
    pub max_hops: usize,
    /// Longest accepted `id` and `target` (bytes).
    pub max_name_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_ttl: 64,
            max_hops: 256,
            max_name_len: 256,
        }
    }
}

/// Why a ball was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BallError {
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    #[error("invalid ball: {0}")]
    InvalidBall(String),
    #[error("ttl {ttl} is above the maximum {max}")]
    TtlTooHigh { ttl: u32, max: u32 },
    #[error("hop trail has {hops} hops, the maximum is {max}")]
    TooManyHops { hops: usize, max: usize },
    #[error("{field} is empty")]
    Empty { field: &'static str },
    #[error("{field} is {len} bytes, the maximum is {max}")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
}

impl BallError {
    /// A stable machine-readable code for the JSON error body.
    pub fn code(&self) -> &'static str {
        match self {
            BallError::MalformedJson(_) => "malformed-json",
            BallError::InvalidBall(_) => "invalid-ball",
            BallError::TtlTooHigh { .. } => "ttl-too-high",
            BallError::TooManyHops { .. } => "too-many-hops",
            BallError::Empty { .. } => "empty-field",
            BallError::TooLong { .. } => "field-too-long",
        }
    }
}

/// The JSON body of every 4xx/5xx answer of the worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ErrorBody {
    pub error: String,
    pub detail: String,
}

impl From<&BallError> for ErrorBody {
    fn from(e: &BallError) -> Self {
        ErrorBody {
            error: e.code().to_string(),
            detail: e.to_string(),
        }
    }
}

/// Decodes and validates a ball body.
pub fn decode(body: &[u8], limits: &Limits) -> Result<Ball, BallError> {
    let ball: Ball = serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => BallError::InvalidBall(e.to_string()),
        _ => BallError::MalformedJson(e.to_string()),
    })?;
    validate(&ball, limits)?;
    Ok(ball)
}

/// Checks a decoded ball against the limits.
pub fn validate(ball: &Ball, limits: &Limits) -> Result<(), BallError> {
    for (field, value) in [("id", &ball.id), ("target", &ball.target)] {
        if value.is_empty() {
            return Err(BallError::Empty { field });
        }
        if value.len() > limits.max_name_len {
            return Err(BallError::TooLong {
                field,
                len: value.len(),
                max: limits.max_name_len,
            });
        }
    }
    if ball.ttl > limits.max_ttl {
        return Err(BallError::TtlTooHigh {
            ttl: ball.ttl,
            max: limits.max_ttl,
        });
    }
    if ball.hops.len() > limits.max_hops {
        return Err(BallError::TooManyHops {
            hops: ball.hops.len(),
            max: limits.max_hops,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Hop;
    use proptest::prelude::*;

    fn limits() -> Limits {
        Limits {
            max_ttl: 10,
            max_hops: 4,
            max_name_len: 16,
        }
    }

    #[test]
    fn classifies_each_bad_input() {
        let l = limits();
        let code = |s: &str| decode(s.as_bytes(), &l).unwrap_err().code();
        assert_eq!(code("{"), "malformed-json");
        assert_eq!(code("not json"), "malformed-json");
        assert_eq!(
            code(r#"{"id":"a","target":"w","ttl":"3","born_ms":1}"#),
            "invalid-ball"
        );
        assert_eq!(code(r#"{"id":"a","ttl":3,"born_ms":1}"#), "invalid-ball");
        assert_eq!(
            code(r#"{"id":"a","target":"w","ttl":-1,"born_ms":1}"#),
            "invalid-ball"
        );
        assert_eq!(
            code(r#"{"id":"a","target":"w","ttl":11,"born_ms":1}"#),
            "ttl-too-high"
        );
        assert_eq!(
            code(r#"{"id":"","target":"w","ttl":1,"born_ms":1}"#),
            "empty-field"
        );
        let hops = r#"{"worker":"x","node":"n","at_ms":1}"#;
        let five = [hops; 5].join(",");
        let body = format!(r#"{{"id":"a","target":"w","ttl":1,"born_ms":1,"hops":[{five}]}}"#);
        assert_eq!(code(&body), "too-many-hops");
        assert!(decode(br#"{"id":"a","target":"w","ttl":10,"born_ms":1}"#, &l).is_ok());
    }

    fn arb_ball() -> impl Strategy<Value = Ball> {
        let hop =
            ("[a-z]{0,20}", "[a-z]{0,8}", any::<u64>()).prop_map(|(worker, node, at_ms)| Hop {
                worker,
                node,
                at_ms,
            });
        (
            "[a-z0-9-]{0,20}",
            "[a-z0-9-]{0,20}",
            0u32..20,
            any::<u64>(),
            proptest::collection::vec(hop, 0..7),
        )
            .prop_map(|(id, target, ttl, born_ms, hops)| Ball {
                id,
                target,
                ttl,
                born_ms,
                hops,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Any byte string decodes to a valid ball or a classified error; never a panic.
        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(ball) = decode(&body, &limits()) {
                prop_assert!(validate(&ball, &limits()).is_ok());
            }
        }

        /// A serialised ball decodes back to itself exactly when it is within the limits.
        #[test]
        fn round_trip_respects_limits(ball in arb_ball()) {
            let body = serde_json::to_vec(&ball).unwrap();
            let l = limits();
            let within = !ball.id.is_empty() && !ball.target.is_empty()
                && ball.id.len() <= l.max_name_len && ball.target.len() <= l.max_name_len
                && ball.ttl <= l.max_ttl && ball.hops.len() <= l.max_hops;
            match decode(&body, &l) {
                Ok(back) => { prop_assert!(within); prop_assert_eq!(back, ball); }
                Err(e) => { prop_assert!(!within, "refused a valid ball: {e}"); }
            }
        }

        /// Mangling a valid body (truncating it) is refused or still a valid ball.
        #[test]
        fn truncated_bodies_are_refused_cleanly(ball in arb_ball(), cut in 0usize..200) {
            let body = serde_json::to_vec(&ball).unwrap();
            let cut = cut.min(body.len());
            if let Ok(b) = decode(&body[..cut], &limits()) {
                prop_assert!(validate(&b, &limits()).is_ok());
            }
        }
    }
}
