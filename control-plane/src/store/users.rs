//! `users`: accounts with argon2id password hashes.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use uuid::Uuid;

use super::schema::{homes, sessions, users};
use super::{Query, StoreError};
use crate::model::{Role, SessionState};

/// A user as stored (the hash never leaves the server: it is skipped in JSON).
#[derive(Debug, Clone, Queryable, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = users)]
pub struct User {
    /// Primary key.
    pub id: Uuid,
    /// Login name.
    pub username: String,
    /// PHC-format argon2id hash.
    #[serde(skip)]
    pub password_hash: String,
    /// `user` or `admin`.
    #[schema(value_type = crate::model::Role)]
    pub role: String,
    /// Disabled users cannot log in and their tokens stop working.
    pub disabled: bool,
    /// When created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Last password change: login tokens issued before it are refused.
    #[serde(skip)]
    pub password_changed_at: DateTime<Utc>,
}

impl User {
    /// The parsed role (the column's CHECK constraint guarantees a known value).
    pub fn role(&self) -> Role {
        self.role.parse().unwrap_or(Role::User)
    }
}

/// Creates a user.
pub struct CreateUser {
    /// Login name.
    pub username: String,
    /// Already hashed.
    pub password_hash: String,
    /// Role.
    pub role: Role,
}

impl Query for CreateUser {
    type Output = User;
    fn run(self, conn: &mut PgConnection) -> Result<User, StoreError> {
        diesel::insert_into(users::table)
            .values((
                users::username.eq(&self.username),
                users::password_hash.eq(&self.password_hash),
                users::role.eq(self.role.as_str()),
            ))
            .returning(User::as_returning())
            .get_result(conn)
            .map_err(|e| match StoreError::from(e) {
                StoreError::Conflict(_) => {
                    StoreError::Conflict(format!("user {:?} already exists", self.username))
                }
                other => other,
            })
    }
}

/// Creates the first admin if there are no users at all; returns whether it did.
pub struct CreateFirstAdmin {
    /// Already hashed.
    pub password_hash: String,
}

impl Query for CreateFirstAdmin {
    type Output = bool;
    fn run(self, conn: &mut PgConnection) -> Result<bool, StoreError> {
        conn.transaction(|conn| {
            // Serialize concurrent first starts of several replicas.
            diesel::sql_query("LOCK TABLE users IN EXCLUSIVE MODE").execute(conn)?;
            let count: i64 = users::table.count().get_result(conn)?;
            if count > 0 {
                return Ok(false);
            }
            diesel::insert_into(users::table)
                .values((
                    users::username.eq("admin"),
                    users::password_hash.eq(&self.password_hash),
                    users::role.eq(Role::Admin.as_str()),
                ))
                .execute(conn)?;
            Ok(true)
        })
    }
}

/// Whether any user exists (only the first start creates the admin).
pub struct AnyUsers;

impl Query for AnyUsers {
    type Output = bool;
    fn run(self, conn: &mut PgConnection) -> Result<bool, StoreError> {
        Ok(diesel::select(diesel::dsl::exists(users::table.select(users::id))).get_result(conn)?)
    }
}

/// Looks a user up by login name.
pub struct UserByName(pub String);

impl Query for UserByName {
    type Output = Option<User>;
    fn run(self, conn: &mut PgConnection) -> Result<Option<User>, StoreError> {
        Ok(users::table
            .filter(users::username.eq(&self.0))
            .select(User::as_select())
            .first(conn)
            .optional()?)
    }
}

/// Looks a user up by id.
pub struct UserById(pub Uuid);

impl Query for UserById {
    type Output = Option<User>;
    fn run(self, conn: &mut PgConnection) -> Result<Option<User>, StoreError> {
        Ok(users::table
            .find(self.0)
            .select(User::as_select())
            .first(conn)
            .optional()?)
    }
}

/// Every user, by name.
pub struct ListUsers {
    /// Names after this one (the previous page's last).
    pub after: Option<String>,
    /// Page size.
    pub limit: i64,
}

impl Query for ListUsers {
    type Output = Vec<User>;
    fn run(self, conn: &mut PgConnection) -> Result<Vec<User>, StoreError> {
        let mut query = users::table
            .order(users::username)
            .select(User::as_select())
            .limit(self.limit)
            .into_boxed();
        if let Some(after) = &self.after {
            query = query.filter(users::username.gt(after));
        }
        Ok(query.load(conn)?)
    }
}

/// Tells every replica that user `id` changed, when the transaction commits: they forget it
/// from their caches of recent callers.
fn changed(conn: &mut PgConnection, id: Uuid) -> Result<(), StoreError> {
    super::replicas::notify(conn, super::replicas::USERS_CHANNEL, &id.to_string())
}

/// Changes some fields of a user.
#[derive(Default, AsChangeset)]
#[diesel(table_name = users)]
pub struct UserChanges {
    /// New hash.
    pub password_hash: Option<String>,
    /// New role.
    pub role: Option<String>,
    /// Disable or re-enable.
    pub disabled: Option<bool>,
}

/// Applies [`UserChanges`].
pub struct UpdateUser {
    /// Which user.
    pub id: Uuid,
    /// What to change.
    pub changes: UserChanges,
}

impl Query for UpdateUser {
    type Output = User;
    fn run(self, conn: &mut PgConnection) -> Result<User, StoreError> {
        conn.transaction(|conn| {
            let user = diesel::update(users::table.find(self.id))
                .set(&self.changes)
                .returning(User::as_returning())
                .get_result::<User>(conn)?;
            changed(conn, self.id)?;
            if user.disabled {
                super::shares::access_ended(conn, self.id, None)?;
            }
            Ok(user)
        })
    }
}

/// Result of [`DeleteUser`].
#[derive(Debug, PartialEq, Eq)]
pub enum UserDeletion {
    /// Gone, with their ended sessions.
    Deleted,
    /// No such user.
    NotFound,
    /// They still have this many sessions holding resources or a home (hibernated).
    HasSessions(i64),
    /// They still have this many persistent homes (their data lives on agents).
    HasHomes(i64),
}

/// Deletes a user who holds nothing on any agent any more.
pub struct DeleteUser(pub Uuid);

impl Query for DeleteUser {
    type Output = UserDeletion;
    fn run(self, conn: &mut PgConnection) -> Result<UserDeletion, StoreError> {
        conn.transaction(|conn| {
            let found: Option<Uuid> = users::table
                .find(self.0)
                .select(users::id)
                .for_update()
                .first(conn)
                .optional()?;
            if found.is_none() {
                return Ok(UserDeletion::NotFound);
            }
            let active: i64 = sessions::table
                .filter(sessions::owner_id.eq(self.0))
                .filter(sessions::state.eq_any(SessionState::holding_home_names()))
                .count()
                .get_result(conn)?;
            if active > 0 {
                return Ok(UserDeletion::HasSessions(active));
            }
            let homes: i64 = homes::table
                .filter(homes::owner_id.eq(self.0))
                .count()
                .get_result(conn)?;
            if homes > 0 {
                return Ok(UserDeletion::HasHomes(homes));
            }
            diesel::delete(users::table.find(self.0)).execute(conn)?;
            changed(conn, self.0)?;
            super::shares::access_ended(conn, self.0, None)?;
            Ok(UserDeletion::Deleted)
        })
    }
}
