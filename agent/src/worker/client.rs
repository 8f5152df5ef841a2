//! The forward client: one `POST /v1/balls` to a peer over kept-alive,
//! pooled HTTP/1.1 connections (hyper-util's pooled client). The peer's
//! ball URI is parsed once per peer ([`super::peers::Peer`]) and the body is
//! encoded once per ball ([`Bytes`], shared by every attempt), so a forward
//! costs one request on an already open connection and nothing else
//! (docs/perf/worker.md has the profile that led here: reqwest's per-request
//! URL parse and request building were a large part of a hop).

use std::time::Duration;

use axum::http::{HeaderValue, Request, StatusCode, Uri, header};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::proto::ball::{DEADLINE_HEADER, Deadline};

/// Why a forward request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("cannot build the request: {0}")]
    Request(#[source] axum::http::Error),
    #[error("request failed")]
    Send(#[source] hyper_util::client::legacy::Error),
}

impl ForwardError {
    /// A connect timeout (the only timeout inside the client; the caller
    /// bounds the whole request itself).
    pub fn is_timeout(&self) -> bool {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(e) = source {
            if let Some(io) = e.downcast_ref::<std::io::Error>()
                && io.kind() == std::io::ErrorKind::TimedOut
            {
                return true;
            }
            source = e.source();
        }
        false
    }
}

/// A pooled HTTP/1.1 client for forwards; cheap to clone.
#[derive(Debug, Clone)]
pub struct ForwardClient {
    inner: Client<HttpConnector, Full<Bytes>>,
}

impl ForwardClient {
    /// TCP_NODELAY on every connection, `connect_timeout` per connect, at
    /// most `max_idle` idle connections kept per peer.
    pub fn new(connect_timeout: Duration, max_idle: usize) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(connect_timeout));
        let inner = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_max_idle_per_host(max_idle)
            .build(connector);
        ForwardClient { inner }
    }

    /// Posts one ball body with the sender's deadline; the answer's status.
    /// The answer's body (empty for a 202, a JSON error otherwise) is read
    /// to its end so the connection goes back to the pool; a failure there
    /// does not change the status the peer gave (after a 202 the ball is the
    /// peer's, whatever happens to the connection).
    pub async fn post_ball(
        &self,
        uri: &Uri,
        body: Bytes,
        deadline: Deadline,
    ) -> Result<StatusCode, ForwardError> {
        let request = Request::post(uri.clone())
            .header(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )
            .header(DEADLINE_HEADER, HeaderValue::from(deadline.0))
            .body(Full::new(body))
            .map_err(ForwardError::Request)?;
        let answer = self
            .inner
            .request(request)
            .await
            .map_err(ForwardError::Send)?;
        let status = answer.status();
        let _ = answer.into_body().collect().await;
        Ok(status)
    }
}
