//! Liveness and reconciliation (PROTOCOL.md §6.7): KeepaliveRequest, Keepalive.

use busline::codec::{Reader, Writer};
use uuid::Uuid;

use super::Sender;
use super::wire::{self, Read, Wire};
use crate::limits::{Limits, MAX_LIST};

/// A probe: "answer with a Keepalive" (K3), answered only with a connection or pending request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeepaliveRequest {
    /// The prober.
    pub sender: Sender,
}

impl Wire for KeepaliveRequest {
    const MIN_LEN: usize = Sender::MIN_LEN;

    fn write(&self, w: &mut Writer) {
        self.sender.write(w);
    }

    fn read(r: &mut Reader<'_>, limits: &Limits) -> Read<Self> {
        Ok(KeepaliveRequest { sender: Sender::read(r, limits)? })
    }
}

/// "I am alive", with the connections the sender holds with the recipient (K2, K6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keepalive {
    /// Who is alive.
    pub sender: Sender,
    /// The sender's OPEN and CLOSING connections with the recipient, 1,024 at most.
    pub connections: Vec<Uuid>,
}

impl Wire for Keepalive {
    const MIN_LEN: usize = Sender::MIN_LEN + 1;

    fn write(&self, w: &mut Writer) {
        self.sender.write(w);
        wire::write_list(w, &self.connections);
    }

    fn read(r: &mut Reader<'_>, limits: &Limits) -> Read<Self> {
        Ok(Keepalive { sender: Sender::read(r, limits)?, connections: wire::list(r, limits, MAX_LIST, "connections")? })
    }
}
