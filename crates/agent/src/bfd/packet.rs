//! BFD control packets on the wire (RFC 5880 section 4.1, without authentication), as
//! carried in UDP to port 3784 (RFC 5881).
//!
//! ```text
//!  0       version (3 bits, 1) | diagnostic (5 bits)
//!  1       state (2 bits) | P F C A D M
//!  2       detection multiplier
//!  3       length (24 without authentication)
//!  4..8    my discriminator
//!  8..12   your discriminator
//!  12..16  desired min TX interval (microseconds)
//!  16..20  required min RX interval (microseconds)
//!  20..24  required min echo RX interval (microseconds)
//! ```
//!
//! [`Packet`] is a view over a received buffer; [`Repr::parse`] applies RFC 5880's
//! reception checks (section 6.8.6, those that need no session) and keepalived 2.2.7's
//! (`bfd_check_packet`: the length field equals the datagram's, no Poll with Final, a
//! known diagnostic), each refusal named by a [`PacketError`] so it can be counted.

use serde::{Deserialize, Serialize};

/// The UDP port BFD control packets go to (single hop, RFC 5881).
pub const CONTROL_PORT: u16 = 3784;
/// Length of a control packet without authentication.
pub const LEN: usize = 24;

mod field {
    use core::ops::Range;
    pub const VERS_DIAG: usize = 0;
    pub const STATE_FLAGS: usize = 1;
    pub const DETECT_MULT: usize = 2;
    pub const LENGTH: usize = 3;
    pub const MY_DISCR: Range<usize> = 4..8;
    pub const YOUR_DISCR: Range<usize> = 8..12;
    pub const MIN_TX: Range<usize> = 12..16;
    pub const MIN_RX: Range<usize> = 16..20;
    pub const MIN_ECHO_RX: Range<usize> = 20..24;
}

const FLAG_POLL: u8 = 0x20;
const FLAG_FINAL: u8 = 0x10;
const FLAG_CPI: u8 = 0x08;
const FLAG_AUTH: u8 = 0x04;
const FLAG_DEMAND: u8 = 0x02;
const FLAG_MULTIPOINT: u8 = 0x01;

/// A session state (RFC 5880 section 4.1, "Sta").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum State {
    /// Administratively down: the sender holds the session down on purpose.
    AdminDown,
    /// Down.
    Down,
    /// Heard the other side, not yet known to be heard by it.
    Init,
    /// Both sides hear each other.
    Up,
}

impl State {
    fn from_bits(b: u8) -> State {
        match b & 3 {
            0 => State::AdminDown,
            1 => State::Down,
            2 => State::Init,
            _ => State::Up,
        }
    }

    fn bits(self) -> u8 {
        match self {
            State::AdminDown => 0,
            State::Down => 1,
            State::Init => 2,
            State::Up => 3,
        }
    }

    /// The name keepalived logs.
    pub fn name(self) -> &'static str {
        match self {
            State::AdminDown => "AdminDown",
            State::Down => "Down",
            State::Init => "Init",
            State::Up => "Up",
        }
    }
}

/// Why a session went down (RFC 5880 section 4.1, "Diag"); 0..=8 are defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Diag(pub u8);

impl Diag {
    /// No diagnostic.
    pub const NONE: Diag = Diag(0);
    /// Control detection time expired.
    pub const EXPIRED: Diag = Diag(1);
    /// Neighbor signaled session down.
    pub const NEIGHBOR_DOWN: Diag = Diag(3);
    /// Administratively down.
    pub const ADMIN_DOWN: Diag = Diag(7);
    /// The highest diagnostic RFC 5880 defines.
    const MAX: u8 = 8;

    /// The name keepalived logs.
    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "No Diagnostic",
            1 => "Control Detection Time Expired",
            2 => "Echo Function Failed",
            3 => "Neighbor Signaled Session Down",
            4 => "Forwarding Plane Reset",
            5 => "Path Down",
            6 => "Concatenated Path Down",
            7 => "Administratively Down",
            8 => "Reverse Concatenated Path Down",
            _ => "Unknown",
        }
    }
}

/// Why a received datagram is not a control packet rvs-agent acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error, Serialize, Deserialize)]
pub enum PacketError {
    /// Shorter than a control packet, or the length field is not the datagram's length.
    #[error("length")]
    Length,
    /// Not version 1.
    #[error("version")]
    Version,
    /// The detection multiplier is 0.
    #[error("zero detection multiplier")]
    ZeroMultiplier,
    /// The Multipoint bit is set.
    #[error("multipoint")]
    Multipoint,
    /// My discriminator is 0.
    #[error("zero discriminator")]
    ZeroDiscriminator,
    /// Your discriminator is 0 in a state other than Down or AdminDown.
    #[error("no discriminator of ours in state Init or Up")]
    NoYourDiscriminator,
    /// Poll and Final together.
    #[error("poll and final")]
    PollAndFinal,
    /// A diagnostic RFC 5880 does not define.
    #[error("unknown diagnostic")]
    Diagnostic,
    /// The Authentication bit: rvs-agent, as keepalived, runs sessions without it.
    #[error("authentication present")]
    Authentication,
}

/// A view of a control packet; accessors never panic after [`Packet::new_checked`].
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

fn be32(b: &[u8], r: core::ops::Range<usize>) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[r]);
    u32::from_be_bytes(a)
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer holding at least [`LEN`] bytes.
    pub fn new_checked(buffer: T) -> Result<Packet<T>, PacketError> {
        if buffer.as_ref().len() < LEN {
            return Err(PacketError::Length);
        }
        Ok(Packet { buffer })
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// The version (1).
    pub fn version(&self) -> u8 {
        self.b()[field::VERS_DIAG] >> 5
    }

    /// The diagnostic.
    pub fn diag(&self) -> Diag {
        Diag(self.b()[field::VERS_DIAG] & 0x1f)
    }

    /// The sender's session state.
    pub fn state(&self) -> State {
        State::from_bits(self.b()[field::STATE_FLAGS] >> 6)
    }

    fn flag(&self, f: u8) -> bool {
        self.b()[field::STATE_FLAGS] & f != 0
    }

    /// The detection multiplier.
    pub fn detect_mult(&self) -> u8 {
        self.b()[field::DETECT_MULT]
    }

    /// The length field.
    pub fn length(&self) -> u8 {
        self.b()[field::LENGTH]
    }

    /// My discriminator (the sender's).
    pub fn my_discr(&self) -> u32 {
        be32(self.b(), field::MY_DISCR)
    }

    /// Your discriminator (the receiver's, as the sender knows it; 0: not yet).
    pub fn your_discr(&self) -> u32 {
        be32(self.b(), field::YOUR_DISCR)
    }
}

/// A control packet's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repr {
    /// The diagnostic.
    pub diag: Diag,
    /// The sender's state.
    pub state: State,
    /// Poll: the sender asks for a packet with Final.
    pub poll: bool,
    /// Final: the answer to a Poll.
    pub final_: bool,
    /// Control plane independent.
    pub cpi: bool,
    /// Demand mode.
    pub demand: bool,
    /// Detection multiplier.
    pub detect_mult: u8,
    /// The sender's discriminator.
    pub my_discr: u32,
    /// The receiver's discriminator as the sender knows it (0: not yet).
    pub your_discr: u32,
    /// Desired min TX interval, microseconds.
    pub min_tx_us: u32,
    /// Required min RX interval, microseconds.
    pub min_rx_us: u32,
    /// Required min echo RX interval, microseconds (0: no echo).
    pub min_echo_rx_us: u32,
}

impl Repr {
    /// Parses and checks a whole datagram.
    pub fn parse(datagram: &[u8]) -> Result<Repr, PacketError> {
        let p = Packet::new_checked(datagram)?;
        if usize::from(p.length()) != datagram.len() {
            return Err(PacketError::Length);
        }
        if p.version() != 1 {
            return Err(PacketError::Version);
        }
        if p.flag(FLAG_AUTH) {
            return Err(PacketError::Authentication);
        }
        if p.detect_mult() == 0 {
            return Err(PacketError::ZeroMultiplier);
        }
        if p.flag(FLAG_MULTIPOINT) {
            return Err(PacketError::Multipoint);
        }
        if p.my_discr() == 0 {
            return Err(PacketError::ZeroDiscriminator);
        }
        if p.your_discr() == 0 && !matches!(p.state(), State::Down | State::AdminDown) {
            return Err(PacketError::NoYourDiscriminator);
        }
        if p.flag(FLAG_POLL) && p.flag(FLAG_FINAL) {
            return Err(PacketError::PollAndFinal);
        }
        if p.diag().0 > Diag::MAX {
            return Err(PacketError::Diagnostic);
        }
        let b = p.b();
        Ok(Repr {
            diag: p.diag(),
            state: p.state(),
            poll: p.flag(FLAG_POLL),
            final_: p.flag(FLAG_FINAL),
            cpi: p.flag(FLAG_CPI),
            demand: p.flag(FLAG_DEMAND),
            detect_mult: p.detect_mult(),
            my_discr: p.my_discr(),
            your_discr: p.your_discr(),
            min_tx_us: be32(b, field::MIN_TX),
            min_rx_us: be32(b, field::MIN_RX),
            min_echo_rx_us: be32(b, field::MIN_ECHO_RX),
        })
    }

    /// The packet's [`LEN`] bytes.
    pub fn emit(&self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        b[field::VERS_DIAG] = 1 << 5 | (self.diag.0 & 0x1f);
        let mut f = self.state.bits() << 6;
        for (on, bit) in
            [(self.poll, FLAG_POLL), (self.final_, FLAG_FINAL), (self.cpi, FLAG_CPI), (self.demand, FLAG_DEMAND)]
        {
            if on {
                f |= bit;
            }
        }
        b[field::STATE_FLAGS] = f;
        b[field::DETECT_MULT] = self.detect_mult;
        b[field::LENGTH] = LEN as u8;
        b[field::MY_DISCR].copy_from_slice(&self.my_discr.to_be_bytes());
        b[field::YOUR_DISCR].copy_from_slice(&self.your_discr.to_be_bytes());
        b[field::MIN_TX].copy_from_slice(&self.min_tx_us.to_be_bytes());
        b[field::MIN_RX].copy_from_slice(&self.min_rx_us.to_be_bytes());
        b[field::MIN_ECHO_RX].copy_from_slice(&self.min_echo_rx_us.to_be_bytes());
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What keepalived 2.2.7's `bfd_build_packet` sends for a session coming up with its
    /// defaults: Init, multiplier 5, discriminators 0x5f3c1a2b / 0x0badcafe, desired min
    /// TX 1 s (`idle_tx`, not yet Up), required min RX 10 ms, no echo.
    #[rustfmt::skip]
    const INIT: [u8; LEN] = [
        0x20, 0x80, 0x05, 0x18,
        0x5f, 0x3c, 0x1a, 0x2b,
        0x0b, 0xad, 0xca, 0xfe,
        0x00, 0x0f, 0x42, 0x40,
        0x00, 0x00, 0x27, 0x10,
        0x00, 0x00, 0x00, 0x00,
    ];

    fn init() -> Repr {
        Repr {
            diag: Diag::NONE,
            state: State::Init,
            poll: false,
            final_: false,
            cpi: false,
            demand: false,
            detect_mult: 5,
            my_discr: 0x5f3c_1a2b,
            your_discr: 0x0bad_cafe,
            min_tx_us: 1_000_000,
            min_rx_us: 10_000,
            min_echo_rx_us: 0,
        }
    }

    #[test]
    fn parses_and_emits_the_literal_bytes() {
        assert_eq!(Repr::parse(&INIT), Ok(init()));
        assert_eq!(init().emit(), INIT);
        // Up with Poll, diagnostic "expired": byte 0 keeps version 1, byte 1 Up | P.
        let up = Repr { state: State::Up, poll: true, diag: Diag::EXPIRED, ..init() };
        let b = up.emit();
        assert_eq!(&b[..2], &[0x21, 0xe0]);
        assert_eq!(Repr::parse(&b), Ok(up));
        let down = Repr { state: State::Down, your_discr: 0, final_: true, ..init() };
        assert_eq!(down.emit()[1], 0x50);
        assert_eq!(Repr::parse(&down.emit()), Ok(down));
    }

    #[test]
    fn refuses_what_rfc_5880_and_keepalived_refuse() {
        let with = |at: usize, v: u8| {
            let mut b = INIT;
            b[at] = v;
            Repr::parse(&b)
        };
        assert_eq!(Repr::parse(&INIT[..23]), Err(PacketError::Length));
        let mut long = INIT.to_vec();
        long.push(0);
        assert_eq!(Repr::parse(&long), Err(PacketError::Length), "length field 24, datagram 25");
        assert_eq!(with(3, 26), Err(PacketError::Length));
        assert_eq!(with(0, 0x40), Err(PacketError::Version));
        assert_eq!(with(1, 0x84), Err(PacketError::Authentication));
        assert_eq!(with(2, 0), Err(PacketError::ZeroMultiplier));
        assert_eq!(with(1, 0x81), Err(PacketError::Multipoint));
        assert_eq!(with(1, 0xb0), Err(PacketError::PollAndFinal));
        assert_eq!(with(0, 0x29), Err(PacketError::Diagnostic));
        let mut b = INIT;
        b[4..8].fill(0);
        assert_eq!(Repr::parse(&b), Err(PacketError::ZeroDiscriminator));
        let mut b = INIT;
        b[8..12].fill(0);
        assert_eq!(Repr::parse(&b), Err(PacketError::NoYourDiscriminator), "Init without your discriminator");
        b[1] = 0x40;
        assert!(Repr::parse(&b).is_ok(), "Down without your discriminator is how a session starts");
        b[1] = 0x00;
        assert!(Repr::parse(&b).is_ok(), "AdminDown too");
    }
}
