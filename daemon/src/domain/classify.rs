//! Tells mail written by a person from mail written by a robot, so the desk
//! never answers a robot (RFC 3834) and two robots cannot loop through it.
//! The signals are read by `ingest::robot`; this is the decision, a pure
//! function of the mail.
//!
//! Rules, first match wins:
//!
//! 1. **Bounces** (`Class::Bounce`): a delivery-status report (RFC 3464 DSN,
//!    as `multipart/report` or as a report part inside another type); a
//!    feedback report (ARF, RFC 5965: a spam complaint about a desk mail; it
//!    is a bounce so that it threads into the ticket of the mail complained
//!    about, but names no failed recipient); any other `multipart/report`
//!    except read receipts; `X-Failed-Recipients`; Hotmail's complaint
//!    subject ("complaint about message from 192.0.2.1", a feedback report
//!    too); a sender whose local part is MAILER-DAEMON, mail-daemon or
//!    postmaster (`-`, `_`, `.` ignored), or who calls itself "Mail Delivery
//!    Subsystem"/"Mail Delivery System"; a bounce subject (below); a
//!    failure a robot states in its body (an Amazon SES notification, a list
//!    manager's rejection, a plain-text delivery failure), whatever
//!    auto-reply headers it carries too. Bodies are read for that only
//!    where `body_may_tell` says so: robots by their headers or mailbox, and
//!    list posts only from the list manager, so a person forwarding,
//!    pasting or discussing a bounce stays a person.
//! 2. **Other robots** (`Class::AutoReply`): `Auto-Submitted` other than
//!    `no`; `X-Autoreply`/`X-Autorespond`; `X-Auto-Response-Suppress` other
//!    than `None`; `Precedence: bulk|junk|auto_reply`; mailing lists and
//!    newsletters (`Precedence: list`, `List-Id`, `List-Unsubscribe`, the
//!    other `List-*` headers and list managers' own; reason "mailing list":
//!    RFC 3834 says not to answer them, even when a person wrote the post);
//!    `X-Loop`; a notification service (Amazon SNS); a read receipt (MDN);
//!    an auto-reply subject.
//! 3. `Return-Path: <>` alone: a bounce. It comes after rule 2 because
//!    vacation replies use the null sender too.
//!
//! **Subjects.** A person writes about these things too ("Out of office not
//! working", "Re: Undeliverable mail to our customer"), so a subject counts
//! only in the shape robots give it: the marker phrase *at the very start*,
//! followed by `:`, `(`, `-`, `[`, end of subject and the like, never by
//! another word ("Automatic reply: Printer", "Undeliverable: Invoice",
//! "Delivery Status Notification (Failure)", "failure notice"). A handful of
//! long phrases only robots write count at the start whatever follows
//! ("Undelivered Mail Returned to Sender", "Delivery Status Notification").
//! That alone decides. Weaker shapes decide only together with a weak signal
//! (the null `Return-Path`, or a sender like `noreply@`/`autoreply@`):
//! - a marker after reply prefixes (`Re:`, `AW:`, `SV:` …): a person
//!   answering an auto-reply writes "Re: Automatic reply: …";
//! - words people use in their own subjects: "Away", "Vacation", "Absence",
//!   "Auto", "Abwesend", "Afwezig", "Ausente", "Fuori sede", "Frånvarande" …
//!   (at the start, followed by a separator, as above);
//! - Lotus Notes' "… is out of the office" anywhere.
//!
//! Subjects are compared lower-cased with runs of white space as one space.

use super::mail::{FailureText, Inbound, Report, RobotSignals};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Class {
    /// Written by a person: store and acknowledge.
    Normal,
    /// An auto-reply or other automatic mail: store, never answer.
    AutoReply(&'static str),
    /// A delivery status notification (or a feedback report about a
    /// delivered mail, reason "feedback report"): store, never answer.
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

    pub fn is_bounce(&self) -> bool {
        matches!(self, Class::Bounce(_))
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
        report,
        list_id,
        x_loop,
        x_failed_recipients,
        notification_service,
        failure_text,
    } = &mail.robot;
    // `Mailer-Daemon`, `MAILER_DAEMON`, `post_master` compare as one.
    let (sender_local, sender_name) = mail
        .from
        .as_ref()
        .map(|a| {
            let local: String = a
                .local_part()
                .chars()
                .filter(|c| !matches!(c, '-' | '_' | '.'))
                .collect();
            (local.to_lowercase(), a.name.trim().to_lowercase())
        })
        .unwrap_or_default();
    let weak = *null_return_path || is_robot_mailbox(&sender_local);

    // 1. Bounces.
    match report {
        Some(Report::DeliveryStatus) => return Class::Bounce("delivery status notification"),
        Some(Report::Feedback) => return Class::Bounce("feedback report"),
        Some(Report::Disposition) => {}
        Some(Report::Other) | None => {
            if *multipart_report {
                return Class::Bounce("multipart/report");
            }
        }
    }
    if *x_failed_recipients {
        return Class::Bounce("X-Failed-Recipients");
    }
    if is_complaint_subject(&mail.subject) {
        return Class::Bounce("feedback report");
    }
    if matches!(
        sender_local.as_str(),
        "mailerdaemon" | "maildaemon" | "postmaster"
    ) || matches!(
        sender_name.as_str(),
        "mail delivery subsystem" | "mail delivery system" | "mailer-daemon"
    ) {
        return Class::Bounce("sent by MAILER-DAEMON/postmaster");
    }
    let subject = Subject::read(&mail.subject);
    match subject.bounce {
        Hint::Decisive => return Class::Bounce("bounce subject"),
        Hint::Weak if weak => return Class::Bounce("bounce subject"),
        _ => {}
    }
    // What the body of a robot mail says (read only where `body_may_tell`):
    // a failure stays a bounce whatever auto-reply headers it also carries.
    match failure_text {
        Some(FailureText::AmazonSes) => return Class::Bounce("Amazon SES notification"),
        Some(FailureText::ListRejection) => return Class::Bounce("mailing list rejection"),
        Some(FailureText::DeliveryFailure) => return Class::Bounce("delivery failure text"),
        None => {}
    }

    // 2. Other robots.
    if let Some(v) = auto_submitted
        && !first_token(v).eq_ignore_ascii_case("no")
        && !first_token(v).is_empty()
    {
        return Class::AutoReply("Auto-Submitted");
    }
    if *x_autoreply {
        return Class::AutoReply("X-Autoreply");
    }
    if *x_auto_response_suppress {
        return Class::AutoReply("X-Auto-Response-Suppress");
    }
    if let Some(p) = precedence {
        let p = first_token(p).to_ascii_lowercase();
        match p.as_str() {
            "list" => return Class::AutoReply("mailing list"),
            "bulk" | "junk" | "auto_reply" => return Class::AutoReply("Precedence"),
            _ => {}
        }
    }
    if *list_id {
        return Class::AutoReply("mailing list");
    }
    if *x_loop {
        return Class::AutoReply("X-Loop");
    }
    if *notification_service {
        return Class::AutoReply("notification service");
    }
    if *report == Some(Report::Disposition) {
        return Class::AutoReply("read receipt");
    }
    match subject.auto_reply {
        Hint::Decisive => return Class::AutoReply("auto-reply subject"),
        Hint::Weak if weak => return Class::AutoReply("auto-reply subject"),
        _ => {}
    }

    // 3. The null sender alone.
    if *null_return_path {
        return Class::Bounce("empty Return-Path");
    }
    Class::Normal
}

/// Whether the body of a mail that `class` does not make a bounce is worth
/// reading for a delivery failure (`RobotSignals::failure_text`): robots
/// only, so that a person forwarding or discussing a bounce stays a person.
/// A robot is a mail classed as one, or one from a robot's or a list
/// manager's mailbox. A post that is a robot only because a mailing list
/// carried it is read only when a list manager sent it: a person's post
/// about a bounce goes through lists too.
pub fn body_may_tell(mail: &Inbound, class: &Class) -> bool {
    let robot_sender = mail.from.as_ref().is_some_and(|a| {
        let local = a.local_part().to_lowercase();
        // VERP: `list-bounces+jo=example.com@host`.
        let local = local.split('+').next().unwrap_or("");
        let compact: String = local
            .chars()
            .filter(|c| !matches!(c, '-' | '_' | '.'))
            .collect();
        is_robot_mailbox(&compact)
            || is_list_manager(local)
            || matches!(
                compact.as_str(),
                "mailerdaemon" | "maildaemon" | "postmaster"
            )
    });
    match class {
        Class::Bounce(_) => false,
        _ if mail.robot.list_id => robot_sender,
        Class::AutoReply(_) => true,
        Class::Normal => robot_sender,
    }
}

/// The mailbox a list manager writes from: `list-owner`, `list-bounces`,
/// `list-request`, `owner-list`, or the manager's own (`listserv`, `sympa` …).
pub fn is_list_manager(local: &str) -> bool {
    ["-owner", "-bounces", "-bounce", "-request", "-admin"]
        .iter()
        .any(|s| local.ends_with(s))
        || local.starts_with("owner-")
        || matches!(
            local,
            "listserv"
                | "sympa"
                | "mailman"
                | "majordomo"
                | "ezmlm"
                | "listar"
                | "lyris"
                | "ecartis"
        )
}

/// `auto-replied (vacation)` → `auto-replied`; `list; x` → `list`.
fn first_token(v: &str) -> &str {
    v.split(|c: char| c.is_whitespace() || c == ';' || c == '(')
        .find(|t| !t.is_empty())
        .unwrap_or("")
}

/// Hotmail's complaint (JMRP) subject: "complaint about message from
/// 192.0.2.1". The address makes it a robot's.
pub fn is_complaint_subject(subject: &str) -> bool {
    let prefix = "complaint about message from ";
    let Some((head, rest)) = subject.trim().split_at_checked(prefix.len()) else {
        return false;
    };
    head.eq_ignore_ascii_case(prefix) && rest.trim().parse::<std::net::IpAddr>().is_ok()
}

/// Local parts (without `-`, `_`, `.`) of mailboxes only robots write from.
fn is_robot_mailbox(compact: &str) -> bool {
    matches!(
        compact,
        "noreply"
            | "donotreply"
            | "autoreply"
            | "autoresponder"
            | "autorespond"
            | "autoresponse"
            | "bounce"
            | "bounces"
            | "mailer"
            | "daemon"
    )
}

/// How strongly a subject says "robot".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hint {
    None,
    /// Only together with a weak signal.
    Weak,
    /// On its own.
    Decisive,
}

struct Subject {
    bounce: Hint,
    auto_reply: Hint,
}

/// Marker phrases robots put at the start of a bounce subject.
const BOUNCE_MARKERS: &[&str] = &[
    "undeliverable",
    "undeliverable mail",
    "undeliverable message",
    "undelivered mail",
    "undelivered message",
    "returned mail",
    "returned message",
    "mail delivery failed",
    "mail delivery failure",
    "message delivery failure",
    "delivery failure",
    "delivery failed",
    "delivery failure notification",
    "delivery notification",
    "delivery has failed",
    "failure notice",
    "failure delivery",
    "mail system error",
    "non-delivery report",
    "nondeliverable mail",
    "message not delivered",
    "message undeliverable",
    "mail could not be delivered",
    "permanent delivery failure",
    "warning: message delayed",
    "delayed mail",
    "postmaster notify",
    "mail failure",
    "message delivery has failed",
    "sorry, your message could not be delivered",
    "mail delivery status notification",
    // German
    "nicht zustellbar",
    "unzustellbar",
    "zustellung fehlgeschlagen",
    "benachrichtigung zum übermittlungsstatus",
    // French
    "non remis",
    "non distribuable",
    "échec de la remise",
    "notification d'état de remise",
    // Spanish, Portuguese, Italian, Dutch
    "no se puede entregar",
    "no entregado",
    "notificación de estado de entrega",
    "não entregue",
    "mensagem não entregue",
    "non recapitabile",
    "impossibile recapitare",
    "onbestelbaar",
    "niet afgeleverd",
    // Nordic
    "kan inte levereras",
    "kunne ikke leveres",
    "ei voitu toimittaa",
    "returnerad post",
    // Russian, Japanese
    "ваше сообщение не доставлено",
    "недоставленное сообщение",
    "メールエラー通知",
    "配信エラー",
    "配送エラー",
];

/// Long phrases only bounces start with, whatever follows them.
const BOUNCE_PREFIXES: &[&str] = &[
    "undelivered mail returned to sender",
    "delivery status notification",
    "warning: could not send message",
    "warning--could not send mail",
    "returned mail: ",
    "mail delivery failed: returning message",
    "message you sent blocked",
];

/// Marker phrases robots put at the start of an auto-reply subject.
const AUTO_REPLY_MARKERS: &[&str] = &[
    // English
    "automatic reply",
    "automatic response",
    "automated reply",
    "automated response",
    "auto reply",
    "auto-reply",
    "autoreply",
    "auto response",
    "auto-response",
    "autoresponse",
    "autorespons",
    "autoresponder",
    "auto-antwort",
    "out of office",
    "out-of-office",
    "out of the office",
    "out of office reply",
    "out of office autoreply",
    "out of office auto reply",
    "[auto-reply]",
    "[autoreply]",
    // German
    "abwesenheitsnotiz",
    "automatische antwort",
    "abwesenheitsmeldung",
    // French
    "réponse automatique",
    "reponse automatique",
    "message d'absence",
    // Spanish
    "respuesta automática",
    "respuesta automatica",
    "fuera de la oficina",
    // Dutch
    "automatisch antwoord",
    "afwezigheidsbericht",
    // Italian
    "risposta automatica",
    "fuori ufficio",
    // Portuguese
    "resposta automática",
    "resposta automatica",
    "fora do escritório",
    // Nordic
    "automatiskt svar",
    "automatisk svar",
    "automatisk besked",
    "autosvar",
    "frånvaromeddelande",
    "fraværsmelding",
    "fraværsbesked",
    "automaattinen vastaus",
    "poissaoloilmoitus",
    "sjálfvirkt svar",
];

/// Words people also use in their own subjects: robots only with a weak
/// signal.
const AUTO_REPLY_WEAK_MARKERS: &[&str] = &[
    "auto",
    "away",
    "vacation",
    "on vacation",
    "on leave",
    "absence",
    "absent",
    "abwesend",
    "urlaub",
    "ausente",
    "afwezig",
    "fuori sede",
    "vacances",
    "ferie",
    "frånvarande",
    "fravær",
    "poissa",
];

/// Reply and forward prefixes mail clients put before a subject.
const REPLY_PREFIXES: &[&str] = &[
    "re", "aw", "antw", "antwort", "sv", "vs", "odp", "r", "rif", "ref", "réf", "fw", "fwd", "wg",
    "tr", "rv", "enc", "doorst",
];

impl Subject {
    fn read(subject: &str) -> Subject {
        let s = subject
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase();
        let bare = strip_reply_prefixes(&s);
        let replied = bare.len() != s.len();

        let starts = |text: &str, markers: &[&str]| markers.iter().any(|m| marker_at(text, m));
        let bounce = if BOUNCE_PREFIXES.iter().any(|p| s.starts_with(p))
            || starts(&s, BOUNCE_MARKERS)
        {
            Hint::Decisive
        } else if replied
            && (BOUNCE_PREFIXES.iter().any(|p| bare.starts_with(p)) || starts(bare, BOUNCE_MARKERS))
        {
            Hint::Weak
        } else {
            Hint::None
        };
        let auto_reply = if starts(&s, AUTO_REPLY_MARKERS) {
            Hint::Decisive
        } else if (replied && starts(bare, AUTO_REPLY_MARKERS))
            || starts(bare, AUTO_REPLY_WEAK_MARKERS)
            || s.contains(" is out of the office")
        {
            Hint::Weak
        } else {
            Hint::None
        };
        Subject { bounce, auto_reply }
    }
}

/// `text` starts with `marker` and the marker ends there: end of text, or a
/// separator robots put after it (`:`, `(`, `[`, `-`, …), not another word.
fn marker_at(text: &str, marker: &str) -> bool {
    let Some(rest) = text.strip_prefix(marker) else {
        return false;
    };
    if marker.ends_with([']', ':']) {
        // `[auto-reply] …` ends in its own separator.
        return true;
    }
    let rest = rest.trim_start();
    rest.is_empty()
        || rest.starts_with([
            ':', '(', '[', ']', ')', '-', '–', '—', '!', '.', ',', ';', '/', '|', '<', '"', '\'',
        ])
}

/// `Re: AW: [2] Fwd: x` → `x`.
fn strip_reply_prefixes(s: &str) -> &str {
    let mut rest = s.trim_start();
    loop {
        let Some((head, tail)) = rest.split_once(':') else {
            return rest;
        };
        // `Re[2]`, `RE `, `Re(3)`.
        let word = head
            .trim_end()
            .trim_end_matches(|c: char| c.is_ascii_digit() || matches!(c, '[' | ']' | '(' | ')'))
            .trim_end();
        if !REPLY_PREFIXES.contains(&word) {
            return rest;
        }
        rest = tail.trim_start();
    }
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

    fn subject(s: &str) -> Inbound {
        mail(|m| m.subject = s.into())
    }

    /// The subject together with a weak signal: the null Return-Path.
    fn subject_null_sender(s: &str) -> Inbound {
        mail(|m| {
            m.subject = s.into();
            m.robot.null_return_path = true;
        })
    }

    #[test]
    fn a_plain_mail_is_normal() {
        assert_eq!(classify(&mail(|_| {})), Class::Normal);
    }

    #[test]
    fn robots_are_recognised() {
        let cases: Vec<(Inbound, &str, &str)> = vec![
            (
                mail(|m| m.robot.auto_submitted = Some("auto-replied".into())),
                "auto_reply",
                "Auto-Submitted",
            ),
            (
                mail(|m| m.robot.auto_submitted = Some("auto-generated (x)".into())),
                "auto_reply",
                "Auto-Submitted",
            ),
            (
                mail(|m| m.robot.precedence = Some("Bulk".into())),
                "auto_reply",
                "Precedence",
            ),
            (
                mail(|m| m.robot.precedence = Some("junk".into())),
                "auto_reply",
                "Precedence",
            ),
            (
                mail(|m| m.robot.precedence = Some("auto_reply".into())),
                "auto_reply",
                "Precedence",
            ),
            (
                mail(|m| m.robot.precedence = Some("list".into())),
                "auto_reply",
                "mailing list",
            ),
            (
                mail(|m| m.robot.list_id = true),
                "auto_reply",
                "mailing list",
            ),
            (mail(|m| m.robot.x_loop = true), "auto_reply", "X-Loop"),
            (
                mail(|m| m.robot.notification_service = true),
                "auto_reply",
                "notification service",
            ),
            (
                mail(|m| m.subject = "complaint about message from 192.0.2.1".into()),
                "bounce",
                "feedback report",
            ),
            (
                mail(|m| m.from = Some(Address::new("", "post_master@x.test"))),
                "bounce",
                "sent by MAILER-DAEMON/postmaster",
            ),
            (
                mail(|m| m.robot.x_autoreply = true),
                "auto_reply",
                "X-Autoreply",
            ),
            (
                mail(|m| m.robot.x_auto_response_suppress = true),
                "auto_reply",
                "X-Auto-Response-Suppress",
            ),
            (
                mail(|m| m.robot.null_return_path = true),
                "bounce",
                "empty Return-Path",
            ),
            (
                mail(|m| m.robot.multipart_report = true),
                "bounce",
                "multipart/report",
            ),
            (
                mail(|m| {
                    m.robot.multipart_report = true;
                    m.robot.report = Some(Report::DeliveryStatus);
                }),
                "bounce",
                "delivery status notification",
            ),
            (
                // A DSN inside multipart/mixed.
                mail(|m| m.robot.report = Some(Report::DeliveryStatus)),
                "bounce",
                "delivery status notification",
            ),
            (
                mail(|m| {
                    m.robot.multipart_report = true;
                    m.robot.report = Some(Report::Feedback);
                }),
                "bounce",
                "feedback report",
            ),
            (
                mail(|m| {
                    m.robot.multipart_report = true;
                    m.robot.report = Some(Report::Disposition);
                }),
                "auto_reply",
                "read receipt",
            ),
            (
                mail(|m| m.robot.x_failed_recipients = true),
                "bounce",
                "X-Failed-Recipients",
            ),
            (
                mail(|m| m.from = Some(Address::new("", "MAILER-DAEMON@x.test"))),
                "bounce",
                "sent by MAILER-DAEMON/postmaster",
            ),
            (
                mail(|m| m.from = Some(Address::new("", "postmaster@x.test"))),
                "bounce",
                "sent by MAILER-DAEMON/postmaster",
            ),
            (
                mail(|m| m.from = Some(Address::new("", "mail-daemon@x.test"))),
                "bounce",
                "sent by MAILER-DAEMON/postmaster",
            ),
            (
                mail(|m| m.from = Some(Address::new("Mail Delivery Subsystem", "delivery@x.test"))),
                "bounce",
                "sent by MAILER-DAEMON/postmaster",
            ),
        ];
        for (i, (m, class, reason)) in cases.iter().enumerate() {
            let c = classify(m);
            assert_eq!(
                (c.as_str(), c.reason()),
                (*class, *reason),
                "case {i}: {:?}",
                m.robot
            );
        }
    }

    #[test]
    fn a_failure_stated_in_the_body_is_a_bounce_whatever_the_headers() {
        use crate::domain::mail::FailureText;
        let cases = [
            (FailureText::AmazonSes, "Amazon SES notification"),
            (FailureText::ListRejection, "mailing list rejection"),
            (FailureText::DeliveryFailure, "delivery failure text"),
        ];
        for (text, reason) in cases {
            // Auto-reply and list headers alongside: still a bounce.
            for headers in [
                RobotSignals::default(),
                RobotSignals {
                    auto_submitted: Some("auto-replied".into()),
                    x_autoreply: true,
                    ..Default::default()
                },
                RobotSignals {
                    precedence: Some("bulk".into()),
                    list_id: true,
                    ..Default::default()
                },
                RobotSignals {
                    notification_service: true,
                    ..Default::default()
                },
            ] {
                let m = mail(|m| {
                    m.robot = RobotSignals {
                        failure_text: Some(text),
                        ..headers.clone()
                    }
                });
                assert_eq!(classify(&m), Class::Bounce(reason), "{headers:?}");
            }
        }
    }

    #[test]
    fn only_robots_bodies_are_read_for_failures() {
        let from = |a: &str| Some(Address::new("", a));
        let cases: Vec<(Inbound, bool)> = vec![
            // A person: never, whatever the subject.
            (subject("Fwd: Undeliverable: x"), false),
            // A robot by its headers.
            (
                mail(|m| m.robot.auto_submitted = Some("auto-replied".into())),
                true,
            ),
            (mail(|m| m.robot.notification_service = true), true),
            (mail(|m| m.robot.precedence = Some("bulk".into())), true),
            // A robot's or a list manager's mailbox.
            (mail(|m| m.from = from("no-reply@x.test")), true),
            (mail(|m| m.from = from("foo-owner@lists.x.test")), true),
            (
                mail(|m| m.from = from("foo-bounces+jo=x.test@lists.x.test")),
                true,
            ),
            (mail(|m| m.from = from("owner-foo@lists.x.test")), true),
            (mail(|m| m.from = from("LISTSERV@lists.x.test")), true),
            // A list post: only from the list manager.
            (
                mail(|m| {
                    m.robot.list_id = true;
                    m.robot.precedence = Some("list".into());
                }),
                false,
            ),
            (
                mail(|m| {
                    m.robot.list_id = true;
                    m.from = from("foo-owner@lists.x.test");
                }),
                true,
            ),
            // Already a bounce: its body is read as one anyway.
            (mail(|m| m.robot.x_failed_recipients = true), false),
        ];
        for (i, (m, may)) in cases.iter().enumerate() {
            assert_eq!(body_may_tell(m, &classify(m)), *may, "case {i}: {m:?}");
        }
    }

    #[test]
    fn auto_submitted_no_is_a_person() {
        let m = mail(|m| m.robot.auto_submitted = Some(" No ".into()));
        assert_eq!(classify(&m), Class::Normal);
        let m = mail(|m| m.robot.auto_submitted = Some("no (person)".into()));
        assert_eq!(classify(&m), Class::Normal);
        let m = mail(|m| m.robot.precedence = Some("first-class".into()));
        assert_eq!(classify(&m), Class::Normal);
    }

    #[test]
    fn a_vacation_reply_from_the_null_sender_is_an_auto_reply() {
        let m = mail(|m| {
            m.robot.null_return_path = true;
            m.robot.auto_submitted = Some("auto-replied".into());
        });
        assert_eq!(classify(&m), Class::AutoReply("Auto-Submitted"));
    }

    #[test]
    fn bounce_evidence_wins_over_auto_reply_headers() {
        let m = mail(|m| {
            m.robot.auto_submitted = Some("auto-replied".into());
            m.from = Some(Address::new("", "mailer-daemon@googlemail.com"));
        });
        assert_eq!(classify(&m).as_str(), "bounce");
    }

    #[test]
    fn auto_reply_subjects_in_many_languages() {
        for s in [
            "Automatic reply: Printer on fire",
            "Out of Office: Printer on fire",
            "Out of Office AutoReply: Printer",
            "Out of office",
            "Auto reply: Nyaan",
            "AutoReply: x",
            "Auto-Reply: x",
            "AutoRespons :Nyaan?",
            "[Auto-Reply] x",
            "Abwesenheitsnotiz: Drucker",
            "Automatische Antwort: Drucker",
            "Réponse automatique : Imprimante",
            "RÉPONSE AUTOMATIQUE: x",
            "Respuesta automática: Impresora",
            "Fuera de la oficina: x",
            "Automatisch antwoord: Printer",
            "Risposta automatica: Stampante",
            "Resposta automática: Impressora",
            "Automatiskt svar: Skrivare",
            "Automatisk svar: Skriver",
            "Autosvar: x",
            "Fraværsmelding: x",
            "Automaattinen vastaus: x",
        ] {
            assert_eq!(
                classify(&subject(s)),
                Class::AutoReply("auto-reply subject"),
                "{s}"
            );
        }
    }

    #[test]
    fn ambiguous_auto_reply_subjects_need_a_weak_signal() {
        for s in [
            "Away: back on Monday",
            "Vacation",
            "Absence: Jo",
            "Ausente",
            "Afwezig: tot maandag",
            "Fuori sede",
            "Auto: Printer",
            "Re: Automatic reply: Printer",
            "Jo Doe is out of the office.",
        ] {
            assert_eq!(classify(&subject(s)), Class::Normal, "alone: {s}");
            assert_eq!(
                classify(&subject_null_sender(s)),
                Class::AutoReply("auto-reply subject"),
                "with null sender: {s}"
            );
            let from_noreply = mail(|m| {
                m.subject = s.into();
                m.from = Some(Address::new("", "no-reply@example.test"));
            });
            assert_eq!(
                classify(&from_noreply),
                Class::AutoReply("auto-reply subject"),
                "from noreply: {s}"
            );
        }
    }

    #[test]
    fn a_person_writing_about_out_of_office_is_a_person() {
        for s in [
            "Re: my out of office settings are broken",
            "Out of office not working in Outlook",
            "Re: Out of office not working",
            "AW: Abwesenheitsnotiz einrichten geht nicht",
            "Automatic replies are not sent",
            "Vacation request for August",
            "Away message broken",
            "Absence calendar",
            "Autoreply setup for the shared mailbox",
            "Undeliverable emails to gmail since Monday",
            "Re: Undeliverable mail when sending to customers",
            "Returned mail problem",
            "Delivery failures to example.com",
            "Fwd: Mail delivery failed for our newsletter",
            "How do I set an automatic reply?",
            "Complaint about message from accounting",
        ] {
            assert_eq!(classify(&subject(s)), Class::Normal, "{s}");
        }
    }

    #[test]
    fn bounce_subjects() {
        for s in [
            "Undeliverable: Printer on fire",
            "Undelivered Mail Returned to Sender",
            "Delivery Status Notification (Failure)",
            "Delivery Status Notification (Delay)",
            "Returned mail: see transcript for details",
            "Mail delivery failed: returning message to sender",
            "failure notice",
            "Mail System Error - Returned Mail",
            "Nicht zustellbar: Drucker",
            "Unzustellbar: Drucker",
            "Non remis : Imprimante",
            "Onbestelbaar: Printer",
            "Warning: could not send message for past 4 hours",
            "Ваше сообщение не доставлено . Mail failure.",
            "メールエラー通知",
        ] {
            assert_eq!(
                classify(&subject(s)),
                Class::Bounce("bounce subject"),
                "{s}"
            );
        }
        // After a reply prefix, only with a weak signal.
        let s = "Re: Undeliverable: Printer";
        assert_eq!(classify(&subject(s)), Class::Normal);
        assert_eq!(
            classify(&subject_null_sender(s)),
            Class::Bounce("bounce subject")
        );
    }

    #[test]
    fn reply_prefixes_are_stripped() {
        assert_eq!(strip_reply_prefixes("re: aw: fwd: x"), "x");
        assert_eq!(strip_reply_prefixes("re[2]: x"), "x");
        assert_eq!(strip_reply_prefixes("re : x"), "x");
        assert_eq!(strip_reply_prefixes("out of office: x"), "out of office: x");
        assert_eq!(strip_reply_prefixes("re:"), "");
    }
}
