//! Who the desk is and what a mail it sends looks like, as plain data.
//! `render` turns it into RFC 5322 bytes.

use super::mail::Address;

/// Who the desk is, as outbound mail shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desk {
    pub name: String,
    pub address: Address,
    pub tag: String,
}

impl Desk {
    /// The domain of desk Message-IDs.
    pub fn id_domain(&self) -> &str {
        match self.address.domain() {
            "" => "helpdeskd.invalid",
            d => d,
        }
    }
}

/// A mail the desk will send, before rendering.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// Without angle brackets.
    pub message_id: String,
    pub from: Address,
    /// Plus-addressed to the desk with the recipient's token.
    pub reply_to: Option<Address>,
    pub to: Vec<Address>,
    pub subject: String,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    /// `Auto-Submitted` value for automatic mail (RFC 3834).
    pub auto_submitted: Option<&'static str>,
    pub body: String,
    /// An HTML alternative to `body` (e.g. the service report); the mail
    /// is then `multipart/alternative`.
    pub html: Option<String>,
    pub attachments: Vec<OutAttachment>,
    /// The ticket the mail belongs to (`INC-000042`): Outlook's conversation
    /// headers are derived from it, so the ticket's mails group as one.
    pub thread: Option<String>,
}

/// A file sent along, e.g. a staff answer's attachments relayed to the customer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutAttachment {
    pub filename: String,
    pub content_type: String,
    pub data: Vec<u8>,
}

/// `Re: subject`, without stacking prefixes.
pub fn reply_subject(subject: &str) -> String {
    let s = subject.trim();
    let lower = s.to_ascii_lowercase();
    if ["re:", "aw:", "sv:", "antw:", "r:", "res:", "ref:"]
        .iter()
        .any(|p| lower.starts_with(p))
    {
        s.to_string()
    } else if s.is_empty() {
        "Re: (no subject)".to_string()
    } else {
        format!("Re: {s}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_subject_does_not_stack() {
        assert_eq!(reply_subject("Re: x"), "Re: x");
        assert_eq!(reply_subject("AW: x"), "AW: x");
        assert_eq!(reply_subject("x"), "Re: x");
        assert_eq!(reply_subject(""), "Re: (no subject)");
    }
}
