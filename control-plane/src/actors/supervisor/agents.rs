//! The agent link: hello, messages, disconnects, liveness, removal.

use std::time::Instant;

use actix::prelude::*;
use actix_http::ws::CloseCode;
use streamspace_protocol::{
    AgentMessage, ControlMessage, DEFAULT_STREAM_WINDOW, PROTOCOL_VERSION, SessionReport,
};
use uuid::Uuid;

use super::Supervisor;
use super::registry::Link;
use crate::actors::batcher;
use crate::actors::command::{AgentReply, Deliver};
use crate::actors::link_messages::{CloseLink, Outgoing};
use crate::actors::supervisor_messages::{
    AgentDisconnected, AgentHello, AgentRefused, FromAgent, Seen,
};
use crate::model::AgentStatus;
use crate::store::StoreError;
use crate::store::agents::{LinkAgent, Linked, MarkConnected, RecordHeartbeats, SetAgentStatus};
use crate::store::audit::{NewAuditEntry, Record};
use crate::store::commands::{CommandRow, RecordReply, Reply};
use crate::store::sessions::{ApplyInventory, ApplySessionStatus, Reconciled};

/// An admin deleted the agent: close its link and drop its commands.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AgentRemoved(pub String);

/// An admin revoked credentials: close a link that authenticated with one of them.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CredentialsRevoked {
    /// The agent.
    pub agent_id: String,
    /// The revoked credentials.
    pub ids: Vec<Uuid>,
}

impl Supervisor {
    fn audit_agent(&self, action: &str, agent_id: &str, details: serde_json::Value) {
        self.store.spawn(Record(
            NewAuditEntry::by_agent(action, agent_id)
                .target("agent", agent_id)
                .details(details),
        ));
    }

    /// Moves an agent to `status` in the store, if the store still records `conn_id` for it;
    /// `offline` degrades its running sessions.
    fn record_status(&self, agent_id: &str, status: AgentStatus, conn_id: Option<String>) {
        log::info!(agent_id:% = agent_id; "agent {agent_id} is {status}");
        let store = self.store.clone();
        let agent_id = agent_id.to_owned();
        actix::spawn(async move {
            match store
                .run(SetAgentStatus {
                    agent_id: agent_id.clone(),
                    status,
                    conn_id,
                })
                .await
            {
                Ok(0) => {}
                Ok(n) => {
                    log::warn!(agent_id:% = agent_id; "agent {agent_id} offline: {n} sessions degraded")
                }
                Err(e) => {
                    log::error!(agent_id:% = agent_id; "agent {agent_id}: cannot record status {status}: {e}")
                }
            }
        });
    }

    /// Applies liveness: late heartbeats warn, silence past the timeout is offline.
    pub(super) fn sweep(&mut self) {
        let transitions = self.registry.sweep(
            Instant::now(),
            self.timing.heartbeat_interval,
            self.timing.agent_timeout,
        );
        for transition in transitions {
            if let Some(link) = transition.close {
                link.close.do_send(CloseLink {
                    code: CloseCode::Away,
                    reason: format!("no heartbeat for {}s", self.timing.agent_timeout.as_secs()),
                });
            }
            if transition.status == AgentStatus::Offline {
                self.audit_agent("agent_offline", &transition.agent_id, serde_json::json!({}));
            }
            self.record_status(&transition.agent_id, transition.status, transition.conn_id);
        }
    }

    fn route_reply(&mut self, agent_id: String, command_id: Uuid, reply: Reply) {
        match self.commands.get(&command_id) {
            Some((_, actor)) => actor.do_send(AgentReply { agent_id, reply }),
            None => {
                // Finished already (a duplicate) or never this agent's: the store decides.
                let replies = self.writes.replies.clone();
                actix::spawn(async move {
                    let query = RecordReply {
                        command_id,
                        agent_id: Some(agent_id.clone()),
                        reply,
                        known: None,
                    };
                    match batcher::submit(&replies, query).await {
                        Ok(effect) => {
                            log::debug!(agent_id:% = agent_id, command_id:% = command_id; "agent {agent_id}: late answer to {command_id}: {effect:?}")
                        }
                        Err(e) => log::error!(
                            agent_id:% = agent_id, command_id:% = command_id;
                            "agent {agent_id}: cannot record answer to {command_id}: {e}"
                        ),
                    }
                });
            }
        }
    }
}

impl Handler<AgentHello> for Supervisor {
    type Result = ResponseFuture<Result<(), String>>;

    fn handle(&mut self, hello: AgentHello, ctx: &mut Context<Self>) -> Self::Result {
        if self.draining {
            return Box::pin(std::future::ready(Err(
                "this control-plane replica is shutting down: reconnect".into(),
            )));
        }
        let mark = MarkConnected {
            agent_id: hello.agent_id.clone(),
            conn_id: hello.conn_id.clone(),
            credential_id: hello.credential_id,
            platform: hello.platform.clone(),
            region: hello.region.clone(),
            capacity: serde_json::to_value(&hello.capacity).unwrap_or_default(),
            replica_id: self.replica_id,
        };
        let audit = NewAuditEntry::by_agent("agent_connect", &hello.agent_id)
            .target("agent", &hello.agent_id)
            .details(serde_json::json!({
                "platform": hello.platform,
                "region": hello.region,
                "sessions": hello.sessions.as_ref().map_or(0, Vec::len),
                "inventory_error": hello.sessions.as_ref().err(),
            }));
        let inventory = match &hello.sessions {
            Ok(sessions) => Some((sessions.clone(), self.timing.command_timeout)),
            Err(why) => {
                log::warn!(
                    agent_id:% = hello.agent_id;
                    "agent {} cannot list its sessions ({why}); not reconciling",
                    hello.agent_id
                );
                None
            }
        };
        // Recorded with the hellos that arrive meanwhile (the link, the reconciliation and
        // what to redeliver): a fleet reconnecting after a restart shares a few transactions.
        // The wait runs outside this context, which only gets the outcome as a message:
        // actix polls every future of a context at each wake-up, and 10,000 hellos in flight
        // there cost quadratic time.
        let link = LinkAgent {
            mark,
            audit,
            inventory,
        };
        let (answer, answered) = tokio::sync::oneshot::channel();
        let (hellos, me) = (self.hellos.clone(), ctx.address());
        actix::spawn(async move {
            let linked = batcher::submit(&hellos, link).await;
            me.do_send(HelloRecorded {
                hello,
                linked,
                answer,
            });
        });
        Box::pin(async move {
            answered
                .await
                .unwrap_or_else(|_| Err("the control plane is shutting down: reconnect".into()))
        })
    }
}

/// The store recorded a hello's link (or refused it); the agent's answer goes to `answer`.
#[derive(Message)]
#[rtype(result = "()")]
struct HelloRecorded {
    hello: AgentHello,
    linked: Result<Linked, StoreError>,
    answer: tokio::sync::oneshot::Sender<Result<(), String>>,
}

impl Handler<HelloRecorded> for Supervisor {
    type Result = ();

    fn handle(&mut self, recorded: HelloRecorded, _: &mut Context<Self>) {
        let answer = self.finish_link(recorded.hello, recorded.linked);
        let _ = recorded.answer.send(answer);
    }
}

impl Supervisor {
    /// Finishes a hello whose link the store recorded (or refused): registers the link,
    /// welcomes the agent, acts on the reconciliation and redelivers its unfinished commands.
    fn finish_link(
        &mut self,
        hello: AgentHello,
        linked: Result<Linked, StoreError>,
    ) -> Result<(), String> {
        let linked = match linked {
            Ok(linked) => linked,
            Err(StoreError::Conflict(why)) => {
                log::warn!("{why}");
                return Err(why);
            }
            Err(e) => {
                log::error!(agent_id:% = hello.agent_id; "agent {}: cannot record connection: {e}", hello.agent_id);
                return Err(format!("agent {} is not registered", hello.agent_id));
            }
        };
        // Revoked while the hello was being recorded: the revocation found no link
        // to close, so the hello must not make one.
        if self.revoked.contains(&hello.credential_id) {
            return Err("credential revoked".into());
        }
        let link = Link {
            conn_id: hello.conn_id.clone(),
            credential_id: hello.credential_id,
            handle: hello.link.clone(),
        };
        if let Some(old) = self.registry.connect(&hello.agent_id, link, Instant::now()) {
            old.handle.close.do_send(CloseLink {
                code: CloseCode::Policy,
                reason: "replaced by a newer connection of the same agent".into(),
            });
        }
        hello
            .link
            .outgoing
            .do_send(Outgoing(ControlMessage::Welcome {
                protocol_version: PROTOCOL_VERSION,
                heartbeat_interval_ms: u64::try_from(self.timing.heartbeat_interval.as_millis())
                    .unwrap_or(u64::MAX),
                stream_window: DEFAULT_STREAM_WINDOW,
            }));
        if let Some(reconciled) = linked.reconciled {
            self.after_reconcile(&hello.agent_id, Ok(reconciled));
        }
        self.redeliver(&hello.conn_id, linked.unfinished);
        Ok(())
    }
}

impl Supervisor {
    /// Stamps the heartbeats gathered since the last time, in one statement.
    pub(super) fn record_heartbeats(&mut self) {
        if !self.beats.is_empty() {
            let beats = self.beats.drain().collect();
            self.store.spawn(RecordHeartbeats { beats });
        }
    }

    fn inventory_query(
        &self,
        agent_id: String,
        sessions: Vec<SessionReport>,
        as_of: chrono::DateTime<chrono::Utc>,
    ) -> ApplyInventory {
        ApplyInventory {
            agent_id,
            inventory: sessions,
            as_of,
            command_timeout: self.timing.command_timeout,
        }
    }

    /// Dispatches the deletions a reconciliation asked for.
    fn after_reconcile(&mut self, agent_id: &str, reconciled: Result<Reconciled, StoreError>) {
        match reconciled {
            Ok(reconciled) => {
                if !reconciled.changes.is_empty() {
                    log::info!(
                        agent_id:% = agent_id;
                        "agent {agent_id}: reconciled sessions {:?}",
                        reconciled.changes
                    );
                }
                for command in reconciled.cleanup {
                    log::warn!(
                        agent_id:% = agent_id, command_id:% = command.command_id;
                        "agent {agent_id} holds a session it should not; deleting it (command {})",
                        command.command_id
                    );
                    self.track(command);
                }
            }
            Err(e) => {
                log::error!(agent_id:% = agent_id; "agent {agent_id}: cannot reconcile sessions: {e}")
            }
        }
    }

    /// An `inventory` message: reconcile as on `hello`, nothing to redeliver.
    fn reconcile(
        &mut self,
        agent_id: String,
        sessions: Vec<SessionReport>,
        ctx: &mut Context<Self>,
    ) {
        let store = self.store.clone();
        let query = self.inventory_query(agent_id.clone(), sessions, chrono::Utc::now());
        async move { store.run(query).await }
            .into_actor(self)
            .map(move |reconciled, this, _| this.after_reconcile(&agent_id, reconciled))
            .spawn(ctx);
    }

    /// After `welcome`: resends what the agent has not answered.
    fn redeliver(&mut self, conn_id: &str, unfinished: Vec<CommandRow>) {
        for command in unfinished {
            match self.commands.get(&command.command_id) {
                Some((_, actor)) => actor.do_send(Deliver {
                    link: Some(conn_id.to_owned()),
                }),
                // Its actor starts by delivering.
                None => self.track(command),
            }
        }
    }
}

impl Handler<FromAgent> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: FromAgent, ctx: &mut Context<Self>) {
        if !self
            .registry
            .touch(&msg.agent_id, &msg.conn_id, Instant::now())
        {
            log::debug!(
                agent_id:% = msg.agent_id;
                "agent {}: message on a replaced connection ignored",
                msg.agent_id
            );
            return;
        }
        let agent_id = msg.agent_id;
        match msg.message {
            AgentMessage::Heartbeat { .. } => {
                if self.registry.set_status(&agent_id, AgentStatus::Online)
                    == Some(AgentStatus::Warning)
                {
                    log::info!(agent_id:% = agent_id; "agent {agent_id} is online again");
                }
                self.beats.insert(agent_id, msg.conn_id);
            }
            AgentMessage::Ack { command_id } => self.route_reply(agent_id, command_id, Reply::Ack),
            AgentMessage::Completed { command_id, result } => {
                self.route_reply(agent_id, command_id, Reply::Completed(result))
            }
            AgentMessage::Failed { command_id, error } => {
                self.route_reply(agent_id, command_id, Reply::Failed(error))
            }
            AgentMessage::SessionStatus {
                session_id,
                state,
                message,
            } => {
                let store = self.store.clone();
                actix::spawn(async move {
                    let report = SessionReport {
                        session_id,
                        state,
                        vnc: None,
                        message,
                    };
                    match store
                        .run(ApplySessionStatus {
                            agent_id: agent_id.clone(),
                            report,
                        })
                        .await
                    {
                        Ok(Some(state)) => {
                            log::info!(session_id:% = session_id, agent_id:% = agent_id; "session {session_id} is now {state} (agent {agent_id})")
                        }
                        Ok(None) => {}
                        Err(e) => {
                            log::error!(session_id:% = session_id; "session {session_id}: cannot apply status: {e}")
                        }
                    }
                });
            }
            AgentMessage::Inventory { sessions } => {
                self.reconcile(agent_id, sessions, ctx);
            }
            AgentMessage::Goodbye { reason } => {
                log::info!(agent_id:% = agent_id; "agent {agent_id} says goodbye: {reason}");
                self.audit_agent(
                    "agent_goodbye",
                    &agent_id,
                    serde_json::json!({ "reason": reason }),
                );
            }
            // Stream closes are routed by the agent's connection, which owns its streams.
            AgentMessage::Hello { .. }
            | AgentMessage::VncDisconnect { .. }
            | AgentMessage::Unknown => {}
        }
    }
}

impl Handler<Seen> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: Seen, _: &mut Context<Self>) {
        self.registry
            .touch(&msg.agent_id, &msg.conn_id, Instant::now());
    }
}

impl Handler<AgentDisconnected> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: AgentDisconnected, _: &mut Context<Self>) {
        if self.registry.disconnect(&msg.agent_id, &msg.conn_id) {
            self.link_lost(&msg.agent_id);
            self.audit_agent("agent_disconnect", &msg.agent_id, serde_json::json!({}));
            self.record_status(&msg.agent_id, AgentStatus::Warning, Some(msg.conn_id));
        }
    }
}

impl Handler<AgentRemoved> for Supervisor {
    type Result = ();

    fn handle(&mut self, AgentRemoved(agent_id): AgentRemoved, _: &mut Context<Self>) {
        if let Some(link) = self.registry.remove(&agent_id) {
            link.handle.close.do_send(CloseLink {
                code: CloseCode::Policy,
                reason: "agent deleted by an administrator".into(),
            });
        }
        // Its commands were deleted with it; their actors stop at their next step.
        self.stop_commands_of(&agent_id);
    }
}

impl Handler<CredentialsRevoked> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: CredentialsRevoked, _: &mut Context<Self>) {
        self.revoked.extend(msg.ids.iter().copied());
        if let Some(link) = self.registry.link(&msg.agent_id)
            && msg.ids.contains(&link.credential_id)
        {
            link.handle.close.do_send(CloseLink {
                code: CloseCode::Policy,
                reason: "credential revoked".into(),
            });
        }
    }
}

impl Handler<AgentRefused> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: AgentRefused, _: &mut Context<Self>) {
        self.audit_agent(
            "agent_refused",
            &msg.agent_id,
            serde_json::json!({ "reason": msg.reason }),
        );
        // A live, compatible link of the same agent outranks a stray old binary.
        if self.registry.link(&msg.agent_id).is_none() {
            let conn_id = self.registry.conn_id(&msg.agent_id);
            self.record_status(&msg.agent_id, AgentStatus::Error, conn_id);
        }
    }
}
