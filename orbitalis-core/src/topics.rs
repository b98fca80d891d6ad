//! Topic templates (PROTOCOL.md §3.2) and the topic part of receive check 6 (§3.3).
//!
//! Every topic is `{ns}.{kind}.{recipient}.{sender}[.{operation}.{connection}]`; topics are
//! derived from identifiers, never carried in messages, so no message can redirect traffic.

use busline::{Identifier, Namespace, Pattern, Topic};
use uuid::Uuid;

/// The kind token of a topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Core → all plugins: Discover.
    Discover,
    /// Plugin → core: Offer.
    Offer,
    /// Core → plugin: Request, Reject.
    Reply,
    /// Plugin → core: Confirm, NLA.
    Response,
    /// Any → any: Keepalive.
    Keepalive,
    /// Any → any: KeepaliveRequest.
    KeepaliveRequest,
    /// Connection end → other end: GracefulClose, GracelessClose.
    Close,
    /// Graceful-close receiver → initiator: CloseAck.
    CloseAck,
    /// Core → plugin: user inputs.
    In,
    /// Plugin → core: outputs and call replies.
    Out,
    /// Anyone → all or one: IntrospectionRequest.
    Introspect,
    /// Orbiter → requester: IntrospectionResponse.
    IntrospectReply,
}

impl Kind {
    /// Every kind, for parsing.
    pub const ALL: [Kind; 12] = [
        Kind::Discover,
        Kind::Offer,
        Kind::Reply,
        Kind::Response,
        Kind::Keepalive,
        Kind::KeepaliveRequest,
        Kind::Close,
        Kind::CloseAck,
        Kind::In,
        Kind::Out,
        Kind::Introspect,
        Kind::IntrospectReply,
    ];

    /// The token on the wire.
    pub const fn token(self) -> &'static str {
        match self {
            Kind::Discover => "discover",
            Kind::Offer => "offer",
            Kind::Reply => "reply",
            Kind::Response => "response",
            Kind::Keepalive => "keepalive",
            Kind::KeepaliveRequest => "keepalive-request",
            Kind::Close => "close",
            Kind::CloseAck => "close-ack",
            Kind::In => "in",
            Kind::Out => "out",
            Kind::Introspect => "introspect",
            Kind::IntrospectReply => "introspect-reply",
        }
    }

    fn from_token(t: &str) -> Option<Kind> {
        Some(match t {
            "discover" => Kind::Discover,
            "offer" => Kind::Offer,
            "reply" => Kind::Reply,
            "response" => Kind::Response,
            "keepalive" => Kind::Keepalive,
            "keepalive-request" => Kind::KeepaliveRequest,
            "close" => Kind::Close,
            "close-ack" => Kind::CloseAck,
            "in" => Kind::In,
            "out" => Kind::Out,
            "introspect" => Kind::Introspect,
            "introspect-reply" => Kind::IntrospectReply,
            _ => return None,
        })
    }

    /// Whether events of this kind carry user data (inputs, outputs).
    pub const fn is_data(self) -> bool {
        matches!(self, Kind::In | Kind::Out)
    }
}

/// The broadcast recipient token.
pub const ALL: &str = "_all";

/// A received topic, split and checked against its receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<'a> {
    /// The kind.
    pub kind: Kind,
    /// Whether the recipient is `_all`.
    pub broadcast: bool,
    /// The sender token (an identifier).
    pub sender: &'a str,
    /// Operation and connection tokens of data topics.
    pub data: Option<(&'a str, Uuid)>,
}

/// Why a received topic is not one this orbiter accepts (counter `unknown_topic`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicMismatch(pub &'static str);

/// Builds and parses the topics of one orbiter.
#[derive(Debug, Clone)]
pub struct Topics {
    ns: Namespace,
    me: Identifier,
}

impl Topics {
    /// The topics of orbiter `me` in namespace `ns`.
    pub fn new(ns: Namespace, me: Identifier) -> Self {
        Topics { ns, me }
    }

    /// The namespace.
    pub fn namespace(&self) -> &Namespace {
        &self.ns
    }

    /// This orbiter's identifier.
    pub fn me(&self) -> &Identifier {
        &self.me
    }

    fn topic(&self, parts: &[&str]) -> Topic {
        let mut s = String::with_capacity(self.ns.len() + parts.iter().map(|p| p.len() + 1).sum::<usize>());
        s.push_str(&self.ns);
        for p in parts {
            s.push('.');
            s.push_str(p);
        }
        Topic::new(&s).expect("identifiers and namespaces make valid topics")
    }

    fn pattern(&self, parts: &[&str]) -> Pattern {
        let mut s = String::from(self.ns.as_str());
        for p in parts {
            s.push('.');
            s.push_str(p);
        }
        Pattern::new(&s).expect("identifiers and namespaces make valid patterns")
    }

    /// `{ns}.discover._all.{me}`.
    pub fn discover(&self) -> Topic {
        self.topic(&[Kind::Discover.token(), ALL, &self.me])
    }

    /// `{ns}.introspect._all.{me}`, or to one target.
    pub fn introspect(&self, target: Option<&Identifier>) -> Topic {
        self.topic(&[Kind::Introspect.token(), target.map_or(ALL, |t| t.as_str()), &self.me])
    }

    /// `{ns}.{kind}.{to}.{me}` for a control kind.
    pub fn control(&self, kind: Kind, to: &Identifier) -> Topic {
        self.topic(&[kind.token(), to, &self.me])
    }

    /// The input topic of a connection: `{ns}.in.{plugin}.{core}.{operation}.{connection}`.
    pub fn input(&self, plugin: &str, core: &str, operation: &str, connection: &Uuid) -> Topic {
        let id = connection.hyphenated().to_string();
        self.topic(&[Kind::In.token(), plugin, core, operation, &id])
    }

    /// The output topic of a connection: `{ns}.out.{core}.{plugin}.{operation}.{connection}`.
    pub fn output(&self, core: &str, plugin: &str, operation: &str, connection: &Uuid) -> Topic {
        let id = connection.hyphenated().to_string();
        self.topic(&[Kind::Out.token(), core, plugin, operation, &id])
    }

    /// `{ns}.{kind}.{me}.*`: a control subscription.
    pub fn control_pattern(&self, kind: Kind) -> Pattern {
        self.pattern(&[kind.token(), &self.me, "*"])
    }

    /// `{ns}.{kind}._all.*`: a broadcast subscription (discover, introspect).
    pub fn broadcast_pattern(&self, kind: Kind) -> Pattern {
        self.pattern(&[kind.token(), ALL, "*"])
    }

    /// `{ns}.{kind}.{me}.>`: the data subscription (in for plugins, out for cores).
    pub fn data_pattern(&self, kind: Kind) -> Pattern {
        self.pattern(&[kind.token(), &self.me, ">"])
    }

    /// Splits a received topic and checks namespace, recipient and shape (check 6, less the
    /// role and connection checks that need state).
    pub fn parse<'a>(&self, topic: &'a str) -> Result<Parsed<'a>, TopicMismatch> {
        let rest = topic
            .strip_prefix(self.ns.as_str())
            .and_then(|r| r.strip_prefix('.'))
            .ok_or(TopicMismatch("another namespace"))?;
        let mut tokens = rest.split('.');
        let kind = tokens.next().and_then(Kind::from_token).ok_or(TopicMismatch("unknown kind"))?;
        let recipient = tokens.next().ok_or(TopicMismatch("no recipient"))?;
        let sender = tokens.next().ok_or(TopicMismatch("no sender"))?;
        let broadcast = recipient == ALL;
        if broadcast {
            if !matches!(kind, Kind::Discover | Kind::Introspect) {
                return Err(TopicMismatch("broadcast on a kind that is never broadcast"));
            }
        } else if recipient != self.me.as_str() {
            return Err(TopicMismatch("addressed to another orbiter"));
        }
        if busline::topic::identifier_error(sender).is_some() {
            return Err(TopicMismatch("sender token is not an identifier"));
        }
        let data = if kind.is_data() {
            let op = tokens.next().ok_or(TopicMismatch("no operation token"))?;
            let conn = tokens.next().ok_or(TopicMismatch("no connection token"))?;
            if busline::topic::identifier_error(op).is_some() {
                return Err(TopicMismatch("operation token is not an identifier"));
            }
            Some((op, parse_connection_token(conn).ok_or(TopicMismatch("bad connection token"))?))
        } else {
            None
        };
        if tokens.next().is_some() {
            return Err(TopicMismatch("too many tokens"));
        }
        Ok(Parsed { kind, broadcast, sender, data })
    }
}

/// A connection token: a hyphenated lowercase UUID.
fn parse_connection_token(s: &str) -> Option<Uuid> {
    if s.len() != 36 || s.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    Uuid::try_parse(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topics(me: &str) -> Topics {
        Topics::new(Namespace::new("ns.test").unwrap(), Identifier::new(me).unwrap())
    }

    #[test]
    fn templates_follow_the_protocol() {
        let home = topics("home");
        let conn = Uuid::parse_str("0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b").unwrap();
        assert_eq!(home.discover().as_str(), "ns.test.discover._all.home");
        assert_eq!(home.control(Kind::Reply, &Identifier::new("lower").unwrap()).as_str(), "ns.test.reply.lower.home");
        assert_eq!(
            home.input("lower", "home", "lowercase", &conn).as_str(),
            "ns.test.in.lower.home.lowercase.0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b"
        );
        assert_eq!(home.data_pattern(Kind::Out).as_str(), "ns.test.out.home.>");
        assert_eq!(home.control_pattern(Kind::KeepaliveRequest).as_str(), "ns.test.keepalive-request.home.*");
    }

    #[test]
    fn parse_checks_recipient_sender_and_shape() {
        let lower = topics("lower");
        let p = lower.parse("ns.test.in.lower.home.op.0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b").unwrap();
        assert_eq!((p.kind, p.sender, p.data.unwrap().0), (Kind::In, "home", "op"));
        assert!(lower.parse("ns.test.discover._all.home").unwrap().broadcast);
        for bad in [
            "other.discover._all.home",
            "ns.test.nope.lower.home",
            "ns.test.reply.upper.home",
            "ns.test.reply._all.home",
            "ns.test.reply.lower._x",
            "ns.test.reply.lower.home.extra",
            "ns.test.in.lower.home.op",
            "ns.test.in.lower.home.op.0190A1B2-C3D4-7E5F-8A6B-7C8D9E0F1A2B",
        ] {
            assert!(lower.parse(bad).is_err(), "{bad}");
        }
    }
}
