//! What the change commands and an approver's answer do to a ticket, and
//! the mails that follow: approval requests on `/submit`, the decision to
//! the change's owner and the change manager. Called from
//! `conversation` inside its all-or-nothing trial of a staff reply, and for
//! answers before the author's usual path.

use chrono::{DateTime, Utc};

use super::token::{self, Found};
use super::{
    Answer, Record, Risk, State, Tally, Window, approver_emails, collisions, deadline, known_item,
};
use crate::domain::conversation::{
    Author, Draft, DraftKind, Effects, Lookup, MailIn, Settings, TicketState,
};
use crate::domain::mail::Address;
use crate::domain::staff::StaffMember;
use crate::domain::threading::tagged_subject;
use crate::domain::ticket::{Kind, TicketNumber, Visibility};

/// A change command (`/risk`, `/impact`, `/window`, `/submit`, `/change`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeCommand {
    Risk(Risk),
    Impact(String),
    /// The argument as written; read against the configured zone.
    Window(String),
    Submit,
    Move(State),
}

/// Reads the argument of a change command `word`.
pub fn parse_command(word: &str, arg: &str) -> Result<ChangeCommand, String> {
    let need = |what: &str| {
        if arg.is_empty() {
            Err(format!("/{word} needs {what}"))
        } else {
            Ok(arg)
        }
    };
    match word {
        "risk" => Ok(ChangeCommand::Risk(
            need("a risk (low, medium, high)")?
                .parse()
                .map_err(|e| format!("/risk: {e}"))?,
        )),
        "impact" => Ok(ChangeCommand::Impact(need("a text")?.to_string())),
        "window" => Ok(ChangeCommand::Window(
            need("START END [ZONE], e.g. 2026-12-10 22:00 2026-12-11 02:00 Europe/Berlin")?
                .to_string(),
        )),
        "submit" if arg.is_empty() => Ok(ChangeCommand::Submit),
        "submit" => Err("/submit takes no argument".into()),
        "change" => Ok(ChangeCommand::Move(
            need("a state (scheduled, implemented, failed, closed, draft)")?
                .parse()
                .map_err(|e| format!("/change: {e}"))?,
        )),
        other => Err(format!("/{other} is not a change command")),
    }
}

/// The history's detail of an answer without words.
pub const NO_WORDS: &str = "(no words)";

/// One line of a change's audit trail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub round: u32,
    pub actor: String,
    pub action: String,
    pub detail: String,
    pub proof: String,
}

/// What a mail did to a change or to a ticket's items.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fx {
    /// Items the ticket names from now on (new `ticket_items` rows).
    pub items: Vec<String>,
    pub history: Vec<Entry>,
    /// The change record moved: write it back.
    pub touched: bool,
    /// Hooks raised: `change.submitted`, `.approved`, `.rejected`, `.implemented`.
    pub hooks: Vec<&'static str>,
    /// Mails (approval requests, decisions, warnings), moved to the mail's drafts.
    pub drafts: Vec<Draft>,
}

/// The change number of a ticket (its sequence with the CHG prefix).
pub fn chg(t: &TicketState) -> TicketNumber {
    TicketNumber {
        kind: Kind::Change,
        seq: t.number.seq,
    }
}

fn record(t: &mut TicketState) -> &mut Record {
    t.change.get_or_insert_with(Default::default)
}

fn need_change(t: &TicketState, word: &str) -> Result<(), String> {
    if t.kind == Kind::Change {
        Ok(())
    } else {
        Err(format!(
            "/{word}: {} is a {}, not a change (make it one with /kind change)",
            t.number,
            t.kind.as_str()
        ))
    }
}

/// `/ci NAME` on any ticket: the ticket names the item from now on.
pub fn ci(
    settings: &Settings,
    t: &mut TicketState,
    member: &StaffMember,
    name: &str,
    fx: &mut Fx,
) -> Result<(), String> {
    let item = known_item(&settings.changes.catalog, name)?;
    if t.kind == Kind::Change {
        record(t)
            .state
            .editable()
            .map_err(|e| format!("/ci {name}: {e}"))?;
    }
    let rec = record(t);
    if rec.items.iter().any(|i| i.eq_ignore_ascii_case(&item)) {
        return Ok(());
    }
    rec.items.push(item.clone());
    fx.items.push(item.clone());
    if t.kind == Kind::Change {
        fx.touched = true;
        fx.history.push(Entry {
            round: record(t).round,
            actor: member.email.clone(),
            action: "ci".into(),
            detail: item,
            proof: String::new(),
        });
    }
    Ok(())
}

/// A change command of a staff reply, applied to `t` (a trial copy).
pub fn command(
    settings: &Settings,
    t: &mut TicketState,
    member: &StaffMember,
    c: &ChangeCommand,
    lookup: &dyn Lookup,
    now: DateTime<Utc>,
    fx: &mut Fx,
) -> Result<(), String> {
    let word = match c {
        ChangeCommand::Risk(_) => "risk",
        ChangeCommand::Impact(_) => "impact",
        ChangeCommand::Window(_) => "window",
        ChangeCommand::Submit => "submit",
        ChangeCommand::Move(_) => "change",
    };
    need_change(t, word)?;
    let entry = |rec: &Record, action: &str, detail: String| Entry {
        round: rec.round,
        actor: member.email.clone(),
        action: action.into(),
        detail,
        proof: String::new(),
    };
    match c {
        ChangeCommand::Risk(r) => {
            let rec = record(t);
            rec.state.editable().map_err(|e| format!("/risk: {e}"))?;
            rec.risk = Some(*r);
            fx.history.push(entry(rec, "risk", r.as_str().into()));
        }
        ChangeCommand::Impact(text) => {
            let rec = record(t);
            rec.state.editable().map_err(|e| format!("/impact: {e}"))?;
            rec.impact = Some(text.clone());
            fx.history.push(entry(rec, "impact", text.clone()));
        }
        ChangeCommand::Window(arg) => {
            let w = Window::parse(arg, settings.changes.zone)
                .map_err(|e| format!("/window {arg}: {e}"))?;
            let rec = record(t);
            rec.state.editable().map_err(|e| format!("/window: {e}"))?;
            let detail = w.describe();
            rec.window = Some(w);
            fx.history.push(entry(rec, "window", detail));
        }
        ChangeCommand::Move(to) => {
            let rec = record(t);
            rec.state
                .staff_move(*to)
                .map_err(|e| format!("/change {}: {e}", to.as_str()))?;
            let from = rec.state;
            rec.state = *to;
            fx.history.push(entry(
                rec,
                "state",
                format!("{} → {}", from.as_str(), to.as_str()),
            ));
            if *to == State::Implemented {
                fx.hooks.push("change.implemented");
            }
        }
        ChangeCommand::Submit => submit(settings, t, member, lookup, now, fx)?,
    }
    fx.touched = true;
    Ok(())
}

fn submit(
    settings: &Settings,
    t: &mut TicketState,
    member: &StaffMember,
    lookup: &dyn Lookup,
    now: DateTime<Utc>,
    fx: &mut Fx,
) -> Result<(), String> {
    let number = chg(t);
    let cfg = &settings.changes;
    let service = t.service.clone();
    let rec = record(t);
    rec.state
        .may_submit()
        .map_err(|e| format!("/submit: {e}"))?;
    let Some(risk) = rec.risk else {
        return Err("/submit: set the risk first (/risk low|medium|high)".into());
    };
    let Some(window) = rec.window.clone() else {
        return Err("/submit: set the window first (/window START END [ZONE])".into());
    };
    let mut services = cfg.catalog.services_of(&rec.items);
    if let Some(s) = service
        && !services.iter().any(|x| x.eq_ignore_ascii_case(&s))
    {
        services.push(s);
        services.sort();
    }
    let Some(cab) = cfg.board(risk, &services) else {
        return Err(format!(
            "/submit: no change advisory board ([[cab]]) matches risk {} and services [{}]",
            risk.as_str(),
            services.join(", ")
        ));
    };
    let flags = collisions(
        number.seq,
        &window,
        &rec.items,
        &lookup.planned_changes(),
        &cfg.freezes,
    );
    rec.round += 1;
    rec.state = State::Submitted;
    rec.board = Some(cab.name.clone());
    rec.approvers = approver_emails(cab);
    rec.quorum = cab.quorum;
    rec.submitted_at = Some(now);
    rec.submitted_by = Some(member.email.clone());
    rec.deadline = Some(deadline(now, cab.deadline_hours));
    rec.flags = flags;
    rec.answers.clear();
    let rec = rec.clone();
    fx.history.push(Entry {
        round: rec.round,
        actor: member.email.clone(),
        action: "submitted".into(),
        detail: format!(
            "round {} to board {} ({}; quorum {}; deadline {} UTC){}",
            rec.round,
            cab.name,
            rec.approvers.join(", "),
            rec.quorum,
            rec.deadline.map(fmt_utc).unwrap_or_default(),
            if rec.flags.is_empty() {
                String::new()
            } else {
                format!("; flagged: {}", rec.flags.join("; "))
            }
        ),
        proof: String::new(),
    });
    fx.hooks.push("change.submitted");
    let facts = summary(settings, t, &rec, &services);
    let to: Vec<Address> = cab.approvers.clone();
    fx.drafts.push(Draft {
        kind: DraftKind::ApprovalRequest(rec.round),
        to,
        from_name: settings.desk.name.clone(),
        subject: tagged_subject(
            &format!("Approval requested: {}", t.subject.trim()),
            &settings.desk.tag,
            number,
        ),
        body: format!(
            "{desk} asks you, as an approver of the change advisory board \"{board}\", to \
             approve or reject change {number}.\n\n{facts}\n\
             How to answer: reply to this mail with, in the first line,\n\n    approve\n\n\
             or\n\n    reject <your reason>\n\n\
             Only a reply to this very request counts: it carries a token issued to you for \
             this submission (round {round}). Answers after the decision or after the \
             deadline are refused.\n\n-- \n{desk}\n",
            desk = settings.desk.name,
            board = cab.name,
            round = rec.round,
        ),
        in_reply_to: None,
        references: vec![format!("{number}.change@{}", settings.desk.id_domain())],
        with_attachments: false,
    });
    if !rec.flags.is_empty()
        && let Some(manager) = &cfg.manager
    {
        fx.drafts.push(Draft {
            kind: DraftKind::ChangeNotice,
            to: vec![manager.clone()],
            from_name: settings.desk.name.clone(),
            subject: tagged_subject(
                &format!("Change flagged: {}", t.subject.trim()),
                &settings.desk.tag,
                number,
            ),
            body: format!(
                "Change {number} was submitted for approval by {} with warnings:\n\n{}\n\n{facts}\n-- \n{}\n",
                member.name,
                rec.flags
                    .iter()
                    .map(|f| format!("  ! {f}"))
                    .collect::<Vec<_>>()
                    .join("\n"),
                settings.desk.name
            ),
            in_reply_to: None,
            references: vec![format!("{number}.change@{}", settings.desk.id_domain())],
            with_attachments: false,
        });
    }
    Ok(())
}

fn fmt_utc(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M").to_string()
}

/// The facts of a change as its mails show them.
fn summary(settings: &Settings, t: &TicketState, rec: &Record, services: &[String]) -> String {
    let needed = rec.quorum.needed(rec.approvers.len());
    let mut s = format!(
        "Change:    {number}\n\
         Subject:   {subject}\n\
         Risk:      {risk}\n\
         Impact:    {impact}\n\
         Window:    {window}\n\
         Items:     {items}\n\
         Services:  {services}\n\
         Board:     {board} (approval by {needed} of {m}: {approvers})\n\
         Deadline:  {deadline} UTC\n\
         Submitted: by {by}, round {round}\n",
        number = chg(t),
        subject = t.subject.trim(),
        risk = rec.risk.map(Risk::as_str).unwrap_or("-"),
        impact = rec.impact.as_deref().unwrap_or("-"),
        window = rec
            .window
            .as_ref()
            .map(Window::describe)
            .unwrap_or("-".into()),
        items = if rec.items.is_empty() {
            "-".to_string()
        } else {
            rec.items.join(", ")
        },
        services = if services.is_empty() {
            "-".to_string()
        } else {
            services.join(", ")
        },
        board = rec.board.as_deref().unwrap_or("-"),
        m = rec.approvers.len(),
        approvers = rec.approvers.join(", "),
        deadline = rec.deadline.map(fmt_utc).unwrap_or_default(),
        by = rec.submitted_by.as_deref().unwrap_or("-"),
        round = rec.round,
    );
    let _ = settings;
    if !rec.flags.is_empty() {
        s.push_str("\nWARNING:\n");
        for f in &rec.flags {
            s.push_str(&format!("  ! {f}\n"));
        }
    }
    s
}

/// Fills in the proof of the entries a staff reply made.
pub fn prove(fx: &mut Fx, message_id: Option<&str>) {
    for e in &mut fx.history {
        if e.proof.is_empty() {
            e.proof = format!(
                "staff command in mail {}; sender proven by a reply token of theirs or a \
                 trusted DKIM/SPF pass",
                message_id.unwrap_or("(no Message-ID)")
            );
        }
    }
}

/// An approver's verdict in the first line of a mail's new text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Approve(String),
    Reject(String),
}

/// `approve [words]` or `reject [reason]` (case-insensitive) in the first
/// non-empty line; `None` for anything else.
pub fn verdict(text: &str) -> Option<Verdict> {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    let (word, rest) = match line.split_once(char::is_whitespace) {
        Some((w, r)) => (w, r.trim()),
        None => (line, ""),
    };
    let word = word
        .trim_end_matches(['.', ',', ':', '!', ';'])
        .to_ascii_lowercase();
    let rest = rest.trim_start_matches([':', '-', ',']).trim().to_string();
    match word.as_str() {
        "approve" | "approved" => Some(Verdict::Approve(rest)),
        "reject" | "rejected" => Some(Verdict::Reject(rest)),
        _ => None,
    }
}

/// Why an answer is refused, or `None` when it counts. Pure: the record,
/// the sender, the approval tags found in the mail, and the time.
pub fn judge(
    key: &crate::domain::token::TokenKey,
    rec: &Record,
    seq: i64,
    sender: &str,
    found: &[Found],
    now: DateTime<Utc>,
) -> Option<String> {
    let sender = sender.to_ascii_lowercase();
    // The sender's own tag, of the current round if there is one.
    let own = found
        .iter()
        .filter(|f| f.issued_to(key, seq, &sender))
        .max_by_key(|f| f.round == rec.round);
    let approver = rec.is_approver(&sender);
    // Whose token it is when it is not the sender's.
    let foreign = || {
        found.iter().find_map(|f| {
            rec.approvers
                .iter()
                .find(|a| f.issued_to(key, seq, a))
                .cloned()
        })
    };
    match own {
        Some(f) if approver && f.round == rec.round => {}
        Some(f) if approver => {
            return Some(format!(
                "the approval token is of submission round {}; the change was submitted again \
                 (round {}) and only the newest request counts",
                f.round, rec.round
            ));
        }
        _ if !approver => {
            return Some(match foreign() {
                Some(a) => format!(
                    "{sender} is not an approver of this change (the token was issued to {a})"
                ),
                None => format!("{sender} is not an approver of this change"),
            });
        }
        _ if found.is_empty() => {
            return Some(
                "no approval token: the answer is not a reply to the approval request sent to \
                 the approver"
                    .into(),
            );
        }
        _ => {
            return Some(match foreign() {
                Some(a) => format!(
                    "foreign approval token: it was issued to {a}, not to the sender {sender}"
                ),
                None => {
                    "the approval token does not verify (tampered or for another change)".into()
                }
            });
        }
    }
    if rec.state != State::Submitted {
        return Some(format!(
            "answer after the decision: the change is {}",
            rec.state.as_str()
        ));
    }
    if let Some(d) = rec.deadline
        && now > d
    {
        return Some(format!("answer after the deadline ({} UTC)", fmt_utc(d)));
    }
    if let Some(a) = rec
        .answers
        .iter()
        .find(|a| a.approver.eq_ignore_ascii_case(&sender))
    {
        return Some(format!(
            "{sender} already answered in this round ({})",
            if a.approve { "approve" } else { "reject" }
        ));
    }
    None
}

/// An approver's answer: when the mail to a submitted change starts with
/// `approve` or `reject`, it is judged here, recorded (or refused and
/// recorded) and nothing else happens to the ticket. Returns false when the
/// mail is no answer and takes the usual path.
pub fn answer(
    settings: &Settings,
    ticket: &mut TicketState,
    input: &MailIn<'_>,
    now: DateTime<Utc>,
    fx: &mut Effects,
) -> bool {
    if input.new_ticket
        || ticket.kind != Kind::Change
        || matches!(
            input.author,
            Author::Desk | Author::Robot | Author::Supplier(_)
        )
    {
        return false;
    }
    let Some(rec) = ticket.change.as_deref() else {
        return false;
    };
    if rec.round == 0 {
        return false;
    }
    let text = input.mail.reply_text();
    let Some(v) = verdict(text) else {
        return false;
    };
    let found = token::find(&settings.key, &settings.desk.address, input.mail);
    let sender = input.sender.email.to_ascii_lowercase();
    if !(rec.is_approver(&sender) || !found.is_empty() || rec.state == State::Submitted) {
        return false;
    }
    let number = chg(ticket);
    let mid = input
        .mail
        .message_id
        .clone()
        .unwrap_or_else(|| "(no Message-ID)".into());
    fx.visibility = Visibility::Internal;
    fx.shown_text = text.to_string();
    let refused = judge(&settings.key, rec, number.seq, &sender, &found, now);
    let round = rec.round;
    let (approve, words) = match &v {
        Verdict::Approve(w) => (true, w.clone()),
        Verdict::Reject(w) => (false, w.clone()),
    };
    let said = if approve { "approve" } else { "reject" };
    if let Some(reason) = refused {
        fx.flag = Some(format!(
            "refused approval answer ({said}) from {sender}: {reason}; nothing changed"
        ));
        fx.process.history.push(Entry {
            round,
            actor: sender.clone(),
            action: "refused".into(),
            detail: format!("{said}: {reason}"),
            proof: format!("mail {mid}; approval tags found: {}", found.len()),
        });
        let rec = rec.clone();
        refusal_notice(settings, ticket, &rec, &sender, said, &reason, fx);
        not_counted(settings, ticket, input, said, &reason, fx);
        return true;
    }
    let rec = record(ticket);
    rec.answers.push(Answer {
        approver: sender.clone(),
        approve,
        reason: words.clone(),
    });
    fx.process.touched = true;
    fx.process.history.push(Entry {
        round,
        actor: sender.clone(),
        action: said.into(),
        detail: if words.is_empty() {
            NO_WORDS.into()
        } else {
            words
        },
        proof: format!("mail {mid}; approval token of round {round} issued to {sender}"),
    });
    let to = match rec.tally() {
        Tally::Open => return true,
        Tally::Approved => State::Approved,
        Tally::Rejected => State::Rejected,
    };
    rec.state = to;
    let rec = rec.clone();
    let yes = rec.answers.iter().filter(|a| a.approve).count();
    fx.process.history.push(Entry {
        round,
        actor: "desk".into(),
        action: to.as_str().into(),
        detail: format!(
            "{yes} of {} approved (needed {}), {} rejected",
            rec.approvers.len(),
            rec.quorum.needed(rec.approvers.len()),
            rec.answers.len() - yes
        ),
        proof: format!(
            "quorum {} of board {}",
            rec.quorum,
            rec.board.as_deref().unwrap_or("-")
        ),
    });
    fx.process.hooks.push(if to == State::Approved {
        "change.approved"
    } else {
        "change.rejected"
    });
    decision_mail(settings, ticket, &rec, to, fx);
    true
}

/// Who hears of a change's decision and of refused answers: its assignee,
/// the staff member who submitted it, and the change manager.
fn owners(settings: &Settings, ticket: &TicketState, rec: &Record) -> Vec<Address> {
    let mut people: Vec<Address> = Vec::new();
    let mut add = |a: Address| {
        if !people
            .iter()
            .any(|p| p.email.eq_ignore_ascii_case(&a.email))
        {
            people.push(a);
        }
    };
    for email in ticket.assignee.iter().chain(rec.submitted_by.iter()) {
        match settings.staff.by_email(email) {
            Some(m) => add(m.address()),
            None => add(Address::new("", email)),
        }
    }
    if let Some(m) = &settings.changes.manager {
        add(m.clone());
    }
    people
}

/// Tells the change's owners that an answer was refused, and why (the
/// sender is not told: it may be a forger).
fn refusal_notice(
    settings: &Settings,
    ticket: &TicketState,
    rec: &Record,
    sender: &str,
    said: &str,
    reason: &str,
    fx: &mut Effects,
) {
    let people = owners(settings, ticket, rec);
    if people.is_empty() {
        return;
    }
    let number = chg(ticket);
    fx.drafts.push(Draft {
        kind: DraftKind::ChangeNotice,
        to: people,
        from_name: settings.desk.name.clone(),
        subject: tagged_subject(
            &format!("Approval answer refused: {}", ticket.subject.trim()),
            &settings.desk.tag,
            number,
        ),
        body: format!(
            "WARNING: an answer \"{said}\" on change {number} from {sender} was refused: \
             {reason}.\n\nIt changed nothing; it is stored on the ticket as an internal \
             message and listed by `helpdeskd change show {number}`. If it was a real \
             approver, they must reply to the approval request they received for round \
             {round}, before the deadline.\n\n-- \n{desk}\n",
            round = rec.round,
            desk = settings.desk.name,
        ),
        in_reply_to: None,
        references: vec![format!("{number}.change@{}", settings.desk.id_domain())],
        with_attachments: false,
    });
}

/// Answers the sender of a refused answer with the reason, in the
/// command-error mail (a forged `From:` tells its real owner).
fn not_counted(
    settings: &Settings,
    ticket: &TicketState,
    input: &MailIn<'_>,
    said: &str,
    reason: &str,
    fx: &mut Effects,
) {
    let number = chg(ticket);
    fx.drafts.push(Draft {
        kind: DraftKind::CommandError,
        to: vec![input.sender.clone()],
        from_name: settings.desk.name.clone(),
        subject: format!(
            "Not counted: {}",
            tagged_subject(ticket.subject.trim(), &settings.desk.tag, number)
        ),
        body: format!(
            "Your answer \"{said}\" on change {number} was not counted: {reason}.\n\n\
             Nothing was changed. An approver answers by replying to the approval request \
             the desk sent them for the current submission, before its deadline, with \
             \"approve\" or \"reject <reason>\" in the first line.\n\n-- \n{desk}\n",
            desk = settings.desk.name,
        ),
        in_reply_to: input.mail.message_id.clone(),
        references: input.mail.message_id.iter().cloned().collect(),
        with_attachments: false,
    });
}

fn decision_mail(
    settings: &Settings,
    ticket: &TicketState,
    rec: &Record,
    to: State,
    fx: &mut Effects,
) {
    let people = owners(settings, ticket, rec);
    if people.is_empty() {
        return;
    }
    let number = chg(ticket);
    let answers: String = rec
        .answers
        .iter()
        .map(|a| {
            format!(
                "  {} {}{}\n",
                if a.approve { "approved:" } else { "rejected:" },
                a.approver,
                if a.reason.is_empty() {
                    String::new()
                } else {
                    format!(" — {}", a.reason)
                }
            )
        })
        .collect();
    let services = settings.changes.catalog.services_of(&rec.items);
    let next = if to == State::Approved {
        "Next: /change scheduled when it is planned, /change implemented or /change failed \
         after the window, /change closed at the end."
    } else {
        "Next: edit the change (/risk, /impact, /window, /ci) and /submit it again, or \
         /change closed."
    };
    fx.drafts.push(Draft {
        kind: DraftKind::ChangeNotice,
        to: people,
        from_name: settings.desk.name.clone(),
        subject: tagged_subject(
            &format!("Change {}: {}", to.as_str(), ticket.subject.trim()),
            &settings.desk.tag,
            number,
        ),
        body: format!(
            "Change {number} is {state}.\n\nAnswers of round {round}:\n{answers}\n{facts}\n{next}\n\n-- \n{desk}\n",
            state = to.as_str(),
            round = rec.round,
            facts = summary(settings, ticket, rec, &services),
            desk = settings.desk.name,
        ),
        in_reply_to: None,
        references: vec![format!("{number}.change@{}", settings.desk.id_domain())],
        with_attachments: false,
    });
}

/// The approval tag a copy of an approval request carries for `to`.
pub fn approval_tag(settings: &Settings, number: TicketNumber, round: u32, to: &Address) -> String {
    token::tag(&settings.key, number.seq, round, &to.email)
}
