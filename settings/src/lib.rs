//! Configuration variables for both binaries, read through a lookup (the process environment,
//! or a map in tests). Every failure is one line naming the variable and what is wrong, which
//! is what an operator sees when a binary refuses to start.

use std::time::Duration;

use thiserror::Error;

mod help;
mod logging;
mod termination;

pub use help::{LOGGER_VARIABLES, Variable, help, help_mismatch, names_read};
pub use logging::{Context, LogFormat, init_logging, json_line, log_format};
pub use termination::terminated;

/// A variable that is missing or malformed; the message names it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    /// The variable.
    pub variable: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

/// A [`ConfigError`] for `variable`.
pub fn error(variable: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        problem: problem.into(),
    }
}

/// Typed access to configuration variables.
pub struct Vars<F: Fn(&str) -> Option<String>>(pub F);

impl<F: Fn(&str) -> Option<String>> Vars<F> {
    /// A set, non-blank value, trimmed.
    pub fn optional(&self, variable: &str) -> Option<String> {
        (self.0)(variable)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// A value that must be set.
    pub fn required(&self, variable: &'static str) -> Result<String, ConfigError> {
        self.optional(variable)
            .ok_or_else(|| error(variable, "is required but not set"))
    }

    /// A value parsed as `T`, `default` when unset; `expected` says what it should look like.
    pub fn parsed<T: std::str::FromStr>(
        &self,
        variable: &'static str,
        default: &str,
        expected: &str,
    ) -> Result<T, ConfigError> {
        let value = self
            .optional(variable)
            .unwrap_or_else(|| default.to_owned());
        value
            .parse()
            .map_err(|_| error(variable, format!("{value:?} is not {expected}")))
    }

    /// A duration like `500ms`, `30s`, `5m`, `1h` or `7d`, `default` when unset.
    pub fn duration(
        &self,
        variable: &'static str,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        match self.optional(variable) {
            None => Ok(default),
            Some(value) => parse_duration(&value).ok_or_else(|| {
                error(
                    variable,
                    format!("{value:?} is not a positive duration like 500ms, 30s, 5m, 1h or 7d"),
                )
            }),
        }
    }

    /// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`), `default` when unset.
    pub fn boolean(&self, variable: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.optional(variable).map(|v| v.to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if matches!(v.as_str(), "true" | "1" | "yes" | "on") => Ok(true),
            Some(v) if matches!(v.as_str(), "false" | "0" | "no" | "off") => Ok(false),
            Some(v) => Err(error(variable, format!("{v:?} is not true or false"))),
        }
    }
}

/// Parses `500ms`, `30s`, `5m`, `1h`, `7d` (a bare number is seconds). Zero is refused.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let duration = match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60)?),
        "h" => Duration::from_secs(n.checked_mul(3600)?),
        "d" => Duration::from_secs(n.checked_mul(86400)?),
        _ => return None,
    };
    (!duration.is_zero()).then_some(duration)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vars<impl Fn(&str) -> Option<String>> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Vars(move |name: &str| map.get(name).cloned())
    }

    #[test]
    fn durations_accept_the_usual_units_and_refuse_zero_and_junk() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("30"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration(" 5m "), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("7d"), Some(Duration::from_secs(604_800)));
        for bad in [
            "",
            "0s",
            "0ms",
            "5x",
            "-1s",
            "1.5s",
            "s",
            "99999999999999999999h",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn each_failure_names_its_variable_in_one_line() {
        let v = vars(&[("A", "soon"), ("B", "maybe"), ("C", "x"), ("D", "  ")]);
        let text = |e: ConfigError| e.to_string();
        assert_eq!(
            text(v.duration("A", Duration::ZERO).unwrap_err()),
            "A: \"soon\" is not a positive duration like 500ms, 30s, 5m, 1h or 7d"
        );
        assert_eq!(
            text(v.boolean("B", true).unwrap_err()),
            "B: \"maybe\" is not true or false"
        );
        assert_eq!(
            text(v.parsed::<u16>("C", "1", "a port").unwrap_err()),
            "C: \"x\" is not a port"
        );
        assert_eq!(
            text(v.required("D").unwrap_err()),
            "D: is required but not set"
        );
        assert_eq!(v.parsed::<u16>("E", "8080", "a port"), Ok(8080));
        assert!(v.boolean("F", true).unwrap());
    }
}
