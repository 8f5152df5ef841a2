//! The embedded broker's front door: a TCP relay between MQTT clients and
//! rumqttd. rumqttd never sets TCP_NODELAY, so a packet it writes right after
//! another one (a command just after the PUBACK of a health sample) waits for
//! the client's delayed ACK, up to ~40 ms. The relay acks rumqttd's segments
//! at once (TCP_QUICKACK after every read) and writes to the client with
//! TCP_NODELAY, so nothing waits. An end of stream or an error on one side
//! ends the other the same way, so a client that dies still costs its
//! connection at the broker (and fires its Last Will) as before.

use std::io;
use std::net::SocketAddr;

use socket2::SockRef;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// Serves `front` on a thread of its own (the broker's callers need not run
/// a tokio runtime), relaying every connection to rumqttd on `upstream`.
pub fn spawn(front: std::net::TcpListener, upstream: SocketAddr) -> io::Result<()> {
    front.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name(format!("rumqttd-relay-{upstream}"))
        .spawn(move || {
            runtime.block_on(async move {
                match TcpListener::from_std(front) {
                    Ok(listener) => accept(listener, upstream).await,
                    Err(e) => tracing::error!(error = %e, "broker relay cannot listen"),
                }
            });
        })?;
    Ok(())
}

async fn accept(listener: TcpListener, upstream: SocketAddr) {
    loop {
        match listener.accept().await {
            Ok((client, peer)) => {
                tokio::spawn(async move {
                    if let Err(e) = relay(client, upstream).await {
                        tracing::debug!(%peer, error = %e, "broker relay connection ended");
                    }
                });
            }
            // Out of descriptors, say: keep serving the connections we have.
            Err(e) => tracing::warn!(error = %e, "broker relay accept failed"),
        }
    }
}

async fn relay(client: TcpStream, upstream: SocketAddr) -> io::Result<()> {
    let broker = TcpStream::connect(upstream).await?;
    client.set_nodelay(true)?;
    broker.set_nodelay(true)?;
    let (client_rx, client_tx) = client.into_split();
    let (broker_rx, broker_tx) = broker.into_split();
    let up = pipe(client_rx, broker_tx, false);
    let down = pipe(broker_rx, client_tx, true);
    let (up, down) = tokio::join!(up, down);
    up.and(down)
}

/// Copies `from` into `to` until the end of `from`, then ends `to`'s writing
/// side. `quickack`: ack every segment read from `from` at once.
async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, quickack: bool) -> io::Result<()> {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = from.read(&mut buf).await?;
        if quickack {
            // Linux leaves quick-ack mode on its own; setting it again also
            // sends the ACK the kernel had scheduled for later.
            let _ = SockRef::from(from.as_ref()).set_tcp_quickack(true);
        }
        if n == 0 {
            return to.shutdown().await;
        }
        to.write_all(&buf[..n]).await?;
    }
}
