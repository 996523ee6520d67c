//! A process's `LOG_FORMAT=json` log, read from its piped stderr once it has exited.

use std::io::Read;
use std::process::Child;

use serde_json::Value;

/// The whole log, and each of its lines parsed (a line that is not a JSON object fails).
pub fn read(child: &mut Child) -> (String, Vec<Value>) {
    let mut log = String::new();
    child
        .stderr
        .take()
        .expect("stderr piped")
        .read_to_string(&mut log)
        .expect("stderr readable");
    let lines = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    (log, lines)
}
