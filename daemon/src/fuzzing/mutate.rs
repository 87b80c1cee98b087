//! Inputs for the harness: built-in seed mails written for its desk, the
//! shared corpus, and structure-aware mutations of both (headers, addresses,
//! encoded words, MIME trees, splicing), with some plain byte havoc and
//! arbitrary bytes.

use std::path::Path;

use super::facts::*;
use super::token;

/// SplitMix64: small, fast, and the same sequence for the same seed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// True with probability `1/n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Addresses that have hurt mail software: display names that decode to
/// CR, LF or NUL, quoted local parts, domain literals, no `@`, comments
/// with line breaks, groups, odd Unicode.
pub const EVIL_ADDRESSES: &[&str] = &[
    "=?utf-8?b?QQpC?= <a@x.test>",
    "=?utf-8?b?QQ0KQg==?= <a@x.test>",
    "=?utf-8?b?QQBC?= <a@x.test>",
    "=?utf-8?q?A=0D=0AB?= <a@x.test>",
    "=?utf-8?q?Bcc=3A_evil=40x=2Etest=0D=0A?= <a@x.test>",
    "=?utf-8?b?QQpC?= <jo@cust.test>",
    "\"a b\"@x.test",
    "\"a b\" <\"a b\"@x.test>",
    "\"a\\\"b\"@x.test",
    "x@[127.0.0.1]",
    "Lit <x@[127.0.0.1]>",
    "x@[IPv6:::1]",
    "nobody",
    "Name <nobody>",
    "@x.test",
    "a@",
    "a@@x.test",
    "a@x.test (comment\n more)",
    "a@x.test (comment\r\n more)",
    "(lead\ncomment) a@x.test",
    "\"Jo \\\"the\\\" Doe\" <jo@cust.test>",
    "<>",
    "undisclosed-recipients:;",
    "group: a@x.test, b@y.test;",
    "a..b@x.test",
    ".a@x.test",
    "a.@x.test",
    "a@x_y.test",
    "a@-x.test",
    "a@x..test",
    "ü@x.test",
    "a@bücher.test",
    "=?utf-8?b?w7w=?= <ü@bücher.test>",
    "a b@x.test",
    "a@127.0.0.1",
    "\"a\r\nb\"@x.test",
    "a@x.test\0",
    "Nul\0Name <a@x.test>",
    "=?bogus?b?QQ==?= <a@x.test>",
    "=?utf-8?b?!!!?= <a@x.test>",
    "=?utf-8?q?=ZZ?= <a@x.test>",
    "=?utf-8*en?q?A?= <a@x.test>",
    "\"support@example.test\" <evil@x.test>",
    "a@x.test, , ,b@x.test",
    "<a@x.test",
    "a@x.test>",
    "<<a@x.test>>",
    "\"\" <a@x.test>",
    "a@x.test <b@y.test>",
    "\\\"a <a@x.test>",
    "Desk <support+x@example.test>",
    "Loop <support@example.test>",
    "Ada <ada@example.test>",
    "NOC <noc@netco.test>",
    "MAILER-DAEMON",
    "Mail Delivery System <>",
];

/// Encoded words and other header values that stress the decoders.
pub const EVIL_WORDS: &[&str] = &[
    "=?utf-8?b?QQpC?=",
    "=?utf-8?b?QQ0KQg==?=",
    "=?utf-8?b?AA==?=",
    "=?utf-8?q?=00=0D=0A?=",
    "=?x-unknown?q?abc?=",
    "=?utf-8?b?!!!?=",
    "=?utf-8?b?QQ?=",
    "=?utf-8?q?=ZZ=?=",
    "=?utf-8?q?=?=",
    "=??b?QQ==?=",
    "=?utf-8??QQ==?=",
    "=?utf-7?q?+AKM-?=",
    "=?iso-2022-jp?b?GyRCJEgbKEI=?=",
    "=?utf-16le?b?QQBCAA==?=",
    "=?utf-16?b?2D3eAA==?=",
    "=?gb18030?b?gTCBMA==?=",
    "=?utf-8?b?/w==?=",
    "=?utf-8?q?=C3?=",
    "=?utf-8?b?4oCu?=",
    "=?utf-8?b?",
    "?=",
    "\u{202e}rtl",
    "\u{feff}bom",
    "[ACME INC-000001]",
    "[ACME INC-000100]",
    "[ACME INC-999999999999999999]",
    "[ACME INC-]",
    "[ACME CHG-000002]",
    "[acme inc-000005]",
    "Re: Re: AW:",
    "Automatic reply:",
    "Undeliverable:",
];

/// Lines a staff reply may start with.
pub const COMMANDS: &[&str] = &[
    "/status open",
    "/status pending",
    "/status resolved",
    "/status closed",
    "/status bogus",
    "/resolve",
    "/close",
    "/assign me",
    "/assign bob",
    "/assign nobody",
    "/assign group:desktop",
    "/assign @network",
    "/assign nosuch",
    "/priority urgent",
    "/priority whenever",
    "/kind change",
    "/link INC-000002",
    "/link INC-000001",
    "/link INC-999999",
    "/note",
    "/note private words",
    "/cc add other@cust.test",
    "/cc add <other2@cust.test>",
    "/cc add support@example.test",
    "/cc add ada@example.test",
    "/cc remove cc@cust.test",
    "/cc remove nobody@cust.test",
    "/service email",
    "/service nosuch",
    "/supplier NetCo the line is down",
    "/supplier nosuch",
    "/",
    "/ä",
];

/// Header names worth setting to odd values.
const ADDRESS_HEADERS: &[&str] = &[
    "From",
    "To",
    "Cc",
    "Sender",
    "Reply-To",
    "Return-Path",
    "Delivered-To",
    "X-Original-To",
];

const CHARSETS: &[&str] = &[
    "utf-8",
    "us-ascii",
    "iso-8859-1",
    "utf-16le",
    "utf-16be",
    "utf-16",
    "utf-7",
    "unicode-1-1-utf-7",
    "iso-2022-jp",
    "shift_jis",
    "gb18030",
    "koi8-r",
    "windows-1252",
    "uft-8",
    "x-bogus",
    "",
    "\"utf-8",
];

const ENCODINGS: &[&str] = &[
    "7bit",
    "8bit",
    "binary",
    "base64",
    "quoted-printable",
    "x-uuencode",
    "BASE64",
    "bogus",
    "",
];

/// The seed mails of the harness: customer mail, replies that thread by
/// each rule, staff replies with and without proof (a valid token, a
/// trusted DKIM pass), commands, a supplier's answer, bounces of a desk
/// mail, auto-replies, MIME with attachments.
pub fn builtin_seeds() -> Vec<Vec<u8>> {
    let ada_token = token(1, ADA_CONTACT);
    let ada_token2 = token(2, ADA_CONTACT);
    let jo_token = token(1, CUSTOMER_CONTACT);
    let staff_head = |from: &str, to: &str, extra: &str| {
        format!(
            "From: Ada Lovelace <{from}>\r\nTo: ACME Service Desk <{to}>\r\n\
             Subject: Re: [ACME INC-000001] Ticket 1: the printer is on fire\r\n\
             Message-ID: <staff-{}@example.test>\r\nIn-Reply-To: <INC-000001.staff@example.test>\r\n\
             Date: Mon, 2 Mar 2026 10:00:00 +0000\r\n{extra}",
            to.len()
        )
    };
    let proof_to = format!("support+{ada_token}@example.test");
    let seeds = [
        // A new ticket from a customer, with Cc.
        format!(
            "From: Jo Doe <{CUSTOMER}>\r\nTo: ACME Service Desk <{DESK}>\r\nCc: Other <other@cust.test>, Boss <boss@cust.test>\r\n\
             Subject: Printer on fire\r\nMessage-ID: <new1@cust.test>\r\nDate: Mon, 2 Mar 2026 09:00:00 +0000\r\n\
             MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nIt is on fire.\r\nPlease help.\r\n"
        ),
        // A customer reply by In-Reply-To, quoting the desk.
        format!(
            "From: Jo Doe <{CUSTOMER}>\r\nTo: {DESK}\r\nSubject: Re: [ACME INC-000001] Ticket 1\r\n\
             Message-ID: <reply1@cust.test>\r\nIn-Reply-To: <m2@cust.test>\r\nReferences: <m1@cust.test> <m2@cust.test>\r\n\r\n\
             Still burning.\r\n\r\nOn Mon, 2 Mar 2026 at 10:00, Desk <{DESK}> wrote:\r\n> old text\r\n"
        ),
        // A reply by token only (In-Reply-To dropped), to a pending ticket.
        format!(
            "From: Ann <ann@cust.test>\r\nTo: support+{}@example.test\r\nSubject: back again\r\n\
             Message-ID: <reply2@cust.test>\r\n\r\nHere is the log.\r\n",
            token(2, 13)
        ),
        // A reply by subject tag from a participant, to a recently resolved ticket.
        format!(
            "From: {CUSTOMER}\r\nTo: {DESK}\r\nSubject: Re: [ACME INC-000005] again\r\nMessage-ID: <reply5@cust.test>\r\n\r\nIt broke again.\r\n"
        ),
        // A reply to a closed ticket: opens a linked one.
        format!(
            "From: {CUSTOMER}\r\nTo: {DESK}\r\nSubject: Re: [ACME INC-000004] old\r\nIn-Reply-To: <root4@cust.test>\r\nMessage-ID: <reply4@cust.test>\r\n\r\nAnd again.\r\n"
        ),
        // A stranger using a tag.
        format!(
            "From: evil@x.test\r\nTo: {DESK}\r\nSubject: [ACME INC-000001] mine now\r\nMessage-ID: <evil@x.test>\r\n\r\nHello.\r\n"
        ),
        // Staff with a token: commands and a public answer.
        format!(
            "{}\r\n/priority high\r\n/assign me\r\n/cc add other@cust.test\r\n\r\nWe are on it.\r\n\r\nOn Mon, Desk wrote:\r\n> news\r\n",
            staff_head(ADA, &proof_to, "")
        ),
        // Staff with a token: a note.
        format!(
            "{}\r\n/note\r\nChecked the fuse.\r\n",
            staff_head(ADA, &proof_to, "")
        ),
        // Staff with a token: resolve, Cc changes, supplier escalation.
        format!(
            "{}\r\n/resolve\r\n/cc remove {CC}\r\n/supplier NetCo line down\r\n/link INC-000002\r\n\r\nFixed, closing.\r\n",
            staff_head(ADA, &proof_to, "")
        ),
        // Staff with a bad command: a command error to the staff member.
        format!(
            "{}\r\n/status bogus\r\n/assign nosuch\r\n\r\nText.\r\n",
            staff_head(ADA, &proof_to, "")
        ),
        // Staff proven by a trusted DKIM pass, on the pending ticket.
        format!(
            "From: Ada Lovelace <{ADA}>\r\nTo: {DESK}\r\nSubject: Re: [ACME INC-000002] x\r\nMessage-ID: <ada2@example.test>\r\n\
             References: <INC-000002.staff@example.test>\r\n\
             Authentication-Results: {TRUSTED_AUTHSERV}; dkim=pass header.d=example.test; spf=pass smtp.mailfrom=example.test\r\n\r\n\
             /status open\r\n/kind request\r\n\r\nAnswer to Ann.\r\n"
        ),
        // Staff with another ticket's token: claimed staff, refused.
        format!(
            "{}\r\n/close\r\n",
            staff_head(ADA, &format!("support+{ada_token2}@example.test"), "")
        ),
        // Staff answer carrying an attachment (relayed to the customer).
        format!(
            "{}MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
             --b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee the attached log.\r\n\
             --b1\r\nContent-Type: application/octet-stream; name=\"log.txt\"\r\n\
             Content-Disposition: attachment; filename=\"../log.txt\"\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8gd29ybGQ=\r\n--b1--\r\n",
            staff_head(ADA, &proof_to, "")
        ),
        // The supplier answers.
        format!(
            "From: NetCo NOC <{SUPPLIER}>\r\nTo: {DESK}\r\nSubject: Re: [ACME INC-000001] escalated\r\n\
             In-Reply-To: <INC-000001.supplier@example.test>\r\nReferences: <m1@cust.test>\r\nMessage-ID: <noc1@netco.test>\r\n\r\nLine restored.\r\n"
        ),
        // The customer replies with their token and HTML only.
        format!(
            "From: Jo <{CUSTOMER}>\r\nTo: support+{jo_token}@example.test\r\nSubject: RE: x\r\nMessage-ID: <html1@cust.test>\r\n\
             MIME-Version: 1.0\r\nContent-Type: text/html; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
             <p>Gr=FC=DFe</p><div class=3D\"gmail_quote\">On x wrote:<blockquote>old</blockquote></div>\r\n"
        ),
        // A bounce of a desk mail (DSN).
        format!(
            "Return-Path: <>\r\nFrom: Mail Delivery System <MAILER-DAEMON@mx.cust.test>\r\nTo: {DESK}\r\n\
             Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <bounce1@mx.cust.test>\r\n\
             MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"r\"\r\n\r\n\
             --r\r\nContent-Type: text/plain\r\n\r\nI could not deliver it.\r\n\
             --r\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.cust.test\r\n\r\n\
             Final-Recipient: rfc822; {CUSTOMER}\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 no such user\r\n\
             --r\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <{SENT_ID}>\r\nFrom: {DESK}\r\nTo: {CUSTOMER}\r\n--r--\r\n"
        ),
        // An auto-reply opening a ticket (staff are told).
        format!(
            "From: Away <away@cust.test>\r\nTo: {DESK}\r\nSubject: Automatic reply: Printer\r\nAuto-Submitted: auto-replied\r\n\
             Message-ID: <auto1@cust.test>\r\n\r\nI am away.\r\n"
        ),
        // Mail from the desk itself, and without Message-ID.
        format!("From: {DESK}\r\nTo: {DESK}\r\nSubject: loop\r\n\r\nloop\r\n"),
        // Nested MIME with an embedded message and odd charsets.
        format!(
            "From: =?iso-8859-1?q?J=F6rg?= <jorg@cust.test>\r\nTo: {DESK}\r\nSubject: =?utf-8?b?w5xiZXI=?= fwd\r\nMessage-ID: <nest1@cust.test>\r\n\
             MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=outer\r\n\r\n--outer\r\n\
             Content-Type: multipart/alternative; boundary=inner\r\n\r\n--inner\r\nContent-Type: text/plain; charset=koi8-r\r\n\r\nKOI8-BYTES\r\n\
             --inner\r\nContent-Type: text/html\r\n\r\n<b>hi</b>\r\n--inner--\r\n--outer\r\nContent-Type: message/rfc822\r\n\r\n\
             From: a@b.test\r\nSubject: inner\r\n\r\nInner body\r\n--outer--\r\n"
        ),
        // The process commands (the last four seeds, in this order): a
        // problem, an outage and an item on an incident, with an answer...
        format!(
            "{}\r\n/problem VPN drops hourly\r\n/outage start db1\r\n/ci db1\r\n\r\nLooking into it.\r\n",
            staff_head(ADA, &proof_to, "")
        ),
        // ...the incident made a change with its risk, impact and window,
        // put in a new release...
        format!(
            "{}\r\n/kind change\r\n/risk high\r\n/impact mail down for 10 minutes\r\n\
             /window 2026-12-10 22:00 2026-12-11 02:00 Europe/Berlin\r\n/release new Q4 rollout\r\n",
            staff_head(ADA, &proof_to, "")
        ),
        // ...commands that do not fit an incident...
        format!(
            "{}\r\n/rootcause x\r\n/knownerror vpn|anyconnect, drops\r\n/deploy\r\n/outage end\r\n/release REL-000009\r\n",
            staff_head(ADA, &proof_to, "")
        ),
        // ...and a new incident a known error of the desk matches.
        format!(
            "From: Kim <kim@cust.test>\r\nTo: {DESK}\r\nSubject: VPN\r\nMessage-ID: <vpn1@cust.test>\r\n\r\n\
             My VPN drops every hour since Monday.\r\n"
        ),
    ];
    seeds
        .into_iter()
        .map(|s| match s.split_once("KOI8-BYTES") {
            // Bytes that are not UTF-8: "Привет" in KOI8-R.
            Some((a, b)) => [a.as_bytes(), b"\xf0\xd2\xc9\xd7\xc5\xd4", b.as_bytes()].concat(),
            None => s.into_bytes(),
        })
        .collect()
}

/// Every file under `root` (recursively, sorted) up to `max_bytes`, except
/// the corpus's expected-result files and images.
pub fn corpus_seeds(root: &Path, max_bytes: u64) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                dirs.push(path);
            } else if meta.len() <= max_bytes
                && !matches!(
                    path.extension().and_then(|x| x.to_str()),
                    Some("json" | "png" | "wav" | "md" | "mbox")
                )
            {
                files.push(path);
            }
        }
    }
    files.sort();
    files
        .into_iter()
        .filter_map(|p| std::fs::read(&p).ok().map(|b| (p, b)))
        .filter(|(_, b)| !b.is_empty())
        .collect()
}

/// A mail cut into header fields (each with its continuation lines, without
/// the final line break) and body.
struct Mail {
    headers: Vec<Vec<u8>>,
    body: Vec<u8>,
    nl: &'static [u8],
}

impl Mail {
    fn split(raw: &[u8]) -> Mail {
        let nl: &'static [u8] = if raw.windows(2).any(|w| w == b"\r\n") {
            b"\r\n"
        } else {
            b"\n"
        };
        let (head, body) = match find(raw, b"\r\n\r\n") {
            Some(i) => (&raw[..i], &raw[i + 4..]),
            None => match find(raw, b"\n\n") {
                Some(i) => (&raw[..i], &raw[i + 2..]),
                None => (raw, &[][..]),
            },
        };
        let mut headers: Vec<Vec<u8>> = Vec::new();
        for line in head.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            match (line.first(), headers.last_mut()) {
                (Some(b' ' | b'\t'), Some(last)) => {
                    last.extend_from_slice(nl);
                    last.extend_from_slice(line);
                }
                _ => headers.push(line.to_vec()),
            }
        }
        Mail {
            headers,
            body: body.to_vec(),
            nl,
        }
    }

    fn join(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + 64 * self.headers.len());
        for h in &self.headers {
            out.extend_from_slice(h);
            out.extend_from_slice(self.nl);
        }
        out.extend_from_slice(self.nl);
        out.extend_from_slice(&self.body);
        out
    }

    fn name_of(h: &[u8]) -> &[u8] {
        h.iter()
            .position(|&b| b == b':')
            .map_or(&[][..], |i| &h[..i])
    }

    /// Replaces the header `name` (the first one; added when missing).
    fn set(&mut self, name: &str, value: &[u8]) {
        let mut line = format!("{name}: ").into_bytes();
        line.extend_from_slice(value);
        match self
            .headers
            .iter()
            .position(|h| Self::name_of(h).eq_ignore_ascii_case(name.as_bytes()))
        {
            Some(i) => self.headers[i] = line,
            None => self.headers.push(line),
        }
    }

    fn remove(&mut self, name: &str) {
        self.headers
            .retain(|h| !Self::name_of(h).eq_ignore_ascii_case(name.as_bytes()));
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Makes inputs: seeds, mutated.
pub struct Mutator {
    pub rng: Rng,
    seeds: Vec<Vec<u8>>,
}

impl Mutator {
    pub fn new(seed: u64, seeds: Vec<Vec<u8>>) -> Mutator {
        let seeds = if seeds.is_empty() {
            builtin_seeds()
        } else {
            seeds
        };
        Mutator {
            rng: Rng::new(seed),
            seeds,
        }
    }

    pub fn seeds(&self) -> &[Vec<u8>] {
        &self.seeds
    }

    /// The next input: mostly a seed with one to four structure-aware
    /// mutations, sometimes byte havoc on top, sometimes arbitrary bytes.
    pub fn next_input(&mut self) -> Vec<u8> {
        let rng = &mut self.rng;
        if rng.one_in(25) {
            let max = if rng.one_in(4) { 4096 } else { 300 };
            let len = rng.below(max);
            return (0..len).map(|_| rng.next_u64() as u8).collect();
        }
        let base = self.seeds[rng.below(self.seeds.len())].clone();
        let mut mail = Mail::split(&base);
        for _ in 0..1 + rng.below(4) {
            self.mutate(&mut mail);
        }
        let mut raw = mail.join();
        if self.rng.one_in(6) {
            havoc(&mut self.rng, &mut raw);
        }
        raw
    }

    fn other_seed(&mut self) -> Mail {
        Mail::split(&self.seeds[self.rng.below(self.seeds.len())])
    }

    fn mutate(&mut self, m: &mut Mail) {
        let rng = &mut self.rng;
        match rng.below(17) {
            // Duplicate a header field.
            0 if !m.headers.is_empty() => {
                let h = m.headers[rng.below(m.headers.len())].clone();
                let at = rng.below(m.headers.len() + 1);
                m.headers.insert(at, h);
            }
            // Drop one.
            1 if !m.headers.is_empty() => {
                m.headers.remove(rng.below(m.headers.len()));
            }
            // Reorder.
            2 if m.headers.len() > 1 => {
                let (a, b) = (rng.below(m.headers.len()), rng.below(m.headers.len()));
                m.headers.swap(a, b);
                if rng.one_in(3) {
                    m.headers.reverse();
                }
            }
            // A long line, in a header or in the body.
            3 => {
                let unit: &[u8] = match rng.below(4) {
                    0 => b"x",
                    1 => b"word ",
                    2 => b"=?utf-8?b?w7w=?= ",
                    _ => b"a@x.test, ",
                };
                let n = 200 + rng.below(20_000) / unit.len();
                let long = unit.repeat(n);
                if !m.headers.is_empty() && rng.one_in(2) {
                    let i = rng.below(m.headers.len());
                    m.headers[i].push(b' ');
                    m.headers[i].extend_from_slice(&long);
                } else {
                    let at = rng.below(m.body.len() + 1);
                    m.body.splice(at..at, long);
                }
            }
            // Fold a header at its spaces, oddly.
            4 if !m.headers.is_empty() => {
                let i = rng.below(m.headers.len());
                const FOLDS: &[&[u8]] = &[b"\r\n ", b"\r\n\t", b"\n ", b"\r\n", b"\r\n \r\n "];
                let fold = *rng.pick(FOLDS);
                let h = std::mem::take(&mut m.headers[i]);
                let mut out = Vec::with_capacity(h.len() + 8);
                for &b in &h {
                    if b == b' ' && rng.one_in(2) {
                        out.extend_from_slice(fold);
                    } else {
                        out.push(b);
                        if rng.one_in(40) {
                            out.extend_from_slice(fold);
                        }
                    }
                }
                m.headers[i] = out;
            }
            // An odd address (or a list of them) in an address header.
            5 | 6 => {
                let name = *rng.pick(ADDRESS_HEADERS);
                let mut value = Vec::new();
                for k in 0..1 + rng.below(3) {
                    if k > 0 {
                        value.extend_from_slice(b", ");
                    }
                    value.extend_from_slice(rng.pick(EVIL_ADDRESSES).as_bytes());
                }
                m.set(name, &value);
            }
            // Thousands of Cc.
            7 if rng.one_in(8) => {
                let n = if rng.one_in(2) {
                    10_000
                } else {
                    1 + rng.below(2000)
                };
                let mut value = Vec::with_capacity(n * 24);
                for k in 0..n {
                    if k > 0 {
                        value.extend_from_slice(b",\r\n ");
                    }
                    if rng.one_in(500) {
                        value.extend_from_slice(rng.pick(EVIL_ADDRESSES).as_bytes());
                    } else {
                        value.extend_from_slice(format!("P{k} <p{k}@many.test>").as_bytes());
                    }
                }
                m.set(if rng.one_in(2) { "Cc" } else { "To" }, &value);
            }
            // An encoded word (or a subject tag) in a subject or display name.
            8 | 9 => {
                let word = rng.pick(EVIL_WORDS).as_bytes();
                let name = *rng.pick(&["Subject", "Subject", "From", "To", "Cc", "Comments"]);
                let at = m
                    .headers
                    .iter()
                    .position(|h| Mail::name_of(h).eq_ignore_ascii_case(name.as_bytes()));
                match at {
                    Some(i) => {
                        let h = &mut m.headers[i];
                        let colon = h.iter().position(|&b| b == b':').map_or(0, |c| c + 1);
                        let at = colon + rng.below(h.len() - colon + 1);
                        let mut w = vec![b' '];
                        w.extend_from_slice(word);
                        w.push(b' ');
                        h.splice(at..at, w);
                    }
                    None => m.set(name, word),
                }
            }
            // A new MIME tree for the body.
            10 | 11 => {
                let other = self.other_seed();
                let rng = &mut self.rng;
                let (ct, body) = mime_tree(rng, &other, 0);
                m.remove("Content-Type");
                m.remove("Content-Transfer-Encoding");
                m.headers.push(b"MIME-Version: 1.0".to_vec());
                let mut h = b"Content-Type: ".to_vec();
                h.extend_from_slice(&ct);
                m.headers.push(h);
                m.body = body;
            }
            // Splice: this mail's headers with another's body, or the
            // other way round, or a cut at a random point.
            12 => {
                let other = self.other_seed();
                let rng = &mut self.rng;
                match rng.below(3) {
                    0 => m.body = other.body,
                    1 => m.headers = other.headers,
                    _ => {
                        let mine = m.join();
                        let theirs = other.join();
                        let mut out = mine[..rng.below(mine.len() + 1)].to_vec();
                        out.extend_from_slice(&theirs[rng.below(theirs.len() + 1)..]);
                        *m = Mail::split(&out);
                    }
                }
            }
            // Threading: a known Message-ID, a token, a tag.
            13 => {
                let pick = rng.below(6);
                let id = match pick {
                    0 => format!("<{}>", rng.pick(&KNOWN_IDS)),
                    1 => format!("<{SENT_ID}>"),
                    2 => format!("<{}.x@example.test>", token(1 + rng.below(5) as i64, 11)),
                    3 => "<INC-000002.staff@example.test>".to_string(),
                    4 => "<a@x> <a@x> <b@x> <a@x>".to_string(),
                    _ => "<>".to_string(),
                };
                let name = *rng.pick(&["In-Reply-To", "References", "Message-ID"]);
                m.set(name, id.as_bytes());
                if rng.one_in(2) {
                    let t = token(1 + rng.below(5) as i64, *rng.pick(&[11, 21, 22, 31]));
                    m.set("To", format!("Desk <support+{t}@example.test>").as_bytes());
                }
            }
            // A staff reply: staff sender, maybe proof, commands.
            14 => {
                let (from, contact) = *rng.pick(&[(ADA, ADA_CONTACT), (BOB, BOB_CONTACT)]);
                m.set("From", from.as_bytes());
                let seq = 1 + rng.below(5) as i64;
                match rng.below(3) {
                    0 => {
                        let t = token(seq, contact);
                        m.set("To", format!("support+{t}@example.test").as_bytes());
                    }
                    1 => m.set(
                        "Authentication-Results",
                        format!("{TRUSTED_AUTHSERV}; dkim=pass header.d=example.test").as_bytes(),
                    ),
                    _ => {}
                }
                m.set("Subject", format!("Re: [ACME INC-{seq:06}] x").as_bytes());
                let mut lines = Vec::new();
                for _ in 0..1 + rng.below(4) {
                    let c = *rng.pick(COMMANDS);
                    if c.starts_with("/cc add") && rng.one_in(2) {
                        lines.push(format!("/cc add {}", rng.pick(EVIL_ADDRESSES)));
                    } else {
                        lines.push(c.to_string());
                    }
                }
                let mut body = lines.join("\r\n").into_bytes();
                body.extend_from_slice(b"\r\n\r\n");
                body.extend_from_slice(&m.body);
                m.body = body;
            }
            // Invalid UTF-8, NUL, bare CR in a header value.
            15 if !m.headers.is_empty() => {
                let i = rng.below(m.headers.len());
                const BAD: &[&[u8]] = &[
                    b"\xff\xfe",
                    b"\xc3",
                    b"\0",
                    b"\r",
                    b"\xed\xa0\x80",
                    b"\xf4\x90\x80\x80",
                ];
                let bad = *rng.pick(BAD);
                let at = rng.below(m.headers[i].len() + 1);
                m.headers[i].splice(at..at, bad.iter().copied());
            }
            // A header with an empty or missing value, or no colon.
            _ => {
                let name = *rng.pick(&[
                    "From",
                    "Message-ID",
                    "Content-Type",
                    "Subject",
                    "Return-Path",
                    "Auto-Submitted",
                    "Precedence",
                    "List-Id",
                    "X-Failed-Recipients",
                ]);
                match rng.below(3) {
                    0 => m.set(name, b""),
                    1 => m.headers.push(name.as_bytes().to_vec()),
                    _ => m.set(name, b"<>"),
                }
            }
        }
    }
}

/// A random MIME tree: its Content-Type value and body. Boundaries may be
/// missing, repeated or wrong; transfer encodings and charsets may lie.
fn mime_tree(rng: &mut Rng, other: &Mail, depth: usize) -> (Vec<u8>, Vec<u8>) {
    if depth > 0 && rng.one_in(3) || depth > 6 && !rng.one_in(20) || depth > 60 {
        return leaf(rng, other);
    }
    let sub = *rng.pick(&[
        "mixed",
        "alternative",
        "related",
        "report",
        "signed",
        "digest",
    ]);
    let boundary = match rng.below(6) {
        0 => String::new(),
        1 => "b".to_string(),
        2 => format!("b{}", depth / 2),
        _ => format!("=_b{depth}_{}", rng.below(1000)),
    };
    let mut ct = format!("multipart/{sub}");
    if !(boundary.is_empty() && rng.one_in(2)) {
        ct.push_str(&format!("; boundary=\"{boundary}\""));
    }
    if sub == "report" {
        ct.push_str("; report-type=delivery-status");
    }
    let mut body = Vec::new();
    if rng.one_in(3) {
        body.extend_from_slice(b"This is a preamble.\r\n");
    }
    // Deep nesting: a chain, sometimes hundreds deep.
    let parts = if depth > 3 { 1 } else { 1 + rng.below(4) };
    for _ in 0..parts {
        if !rng.one_in(10) {
            body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        }
        let (pct, pbody) = mime_tree(rng, other, depth + 1);
        body.extend_from_slice(b"Content-Type: ");
        body.extend_from_slice(&pct);
        body.extend_from_slice(b"\r\n");
        if rng.one_in(3) {
            body.extend_from_slice(
                format!("Content-Transfer-Encoding: {}\r\n", rng.pick(ENCODINGS)).as_bytes(),
            );
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(&pbody);
        body.extend_from_slice(b"\r\n");
    }
    match rng.below(5) {
        0 => {}
        1 => body.extend_from_slice(format!("--{boundary}\r\n").as_bytes()),
        _ => body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes()),
    }
    (ct.into_bytes(), body)
}

/// A leaf part: its Content-Type value (with its other headers after it,
/// folded into the value's line) and body.
fn leaf(rng: &mut Rng, other: &Mail) -> (Vec<u8>, Vec<u8>) {
    let charset = *rng.pick(CHARSETS);
    let cte = *rng.pick(ENCODINGS);
    let (ctype, body): (String, Vec<u8>) = match rng.below(9) {
        0 => ("text/plain".into(), other.body.clone()),
        1 => (
            "text/html".into(),
            b"<html><body><p>Hi<br>there</p><blockquote>old</blockquote></body></html>".to_vec(),
        ),
        2 => ("message/rfc822".into(), other.join()),
        3 => (
            "message/delivery-status".into(),
            format!(
                "Reporting-MTA: dns; mx.test\r\n\r\nFinal-Recipient: rfc822; {}\r\nAction: failed\r\nStatus: 5.{}.1\r\n",
                rng.pick(EVIL_ADDRESSES),
                rng.below(10)
            )
            .into_bytes(),
        ),
        4 => (
            "text/rfc822-headers".into(),
            format!("Message-ID: <{SENT_ID}>\r\nTo: {}\r\n", rng.pick(EVIL_ADDRESSES)).into_bytes(),
        ),
        5 => {
            let name = *rng.pick(&[
                "../../etc/passwd",
                "=?utf-8?b?QQpC?=.pdf",
                "a\r\nb.txt",
                "",
                "\u{202e}fdp.exe",
            ]);
            (
                format!("application/octet-stream; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\""),
                (0..rng.below(200)).map(|_| rng.next_u64() as u8).collect(),
            )
        }
        6 => ("text/plain".into(), b"\xff\xfe\xc3(\xa0\xa1 invalid \x00 utf-8 \xe2\x82".to_vec()),
        7 => (
            "text/plain".into(),
            b"=ZZ=\r\n=3D=C3=\r\nbad qp=\r\n".to_vec(),
        ),
        _ => (
            (*rng.pick(&["application/ms-tnef", "text/calendar", "image/png", "bogus", "text/", "/"])).into(),
            b"begin 644 x\r\nM86)C\r\nend\r\nQUJD==&&".to_vec(),
        ),
    };
    let mut ct = ctype.into_bytes();
    if !charset.is_empty() && !ct.starts_with(b"application") {
        ct.extend_from_slice(format!("; charset={charset}").as_bytes());
    }
    if !cte.is_empty() && rng.one_in(2) {
        ct.extend_from_slice(format!("\r\nContent-Transfer-Encoding: {cte}").as_bytes());
    }
    (ct, body)
}

/// Byte-level havoc: flips, inserts, deletions, copies, tokens.
fn havoc(rng: &mut Rng, raw: &mut Vec<u8>) {
    const TOKENS: &[&[u8]] = &[
        b"\r\n",
        b"\n",
        b"\r\n\r\n",
        b"\r\n ",
        b":",
        b"<",
        b">",
        b"@",
        b"\"",
        b"=?",
        b"?=",
        b"--",
        b"boundary=",
        b"\0",
        b"\xff",
        b"[ACME INC-000001]",
        b"\r\n/close\r\n",
        b"Content-Type: multipart/mixed; boundary=b\r\n",
    ];
    for _ in 0..1 + rng.below(8) {
        let len = raw.len();
        match rng.below(5) {
            0 if len > 0 => {
                let i = rng.below(len);
                raw[i] ^= 1 << rng.below(8);
            }
            1 => {
                let at = rng.below(len + 1);
                let t = *rng.pick(TOKENS);
                raw.splice(at..at, t.iter().copied());
            }
            2 if len > 0 => {
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(64));
                raw.drain(at..at + n);
            }
            3 if len > 0 => {
                let from = rng.below(len);
                let n = 1 + rng.below((len - from).min(256));
                let chunk = raw[from..from + n].to_vec();
                let at = rng.below(len + 1);
                raw.splice(at..at, chunk);
            }
            _ => {
                let at = rng.below(len + 1);
                raw.insert(at, rng.next_u64() as u8);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mail_splits_and_joins_back() {
        let raw = b"From: a@b.test\r\nSubject: x\r\n  folded\r\n\r\nbody\r\n\r\nmore\r\n";
        let m = Mail::split(raw);
        assert_eq!(m.headers.len(), 2);
        assert_eq!(m.join(), raw.to_vec());
    }

    #[test]
    fn the_same_seed_makes_the_same_inputs() {
        let mut a = Mutator::new(7, Vec::new());
        let mut b = Mutator::new(7, Vec::new());
        for _ in 0..200 {
            assert_eq!(a.next_input(), b.next_input());
        }
    }
}
