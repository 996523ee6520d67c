//! JWTs (HS256): login tokens for the API, and short viewer tokens scoped to one session.

use std::time::Duration;

use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::Role;

/// Audience of login tokens.
pub const API_AUDIENCE: &str = "streamspace-api";
/// Audience of viewer tokens: valid only on the VNC proxy.
pub const VNC_AUDIENCE: &str = "streamspace-vnc";
/// Audience of tokens one replica gives another to bridge a viewer: no user holds one.
pub const REPLICA_AUDIENCE: &str = "streamspace-replica";
/// How long a replica's bridge token lasts: it is used at once.
pub const REPLICA_TTL: Duration = Duration::from_secs(30);
/// How long a login token lasts.
pub const LOGIN_TTL: Duration = Duration::from_secs(60 * 60);
/// How long a viewer token lasts: long enough to open the WebSocket, no more.
pub const VIEWER_TTL: Duration = Duration::from_secs(60);

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: Uuid,
    /// User name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Audience: [`API_AUDIENCE`] or [`VNC_AUDIENCE`].
    pub aud: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expires at (Unix seconds).
    pub exp: i64,
    /// Viewer tokens: the one session they open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<Uuid>,
    /// Viewer tokens: their id, so each opens one stream only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<Uuid>,
    /// Login tokens: when the user's password last changed (Unix microseconds) as the token
    /// was issued; a later change ends the token, even within the same second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pwd: Option<i64>,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Past `exp`.
    #[error("token expired")]
    Expired,
    /// For another audience (e.g. a viewer token on the API).
    #[error("token is not valid here")]
    WrongAudience,
    /// Bad signature, malformed, wrong algorithm.
    #[error("invalid token")]
    Invalid,
}

/// Signing and verification keys derived from `JWT_SECRET`.
pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl Keys {
    /// From the configured secret.
    pub fn new(secret: &[u8]) -> Self {
        Keys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    fn issue(&self, mut claims: Claims, ttl: Duration) -> (String, i64) {
        let now = Utc::now().timestamp();
        claims.iat = now;
        claims.exp = now + ttl.as_secs() as i64;
        (self.sign(&claims), claims.exp)
    }

    /// Signs claims as they are (timestamps included).
    pub fn sign(&self, claims: &Claims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .expect("HS256 signing cannot fail")
    }

    /// A login token for a user whose password last changed at `password_changed_at`;
    /// returns it with its expiry (Unix seconds).
    pub fn login(
        &self,
        user: Uuid,
        name: &str,
        role: Role,
        password_changed_at: chrono::DateTime<Utc>,
    ) -> (String, i64) {
        self.issue(
            Claims {
                sub: user,
                name: name.to_owned(),
                role,
                aud: API_AUDIENCE.into(),
                iat: 0,
                exp: 0,
                sid: None,
                jti: None,
                pwd: Some(password_changed_at.timestamp_micros()),
            },
            LOGIN_TTL,
        )
    }

    /// A viewer token for one session.
    pub fn viewer(&self, user: Uuid, name: &str, role: Role, session: Uuid) -> (String, i64) {
        self.issue(
            Claims {
                sub: user,
                name: name.to_owned(),
                role,
                aud: VNC_AUDIENCE.into(),
                iat: 0,
                exp: 0,
                sid: Some(session),
                jti: Some(Uuid::new_v4()),
                pwd: None,
            },
            VIEWER_TTL,
        )
    }

    /// A token a replica sends the replica holding an agent's link, to open one session's
    /// stream for a viewer it verified (only holders of `JWT_SECRET`, the replicas, can mint
    /// one).
    pub fn replica_bridge(&self, user: Uuid, name: &str, role: Role, session: Uuid) -> String {
        self.issue(
            Claims {
                sub: user,
                name: name.to_owned(),
                role,
                aud: REPLICA_AUDIENCE.into(),
                iat: 0,
                exp: 0,
                sid: Some(session),
                jti: None,
                pwd: None,
            },
            REPLICA_TTL,
        )
        .0
    }

    /// Verifies signature, expiry (no leeway: these tokens are short) and audience.
    pub fn verify(&self, token: &str, audience: &str) -> Result<Claims, TokenError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "aud", "sub"]);
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                jsonwebtoken::errors::ErrorKind::InvalidAudience => TokenError::WrongAudience,
                _ => TokenError::Invalid,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn login_tokens_verify_for_the_api_only() {
        let keys = Keys::new(SECRET);
        let user = Uuid::new_v4();
        let (token, exp) = keys.login(user, "alice", Role::User, Utc::now());
        let claims = keys.verify(&token, API_AUDIENCE).unwrap();
        assert_eq!(
            (claims.sub, claims.name.as_str(), claims.exp),
            (user, "alice", exp)
        );
        assert_eq!(
            keys.verify(&token, VNC_AUDIENCE),
            Err(TokenError::WrongAudience)
        );
    }

    #[test]
    fn viewer_tokens_carry_their_session_and_are_refused_by_the_api() {
        let keys = Keys::new(SECRET);
        let session = Uuid::new_v4();
        let (token, _) = keys.viewer(Uuid::new_v4(), "bob", Role::User, session);
        assert_eq!(
            keys.verify(&token, VNC_AUDIENCE).unwrap().sid,
            Some(session)
        );
        assert_eq!(
            keys.verify(&token, API_AUDIENCE),
            Err(TokenError::WrongAudience)
        );
    }

    #[test]
    fn expired_forged_and_garbage_tokens_are_refused() {
        let keys = Keys::new(SECRET);
        let (expired, _) = keys.issue(
            Claims {
                sub: Uuid::nil(),
                name: "x".into(),
                role: Role::Admin,
                aud: API_AUDIENCE.into(),
                iat: 0,
                exp: 0,
                sid: None,
                jti: None,
                pwd: None,
            },
            Duration::ZERO,
        );
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(
            keys.verify(&expired, API_AUDIENCE),
            Err(TokenError::Expired)
        );
        let other = Keys::new(b"another-secret-another-secret-!!");
        let (forged, _) = other.login(Uuid::nil(), "mallory", Role::Admin, Utc::now());
        assert_eq!(keys.verify(&forged, API_AUDIENCE), Err(TokenError::Invalid));
        assert_eq!(
            keys.verify("not.a.jwt", API_AUDIENCE),
            Err(TokenError::Invalid)
        );
    }
}
