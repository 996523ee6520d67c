//! `sessions`: desktops, their placement and state.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use streamspace_protocol::{AgentSessionState, Command, ControlMessage, SessionReport};
use uuid::Uuid;

use super::command_rows::{CommandRow, deletions_in_flight, insert_command};
use super::schema::{agents, sessions, users};
use super::{Query, StoreError};
use crate::lifecycle;
use crate::model::SessionState;

/// A session as stored.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = sessions)]
pub struct Session {
    /// Id.
    pub id: Uuid,
    /// Owner.
    pub owner_id: Uuid,
    /// Template row, while it exists.
    #[serde(skip)]
    pub template_id: Option<Uuid>,
    /// Template name.
    #[serde(rename = "template")]
    pub template_name: String,
    /// Lifecycle state.
    #[schema(value_type = SessionState)]
    pub state: String,
    /// Why it is in that state.
    pub state_reason: Option<String>,
    /// `{"cpu": …, "memory": …}`.
    #[schema(value_type = crate::model::ResourceAmounts)]
    pub resources: serde_json::Value,
    /// Home on a volume that outlives the session.
    pub persistent_home: bool,
    /// The agent it was placed on.
    pub agent_id: Option<String>,
    /// Its platform.
    pub platform: String,
    /// Its region.
    pub region: Option<String>,
    /// Requested at.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// First running at.
    pub started_at: Option<DateTime<Utc>>,
    /// Terminated at.
    pub terminated_at: Option<DateTime<Utc>>,
    /// Its persistent home.
    pub home_id: Option<Uuid>,
    /// It stops after this many seconds without viewer input (from its template).
    pub idle_timeout_seconds: Option<i32>,
    /// It stops this many seconds after it started (from its template).
    pub max_lifetime_seconds: Option<i32>,
    /// When a viewer last gave input (keys, pointer, clipboard), or said "I'm still here".
    pub last_input_at: Option<DateTime<Utc>>,
    /// Its viewers' streams are recorded (from its template).
    pub recorded: bool,
    /// What its idle timeout does: `stop` or `hibernate` (from its template).
    #[schema(value_type = crate::model::IdleAction)]
    pub idle_action: String,
}

impl Session {
    /// The parsed state.
    pub fn state(&self) -> SessionState {
        self.state.parse().unwrap_or(SessionState::Failed)
    }
}

/// A session with its owner's name, as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SessionView {
    /// The row.
    #[serde(flatten)]
    pub session: Session,
    /// Owner's login name.
    pub owner: String,
    /// Liveness of the agent holding it (`online`, `warning`, …), so a viewer can say why a
    /// running desktop cannot be reached.
    #[schema(value_type = Option<crate::model::AgentStatus>)]
    pub agent_status: Option<String>,
}

/// What a move writes to the start and end times: the first start is kept, the end stamped.
/// `running` and `final_state` are SQL booleans: whether the new state is `running`, final.
/// (One rule for the typed updates and the raw ones.)
pub(super) fn stamps(running: &str, final_state: &str) -> (String, String) {
    (
        format!("CASE WHEN {running} THEN COALESCE(started_at, now()) ELSE started_at END"),
        format!("CASE WHEN {final_state} THEN now() ELSE terminated_at END"),
    )
}

/// What a move writes as the reason, as the SQL before and after the new reason (which may be
/// NULL): the new reason, except that a session stopped or hibernated for one (its idle
/// timeout, its lifetime) keeps it when it becomes `terminated` or `hibernated` without one.
/// `new_state` is the SQL of the new state's text.
pub(super) fn reason_rule(new_state: &str) -> (&'static str, String) {
    (
        "COALESCE(",
        format!(
            ", CASE WHEN ({new_state}, sessions.state) IN (('terminated', 'terminating'), \
             ('hibernated', 'hibernating')) THEN sessions.state_reason END)"
        ),
    )
}

/// One update statement per change, with [`stamps`] and [`reason_rule`]. (A macro, as each caller's filtered
/// target is its own type; the filters must stay on the updated rows themselves so that
/// Postgres checks them again after waiting for a row lock.)
macro_rules! move_session {
    ($conn:expr, $target:expr, $state:expr, $reason:expr) => {{
        use diesel::sql_types::{Nullable, Text, Timestamptz};
        let state: SessionState = $state;
        let sql_bool = |b: bool| if b { "TRUE" } else { "FALSE" };
        let (started, terminated) = stamps(
            sql_bool(state == SessionState::Running),
            sql_bool(state.is_final()),
        );
        let (before, after) = reason_rule(&format!("'{}'", state.as_str()));
        diesel::update($target)
            .set((
                sessions::state.eq(state.as_str()),
                sessions::state_reason.eq(diesel::dsl::sql::<Nullable<Text>>(before)
                    .bind::<Nullable<Text>, _>($reason)
                    .sql(&after)),
                sessions::started_at.eq(diesel::dsl::sql::<Nullable<Timestamptz>>(&started)),
                sessions::terminated_at.eq(diesel::dsl::sql::<Nullable<Timestamptz>>(&terminated)),
            ))
            .execute($conn)?
    }};
}

/// Moves a session to `state`, stamping start and end times.
pub(super) fn set_state(
    conn: &mut PgConnection,
    id: Uuid,
    state: SessionState,
    reason: Option<String>,
) -> Result<(), StoreError> {
    move_session!(conn, sessions::table.find(id), state, reason);
    Ok(())
}

/// Like [`set_state`], only while the session is `agent`'s and in one of `from`; whether it
/// moved.
pub(super) fn set_state_from(
    conn: &mut PgConnection,
    id: Uuid,
    agent: &str,
    from: &[SessionState],
    state: SessionState,
    reason: Option<String>,
) -> Result<bool, StoreError> {
    let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
    let target = sessions::table
        .find(id)
        .filter(sessions::agent_id.eq(agent))
        .filter(sessions::state.eq_any(from));
    Ok(move_session!(conn, target, state, reason) == 1)
}

/// A viewer gave input (or said "I'm still here"): the session's idle timeout starts again.
pub struct SessionInput(pub Uuid);

impl Query for SessionInput {
    type Output = ();
    fn run(self, conn: &mut PgConnection) -> Result<(), StoreError> {
        diesel::update(sessions::table.find(self.0))
            .set(sessions::last_input_at.eq(diesel::dsl::now))
            .execute(conn)?;
        Ok(())
    }
}

/// Filters and paging for listing sessions, newest first.
#[derive(Debug)]
pub struct ListSessions {
    /// Only this owner's (always set for non-admins).
    pub owner_id: Option<Uuid>,
    /// Only the sessions of the user with this login name.
    pub owner_name: Option<String>,
    /// Only in this state.
    pub state: Option<SessionState>,
    /// Only on this agent.
    pub agent_id: Option<String>,
    /// Only on this platform.
    pub platform: Option<String>,
    /// At most this many.
    pub limit: i64,
    /// Only sessions older than this one (the previous page's `next_before`).
    pub before: Option<Uuid>,
}

impl Query for ListSessions {
    type Output = Vec<SessionView>;
    fn run(self, conn: &mut PgConnection) -> Result<Vec<SessionView>, StoreError> {
        let mut query = sessions::table
            .inner_join(users::table)
            .left_join(agents::table.on(sessions::agent_id.eq(agents::agent_id.nullable())))
            .select((
                Session::as_select(),
                users::username,
                agents::status.nullable(),
            ))
            .order((sessions::created_at.desc(), sessions::id.desc()))
            .limit(self.limit)
            .into_boxed();
        if let Some(owner) = self.owner_id {
            query = query.filter(sessions::owner_id.eq(owner));
        }
        if let Some(name) = &self.owner_name {
            query = query.filter(users::username.eq(name));
        }
        if let Some(state) = self.state {
            query = query.filter(sessions::state.eq(state.as_str()));
        }
        if let Some(agent_id) = &self.agent_id {
            query = query.filter(sessions::agent_id.eq(agent_id));
        }
        if let Some(platform) = &self.platform {
            query = query.filter(sessions::platform.eq(platform));
        }
        page_before!(conn, query, self.before, sessions, created_at);
        Ok(query
            .load::<(Session, String, Option<String>)>(conn)?
            .into_iter()
            .map(|(session, owner, agent_status)| SessionView {
                session,
                owner,
                agent_status,
            })
            .collect())
    }
}

/// The session, its row locked for the rest of the transaction.
fn locked(conn: &mut PgConnection, id: Uuid) -> Result<Session, StoreError> {
    Ok(sessions::table
        .find(id)
        .select(Session::as_select())
        .for_update()
        .first(conn)?)
}

/// A deletion of `session_id` for `agent_id` to carry out, tied to the session row `tied_to`
/// (whose state its answer then moves), stored as `pending`.
pub(super) struct DeleteCommand<'a> {
    pub(super) agent_id: &'a str,
    pub(super) session_id: Uuid,
    pub(super) keep_home: bool,
    pub(super) tied_to: Option<Uuid>,
    pub(super) command_id: Uuid,
    pub(super) timeout: std::time::Duration,
}

impl DeleteCommand<'_> {
    pub(super) fn insert(self, conn: &mut PgConnection) -> Result<CommandRow, StoreError> {
        let message = ControlMessage::Command {
            command_id: self.command_id,
            command: Command::DeleteSession {
                session_id: self.session_id,
                keep_home: self.keep_home,
            },
        };
        insert_command(conn, self.agent_id, self.tied_to, &message, self.timeout)
    }
}

/// Result of [`RemoveEndedSession`].
pub enum Removal {
    /// Gone from the lists; send this cleanup command if there is one.
    Removed(Option<Box<CommandRow>>),
    /// It has not ended (any more): delete it the usual way.
    NotEnded,
}

/// Removes an ended session from the lists (the audit log keeps its story). One that failed
/// or was lost may still hold objects on its agent: a `delete_session` for them is stored in
/// the same transaction, tied to no session (the row goes now; the command outlives it).
pub struct RemoveEndedSession {
    /// The session.
    pub id: Uuid,
    /// Command id for the cleanup.
    pub command_id: Uuid,
    /// `COMMAND_TIMEOUT`.
    pub command_timeout: std::time::Duration,
    /// The caller's `session_remove` entry, written in the same transaction with the state
    /// the session ended in.
    pub audit: super::audit::NewAuditEntry,
}

impl Query for RemoveEndedSession {
    type Output = Removal;
    fn run(self, conn: &mut PgConnection) -> Result<Removal, StoreError> {
        conn.transaction(|conn| {
            let session = locked(conn, self.id)?;
            let state = session.state();
            if !state.is_final() {
                return Ok(Removal::NotEnded);
            }
            let cleanup = match &session.agent_id {
                Some(agent_id) if state != SessionState::Terminated => {
                    let command = DeleteCommand {
                        agent_id,
                        session_id: self.id,
                        keep_home: session.persistent_home,
                        tied_to: None,
                        command_id: self.command_id,
                        timeout: self.command_timeout,
                    };
                    Some(Box::new(command.insert(conn)?))
                }
                _ => None,
            };
            diesel::delete(sessions::table.find(self.id)).execute(conn)?;
            record(conn, self.audit, &session)?;
            Ok(Removal::Removed(cleanup))
        })
    }
}

/// One session with its owner's name.
pub struct SessionById(pub Uuid);

impl Query for SessionById {
    type Output = Option<SessionView>;
    fn run(self, conn: &mut PgConnection) -> Result<Option<SessionView>, StoreError> {
        Ok(sessions::table
            .inner_join(users::table)
            .left_join(agents::table.on(sessions::agent_id.eq(agents::agent_id.nullable())))
            .filter(sessions::id.eq(self.0))
            .select((
                Session::as_select(),
                users::username,
                agents::status.nullable(),
            ))
            .first::<(Session, String, Option<String>)>(conn)
            .optional()?
            .map(|(session, owner, agent_status)| SessionView {
                session,
                owner,
                agent_status,
            }))
    }
}

/// Result of [`DeleteSession`].
pub enum Deletion {
    /// Marked `terminating`; send this `delete_session` command.
    Requested {
        /// The session now.
        session: Box<Session>,
        /// Its `delete_session` command.
        command: Box<CommandRow>,
    },
    /// Nothing to ask an agent: it was already over, or no agent holds it.
    Finished(Box<Session>),
}

/// Asks for a session's deletion: `terminating` plus a persisted `delete_session` command.
pub struct DeleteSession {
    /// The session.
    pub id: Uuid,
    /// Command id for `delete_session`.
    pub command_id: Uuid,
    /// `COMMAND_TIMEOUT`.
    pub command_timeout: std::time::Duration,
    /// The caller's `session_delete` entry, written in the same transaction with the state the
    /// session is left in: one commit for the deletion and its record.
    pub audit: super::audit::NewAuditEntry,
}

impl Query for DeleteSession {
    type Output = Deletion;
    fn run(self, conn: &mut PgConnection) -> Result<Deletion, StoreError> {
        conn.transaction(|conn| {
            let deletion = self.delete(conn)?;
            let (Deletion::Requested { session, .. } | Deletion::Finished(session)) = &deletion;
            record(conn, self.audit, session)?;
            Ok(deletion)
        })
    }
}

/// Writes the caller's entry for a deletion or removal, with the state `session` is in, in
/// the caller's transaction.
fn record(
    conn: &mut PgConnection,
    audit: super::audit::NewAuditEntry,
    session: &Session,
) -> Result<(), StoreError> {
    super::audit::Record(audit.details(serde_json::json!({ "state": session.state }))).run(conn)
}

impl DeleteSession {
    /// The deletion itself, inside the transaction that also records it.
    fn delete(&self, conn: &mut PgConnection) -> Result<Deletion, StoreError> {
        let session = locked(conn, self.id)?;
        let state = session.state();
        let agent_id = match (&session.agent_id, state) {
            // A failed or lost session may still hold objects on its agent (a Pod that
            // never got ready, a claim): the agent is asked to remove them too.
            (_, SessionState::Terminated) | (None, _) if state.is_final() => {
                return Ok(Deletion::Finished(Box::new(session)));
            }
            (None, _) => {
                set_state(
                    conn,
                    self.id,
                    SessionState::Terminated,
                    Some("no agent held it".into()),
                )?;
                return Ok(Deletion::Finished(Box::new(reload(conn, self.id)?)));
            }
            (Some(agent_id), _) => agent_id.clone(),
        };
        set_state(conn, self.id, SessionState::Terminating, None)?;
        let command = DeleteCommand {
            agent_id: &agent_id,
            session_id: self.id,
            keep_home: session.persistent_home,
            tied_to: Some(self.id),
            command_id: self.command_id,
            timeout: self.command_timeout,
        }
        .insert(conn)?;
        Ok(Deletion::Requested {
            session: Box::new(reload(conn, self.id)?),
            command: Box::new(command),
        })
    }
}

pub(super) fn reload(conn: &mut PgConnection, id: Uuid) -> Result<Session, StoreError> {
    Ok(sessions::table
        .find(id)
        .select(Session::as_select())
        .first(conn)?)
}

/// Reconciles the sessions placed on an agent with the inventory it reported (`hello` or
/// `inventory`), and asks it to delete what it holds but should not: sessions that ended
/// while it was away (their `delete_session` timed out), belong to no one, or were never
/// placed on it.
pub struct ApplyInventory {
    /// The agent.
    pub agent_id: String,
    /// What it holds.
    pub inventory: Vec<SessionReport>,
    /// When the agent said hello: sessions changed since are newer than its inventory.
    pub as_of: DateTime<Utc>,
    /// `COMMAND_TIMEOUT`, for the cleanup commands.
    pub command_timeout: std::time::Duration,
}

/// What [`ApplyInventory`] did.
#[derive(Debug, Default)]
pub struct Reconciled {
    /// Sessions whose state changed.
    pub changes: Vec<(Uuid, SessionState)>,
    /// `delete_session` commands for sessions the agent should not hold, to dispatch.
    pub cleanup: Vec<CommandRow>,
}

impl Query for ApplyInventory {
    type Output = Reconciled;
    fn run(self, conn: &mut PgConnection) -> Result<Reconciled, StoreError> {
        conn.transaction(|conn| self.apply(conn))
    }
}

impl ApplyInventory {
    /// Reconciles inside the caller's transaction.
    pub(super) fn apply(&self, conn: &mut PgConnection) -> Result<Reconciled, StoreError> {
        {
            let placed: Vec<(Uuid, String, DateTime<Utc>)> = sessions::table
                .filter(sessions::agent_id.eq(&self.agent_id))
                .filter(sessions::state.eq_any(SessionState::active_names()))
                .select((sessions::id, sessions::state, sessions::updated_at))
                .for_update()
                .load(conn)?;
            // A session that changed after the hello (e.g. it became running through this very
            // link) is newer than the inventory: judging it by the inventory would be wrong.
            let comparable: Vec<(Uuid, SessionState)> = placed
                .iter()
                .filter(|(_, _, updated)| *updated <= self.as_of)
                .filter_map(|(id, state, _)| state.parse().ok().map(|s| (*id, s)))
                .collect();
            let mut reconciled = Reconciled::default();
            for (id, (state, reason)) in lifecycle::reconcile(&comparable, &self.inventory) {
                set_state(conn, id, state, reason)?;
                reconciled.changes.push((id, state));
            }
            let held: Vec<Uuid> = self
                .inventory
                .iter()
                .map(|r| r.session_id)
                .filter(|id| !placed.iter().any(|(p, _, _)| p == id))
                .collect();
            if held.is_empty() {
                // Nothing held beyond what is placed here (a fresh agent's hello, most often):
                // no more questions for the database.
                return Ok(reconciled);
            }
            let known: Vec<(Uuid, bool, Option<String>)> = sessions::table
                .filter(sessions::id.eq_any(&held))
                .select((sessions::id, sessions::persistent_home, sessions::agent_id))
                .load(conn)?;
            let deleting = deletions_in_flight(conn, &self.agent_id, &held)?;
            // A session of ours in transition on the agent (a command still creating or
            // deleting it) is judged by a later report, not cleaned up under that command.
            let in_transition = |id: &Uuid| {
                known.iter().any(|(k, _, _)| k == id)
                    && self.inventory.iter().any(|r| {
                        r.session_id == *id
                            && matches!(
                                r.state,
                                AgentSessionState::Starting | AgentSessionState::Stopping
                            )
                    })
            };
            for id in held
                .into_iter()
                .filter(|id| !deleting.contains(id) && !in_transition(id))
            {
                let row = known.iter().find(|(k, _, _)| *k == id);
                // A session we know nothing about keeps its home: its data may matter.
                let keep_home = row.is_none_or(|(_, persistent, _)| *persistent);
                // Tied to the session only when it is this agent's: the answer of an agent
                // holding another agent's session must not end that session.
                let tied_to = row
                    .filter(|(_, _, agent)| agent.as_deref() == Some(self.agent_id.as_str()))
                    .map(|(id, _, _)| *id);
                let command = DeleteCommand {
                    agent_id: &self.agent_id,
                    session_id: id,
                    keep_home,
                    tied_to,
                    command_id: Uuid::new_v4(),
                    timeout: self.command_timeout,
                };
                reconciled.cleanup.push(command.insert(conn)?);
            }
            Ok(reconciled)
        }
    }
}

/// Applies a `session_status` message; ignored unless the session is placed on that agent.
pub struct ApplySessionStatus {
    /// The reporting agent.
    pub agent_id: String,
    /// What it reported.
    pub report: SessionReport,
}

impl Query for ApplySessionStatus {
    /// The new state, or `None` if nothing changed or the session is not the agent's.
    type Output = Option<SessionState>;
    fn run(self, conn: &mut PgConnection) -> Result<Option<SessionState>, StoreError> {
        conn.transaction(|conn| {
            let current: Option<String> = sessions::table
                .filter(sessions::id.eq(self.report.session_id))
                .filter(sessions::agent_id.eq(&self.agent_id))
                .select(sessions::state)
                .for_update()
                .first(conn)
                .optional()?;
            let Some(current) = current.and_then(|s| s.parse().ok()) else {
                return Ok(None);
            };
            match lifecycle::session_after_status(current, &self.report) {
                Some((state, reason)) => {
                    set_state(conn, self.report.session_id, state, reason)?;
                    Ok(Some(state))
                }
                None => Ok(None),
            }
        })
    }
}
