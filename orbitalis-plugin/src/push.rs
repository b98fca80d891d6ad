//! Pushing outputs without being asked (PROTOCOL.md Y5): the orbiter task publishes a view
//! of OPEN connections; `send_to_all` reads it and publishes directly.

use std::collections::HashMap;
use std::sync::Arc;

use busline::{Bus, Event, Identifier, Payload, Topic};
use orbitalis_core::Error;
use orbitalis_core::orbiter::usage::ConnStats;
use orbitalis_schemas::{Data, SchemaSpec};
use tokio::sync::watch;
use tokio::time::Instant;

/// An OPEN connection outputs may be pushed on.
#[derive(Clone, Debug)]
pub(crate) struct Outlet {
    pub topic: Topic,
    pub n_out: Arc<SchemaSpec>,
    pub stats: Arc<ConnStats>,
}

/// Per operation, its OPEN connections.
#[derive(Debug)]
pub(crate) struct PushView {
    pub running: bool,
    pub epoch: Instant,
    pub ops: HashMap<Identifier, Vec<Outlet>>,
}

impl Default for PushView {
    fn default() -> Self {
        PushView { running: false, epoch: Instant::now(), ops: HashMap::new() }
    }
}

/// Publishes outputs on every OPEN connection of an operation. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Pusher {
    pub me: Identifier,
    pub bus: Bus,
    pub view: watch::Receiver<Arc<PushView>>,
}

impl Pusher {
    /// Sends `value` uncorrelated on every OPEN connection of `operation` whose negotiated
    /// output accepts it; returns how many (0 is not an error).
    pub async fn send_to_all<T: Data>(&self, operation: &str, value: T) -> Result<usize, Error> {
        let payload = value.to_optional_payload()?;
        self.push(operation, payload).await
    }

    pub async fn push(&self, operation: &str, payload: Option<Payload>) -> Result<usize, Error> {
        let view = self.view.borrow().clone();
        if !view.running {
            return Err(Error::NotRunning);
        }
        let Some(outlets) = view.ops.get(operation) else {
            return Err(match Identifier::new(operation) {
                Ok(op) => Error::UnknownOperation(op),
                Err(e) => Error::InvalidArgument(e.to_string()),
            });
        };
        let fp = payload.as_ref().map(|p| p.fingerprint);
        let mut sent = 0;
        for o in outlets.iter().filter(|o| o.n_out.accepts(fp)) {
            let mut event = Event::new(self.me.clone());
            event.payload = payload.clone();
            self.bus.publish_owned(&o.topic, event).await?;
            o.stats.touch(view.epoch);
            sent += 1;
        }
        Ok(sent)
    }
}
