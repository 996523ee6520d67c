//! `audit_log`: who did what, kept after the users and agents it names are gone.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use uuid::Uuid;

use super::schema::audit_log;
use super::{Query, StoreError};

/// One entry as listed.
#[derive(Debug, Clone, Queryable, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = audit_log)]
pub struct AuditEntry {
    /// Increasing id, used for paging.
    pub id: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// What, e.g. `login`, `session_create`, `vnc_disconnect`.
    pub action: String,
    /// Acting user.
    pub actor_user_id: Option<Uuid>,
    /// Acting user's name at the time.
    pub actor_username: Option<String>,
    /// Acting agent.
    pub actor_agent_id: Option<String>,
    /// Kind of thing acted on: `session`, `agent`, `user`, `credential`.
    pub target_type: Option<String>,
    /// Its id.
    pub target_id: Option<String>,
    /// Action-specific detail.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    /// Client address.
    pub source_ip: Option<String>,
}

/// An entry to record.
#[derive(Debug, Clone, Default, Insertable)]
#[diesel(table_name = audit_log)]
pub struct NewAuditEntry {
    /// What.
    pub action: String,
    /// Acting user.
    pub actor_user_id: Option<Uuid>,
    /// Acting user's name.
    pub actor_username: Option<String>,
    /// Acting agent.
    pub actor_agent_id: Option<String>,
    /// Kind of target.
    pub target_type: Option<String>,
    /// Target id.
    pub target_id: Option<String>,
    /// Detail.
    pub details: serde_json::Value,
    /// Client address.
    pub source_ip: Option<String>,
}

/// Records an entry.
pub struct Record(pub NewAuditEntry);

impl Query for Record {
    type Output = ();
    fn run(self, conn: &mut PgConnection) -> Result<(), StoreError> {
        diesel::insert_into(audit_log::table)
            .values(&self.0)
            .execute(conn)?;
        Ok(())
    }
}

/// A page of entries, newest first.
pub struct ListAudit {
    /// At most this many.
    pub limit: i64,
    /// Only entries older than this id (the previous page's `next_before`).
    pub before: Option<i64>,
    /// Only this action.
    pub action: Option<String>,
    /// Only by this user (their login name at the time).
    pub user: Option<String>,
    /// Only at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only before this time.
    pub until: Option<DateTime<Utc>>,
}

impl Query for ListAudit {
    type Output = Vec<AuditEntry>;
    fn run(self, conn: &mut PgConnection) -> Result<Vec<AuditEntry>, StoreError> {
        let mut query = audit_log::table
            .select(AuditEntry::as_select())
            .order(audit_log::id.desc())
            .limit(self.limit)
            .into_boxed();
        if let Some(before) = self.before {
            query = query.filter(audit_log::id.lt(before));
        }
        if let Some(action) = &self.action {
            query = query.filter(audit_log::action.eq(action));
        }
        if let Some(user) = &self.user {
            query = query.filter(audit_log::actor_username.eq(user));
        }
        if let Some(since) = self.since {
            query = query.filter(audit_log::at.ge(since));
        }
        if let Some(until) = self.until {
            query = query.filter(audit_log::at.lt(until));
        }
        Ok(query.load(conn)?)
    }
}

impl NewAuditEntry {
    /// An action by a user.
    pub fn by_user(action: &str, user_id: Uuid, username: &str) -> Self {
        NewAuditEntry {
            action: action.to_owned(),
            actor_user_id: Some(user_id),
            actor_username: Some(username.to_owned()),
            details: serde_json::json!({}),
            ..NewAuditEntry::default()
        }
    }

    /// An action by an agent.
    pub fn by_agent(action: &str, agent_id: &str) -> Self {
        NewAuditEntry {
            action: action.to_owned(),
            actor_agent_id: Some(agent_id.to_owned()),
            details: serde_json::json!({}),
            ..NewAuditEntry::default()
        }
    }

    /// An action by nobody in particular (a failed login names no known user).
    pub fn anonymous(action: &str) -> Self {
        NewAuditEntry {
            action: action.to_owned(),
            details: serde_json::json!({}),
            ..NewAuditEntry::default()
        }
    }

    /// What it was done to.
    pub fn target(mut self, kind: &str, id: impl ToString) -> Self {
        self.target_type = Some(kind.to_owned());
        self.target_id = Some(id.to_string());
        self
    }

    /// Action-specific detail.
    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }

    /// The client's address.
    pub fn from_ip(mut self, ip: Option<String>) -> Self {
        self.source_ip = ip;
        self
    }
}
