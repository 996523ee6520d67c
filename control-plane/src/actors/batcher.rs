//! Store calls made in batches (writes, and one read): a call waits only while the store runs
//! the batch before it. One batch at a time is in the store, and each takes every write that
//! arrived meanwhile (up to [`MAX_BATCH`]), so one write alone goes at once, and a thousand a
//! second share a few statements and commits.
//!
//! Used for agents' answers ([`RecordReplies`]), for marking commands sent ([`MarkSent`]), and
//! for agents connecting: their credentials ([`AuthenticateAgents`]) and their hellos
//! ([`LinkAgents`]), so a fleet reconnecting after a restart is authenticated in a few queries
//! and linked in a few transactions. A command's actor waits for each of its writes before the next (its delivery
//! before its answers, an ack before the completion), so one command's writes keep their order.

use actix::prelude::*;

use crate::store::StoreError;
use crate::store::agents::{LinkAgent, LinkAgents, Linked};
use crate::store::commands::{MarkSent, RecordReply, ReplyEffect};
use crate::store::credentials::{AuthenticateAgents, Credential};
use crate::store::reply_batch::RecordReplies;
use crate::store::{Query, StoreHandle};

/// Batches in the store at once, per batcher. Two kept the database busy while the batch before
/// finished, but each was half as big, and they waited on each other's rows: one gave
/// 760–806 creations/s with 4 clients against 688–730 with two, as many with 16 clients, and a
/// fleet's connecting and restart as fast (`streamspace-bench`, the two alternately).
const IN_FLIGHT: usize = 1;

/// Writes per batch at most (a batch of hellos adds a row to one audit insert's parameters
/// per hello).
const MAX_BATCH: usize = 500;

/// A store call made for many items at once.
pub trait Batch: Query<Output = Vec<Result<Self::Outcome, StoreError>>> + Sized {
    /// One write.
    type Item: Send + Unpin + 'static;
    /// What one write did.
    type Outcome: Send + Unpin + 'static;
    /// The call for these items; its outputs come in their order.
    fn of(items: Vec<Self::Item>) -> Self;
}

/// A batch call that is a tuple struct of its items: `Call(Item) -> Outcome`.
macro_rules! batch {
    ($call:ident($item:ty) -> $outcome:ty) => {
        impl Batch for $call {
            type Item = $item;
            type Outcome = $outcome;
            fn of(items: Vec<$item>) -> Self {
                $call(items)
            }
        }
    };
}

batch!(RecordReplies(RecordReply) -> ReplyEffect);
batch!(MarkSent(uuid::Uuid) -> ());
batch!(LinkAgents(LinkAgent) -> Linked);
// Each item is the SHA-256 of a presented token.
batch!(AuthenticateAgents(String) -> Option<Credential>);

/// Make this write; its outcome comes back once its batch is done.
#[derive(Message)]
#[rtype(result = "Result<B::Outcome, StoreError>")]
pub struct Submit<B: Batch>(pub B::Item);

type Answer<B> = tokio::sync::oneshot::Sender<Result<<B as Batch>::Outcome, StoreError>>;

/// A write's waiter with its outcome.
type Done<B> = (Answer<B>, Result<<B as Batch>::Outcome, StoreError>);

/// The store ran a batch.
#[derive(Message)]
#[rtype(result = "()")]
struct BatchDone<B: Batch>(Vec<Done<B>>);

/// The actor, one per kind of write.
pub struct Batcher<B: Batch> {
    store: StoreHandle,
    waiting: Vec<(B::Item, Answer<B>)>,
    in_flight: usize,
}

impl<B: Batch> Batcher<B> {
    /// A batcher writing to `store`.
    pub fn new(store: StoreHandle) -> Self {
        Batcher {
            store,
            waiting: Vec::new(),
            in_flight: 0,
        }
    }

    /// Sends the waiting writes to the store as one batch, if a batch may go now.
    fn send_batch(&mut self, ctx: &mut Context<Self>) {
        if self.in_flight >= IN_FLIGHT || self.waiting.is_empty() {
            return;
        }
        let take = self.waiting.len().min(MAX_BATCH);
        let (items, answers): (Vec<B::Item>, Vec<Answer<B>>) = self.waiting.drain(..take).unzip();
        self.in_flight += 1;
        let store = self.store.clone();
        let me = ctx.address();
        actix::spawn(async move {
            let done = match store.run(B::of(items)).await {
                Ok(outcomes) => answers.into_iter().zip(outcomes).collect(),
                Err(e) => answers
                    .into_iter()
                    .map(|answer| (answer, Err(StoreError::Unavailable(e.to_string()))))
                    .collect(),
            };
            me.do_send(BatchDone::<B>(done));
        });
    }
}

/// Makes `item`'s write through `batcher`, and what it did.
pub async fn submit<B: Batch>(
    batcher: &Addr<Batcher<B>>,
    item: B::Item,
) -> Result<B::Outcome, StoreError> {
    batcher
        .send(Submit::<B>(item))
        .await
        .unwrap_or_else(|e| Err(StoreError::Unavailable(e.to_string())))
}

impl<B: Batch> Actor for Batcher<B> {
    type Context = Context<Self>;
}

impl<B: Batch> Handler<Submit<B>> for Batcher<B> {
    type Result = ResponseFuture<Result<B::Outcome, StoreError>>;

    fn handle(&mut self, Submit(item): Submit<B>, ctx: &mut Context<Self>) -> Self::Result {
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.waiting.push((item, answer));
        self.send_batch(ctx);
        Box::pin(async move {
            answered
                .await
                .unwrap_or_else(|_| Err(StoreError::Unavailable("batcher stopped".into())))
        })
    }
}

impl<B: Batch> Handler<BatchDone<B>> for Batcher<B> {
    type Result = ();

    fn handle(&mut self, BatchDone(done): BatchDone<B>, ctx: &mut Context<Self>) {
        self.in_flight -= 1;
        for (answer, outcome) in done {
            let _ = answer.send(outcome);
        }
        self.send_batch(ctx);
    }
}

/// The batchers command actors write through.
#[derive(Clone)]
pub struct CommandWrites {
    /// Agents' answers.
    pub replies: Addr<Batcher<RecordReplies>>,
    /// Deliveries.
    pub sent: Addr<Batcher<MarkSent>>,
}

impl CommandWrites {
    /// Starts both batchers over `store`. Must run inside an actix system.
    pub fn start(store: &StoreHandle) -> Self {
        CommandWrites {
            replies: Batcher::new(store.clone()).start(),
            sent: Batcher::new(store.clone()).start(),
        }
    }
}
