//! Shared desktops: the users a session's owner let watch or use it, and the viewers
//! connected to it now (on any replica).

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use uuid::Uuid;

use super::schema::{agents, replicas, session_shares, session_viewers, sessions, users};
use super::sessions::{Session, SessionView};
use super::{Query, StoreError};
use crate::model::ShareMode;

/// Tells every replica, when the transaction commits, that `user` may no longer view
/// `session` as before (every session when `None`).
pub(super) fn access_ended(
    conn: &mut PgConnection,
    user: Uuid,
    session: Option<Uuid>,
) -> Result<(), StoreError> {
    let payload = match session {
        Some(session) => format!("{user} {session}"),
        None => user.to_string(),
    };
    super::replicas::notify(conn, super::replicas::ACCESS_CHANNEL, &payload)
}

/// A user a session is shared with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Share {
    /// The session.
    pub session_id: Uuid,
    /// The user it is shared with.
    pub user_id: Uuid,
    /// Their login name.
    pub username: String,
    /// What they may do.
    pub mode: ShareMode,
    /// Since when.
    pub created_at: DateTime<Utc>,
}

fn parse_mode(text: &str) -> Result<ShareMode, StoreError> {
    text.parse()
        .map_err(|e| StoreError::Unavailable(format!("session_shares.mode: {e}")))
}

type ShareRow = (Uuid, Uuid, String, String, DateTime<Utc>);

fn share((session_id, user_id, username, mode, created_at): ShareRow) -> Result<Share, StoreError> {
    Ok(Share {
        session_id,
        user_id,
        username,
        mode: parse_mode(&mode)?,
        created_at,
    })
}

/// What [`PutShare`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum PutOutcome {
    /// No user of that name.
    NoUser,
    /// Shared anew.
    Created(Share),
    /// The mode changed: the user's open streams end, to come back with the new one.
    Changed(Share),
    /// It was already shared so.
    Unchanged(Share),
}

/// Shares `session` with the user named `username` (or changes how).
pub struct PutShare {
    /// The session.
    pub session_id: Uuid,
    /// Who gets it.
    pub username: String,
    /// What they may do.
    pub mode: ShareMode,
    /// Who shares it.
    pub by: Uuid,
}

impl Query for PutShare {
    type Output = PutOutcome;
    fn run(self, conn: &mut PgConnection) -> Result<PutOutcome, StoreError> {
        conn.transaction(|conn| {
            let Some(user_id) = users::table
                .filter(users::username.eq(&self.username))
                .select(users::id)
                .first::<Uuid>(conn)
                .optional()?
            else {
                return Ok(PutOutcome::NoUser);
            };
            let before: Option<String> = session_shares::table
                .find((self.session_id, user_id))
                .select(session_shares::mode)
                .for_update()
                .first(conn)
                .optional()?;
            let (created_at, changed) = match before {
                None => {
                    let at = diesel::insert_into(session_shares::table)
                        .values((
                            session_shares::session_id.eq(self.session_id),
                            session_shares::user_id.eq(user_id),
                            session_shares::mode.eq(self.mode.as_str()),
                            session_shares::created_by.eq(self.by),
                        ))
                        .returning(session_shares::created_at)
                        .get_result(conn)?;
                    (at, None)
                }
                Some(mode) => {
                    let at = diesel::update(session_shares::table.find((self.session_id, user_id)))
                        .set(session_shares::mode.eq(self.mode.as_str()))
                        .returning(session_shares::created_at)
                        .get_result(conn)?;
                    (at, Some(mode != self.mode.as_str()))
                }
            };
            let share = Share {
                session_id: self.session_id,
                user_id,
                username: self.username,
                mode: self.mode,
                created_at,
            };
            Ok(match changed {
                None => PutOutcome::Created(share),
                Some(true) => {
                    access_ended(conn, user_id, Some(self.session_id))?;
                    PutOutcome::Changed(share)
                }
                Some(false) => PutOutcome::Unchanged(share),
            })
        })
    }
}

/// Ends the sharing of `session` with `user`; the share it was, if any. Their open streams
/// end on every replica.
pub struct RevokeShare {
    /// The session.
    pub session_id: Uuid,
    /// The user.
    pub user_id: Uuid,
}

impl Query for RevokeShare {
    type Output = Option<Share>;
    fn run(self, conn: &mut PgConnection) -> Result<Option<Share>, StoreError> {
        conn.transaction(|conn| {
            let Some(revoked) = shares(conn, self.session_id, Some(self.user_id))?.pop() else {
                return Ok(None);
            };
            diesel::delete(session_shares::table.find((self.session_id, self.user_id)))
                .execute(conn)?;
            access_ended(conn, self.user_id, Some(self.session_id))?;
            Ok(Some(revoked))
        })
    }
}

fn shares(
    conn: &mut PgConnection,
    session_id: Uuid,
    user: Option<Uuid>,
) -> Result<Vec<Share>, StoreError> {
    let mut query = session_shares::table
        .inner_join(users::table.on(users::id.eq(session_shares::user_id)))
        .filter(session_shares::session_id.eq(session_id))
        .select((
            session_shares::session_id,
            session_shares::user_id,
            users::username,
            session_shares::mode,
            session_shares::created_at,
        ))
        .order(users::username)
        .into_boxed();
    if let Some(user) = user {
        query = query.filter(session_shares::user_id.eq(user));
    }
    query
        .load::<ShareRow>(conn)?
        .into_iter()
        .map(share)
        .collect()
}

/// The users a session is shared with, by name (a session has few).
pub struct SharesOf(pub Uuid);

impl Query for SharesOf {
    type Output = Vec<Share>;
    fn run(self, conn: &mut PgConnection) -> Result<Vec<Share>, StoreError> {
        shares(conn, self.0, None)
    }
}

/// How `session` is shared with `user`, if it is.
pub struct ShareFor {
    /// The session.
    pub session_id: Uuid,
    /// The user.
    pub user_id: Uuid,
}

impl Query for ShareFor {
    type Output = Option<ShareMode>;
    fn run(self, conn: &mut PgConnection) -> Result<Option<ShareMode>, StoreError> {
        session_shares::table
            .find((self.session_id, self.user_id))
            .select(session_shares::mode)
            .first::<String>(conn)
            .optional()?
            .map(|mode| parse_mode(&mode))
            .transpose()
    }
}

/// A session shared with the caller, as "Shared with me" lists it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SharedSession {
    /// The session, with its owner.
    #[serde(flatten)]
    pub view: SessionView,
    /// What the caller may do in it.
    pub mode: ShareMode,
    /// Since when it is shared with them.
    pub shared_at: DateTime<Utc>,
}

/// The sessions shared with a user, newest session first, paged like every session list.
pub struct SharedWith {
    /// The user.
    pub user_id: Uuid,
    /// Sessions older than this one (the previous page's last).
    pub before: Option<Uuid>,
    /// Page size.
    pub limit: i64,
}

impl Query for SharedWith {
    type Output = Vec<SharedSession>;
    fn run(self, conn: &mut PgConnection) -> Result<Vec<SharedSession>, StoreError> {
        let owners = diesel::alias!(users as owners);
        let mut query = session_shares::table
            .inner_join(sessions::table.on(sessions::id.eq(session_shares::session_id)))
            .inner_join(owners.on(owners.field(users::id).eq(sessions::owner_id)))
            .left_join(agents::table.on(sessions::agent_id.eq(agents::agent_id.nullable())))
            .filter(session_shares::user_id.eq(self.user_id))
            .select((
                Session::as_select(),
                owners.field(users::username),
                agents::status.nullable(),
                session_shares::mode,
                session_shares::created_at,
            ))
            .order((sessions::created_at.desc(), sessions::id.desc()))
            .limit(self.limit)
            .into_boxed();
        page_before!(conn, query, self.before, sessions, created_at);
        query
            .load::<(Session, String, Option<String>, String, DateTime<Utc>)>(conn)?
            .into_iter()
            .map(|(session, owner, agent_status, mode, shared_at)| {
                Ok(SharedSession {
                    view: SessionView {
                        session,
                        owner,
                        agent_status,
                    },
                    mode: parse_mode(&mode)?,
                    shared_at,
                })
            })
            .collect()
    }
}

/// A viewer connected to a session now.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ConnectedViewer {
    /// This connection.
    pub id: Uuid,
    /// Who.
    pub user_id: Uuid,
    /// Their login name.
    pub username: String,
    /// What their connection may do.
    pub mode: ShareMode,
    /// From where.
    pub ip: Option<String>,
    /// Since when.
    pub connected_at: DateTime<Utc>,
}

/// A viewer's stream on this replica; recorded when it opens ([`ViewerJoined`]) and when it
/// ends ([`ViewerLeft`]), in either order (they may run on different store threads).
#[derive(Debug, Clone)]
pub struct ViewerRow {
    /// The connection (its tunnel).
    pub id: Uuid,
    /// The session.
    pub session_id: Uuid,
    /// Who.
    pub user_id: Uuid,
    /// This replica.
    pub replica_id: Uuid,
    /// What it may do.
    pub mode: ShareMode,
    /// From where.
    pub ip: Option<String>,
}

impl ViewerRow {
    fn insert(&self, conn: &mut PgConnection, left: bool) -> QueryResult<usize> {
        diesel::insert_into(session_viewers::table)
            .values((
                session_viewers::id.eq(self.id),
                session_viewers::session_id.eq(self.session_id),
                session_viewers::user_id.eq(self.user_id),
                session_viewers::replica_id.eq(self.replica_id),
                session_viewers::mode.eq(self.mode.as_str()),
                session_viewers::ip.eq(&self.ip),
                session_viewers::left_at.eq(left.then(Utc::now)),
            ))
            .on_conflict_do_nothing()
            .execute(conn)
    }
}

/// The viewer connected; nothing if its departure was recorded first.
pub struct ViewerJoined(pub ViewerRow);

impl Query for ViewerJoined {
    type Output = ();
    fn run(self, conn: &mut PgConnection) -> Result<(), StoreError> {
        self.0.insert(conn, false)?;
        Ok(())
    }
}

/// The viewer left: its row goes, or, if its arrival is not recorded yet, a row that says it
/// left stands in its way.
pub struct ViewerLeft(pub ViewerRow);

impl Query for ViewerLeft {
    type Output = ();
    fn run(self, conn: &mut PgConnection) -> Result<(), StoreError> {
        let deleted = diesel::delete(session_viewers::table.find(self.0.id)).execute(conn)?;
        if deleted == 0 {
            self.0.insert(conn, true)?;
        }
        Ok(())
    }
}

/// The viewers connected to a session now, oldest first: those on replicas that beat within
/// `dead_after`.
pub struct ViewersOf {
    /// The session.
    pub session_id: Uuid,
    /// How late a replica's heartbeat may be.
    pub dead_after: Duration,
}

impl Query for ViewersOf {
    type Output = Vec<ConnectedViewer>;
    fn run(self, conn: &mut PgConnection) -> Result<Vec<ConnectedViewer>, StoreError> {
        let since = Utc::now()
            - chrono::Duration::from_std(self.dead_after).unwrap_or(chrono::Duration::MAX);
        session_viewers::table
            .inner_join(users::table.on(users::id.eq(session_viewers::user_id)))
            .inner_join(replicas::table.on(replicas::id.eq(session_viewers::replica_id)))
            .filter(session_viewers::session_id.eq(self.session_id))
            .filter(session_viewers::left_at.is_null())
            .filter(replicas::last_seen.gt(since))
            .select((
                session_viewers::id,
                session_viewers::user_id,
                users::username,
                session_viewers::mode,
                session_viewers::ip,
                session_viewers::connected_at,
            ))
            .order((session_viewers::connected_at, session_viewers::id))
            .load::<(Uuid, Uuid, String, String, Option<String>, DateTime<Utc>)>(conn)?
            .into_iter()
            .map(|(id, user_id, username, mode, ip, connected_at)| {
                Ok(ConnectedViewer {
                    id,
                    user_id,
                    username,
                    mode: parse_mode(&mode)?,
                    ip,
                    connected_at,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use diesel::connection::SimpleConnection;

    use super::*;
    use crate::store::replicas::ReplicaBeat;
    use crate::store::retention::Prune;

    const REPLICA: Uuid = Uuid::from_u128(0xa);
    const SESSION: Uuid = Uuid::from_u128(0x5);
    const USER: Uuid = Uuid::from_u128(0x1);

    fn row(id: u128) -> ViewerRow {
        ViewerRow {
            id: Uuid::from_u128(id),
            session_id: SESSION,
            user_id: USER,
            replica_id: REPLICA,
            mode: ShareMode::View,
            ip: None,
        }
    }

    fn connected(conn: &mut PgConnection) -> Vec<Uuid> {
        ViewersOf {
            session_id: SESSION,
            dead_after: Duration::from_secs(60),
        }
        .run(conn)
        .unwrap()
        .into_iter()
        .map(|v| v.id)
        .collect()
    }

    #[test]
    fn a_viewer_counts_from_its_arrival_to_its_departure_whichever_is_recorded_first() {
        let (_db, mut conn) = crate::store::migrated_database();
        conn.batch_execute(&format!(
            "INSERT INTO users (id, username, password_hash) VALUES ('{USER}', 'bob', 'x');
             INSERT INTO sessions (id, owner_id, template_name) VALUES ('{SESSION}', '{USER}', 't');"
        ))
        .unwrap();
        ReplicaBeat {
            id: REPLICA,
            address: "http://127.0.0.1:1".into(),
            dead_after: Duration::from_secs(60),
        }
        .run(&mut conn)
        .unwrap();

        ViewerJoined(row(1)).run(&mut conn).unwrap();
        ViewerJoined(row(2)).run(&mut conn).unwrap();
        assert_eq!(
            connected(&mut conn),
            [Uuid::from_u128(1), Uuid::from_u128(2)]
        );
        ViewerLeft(row(1)).run(&mut conn).unwrap();
        assert_eq!(connected(&mut conn), [Uuid::from_u128(2)]);

        // The departure recorded before the arrival: the arrival then counts no one.
        ViewerLeft(row(3)).run(&mut conn).unwrap();
        ViewerJoined(row(3)).run(&mut conn).unwrap();
        assert_eq!(connected(&mut conn), [Uuid::from_u128(2)]);

        // A replica gone: its viewers count no one, and retention removes them and the stale
        // departure.
        conn.batch_execute(&format!("DELETE FROM replicas WHERE id = '{REPLICA}'"))
            .unwrap();
        assert!(connected(&mut conn).is_empty());
        let long_ago = Utc::now() - chrono::Duration::days(1);
        let pruned = Prune {
            commands_before: long_ago,
            audit_before: long_ago,
            sessions_before: long_ago,
            recordings_before: long_ago,
            batch: 10,
        }
        .run(&mut conn)
        .unwrap();
        assert_eq!(pruned.viewers, 2);
    }
}
