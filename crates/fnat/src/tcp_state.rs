//! The TCP connection state machine of IPVS, and the per-state timeouts.
//!
//! The balancer does not terminate TCP: it only watches the flags of the packets it
//! forwards, in both directions, to decide how long an idle connection is kept. The
//! transition table is IPVS's `tcp_states` (net/netfilter/ipvs/ip_vs_proto_tcp.c), which
//! DPVS also uses: *input* is client→real server, *output* is real server→client; the
//! event of a packet is RST, else SYN, else FIN, else ACK (a packet with none of these
//! leaves the state alone).
//!
//! A normal life, seen from the balancer: client SYN → `SYN_RECV`; the server's SYN-ACK
//! keeps `SYN_RECV`; the client's ACK → `ESTABLISHED`; client FIN → `CLOSE_WAIT`, server
//! FIN → `TIME_WAIT` (or server FIN first → `FIN_WAIT`, then client FIN → `TIME_WAIT`);
//! RST → `CLOSE`. Only `ESTABLISHED` counts as an *active* connection (ipvsadm's
//! ActiveConn); every other state, and every UDP connection, is *inactive* (InActConn).

use serde::{Deserialize, Serialize};

use crate::types::Millis;

/// IPVS's TCP connection states (same order and names as `IP_VS_TCP_S_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[repr(u8)]
pub enum TcpState {
    /// No packet seen yet (also the state of UDP connections).
    #[default]
    None = 0,
    /// Handshake done; the only *active* state.
    Established = 1,
    /// A SYN came from the server side.
    SynSent = 2,
    /// A SYN came from the client; waiting for the handshake to complete.
    SynRecv = 3,
    /// The server closed first.
    FinWait = 4,
    /// Both sides closed.
    TimeWait = 5,
    /// Reset, or closed before being established.
    Close = 6,
    /// The client closed first.
    CloseWait = 7,
    /// Waiting for the last ACK.
    LastAck = 8,
    /// Listening (unused by FullNAT; kept for IPVS parity).
    Listen = 9,
    /// SYN-ACK seen (unused by FullNAT; kept for IPVS parity).
    SynAck = 10,
}

/// The event a TCP packet's flags mean to the state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpEvent {
    /// SYN set (and no RST).
    Syn = 0,
    /// FIN set (no SYN, no RST).
    Fin = 1,
    /// ACK set (no SYN, FIN, RST).
    Ack = 2,
    /// RST set.
    Rst = 3,
}

/// Which way a packet goes through the balancer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Direction {
    /// Client → real server (arrives on the VIP).
    Input = 0,
    /// Real server → client (arrives on a LIP).
    Output = 1,
}

/// TCP flag bits as they sit in the 14th byte of the TCP header.
pub mod flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// ACK.
    pub const ACK: u8 = 0x10;
}

impl TcpEvent {
    /// The event of a packet with these TCP flags (IPVS's `tcp_state_idx`), or `None`
    /// when the packet carries none of RST, SYN, FIN, ACK.
    #[inline]
    pub fn from_flags(f: u8) -> Option<TcpEvent> {
        if f & flags::RST != 0 {
            Some(TcpEvent::Rst)
        } else if f & flags::SYN != 0 {
            Some(TcpEvent::Syn)
        } else if f & flags::FIN != 0 {
            Some(TcpEvent::Fin)
        } else if f & flags::ACK != 0 {
            Some(TcpEvent::Ack)
        } else {
            None
        }
    }
}

use TcpState::{
    Close as CL, CloseWait as CW, Established as ES, FinWait as FW, LastAck as LA, Listen as LI, None as NO,
    SynAck as SA, SynRecv as SR, SynSent as SS, TimeWait as TW,
};

/// IPVS's transition table: `[direction][event][state]`, but for a client's SYN on a
/// half-closed connection (FIN_WAIT, CLOSE_WAIT), which IPVS takes for a new
/// connection (SYN_RECV) and rvs leaves as it is, as on ESTABLISHED: a client cannot
/// reuse its port before its side of the connection ends (a reset, or its FIN acknowledged
/// and TIME_WAIT over, when the state here is CLOSE or TIME_WAIT), so such a SYN is a
/// forgery or a stray; taken for a restart it set up the number a forged FIN then
/// carried, and the next SYN reused the connection (another server, the old one's
/// transfer cut). The server answers it with a challenge ACK (RFC 5961 §4).
#[rustfmt::skip]
const TABLE: [[[TcpState; 11]; 4]; 2] = [
    // INPUT (client -> RS)
    [
        //     NO  ES  SS  SR  FW  TW  CL  CW  LA  LI  SA
        /*syn*/ [SR, ES, ES, SR, FW, SR, SR, CW, SR, SR, SR],
        /*fin*/ [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW],
        /*ack*/ [CL, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
        /*rst*/ [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR],
    ],
    // OUTPUT (RS -> client)
    [
        //     NO  ES  SS  SR  FW  TW  CL  CW  LA  LI  SA
        /*syn*/ [SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR],
        /*fin*/ [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
        /*ack*/ [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
        /*rst*/ [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
    ],
];

/// IPVS's input-only table (`tcp_states[2]`), for connections whose replies do not
/// pass the balancer (DR): `[event][state]`, with [`TABLE`]'s change: a client's SYN
/// on FIN_WAIT or CLOSE_WAIT leaves it.
#[rustfmt::skip]
const INPUT_ONLY: [[TcpState; 11]; 4] = [
    //     NO  ES  SS  SR  FW  TW  CL  CW  LA  LI  SA
    /*syn*/ [SR, ES, ES, SR, FW, SR, SR, CW, SR, SR, SR],
    /*fin*/ [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
    /*ack*/ [CL, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
    /*rst*/ [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
];

impl TcpState {
    /// All states, in IPVS order.
    pub const ALL: [TcpState; 11] = [NO, ES, SS, SR, FW, TW, CL, CW, LA, LI, SA];

    /// The state after a client packet with TCP `flags` on a connection whose replies
    /// do not pass the balancer (DR): IPVS's input-only table. The client's ACK of the
    /// handshake makes it ESTABLISHED, its FIN FIN_WAIT.
    #[inline]
    pub fn next_input_only(self, tcp_flags: u8) -> TcpState {
        match TcpEvent::from_flags(tcp_flags) {
            Some(ev) => INPUT_ONLY[ev as usize][self as usize],
            None => self,
        }
    }

    /// The state after a packet in `dir` with TCP `flags` (unchanged when the packet
    /// carries no SYN/FIN/ACK/RST).
    #[inline]
    pub fn next(self, dir: Direction, tcp_flags: u8) -> TcpState {
        match TcpEvent::from_flags(tcp_flags) {
            Some(ev) => TABLE[dir as usize][ev as usize][self as usize],
            None => self,
        }
    }

    /// Whether ipvsadm counts a connection in this state as active (ESTABLISHED only).
    #[inline]
    pub fn is_active(self) -> bool {
        self == ES
    }

    /// The name ipvsadm prints (`ESTABLISHED`, `SYN_RECV`, ...).
    pub fn name(self) -> &'static str {
        match self {
            NO => "NONE",
            ES => "ESTABLISHED",
            SS => "SYN_SENT",
            SR => "SYN_RECV",
            FW => "FIN_WAIT",
            TW => "TIME_WAIT",
            CL => "CLOSE",
            CW => "CLOSE_WAIT",
            LA => "LAST_ACK",
            LI => "LISTEN",
            SA => "SYNACK",
        }
    }

    /// The state from its `repr(u8)` value (as stored in a connection).
    #[inline]
    pub fn from_u8(v: u8) -> TcpState {
        *Self::ALL.get(v as usize).unwrap_or(&NO)
    }
}

/// The longest timeout honoured, in seconds (about 23 days): connections store their
/// expiry in 32-bit milliseconds (see [`crate::conn::MAX_EXPIRY_MS`]); longer values
/// are capped to this.
pub const MAX_TIMEOUT_S: u32 = 2_000_000;

/// Idle timeouts per state, in seconds (LVS defaults). A connection's expiry is pushed
/// to `now + timeout(state)` by every packet; it is freed when that passes.
///
/// `syn_recv` and `syn_sent` are 60 s as in the DOMAIN notes for LVS ("SYN 60 s").
/// DPVS uses 30 s (SYN_RECV) and 3 s (SYN_SENT) to shed SYN floods faster; lower them
/// here when the pool must survive floods (half-open connections hold a pool entry and
/// a local port until then).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Timeouts {
    /// NONE (2 s).
    pub none: u32,
    /// ESTABLISHED (900 s); `ipvsadm --set` first field.
    pub established: u32,
    /// SYN_SENT (60 s).
    pub syn_sent: u32,
    /// SYN_RECV (60 s): half-open connections.
    pub syn_recv: u32,
    /// FIN_WAIT (120 s); `ipvsadm --set` second field (tcpfin).
    pub fin_wait: u32,
    /// TIME_WAIT (120 s).
    pub time_wait: u32,
    /// CLOSE (10 s): after RST.
    pub close: u32,
    /// CLOSE_WAIT (60 s).
    pub close_wait: u32,
    /// LAST_ACK (30 s).
    pub last_ack: u32,
    /// LISTEN (120 s).
    pub listen: u32,
    /// SYNACK (120 s).
    pub synack: u32,
    /// Every UDP connection (300 s); `ipvsadm --set` third field.
    pub udp: u32,
    /// An ICMP echo mapping of a SNAT rule (60 s, RFC 5508's least; DPVS keeps 300).
    pub icmp: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            none: 2,
            established: 900,
            syn_sent: 60,
            syn_recv: 60,
            fin_wait: 120,
            time_wait: 120,
            close: 10,
            close_wait: 60,
            last_ack: 30,
            listen: 120,
            synack: 120,
            udp: 300,
            icmp: 60,
        }
    }
}

impl Timeouts {
    /// The idle timeout of a TCP state, in seconds.
    #[inline]
    pub fn tcp_secs(&self, s: TcpState) -> u32 {
        match s {
            NO => self.none,
            ES => self.established,
            SS => self.syn_sent,
            SR => self.syn_recv,
            FW => self.fin_wait,
            TW => self.time_wait,
            CL => self.close,
            CW => self.close_wait,
            LA => self.last_ack,
            LI => self.listen,
            SA => self.synack,
        }
    }

    /// The idle timeout of a TCP state, in milliseconds (capped at [`MAX_TIMEOUT_S`]).
    #[inline]
    pub fn tcp(&self, s: TcpState) -> Millis {
        self.tcp_secs(s).min(MAX_TIMEOUT_S) as Millis * 1000
    }

    /// The UDP idle timeout, in milliseconds (capped at [`MAX_TIMEOUT_S`]).
    #[inline]
    pub fn udp_ms(&self) -> Millis {
        self.udp.min(MAX_TIMEOUT_S) as Millis * 1000
    }

    /// The ICMP echo mapping's idle timeout, in milliseconds (capped at [`MAX_TIMEOUT_S`]).
    #[inline]
    pub fn icmp_ms(&self) -> Millis {
        self.icmp.min(MAX_TIMEOUT_S) as Millis * 1000
    }

    /// `ipvsadm --set tcp tcpfin udp`: sets ESTABLISHED, FIN_WAIT and UDP; as in
    /// ipvsadm, a 0 leaves that value unchanged.
    pub fn set_ipvsadm(&mut self, tcp: u32, tcpfin: u32, udp: u32) {
        if tcp != 0 {
            self.established = tcp;
        }
        if tcpfin != 0 {
            self.fin_wait = tcpfin;
        }
        if udp != 0 {
            self.udp = udp;
        }
    }

    /// What `ipvsadm -L --timeout` prints: (tcp, tcpfin, udp).
    pub fn ipvsadm(&self) -> (u32, u32, u32) {
        (self.established, self.fin_wait, self.udp)
    }
}

#[cfg(test)]
mod tests {
    use super::flags::*;
    use super::*;
    use Direction::{Input as I, Output as O};

    fn walk(steps: &[(Direction, u8)]) -> Vec<TcpState> {
        let mut s = NO;
        steps
            .iter()
            .map(|(d, f)| {
                s = s.next(*d, *f);
                s
            })
            .collect()
    }

    #[test]
    fn handshake_and_client_close() {
        assert_eq!(
            walk(&[(I, SYN), (O, SYN | ACK), (I, ACK), (I, ACK), (I, FIN | ACK), (O, ACK), (O, FIN | ACK), (I, ACK)]),
            vec![SR, SR, ES, ES, CW, CW, TW, TW]
        );
    }

    #[test]
    fn server_closes_first() {
        let s = walk(&[(I, SYN), (O, SYN | ACK), (I, ACK), (O, FIN | ACK)]);
        assert_eq!(s[3], FW);
        assert_eq!(FW.next(I, ACK), FW);
        assert_eq!(FW.next(I, FIN | ACK), TW);
    }

    #[test]
    fn resets_and_no_flags() {
        assert_eq!(ES.next(I, RST | ACK), CL);
        assert_eq!(ES.next(O, RST), CL);
        assert_eq!(SR.next(I, RST), SR, "IPVS ignores a client RST in SYN_RECV");
        assert_eq!(ES.next(I, 0), ES);
        assert_eq!(NO.next(I, ACK), CL, "an ACK without a connection closes");
    }

    #[test]
    fn input_only_follows_the_client_alone() {
        // DR: the server's SYN-ACK and FIN never pass the balancer.
        let mut s = NO;
        let seen: Vec<TcpState> = [SYN, ACK, ACK, FIN | ACK, ACK]
            .iter()
            .map(|f| {
                s = s.next_input_only(*f);
                s
            })
            .collect();
        assert_eq!(seen, vec![SR, ES, ES, FW, FW]);
        assert_eq!(FW.next_input_only(RST), CL);
        assert_eq!(SR.next_input_only(RST), SR, "a client RST in SYN_RECV is ignored here too");
        // Where the two tables differ: FIN from ESTABLISHED (CLOSE_WAIT needs the reply).
        assert_eq!(ES.next(I, FIN | ACK), CW);
        assert_eq!(ES.next_input_only(FIN | ACK), FW);
    }

    #[test]
    fn only_established_is_active() {
        for s in TcpState::ALL {
            assert_eq!(s.is_active(), s == ES);
            assert_eq!(TcpState::from_u8(s as u8), s);
        }
    }

    #[test]
    fn timeouts_defaults_and_ipvsadm_set() {
        let mut t = Timeouts::default();
        assert_eq!(t.ipvsadm(), (900, 120, 300));
        assert_eq!(t.tcp(SR), 60_000);
        t.set_ipvsadm(600, 0, 30);
        assert_eq!(t.ipvsadm(), (600, 120, 30));
    }
}
