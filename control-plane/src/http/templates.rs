//! Templates: admins create, change and delete them; everyone lists them.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, delete, get, post, put, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::caller::Caller;
use super::error::ApiError;
use super::json_object::JsonObject;
use super::paging::{ByName, DEFAULT_BY_NAME, next_before, page_size};
use crate::model::{IdleAction, Platform, ResourceAmounts};
use crate::store::audit::Record;
use crate::store::templates::{
    CreateTemplate, DeleteTemplate, ListTemplates, Template, TemplateByName, TemplateFields,
    UpdateTemplate,
};
use crate::validate;

/// A template as the API accepts it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateBody {
    /// A DNS label: lower-case letters, digits and `-`.
    #[schema(pattern = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]
    name: String,
    /// For people; the name unless given.
    display_name: Option<String>,
    /// For people.
    #[serde(default)]
    description: String,
    /// Container image (kubernetes, docker) or desktop program (local); not blank.
    #[schema(pattern = r"^[^\u0000]*[^\u0000\t\n\v\f\r ][^\u0000]*$")]
    image: String,
    /// VNC port inside the session.
    #[serde(default = "default_vnc_port", deserialize_with = "whole_number")]
    #[schema(minimum = 1, maximum = 65535, default = 5900)]
    vnc_port: u16,
    /// CPU and memory when a session asks for none.
    default_resources: Option<ResourceAmounts>,
    /// Extra environment of the desktop, by variable name.
    #[serde(default)]
    #[schema(schema_with = environment)]
    env: BTreeMap<String, String>,
    /// Platforms it runs on; empty (the default) means any.
    #[serde(default)]
    #[schema(value_type = Vec<Platform>)]
    platforms: Vec<String>,
    /// Its desktops stop after this many seconds without viewer input (keys, pointer,
    /// clipboard, or "I'm still here"); absent or null: never.
    #[serde(default, deserialize_with = "seconds")]
    #[schema(minimum = 1, maximum = 2147483647)]
    idle_timeout_seconds: Option<i32>,
    /// What the idle timeout does: `stop` (the default) ends the desktop, `hibernate` stops
    /// its workload and keeps its home until it is opened again (a desktop without a
    /// persistent home stops).
    #[serde(default = "default_idle_action")]
    idle_action: IdleAction,
    /// Its desktops stop this many seconds after they started; absent or null: never.
    #[serde(default, deserialize_with = "seconds")]
    #[schema(minimum = 1, maximum = 2147483647)]
    max_lifetime_seconds: Option<i32>,
    /// Record every viewer's stream of its desktops (viewers are told); default false.
    #[serde(default)]
    record: bool,
}

/// Variable names to values.
fn environment() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{AdditionalProperties, Schema};
    use utoipa::openapi::{ObjectBuilder, RefOr, Type};
    let text = || ObjectBuilder::new().schema_type(Type::String);
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .property_names(Some(text().pattern(Some("^[A-Za-z_][A-Za-z0-9_]*$"))))
        .additional_properties(Some(AdditionalProperties::RefOr(RefOr::T(Schema::Object(
            text().build(),
        )))))
        .build()
}

/// A port as JSON may write a whole number: `5900` or `5900.0`.
fn whole_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u16, D::Error> {
    let number = f64::deserialize(deserializer)?;
    if number.fract() == 0.0 && (0.0..=f64::from(u16::MAX)).contains(&number) {
        Ok(number as u16)
    } else {
        Err(serde::de::Error::custom(format!(
            "{number} is not a port number (0-65535)"
        )))
    }
}

/// A limit in seconds as JSON may write a whole number (`60`, `60.0`), or null for none.
fn seconds<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<i32>, D::Error> {
    let Some(number) = Option::<f64>::deserialize(deserializer)? else {
        return Ok(None);
    };
    if number.fract() == 0.0 && (1.0..=f64::from(i32::MAX)).contains(&number) {
        Ok(Some(number as i32))
    } else {
        Err(serde::de::Error::custom(format!(
            "{number} is not a whole number of seconds from 1 to {}",
            i32::MAX
        )))
    }
}

fn default_vnc_port() -> u16 {
    5900
}

fn default_idle_action() -> IdleAction {
    IdleAction::Stop
}

impl TemplateBody {
    fn into_fields(self) -> Result<TemplateFields, ApiError> {
        validate::template_name(&self.name).map_err(ApiError::invalid)?;
        // Blank as the document's pattern says: nothing but ASCII white space.
        if self
            .image
            .trim_matches(|c: char| c.is_ascii_whitespace() || c == '\x0B')
            .is_empty()
        {
            return Err(ApiError::invalid("image: must not be empty"));
        }
        if self.vnc_port == 0 {
            return Err(ApiError::invalid("vnc_port: must be between 1 and 65535"));
        }
        let resources = self.default_resources.unwrap_or_default();
        if let Some(cpu) = &resources.cpu {
            validate::cpu(cpu).map_err(ApiError::invalid)?;
        }
        if let Some(memory) = &resources.memory {
            validate::memory(memory).map_err(ApiError::invalid)?;
        }
        for name in self.env.keys() {
            let valid = !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !valid {
                return Err(ApiError::invalid(format!(
                    "env: {name:?} is not a valid variable name"
                )));
            }
        }
        let mut platforms = self.platforms;
        for platform in &platforms {
            validate::platform(platform)
                .map_err(|e| ApiError::invalid(format!("platforms: {e}")))?;
        }
        platforms.sort();
        platforms.dedup();
        Ok(TemplateFields {
            idle_timeout_seconds: self.idle_timeout_seconds,
            idle_action: self.idle_action.as_str().to_owned(),
            max_lifetime_seconds: self.max_lifetime_seconds,
            record: self.record,
            platforms: serde_json::to_value(platforms).unwrap_or_default(),
            display_name: self.display_name.unwrap_or_else(|| self.name.clone()),
            name: self.name,
            description: self.description,
            image: self.image,
            vnc_port: i32::from(self.vnc_port),
            default_resources: serde_json::to_value(resources).unwrap_or_default(),
            env: serde_json::to_value(self.env).unwrap_or_default(),
        })
    }
}

fn audit(state: &AppState, caller: &Caller, action: &str, name: &str) {
    state
        .store
        .spawn(Record(caller.audit(action).target("template", name)));
}

fn not_found(name: &str) -> ApiError {
    ApiError::NotFound(format!("no template named {name:?}"))
}

/// `POST /api/v1/templates` (admin)
#[utoipa::path(
    request_body = TemplateBody,
    tag = "templates",
    responses(
        (status = 201, description = "Created", body = Template),
        (status = 403, description = "Admins only"),
        (status = 409, description = "The name is taken"),
    )
)]
#[post("/templates")]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    body: JsonObject<TemplateBody>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let fields = body.into_inner().into_fields()?;
    let template = state.store.run(CreateTemplate(fields)).await?;
    audit(&state, &caller, "template_create", &template.name);
    Ok(HttpResponse::Created().json(template))
}

/// A page of templates by name.
#[derive(Serialize, ToSchema)]
pub struct TemplatePage {
    /// The templates.
    templates: Vec<Template>,
    /// The next page's `after`; null on the last page.
    next_after: Option<String>,
}

/// `GET /api/v1/templates`: by name, paged.
#[utoipa::path(
    tag = "templates",
    params(ByName),
    responses((status = 200, description = "A page", body = TemplatePage))
)]
#[get("/templates")]
pub async fn list(
    state: web::Data<AppState>,
    _caller: Caller,
    page: web::Query<ByName>,
) -> Result<HttpResponse, ApiError> {
    let ByName { limit, after } = page.into_inner();
    let limit = page_size(limit, DEFAULT_BY_NAME)?;
    let templates = state.store.run(ListTemplates { after, limit }).await?;
    let next_after = next_before(&templates, limit, |t| t.name.clone());
    Ok(HttpResponse::Ok().json(TemplatePage {
        templates,
        next_after,
    }))
}

/// `GET /api/v1/templates/{name}`: one template.
#[utoipa::path(
    tag = "templates",
    responses(
        (status = 200, description = "The template", body = Template),
        (status = 404, description = "No such template"),
    )
)]
#[get("/templates/{name}")]
pub async fn get(
    state: web::Data<AppState>,
    _caller: Caller,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = name.into_inner();
    let template = state
        .store
        .run(TemplateByName(name.clone()))
        .await?
        .ok_or_else(|| not_found(&name))?;
    Ok(HttpResponse::Ok().json(template))
}

/// `PUT /api/v1/templates/{name}` (admin): replaces the template.
#[utoipa::path(
    request_body = TemplateBody,
    tag = "templates",
    responses(
        (status = 200, description = "Replaced", body = Template),
        (status = 403, description = "Admins only"),
        (status = 404, description = "No such template"),
        (status = 409, description = "Renamed to a name that is taken"),
    )
)]
#[put("/templates/{name}")]
pub async fn update(
    state: web::Data<AppState>,
    caller: Caller,
    name: web::Path<String>,
    body: JsonObject<TemplateBody>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let name = name.into_inner();
    let fields = body.into_inner().into_fields()?;
    let template = state
        .store
        .run(UpdateTemplate {
            name: name.clone(),
            fields,
        })
        .await
        .map_err(|e| match ApiError::from(e) {
            ApiError::NotFound(_) => not_found(&name),
            other => other,
        })?;
    audit(&state, &caller, "template_update", &name);
    Ok(HttpResponse::Ok().json(template))
}

/// `DELETE /api/v1/templates/{name}` (admin); sessions keep the template's name.
#[utoipa::path(
    tag = "templates",
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Admins only"),
        (status = 404, description = "No such template"),
    )
)]
#[delete("/templates/{name}")]
pub async fn remove(
    state: web::Data<AppState>,
    caller: Caller,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let name = name.into_inner();
    state
        .store
        .run(DeleteTemplate(name.clone()))
        .await
        .map_err(|e| match ApiError::from(e) {
            ApiError::NotFound(_) => not_found(&name),
            other => other,
        })?;
    audit(&state, &caller, "template_delete", &name);
    Ok(HttpResponse::NoContent().finish())
}
