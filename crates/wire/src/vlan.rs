//! IEEE 802.1Q / 802.1ad VLAN tags.
//!
//! In a tagged frame the Ethernet header's EtherType is the tag protocol identifier
//! (0x8100, or 0x88a8 for an outer QinQ tag). This view starts right after it: the
//! 2-byte tag control information (priority, drop eligible, VLAN id) and the
//! EtherType of what follows (another tag or the payload).

use crate::ethernet::EtherType;
use crate::{get_u16, put_u16, Error, Result};

/// Byte ranges of the tag fields.
mod field {
    pub const TCI: usize = 0;
    pub const ETHERTYPE: usize = 2;
    pub const PAYLOAD: usize = 4;
}

/// Length of the tag after the TPID (TCI + inner EtherType).
pub const HEADER_LEN: usize = field::PAYLOAD;

/// A view of a VLAN tag and what follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it; accessors panic if it is shorter than the tag.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer after checking that it holds the whole tag.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the buffer holds the whole tag.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The tag control information as one 16-bit value.
    pub fn tci(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::TCI)
    }

    /// The priority code point (802.1p class of service, 0-7).
    pub fn pcp(&self) -> u8 {
        (self.tci() >> 13) as u8
    }

    /// The drop eligible indicator.
    pub fn dei(&self) -> bool {
        self.tci() & 0x1000 != 0
    }

    /// The VLAN identifier (0-4095; 0 means priority-tagged only).
    pub fn vlan_id(&self) -> u16 {
        self.tci() & 0x0fff
    }

    /// The EtherType of what follows the tag.
    pub fn ethertype(&self) -> EtherType {
        EtherType(get_u16(self.buffer.as_ref(), field::ETHERTYPE))
    }

    /// Everything after the tag.
    pub fn payload(&self) -> &[u8] {
        crate::clamped(self.buffer.as_ref(), field::PAYLOAD, usize::MAX)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the whole tag control information.
    pub fn set_tci(&mut self, tci: u16) {
        put_u16(self.buffer.as_mut(), field::TCI, tci);
    }

    /// Sets the priority code point (the low 3 bits of `pcp`).
    pub fn set_pcp(&mut self, pcp: u8) {
        let tci = (self.tci() & 0x1fff) | ((pcp as u16 & 0x7) << 13);
        self.set_tci(tci);
    }

    /// Sets the drop eligible indicator.
    pub fn set_dei(&mut self, dei: bool) {
        let tci = (self.tci() & !0x1000) | if dei { 0x1000 } else { 0 };
        self.set_tci(tci);
    }

    /// Sets the VLAN identifier (the low 12 bits of `id`).
    pub fn set_vlan_id(&mut self, id: u16) {
        let tci = (self.tci() & 0xf000) | (id & 0x0fff);
        self.set_tci(tci);
    }

    /// Sets the EtherType of what follows.
    pub fn set_ethertype(&mut self, t: EtherType) {
        put_u16(self.buffer.as_mut(), field::ETHERTYPE, t.0);
    }

    /// The payload, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        crate::clamped_mut(self.buffer.as_mut(), field::PAYLOAD, usize::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_and_write() {
        // PCP 5, DEI 1, VID 0x00a (10), then IPv4.
        let bytes = [0xb0, 0x0a, 0x08, 0x00, 0x45];
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!((p.pcp(), p.dei(), p.vlan_id()), (5, true, 10));
        assert_eq!(p.ethertype(), EtherType::IPV4);
        assert_eq!(p.payload(), &[0x45]);

        let mut out = [0u8; 5];
        let mut q = Packet::new_unchecked(&mut out[..]);
        q.set_vlan_id(10);
        q.set_pcp(5);
        q.set_dei(true);
        q.set_ethertype(EtherType::IPV4);
        q.payload_mut()[0] = 0x45;
        assert_eq!(out, bytes);
        assert_eq!(Packet::new_checked(&bytes[..3]).unwrap_err(), Error::Truncated);
    }
}
