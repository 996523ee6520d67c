//! `streamspace-control-plane create-admin NAME` and `reset-password NAME`: for an operator
//! who has no admin who can sign in (the first admin's password was lost). They need only
//! `DATABASE_URL`, apply the migrations a fresh database lacks, and take the new password from
//! standard input when it is piped in (never from the command line, which other users of the
//! host can read), else generate one and print it once.

use std::io::{IsTerminal, Read};

use diesel::{Connection, PgConnection};
use streamspace_settings::Vars;

use crate::auth::password;
use crate::model::Role;
use crate::store::Query;
use crate::store::users::{CreateUser, UpdateUser, UserByName, UserChanges};
use crate::validate;

/// Which account command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A new admin.
    CreateAdmin,
    /// A new password for an existing user.
    ResetPassword,
}

/// Runs `action` for `username`; the line to print on success, or why it failed.
pub fn run(
    action: Action,
    username: &str,
    lookup: impl Fn(&str) -> Option<String>,
    stdin: impl Read,
    stdin_is_terminal: bool,
) -> Result<String, String> {
    let database_url = Vars(lookup)
        .required("DATABASE_URL")
        .map_err(|e| e.to_string())?;
    validate::username(username).map_err(|e| format!("user name: {e}"))?;
    let (password, generated) = new_password(stdin, stdin_is_terminal)?;
    let mut conn = PgConnection::establish(&database_url)
        .map_err(|e| format!("DATABASE_URL: cannot connect: {}", e.to_string().trim()))?;
    crate::store::migrations::run_pending_exclusively(&mut conn)
        .map_err(|e| format!("migrations failed: {e}"))?;
    let password_hash = password::hash(&password);
    let store_error = |e: crate::store::StoreError| e.to_string();
    let done = match action {
        Action::CreateAdmin => {
            CreateUser {
                username: username.to_owned(),
                password_hash,
                role: Role::Admin,
            }
            .run(&mut conn)
            .map_err(store_error)?;
            format!("admin {username:?} created")
        }
        Action::ResetPassword => {
            let user = UserByName(username.to_owned())
                .run(&mut conn)
                .map_err(store_error)?
                .ok_or_else(|| format!("no user {username:?}"))?;
            UpdateUser {
                id: user.id,
                changes: UserChanges {
                    password_hash: Some(password_hash),
                    ..UserChanges::default()
                },
            }
            .run(&mut conn)
            .map_err(store_error)?;
            let disabled = if user.disabled {
                " (the account is disabled: an admin must enable it)"
            } else {
                ""
            };
            format!(
                "password of {username:?} changed; sign-ins from before no longer work{disabled}"
            )
        }
    };
    Ok(if generated {
        format!("{done}; password (shown only now): {password}")
    } else {
        done
    })
}

/// The password piped in on standard input, else a generated one (`true`).
fn new_password(stdin: impl Read, is_terminal: bool) -> Result<(String, bool), String> {
    if is_terminal {
        return Ok((password::generate(), true));
    }
    let mut text = String::new();
    stdin
        .take(4096)
        .read_to_string(&mut text)
        .map_err(|e| format!("standard input: {e}"))?;
    let piped = text.trim_end_matches(['\n', '\r']);
    if piped.is_empty() {
        return Ok((password::generate(), true));
    }
    if piped.chars().count() < password::MIN_PASSWORD_LEN {
        return Err(format!(
            "the password on standard input must be at least {} characters",
            password::MIN_PASSWORD_LEN
        ));
    }
    Ok((piped.to_owned(), false))
}

/// Whether standard input is a terminal (nothing piped in).
pub fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_piped_password_is_used_a_short_one_refused_and_none_generated() {
        assert_eq!(
            new_password("correct horse\n".as_bytes(), false).unwrap(),
            ("correct horse".to_owned(), false)
        );
        assert!(
            new_password("short\n".as_bytes(), false)
                .unwrap_err()
                .contains("at least 8")
        );
        let (generated, was_generated) = new_password("".as_bytes(), false).unwrap();
        assert!(was_generated && generated.len() >= password::MIN_PASSWORD_LEN);
        assert!(new_password("ignored".as_bytes(), true).unwrap().1);
    }
}
