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

/// Finds the live credentials with these hashes, in one query: agents connecting together
/// (a fleet after a restart) are authenticated in batches (`actors/batcher.rs`). A read: each
/// credential's use is stamped when the link it opens is recorded
/// ([`super::agents::LinkAgents`]), with the others of that batch, so that a fleet reconnecting
/// does not cost a commit per connection before it says hello.
pub struct AuthenticateAgents(pub Vec<String>);

impl Query for AuthenticateAgents {
    /// For each SHA-256 of a presented token, in order: its credential, if it exists and is
    /// not revoked.
    type Output = Vec<Result<Option<Credential>, StoreError>>;
    fn run(self, conn: &mut PgConnection) -> Result<Self::Output, StoreError> {
        let found: Vec<Credential> = agent_credentials::table
            .filter(agent_credentials::token_hash.eq_any(&self.0))
            .filter(agent_credentials::revoked_at.is_null())
            .select(Credential::as_select())
            .load(conn)?;
        let by_hash: std::collections::HashMap<&str, &Credential> = found
            .iter()
            .map(|credential| (credential.token_hash.as_str(), credential))
            .collect();
        Ok(self
            .0
            .iter()
            .map(|hash| Ok(by_hash.get(hash.as_str()).map(|c| (*c).clone())))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use diesel::connection::SimpleConnection;

    use super::*;

    #[test]
    fn a_batch_answers_each_token_in_order_and_finds_neither_revoked_nor_unknown_ones() {
        let (_db, mut conn) = crate::store::migrated_database();
        conn.batch_execute(
            "INSERT INTO agents (agent_id, platform) VALUES ('a', 'local'), ('b', 'local');\
             INSERT INTO agent_credentials (agent_id, token_hash, token_prefix) \
             VALUES ('a', 'ha', 'p'), ('b', 'hb', 'p');\
             UPDATE agent_credentials SET revoked_at = now() WHERE token_hash = 'hb'",
        )
        .unwrap();
        let hashes = ["hb", "ha", "unknown", "ha"].map(String::from).to_vec();
        let found: Vec<Option<String>> = AuthenticateAgents(hashes)
            .run(&mut conn)
            .unwrap()
            .into_iter()
            .map(|credential| credential.unwrap().map(|c| c.agent_id))
            .collect();
        assert_eq!(found, [None, Some("a".into()), None, Some("a".into())]);
    }
}
