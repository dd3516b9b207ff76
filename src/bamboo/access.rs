//! What to do about a 401 or 403. Bamboo says only that access was refused, not which
//! credentials it saw or which permission was missing, and the permission differs by call: a
//! personal access token is created with READ (reads), TRIGGER (also starts and continues
//! builds) or USER (acts as its user: also labels and comments), and its user needs View, or
//! Build, on the plan. A TRIGGER token gets through `plan` and fails at `apply`'s first lock
//! label, before any queue call, so the message for that call says what it needs.

use super::auth::Credentials;

/// What a request needs Bamboo to allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// A read.
    Read,
    /// Continuing a build (`queue/…`).
    Queue,
    /// Adding or removing a build's label.
    Label,
    /// Commenting on a build.
    Comment,
}

/// Bamboo's message for a 401 or 403, with what to do about it; other messages as they are.
pub fn hinted(status: u16, message: String, credentials: &Credentials, need: Need) -> String {
    let hint = match (status, credentials, need) {
        (401, Credentials::Anonymous, _) => {
            "no credentials were given: set BAMBOO_TOKEN, BAMBOO_TOKEN_FILE, or BAMBOO_USERNAME and BAMBOO_PASSWORD"
        }
        (401, _, _) => "the server did not accept the credentials given",
        (403, _, Need::Read) => {
            "the credentials lack a permission: reading needs View on the plan (a token with READ or more)"
        }
        (403, _, Need::Queue) => {
            "the credentials lack a permission: continuing a build needs Build on the plan, and a token with TRIGGER or USER permission"
        }
        (403, _, Need::Label) => {
            "the credentials lack a permission: adding or removing a build's label needs a token with USER permission (a READ or TRIGGER token cannot), of a user with View on the plan"
        }
        (403, _, Need::Comment) => {
            "the credentials lack a permission: commenting on a build needs a token with USER permission (a READ or TRIGGER token cannot), of a user with View on the plan"
        }
        _ => return message,
    };
    format!("{message} ({hint})")
}
