//! The fault proxy against a local echo server: it forwards both ways, a cut closes open and
//! new connections until restored, and a pause holds bytes until restored.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use sluice_testkit::FaultProxy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Generous bound for things that should happen at once.
const SOON: Duration = Duration::from_secs(10);

/// Echoes every connection back to itself.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut rx, mut tx) = conn.split();
                let _ = tokio::io::copy(&mut rx, &mut tx).await;
            });
        }
    });
    addr
}

async fn round_trip(conn: &mut TcpStream, msg: &[u8]) {
    conn.write_all(msg).await.unwrap();
    let mut back = vec![0; msg.len()];
    tokio::time::timeout(SOON, conn.read_exact(&mut back)).await.expect("echo within 10 s").unwrap();
    assert_eq!(back, msg);
}

/// True once the peer closed the connection (end of stream or a reset).
async fn is_closed(conn: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match tokio::time::timeout(SOON, conn.read(&mut byte)).await {
        Ok(Ok(0) | Err(_)) => true,
        Ok(Ok(_)) | Err(_) => false,
    }
}

#[tokio::test]
async fn forwards_both_ways() {
    let proxy = FaultProxy::start(echo_server().await);
    assert_eq!(proxy.addr().ip().to_string(), "127.0.0.1");
    let mut conn = TcpStream::connect(proxy.addr()).await.unwrap();
    round_trip(&mut conn, b"ping").await;
    // More than one buffer, written and read concurrently so neither side stalls.
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let (mut rx, mut tx) = conn.into_split();
    let expected = big.clone();
    let writer = tokio::spawn(async move { tx.write_all(&big).await.unwrap() });
    let mut back = vec![0; expected.len()];
    tokio::time::timeout(SOON, rx.read_exact(&mut back)).await.expect("1 MB echoed within 10 s").unwrap();
    writer.await.unwrap();
    assert!(back == expected, "the echoed megabyte differs");
}

#[tokio::test]
async fn cut_closes_open_and_new_connections_until_restored() {
    let proxy = FaultProxy::start(echo_server().await);
    let mut open = TcpStream::connect(proxy.addr()).await.unwrap();
    round_trip(&mut open, b"before").await;

    proxy.cut();
    assert!(is_closed(&mut open).await, "an open connection survived the cut");
    let mut new = TcpStream::connect(proxy.addr()).await.unwrap();
    let _ = new.write_all(b"lost").await;
    assert!(is_closed(&mut new).await, "a connection made during the cut was served");

    proxy.restore();
    let mut after = TcpStream::connect(proxy.addr()).await.unwrap();
    round_trip(&mut after, b"after").await;
}

#[tokio::test]
async fn pause_holds_bytes_until_restored() {
    let proxy = FaultProxy::start(echo_server().await);
    let mut conn = TcpStream::connect(proxy.addr()).await.unwrap();
    round_trip(&mut conn, b"one").await;

    proxy.pause();
    conn.write_all(b"two").await.unwrap();
    let mut back = [0u8; 3];
    // Proving that nothing arrives takes a wait; a short one suffices on loopback.
    let early = tokio::time::timeout(Duration::from_millis(300), conn.read_exact(&mut back)).await;
    assert!(early.is_err(), "bytes went through a paused proxy");

    proxy.restore();
    tokio::time::timeout(SOON, conn.read_exact(&mut back)).await.expect("held bytes delivered after restore").unwrap();
    assert_eq!(&back, b"two");
}

#[tokio::test]
async fn dropping_the_proxy_closes_its_connections() {
    let proxy = FaultProxy::start(echo_server().await);
    let mut conn = TcpStream::connect(proxy.addr()).await.unwrap();
    round_trip(&mut conn, b"x").await;
    drop(proxy);
    assert!(is_closed(&mut conn).await, "a connection outlived its proxy");
}
