//! `templates`: what a session runs.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use uuid::Uuid;

use super::schema::templates;
use super::{Query, StoreError};

/// A template as stored and shown.
#[derive(Debug, Clone, Queryable, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = templates)]
pub struct Template {
    /// Primary key.
    pub id: Uuid,
    /// Unique DNS-label name, used in the API.
    pub name: String,
    /// For people.
    pub display_name: String,
    /// For people.
    pub description: String,
    /// Container image (kubernetes) or desktop program (local).
    pub image: String,
    /// VNC port inside the session.
    #[schema(minimum = 1, maximum = 65535)]
    pub vnc_port: i32,
    /// `{"cpu": …, "memory": …}` used when a session asks for nothing else.
    #[schema(value_type = crate::model::ResourceAmounts)]
    pub default_resources: serde_json::Value,
    /// Extra environment.
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    pub env: serde_json::Value,
    /// Platforms it runs on (`[]`: any).
    #[schema(value_type = Vec<String>)]
    pub platforms: serde_json::Value,
    /// Its desktops stop after this many seconds without viewer input (`null`: never).
    pub idle_timeout_seconds: Option<i32>,
    /// What the idle timeout does: `stop` the desktop, or `hibernate` it (one without a
    /// persistent home stops).
    #[schema(value_type = crate::model::IdleAction)]
    pub idle_action: String,
    /// Its desktops stop this many seconds after they started (`null`: never).
    pub max_lifetime_seconds: Option<i32>,
    /// Every viewer's stream of its desktops is recorded.
    pub record: bool,
    /// When created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// Fields of a new or replaced template.
#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = templates, treat_none_as_null = true)]
pub struct TemplateFields {
    /// Unique name.
    pub name: String,
    /// For people.
    pub display_name: String,
    /// For people.
    pub description: String,
    /// Image or program.
    pub image: String,
    /// VNC port.
    pub vnc_port: i32,
    /// Default resources.
    pub default_resources: serde_json::Value,
    /// Environment.
    pub env: serde_json::Value,
    /// Platforms it runs on (`[]`: any).
    pub platforms: serde_json::Value,
    /// Seconds without viewer input before its desktops stop.
    pub idle_timeout_seconds: Option<i32>,
    /// `stop` or `hibernate`.
    pub idle_action: String,
    /// Seconds its desktops may run.
    pub max_lifetime_seconds: Option<i32>,
    /// Record its desktops' viewers.
    pub record: bool,
}

impl Template {
    /// The platforms it runs on; empty means any.
    pub fn platforms(&self) -> Vec<String> {
        serde_json::from_value(self.platforms.clone()).unwrap_or_default()
    }
}

fn named_conflict(e: diesel::result::Error, name: &str) -> StoreError {
    match StoreError::from(e) {
        StoreError::Conflict(_) => {
            StoreError::Conflict(format!("template {name:?} already exists"))
        }
        other => other,
    }
}

/// Creates a template.
pub struct CreateTemplate(pub TemplateFields);

impl Query for CreateTemplate {
    type Output = Template;
    fn run(self, conn: &mut PgConnection) -> Result<Template, StoreError> {
        diesel::insert_into(templates::table)
            .values(&self.0)
            .returning(Template::as_returning())
            .get_result(conn)
            .map_err(|e| named_conflict(e, &self.0.name))
    }
}

/// Creates the template unless one of that name exists (first-start defaults).
pub struct EnsureTemplate(pub TemplateFields);

impl Query for EnsureTemplate {
    type Output = ();
    fn run(self, conn: &mut PgConnection) -> Result<(), StoreError> {
        diesel::insert_into(templates::table)
            .values(&self.0)
            .on_conflict(templates::name)
            .do_nothing()
            .execute(conn)?;
        Ok(())
    }
}

/// Replaces a template's fields, looked up by name.
pub struct UpdateTemplate {
    /// Current name.
    pub name: String,
    /// New fields (may rename).
    pub fields: TemplateFields,
}

impl Query for UpdateTemplate {
    type Output = Template;
    fn run(self, conn: &mut PgConnection) -> Result<Template, StoreError> {
        diesel::update(templates::table.filter(templates::name.eq(&self.name)))
            .set(&self.fields)
            .returning(Template::as_returning())
            .get_result(conn)
            .map_err(|e| named_conflict(e, &self.fields.name))
    }
}

/// Deletes a template by name; sessions keep its name.
pub struct DeleteTemplate(pub String);

impl Query for DeleteTemplate {
    type Output = ();
    fn run(self, conn: &mut PgConnection) -> Result<(), StoreError> {
        match diesel::delete(templates::table.filter(templates::name.eq(&self.0))).execute(conn)? {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }
}

/// One template by name.
pub struct TemplateByName(pub String);

impl Query for TemplateByName {
    type Output = Option<Template>;
    fn run(self, conn: &mut PgConnection) -> Result<Option<Template>, StoreError> {
        Ok(templates::table
            .filter(templates::name.eq(&self.0))
            .select(Template::as_select())
            .first(conn)
            .optional()?)
    }
}

/// Every template, by name.
pub struct ListTemplates {
    /// Names after this one (the previous page's last).
    pub after: Option<String>,
    /// Page size.
    pub limit: i64,
}

impl Query for ListTemplates {
    type Output = Vec<Template>;
    fn run(self, conn: &mut PgConnection) -> Result<Vec<Template>, StoreError> {
        let mut query = templates::table
            .order(templates::name)
            .select(Template::as_select())
            .limit(self.limit)
            .into_boxed();
        if let Some(after) = &self.after {
            query = query.filter(templates::name.gt(after));
        }
        Ok(query.load(conn)?)
    }
}
