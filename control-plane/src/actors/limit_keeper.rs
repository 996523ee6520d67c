//! The `LimitKeeper` actor: every replica heartbeat it stops the sessions that outlived their
//! template's idle timeout or maximum lifetime (`store::session_limits`) and hands their
//! `delete_session` commands to the Supervisor, which delivers them like any deletion.

use std::time::Duration;

use actix::prelude::*;

use super::supervisor::{Dispatch, Supervisor};
use crate::store::StoreHandle;
use crate::store::session_limits::EndOverdueSessions;

/// Sessions stopped per sweep at most; the rest wait for the next.
const BATCH: i64 = 100;

/// Looks for overdue sessions now (also sent by the timer).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SweepNow;

/// The actor.
pub struct LimitKeeper {
    store: StoreHandle,
    supervisor: Addr<Supervisor>,
    every: Duration,
    command_timeout: Duration,
    running: bool,
}

impl LimitKeeper {
    /// A keeper sweeping `every` (the replica heartbeat interval).
    pub fn new(
        store: StoreHandle,
        supervisor: Addr<Supervisor>,
        every: Duration,
        command_timeout: Duration,
    ) -> Self {
        LimitKeeper {
            store,
            supervisor,
            every,
            command_timeout,
            running: false,
        }
    }
}

impl Actor for LimitKeeper {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(self.every, |_, ctx| ctx.notify(SweepNow));
    }
}

impl Handler<SweepNow> for LimitKeeper {
    type Result = ();

    fn handle(&mut self, _: SweepNow, ctx: &mut Context<Self>) {
        if self.running {
            return;
        }
        self.running = true;
        let sweep = EndOverdueSessions {
            limit: BATCH,
            command_timeout: self.command_timeout,
        };
        let store = self.store.clone();
        async move { store.run(sweep).await }
            .into_actor(self)
            .map(|stopped, this, _| {
                this.running = false;
                match stopped {
                    Ok(commands) => {
                        if !commands.is_empty() {
                            log::info!(
                                "stopped {} sessions past their idle timeout or lifetime",
                                commands.len()
                            );
                        }
                        for command in commands {
                            this.supervisor.do_send(Dispatch(command));
                        }
                    }
                    Err(e) => log::warn!("session limits: {e}"),
                }
            })
            .wait(ctx);
    }
}
