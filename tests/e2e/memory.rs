//! Memory per mail: a mail near `ingest.max_message_bytes` is held about
//! once on its way to the database, and a backlog of such mails costs no
//! more than one. Two 60 MB mails (a short text and a base64 attachment
//! each) are appended to the desk's INBOX, `helpdeskd run --once --no-send`
//! stores them, and the process's peak RSS (`VmHWM`, which it reports in
//! `peak_rss_bytes`) is compared with the size of one mail. Not `wait4`'s
//! `ru_maxrss`: a child inherits the peak of the process that forked it,
//! here the test binary holding the test mails.

use std::time::Instant;

use crate::both_backends;
use crate::harness::*;

/// The mail's size in bytes.
const MAIL_BYTES: usize = 60_000_000;
/// Peak RSS of the whole process over one mail's size (the process
/// without any mail, runtime and SQLite, is about 20 MB): the issue's
/// bound. Measured 2.3 on both backends (2026-12-04). Before the raw mail was written in pieces
/// (`store::rows::RAW_PIECE`) it was 4.5: a mail bound whole was held four
/// times at the INSERT (sea-orm's statement values, the copy sea-orm hands
/// sqlx, SQLite's copy of the bound value, the record SQLite builds).
const MAX_RATIO: f64 = 3.0;

/// A mail of about `size` bytes: headers, a short text part and a
/// base64-encoded attachment of pseudo-random bytes (incompressible, as
/// real attachments mostly are).
fn large_mail(from: &str, to: &str, message_id: &str, size: usize) -> String {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let head = format!(
        "From: Customer <{from}>\r\nTo: {to}\r\nSubject: Large attachment\r\n\
Message-ID: <{message_id}>\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
The scan is attached.\r\n--b\r\nContent-Type: application/octet-stream; name=\"scan.bin\"\r\n\
Content-Disposition: attachment; filename=\"scan.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    );
    let tail = "--b--\r\n";
    let mut out = String::with_capacity(size + 80);
    out.push_str(&head);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    // 76 base64 characters and CRLF per line.
    while out.len() + 78 + tail.len() <= size {
        for _ in 0..76 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.push(B64[(x >> 58) as usize] as char);
        }
        out.push_str("\r\n");
    }
    out.push_str(tail);
    out
}

/// Two 60 MB mails are stored with a peak RSS bounded by the size of one
/// (`cargo test --test e2e -- memory --nocapture` prints the figures;
/// PostgreSQL measures as SQLite does, within 2%).
async fn large_mails_are_held_about_once_in_memory(backend: Backend) {
    let desk = Desk::new(backend).await;
    desk.cli(&["migrate"]);
    let cust = unique("cust");
    let cust_addr = add_user(&cust);
    let raw = large_mail(
        &cust_addr,
        &desk.address,
        &format!("{cust}@large"),
        MAIL_BYTES,
    );
    let size = raw.len();
    let original = helpdeskd::ingest::parse::sha256_hex(raw.as_bytes());
    // What the attachment must be once stored (the poller fetches a mail
    // this large in pieces: any piece lost or doubled changes it).
    let expected = match helpdeskd::ingest::parse::parse(raw.as_bytes(), usize::MAX).parsed {
        helpdeskd::ingest::parse::Parsed::Mail(m) => m.attachments[0].sha256.clone(),
        other => panic!("the test mail does not parse: {other:?}"),
    };
    // The second mail would be fetched and parsed while the first one
    // commits, were large mails not alone in flight.
    let second = large_mail(
        &cust_addr,
        &desk.address,
        &format!("{cust}@large2"),
        MAIL_BYTES,
    );
    append_all(&desk.user, "INBOX", &[raw, second]).await;
    let started = Instant::now();
    let out = desk.cli(&["run", "--once", "--no-send", "--json"]);
    let report: serde_json::Value = serde_json::from_str(out.trim()).expect("run --json");
    let peak = report["peak_rss_bytes"]
        .as_u64()
        .unwrap_or_else(|| panic!("no peak_rss_bytes: {report}"));
    let took = started.elapsed();
    let ratio = peak as f64 / size as f64;
    eprintln!(
        "{backend:?}: two large mails of {:.1} MB: peak RSS {:.1} MB = {ratio:.2} x one mail (bound {MAX_RATIO}), in {:.1} s",
        size as f64 / 1e6,
        peak as f64 / 1e6,
        took.as_secs_f64()
    );
    assert_eq!(desk.tickets().len(), 2, "both mails become tickets");
    let t = desk.ticket("INC-000001");
    assert_eq!(t["subject"], "Large attachment", "{t}");
    assert_eq!(
        t["messages"][0]["attachments"][0]["sha256"],
        expected.as_str(),
        "the stored mail differs from the one sent"
    );
    // Stored in pieces, given back whole.
    let stored = desk.cli_output(&["ticket", "raw", "INC-000001", "1"]);
    assert!(stored.status.success(), "ticket raw: {stored:?}");
    assert_eq!(
        stored.stdout.len(),
        size,
        "the stored raw mail has another length"
    );
    assert!(
        helpdeskd::ingest::parse::sha256_hex(&stored.stdout) == original,
        "the stored raw mail differs from the one sent"
    );
    assert!(
        ratio < MAX_RATIO,
        "peak RSS {peak} bytes is {ratio:.2} x the {size}-byte mail (bound {MAX_RATIO})"
    );
    desk.finish().await;
}
both_backends!(
    large_mails_are_held_about_once_in_memory,
    super::large_mails_are_held_about_once_in_memory
);

/// A mail larger than `ingest.max_message_bytes` is quarantined from its
/// first megabyte, which is all that is fetched: the daemon's memory stays
/// far below the mail's size, the mail behind it becomes a ticket, and the
/// whole mail stays in the mailbox.
async fn a_mail_above_the_limit_is_quarantined_from_its_head(backend: Backend) {
    let desk = Desk::new(backend).await;
    let cfg = std::fs::read_to_string(&desk.config).expect("config");
    std::fs::write(
        &desk.config,
        cfg.replace("[ingest]\n", "[ingest]\nmax_message_bytes = 10000000\n"),
    )
    .expect("config");
    let cust = unique("cust");
    let cust_addr = add_user(&cust);
    // What the daemon needs for a small mail: the yardstick of this run.
    let before = mail(
        &cust_addr,
        &desk.address,
        "before the huge one",
        &format!("{cust}@before"),
        "",
        "hello",
    );
    append_all(&desk.user, "INBOX", &[before]).await;
    let out = desk.cli(&["run", "--once", "--no-send", "--json"]);
    let report: serde_json::Value = serde_json::from_str(out.trim()).expect("run --json");
    let small = report["peak_rss_bytes"].as_u64().expect("peak_rss_bytes");
    let big = large_mail(
        &cust_addr,
        &desk.address,
        &format!("{cust}@huge"),
        MAIL_BYTES,
    );
    let normal = mail(
        &cust_addr,
        &desk.address,
        "after the huge one",
        &format!("{cust}@after"),
        "",
        "hello",
    );
    append_all(&desk.user, "INBOX", &[big, normal]).await;
    let out = desk.cli(&["run", "--once", "--no-send", "--json"]);
    let report: serde_json::Value = serde_json::from_str(out.trim()).expect("run --json");
    assert_eq!(report["quarantined"], 1, "{report}");
    assert_eq!(report["stored"], 1, "{report}");
    let peak = report["peak_rss_bytes"].as_u64().expect("peak_rss_bytes");
    eprintln!(
        "{backend:?}: a {:.0} MB mail above the limit: peak RSS {:.1} MB (a small mail: {:.1} MB)",
        MAIL_BYTES as f64 / 1e6,
        peak as f64 / 1e6,
        small as f64 / 1e6
    );
    // Read whole, the mail alone would add its 60 MB; its head adds one.
    assert!(
        peak < small + (MAIL_BYTES / 4) as u64,
        "peak RSS {peak} bytes against {small} for a small mail: the mail above the limit was read whole"
    );
    let tickets = desk.tickets();
    assert_eq!(tickets.len(), 2, "{tickets:?}");
    assert!(
        tickets.iter().any(|t| t["subject"] == "after the huge one"),
        "{tickets:?}"
    );
    let q: Vec<serde_json::Value> =
        serde_json::from_str(&desk.cli(&["quarantine", "list", "--json"]))
            .expect("quarantine JSON");
    assert_eq!(q.len(), 1, "{q:?}");
    let reason = q[0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("more than ingest.max_message_bytes (10000000)")
            && reason.contains("the whole mail stays in the mailbox"),
        "{reason}"
    );
    let id = q[0]["id"].as_i64().expect("quarantine id").to_string();
    let head = desk.cli_output(&["quarantine", "show", &id]);
    assert!(head.status.success());
    assert_eq!(head.stdout.len(), 1024 * 1024, "the first megabyte is kept");
    assert!(
        String::from_utf8_lossy(&head.stdout).contains("Subject: Large attachment"),
        "the kept head shows what the mail was"
    );
    // The sender is told, once: with the two acknowledgements, three mails
    // reach the customer.
    desk.cli(&["run", "--once"]);
    desk.cli(&["run", "--once"]);
    let inbox = wait_for_messages(&cust, "INBOX", 3, std::time::Duration::from_secs(30)).await;
    let told: Vec<&String> = inbox
        .iter()
        .filter(|m| m.contains("Subject: Re: Large attachment"))
        .collect();
    assert_eq!(told.len(), 1, "{inbox:?}");
    let text = told[0].replace("=\r\n", "");
    assert!(
        text.contains("not turned into a ticket") && text.contains("Auto-Submitted: auto-replied"),
        "{text}"
    );
    desk.finish().await;
}
both_backends!(
    a_mail_above_the_limit_is_quarantined_from_its_head,
    super::a_mail_above_the_limit_is_quarantined_from_its_head
);
