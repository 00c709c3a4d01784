//! VRRP: [`packet`] encoding, the [`fsm`] state machine, Linux socket [`io`], tracked
//! objects ([`track`], [`process`]), the [`instance`] runner that ties them to the dataplane, and
//! [`sync`]: keepalived's `vrrp_sync_group` (members MASTER or BACKUP together).

pub mod fsm;
pub mod garp;
pub mod instance;
pub mod io;
pub mod packet;
pub mod process;
pub mod sync;
pub mod track;
