//! Broken, hostile and unusual servers, and addresses that are not Bamboo's: each ends in one
//! clear message, in bounded time, with nothing written. Servers the simulator should not
//! learn to be are small TCP servers here.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use crate::support::{Run, Sim};
use crate::worlds::{MANIFEST, SHOP, manifests, path_str};

/// What a hostile server does with a connection once it has read the request's head (given).
type Answer = fn(&mut std::net::TcpStream, &str);

/// A server on 127.0.0.1 that answers every request with `answer`; returns its URL.
fn hostile(answer: Answer) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let (mut head, mut line) = (String::new(), String::new());
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    head.push_str(&line);
                    line.clear();
                }
                answer(&mut stream, &head);
            });
        }
    });
    url
}

fn plan(server: &str) -> (crate::support::Ran, Duration) {
    let dir = manifests(MANIFEST);
    let started = Instant::now();
    let ran = Run::new(&["plan", path_str(&dir)]).server(server).run();
    (ran, started.elapsed())
}

fn respond(stream: &mut std::net::TcpStream, status: &str, content_type: &str, body: &str) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

#[test]
fn an_endless_answer_ends_at_the_cap_with_a_clear_message() {
    let url = hostile(|stream, _| {
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        let chunk = format!("100000\r\n{}\r\n", "[".repeat(0x10_0000));
        while stream.write_all(chunk.as_bytes()).is_ok() {}
    });
    let (ran, took) = plan(&url);
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert!(ran.stderr.contains("larger than 64 MiB"), "{}", ran.stderr);
    assert!(took < Duration::from_secs(60), "bounded time: {took:?}");
}

#[test]
fn a_login_page_in_place_of_json_is_named_for_what_it_is() {
    let url = hostile(|stream, _| {
        respond(
            stream,
            "200 OK",
            "text/html",
            "<!DOCTYPE html><html><head><title>Sign in</title></head><body>SSO</body></html>",
        );
    });
    let (ran, _) = plan(&url);
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("does not answer as Bamboo")
            && ran.stderr.contains("an HTML page, not JSON")
            && ran.stderr.contains("login page"),
        "{}",
        ran.stderr
    );
    assert!(!ran.stderr.contains("expected value"), "{}", ran.stderr);
    assert_eq!(ran.stderr.lines().count(), 1, "one message: {}", ran.stderr);
}

#[test]
fn a_401_html_page_is_summed_up_not_dumped() {
    let url = hostile(|stream, _| {
        respond(
            stream,
            "401 Unauthorized",
            "text/html",
            "<html><body><h1>401</h1><p>Authentication required by the proxy</p></body></html>",
        );
    });
    let (ran, _) = plan(&url);
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("401") && ran.stderr.contains("an HTML page"),
        "{}",
        ran.stderr
    );
    assert!(!ran.stderr.contains("<html"), "{}", ran.stderr);
}

#[test]
fn bamboos_message_in_a_5xx_is_shown() {
    let url = hostile(|stream, _| {
        respond(
            stream,
            "500 Internal Server Error",
            "application/json",
            r#"{"message":"Database connection pool exhausted","status-code":500}"#,
        );
    });
    let (ran, took) = plan(&url);
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("Database connection pool exhausted"),
        "{}",
        ran.stderr
    );
    assert!(took < Duration::from_secs(60), "{took:?}");
}

#[test]
fn a_server_that_does_not_answer_is_named_with_its_address_at_once() {
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let (ran, _) = plan(&url);
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert!(
        ran.stderr
            .starts_with(&format!("warning: no answer from {url} yet")),
        "said at once, before the retries: {}",
        ran.stderr
    );
    assert!(
        ran.stderr
            .contains(&format!("error: cannot reach Bamboo at {url}")),
        "{}",
        ran.stderr
    );
    assert!(!ran.stderr.contains("project"), "{}", ran.stderr);
}

#[test]
fn an_unknown_branch_reads_the_same_as_a_404_or_an_empty_204() {
    let dir = manifests(&MANIFEST.replace("branch: release/1.0", "branch: release/9.9"));
    let mut reports = Vec::new();
    for switch in ["notFound", "noContent"] {
        let sim = Sim::start(&SHOP.replace(
            "settings: { clock: manual }",
            &format!("settings: {{ clock: manual, behaviour: {{ unknownBranch: {switch} }} }}"),
        ));
        let ran = sim.cmd(&["plan", path_str(&dir)]).run();
        assert_eq!(ran.code, 1, "{switch}: {}", ran.stderr);
        assert!(
            ran.stderr.contains("release/9.9") && !ran.stderr.contains("unexpected answer"),
            "{switch}: {}",
            ran.stderr
        );
        reports.push(crate::support::redact(&ran.stderr, &sim));
    }
    assert_eq!(reports[0], reports[1], "the same report either way");
}

#[test]
fn error_bodies_without_sub_code_still_give_bamboos_message() {
    let sim = Sim::start(&SHOP.replace(
        "settings: { clock: manual }",
        "settings: { clock: manual, behaviour: { errorSubCode: absent } }
auth:
  tokens: [{ token: reader, permissions: [read] }]",
    ));
    let dir = manifests(MANIFEST);
    let ran = Run::new(&["apply", "--auto-approve", path_str(&dir)])
        .server(&sim.url)
        .env("BAMBOO_TOKEN", "reader")
        .run();
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    let output = ran.stdout + &ran.stderr;
    assert!(output.contains("You do not have permission"), "{output}");
    assert!(sim.queue_writes().is_empty());
}

#[test]
fn a_token_with_a_trailing_newline_works() {
    let sim = Sim::start(&SHOP.replace(
        "settings: { clock: manual }",
        "settings: { clock: manual }
auth:
  tokens: [{ token: t0ken, permissions: [read] }]",
    ));
    let dir = manifests(MANIFEST);
    let ran = Run::new(&["plan", path_str(&dir)])
        .server(&sim.url)
        .env("BAMBOO_TOKEN", "t0ken\n")
        .run();
    assert_eq!(ran.code, 0, "{}", ran.stderr);
}

#[test]
fn credentials_in_the_server_url_are_refused_and_never_shown() {
    let dir = manifests(MANIFEST);
    let ran = Run::new(&["plan", path_str(&dir)])
        .server("http://bot:hunter2@127.0.0.1:9")
        .run();
    assert_eq!(ran.code, 64, "{}", ran.stderr);
    assert!(ran.stderr.contains("carries credentials"), "{}", ran.stderr);
    assert!(!(ran.stdout + &ran.stderr).contains("hunter2"));
    let help = Run::new(&["plan", "--help"])
        .server("http://bot:hunter2@127.0.0.1:9")
        .run();
    assert_eq!(help.code, 0);
    assert!(
        help.stdout.contains("BAMBOO_URL") && !help.stdout.contains("hunter2"),
        "{}",
        help.stdout
    );
}

#[test]
fn a_poll_interval_below_100ms_is_refused() {
    let ran = Run::new(&["apply", "--wait", "--poll-interval", "0s", "."]).run();
    assert_ne!(ran.code, 0);
    assert!(ran.stderr.contains("too short"), "{}", ran.stderr);
}

#[test]
fn xml_in_place_of_json_says_the_accept_header_was_lost() {
    let url = hostile(|stream, _| {
        respond(
            stream,
            "200 OK",
            "application/xml",
            r#"<?xml version="1.0"?><result key="SHOP-APP-42" state="Successful"/>"#,
        );
    });
    let (ran, _) = plan(&url);
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("XML, not JSON") && ran.stderr.contains("Accept"),
        "{}",
        ran.stderr
    );
}

#[test]
fn a_server_that_echoes_the_token_in_its_messages_does_not_get_it_printed() {
    // A proxy that quotes the request's Authorization header back in its error message.
    let url = hostile(|stream, head| {
        let auth = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("authorization:"))
            .unwrap_or("");
        let body = format!(r#"{{"message":"refused; you sent {auth}"}}"#);
        respond(stream, "401 Unauthorized", "application/json", &body);
    });
    let dir = manifests(MANIFEST);
    let audit_dir = crate::support::scratch("audit");
    let audit = audit_dir.join("audit.jsonl");
    let ran = Run::new(&[
        "apply",
        "--auto-approve",
        "--audit-log",
        audit.to_str().unwrap(),
        path_str(&dir),
    ])
    .server(&url)
    .env("BAMBOO_TOKEN", "s3cr3t-TOKEN-xyz")
    .run();
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    let everything = format!("{}{}", ran.stdout, ran.stderr);
    assert!(everything.contains("[redacted]"), "{everything}");
    assert!(!everything.contains("s3cr3t"), "{everything}");
    let basic = Run::new(&["plan", path_str(&dir)])
        .server(&url)
        .env("BAMBOO_USERNAME", "bot")
        .env("BAMBOO_PASSWORD", "pa55word-xyz")
        .run();
    assert_eq!(basic.code, 1);
    // `bot:pa55word-xyz` in base64, as the basic-auth header carries it.
    for leaked in ["pa55word-xyz", "Ym90OnBhNTV3b3JkLXh5eg=="] {
        assert!(!basic.stderr.contains(leaked), "{}", basic.stderr);
    }
    let written = crate::contracts::audit_log(&audit);
    assert!(!written.contains("s3cr3t"), "{written}");
}
