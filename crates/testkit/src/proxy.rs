//! A TCP proxy that fails on demand, for fault tests.
//!
//! The real servers the tests use (moto's S3, MariaDB) cannot be told to drop their connections
//! or stop answering for a while, and a killed server loses its in-memory data (moto) or takes
//! seconds to come back. So a test points the client at a [`FaultProxy`] in front of the real
//! server instead, and cuts or pauses the link while the client is in the middle of its work:
//!
//! - [`FaultProxy::cut`] closes every open connection at once, and closes new ones as soon as
//!   they are accepted, until [`FaultProxy::restore`]: the server looks unreachable.
//! - [`FaultProxy::pause`] keeps connections open but forwards nothing (new ones are held too):
//!   the server looks hung.
//! - [`FaultProxy::restore`] forwards again (held bytes and connections go through).
//!
//! It listens on a free port of 127.0.0.1 only, and stops (closing everything) when dropped.
use std::io;
use std::net::{Ipv4Addr, SocketAddr};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::AbortHandle;

/// What the proxy does with the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Forward,
    Paused,
    Cut,
}

/// A loopback TCP proxy in front of `upstream`; see the module docs.
pub struct FaultProxy {
    addr: SocketAddr,
    mode: watch::Sender<Mode>,
    accept: AbortHandle,
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards every connection to `upstream`. Must be
    /// called inside a tokio runtime (the proxy runs on it).
    pub fn start(upstream: SocketAddr) -> Self {
        let std_listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a loopback port for the proxy");
        std_listener.set_nonblocking(true).expect("set the proxy listener non-blocking");
        let listener = TcpListener::from_std(std_listener).expect("register the proxy listener (inside a tokio runtime?)");
        let addr = listener.local_addr().expect("proxy listener address");
        let (mode, rx) = watch::channel(Mode::Forward);
        let accept = tokio::spawn(accept_loop(listener, upstream, rx)).abort_handle();
        Self { addr, mode, accept }
    }

    /// Where clients connect: 127.0.0.1 and [`FaultProxy::port`].
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Closes every open connection now and every new one on accept, until [`FaultProxy::restore`].
    pub fn cut(&self) {
        self.mode.send_replace(Mode::Cut);
    }

    /// Holds every connection (open and new) without forwarding a byte, until
    /// [`FaultProxy::restore`] or [`FaultProxy::cut`].
    pub fn pause(&self) {
        self.mode.send_replace(Mode::Paused);
    }

    /// Forwards again. Connections closed by a cut stay closed.
    pub fn restore(&self) {
        self.mode.send_replace(Mode::Forward);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        // Every connection task sees the cut (or the sender gone) and closes its sockets.
        self.mode.send_replace(Mode::Cut);
    }
}

async fn accept_loop(listener: TcpListener, upstream: SocketAddr, mode: watch::Receiver<Mode>) {
    loop {
        let Ok((client, _)) = listener.accept().await else { continue };
        if *mode.borrow() == Mode::Cut {
            drop(client);
            continue;
        }
        tokio::spawn(serve(client, upstream, mode.clone()));
    }
}

/// One proxied connection: connects upstream once forwarding is allowed, then pumps both ways
/// until both sides are done or the link is cut.
async fn serve(mut client: TcpStream, upstream: SocketAddr, mut mode: watch::Receiver<Mode>) {
    if forwarding(&mut mode).await.is_err() {
        return;
    }
    let Ok(mut server) = TcpStream::connect(upstream).await else { return };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_rx, mut client_tx) = client.split();
    let (mut server_rx, mut server_tx) = server.split();
    let up = pump(&mut client_rx, &mut server_tx, mode.clone());
    let down = pump(&mut server_rx, &mut client_tx, mode);
    // The first cut or error drops both sockets; a clean end of one direction waits for the other.
    let _ = tokio::try_join!(up, down);
}

/// Copies `from` to `to` while the mode allows it. `Err` on a cut or an I/O error.
async fn pump(
    from: &mut (impl AsyncReadExt + Unpin),
    to: &mut (impl AsyncWriteExt + Unpin),
    mut mode: watch::Receiver<Mode>,
) -> io::Result<()> {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        forwarding(&mut mode).await?;
        let n = tokio::select! {
            read = from.read(&mut buf) => read?,
            // A pause or cut while waiting for bytes: check again.
            changed = mode.changed() => { changed.map_err(|_| cut())?; continue; }
        };
        if n == 0 {
            return to.shutdown().await;
        }
        // Bytes read just before a pause are held until the link is restored.
        forwarding(&mut mode).await?;
        tokio::select! {
            written = to.write_all(&buf[..n]) => written?,
            () = until_cut(&mut mode) => return Err(cut()),
        }
    }
}

/// Returns once the mode is `Forward`; `Err` if it is (or becomes) `Cut` or the proxy is gone.
async fn forwarding(mode: &mut watch::Receiver<Mode>) -> io::Result<()> {
    loop {
        let now = *mode.borrow_and_update();
        match now {
            Mode::Forward => return Ok(()),
            Mode::Cut => return Err(cut()),
            Mode::Paused => mode.changed().await.map_err(|_| cut())?,
        }
    }
}

async fn until_cut(mode: &mut watch::Receiver<Mode>) {
    while *mode.borrow_and_update() != Mode::Cut {
        if mode.changed().await.is_err() {
            return;
        }
    }
}

fn cut() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "cut by the fault proxy")
}
