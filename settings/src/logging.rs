//! The logger of both binaries: `RUST_LOG` filters (default `info`), `LOG_FORMAT` picks plain
//! text (the default) or one JSON object per line, for log pipelines that parse them.

use std::io::Write;

use crate::{ConfigError, Vars, error};

/// Fields known where a line is logged (e.g. the HTTP request's id), added to JSON lines.
pub type Context = fn() -> Vec<(&'static str, String)>;

/// What `LOG_FORMAT` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// env_logger's lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Reads `LOG_FORMAT` (`text` or `json`).
pub fn log_format(lookup: impl Fn(&str) -> Option<String>) -> Result<LogFormat, ConfigError> {
    match Vars(lookup).optional("LOG_FORMAT").as_deref() {
        None | Some("text") => Ok(LogFormat::Text),
        Some("json") => Ok(LogFormat::Json),
        Some(other) => Err(error(
            "LOG_FORMAT",
            format!("{other:?} is not text or json"),
        )),
    }
}

/// A line's key-value pairs (`log::info!(agent_id = id; …)`), as JSON fields.
#[derive(Default)]
struct Fields(Vec<(String, String)>);

impl<'kvs> log::kv::VisitSource<'kvs> for Fields {
    fn visit_pair(
        &mut self,
        key: log::kv::Key<'kvs>,
        value: log::kv::Value<'kvs>,
    ) -> Result<(), log::kv::Error> {
        self.0.push((key.to_string(), value.to_string()));
        Ok(())
    }
}

/// Starts the logger in `format`; JSON lines carry `context`'s fields and the line's own
/// key-value pairs, text lines the pairs after the message.
pub fn init_logging(format: LogFormat, context: Context) {
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    if format == LogFormat::Json {
        builder.format(move |buf, record| {
            let mut fields = Fields::default();
            let _ = record.key_values().visit(&mut fields);
            let mut all: Vec<(&str, String)> = context();
            all.extend(fields.0.iter().map(|(k, v)| (k.as_str(), v.clone())));
            let line = json_line(
                &buf.timestamp_micros().to_string(),
                record.level().as_str(),
                record.target(),
                &record.args().to_string(),
                &all,
            );
            writeln!(buf, "{line}")
        });
    }
    builder.init();
}

/// One log line as a JSON object.
pub fn json_line(
    time: &str,
    level: &str,
    target: &str,
    message: &str,
    fields: &[(&str, String)],
) -> String {
    let mut object = serde_json::Map::new();
    object.insert("time".into(), time.into());
    object.insert("level".into(), level.into());
    object.insert("target".into(), target.into());
    object.insert("message".into(), message.into());
    for (key, value) in fields {
        object.insert((*key).into(), value.as_str().into());
    }
    serde_json::Value::Object(object).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_line_is_one_object_with_the_context_fields() {
        let line = json_line(
            "2026-11-28T02:00:00.000000Z",
            "INFO",
            "streamspace::access",
            "GET /x 200 \"quoted\"\nsecond line",
            &[("request_id", "abc".into())],
        );
        assert!(!line.contains('\n'));
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["level"], "INFO");
        assert_eq!(value["message"], "GET /x 200 \"quoted\"\nsecond line");
        assert_eq!(value["request_id"], "abc");
    }

    #[test]
    fn a_lines_key_value_pairs_become_fields() {
        let record = log::Record::builder()
            .args(format_args!("agent local-1 is offline"))
            .key_values(&[("agent_id", "local-1"), ("session_id", "7f0c")])
            .build();
        let mut fields = Fields::default();
        record.key_values().visit(&mut fields).unwrap();
        assert_eq!(
            fields.0,
            [
                ("agent_id".to_owned(), "local-1".to_owned()),
                ("session_id".to_owned(), "7f0c".to_owned())
            ]
        );
    }

    #[test]
    fn log_format_is_text_json_or_a_one_line_error() {
        assert_eq!(log_format(|_| None).unwrap(), LogFormat::Text);
        assert_eq!(
            log_format(|_| Some("json".into())).unwrap(),
            LogFormat::Json
        );
        assert_eq!(
            log_format(|_| Some("xml".into())).unwrap_err().to_string(),
            "LOG_FORMAT: \"xml\" is not text or json"
        );
    }
}
