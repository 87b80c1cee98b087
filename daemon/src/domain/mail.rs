//! An inbound mail as plain data: what the parser could read, reduced to what
//! the desk decides with. The raw bytes travel beside it, never inside it.

/// A mailbox address; `email` is lower-cased so it compares as the desk compares.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Address {
    pub name: String,
    pub email: String,
}

impl Address {
    /// Made safe to write back at once: the name on one line (a display
    /// name that decodes to a line break or a NUL is common in hostile
    /// mail), the address without control characters, lower-cased.
    pub fn new(name: impl Into<String>, email: &str) -> Address {
        let name = name.into();
        let name = if name.chars().any(|c| c.is_control()) || name.contains("  ") {
            one_line(&name)
        } else {
            name.trim().to_string()
        };
        Address {
            name,
            email: email
                .trim()
                .chars()
                .filter(|c| !c.is_control())
                .collect::<String>()
                .to_ascii_lowercase(),
        }
    }

    /// `Name <email>` or the bare address, for storing and showing.
    pub fn display(&self) -> String {
        if self.name.is_empty() {
            self.email.clone()
        } else {
            format!("{} <{}>", self.name, self.email)
        }
    }

    /// The domain part, lower-cased; empty when the address has none.
    pub fn domain(&self) -> &str {
        self.email.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }

    pub fn local_part(&self) -> &str {
        self.email
            .rsplit_once('@')
            .map(|(l, _)| l)
            .unwrap_or(&self.email)
    }
}

/// Header facts that tell a robot from a person (see `classify`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RobotSignals {
    pub auto_submitted: Option<String>,
    pub precedence: Option<String>,
    /// `X-Autoreply` or `X-Autorespond` present.
    pub x_autoreply: bool,
    /// `X-Auto-Response-Suppress` present with a value other than `None`.
    pub x_auto_response_suppress: bool,
    /// `Return-Path: <>`: the null sender of bounces and many auto-replies.
    pub null_return_path: bool,
    /// The top-level type is `multipart/report` (DSNs, MDNs, feedback reports).
    pub multipart_report: bool,
    /// The machine-readable report the mail carries: the `report-type` of a
    /// `multipart/report`, or a report part found elsewhere in the mail.
    pub report: Option<Report>,
    /// A mailing list or newsletter: `List-Id`, `List-Unsubscribe` or another
    /// RFC 2369 `List-*` header, or a list manager's own (`X-BeenThere`,
    /// `Mailing-List`, `X-ML-Name` …).
    pub list_id: bool,
    /// `X-Loop` present: the mail went through a loop-guarded robot.
    pub x_loop: bool,
    /// `X-Failed-Recipients` present (Exim, Gmail and other bounces).
    pub x_failed_recipients: bool,
    /// Sent by a notification service that never carries a person's mail
    /// (Amazon SNS: `X-Amz-Sns-Message-Id`).
    pub notification_service: bool,
    /// What the body of a robot mail says when its headers did not make it
    /// a bounce (read only for such mail, see `classify::body_may_tell`).
    pub failure_text: Option<FailureText>,
}

/// A delivery failure a mail states in its body, not in a DSN part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureText {
    /// An Amazon SES bounce, complaint or delivery notification (the JSON
    /// of an SNS notification, or SES event publishing).
    AmazonSes,
    /// A mailing-list manager refused a post (Mailman, Google Groups,
    /// Sympa, LISTSERV, ezmlm …): a failed delivery to the list address.
    ListRejection,
    /// A plain-text delivery failure (qmail, Exim, Exchange, Notes, Gmail …).
    DeliveryFailure,
}

/// A machine-readable report (RFC 6522) carried by a mail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Report {
    /// `message/delivery-status` (RFC 3464 DSN): a bounce or a delay notice.
    DeliveryStatus,
    /// `message/feedback-report` (RFC 5965 ARF): a spam or abuse complaint.
    Feedback,
    /// `message/disposition-notification` (RFC 8098 MDN): a read receipt.
    Disposition,
    /// Any other `report-type`.
    Other,
}

/// What a bounce says about the mail that could not be delivered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bounce {
    pub kind: BounceKind,
    /// The recipients whose delivery failed, lower-cased; empty unless
    /// `kind` is `Failed`, and then also when the report does not say.
    pub recipients: Vec<String>,
    /// The Message-ID of the mail that bounced, without angle brackets.
    pub original_message_id: Option<String>,
    /// The enhanced status code (RFC 3463), e.g. `5.1.1`.
    pub status: Option<String>,
    /// The receiving server's diagnostic, one line, at most 300 characters.
    pub diagnostic: Option<String>,
}

/// Whether a bounce reports a failed delivery.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BounceKind {
    /// Delivery failed for good.
    #[default]
    Failed,
    /// A DSN that names no failed delivery: a delay notice (the mail is still
    /// being tried), or a relay or delivery notice.
    Delayed,
    /// A feedback report: a spam complaint about a mail that was delivered.
    Complaint,
}

/// An attachment's metadata; its bytes stay in the stored raw message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachmentMeta {
    /// The MIME part index in the raw message, to extract the bytes again.
    pub part: u32,
    pub filename: String,
    pub content_type: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inbound {
    /// Without angle brackets.
    pub message_id: Option<String>,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    pub from: Option<Address>,
    pub to: Vec<Address>,
    pub cc: Vec<Address>,
    /// `Delivered-To` / `X-Original-To`: where the mail was actually
    /// delivered, which keeps a plus-addressed reply token even when the
    /// visible `To:` lost it.
    pub delivered_to: Vec<String>,
    /// Raw `Authentication-Results` header values, newest first.
    pub auth_results: Vec<String>,
    pub subject: String,
    /// The whole text body, as the mail has it.
    pub text: String,
    /// What the writer added: quoted history and signatures stripped.
    /// `None` when the mail cannot thread into a ticket (see
    /// [`Inbound::may_thread`]): it opens one, which shows the whole text.
    pub new_text: Option<String>,
    pub attachments: Vec<AttachmentMeta>,
    pub robot: RobotSignals,
    /// What a bounce reports; only read from mail classified as a bounce.
    pub bounce: Option<Bounce>,
    /// What could not be read, in words an admin understands.
    pub warnings: Vec<String>,
}

impl Inbound {
    /// Whether the mail can belong to an existing ticket at all: it refers
    /// to other mails, went to a plus address (a reply token), carries a
    /// bracketed subject tag, or is a bounce (threaded by the mail it
    /// returns). Stripping quotes is a good part of parsing, and only such
    /// mail needs it.
    pub fn may_thread(&self) -> bool {
        !self.in_reply_to.is_empty()
            || !self.references.is_empty()
            || self.bounce.is_some()
            || self.subject.contains('[')
            || self
                .to
                .iter()
                .chain(&self.cc)
                .any(|a| a.email.contains('+'))
            || self.delivered_to.iter().any(|d| d.contains('+'))
    }

    /// The text a reply adds: [`Inbound::new_text`], or the whole text when
    /// it was not worked out.
    pub fn reply_text(&self) -> &str {
        self.new_text.as_deref().unwrap_or(&self.text)
    }
}

/// A header value on one line: control characters (CR, LF, NUL …) become
/// spaces and runs of white space one space. Text read from outside ends up
/// in headers the desk writes, where a line break would inject a header.
pub fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s
        .split(|c: char| c.is_control() || c.is_whitespace())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Text without NUL characters, which PostgreSQL's text columns refuse;
/// borrowed when there is none.
pub fn without_nul(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains('\0') {
        std::borrow::Cow::Owned(s.replace('\0', ""))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// The dedup key of a mail: its Message-ID, or a content hash when it has none.
pub fn dedup_key(message_id: Option<&str>, raw_sha256_hex: &str) -> String {
    match message_id {
        Some(id) if !id.is_empty() => format!("mid:{id}"),
        _ => format!("sha256:{raw_sha256_hex}"),
    }
}

/// Makes an attachment file name safe to show and to save: no directories, no
/// control characters, no leading dots, at most 200 characters.
pub fn sanitize_filename(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, ':' | '*' | '?' | '"' | '<' | '>' | '|') {
                '_'
            } else {
                c
            }
        })
        .collect();
    let trimmed = cleaned.trim().trim_start_matches('.').trim();
    let limited: String = trimmed.chars().take(200).collect();
    if limited.is_empty() {
        "attachment".to_string()
    } else {
        limited
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_lose_paths_and_control_characters() {
        assert_eq!(sanitize_filename("../../etc/passwd"), "passwd");
        assert_eq!(sanitize_filename("C:\\Users\\x\\report.pdf"), "report.pdf");
        assert_eq!(sanitize_filename(".htaccess"), "htaccess");
        assert_eq!(sanitize_filename("a\u{0}b\nc.txt"), "a_b_c.txt");
        assert_eq!(sanitize_filename(""), "attachment");
        assert_eq!(sanitize_filename("..."), "attachment");
        assert_eq!(sanitize_filename(&"x".repeat(500)).len(), 200);
    }

    #[test]
    fn addresses_are_made_safe_to_write_back() {
        let a = Address::new("A\nB\r\n\0 C", " Jo@Example.TEST\0 ");
        assert_eq!(a.name, "A B C");
        assert_eq!(a.email, "jo@example.test");
        assert_eq!(Address::new("  Jo   Doe ", "j@x.test").name, "Jo Doe");
        assert_eq!(one_line("a\tb\u{0}\u{7f}c"), "a b c");
        assert_eq!(without_nul("a\0b"), "ab");
    }

    #[test]
    fn dedup_key_prefers_message_id() {
        assert_eq!(dedup_key(Some("a@b"), "ff"), "mid:a@b");
        assert_eq!(dedup_key(None, "ff"), "sha256:ff");
        assert_eq!(dedup_key(Some(""), "ff"), "sha256:ff");
    }
}
