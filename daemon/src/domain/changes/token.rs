//! Approval tokens: each approval request carries, after the recipient's
//! ordinary reply token, an approval tag `a<ROUND>.<MAC>` whose MAC binds
//! the change, the submission round and the approver's address:
//! `support+CHG-000012.17.<mac>.a2.<mac2>@…` in the Reply-To and the same
//! in the Message-ID. The ordinary token threads the answer (rule 2);
//! the tag proves that the sender is the approver the request went to, for
//! this round: a submission again makes the earlier requests worthless.

use crate::domain::mail::{Address, Inbound};
use crate::domain::token::TokenKey;

/// The approval tag of `approver` for round `round` of change `seq`.
pub fn tag(key: &TokenKey, seq: i64, round: u32, approver: &str) -> String {
    format!("a{round}.{}", mac(key, seq, round, approver))
}

/// Hex characters of the tag's MAC: 48 bits, so that the plus-addressed
/// Reply-To stays within the 64 characters of a local part (RFC 5321) for
/// desk addresses up to 18 characters before the `@`.
const TAG_HEX: usize = 12;

fn mac(key: &TokenKey, seq: i64, round: u32, approver: &str) -> String {
    let mut m = key.mac_text(&format!(
        "change-approval.{seq}.{round}.{}",
        approver.trim().to_ascii_lowercase()
    ));
    m.truncate(TAG_HEX);
    m
}

/// An approval tag found in a mail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// The ticket sequence of the ordinary token before it; `None` when
    /// that token does not verify.
    pub seq: Option<i64>,
    pub round: u32,
    pub mac: String,
}

impl Found {
    /// Whether the tag was issued to `approver` for `seq`.
    pub fn issued_to(&self, key: &TokenKey, seq: i64, approver: &str) -> bool {
        self.seq == Some(seq)
            && mac(key, seq, self.round, approver) == self.mac.to_ascii_lowercase()
    }
}

/// Every approval tag in the addresses `mail` was sent to (plus-addressed
/// to the desk) and in the Message-IDs it refers to.
pub fn find(key: &TokenKey, desk: &Address, mail: &Inbound) -> Vec<Found> {
    let clean = |s: &str| {
        s.trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_string()
    };
    let mut candidates: Vec<String> = Vec::new();
    for r in mail
        .to
        .iter()
        .chain(&mail.cc)
        .map(|a| a.email.clone())
        .chain(mail.delivered_to.iter().map(|d| clean(d)))
    {
        if let Some((local, domain)) = r.rsplit_once('@')
            && domain.eq_ignore_ascii_case(desk.domain())
            && let Some((base, tag)) = local.split_once('+')
            && base.eq_ignore_ascii_case(desk.local_part())
        {
            candidates.push(tag.to_string());
        }
    }
    for id in mail.in_reply_to.iter().chain(&mail.references) {
        if let Some((local, _)) = clean(id).rsplit_once('@') {
            candidates.push(local.to_string());
        }
    }
    let mut out: Vec<Found> = Vec::new();
    for c in candidates {
        let parts: Vec<&str> = c.split('.').collect();
        if parts.len() < 5 {
            continue;
        }
        let Some(round) = parts[3]
            .strip_prefix(['a', 'A'])
            .and_then(|r| r.parse::<u32>().ok())
        else {
            continue;
        };
        let seq = key.verify(&parts[..3].join(".")).map(|t| t.number.seq);
        let f = Found {
            seq,
            round,
            mac: parts[4].to_ascii_lowercase(),
        };
        if !out.contains(&f) {
            out.push(f);
        }
    }
    out
}
