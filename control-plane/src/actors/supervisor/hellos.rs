//! Hellos recorded in batches. A hello waits only while the store records the batch before
//! it: at most [`IN_FLIGHT`] batches are in the store at once, and each takes every hello that
//! arrived meanwhile (up to [`MAX_BATCH`]). One agent saying hello is recorded at once, alone;
//! a fleet reconnecting after a restart shares a few transactions instead of one each.

use actix::prelude::*;

use super::Supervisor;
use crate::actors::supervisor_messages::AgentHello;
use crate::store::StoreError;
use crate::store::agents::{LinkAgent, LinkAgents, Linked};

/// Batches in the store at once: two keep the database busy while the Supervisor finishes the
/// last one, and leave the other store threads to commands and the API.
const IN_FLIGHT: usize = 2;

/// Hellos per transaction at most (each adds one row to the audit insert's parameters).
const MAX_BATCH: usize = 500;

/// A hello waiting for its batch, and where its answer goes.
pub(super) struct Waiting {
    hello: AgentHello,
    answer: tokio::sync::oneshot::Sender<Result<(), String>>,
}

/// The hellos not yet sent to the store (with what each records), and how many batches are
/// there.
#[derive(Default)]
pub(super) struct Hellos {
    waiting: Vec<(Waiting, LinkAgent)>,
    in_flight: usize,
}

/// The store recorded a batch: each hello with its outcome, in order.
#[derive(Message)]
#[rtype(result = "()")]
struct BatchRecorded(Vec<(Waiting, Result<Linked, StoreError>)>);

impl Supervisor {
    /// Queues a hello; its answer comes once its batch is recorded and finished.
    pub(super) fn queue_hello(
        &mut self,
        hello: AgentHello,
        link: LinkAgent,
        ctx: &mut Context<Self>,
    ) -> tokio::sync::oneshot::Receiver<Result<(), String>> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.hellos.waiting.push((Waiting { hello, answer }, link));
        self.send_batch(ctx);
        answered
    }

    /// Sends the waiting hellos to the store as one batch, if a batch may go now. The store
    /// call runs outside the Supervisor's context, which only gets the outcome as a message.
    fn send_batch(&mut self, ctx: &mut Context<Self>) {
        if self.hellos.in_flight >= IN_FLIGHT || self.hellos.waiting.is_empty() {
            return;
        }
        let take = self.hellos.waiting.len().min(MAX_BATCH);
        let (batch, links): (Vec<Waiting>, Vec<LinkAgent>) =
            self.hellos.waiting.drain(..take).unzip();
        self.hellos.in_flight += 1;
        let store = self.store.clone();
        let me = ctx.address();
        actix::spawn(async move {
            let recorded = match store.run(LinkAgents(links)).await {
                Ok(outcomes) => batch.into_iter().zip(outcomes).collect(),
                // Nothing of the batch was recorded: each agent is told and tries again.
                Err(e) => batch
                    .into_iter()
                    .map(|waiting| (waiting, Err(StoreError::Unavailable(e.to_string()))))
                    .collect(),
            };
            me.do_send(BatchRecorded(recorded));
        });
    }
}

impl Handler<BatchRecorded> for Supervisor {
    type Result = ();

    fn handle(&mut self, recorded: BatchRecorded, ctx: &mut Context<Self>) {
        self.hellos.in_flight -= 1;
        for (waiting, linked) in recorded.0 {
            let answer = self.finish_link(waiting.hello, linked, ctx);
            let _ = waiting.answer.send(answer);
        }
        self.send_batch(ctx);
    }
}
