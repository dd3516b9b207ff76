//! What an answer says besides its JSON: its `Date` as a time, and Bamboo's reason for a
//! refusal, or, when the body is not Bamboo's JSON, what it is (a login page, XML, a proxy's
//! text) in a few words.

use reqwest::StatusCode;

use super::types::ErrorBody;

/// An HTTP date (`Fri, 01 Jan 2027 00:00:00 GMT`) in ms since the epoch.
pub(super) fn http_date_ms(date: &str) -> Option<i64> {
    let at = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(date)
        .ok()?;
    Some(at.as_millisecond())
}

/// Why Bamboo refused: where a redirect points (it is not followed), or Bamboo's message.
pub(super) fn refusal_message(status: StatusCode, location: Option<&str>, body: &[u8]) -> String {
    if !status.is_redirection() {
        return error_message(body);
    }
    match location {
        Some(to) => format!("redirected to {to}; give the server's address as --server"),
        None => "redirected; give the server's address as --server".into(),
    }
}

/// Bamboo's `message`, or what came instead, in a few words.
pub(super) fn error_message(body: &[u8]) -> String {
    match serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .and_then(|b| b.text())
    {
        Some(text) => text,
        None => what_came(body),
    }
}

/// A body that is not Bamboo's JSON, named for what it is and what that usually means.
fn what_came(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let start = text.trim_start();
    let lower = start
        .chars()
        .take(200)
        .collect::<String>()
        .to_ascii_lowercase();
    if start.is_empty() {
        "an empty answer".to_string()
    } else if lower.starts_with("<!doctype html") || lower.contains("<html") {
        "an HTML page, not JSON: most often a single-sign-on login page or a proxy's error page; check --server, and that the proxy lets /rest/api/latest through".to_string()
    } else if start.starts_with('<') {
        "XML, not JSON: something between here and Bamboo dropped the `Accept: application/json` header".to_string()
    } else {
        let line: String = start
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(100)
            .collect();
        format!("`{line}`")
    }
}

/// Why an answer that should be JSON could not be read.
pub(super) fn not_json(body_start: &[u8], error: &serde_json::Error) -> String {
    let came = what_came(body_start);
    if came.starts_with('`') {
        format!("{error} in {came}")
    } else {
        came
    }
}
