//! The acknowledgement a customer receives for a new ticket, as plain data.
//! Rendering it to RFC 5322 bytes is the outbox's job.

use super::mail::{Address, Inbound};
use super::threading::tagged_subject;
use super::ticket::TicketNumber;

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
    pub to: Vec<Address>,
    pub subject: String,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    /// `Auto-Submitted` value for automatic mail (RFC 3834).
    pub auto_submitted: Option<&'static str>,
    pub body: String,
}

/// The acknowledgement of a new ticket opened by `mail`.
///
/// `token` makes the Message-ID unique; callers derive it from the inbound
/// mail's dedup key so that re-processing the same mail yields the same ID.
pub fn acknowledgement(
    desk: &Desk,
    number: TicketNumber,
    mail: &Inbound,
    to: &Address,
    token: &str,
) -> Outgoing {
    let subject = tagged_subject(&reply_subject(&mail.subject), &desk.tag, number);
    let mut references = mail.references.clone();
    if let Some(id) = &mail.message_id
        && !references.contains(id)
    {
        references.push(id.clone());
    }
    let body = format!(
        "Hello {name},\n\n\
         Thank you for contacting {desk}. We have received your message and \
         opened ticket {number} for it.\n\n\
         Please keep \"[{tag} {number}]\" in the subject when you write about \
         this request; replying to this mail does that for you.\n\n\
         Your message:\n\
         > {subject}\n\n\
         -- \n{desk}\n",
        name = if to.name.is_empty() {
            &to.email
        } else {
            &to.name
        },
        desk = desk.name,
        tag = desk.tag,
        subject = if mail.subject.trim().is_empty() {
            "(no subject)"
        } else {
            mail.subject.trim()
        },
    );
    Outgoing {
        message_id: format!("{number}.ack.{token}@{}", desk.id_domain()),
        from: desk.address.clone(),
        to: vec![to.clone()],
        subject,
        in_reply_to: mail.message_id.clone(),
        references,
        auto_submitted: Some("auto-replied"),
        body,
    }
}

/// `Re: subject`, without stacking prefixes.
pub fn reply_subject(subject: &str) -> String {
    let s = subject.trim();
    let lower = s.to_ascii_lowercase();
    if lower.starts_with("re:") || lower.starts_with("aw:") || lower.starts_with("sv:") {
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
    use crate::domain::ticket::Kind;

    #[test]
    fn acknowledgement_threads_under_the_customer_mail() {
        let desk = Desk {
            name: "ACME Service Desk".into(),
            address: Address::new("ACME Service Desk", "support@example.test"),
            tag: "ACME".into(),
        };
        let mail = Inbound {
            message_id: Some("m2@cust".into()),
            references: vec!["m1@cust".into()],
            subject: "Printer on fire".into(),
            ..Default::default()
        };
        let to = Address::new("Jo", "jo@example.test");
        let n = TicketNumber {
            kind: Kind::Incident,
            seq: 7,
        };
        let ack = acknowledgement(&desk, n, &mail, &to, "abc");
        assert_eq!(ack.subject, "[ACME INC-000007] Re: Printer on fire");
        assert_eq!(ack.in_reply_to.as_deref(), Some("m2@cust"));
        assert_eq!(
            ack.references,
            vec!["m1@cust".to_string(), "m2@cust".to_string()]
        );
        assert_eq!(ack.message_id, "INC-000007.ack.abc@example.test");
        assert_eq!(ack.auto_submitted, Some("auto-replied"));
        assert_eq!(ack.to, vec![to]);
        assert!(ack.body.contains("INC-000007"));
    }

    #[test]
    fn reply_subject_does_not_stack() {
        assert_eq!(reply_subject("Re: x"), "Re: x");
        assert_eq!(reply_subject("AW: x"), "AW: x");
        assert_eq!(reply_subject("x"), "Re: x");
        assert_eq!(reply_subject(""), "Re: (no subject)");
    }
}
