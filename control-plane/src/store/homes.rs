//! `homes`: persistent homes, one per user, template and agent. The agent keeps the data (a
//! directory or a volume claim named after the home's id); this table says whose it is, where
//! it lives and whether a session uses it.

use chrono::{DateTime, Utc};
use diesel::dsl::now;
use diesel::prelude::*;
use serde::Serialize;
use streamspace_protocol::{Command, ControlMessage};
use uuid::Uuid;

use super::command_rows::{CommandRow, Reply, insert_command};
use super::pick_agent::pick;
use super::prepared::Prepare;
use super::schema::{agents, homes, sessions, users};
use super::{Query, StoreError};
use crate::model::{AgentStatus, SessionState};
use crate::placement::{self, Candidate};

/// A home as stored.
#[derive(Debug, Clone, Queryable, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = homes)]
pub struct Home {
    /// Id; also its name on the agent.
    pub id: Uuid,
    /// Whose it is.
    pub owner_id: Uuid,
    /// The template its sessions run.
    #[serde(rename = "template")]
    pub template_name: String,
    /// The agent that keeps it.
    pub agent_id: String,
    /// `ready`, or `deleting` while its agent removes it.
    pub state: String,
    /// Why the last deletion failed, if it did.
    pub state_reason: Option<String>,
    /// Made at.
    pub created_at: DateTime<Utc>,
    /// A session last started with it at.
    pub last_used_at: DateTime<Utc>,
}

/// A home as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HomeView {
    /// The row.
    #[serde(flatten)]
    pub home: Home,
    /// Owner's login name.
    pub owner: String,
    /// Platform of its agent.
    pub platform: String,
    /// The session using it (active or hibernated), if any.
    pub in_use_by: Option<Uuid>,
}

const READY: &str = "ready";
const DELETING: &str = "deleting";

/// The session holding each of `ids` (an active or a hibernated one).
fn users_of(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<(Uuid, Uuid)>, StoreError> {
    let rows: Vec<(Option<Uuid>, Uuid)> = sessions::table
        .filter(sessions::home_id.eq_any(ids))
        .filter(sessions::state.eq_any(SessionState::holding_home_names()))
        .select((sessions::home_id, sessions::id))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(home, session)| home.map(|h| (h, session)))
        .collect())
}

fn views(
    conn: &mut PgConnection,
    rows: Vec<(Home, String, String)>,
) -> Result<Vec<HomeView>, StoreError> {
    let ids: Vec<Uuid> = rows.iter().map(|(home, _, _)| home.id).collect();
    let in_use = users_of(conn, &ids)?;
    Ok(rows
        .into_iter()
        .map(|(home, owner, platform)| HomeView {
            in_use_by: in_use.iter().find(|(h, _)| *h == home.id).map(|(_, s)| *s),
            home,
            owner,
            platform,
        })
        .collect())
}

/// Filters for listing homes.
#[derive(Debug, Default)]
pub struct ListHomes {
    /// Only this owner's (always set for non-admins).
    pub owner_id: Option<Uuid>,
    /// Only on this agent.
    pub agent_id: Option<String>,
    /// At most this many.
    pub limit: i64,
    /// Only homes used before this one (the previous page's `next_before`).
    pub before: Option<Uuid>,
}

impl Query for ListHomes {
    type Output = Vec<HomeView>;
    fn run(self, conn: &mut PgConnection) -> Result<Vec<HomeView>, StoreError> {
        let mut query = homes::table
            .inner_join(users::table)
            .inner_join(agents::table.on(homes::agent_id.eq(agents::agent_id)))
            .select((Home::as_select(), users::username, agents::platform))
            .order((homes::last_used_at.desc(), homes::id.desc()))
            .limit(self.limit)
            .into_boxed();
        if let Some(owner) = self.owner_id {
            query = query.filter(homes::owner_id.eq(owner));
        }
        if let Some(agent_id) = &self.agent_id {
            query = query.filter(homes::agent_id.eq(agent_id));
        }
        page_before!(conn, query, self.before, homes, last_used_at);
        let rows = query.load(conn)?;
        views(conn, rows)
    }
}

/// One home.
pub struct HomeById(pub Uuid);

impl Query for HomeById {
    type Output = Option<HomeView>;
    fn run(self, conn: &mut PgConnection) -> Result<Option<HomeView>, StoreError> {
        let rows = homes::table
            .inner_join(users::table)
            .inner_join(agents::table.on(homes::agent_id.eq(agents::agent_id)))
            .filter(homes::id.eq(self.0))
            .select((Home::as_select(), users::username, agents::platform))
            .load(conn)?;
        Ok(views(conn, rows)?.pop())
    }
}

/// Where a new session with a persistent home goes.
pub(super) enum HomePlacement {
    /// On this agent, with this home (existing or just made).
    Placed {
        /// The agent.
        agent: Candidate,
        /// The home.
        home_id: Uuid,
    },
    /// The home exists but cannot be used now: `(code, message)`.
    Refused(&'static str, String),
    /// Nobody can take it.
    NoAgent,
}

/// Places a session with a persistent home: on the agent that keeps the user's home of this
/// template (the latest used among those on agents the request allows), else on the
/// least-loaded agent, with a new home there. Runs inside the placement's transaction, after
/// the agent rows are locked, so concurrent placements see each other's homes and sessions.
pub(super) fn place(
    conn: &mut PgConnection,
    owner_id: Uuid,
    template: &str,
    request: &placement::Request<'_>,
) -> Result<HomePlacement, StoreError> {
    // One placement at a time per user and template: two at once must not both create the
    // user's home on different agents.
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind::<diesel::sql_types::Text, _>(format!("home:{owner_id}:{template}"))
        .prepared()
        .execute(conn)?;
    // Locked first (a join cannot lock one side only), so a deletion cannot begin meanwhile.
    let locked: Vec<Uuid> = homes::table
        .filter(homes::owner_id.eq(owner_id))
        .filter(homes::template_name.eq(template))
        .select(homes::id)
        .for_update()
        .load(conn)?;
    let existing: Vec<(Home, String, Option<String>, String)> = homes::table
        .inner_join(agents::table.on(homes::agent_id.eq(agents::agent_id)))
        .filter(homes::id.eq_any(&locked))
        .select((
            Home::as_select(),
            agents::platform,
            agents::region,
            agents::status,
        ))
        .order(homes::last_used_at.desc())
        .load(conn)?;
    let allowed = existing
        .into_iter()
        .find(|(_, platform, region, _)| request.allows(platform, region.as_deref()));
    if let Some((home, _, _, status)) = allowed {
        if home.state == DELETING {
            return Ok(HomePlacement::Refused(
                "home_being_deleted",
                format!(
                    "your home for template {template} (on agent {}) is being deleted; try again once it is gone",
                    home.agent_id
                ),
            ));
        }
        if let Some((_, session)) = users_of(conn, &[home.id])?.first() {
            return Ok(HomePlacement::Refused(
                "home_in_use",
                format!(
                    "your home for template {template} is in use by session {session}; end that session, or start this one without a persistent home"
                ),
            ));
        }
        let Some(agent) = pick(conn, request, Some(&home.agent_id))? else {
            let why = if status == AgentStatus::Online.as_str() {
                "has no free capacity".to_owned()
            } else {
                format!("is {status}")
            };
            return Ok(HomePlacement::Refused(
                "home_unavailable",
                format!(
                    "your home for template {template} lives on agent {}, which {why}; try again later, start without a persistent home, or ask an admin to delete that home",
                    home.agent_id
                ),
            ));
        };
        diesel::update(homes::table.find(home.id))
            .set((
                homes::last_used_at.eq(now),
                homes::state_reason.eq(None::<String>),
            ))
            .execute(conn)?;
        return Ok(HomePlacement::Placed {
            agent,
            home_id: home.id,
        });
    }
    let Some(agent) = pick(conn, request, None)? else {
        return Ok(HomePlacement::NoAgent);
    };
    let home_id = diesel::insert_into(homes::table)
        .values((
            homes::owner_id.eq(owner_id),
            homes::template_name.eq(template),
            homes::agent_id.eq(&agent.agent_id),
        ))
        .returning(homes::id)
        .get_result(conn)?;
    Ok(HomePlacement::Placed { agent, home_id })
}

/// Result of [`DeleteHome`].
pub enum HomeDeletion {
    /// Marked `deleting`; send this `delete_home` command (`None`: a deletion was already
    /// under way).
    Requested(Box<HomeView>, Option<Box<CommandRow>>),
    /// A session uses it.
    InUse(Uuid),
    /// No such home.
    NotFound,
}

/// Asks the home's agent to remove it; the row goes once the agent confirms.
pub struct DeleteHome {
    /// The home.
    pub id: Uuid,
    /// Command id for `delete_home`.
    pub command_id: Uuid,
    /// `COMMAND_TIMEOUT`.
    pub command_timeout: std::time::Duration,
}

impl Query for DeleteHome {
    type Output = HomeDeletion;
    fn run(self, conn: &mut PgConnection) -> Result<HomeDeletion, StoreError> {
        conn.transaction(|conn| {
            let home: Option<Home> = homes::table
                .find(self.id)
                .select(Home::as_select())
                .for_update()
                .first(conn)
                .optional()?;
            let Some(home) = home else {
                return Ok(HomeDeletion::NotFound);
            };
            if let Some((_, session)) = users_of(conn, &[home.id])?.first() {
                return Ok(HomeDeletion::InUse(*session));
            }
            let command = if home.state == DELETING {
                None
            } else {
                diesel::update(homes::table.find(home.id))
                    .set((
                        homes::state.eq(DELETING),
                        homes::state_reason.eq(None::<String>),
                    ))
                    .execute(conn)?;
                let message = ControlMessage::Command {
                    command_id: self.command_id,
                    command: Command::DeleteHome { home_id: home.id },
                };
                Some(Box::new(insert_command(
                    conn,
                    &home.agent_id,
                    None,
                    &message,
                    self.command_timeout,
                )?))
            };
            let view = HomeById(home.id).run(conn)?.ok_or(StoreError::NotFound)?;
            Ok(HomeDeletion::Requested(Box::new(view), command))
        })
    }
}

/// Applies the answer to a `delete_home` command: the row goes when the agent removed the
/// data; otherwise the home is usable again and says why it is still there.
pub(super) fn after_delete(
    conn: &mut PgConnection,
    command: &CommandRow,
    reply: &Reply,
) -> Result<(), StoreError> {
    let Ok(ControlMessage::Command {
        command: Command::DeleteHome { home_id },
        ..
    }) = command.message()
    else {
        return Ok(());
    };
    let target = homes::table
        .find(home_id)
        .filter(homes::agent_id.eq(&command.agent_id))
        .filter(homes::state.eq(DELETING));
    match reply {
        Reply::Ack => {}
        Reply::Completed(_) => {
            diesel::delete(target).execute(conn)?;
        }
        Reply::Failed(error) => {
            diesel::update(target)
                .set((
                    homes::state.eq(READY),
                    homes::state_reason.eq(format!("deletion failed: {error}")),
                ))
                .execute(conn)?;
        }
        Reply::TimedOut => {
            diesel::update(target)
                .set((
                    homes::state.eq(READY),
                    homes::state_reason.eq(
                        "deletion not confirmed: its agent did not answer within COMMAND_TIMEOUT",
                    ),
                ))
                .execute(conn)?;
        }
    }
    Ok(())
}
