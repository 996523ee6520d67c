//! Agents' answers recorded in batches, as hellos are: an answer waits only while the store
//! records the batches before it. At most [`IN_FLIGHT`] batches are in the store at once, and
//! each takes every answer that arrived meanwhile (up to [`MAX_BATCH`]), so one answer alone
//! is recorded at once, and a thousand a second share a few statements and commits.
//!
//! A command's actor waits for each answer to be recorded before it sends the next (an ack
//! before the completion), so the order of one command's answers is kept.

use actix::prelude::*;

use crate::store::StoreError;
use crate::store::StoreHandle;
use crate::store::commands::{RecordReply, ReplyEffect};
use crate::store::reply_batch::RecordReplies;

/// Batches in the store at once.
const IN_FLIGHT: usize = 2;

/// Answers per batch at most.
const MAX_BATCH: usize = 500;

/// Record this answer; the effect comes back once its batch is recorded.
#[derive(Message)]
#[rtype(result = "Result<ReplyEffect, StoreError>")]
pub struct RecordAnswer(pub RecordReply);

/// Records `reply` through `recorder`, and what it did.
pub async fn record(
    recorder: &Addr<ReplyRecorder>,
    reply: RecordReply,
) -> Result<ReplyEffect, StoreError> {
    recorder
        .send(RecordAnswer(reply))
        .await
        .unwrap_or_else(|e| Err(StoreError::Unavailable(e.to_string())))
}

type Answer = tokio::sync::oneshot::Sender<Result<ReplyEffect, StoreError>>;

/// The store recorded a batch: each answer's waiter with its outcome.
#[derive(Message)]
#[rtype(result = "()")]
struct BatchRecorded(Vec<(Answer, Result<ReplyEffect, StoreError>)>);

/// The actor.
pub struct ReplyRecorder {
    store: StoreHandle,
    waiting: Vec<(RecordReply, Answer)>,
    in_flight: usize,
}

impl ReplyRecorder {
    /// A recorder writing to `store`.
    pub fn new(store: StoreHandle) -> Self {
        ReplyRecorder {
            store,
            waiting: Vec::new(),
            in_flight: 0,
        }
    }

    /// Sends the waiting answers to the store as one batch, if a batch may go now.
    fn send_batch(&mut self, ctx: &mut Context<Self>) {
        if self.in_flight >= IN_FLIGHT || self.waiting.is_empty() {
            return;
        }
        let take = self.waiting.len().min(MAX_BATCH);
        let (replies, answers): (Vec<RecordReply>, Vec<Answer>) =
            self.waiting.drain(..take).unzip();
        self.in_flight += 1;
        let store = self.store.clone();
        let me = ctx.address();
        actix::spawn(async move {
            let recorded = match store.run(RecordReplies(replies)).await {
                Ok(outcomes) => answers.into_iter().zip(outcomes).collect(),
                Err(e) => answers
                    .into_iter()
                    .map(|answer| (answer, Err(StoreError::Unavailable(e.to_string()))))
                    .collect(),
            };
            me.do_send(BatchRecorded(recorded));
        });
    }
}

impl Actor for ReplyRecorder {
    type Context = Context<Self>;
}

impl Handler<RecordAnswer> for ReplyRecorder {
    type Result = ResponseFuture<Result<ReplyEffect, StoreError>>;

    fn handle(
        &mut self,
        RecordAnswer(reply): RecordAnswer,
        ctx: &mut Context<Self>,
    ) -> Self::Result {
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.waiting.push((reply, answer));
        self.send_batch(ctx);
        Box::pin(async move {
            answered
                .await
                .unwrap_or_else(|_| Err(StoreError::Unavailable("reply recorder stopped".into())))
        })
    }
}

impl Handler<BatchRecorded> for ReplyRecorder {
    type Result = ();

    fn handle(&mut self, BatchRecorded(recorded): BatchRecorded, ctx: &mut Context<Self>) {
        self.in_flight -= 1;
        for (answer, outcome) in recorded {
            let _ = answer.send(outcome);
        }
        self.send_batch(ctx);
    }
}
