//! MQTT over TLS (rustls + ring): the link trusts the CA of --mqtt-ca-file
//! and refuses a server its roots do not vouch for. A TLS-terminating proxy
//! (test certificate in tests/fixtures/tls) fronts the plain broker under test.

mod mqtt_support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mqtt_support::{Subscriber, WAIT, broker_addr, unique_rack};
use rackpong_agent::mqtt::{LinkConfig, MqttLink};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

fn tls_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

/// Terminates TLS and forwards to `target`; counts handshakes attempted.
async fn tls_proxy(target: SocketAddr) -> (SocketAddr, watch::Receiver<u64>) {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(tls_file("server.pem"))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(tls_file("server.key")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (attempts_tx, attempts) = watch::channel(0u64);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            attempts_tx.send_modify(|n| *n += 1);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                if let Ok(mut plain) = TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                }
            });
        }
    });
    (addr, attempts)
}

fn config(proxy: SocketAddr, rack: &str, ca_file: Option<PathBuf>) -> LinkConfig {
    LinkConfig {
        broker: format!("mqtts://{proxy}").parse().unwrap(),
        client_id: format!("{rack}-tls"),
        keepalive: Duration::from_secs(5),
        username: None,
        password: None,
        ca_file,
        status_topic: format!("{rack}/status"),
        buffer_capacity: 10,
    }
}

#[tokio::test]
async fn publishes_over_tls_trusting_the_given_ca() {
    let broker = broker_addr();
    let (proxy, _) = tls_proxy(broker).await;
    let rack = unique_rack("tls");
    let mut sub = Subscriber::start(broker, &format!("{rack}/#")).await;
    let link = MqttLink::start(config(proxy, &rack, Some(tls_file("ca.pem"))));
    link.publish(format!("{rack}/data"), "secret", false);
    assert_eq!(
        sub.next_on(&format!("{rack}/status")).await.text(),
        "online"
    );
    assert_eq!(sub.next_on(&format!("{rack}/data")).await.text(), "secret");
    link.shutdown(WAIT).await;
}

#[tokio::test]
async fn refuses_a_server_its_roots_do_not_trust_and_keeps_retrying() {
    let broker = broker_addr();
    let (proxy, mut attempts) = tls_proxy(broker).await;
    let rack = unique_rack("tlsbad");
    // The test CA is in no system store; the server certificate itself is not a CA.
    let link = MqttLink::start(config(proxy, &rack, Some(tls_file("server.pem"))));
    tokio::time::timeout(WAIT, attempts.wait_for(|n| *n >= 2))
        .await
        .expect("retried after the failed handshake")
        .unwrap();
    assert!(!*link.connected().borrow());
    assert!(link.counters().connection_failures >= 1);
    assert_eq!(link.counters().connects, 0);
}
