//! The kube-rs way of testing against an API server that cannot run here: a
//! tower-test mock service in place of the HTTP connection. Each test takes
//! the requests one by one, asserts exactly what was asked (method, path,
//! query, body) and answers with fixture JSON as a k3s 1.33 server sends it.

#![allow(dead_code)] // each test binary uses part of this module

use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use rackpong_controller::cluster::k3s::{K3sCluster, K3sConfig};
use serde_json::Value;
use tower_test::mock::{self, Handle, SendResponse};

/// How long a test waits for the client's next request before failing.
pub const WAIT: Duration = Duration::from_secs(10);

/// A client whose every request goes to the returned [`ApiServer`].
pub fn mock_client() -> (Client, ApiServer) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    (Client::new(service, "default"), ApiServer { handle })
}

/// Reads `controller/tests/fixtures/k8s/<name>`.
pub fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/k8s/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A fixture parsed as JSON, to edit before answering.
pub fn fixture_json(name: &str) -> Value {
    serde_json::from_str(&fixture(name)).unwrap()
}

/// One request the client made, ready to be answered.
pub struct Call {
    pub method: Method,
    /// Path and query, e.g. `/api/v1/namespaces/rackpong/pods?&labelSelector=...`.
    pub uri: String,
    /// The request body as JSON (`Value::Null` when empty).
    pub body: Value,
    send: SendResponse<Response<Body>>,
}

impl Call {
    /// Answers with `status` and a JSON (or JSON-lines) body.
    pub fn answer(self, status: u16, body: impl Into<Vec<u8>>) {
        let response = Response::builder()
            .status(StatusCode::from_u16(status).unwrap())
            .header("content-type", "application/json")
            .body(Body::from(body.into()))
            .unwrap();
        self.send.send_response(response);
    }
}

pub struct ApiServer {
    handle: Handle<Request<Body>, Response<Body>>,
}

impl ApiServer {
    /// The next request, whatever it is (fails the test after [`WAIT`]).
    pub async fn next(&mut self) -> Call {
        let (request, send) = tokio::time::timeout(WAIT, self.handle.next_request())
            .await
            .expect("the client made no request in time")
            .expect("the client was dropped");
        let method = request.method().clone();
        let uri = request.uri().to_string();
        let bytes = request.into_body().collect_bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        Call {
            method,
            uri,
            body,
            send,
        }
    }

    /// The next request, which must be exactly `method uri`.
    pub async fn expect(&mut self, method: Method, uri: &str) -> Call {
        let call = self.next().await;
        assert_eq!(
            (&call.method, call.uri.as_str()),
            (&method, uri),
            "unexpected request"
        );
        call
    }

    /// Expects `method uri` and answers 200 with the fixture `name`.
    pub async fn serve(&mut self, method: Method, uri: &str, name: &str) -> Value {
        let call = self.expect(method, uri).await;
        let body = call.body.clone();
        call.answer(200, fixture(name));
        body
    }

    /// Expects the Event the backend writes after a fault, answers 201 and
    /// returns its body.
    pub async fn event(&mut self) -> Value {
        let call = self
            .expect(
                Method::POST,
                "/apis/events.k8s.io/v1/namespaces/rackpong/events?",
            )
            .await;
        let body = call.body.clone();
        let mut created = body.clone();
        created["metadata"]["name"] = "rackpong-chaos-8xk2p".into();
        call.answer(201, created.to_string());
        body
    }

    /// Fails if a request is waiting: call it once the operation under test
    /// has returned (its requests were all awaited), so nothing is in flight.
    pub fn assert_no_request(&mut self) {
        use futures::FutureExt;
        assert!(
            self.handle
                .next_request()
                .now_or_never()
                .flatten()
                .is_none(),
            "the client made an unexpected request"
        );
    }
}

/// A backend as the fault tests use it: own node pi5, broker node pi6.
pub fn fault_cluster() -> (K3sCluster, ApiServer) {
    let (client, api) = mock_client();
    let config = K3sConfig {
        own_node: Some("pi5".into()),
        protected_nodes: vec!["pi6".into()],
        instance: "rackpong-controller-5c8d7f9b6-k2m4x".into(),
        ..K3sConfig::default()
    };
    (K3sCluster::new(client, config), api)
}

/// Checks the parts of an Event that do not depend on the clock.
pub fn assert_event(ev: &serde_json::Value, reason: &str, action: &str, kind: &str, name: &str) {
    assert_eq!(ev["apiVersion"], "events.k8s.io/v1");
    assert_eq!(ev["kind"], "Event");
    assert_eq!(ev["metadata"]["generateName"], "rackpong-chaos-");
    assert_eq!(ev["metadata"]["namespace"], "rackpong");
    assert_eq!(ev["reason"], reason);
    assert_eq!(ev["action"], action);
    assert_eq!(ev["reportingController"], "rackpong.dev/controller");
    assert_eq!(
        ev["reportingInstance"],
        "rackpong-controller-5c8d7f9b6-k2m4x"
    );
    assert_eq!(ev["regarding"]["kind"], kind);
    assert_eq!(ev["regarding"]["name"], name);
    assert!(
        ev["eventTime"].as_str().is_some_and(|t| t.contains('T')),
        "{ev}"
    );
}
