//! This process among the control-plane replicas on one database: it records itself with a
//! heartbeat, and listens (Postgres `LISTEN`) for what the other replicas announce, handing
//! each notice to the Supervisor. A dropped listening connection is re-established, and the
//! Supervisor told to catch up on what it may have missed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures_util::StreamExt;
use tokio_postgres::{AsyncMessage, NoTls};
use uuid::Uuid;

use super::supervisor_messages::ReplicaNotice;
use crate::store::StoreHandle;
use crate::store::replicas::{
    ACCESS_CHANNEL, COMMAND_DONE_CHANNEL, COMMANDS_CHANNEL, LINKS_CHANNEL, RemoveReplica,
    ReplicaBeat, USERS_CHANNEL, dead_after,
};

/// Wait before listening again after the connection dropped.
const RELISTEN_AFTER: Duration = Duration::from_secs(1);

/// This replica's identity.
#[derive(Debug, Clone)]
pub struct ReplicaIdentity {
    /// Chosen at start.
    pub id: Uuid,
    /// Where the other replicas reach it.
    pub address: String,
}

/// The actor.
pub struct ReplicaActor {
    me: ReplicaIdentity,
    store: StoreHandle,
    database_url: String,
    heartbeat: Duration,
    notices: Recipient<ReplicaNotice>,
    /// Whether the last heartbeats reached the database (readiness reads it).
    database_reachable: Arc<AtomicBool>,
    /// When a heartbeat last reached the database.
    last_recorded: Instant,
    /// Other live replicas, as of the last heartbeat that reached the database.
    peers: i64,
}

impl ReplicaActor {
    /// A replica recording itself in `store` every `heartbeat`.
    pub fn new(
        me: ReplicaIdentity,
        store: StoreHandle,
        database_url: String,
        heartbeat: Duration,
        notices: Recipient<ReplicaNotice>,
        database_reachable: Arc<AtomicBool>,
    ) -> Self {
        ReplicaActor {
            me,
            store,
            database_url,
            heartbeat,
            notices,
            database_reachable,
            last_recorded: Instant::now(),
            peers: 0,
        }
    }

    /// Records this replica; three beats without an answer and it is dead in the others'
    /// eyes, so it stops claiming to be ready and, when another replica can take them, lets
    /// go of its agents (alone, it keeps them: they could go nowhere better).
    fn beat(&mut self, ctx: &mut Context<Self>) {
        let (store, beat) = (
            self.store.clone(),
            ReplicaBeat {
                id: self.me.id,
                address: self.me.address.clone(),
                dead_after: dead_after(self.heartbeat),
            },
        );
        let within = self.heartbeat;
        async move { tokio::time::timeout(within, store.run(beat)).await }
            .into_actor(self)
            .map(|answer, this, _| {
                let reachable = this.database_reachable.load(Ordering::Relaxed);
                match answer {
                    Ok(Ok(peers)) => {
                        this.last_recorded = Instant::now();
                        this.peers = peers;
                        if !reachable {
                            log::info!("replica {}: the database answers again", this.me.id);
                            this.database_reachable.store(true, Ordering::Relaxed);
                        }
                    }
                    _ if reachable
                        && this.last_recorded.elapsed() >= dead_after(this.heartbeat) =>
                    {
                        this.database_reachable.store(false, Ordering::Relaxed);
                        // Alone, it keeps its agents: they could go nowhere better.
                        if this.peers > 0 {
                            this.notices.do_send(ReplicaNotice::DatabaseLost);
                        }
                    }
                    _ => {}
                }
            })
            .spawn(ctx);
    }
}

/// Stop: the row goes, so survivors claim this replica's agents at once.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Leave;

impl Actor for ReplicaActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.beat(ctx);
        ctx.run_interval(self.heartbeat, |this, ctx| this.beat(ctx));
        let (url, notices) = (self.database_url.clone(), self.notices.clone());
        ctx.spawn(listen(url, notices).into_actor(self));
    }
}

impl Handler<Leave> for ReplicaActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Leave, ctx: &mut Context<Self>) -> Self::Result {
        ctx.stop();
        let (store, id) = (self.store.clone(), self.me.id);
        Box::pin(async move {
            if let Err(e) = store.run(RemoveReplica(id)).await {
                log::warn!("replica {id}: cannot remove its record: {e}");
            }
        })
    }
}

/// Listens for the replicas' notifications for as long as the actor lives.
async fn listen(database_url: String, notices: Recipient<ReplicaNotice>) {
    loop {
        match tokio_postgres::connect(&database_url, NoTls).await {
            Ok((client, mut connection)) => {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                // The connection yields notifications only while it is polled.
                let driver = actix::spawn(async move {
                    let mut messages =
                        futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                    while let Some(message) = messages.next().await {
                        match message {
                            Ok(AsyncMessage::Notification(n)) => {
                                let _ = tx.send((n.channel().to_owned(), n.payload().to_owned()));
                            }
                            Ok(_) => {}
                            Err(e) => {
                                log::warn!("replica: listening connection failed: {e}");
                                break;
                            }
                        }
                    }
                });
                let listening = client
                    .batch_execute(&format!(
                        "LISTEN {COMMANDS_CHANNEL}; LISTEN {LINKS_CHANNEL}; \
                         LISTEN {COMMAND_DONE_CHANNEL}; LISTEN {USERS_CHANNEL}; \
                         LISTEN {ACCESS_CHANNEL}"
                    ))
                    .await;
                match listening {
                    Ok(()) => {
                        notices.do_send(ReplicaNotice::Resync);
                        while let Some((channel, payload)) = rx.recv().await {
                            if let Some(notice) = parse(&channel, &payload) {
                                notices.do_send(notice);
                            }
                        }
                    }
                    Err(e) => log::warn!("replica: cannot LISTEN: {e}"),
                }
                driver.abort();
            }
            Err(e) => log::warn!("replica: cannot connect to listen for notifications: {e}"),
        }
        tokio::time::sleep(RELISTEN_AFTER).await;
    }
}

/// A notification as a notice; `None` for one this version does not know.
pub fn parse(channel: &str, payload: &str) -> Option<ReplicaNotice> {
    match channel {
        COMMANDS_CHANNEL => Some(ReplicaNotice::CommandsPending(payload.to_owned())),
        LINKS_CHANNEL => {
            let (agent_id, replica) = payload.rsplit_once(' ')?;
            Some(ReplicaNotice::Linked {
                agent_id: agent_id.to_owned(),
                replica_id: replica.parse().ok()?,
            })
        }
        COMMAND_DONE_CHANNEL => payload.parse().ok().map(ReplicaNotice::CommandDone),
        USERS_CHANNEL => payload.parse().ok().map(ReplicaNotice::UserChanged),
        ACCESS_CHANNEL => {
            let (user, session) = match payload.split_once(' ') {
                Some((user, session)) => (user, Some(session.parse().ok()?)),
                None => (payload, None),
            };
            Some(ReplicaNotice::AccessEnded {
                user_id: user.parse().ok()?,
                session_id: session,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_become_notices_and_garbage_is_ignored() {
        let replica = Uuid::from_u128(5);
        assert_eq!(
            parse(LINKS_CHANNEL, &format!("k8s-1 {replica}")),
            Some(ReplicaNotice::Linked {
                agent_id: "k8s-1".into(),
                replica_id: replica
            })
        );
        assert_eq!(
            parse(COMMANDS_CHANNEL, "k8s-1"),
            Some(ReplicaNotice::CommandsPending("k8s-1".into()))
        );
        assert_eq!(
            parse(COMMAND_DONE_CHANNEL, &replica.to_string()),
            Some(ReplicaNotice::CommandDone(replica))
        );
        assert_eq!(parse(LINKS_CHANNEL, "no-replica"), None);
        assert_eq!(parse(COMMAND_DONE_CHANNEL, "x"), None);
        assert_eq!(
            parse(USERS_CHANNEL, &replica.to_string()),
            Some(ReplicaNotice::UserChanged(replica))
        );
        assert_eq!(parse(USERS_CHANNEL, "x"), None);
        let session = Uuid::from_u128(6);
        assert_eq!(
            parse(ACCESS_CHANNEL, &format!("{replica} {session}")),
            Some(ReplicaNotice::AccessEnded {
                user_id: replica,
                session_id: Some(session)
            })
        );
        assert_eq!(
            parse(ACCESS_CHANNEL, &replica.to_string()),
            Some(ReplicaNotice::AccessEnded {
                user_id: replica,
                session_id: None
            })
        );
        assert_eq!(parse(ACCESS_CHANNEL, &format!("{replica} x")), None);
        assert_eq!(parse("other", "x"), None);
    }
}
