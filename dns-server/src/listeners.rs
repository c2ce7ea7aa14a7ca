//! UDP and TCP listeners. UDP runs on plain threads that block in
//! `recv_from` (no async machinery on the hot path); TCP runs on tokio with a
//! cap on connections in total and per client address, and an idle timeout.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use crate::ServerState;
use crate::wire::Transport;

/// Limits of the TCP listener.
#[derive(Debug, Clone, Copy)]
pub struct TcpLimits {
    /// Connections open at once, in total.
    pub max_connections: usize,
    /// Connections open at once from one client address.
    pub max_per_client: usize,
    /// A connection idle this long is closed.
    pub idle_timeout: Duration,
}

impl Default for TcpLimits {
    fn default() -> Self {
        TcpLimits { max_connections: 512, max_per_client: 32, idle_timeout: Duration::from_secs(10) }
    }
}

/// Counters of the listeners (exported as metrics).
#[derive(Debug, Default)]
pub struct ListenerStats {
    /// Requests that made the handler panic (answered with nothing).
    pub handler_panics: AtomicU64,
    /// TCP connections refused by the caps.
    pub tcp_refused: AtomicU64,
}

/// Binds a UDP socket with large buffers.
pub fn bind_udp(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    let _ = socket.set_recv_buffer_size(4 << 20);
    let _ = socket.set_send_buffer_size(4 << 20);
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// Starts `workers` threads answering on `socket` until `stop` is set.
pub fn spawn_udp_workers(
    socket: &UdpSocket,
    state: Arc<ServerState>,
    workers: usize,
    stop: Arc<AtomicBool>,
) -> std::io::Result<Vec<JoinHandle<()>>> {
    let mut handles = Vec::with_capacity(workers);
    for i in 0..workers.max(1) {
        let socket = socket.try_clone()?;
        socket.set_read_timeout(Some(Duration::from_millis(200)))?;
        let state = state.clone();
        let stop = stop.clone();
        let handle = std::thread::Builder::new()
            .name(format!("dns-udp-{i}"))
            .spawn(move || udp_worker(socket, state, stop))?;
        handles.push(handle);
    }
    Ok(handles)
}

fn udp_worker(socket: UdpSocket, state: Arc<ServerState>, stop: Arc<AtomicBool>) {
    let mut rng = SmallRng::from_os_rng();
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        let (len, peer) = match socket.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(e) => {
                // ICMP errors surface here on some systems; keep serving.
                tracing::debug!(error = %e, "udp receive error");
                continue;
            }
        };
        if peer.port() == 0 || peer.ip().is_unspecified() {
            continue;
        }
        let packet = &buf[..len];
        let response = catch_unwind(AssertUnwindSafe(|| {
            state.respond(packet, peer.ip().to_canonical(), Transport::Udp, &mut rng)
        }));
        match response {
            Ok(Some(bytes)) => {
                if let Err(e) = socket.send_to(&bytes, peer) {
                    tracing::debug!(error = %e, %peer, "udp send failed");
                }
            }
            Ok(None) => {}
            Err(_) => {
                state.stats.handler_panics.fetch_add(1, Ordering::Relaxed);
                tracing::error!(%peer, "request handler panicked; request dropped");
            }
        }
    }
}

/// Accepts TCP connections until `shutdown` turns true.
pub async fn serve_tcp(
    listener: TcpListener,
    state: Arc<ServerState>,
    limits: TcpLimits,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let per_client: Arc<Mutex<HashMap<IpAddr, usize>>> = Arc::default();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "tcp accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            state.stats.tcp_refused.fetch_add(1, Ordering::Relaxed);
            drop(stream);
            continue;
        };
        let ip = peer.ip().to_canonical();
        {
            let Ok(mut counts) = per_client.lock() else { continue };
            let count = counts.entry(ip).or_insert(0);
            if *count >= limits.max_per_client {
                state.stats.tcp_refused.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            *count += 1;
        }
        let state = state.clone();
        let per_client = per_client.clone();
        tokio::spawn(async move {
            let _ = serve_connection(stream, ip, &state, limits.idle_timeout).await;
            drop(permit);
            if let Ok(mut counts) = per_client.lock()
                && let Some(count) = counts.get_mut(&ip)
            {
                *count -= 1;
                if *count == 0 {
                    counts.remove(&ip);
                }
            }
        });
    }
}

/// Answers length-prefixed queries on one connection, in order (pipelining).
async fn serve_connection(
    mut stream: TcpStream,
    peer: IpAddr,
    state: &ServerState,
    idle: Duration,
) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let mut rng = SmallRng::from_os_rng();
    let mut buf = vec![0u8; 65_535];
    loop {
        let len = match tokio::time::timeout(idle, stream.read_u16()).await {
            Ok(Ok(len)) => usize::from(len),
            _ => return Ok(()),
        };
        if len == 0 {
            return Ok(());
        }
        match tokio::time::timeout(idle, stream.read_exact(&mut buf[..len])).await {
            Ok(Ok(_)) => {}
            _ => return Ok(()),
        }
        let packet = &buf[..len];
        let response =
            catch_unwind(AssertUnwindSafe(|| state.respond(packet, peer, Transport::Tcp, &mut rng)));
        match response {
            Ok(Some(bytes)) => {
                let Ok(prefix) = u16::try_from(bytes.len()) else { return Ok(()) };
                let mut out = Vec::with_capacity(bytes.len() + 2);
                out.extend_from_slice(&prefix.to_be_bytes());
                out.extend_from_slice(&bytes);
                stream.write_all(&out).await?;
            }
            Ok(None) => {}
            Err(_) => {
                state.stats.handler_panics.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
        }
    }
}
