//! `agent_credentials`: per-agent secrets, stored as SHA-256 hashes.

use chrono::{DateTime, Utc};
use diesel::dsl::now;
use diesel::prelude::*;
use serde::Serialize;
use uuid::Uuid;

use super::schema::{agent_credentials, agents};
use super::{Query, StoreError};

/// A credential as listed (never the token itself).
#[derive(Debug, Clone, Queryable, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = agent_credentials)]
pub struct Credential {
    /// Id, used to revoke it.
    pub id: Uuid,
    /// The agent it authenticates.
    pub agent_id: String,
    /// Hash of the token.
    #[serde(skip)]
    pub token_hash: String,
    /// First characters of the token, to recognise it.
    pub token_prefix: String,
    /// The admin who minted it.
    pub created_by: Option<Uuid>,
    /// When minted.
    pub created_at: DateTime<Utc>,
    /// Last successful connection.
    pub last_used_at: Option<DateTime<Utc>>,
    /// When revoked; revoked credentials are refused.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A credential about to be stored.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = agent_credentials)]
pub struct NewCredential {
    /// The agent.
    pub agent_id: String,
    /// SHA-256 of the token, hex.
    pub token_hash: String,
    /// First characters of the token.
    pub token_prefix: String,
    /// The admin minting it.
    pub created_by: Option<Uuid>,
}

pub(super) fn insert_credential(
    conn: &mut PgConnection,
    credential: &NewCredential,
) -> Result<Credential, StoreError> {
    Ok(diesel::insert_into(agent_credentials::table)
        .values(credential)
        .returning(Credential::as_returning())
        .get_result(conn)?)
}

/// Adds a credential; with `revoke_others` it is a rotation.
pub struct MintCredential {
    /// The new credential.
    pub credential: NewCredential,
    /// Revoke every other live credential of the agent in the same transaction.
    pub revoke_others: bool,
}

impl Query for MintCredential {
    /// The new credential and the ids it revoked.
    type Output = (Credential, Vec<Uuid>);
    fn run(self, conn: &mut PgConnection) -> Result<(Credential, Vec<Uuid>), StoreError> {
        conn.transaction(|conn| {
            let exists: i64 = agents::table
                .filter(agents::agent_id.eq(&self.credential.agent_id))
                .count()
                .get_result(conn)?;
            if exists == 0 {
                return Err(StoreError::NotFound);
            }
            let revoked = if self.revoke_others {
                diesel::update(
                    agent_credentials::table
                        .filter(agent_credentials::agent_id.eq(&self.credential.agent_id))
                        .filter(agent_credentials::revoked_at.is_null()),
                )
                .set(agent_credentials::revoked_at.eq(now))
                .returning(agent_credentials::id)
                .get_results(conn)?
            } else {
                Vec::new()
            };
            Ok((insert_credential(conn, &self.credential)?, revoked))
        })
    }
}

/// Revokes one credential of an agent.
pub struct RevokeCredential {
    /// The agent.
    pub agent_id: String,
    /// The credential.
    pub id: Uuid,
}

impl Query for RevokeCredential {
    type Output = Credential;
    fn run(self, conn: &mut PgConnection) -> Result<Credential, StoreError> {
        Ok(diesel::update(
            agent_credentials::table
                .filter(agent_credentials::id.eq(self.id))
                .filter(agent_credentials::agent_id.eq(&self.agent_id)),
        )
        .set(agent_credentials::revoked_at.eq(now))
        .returning(Credential::as_returning())
        .get_result(conn)?)
    }
}

/// A page of an agent's credentials, newest first.
pub struct ListCredentials {
    /// The agent.
    pub agent_id: String,
    /// At most this many.
    pub limit: i64,
    /// Only credentials older than this one (the previous page's `next_before`).
    pub before: Option<Uuid>,
}

impl Query for ListCredentials {
    type Output = Vec<Credential>;
    fn run(self, conn: &mut PgConnection) -> Result<Vec<Credential>, StoreError> {
        let mut query = agent_credentials::table
            .filter(agent_credentials::agent_id.eq(&self.agent_id))
            .order((
                agent_credentials::created_at.desc(),
                agent_credentials::id.desc(),
            ))
            .limit(self.limit)
            .select(Credential::as_select())
            .into_boxed();
        page_before!(conn, query, self.before, agent_credentials, created_at);
        Ok(query.load(conn)?)
    }
}

/// Finds the live credential with this hash. A read: its use is stamped when the link it
/// opens is recorded ([`super::agents::LinkAgents`]), with the others of that batch, so that
/// a fleet reconnecting does not cost a commit per connection before it says hello.
pub struct AuthenticateAgent {
    /// SHA-256 of the presented token.
    pub token_hash: String,
}

impl Query for AuthenticateAgent {
    /// The credential, if it exists and is not revoked.
    type Output = Option<Credential>;
    fn run(self, conn: &mut PgConnection) -> Result<Option<Credential>, StoreError> {
        Ok(agent_credentials::table
            .filter(agent_credentials::token_hash.eq(&self.token_hash))
            .filter(agent_credentials::revoked_at.is_null())
            .select(Credential::as_select())
            .first(conn)
            .optional()?)
    }
}
