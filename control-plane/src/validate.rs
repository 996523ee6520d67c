//! Input checks shared by the API handlers. Each returns a message naming the field.

use streamspace_protocol::PLATFORMS;

/// Login names: lowercase, digits, `.`, `_`, `-`; like the `users` CHECK constraint, and a
/// valid Kubernetes label value (session objects carry the user's name as a label).
pub fn username(value: &str) -> Result<(), String> {
    let ok = (1..=63).contains(&value.len())
        && value
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && value
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    ok.then_some(()).ok_or_else(|| {
        format!("username: {value:?} must be 1-63 characters of a-z, 0-9, '.', '_' or '-', starting and ending with a letter or digit")
    })
}

/// Agent names: letters, digits, `.`, `_`, `-`, and a valid Kubernetes label value (the
/// agent labels its session objects with it and selects them by it).
pub fn agent_id(value: &str) -> Result<(), String> {
    let ok = (1..=63).contains(&value.len())
        && value
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && value
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    ok.then_some(()).ok_or_else(|| {
        format!("agent_id: {value:?} must be 1-63 characters of letters, digits, '.', '_' or '-', starting and ending with a letter or digit")
    })
}

/// Template names: DNS labels, since they end up in Kubernetes labels.
pub fn template_name(value: &str) -> Result<(), String> {
    let ok = (1..=63).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    ok.then_some(()).ok_or_else(|| {
        format!("name: {value:?} must be a DNS label (1-63 characters of a-z, 0-9 and '-', not starting or ending with '-')")
    })
}

/// One of [`PLATFORMS`].
pub fn platform(value: &str) -> Result<(), String> {
    PLATFORMS
        .contains(&value)
        .then_some(())
        .ok_or_else(|| format!("platform: {value:?} is not one of {}", PLATFORMS.join(", ")))
}

fn decimal(number: &str) -> bool {
    let mut parts = number.splitn(2, '.');
    let whole = parts.next().unwrap_or("");
    let fraction = parts.next();
    !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
}

/// A CPU quantity: `2`, `0.5`, `1500m`. Zero is refused.
pub fn cpu(value: &str) -> Result<(), String> {
    let number = value.strip_suffix('m').unwrap_or(value);
    let ok = decimal(number) && number.bytes().any(|b| b.is_ascii_digit() && b != b'0');
    ok.then_some(())
        .ok_or_else(|| format!("cpu: {value:?} is not a CPU quantity like 2, 0.5 or 1500m"))
}

/// A memory quantity: `512Mi`, `2Gi`, `1G`, `1073741824`. Zero is refused.
pub fn memory(value: &str) -> Result<(), String> {
    let number = ["Ki", "Mi", "Gi", "Ti", "k", "M", "G", "T"]
        .iter()
        .find_map(|suffix| value.strip_suffix(suffix))
        .unwrap_or(value);
    let ok = decimal(number) && number.bytes().any(|b| b.is_ascii_digit() && b != b'0');
    ok.then_some(())
        .ok_or_else(|| format!("memory: {value:?} is not a memory quantity like 512Mi or 2Gi"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        for ok in ["1", "0.5", "1500m", "16"] {
            assert!(cpu(ok).is_ok(), "{ok}");
        }
        for bad in ["", "0", "m", "1.", "-1", "1 cpu", "1e3", "0m"] {
            assert!(cpu(bad).is_err(), "{bad}");
        }
        for ok in ["512Mi", "2Gi", "1G", "1073741824", "1.5Gi"] {
            assert!(memory(ok).is_ok(), "{ok}");
        }
        for bad in ["", "0Gi", "Gi", "2GB", "lots"] {
            assert!(memory(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names() {
        assert!(username("alice.smith-2").is_ok());
        assert!(username("Alice").is_err());
        assert!(username("").is_err());
        // Kubernetes label values end with a letter or digit.
        for bad in ["qa-", "qa.", "qa_"] {
            assert!(username(bad).is_err(), "{bad}");
            assert!(agent_id(bad).is_err(), "{bad}");
        }
        assert!(username("a").is_ok() && agent_id("a").is_ok());
        assert!(agent_id("K8s_eu-1").is_ok());
        assert!(agent_id("a/b").is_err());
        assert!(template_name("xfce-desktop").is_ok());
        assert!(template_name("-x").is_err());
        assert!(template_name("X").is_err());
        assert_eq!(
            platform("podman").unwrap_err(),
            "platform: \"podman\" is not one of kubernetes, docker, local"
        );
    }
}
