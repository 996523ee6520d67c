//! `JsonObject<T>`: a JSON request body that must be an object. serde lets a struct be read
//! from an array too (`["admin", "secret"]` as a login), which no client means; this extractor
//! reads a map first, so anything else is a 400, and then the type from it.

use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::error::ApiError;

/// The request body, read as `T` from a JSON object.
pub struct JsonObject<T>(pub T);

impl<T> JsonObject<T> {
    /// The value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for JsonObject<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        // Size limit, content type and syntax as `JsonConfig` says, with its error answers.
        let object = web::Json::<Map<String, Value>>::from_request(req, payload);
        Box::pin(async move {
            let object = object.await?.into_inner();
            serde_json::from_value(Value::Object(object))
                .map(JsonObject)
                .map_err(|e| {
                    ApiError::invalid(format!("request body: Json deserialize error: {e}")).into()
                })
        })
    }
}
