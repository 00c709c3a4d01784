//! What a [`crate::Node`] asks of the worker that owns the queues and the buffer pool.

use std::net::IpAddr;

use wire::EthernetAddress;

use crate::twin::TwinClass;

/// The worker's side of the frame logic: buffers and queues. None of these may block;
/// a full queue drops (the worker counts it when it flushes).
pub trait Io<B> {
    /// A new, empty buffer with room for a frame (`None`: the pool is empty).
    fn alloc(&mut self) -> Option<B>;
    /// A copy of `b` (for forward2kni; `None`: the pool is empty).
    fn copy(&mut self, b: &B) -> Option<B>;
    /// Queues a finished frame for transmission on `port`.
    fn transmit(&mut self, port: usize, b: B);
    /// Hands a frame received on `port` (or routed to a kni_host address of it) to the
    /// port's kernel twin, on the queue of its `class` (see [`crate::twin`]).
    fn up_to_twin(&mut self, port: usize, b: B, class: TwinClass);
    /// Hands a reply received on `port` to the worker `owner` that owns its local port
    /// ([`fnat::engine::EVERY_WORKER`]: a copy to each other worker).
    fn redirect(&mut self, owner: u16, port: usize, b: B);
    /// Whether the frames going through the node now were handed over by other workers.
    fn handed_over(&self) -> bool;
    /// A neighbour binding seen on the wire that the current table does not hold (for
    /// an unknown address: an answer, which the control thread learns only if someone
    /// asked); the control thread decides whether to learn it.
    fn seen_neighbour(&mut self, ip: IpAddr, mac: EthernetAddress, port: usize);
    /// The node is about to ask who has `ip` on `port`: its answer, wherever it lands,
    /// may be learned (the control thread learns no other new neighbour).
    fn asking_neighbour(&mut self, ip: IpAddr, port: usize);
}
