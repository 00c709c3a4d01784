//! VRRP: [`packet`] encoding, the [`fsm`] state machine, Linux socket [`io`], tracked
//! objects ([`track`]), and the [`instance`] runner that ties them to the dataplane.

pub mod fsm;
pub mod instance;
pub mod io;
pub mod packet;
pub mod track;
