//! Tells mail written by a person from mail written by a robot, so the desk
//! never answers a robot (RFC 3834) and two robots cannot loop through it.
//!
//! The foundation covers the standard headers; subject heuristics and DSN
//! parsing come with the loop-handling work.

use super::mail::{Inbound, RobotSignals};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Class {
    /// Written by a person: store and acknowledge.
    Normal,
    /// An auto-reply or other automatic mail: store, never answer.
    AutoReply(&'static str),
    /// A delivery status notification: store, never answer.
    Bounce(&'static str),
}

impl Class {
    pub fn as_str(&self) -> &'static str {
        match self {
            Class::Normal => "normal",
            Class::AutoReply(_) => "auto_reply",
            Class::Bounce(_) => "bounce",
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            Class::Normal => "",
            Class::AutoReply(r) | Class::Bounce(r) => r,
        }
    }

    /// Whether the desk may send an automatic answer to this mail.
    pub fn may_answer(&self) -> bool {
        matches!(self, Class::Normal)
    }
}

pub fn classify(mail: &Inbound) -> Class {
    let RobotSignals {
        auto_submitted,
        precedence,
        x_autoreply,
        x_auto_response_suppress,
        null_return_path,
        multipart_report,
    } = &mail.robot;
    let sender_local = mail
        .from
        .as_ref()
        .map(|a| a.local_part().to_ascii_lowercase())
        .unwrap_or_default();

    if *multipart_report {
        return Class::Bounce("multipart/report");
    }
    if sender_local == "mailer-daemon" || sender_local == "postmaster" {
        return Class::Bounce("sent by MAILER-DAEMON/postmaster");
    }
    if *null_return_path {
        return Class::Bounce("empty Return-Path");
    }
    if let Some(v) = auto_submitted
        && !v.trim().eq_ignore_ascii_case("no")
    {
        return Class::AutoReply("Auto-Submitted");
    }
    if let Some(p) = precedence {
        let p = p.trim().to_ascii_lowercase();
        if matches!(p.as_str(), "bulk" | "junk" | "list" | "auto_reply") {
            return Class::AutoReply("Precedence");
        }
    }
    if *x_autoreply {
        return Class::AutoReply("X-Autoreply");
    }
    if *x_auto_response_suppress {
        return Class::AutoReply("X-Auto-Response-Suppress");
    }
    Class::Normal
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::mail::Address;

    fn mail(f: impl FnOnce(&mut Inbound)) -> Inbound {
        let mut m = Inbound {
            from: Some(Address::new("", "jo@example.test")),
            ..Default::default()
        };
        f(&mut m);
        m
    }

    #[test]
    fn a_plain_mail_is_normal() {
        assert_eq!(classify(&mail(|_| {})), Class::Normal);
    }

    #[test]
    fn robots_are_recognised() {
        let cases: Vec<(Inbound, &str)> = vec![
            (
                mail(|m| m.robot.auto_submitted = Some("auto-replied".into())),
                "auto_reply",
            ),
            (
                mail(|m| m.robot.auto_submitted = Some("auto-generated".into())),
                "auto_reply",
            ),
            (
                mail(|m| m.robot.precedence = Some("Bulk".into())),
                "auto_reply",
            ),
            (
                mail(|m| m.robot.precedence = Some("junk".into())),
                "auto_reply",
            ),
            (mail(|m| m.robot.x_autoreply = true), "auto_reply"),
            (
                mail(|m| m.robot.x_auto_response_suppress = true),
                "auto_reply",
            ),
            (mail(|m| m.robot.null_return_path = true), "bounce"),
            (mail(|m| m.robot.multipart_report = true), "bounce"),
            (
                mail(|m| m.from = Some(Address::new("", "MAILER-DAEMON@x.test"))),
                "bounce",
            ),
            (
                mail(|m| m.from = Some(Address::new("", "postmaster@x.test"))),
                "bounce",
            ),
        ];
        for (i, (m, want)) in cases.iter().enumerate() {
            assert_eq!(classify(m).as_str(), *want, "case {i}: {:?}", m.robot);
        }
    }

    #[test]
    fn auto_submitted_no_is_a_person() {
        let m = mail(|m| m.robot.auto_submitted = Some(" No ".into()));
        assert_eq!(classify(&m), Class::Normal);
        let m = mail(|m| m.robot.precedence = Some("first-class".into()));
        assert_eq!(classify(&m), Class::Normal);
    }
}
