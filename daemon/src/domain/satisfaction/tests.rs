use super::*;
use crate::domain::classify::Class;
use crate::domain::conversation::tests::{mail, settings, ticket};
use crate::domain::conversation::{self, Lookup};
use crate::domain::mail::Inbound;
use crate::domain::staff::StaffMember;
use crate::domain::ticket::{Status, TicketId, TicketNumber};

fn rating(text: &str) -> Option<(u8, String)> {
    parse(text).map(|r| (r.score, r.comment))
}

fn some(score: u8, comment: &str) -> Option<(u8, String)> {
    Some((score, comment.to_string()))
}

#[test]
fn plain_numbers_with_and_without_words() {
    let cases: &[(&str, Option<(u8, String)>)] = &[
        ("5", some(5, "")),
        ("  4  ", some(4, "")),
        ("\n\n3\n", some(3, "")),
        ("2 slow to answer", some(2, "slow to answer")),
        ("2 - slow to answer", some(2, "slow to answer")),
        ("2: slow", some(2, "slow")),
        ("1. Never again", some(1, "Never again")),
        ("4, thanks!", some(4, "thanks!")),
        ("5!", some(5, "")),
        (
            "3\nThe fix works but took a week.\nRegards",
            some(3, "The fix works but took a week.\nRegards"),
        ),
        ("Hi,\n\n4 quick and friendly", some(4, "quick and friendly")),
        ("Rating: 4", some(4, "")),
        ("Score: 5 great", some(5, "great")),
        ("Note : 2 trop lent", some(2, "trop lent")),
    ];
    for (text, want) in cases {
        assert_eq!(&rating(text), want, "{text:?}");
    }
}

#[test]
fn scales_stars_and_units() {
    let cases: &[(&str, Option<(u8, String)>)] = &[
        ("4/5", some(4, "")),
        ("4 / 5 good", some(4, "good")),
        ("4 of 5", some(4, "")),
        ("4 out of 5, would ask again", some(4, "would ask again")),
        ("3 von 5 Punkten", some(3, "Punkten")),
        ("5 sur 5", some(5, "")),
        ("5 stars", some(5, "")),
        ("5 Sterne, super", some(5, "super")),
        ("1 star. Nobody called back", some(1, "Nobody called back")),
        ("4stars", some(4, "")),
        ("★★★★☆", some(4, "")),
        ("★★ meh", some(2, "meh")),
        ("⭐️⭐️⭐️⭐️⭐️ perfect", some(5, "perfect")),
        ("4️⃣ ok", some(4, "ok")),
        ("③ average", some(3, "average")),
    ];
    for (text, want) in cases {
        assert_eq!(&rating(text), want, "{text:?}");
    }
}

#[test]
fn digits_of_other_scripts() {
    let cases: &[(&str, u8)] = &[
        ("٤ شكرا", 4),        // Arabic-Indic
        ("۵", 5),             // Extended Arabic-Indic (Persian)
        ("४ धन्यवाद", 4),      // Devanagari
        ("২", 2),             // Bengali
        ("５ ありがとう", 5), // fullwidth
        ("๓", 3),             // Thai
    ];
    for (text, want) in cases {
        assert_eq!(parse(text).map(|r| r.score), Some(*want), "{text:?}");
    }
}

#[test]
fn junk_is_not_a_rating() {
    for text in [
        "",
        "   \n  ",
        "it is broken again",
        "Thanks, all good now",
        "0",
        "6",
        "45",
        "10/10",
        "4/10",
        "3 of 10",
        "4.5",
        "4,5 stars",
        "-3",
        "1st of all, it is broken",
        "3pm call me",
        "2026-12-01 it broke again",
        "I'd give it 4",
        "☆☆☆☆☆",
        "> 4\n> quoted only",
        "Hi,\nit is broken again\n4",
        "On Mon, 1 Dec 2026, ACME Desk wrote:\n> 5",
    ] {
        assert_eq!(rating(text), None, "{text:?}");
    }
}

#[test]
fn real_reply_shapes_with_quoted_history() {
    // Gmail: the answer, a blank line, the attribution, the quote.
    let gmail = "2 slow to answer\n\nOn Fri, Dec 4, 2026 at 10:01 AM ACME Desk <support@example.test> wrote:\n> Hello Jo,\n> your ticket INC-000001 has been resolved.\n> Please reply with a number from 1 to 5.\n";
    assert_eq!(rating(gmail), some(2, "slow to answer"));
    // Outlook: the answer, a rule, the old header block.
    let outlook = "4\r\nGood job\r\n\r\n________________________________\r\nFrom: ACME Desk <support@example.test>\r\nSent: Friday, December 4, 2026 10:01\r\nSubject: How did we do?\r\n\r\nHello Jo,\r\nPlease reply with a number from 1 (very dissatisfied) to 5.\r\n";
    assert_eq!(rating(outlook), some(4, "Good job"));
    // Outlook, older: "-----Original Message-----".
    let original =
        "5 thanks\n-----Original Message-----\nFrom: ACME Desk\nreply with a number 1 to 5\n";
    assert_eq!(rating(original), some(5, "thanks"));
    // Thunderbird / German: attribution line "schrieb:".
    let german = "3 Sterne, ging so\n\nAm 04.12.26 um 10:01 schrieb ACME Desk:\n> Bitte antworten Sie mit 1 bis 5\n";
    assert_eq!(rating(german), some(3, "ging so"));
    // Apple Mail, French.
    let french = "1 inacceptable\n\nLe 4 déc. 2026 à 10:01, ACME Desk <support@example.test> a écrit :\n> 5 = très satisfait\n";
    assert_eq!(rating(french), some(1, "inacceptable"));
    // A signature below the rating.
    let signed = "4 merci\n-- \nJo Customer\nCustomer Corp\n";
    assert_eq!(rating(signed), some(4, "merci"));
    // Top-quoted with no new text of its own is no rating.
    let empty = "\n\nOn Fri, Dec 4, 2026 ACME Desk wrote:\n> 5 (very satisfied)\n";
    assert_eq!(rating(empty), None);
}

#[test]
fn long_comments_are_cut() {
    let text = format!("3 {}", "x".repeat(10_000));
    let r = parse(&text).expect("a rating");
    assert_eq!(r.comment.chars().count(), MAX_COMMENT);
}

fn enabled() -> Settings {
    let mut s = settings();
    s.relationship.enabled = true;
    s
}

#[test]
fn who_is_asked_and_when() {
    let s = enabled();
    let resolved = |f: &dyn Fn(&mut TicketState)| {
        let mut t = ticket();
        t.status = Status::Resolved;
        f(&mut t);
        t
    };
    let t = resolved(&|_| {});
    assert!(asks(&s, &t, Status::Open, true), "open → resolved asks");
    assert!(asks(&s, &t, Status::Pending, true));
    assert!(asks(&s, &t, Status::New, true));
    let closed = resolved(&|t| t.status = Status::Closed);
    assert!(
        asks(&s, &closed, Status::Open, true),
        "a close that skips the resolve asks"
    );
    assert!(
        !asks(&s, &closed, Status::Resolved, true),
        "closing a resolved ticket asks nothing: once per resolution"
    );
    assert!(
        !asks(&s, &t, Status::Resolved, true),
        "no move, no question"
    );
    let open = resolved(&|t| t.status = Status::Open);
    assert!(!asks(&s, &open, Status::Pending, true));
    assert!(!asks(&s, &t, Status::Open, false), "a robot's ticket");
    for kind in [Kind::Problem, Kind::Change] {
        let k = resolved(&|t| t.kind = kind);
        assert!(!asks(&s, &k, Status::Open, true), "{kind:?}");
    }
    for kind in [Kind::Request, Kind::Complaint] {
        let k = resolved(&|t| t.kind = kind);
        assert!(asks(&s, &k, Status::Open, true), "{kind:?}");
    }
    for email in [
        "support@example.test",
        "support+x@example.test",
        "ada@example.test",
        "noc@netco.test",
        "",
    ] {
        let k = resolved(&|t| t.customer = Address::new("", email));
        assert!(!asks(&s, &k, Status::Open, true), "{email}");
    }
    assert!(!asks(&settings(), &t, Status::Open, true), "disabled");
}

#[test]
fn the_request_threads_below_the_conversation() {
    let mut s = enabled();
    let t = ticket();
    let d = request(&s, &t);
    assert_eq!(d.kind, DraftKind::SatisfactionRequest);
    assert!(d.kind.is_public());
    assert_eq!(d.to, vec![t.customer.clone()]);
    assert_eq!(
        d.subject,
        "[ACME INC-000001] How did we do? Printer on fire"
    );
    assert!(d.body.starts_with("Hello Jo,\n"), "{}", d.body);
    assert!(d.body.contains("INC-000001 \"Printer on fire\""));
    assert!(d.body.contains("1 (very dissatisfied) to 5"));
    assert_eq!(d.in_reply_to.as_deref(), Some("m2@cust.test"));
    assert_eq!(d.references, vec!["m1@cust.test", "m2@cust.test"]);
    s.relationship.subject = "Rate {number}".into();
    s.relationship.text = "Dear {name}, rate {number} of {desk}.".into();
    let d = request(&s, &t);
    assert_eq!(d.subject, "[ACME INC-000001] Rate INC-000001");
    assert_eq!(d.body, "Dear Jo, rate INC-000001 of ACME Desk.");
}

struct NoTickets;
impl Lookup for NoTickets {
    fn ticket_id(&self, _: TicketNumber) -> Option<TicketId> {
        None
    }
}

fn input<'a>(
    m: &'a Inbound,
    sender: &'a Address,
    author: &'a Author,
    new_ticket: bool,
) -> MailIn<'a> {
    MailIn {
        mail: m,
        sender,
        author,
        class: &Class::Normal,
        new_ticket,
        may_acknowledge: true,
        bounced: None,
        known_error: None,
    }
}

#[test]
fn a_rating_changes_nothing_and_a_low_one_tells_the_manager() {
    let mut s = enabled();
    s.relationship
        .managers
        .insert("email".into(), Address::new("", "boss@example.test"));
    s.relationship.complaints = vec![Address::new("", "care@example.test")];
    let mut t = ticket();
    t.status = Status::Resolved;
    t.service = Some("email".into());
    let m = mail("jo@cust.test", "2 slow to answer");
    let sender = Address::new("Jo", "jo@cust.test");
    let author = Author::Customer;
    let asked = Asked {
        assignee: Some("ada@example.test".into()),
        service: Some("email".into()),
    };
    let low = parse("2 slow to answer").expect("rating");
    let fx = rated(&s, &t, &input(&m, &sender, &author, false), &low, &asked);
    assert!(fx.changes.is_empty() && !fx.public_message);
    assert_eq!(fx.visibility, Visibility::Public);
    assert_eq!(fx.drafts.len(), 1);
    let d = &fx.drafts[0];
    assert_eq!(d.kind, DraftKind::LowRating);
    assert_eq!(d.to, vec![Address::new("", "boss@example.test")]);
    assert!(
        d.subject.contains("Low rating 2/5: Printer on fire"),
        "{}",
        d.subject
    );
    assert!(d.body.contains("slow to answer") && d.body.contains("ada@example.test"));
    // No manager for the service: the complaints group hears of it.
    let other = Asked {
        service: None,
        ..asked.clone()
    };
    let fx = rated(&s, &t, &input(&m, &sender, &author, false), &low, &other);
    assert_eq!(fx.drafts[0].to, vec![Address::new("", "care@example.test")]);
    // 3 and up tell nobody.
    let good = parse("3").expect("rating");
    let fx = rated(&s, &t, &input(&m, &sender, &author, false), &good, &asked);
    assert!(fx.drafts.is_empty());
}

#[test]
fn complaints_tell_their_group() {
    let mut s = settings();
    s.relationship.complaints = vec![
        Address::new("", "care@example.test"),
        Address::new("Ada", "ada@example.test"),
    ];
    let mut t = ticket();
    t.kind = Kind::Complaint;
    t.team = Some("network".into());
    let m = mail("jo@cust.test", "You lost my data!");
    let sender = Address::new("Jo", "jo@cust.test");
    let customer = Author::Customer;
    // A new complaint: the usual notification (Ada watches the group),
    // and the complaint notice to the rest of the group.
    let mut t1 = t.clone();
    let fx = conversation::apply(
        &s,
        &mut t1,
        &input(&m, &sender, &customer, true),
        &NoTickets,
        t.created_at,
    );
    let d = complaint_notice(&s, &t1, &input(&m, &sender, &customer, true), &fx).expect("notice");
    assert_eq!(d.kind, DraftKind::ComplaintNotice);
    assert_eq!(
        d.to,
        vec![Address::new("", "care@example.test")],
        "Ada is told once"
    );
    assert!(d.body.starts_with("New complaint."));
    assert!(d.body.contains("You lost my data!"));
    let reply = complaint_notice(
        &s,
        &t,
        &input(&m, &sender, &customer, false),
        &Effects::default(),
    )
    .expect("a reply");
    assert!(
        reply
            .body
            .starts_with("The customer replied on a complaint.")
    );
    assert_eq!(reply.to.len(), 2);
    // Staff turning a ticket into a complaint tells the group; staff
    // answers on a complaint do not.
    let ada: StaffMember = s.staff.by_email("ada@example.test").cloned().expect("ada");
    let staff = Author::Staff(ada);
    let turned = Effects {
        changes: vec![conversation::Change {
            field: "kind",
            from: "incident".into(),
            to: "complaint".into(),
        }],
        ..Effects::default()
    };
    let d = complaint_notice(&s, &t, &input(&m, &sender, &staff, false), &turned).expect("turned");
    assert!(d.body.starts_with("Ada made this ticket a complaint."));
    assert!(
        complaint_notice(
            &s,
            &t,
            &input(&m, &sender, &staff, false),
            &Effects::default()
        )
        .is_none()
    );
    // Robots, other kinds and an empty group tell nobody.
    assert!(
        complaint_notice(
            &s,
            &t,
            &input(&m, &sender, &Author::Robot, true),
            &Effects::default()
        )
        .is_none()
    );
    let mut inc = t.clone();
    inc.kind = Kind::Incident;
    assert!(
        complaint_notice(
            &s,
            &inc,
            &input(&m, &sender, &customer, true),
            &Effects::default()
        )
        .is_none()
    );
    s.relationship.complaints.clear();
    assert!(
        complaint_notice(
            &s,
            &t,
            &input(&m, &sender, &customer, true),
            &Effects::default()
        )
        .is_none()
    );
}

#[test]
fn a_complaints_mailbox_opens_cmp_tickets() {
    let mut s = settings();
    s.mailbox_kinds.insert("complaints".into(), Kind::Complaint);
    let sender = Address::new("Jo", "jo@cust.test");
    let t = crate::domain::intake::new_ticket(
        TicketId(7),
        "Bad",
        &sender,
        "complaints",
        &s,
        ticket().created_at,
    );
    assert_eq!(t.kind, Kind::Complaint);
    assert_eq!(t.number.to_string(), "CMP-000007");
    let t = crate::domain::intake::new_ticket(
        TicketId(8),
        "Bad",
        &sender,
        "support",
        &s,
        ticket().created_at,
    );
    assert_eq!(t.number.to_string(), "INC-000008");
    assert_eq!(
        "CMP-000007".parse::<TicketNumber>().map(|n| n.kind),
        Ok(Kind::Complaint)
    );
    assert_eq!("Complaint".parse::<Kind>(), Ok(Kind::Complaint));
    assert!(
        "grievance"
            .parse::<Kind>()
            .expect_err("not a kind")
            .contains("complaint")
    );
}
