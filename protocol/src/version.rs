use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: ProtocolVersion = ProtocolVersion { major: 1, minor: 2 };

/// A protocol version, written `"MAJOR.MINOR"` on the wire.
///
/// Peers with the same major version understand each other: a minor version only adds
/// optional fields and message types, which older peers ignore (see the `Unknown` variants).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProtocolVersion {
    /// Incompatible changes bump this.
    pub major: u16,
    /// Backwards-compatible additions bump this.
    pub minor: u16,
}

/// Why a peer's version was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VersionError {
    /// The text is not `MAJOR.MINOR`.
    #[error("protocol version {0:?} is not of the form MAJOR.MINOR")]
    Malformed(String),
    /// Different major version.
    #[error(
        "peer speaks protocol {peer}, this side speaks {ours}; only {}.x versions are compatible",
        ours.major
    )]
    Incompatible {
        /// The peer's version.
        peer: ProtocolVersion,
        /// Ours.
        ours: ProtocolVersion,
    },
}

impl ProtocolVersion {
    /// Checks that a peer speaking `peer` can talk to us.
    pub fn check_compatible(self, peer: ProtocolVersion) -> Result<(), VersionError> {
        if self.major == peer.major {
            Ok(())
        } else {
            Err(VersionError::Incompatible { peer, ours: self })
        }
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl FromStr for ProtocolVersion {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let malformed = || VersionError::Malformed(s.to_owned());
        let (major, minor) = s.split_once('.').ok_or_else(malformed)?;
        let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        if !digits(major) || !digits(minor) {
            return Err(malformed());
        }
        Ok(ProtocolVersion {
            major: major.parse().map_err(|_| malformed())?,
            minor: minor.parse().map_err(|_| malformed())?,
        })
    }
}

impl Serialize for ProtocolVersion {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ProtocolVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_major_is_compatible_whatever_the_minor() {
        let ours = ProtocolVersion { major: 1, minor: 1 };
        assert!(
            ours.check_compatible(ProtocolVersion { major: 1, minor: 7 })
                .is_ok()
        );
    }

    #[test]
    fn other_major_is_refused_with_a_message_naming_what_matches() {
        let ours = ProtocolVersion { major: 1, minor: 2 };
        let err = ours
            .check_compatible(ProtocolVersion { major: 2, minor: 0 })
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "peer speaks protocol 2.0, this side speaks 1.2; only 1.x versions are compatible"
        );
    }

    #[test]
    fn parses_and_prints_major_dot_minor() {
        let v: ProtocolVersion = "3.14".parse().unwrap();
        assert_eq!(
            v,
            ProtocolVersion {
                major: 3,
                minor: 14
            }
        );
        assert_eq!(v.to_string(), "3.14");
    }

    #[test]
    fn rejects_malformed_versions() {
        for bad in [
            "", "1", "1.", ".1", "1.2.3", "a.b", "+1.0", "1.-1", "99999.0",
        ] {
            assert!(bad.parse::<ProtocolVersion>().is_err(), "{bad:?} accepted");
        }
    }
}
