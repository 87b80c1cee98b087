//! Bad input never stops the poller: every file of the shared corpus of MIME
//! oddities, a 25 MB attachment and 1,000 nested parts are each stored or
//! quarantined with a reason, and a normal mail after them is still handled.
//! Skipped (with a message) when `../shared/corpus` is absent.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::both_backends;
use crate::harness::*;

pub fn corpus_dir(sub: &str) -> Option<PathBuf> {
    let base = std::env::var_os("HELPDESK_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/corpus"));
    let dir = base.join(sub);
    dir.is_dir().then_some(dir)
}

fn mail_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            mail_files(&p, out);
            continue;
        }
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let skip = ["json", "png", "wav"]
            .iter()
            .any(|e| name.ends_with(&format!(".{e}")))
            || name == "COPYING";
        if !skip {
            out.push(p);
        }
    }
}

async fn mime_oddities_are_stored_or_quarantined(backend: Backend) {
    let Some(dir) = corpus_dir("mime-oddities") else {
        eprintln!("SKIPPED: ../shared/corpus/mime-oddities is absent");
        return;
    };
    let mut files = Vec::new();
    mail_files(&dir, &mut files);
    assert!(
        files.len() > 100,
        "corpus looks incomplete: {} files",
        files.len()
    );

    let desk = Desk::new(backend).await;
    let mut bytes: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display())))
        .collect();
    // The extremes: a 25 MB attachment and 1,000 nested multiparts.
    bytes.push(big_attachment(25 * 1024 * 1024));
    bytes.push(nested(1000));
    // A broken mail the desk cannot keep as a ticket message: no sender at all.
    bytes.push(b"Subject: orphan\r\nMessage-ID: <orphan@corpus>\r\n\r\nno sender\r\n".to_vec());
    let total = bytes.len();
    let mut session = imap(&desk.user).await;
    for (i, b) in bytes.iter().enumerate() {
        session
            .append("INBOX", None, None, b)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "APPEND {}: {e}",
                    files
                        .get(i)
                        .map(|f| f.display().to_string())
                        .unwrap_or(format!("generated #{i}"))
                )
            });
    }
    let _ = session.logout().await;

    let r = desk.run_once();
    assert_eq!(r["mailbox_errors"].as_array().map(Vec::len), Some(0), "{r}");
    assert_eq!(
        r["mails"], total,
        "every mail stored, deduplicated or quarantined: {r}"
    );
    let stored = r["stored"].as_u64().unwrap_or(0);
    let quarantined = r["quarantined"].as_u64().unwrap_or(0);
    let duplicates = r["duplicates"].as_u64().unwrap_or(0);
    assert!(quarantined >= 1, "the sender-less mail is quarantined: {r}");
    eprintln!(
        "mime-oddities ({backend:?}): {total} mails: {stored} stored, {duplicates} duplicates (shared Message-IDs), {quarantined} quarantined"
    );
    assert!(
        messages(&desk.user, "INBOX").await.is_empty(),
        "every mail marked processed"
    );

    // Quarantined mail is visible with its reason.
    let q = desk.cli(&["quarantine", "list", "--json"]);
    assert!(q.contains("no sender"), "{q}");

    // The 25 MB attachment is on its ticket with size and hash.
    let list = desk.tickets();
    let big = list
        .iter()
        .find(|t| t["subject"] == "big attachment")
        .expect("big attachment ticket");
    let t = desk.ticket(big["number"].as_str().unwrap_or(""));
    assert_eq!(
        t["messages"][0]["attachments"][0]["size"],
        25 * 1024 * 1024,
        "{}",
        t["messages"][0]["attachments"]
    );

    // And the poller carries on.
    let cust = unique("cust");
    let cust_addr = add_user(&cust);
    desk.append_from(&cust_addr, "after the storm", &format!("{cust}@after"))
        .await;
    let r = desk.run_once();
    assert_eq!(r["stored"], 1, "{r}");
    assert_eq!(
        wait_for_messages(&cust, "INBOX", 1, Duration::from_secs(20))
            .await
            .len(),
        1
    );
    desk.finish().await;
}
both_backends!(
    mime_oddities_are_stored_or_quarantined,
    super::mime_oddities_are_stored_or_quarantined
);

fn big_attachment(size: usize) -> Vec<u8> {
    let mut out = String::from(
        "From: big@corpus.invalid\r\nTo: desk@example.test\r\nSubject: big attachment\r\nMessage-ID: <big@corpus>\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n\
--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"big.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n",
    );
    // `size` zero bytes in base64: "AAAA" per 3 bytes, padded at the end.
    let mut encoded = "A".repeat(size / 3 * 4);
    match size % 3 {
        1 => encoded.push_str("AA=="),
        2 => encoded.push_str("AAA="),
        _ => {}
    }
    for line in encoded.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(line).unwrap_or(""));
        out.push_str("\r\n");
    }
    out.push_str("--b--\r\n");
    out.into_bytes()
}

fn nested(depth: usize) -> Vec<u8> {
    let mut raw = String::from(
        "From: deep@corpus.invalid\r\nSubject: deep\r\nMessage-ID: <deep@corpus>\r\nMIME-Version: 1.0\r\n",
    );
    for i in 0..depth {
        raw.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n"
        ));
    }
    raw.push_str("Content-Type: text/plain\r\n\r\ndeep inside\r\n");
    for i in (0..depth).rev() {
        raw.push_str(&format!("--b{i}--\r\n"));
    }
    raw.into_bytes()
}
