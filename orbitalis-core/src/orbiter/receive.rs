//! The control half of receiving (PROTOCOL.md §2.3 checks 6 and 8-11, then A2/A3): what a
//! control delivery must pass before any rule sees it. Every failure is counted and logged.

use std::ops::Range;

use busline::{Delivery, Identifier, Topic};
use orbitalis_schemas::protocol::{CloseReason, Control, ProtocolError, Sender};
use tokio::time::Instant;
use uuid::Uuid;

use super::acquaintance::Incarnation;
use super::base::Base;
use super::counters::Counter;
use super::events::OrbiterEvent;
use crate::topics::{Kind, Parsed};

/// A control message that passed every receive check.
#[derive(Debug)]
pub struct Received {
    pub from: Identifier,
    pub kind: Kind,
    pub broadcast: bool,
    pub msg: Control,
    pub correlation: Option<Uuid>,
}

/// A data topic's parse, as positions in the topic.
#[derive(Debug)]
pub struct DataRoute {
    topic: Topic,
    kind: Kind,
    sender: Range<usize>,
    operation: Range<usize>,
    connection: Uuid,
}

impl DataRoute {
    /// `None` when `parsed` is not a data topic's.
    fn new(topic: &Topic, kind: Kind, parsed: &Parsed<'_>) -> Option<Self> {
        let (operation, connection) = parsed.data?;
        let at = |token: &str| {
            let start = token.as_ptr() as usize - topic.as_ptr() as usize;
            start..start + token.len()
        };
        Some(DataRoute { topic: topic.clone(), kind, sender: at(parsed.sender), operation: at(operation), connection })
    }
}

/// Whether `msg` may travel on `kind` (check 8).
fn allowed_on(kind: Kind, msg: &Control) -> bool {
    matches!(
        (kind, msg),
        (Kind::Discover, Control::Discover(_))
            | (Kind::Offer, Control::Offer(_))
            | (Kind::Reply, Control::Request(_) | Control::Reject(_))
            | (Kind::Response, Control::Confirm(_) | Control::OperationNoLongerAvailable(_))
            | (Kind::Keepalive, Control::Keepalive(_))
            | (Kind::KeepaliveRequest, Control::KeepaliveRequest(_))
            | (Kind::Close, Control::GracefulClose(_) | Control::GracelessClose(_))
            | (Kind::CloseAck, Control::CloseAck(_))
            | (Kind::Introspect, Control::IntrospectionRequest(_))
            | (Kind::IntrospectReply, Control::IntrospectionResponse(_))
    )
}

impl Base {
    /// Runs checks 6 and 8-11 and A2/A3 on a control delivery. `accepts` says which kinds
    /// this role receives.
    pub fn receive_control(&mut self, d: Delivery, accepts: impl Fn(Kind) -> bool) -> Option<Received> {
        let parsed = match self.topics.parse(&d.topic) {
            Ok(p) if !p.kind.is_data() && accepts(p.kind) => p,
            Ok(_) => {
                self.drop_msg(Counter::unknown_topic, format_args!("{} is not a kind this role receives", d.topic));
                return None;
            }
            Err(m) => {
                self.drop_msg(Counter::unknown_topic, format_args!("{}: {}", d.topic, m.0));
                return None;
            }
        };
        if parsed.sender != d.event.publisher.as_str() {
            self.drop_msg(Counter::sender_mismatch, format_args!("{} published by {}", d.topic, d.event.publisher));
            return None;
        }
        let Some(payload) = &d.event.payload else {
            self.drop_msg(Counter::unexpected_message, format_args!("no payload on {}", d.topic));
            return None;
        };
        let msg = match Control::decode(payload, &self.schema_limits) {
            Ok(m) => m,
            Err(ProtocolError::UnknownFingerprint(fp)) => {
                self.drop_msg(Counter::unexpected_message, format_args!("unknown message {fp} on {}", d.topic));
                return None;
            }
            Err(e) => {
                self.drop_msg(Counter::invalid_message, format_args!("{e} on {}", d.topic));
                return None;
            }
        };
        if !allowed_on(parsed.kind, &msg) {
            self.drop_msg(
                Counter::unexpected_message,
                format_args!("{} not allowed on {}", msg.kind().name(), d.topic),
            );
            return None;
        }
        let introspective = matches!(parsed.kind, Kind::Introspect | Kind::IntrospectReply);
        if d.event.correlation_id.is_some() && !introspective {
            self.drop_msg(Counter::invalid_message, format_args!("correlation id on {}", d.topic));
            return None;
        }
        let Some(sender) = msg.sender() else {
            self.drop_msg(Counter::unexpected_message, format_args!("{} has no sender", msg.kind().name()));
            return None;
        };
        if sender.identifier != d.event.publisher {
            self.drop_msg(
                Counter::sender_mismatch,
                format_args!("{} claims to be {}", d.event.publisher, sender.identifier),
            );
            return None;
        }
        let from = d.event.publisher.clone();
        let incarnation = sender.incarnation;
        let dead_after_ms = sender.dead_after_ms;
        let now = Instant::now();
        let own_dead = self.timing.dead_after.unwrap_or_default();
        match self.peers.check(
            &from,
            incarnation,
            now,
            own_dead.max(self.timing.acquaintance_ttl),
            self.timing.pending_timeout,
        ) {
            Incarnation::Stale { collision } => {
                if collision {
                    self.drop_msg(
                        Counter::identifier_collision,
                        format_args!("two orbiters seem to share the identifier {from}: give replicas distinct ones"),
                    );
                }
                self.drop_msg(Counter::stale_incarnation, format_args!("older incarnation of {from}"));
                return None;
            }
            Incarnation::Restarted => {
                tracing::info!(target: "orbitalis", orbiter = %self.me(), remote = %from, "remote restarted");
                self.counters.incr(Counter::remotes_restarted);
                self.remote_gone(&from, CloseReason::PeerRestarted, false);
                self.emit(OrbiterEvent::RemoteRestarted(from.clone()));
            }
            Incarnation::Same | Incarnation::Unknown => {}
        }
        if !parsed.broadcast {
            self.seen(&from, Some(dead_after_ms), now);
        }
        Some(Received {
            from,
            kind: parsed.kind,
            broadcast: parsed.broadcast,
            msg,
            correlation: d.event.correlation_id,
        })
    }

    /// Check 6 for a data delivery of `kind`: the topic is this orbiter's and names its
    /// publisher as sender. Returns `(sender, operation, connection)` from the topic; whether
    /// that connection exists is the role's to check.
    pub fn data_route<'a>(&self, d: &'a Delivery, kind: Kind) -> Option<(&'a str, &'a str, Uuid)> {
        // Data mostly comes in runs on one connection: the last topic's parse is kept.
        let route = match self.last_data_route.take() {
            Some(r) if r.kind == kind && r.topic == d.topic => r,
            _ => match self.topics.parse(&d.topic) {
                Ok(p) if p.kind == kind && !p.broadcast => DataRoute::new(&d.topic, kind, &p)?,
                _ => {
                    self.drop_msg(
                        Counter::unknown_topic,
                        format_args!("{} is not a {} topic of this orbiter", d.topic, kind.token()),
                    );
                    return None;
                }
            },
        };
        let found = (d.topic.get(route.sender.clone())?, d.topic.get(route.operation.clone())?, route.connection);
        self.last_data_route.set(Some(route));
        if found.0 != d.event.publisher.as_str() {
            self.drop_msg(Counter::sender_mismatch, format_args!("{} published by {}", d.topic, d.event.publisher));
            return None;
        }
        Some(found)
    }

    /// A2: a valid message from `remote` addressed to this orbiter; control messages also
    /// record the remote's dead-after.
    pub fn seen(&mut self, remote: &str, dead_after_ms: Option<i64>, now: Instant) {
        if let Some(a) = self.peers.get_mut(remote) {
            a.last_seen = now;
            if let Some(ms) = dead_after_ms {
                a.dead_after = (ms > 0).then(|| std::time::Duration::from_millis(ms as u64));
            }
        }
    }

    /// A1: records a remote met through an Offer (core) or Request (plugin). `false` when
    /// every acquaintance slot is busy (`acquaintance_limit`).
    pub fn acquaint(&mut self, from: &Identifier, sender: &Sender) -> bool {
        if self.peers.get(from).is_some() {
            return true;
        }
        let now = Instant::now();
        let connections = &self.connections;
        let pending = &self.pending;
        let busy = |id: &str| connections.has_remote(id) || pending.has_remote(id);
        if !self.peers.create(from, sender.incarnation, now, busy) {
            self.drop_msg(Counter::acquaintance_limit, format_args!("no room to remember {from}"));
            return false;
        }
        self.seen(from, Some(sender.dead_after_ms), now);
        true
    }
}
