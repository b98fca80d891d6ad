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

#[cfg(test)]
mod tests {
    use busline::Identifier;

    use super::*;
    use crate::protocol::ProtocolMessage;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn golden_keepalive_of_protocol_2_4() {
        let datum = hex("0a6c6f7765720190a1b2000070008000000000000001e0d403020190a1b2c3d47e5f8a6b7c8d9e0f1a2b00");
        let k = Keepalive::decode(&datum, &Limits::default()).unwrap();
        assert_eq!(
            k,
            Keepalive {
                sender: Sender {
                    identifier: Identifier::new("lower").unwrap(),
                    incarnation: Uuid::parse_str("0190a1b2-0000-7000-8000-000000000001").unwrap(),
                    dead_after_ms: 30_000,
                },
                connections: vec![Uuid::parse_str("0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b").unwrap()],
            }
        );
        assert_eq!(k.encode().as_ref(), &datum[..]);
        assert_eq!(Keepalive::fingerprint().to_string(), "4b67a6371c956250");
    }

    #[test]
    fn arrays_in_several_blocks_decode() {
        let k = Keepalive {
            sender: Sender { identifier: Identifier::new("p").unwrap(), incarnation: Uuid::now_v7(), dead_after_ms: 0 },
            connections: vec![Uuid::new_v4(), Uuid::new_v4(), Uuid::now_v7()],
        };
        // Other encoders may split arrays into blocks, a negative count announcing the
        // block's size in bytes.
        let mut w = Writer::default();
        k.sender.write(&mut w);
        w.long(1);
        w.raw(k.connections[0].as_bytes());
        w.long(-2);
        w.long(32);
        w.raw(k.connections[1].as_bytes());
        w.raw(k.connections[2].as_bytes());
        w.long(0);
        assert_eq!(Keepalive::decode(&w.into_vec(), &Limits::default()).unwrap(), k);
    }
}
