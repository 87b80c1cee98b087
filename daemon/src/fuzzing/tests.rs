//! The bounded fuzzing run CI makes, and the inputs it found, minimized.

use std::time::Duration;

use super::*;

/// Every built-in seed goes down the path cleanly.
#[test]
fn the_seeds_run_cleanly() {
    for (i, seed) in builtin_seeds().iter().enumerate() {
        if let Err(f) = run_one(seed) {
            panic!("built-in seed {i}: {f}");
        }
    }
}

/// The seeds reach what they are written for: each threading rule, staff
/// proven by a token and by a trusted DKIM pass, a forged claim, commands,
/// a supplier, a bounce of a desk mail.
#[test]
fn the_seeds_reach_the_paths_they_are_written_for() {
    let seeds = builtin_seeds();
    let trace = |i: usize| match trace_one(&seeds[i]) {
        Ok(t) => t,
        Err(f) => panic!("built-in seed {i}: {f}"),
    };
    let t = trace(0);
    assert_eq!((t.rule, t.author, t.ticket), ("new", "customer", 100));
    assert_eq!(t.drafts, ["acknowledgement", "notification"]);
    assert_eq!((trace(1).rule, trace(1).ticket), ("reference", 1));
    assert_eq!((trace(2).rule, trace(2).ticket), ("token", 2));
    assert_eq!((trace(3).rule, trace(3).ticket), ("subject_tag", 5));
    assert_eq!(trace(4).rule, "new_after_finished");
    assert_eq!(trace(5).rule, "new_linked");
    let t = trace(6);
    assert_eq!((t.author, t.ticket), ("staff", 1), "{t:?}");
    assert!(t.drafts.contains(&"answer"), "{t:?}");
    assert_eq!(trace(7).author, "staff");
    assert!(
        trace(8).drafts.contains(&"supplier-escalation"),
        "{:?}",
        trace(8)
    );
    assert_eq!(trace(9).drafts, ["command-error"]);
    let t = trace(10);
    assert_eq!((t.author, t.ticket), ("staff", 2), "{t:?}");
    let t = trace(11);
    assert_eq!(t.author, "customer", "{t:?}");
    assert!(t.flag.is_some_and(|f| f.contains("refused staff claim")));
    assert_eq!(trace(13).author, "supplier");
    let t = trace(15);
    assert_eq!((t.author, t.ticket), ("robot", 1), "{t:?}");
    assert!(t.drafts.contains(&"bounce-notice"), "{t:?}");
    let last = seeds.len() - 4;
    let t = trace(last);
    assert_eq!(t.author, "staff", "{t:?}");
    assert!(t.flag.is_none() && t.drafts.contains(&"answer"), "{t:?}");
    let t = trace(last + 1);
    assert!(
        t.flag.is_none() && !t.drafts.contains(&"command-error"),
        "{t:?}"
    );
    assert_eq!(trace(last + 2).drafts, ["command-error"]);
    let t = trace(last + 3);
    assert_eq!((t.rule, t.author), ("new", "customer"), "{t:?}");
    assert!(t.drafts.contains(&"acknowledgement"), "{t:?}");
}

/// Fuzzes for `HELPDESK_FUZZ_SECS` seconds (default 60), with seed
/// `HELPDESK_FUZZ_SEED` (default: random, printed); fails on any panic or
/// any draft that cannot be rendered. Inputs go to
/// `HELPDESK_FUZZ_CRASH_DIR` (default: a folder in the temporary directory).
#[test]
fn fuzz_the_ingest_path_for_a_while() {
    let secs: f64 = std::env::var("HELPDESK_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60.0);
    let seed: u64 = std::env::var("HELPDESK_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            let mut b = [0u8; 8];
            let _ = getrandom::fill(&mut b);
            u64::from_le_bytes(b)
        });
    let crash_dir = std::env::var_os("HELPDESK_FUZZ_CRASH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("helpdeskd-fuzz-crashes"));
    let summary = campaign(&Campaign {
        duration: Duration::from_secs_f64(secs),
        seed,
        crash_dir: Some(crash_dir),
        corpus: corpus_dir(),
        verbose: false,
    });
    println!("fuzz seed {seed}: {}", summary.report());
    if !summary.findings.is_empty() {
        let details: Vec<String> = summary
            .findings
            .values()
            .map(|f| {
                let input = String::from_utf8_lossy(&f.first_input);
                let shown: String = input.chars().take(400).collect();
                format!("{}\ninput (its first 400 characters): {shown:?}", f.first)
            })
            .collect();
        panic!(
            "fuzzing (seed {seed}) found {} distinct problems:\n{}\n\n{}",
            summary.findings.len(),
            summary.report(),
            details.join("\n\n")
        );
    }
}

// Regression inputs: what the harness found, minimized by hand. Each runs
// the whole path and must come out clean. The address cases failed before
// the address-checking change (881e6c0): a panic or a batch-failing render
// error, now a recipient the desk skips with a warning.

fn clean(what: &str, raw: &[u8]) {
    if let Err(f) = run_one(raw) {
        panic!("{what}: {f}\ninput: {:?}", String::from_utf8_lossy(raw));
    }
}

/// A staff answer (proven by Ada's token for ticket 1) that Cc's `address`,
/// so the answer goes to it.
fn staff_cc(address: &str) -> Vec<u8> {
    format!(
        "From: {ada}\r\nTo: support+{token}@example.test\r\n\
         Subject: Re: [ACME INC-000001] x\r\nMessage-ID: <cc@example.test>\r\n\r\n\
         /cc add {address}\r\n\r\nAnswer.\r\n",
        ada = facts::ADA,
        token = token(1, facts::ADA_CONTACT),
    )
    .into_bytes()
}

#[test]
fn the_staff_cc_helper_reaches_the_answer() {
    // A plain address: the answer renders for it, nothing is refused.
    let t = trace_one(&staff_cc("<other@cust.test>")).unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(t.author, "staff");
    assert_eq!(t.drafts, ["answer"], "{t:?}");
}

/// lettre's `Mailboxes::to_string` panicked ("a Display implementation
/// returned an error unexpectedly") on a display name with CR or LF, which
/// an encoded word gives: the acknowledgement to the sender.
#[test]
fn a_display_name_that_decodes_to_a_line_break() {
    clean("LF", b"From: =?utf-8?b?QQpC?= <a@x.test>\r\n\r\nhi\r\n");
    clean(
        "CR LF",
        b"From: =?utf-8?b?QQ0KQg==?= <a@x.test>\r\n\r\nhi\r\n",
    );
}

/// render: "missing destination address, invalid envelope".
#[test]
fn a_domain_literal_or_a_nul_in_the_name_leaves_no_envelope() {
    clean("domain literal", b"From: x@[127.0.0.1]\r\n\r\nhi\r\n");
    clean(
        "NUL in the name",
        b"From: =?utf-8?b?QQBC?= <a@x.test>\r\n\r\nhi\r\n",
    );
    clean("Cc'd by staff: domain literal", &staff_cc("x@[127.0.0.1]"));
    clean(
        "Cc'd by staff: quoted local part",
        &staff_cc("\"a\\\"b\"@x.test"),
    );
}

/// render: "cannot send to …: Invalid email user" (mail-parser reads
/// `"a b"@x.test` as the name `a b` with the address `@x.test`).
#[test]
fn a_quoted_local_part_or_a_malformed_user() {
    clean("quoted local part", b"From: \"a b\"@x.test\r\n\r\nhi\r\n");
    clean("two @", b"From: a@@x.test\r\n\r\nhi\r\n");
    clean("two dots", b"From: a..b@x.test\r\n\r\nhi\r\n");
    clean("Cc'd by staff: two @", &staff_cc("a@@x.test"));
    // From the corpus (replies/github-email_reply_parser/email_2_2.txt): an
    // Outlook-style From line, read as one address with spaces.
    clean(
        "Outlook From line",
        b"From: CRM Comments [crm-comment@example.com]\r\n\r\nhi\r\n",
    );
}

/// render: "cannot send to …: Invalid email domain".
#[test]
fn a_malformed_domain() {
    clean("two dots", b"From: a@x..test\r\n\r\nhi\r\n");
    clean("Cc'd by staff: two dots", &staff_cc("a@x..test"));
    clean(
        "a word after the address",
        "From: a@x.test \u{feff}bom\r\n\r\nhi\r\n".as_bytes(),
    );
}

/// mail-parser 0.11.9 `debug_assert!`s ("Invalid part ID, could not find
/// multipart.", parsers/message.rs:485) on a message/rfc822 part whose body
/// is only another message/rfc822 header before the closing boundary. A
/// release build goes on; the dev profile turns the dependency's debug
/// assertions off (Cargo.toml) so tests run what the desk runs.
#[test]
fn a_message_part_holding_only_a_message_part_header() {
    clean(
        "nested message/rfc822",
        b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: message/rfc822\n\n\
          Content-Type: message/rfc822\n\n\n--b--\n",
    );
}

/// mail-parser 0.11.9 subtracts past zero (decoders/quoted_printable.rs:138)
/// when a quoted-printable part holds only a soft line break before its
/// closing boundary. A release build wraps, and `truncate` to the huge
/// length does nothing; the dev profile turns the dependency's overflow
/// checks off (Cargo.toml) so tests run what the desk runs. Found by the
/// one-minute fuzz run of `cargo test`.
#[test]
fn a_quoted_printable_part_of_only_a_soft_line_break() {
    clean(
        "soft line break before the boundary",
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
          Content-Transfer-Encoding: quoted-printable\r\n\r\n=\r\n--b--\r\n",
    );
}
