//! `--help` and `--version` for both binaries: the variables each reads, with their defaults,
//! from one list per binary (a test in each binary checks the list against what its
//! configuration really reads).

/// A configuration variable, as `--help` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variable {
    /// Its name.
    pub name: &'static str,
    /// Its default, or `required`, or `—` when unset means off.
    pub default: &'static str,
    /// What it does, in one line.
    pub meaning: &'static str,
}

/// The `--help` text of `binary` at `version`: what it is, how to call it, then every variable.
pub fn help(
    binary: &str,
    version: &str,
    about: &str,
    usage: &[&str],
    variables: &[Variable],
) -> String {
    let mut text = format!("{binary} {version}\n{about}\n\nUsage:\n");
    for line in usage {
        text.push_str(&format!("  {line}\n"));
    }
    text.push_str("\nConfiguration (environment variables; default in brackets):\n");
    let all: Vec<&Variable> = variables.iter().chain(&LOGGER_VARIABLES).collect();
    let width = all.iter().map(|v| v.name.len()).max().unwrap_or(0);
    for v in all {
        text.push_str(&format!(
            "  {:width$}  [{}] {}\n",
            v.name, v.default, v.meaning
        ));
    }
    text
}

/// Variables the logger reads (see [`crate::init_logging`]); `--help` lists them last.
pub const LOGGER_VARIABLES: [Variable; 2] = [
    Variable {
        name: "RUST_LOG",
        default: "info",
        meaning: "log filter (env_logger syntax)",
    },
    Variable {
        name: "LOG_FORMAT",
        default: "text",
        meaning: "text, or json: one JSON object per line",
    },
];

/// Where a `--help` list and a configuration disagree: the names read but not listed, and
/// the names listed but never read. Both empty when they agree; a configuration is run with
/// `env` to see what it reads.
pub fn help_mismatch<T, E>(
    listed: &[Variable],
    env: &[(&str, &str)],
    read: impl Fn(&dyn Fn(&str) -> Option<String>) -> Result<T, E>,
) -> (Vec<String>, Vec<String>) {
    let read = names_read(env, read);
    let listed: std::collections::BTreeSet<String> =
        listed.iter().map(|v| v.name.to_owned()).collect();
    (
        read.difference(&listed).cloned().collect(),
        listed.difference(&read).cloned().collect(),
    )
}

/// The names a configuration asked its lookup for, by running it: what a `--help` list must
/// cover. `env` answers the lookups it names; every other variable is unset.
pub fn names_read<T, E>(
    env: &[(&str, &str)],
    read: impl Fn(&dyn Fn(&str) -> Option<String>) -> Result<T, E>,
) -> std::collections::BTreeSet<String> {
    let asked = std::cell::RefCell::new(std::collections::BTreeSet::new());
    let lookup = |name: &str| {
        asked.borrow_mut().insert(name.to_owned());
        env.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    };
    let _ = read(&lookup);
    asked.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_lists_every_variable_aligned_with_its_default() {
        let text = help(
            "demo",
            "0.1.0",
            "Does things.",
            &["demo", "demo --help"],
            &[
                Variable {
                    name: "A",
                    default: "required",
                    meaning: "the first",
                },
                Variable {
                    name: "LONGER",
                    default: "30s",
                    meaning: "the second",
                },
            ],
        );
        assert!(text.starts_with("demo 0.1.0\nDoes things.\n\nUsage:\n  demo\n  demo --help\n"));
        // Aligned to the longest name, the logger's included, which come last.
        assert!(
            text.contains("\n  A           [required] the first\n"),
            "{text}"
        );
        assert!(
            text.contains("\n  LONGER      [30s] the second\n"),
            "{text}"
        );
        assert!(
            text.ends_with("\n  LOG_FORMAT  [text] text, or json: one JSON object per line\n"),
            "{text}"
        );
    }

    #[test]
    fn a_mismatch_names_what_is_read_unlisted_and_listed_unread() {
        let listed = [
            Variable {
                name: "A",
                default: "",
                meaning: "",
            },
            Variable {
                name: "GONE",
                default: "",
                meaning: "",
            },
        ];
        let mismatch = help_mismatch(&listed, &[], |get| -> Result<(), ()> {
            get("A");
            get("NEW");
            Ok(())
        });
        assert_eq!(mismatch, (vec!["NEW".to_owned()], vec!["GONE".to_owned()]));
    }

    #[test]
    fn names_read_records_every_lookup() {
        let names = names_read(&[("X", "1")], |get| -> Result<(), ()> {
            get("X");
            get("Y");
            Ok(())
        });
        assert_eq!(names.into_iter().collect::<Vec<_>>(), ["X", "Y"]);
    }
}
