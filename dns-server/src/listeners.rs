//! UDP and TCP listeners. UDP runs on plain threads that block in
//! `recv_from` (no async machinery on the hot path). TCP runs on tokio with
//! caps on connections per client address, per network (IPv4 /24, IPv6 /56)
//! and in total; when the total is reached, the connection idle the longest
//! is closed to make room (RFC 7766 §6.2.3), so idle clients cannot lock
//! others out. Each connection has an idle timeout, a write timeout, a small
//! send buffer (what a client leaves unread is bounded) and a lifetime.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};

use crate::ServerState;
use crate::rrl::network_of;
use crate::wire::Transport;

/// Limits of the TCP listener.
#[derive(Debug, Clone, Copy)]
pub struct TcpLimits {
    /// Connections open at once, in total (then the longest-idle one is closed for a new one).
    pub max_connections: usize,
    /// Connections open at once from one client address.
    pub max_per_address: usize,
    /// Connections open at once from one network (IPv4 /24, IPv6 /56).
    pub max_per_network: usize,
    /// A connection that sends no query for this long is closed.
    pub idle_timeout: Duration,
    /// A connection whose client does not take a response within this long is closed.
    pub write_timeout: Duration,
    /// Any connection is closed after this long.
    pub max_lifetime: Duration,
    /// Kernel send buffer per connection: bounds what a client can leave unread.
    pub send_buffer_bytes: usize,
}

impl Default for TcpLimits {
    fn default() -> Self {
        TcpLimits {
            max_connections: 512,
            max_per_address: 16,
            max_per_network: 64,
            idle_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(5),
            max_lifetime: Duration::from_secs(120),
            send_buffer_bytes: 64 << 10,
        }
    }
}

/// Prefix lengths of the networks whose TCP connections are capped together.
const TCP_NETWORK_PREFIXES: (u8, u8) = (24, 56);

/// Counters of the listeners (exported as metrics).
#[derive(Debug, Default)]
pub struct ListenerStats {
    /// Requests that made the handler panic (answered with nothing).
    pub handler_panics: AtomicU64,
    /// TCP connections refused by the caps.
    pub tcp_refused: AtomicU64,
    /// Idle TCP connections closed to make room for a new one.
    pub tcp_evicted: AtomicU64,
    /// TCP connections closed because the client did not read its answers.
    pub tcp_write_timeouts: AtomicU64,
    /// TCP connections closed at the end of their lifetime.
    pub tcp_lifetime_ends: AtomicU64,
    /// UDP responses sent truncated (TC=1) by the rate limiter.
    pub rrl_slipped: AtomicU64,
    /// UDP responses not sent because of the rate limiter.
    pub rrl_dropped: AtomicU64,
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

/// One open TCP connection, as the connection table sees it.
#[derive(Debug)]
struct Conn {
    ip: IpAddr,
    network: IpAddr,
    /// When its last query arrived (or it was accepted), in ms since the listener started.
    last_active_ms: AtomicU64,
    /// Whether a response is being made or written (such a connection is not evicted).
    busy: AtomicBool,
    /// Woken when the connection is evicted.
    evicted: Notify,
}

/// Why a new connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Address,
    Network,
    Full,
}

/// An admitted connection: its id, its state, and the connection evicted for it.
type Admitted = (u64, Arc<Conn>, Option<Arc<Conn>>);

/// Open connections and their counts per address and network: at most
/// `max_connections` entries, so its size is bounded.
#[derive(Debug, Default)]
struct ConnTable {
    next_id: u64,
    open: HashMap<u64, Arc<Conn>>,
    per_address: HashMap<IpAddr, usize>,
    per_network: HashMap<IpAddr, usize>,
}

impl ConnTable {
    /// Admits a connection from `ip`, closing the longest-idle connection
    /// when the total is reached. Returns its id and the evicted connection.
    fn admit(&mut self, ip: IpAddr, limits: &TcpLimits, now_ms: u64) -> Result<Admitted, Refusal> {
        let network = network_of(ip, TCP_NETWORK_PREFIXES.0, TCP_NETWORK_PREFIXES.1);
        if self.per_address.get(&ip).copied().unwrap_or(0) >= limits.max_per_address {
            return Err(Refusal::Address);
        }
        if self.per_network.get(&network).copied().unwrap_or(0) >= limits.max_per_network {
            return Err(Refusal::Network);
        }
        let mut evicted = None;
        if self.open.len() >= limits.max_connections {
            let victim = self
                .open
                .iter()
                .filter(|(_, c)| !c.busy.load(Ordering::Relaxed))
                .min_by_key(|(id, c)| (c.last_active_ms.load(Ordering::Relaxed), **id))
                .map(|(id, _)| *id);
            let Some(conn) = victim.and_then(|id| self.remove(id)) else { return Err(Refusal::Full) };
            conn.evicted.notify_one();
            evicted = Some(conn);
        }
        let id = self.next_id;
        self.next_id += 1;
        let conn = Arc::new(Conn {
            ip,
            network,
            last_active_ms: AtomicU64::new(now_ms),
            busy: AtomicBool::new(false),
            evicted: Notify::new(),
        });
        self.open.insert(id, conn.clone());
        *self.per_address.entry(ip).or_insert(0) += 1;
        *self.per_network.entry(network).or_insert(0) += 1;
        Ok((id, conn, evicted))
    }

    /// Forgets a connection (None if it was already evicted).
    fn remove(&mut self, id: u64) -> Option<Arc<Conn>> {
        let conn = self.open.remove(&id)?;
        for (map, key) in [(&mut self.per_address, conn.ip), (&mut self.per_network, conn.network)] {
            if let Some(count) = map.get_mut(&key) {
                *count -= 1;
                if *count == 0 {
                    map.remove(&key);
                }
            }
        }
        Some(conn)
    }
}

/// Milliseconds since `start`.
fn millis_since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Accepts TCP connections until `shutdown` turns true; then closes every
/// open connection and waits for their tasks, so nothing is answered (or
/// counted for usage) after this returns.
pub async fn serve_tcp(
    listener: TcpListener,
    state: Arc<ServerState>,
    limits: TcpLimits,
    mut shutdown: watch::Receiver<bool>,
) {
    let start = Instant::now();
    let table: Arc<Mutex<ConnTable>> = Arc::default();
    let mut connections = tokio::task::JoinSet::new();
    loop {
        // Reap finished connection tasks (the set stays as big as the table).
        while connections.try_join_next().is_some() {}
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "tcp accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let ip = peer.ip().to_canonical();
        let admitted = match table.lock() {
            Ok(mut table) => table.admit(ip, &limits, millis_since(start)),
            Err(_) => Err(Refusal::Full),
        };
        let (id, conn) = match admitted {
            Ok((id, conn, evicted)) => {
                if let Some(evicted) = evicted {
                    state.stats.tcp_evicted.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(peer = %evicted.ip, "idle tcp connection closed to make room");
                }
                (id, conn)
            }
            Err(refusal) => {
                state.stats.tcp_refused.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%peer, ?refusal, "tcp connection refused");
                drop(stream);
                continue;
            }
        };
        let _ = socket2::SockRef::from(&stream).set_send_buffer_size(limits.send_buffer_bytes);
        let state = state.clone();
        let table = table.clone();
        connections.spawn(async move {
            let closed = tokio::select! {
                closed = serve_connection(stream, &conn, &state, &limits, start) => closed,
                _ = conn.evicted.notified() => Closed::Evicted,
                _ = tokio::time::sleep(limits.max_lifetime) => Closed::Lifetime,
            };
            let counter = match closed {
                Closed::WriteTimeout => Some(&state.stats.tcp_write_timeouts),
                Closed::Lifetime => Some(&state.stats.tcp_lifetime_ends),
                Closed::Panic => Some(&state.stats.handler_panics),
                Closed::Client | Closed::Evicted => None,
            };
            if let Some(counter) = counter {
                counter.fetch_add(1, Ordering::Relaxed);
            }
            if let Ok(mut table) = table.lock() {
                table.remove(id);
            }
        });
    }
    // A task is aborted only at an await point, never between answering a
    // query and counting it.
    connections.abort_all();
    while connections.join_next().await.is_some() {}
}

/// Why a connection ended.
enum Closed {
    /// The client closed, went idle, sent a bad frame, or the socket failed.
    Client,
    /// The client did not take a response within the write timeout.
    WriteTimeout,
    /// Evicted to make room.
    Evicted,
    /// Its lifetime ran out.
    Lifetime,
    /// The handler panicked.
    Panic,
}

/// Answers length-prefixed queries on one connection, in order (pipelining).
async fn serve_connection(
    mut stream: TcpStream,
    conn: &Conn,
    state: &ServerState,
    limits: &TcpLimits,
    start: Instant,
) -> Closed {
    let _ = stream.set_nodelay(true);
    let mut rng = SmallRng::from_os_rng();
    let mut buf = vec![0u8; 65_535];
    let idle = limits.idle_timeout;
    loop {
        conn.busy.store(false, Ordering::Relaxed);
        let len = match tokio::time::timeout(idle, stream.read_u16()).await {
            Ok(Ok(len)) => usize::from(len),
            _ => return Closed::Client,
        };
        if len == 0 {
            return Closed::Client;
        }
        match tokio::time::timeout(idle, stream.read_exact(&mut buf[..len])).await {
            Ok(Ok(_)) => {}
            _ => return Closed::Client,
        }
        conn.busy.store(true, Ordering::Relaxed);
        conn.last_active_ms.store(millis_since(start), Ordering::Relaxed);
        let packet = &buf[..len];
        let response =
            catch_unwind(AssertUnwindSafe(|| state.respond(packet, conn.ip, Transport::Tcp, &mut rng)));
        match response {
            Ok(Some(bytes)) => {
                let Ok(prefix) = u16::try_from(bytes.len()) else { return Closed::Client };
                let mut out = Vec::with_capacity(bytes.len() + 2);
                out.extend_from_slice(&prefix.to_be_bytes());
                out.extend_from_slice(&bytes);
                match tokio::time::timeout(limits.write_timeout, stream.write_all(&out)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return Closed::Client,
                    Err(_) => return Closed::WriteTimeout,
                }
            }
            Ok(None) => {}
            Err(_) => return Closed::Panic,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(total: usize, per_address: usize, per_network: usize) -> TcpLimits {
        TcpLimits {
            max_connections: total,
            max_per_address: per_address,
            max_per_network: per_network,
            ..TcpLimits::default()
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn caps_per_address_and_per_network() {
        let mut table = ConnTable::default();
        let l = limits(100, 2, 3);
        assert!(table.admit(ip("192.0.2.1"), &l, 0).is_ok());
        assert!(table.admit(ip("192.0.2.1"), &l, 0).is_ok());
        assert_eq!(table.admit(ip("192.0.2.1"), &l, 0).unwrap_err(), Refusal::Address);
        assert!(table.admit(ip("192.0.2.2"), &l, 0).is_ok());
        // Three from 192.0.2.0/24: a fourth address there is refused, another /24 is not.
        assert_eq!(table.admit(ip("192.0.2.3"), &l, 0).unwrap_err(), Refusal::Network);
        assert!(table.admit(ip("192.0.3.1"), &l, 0).is_ok());
        // IPv6: one /56, whatever the /64.
        let (first, _, _) = table.admit(ip("2001:db8:0:1::1"), &l, 0).unwrap();
        assert!(table.admit(ip("2001:db8:0:2::1"), &l, 0).is_ok());
        assert!(table.admit(ip("2001:db8:0:ff::1"), &l, 0).is_ok());
        assert_eq!(table.admit(ip("2001:db8:0:fe::1"), &l, 0).unwrap_err(), Refusal::Network);
        assert!(table.admit(ip("2001:db8:1::1"), &l, 0).is_ok());
        // Closing one frees its place, and the maps forget empty keys.
        table.remove(first);
        assert!(table.admit(ip("2001:db8:0:fe::1"), &l, 0).is_ok());
        let ids: Vec<u64> = table.open.keys().copied().collect();
        for id in ids {
            table.remove(id);
        }
        assert!(table.per_address.is_empty() && table.per_network.is_empty());
    }

    #[test]
    fn a_full_table_evicts_the_longest_idle_connection_never_a_busy_one() {
        let mut table = ConnTable::default();
        let l = limits(3, 10, 10);
        let (a, conn_a, _) = table.admit(ip("192.0.2.1"), &l, 100).unwrap();
        let (b, _, _) = table.admit(ip("192.0.2.2"), &l, 50).unwrap();
        let (_, conn_c, _) = table.admit(ip("192.0.2.3"), &l, 200).unwrap();
        // b is the longest idle: it goes.
        let (_, _, evicted) = table.admit(ip("198.51.100.1"), &l, 300).unwrap();
        assert_eq!(evicted.unwrap().ip, ip("192.0.2.2"));
        assert!(table.remove(b).is_none(), "already gone");
        assert_eq!(table.open.len(), 3);
        // a is busy (writing): c goes instead, though a is older.
        conn_a.busy.store(true, Ordering::Relaxed);
        let (_, _, evicted) = table.admit(ip("198.51.100.2"), &l, 400).unwrap();
        assert!(Arc::ptr_eq(&evicted.unwrap(), &conn_c));
        // Everything busy: refused.
        for conn in table.open.values() {
            conn.busy.store(true, Ordering::Relaxed);
        }
        assert_eq!(table.admit(ip("198.51.100.3"), &l, 500).unwrap_err(), Refusal::Full);
        assert!(table.open.contains_key(&a));
    }
}
