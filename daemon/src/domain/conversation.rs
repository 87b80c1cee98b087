//! What one stored mail does to its ticket: who wrote it (customer, staff,
//! a sender claiming to be staff without proof, the desk itself, a robot),
//! which commands apply, how the status moves, and which mails the desk
//! sends because of it (acknowledgement, staff notifications, the relayed
//! answer, a command error, a bounce notice).
//!
//! Pure: the caller loads the ticket, the tokens and the lookups; this module
//! decides; `ingest::apply` writes the result in the batch's transaction.

use chrono::{DateTime, Duration, Utc};

use super::ack::{Desk, Outgoing, reply_subject};
use super::change::{self, Fields};
use super::classify::Class;
use super::commands::{self, Command, Reply};
use super::mail::{Address, Inbound};
use super::problem::{self, KnownError, OnResolve};
use super::release;
use super::staff::{Directory, StaffMember};
use super::threading::tagged_subject;
use super::ticket::{ContactId, Kind, Priority, Role, Status, TicketId, TicketNumber, Visibility};
use super::token::{Token, TokenKey};
use super::trust;

/// The desk's rules for conversations, from the configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    pub desk: Desk,
    pub staff: Directory,
    pub key: TokenKey,
    /// authserv-ids whose `Authentication-Results` are believed.
    pub trusted_authserv: Vec<String>,
    /// A customer reply this long after resolution opens a new ticket.
    pub reopen_window: Duration,
    /// Acknowledgements per sender and hour.
    pub ack_limit_per_hour: u32,
    /// Mailbox name → the staff group its new tickets go to.
    pub mailbox_groups: std::collections::HashMap<String, String>,
    /// Mailbox name → the service its new tickets are about.
    pub mailbox_services: std::collections::HashMap<String, String>,
    /// Mailbox name → the kind of its new tickets (absent: incident).
    pub mailbox_kinds: std::collections::HashMap<String, Kind>,
    /// Satisfaction requests, ratings, service managers and complaints.
    pub relationship: super::satisfaction::Policy,
    /// Service name → its SLA (services without a policy target are absent).
    pub services: std::collections::HashMap<String, crate::domain::sla::ServicePolicy>,
    /// Service name → who is told of every breach besides the assignee.
    pub service_escalation: std::collections::HashMap<String, Address>,
    pub suppliers: Vec<Supplier>,
    /// Write hook events for plugins (some plugin is installed).
    pub emit_events: bool,
    /// Recipients of one desk mail at most (`tickets.max_recipients`).
    pub max_recipients: usize,
    /// What a solved problem does to its open incidents.
    pub problem_on_resolve: OnResolve,
    /// Who gets the notes of a deployed release.
    pub release_subscribers: Vec<Address>,
    /// Configuration items, change advisory boards, freezes (`domain::changes`).
    pub changes: super::changes::Config,
}

/// A supplier as the conversation sees it: who may answer for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Supplier {
    pub name: String,
    pub contacts: Vec<Address>,
}

impl Settings {
    pub fn supplier_of(&self, email: &str) -> Option<&Supplier> {
        self.suppliers
            .iter()
            .find(|s| s.contacts.iter().any(|c| c.email == email))
    }

    /// The desk address or a plus-addressed variant of it.
    pub fn is_desk_address(&self, email: &str) -> bool {
        let desk = &self.desk.address;
        let Some((local, domain)) = email.rsplit_once('@') else {
            return false;
        };
        let base = local.split_once('+').map_or(local, |(b, _)| b);
        domain.eq_ignore_ascii_case(desk.domain()) && base.eq_ignore_ascii_case(desk.local_part())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Participant {
    pub address: Address,
    /// customer, cc, participant or staff.
    pub role: Role,
}

/// A ticket as a mail sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TicketState {
    pub id: TicketId,
    pub number: TicketNumber,
    pub subject: String,
    pub status: Status,
    pub priority: Priority,
    pub kind: Kind,
    pub assignee: Option<String>,
    pub team: Option<String>,
    pub customer: Address,
    pub resolved_at: Option<DateTime<Utc>>,
    pub root_message_id: Option<String>,
    pub last_public_message_id: Option<String>,
    pub participants: Vec<Participant>,
    pub created_at: DateTime<Utc>,
    /// The service the ticket is about; its policy sets the SLA.
    pub service: Option<String>,
    /// The first public answer from staff.
    pub responded_at: Option<DateTime<Utc>>,
    /// The mailbox the ticket came in through.
    pub mailbox: String,
    /// Custom fields (set by plugins), a JSON object.
    pub fields: String,
    /// Its configuration items, and for a change its record (`domain::changes`).
    pub change: Option<Box<super::changes::Record>>,
}

impl TicketState {
    pub fn is_participant(&self, email: &str) -> bool {
        self.participants.iter().any(|p| p.address.email == email)
    }

    /// The customer side: who receives public answers.
    pub fn audience(&self) -> Vec<Address> {
        self.participants
            .iter()
            .filter(|p| p.role.is_audience())
            .map(|p| p.address.clone())
            .collect()
    }

    /// Whether a customer mail to this ticket should open a new one instead.
    pub fn is_finished(&self, now: DateTime<Utc>, reopen_window: Duration) -> bool {
        match self.status {
            Status::Closed => true,
            Status::Resolved => self.resolved_at.is_none_or(|at| now - at > reopen_window),
            _ => false,
        }
    }
}

/// Who wrote a mail, as far as the desk can tell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Author {
    Customer,
    /// A staff member whose mail proves it (a token of theirs for this
    /// ticket, or a trusted DKIM/SPF pass).
    Staff(StaffMember),
    /// `From:` names a staff member, but nothing proves it.
    ClaimedStaff(StaffMember),
    /// The desk's own address: stored, never answered.
    Desk,
    /// An auto-reply, a list, a bounce: stored, never answered.
    Robot,
    /// A contact of a supplier the ticket may be escalated to.
    Supplier(String),
}

impl Author {
    pub fn as_str(&self) -> &'static str {
        match self {
            Author::Customer | Author::ClaimedStaff(_) => "customer",
            Author::Staff(_) => "staff",
            Author::Desk => "desk",
            Author::Robot => "robot",
            Author::Supplier(_) => "supplier",
        }
    }
}

/// Decides who wrote `mail`, threaded to `ticket` (`None`: a new ticket).
pub fn author(
    settings: &Settings,
    mail: &Inbound,
    sender: &Address,
    class: &Class,
    ticket: Option<TicketNumber>,
    tokens: &[Token],
    sender_contact: ContactId,
) -> Author {
    if settings.is_desk_address(&sender.email) {
        return Author::Desk;
    }
    if !class.may_answer() {
        return Author::Robot;
    }
    if ticket.is_some()
        && let Some(s) = settings.supplier_of(&sender.email)
    {
        return Author::Supplier(s.name.clone());
    }
    let Some(member) = settings.staff.by_email(&sender.email) else {
        return Author::Customer;
    };
    let Some(number) = ticket else {
        // A staff member opening a ticket writes as its customer.
        return Author::Customer;
    };
    let by_token = tokens
        .iter()
        .any(|t| t.number == number && t.contact == sender_contact);
    let by_auth = trust::authenticated(
        &mail.auth_results,
        &settings.trusted_authserv,
        sender.domain(),
    );
    if by_token || by_auth {
        Author::Staff(member.clone())
    } else {
        Author::ClaimedStaff(member.clone())
    }
}

/// Why a claimed staff mail was refused, as shown on the ticket.
pub fn refusal(member: &StaffMember) -> String {
    format!(
        "refused staff claim: From is {} but the mail proves nothing (no reply token sent to \
         them for this ticket, no trusted DKIM/SPF pass); stored as a customer message, \
         nothing changed",
        member.email
    )
}

/// What the desk sends, before tokens and Message-IDs are given out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DraftKind {
    Acknowledgement,
    Notification,
    Answer,
    CommandError,
    BounceNotice,
    SupplierEscalation,
    /// To an incident's customers: the problem behind it is solved.
    ProblemResolved,
    /// To a release's subscribers: it was deployed.
    ReleaseNotes,
    /// A change's approval request to one approver, of a submission round.
    ApprovalRequest(u32),
    /// A change's decision or warnings, to its owner and the change manager.
    ChangeNotice,
    /// The question to the customer after a resolution (`satisfaction`).
    SatisfactionRequest,
    /// A rating of 1 or 2, to the service's manager.
    LowRating,
    /// A new complaint, or a customer reply on one, to `[complaints] notify`.
    ComplaintNotice,
}

impl DraftKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            DraftKind::Acknowledgement => "acknowledgement",
            DraftKind::Notification => "notification",
            DraftKind::Answer => "answer",
            DraftKind::CommandError => "command-error",
            DraftKind::BounceNotice => "bounce-notice",
            DraftKind::SupplierEscalation => "supplier-escalation",
            DraftKind::ProblemResolved => "problem-resolved",
            DraftKind::ReleaseNotes => "release-notes",
            DraftKind::ApprovalRequest(_) => "approval-request",
            DraftKind::ChangeNotice => "change-notice",
            DraftKind::SatisfactionRequest => "satisfaction-request",
            DraftKind::LowRating => "low-rating",
            DraftKind::ComplaintNotice => "complaint-notice",
        }
    }

    /// Automatic mail carries `Auto-Submitted` (RFC 3834); a relayed answer
    /// was written by a person.
    fn auto_submitted(&self) -> Option<&'static str> {
        match self {
            DraftKind::Acknowledgement => Some("auto-replied"),
            DraftKind::Answer | DraftKind::SupplierEscalation => None,
            _ => Some("auto-generated"),
        }
    }

    /// Whether the mail goes to the customer side (public on the ticket).
    pub fn is_public(&self) -> bool {
        matches!(
            self,
            DraftKind::Acknowledgement
                | DraftKind::Answer
                | DraftKind::ProblemResolved
                | DraftKind::SatisfactionRequest
        )
    }
}

/// A mail to send, one copy per recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Draft {
    pub kind: DraftKind,
    pub to: Vec<Address>,
    /// Display name of the desk sender, e.g. "Ada via ACME Service Desk".
    pub from_name: String,
    pub subject: String,
    pub body: String,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    /// Send the inbound mail's attachments along.
    pub with_attachments: bool,
}

impl Draft {
    /// The copy for one recipient, carrying that recipient's token.
    pub fn address(
        &self,
        settings: &Settings,
        to: &Address,
        token: Token,
        unique: &str,
    ) -> Outgoing {
        let desk = &settings.desk;
        let mut from = desk.address.clone();
        from.name = self.from_name.clone();
        let mut reply_to = settings.key.reply_to(&desk.address, token);
        reply_to.name = desk.name.clone();
        let mut unique = unique.to_string();
        if let DraftKind::ApprovalRequest(round) = self.kind {
            // The approver's own approval tag after the reply token.
            let tag = super::changes::apply::approval_tag(settings, token.number, round, to);
            if let Some((local, domain)) = reply_to.email.rsplit_once('@') {
                reply_to.email = format!("{local}.{tag}@{domain}");
            }
            unique = format!("{tag}.{unique}");
        }
        Outgoing {
            message_id: settings.key.message_id(token, &unique, desk.id_domain()),
            from,
            reply_to: Some(reply_to),
            to: vec![to.clone()],
            subject: self.subject.clone(),
            in_reply_to: self.in_reply_to.clone(),
            references: self.references.clone(),
            auto_submitted: self.kind.auto_submitted(),
            body: self.body.clone(),
            html: None,
            attachments: Vec::new(),
            thread: Some(token.number.to_string()),
        }
    }
}

/// A field change, for the ticket history and the plugin events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub field: &'static str,
    pub from: String,
    pub to: String,
}

/// What a mail did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Effects {
    /// public or internal.
    pub visibility: Visibility,
    pub flag: Option<String>,
    /// The text shown on the ticket for this message.
    pub shown_text: String,
    pub changes: Vec<Change>,
    pub links: Vec<TicketNumber>,
    pub added: Vec<Participant>,
    pub removed: Vec<String>,
    pub drafts: Vec<Draft>,
    /// Escalations to suppliers: (supplier, note).
    pub escalations: Vec<(String, String)>,
    /// A supplier answered: its name.
    pub supplier_reply: Option<String>,
    /// Whether the mail counts as the customer's side of the conversation
    /// (later answers reply to it).
    pub public_message: bool,
    /// `/problem TITLE`: open a problem linked to this ticket.
    pub new_problem: Option<String>,
    /// Root cause, workaround, known error: the problem record's changes.
    pub problem_edit: problem::Edit,
    /// The known error a new ticket matched (linked, its workaround sent).
    pub known_error: Option<TicketNumber>,
    /// `/release new TITLE`: open a release with this change in it.
    pub new_release: Option<String>,
    /// `/release REL-…`: put this change in that release.
    pub join_release: Option<TicketNumber>,
    /// `/deploy`: ask the release's gate and deploy.
    pub deploy: bool,
    /// `/window` on a release: its planned window.
    pub release_window: Option<release::Window>,
    /// `/outage start ITEM` (the item's configured name) or `/outage end`.
    pub outage: Option<super::outage::Command>,
    /// Items named, change records moved, approvals (`domain::changes`).
    pub process: super::changes::apply::Fx,
}

/// Lookups the decision needs that the caller answers from the database.
pub trait Lookup {
    /// The id of the ticket with this number, if it exists.
    fn ticket_id(&self, number: TicketNumber) -> Option<TicketId>;
    /// The record of a problem ticket, if one was written.
    fn problem(&self, _id: TicketId) -> Option<problem::Record> {
        None
    }
    /// The record of a release ticket, if one was written.
    fn release(&self, _id: TicketId) -> Option<release::Record> {
        None
    }
    /// The items of the ticket's outages still open.
    fn open_outages(&self, _id: TicketId) -> Vec<String> {
        Vec::new()
    }
    /// The other planned changes with a window, for the overlap check.
    fn planned_changes(&self) -> Vec<super::changes::Planned> {
        Vec::new()
    }
}

/// The input of [`apply`] besides the ticket.
pub struct MailIn<'a> {
    pub mail: &'a Inbound,
    pub sender: &'a Address,
    pub author: &'a Author,
    pub class: &'a Class,
    pub new_ticket: bool,
    /// The acknowledgement budget of the sender allows one more.
    pub may_acknowledge: bool,
    /// A bounce of a desk mail: the failed recipients and why.
    pub bounced: Option<String>,
    /// The known error a new ticket's text matches.
    pub known_error: Option<&'a KnownError>,
}

/// Applies one mail to `ticket` (changed in place) and says what follows.
pub fn apply(
    settings: &Settings,
    ticket: &mut TicketState,
    input: &MailIn<'_>,
    lookup: &dyn Lookup,
    now: DateTime<Utc>,
) -> Effects {
    let mail = input.mail;
    // The mail that opens a ticket is shown whole: what it quotes or
    // forwards is part of the request. Replies show only what they add.
    let shown_text = if input.new_ticket {
        mail.text.clone()
    } else {
        mail.reply_text().to_string()
    };
    let mut fx = Effects {
        visibility: Visibility::Public,
        shown_text,
        ..Effects::default()
    };
    if ticket.root_message_id.is_none() {
        ticket.root_message_id = mail.message_id.clone();
    }
    if super::changes::apply::answer(settings, ticket, input, now, &mut fx) {
        return fx;
    }
    match input.author {
        Author::Staff(member) if !input.new_ticket => {
            staff_reply(settings, ticket, member, input, lookup, now, &mut fx);
        }
        Author::Desk => fx.visibility = Visibility::Internal,
        Author::Supplier(name) => {
            fx.visibility = Visibility::Internal;
            fx.supplier_reply = Some(name.clone());
            let head = format!("Supplier {name} replied (internal; not sent to the customer).");
            let body = news(ticket, input, &head, &fx.shown_text);
            notify(
                settings,
                ticket,
                None,
                &mut fx,
                &body,
                DraftKind::Notification,
            );
        }
        Author::Robot => {
            fx.visibility = Visibility::Internal;
            if let Some(what) = &input.bounced {
                fx.flag = Some(format!("delivery failed: {what}"));
                notify(
                    settings,
                    ticket,
                    None,
                    &mut fx,
                    &format!(
                        "A mail the desk sent on {} could not be delivered: {what}.\n\n\
                     The customer may not have seen it. The bounce is stored on the ticket.",
                        ticket.number
                    ),
                    DraftKind::BounceNotice,
                );
            } else if input.new_ticket && !matches!(input.class, Class::Bounce(_)) {
                let head = format!(
                    "New ticket from an automatic sender ({}).",
                    input.class.reason()
                );
                let body = news(ticket, input, &head, &fx.shown_text);
                notify(
                    settings,
                    ticket,
                    None,
                    &mut fx,
                    &body,
                    DraftKind::Notification,
                );
            }
        }
        Author::Customer | Author::ClaimedStaff(_) | Author::Staff(_) => {
            customer_mail(settings, ticket, input, now, &mut fx);
        }
    }
    fx
}

fn customer_mail(
    settings: &Settings,
    ticket: &mut TicketState,
    input: &MailIn<'_>,
    _now: DateTime<Utc>,
    fx: &mut Effects,
) {
    let mail = input.mail;
    fx.public_message = true;
    if let Some(id) = &mail.message_id {
        ticket.last_public_message_id = Some(id.clone());
    }
    // Everybody the customer wrote to, except the desk and staff, hears the answers.
    for a in mail.to.iter().chain(&mail.cc) {
        if settings.is_desk_address(&a.email)
            || settings.staff.by_email(&a.email).is_some()
            || ticket.is_participant(&a.email)
            || a.email == input.sender.email
        {
            continue;
        }
        let p = Participant {
            address: a.clone(),
            role: Role::Cc,
        };
        ticket.participants.push(p.clone());
        fx.added.push(p);
    }
    let claimed = match input.author {
        Author::ClaimedStaff(m) => Some(m),
        _ => None,
    };
    if let Some(m) = claimed {
        fx.flag = Some(refusal(m));
    } else if !input.new_ticket {
        let to = match ticket.status {
            Status::Pending | Status::Resolved => Some(Status::Open),
            _ => None,
        };
        if let Some(to) = to {
            set_status(ticket, to, fx);
        }
    }
    let known_error = input
        .known_error
        .filter(|_| input.new_ticket && claimed.is_none());
    if let Some(ke) = known_error {
        fx.known_error = Some(ke.number);
    }
    if input.new_ticket && input.may_acknowledge && claimed.is_none() {
        fx.drafts.push(acknowledgement(
            settings,
            ticket,
            mail,
            input.sender,
            known_error,
        ));
    }
    let head = match (input.new_ticket, claimed) {
        (_, Some(m)) => format!(
            "WARNING: this mail claims to come from {} but proves nothing; it was stored as a \
             customer message and changed nothing. If it was you, reply to a notification \
             of this ticket instead.",
            m.email
        ),
        (true, None) => match known_error {
            Some(ke) => format!(
                "New ticket. It matches known error {} (\"{}\"): linked to it, and the \
                 customer was sent its workaround.",
                ke.number, ke.subject
            ),
            None => "New ticket.".to_string(),
        },
        (false, None) => "The customer replied.".to_string(),
    };
    let body = news(ticket, input, &head, &fx.shown_text);
    notify(settings, ticket, None, fx, &body, DraftKind::Notification);
}

fn acknowledgement(
    settings: &Settings,
    ticket: &TicketState,
    mail: &Inbound,
    to: &Address,
    known_error: Option<&KnownError>,
) -> Draft {
    let desk = &settings.desk;
    let number = ticket.number;
    let mut references = mail.references.clone();
    if let Some(id) = &mail.message_id
        && !references.contains(id)
    {
        references.push(id.clone());
    }
    let workaround = known_error.map_or(String::new(), |ke| {
        format!(
            "This looks like a known issue the desk is working on ({}: {}). Until it \
             is fixed, this helps:\n\n{}\n\n\
             If it does not, reply to this mail.\n\n",
            ke.number,
            ke.subject,
            ke.workaround.trim()
        )
    });
    let body = format!(
        "Hello {name},\n\n\
         Thank you for contacting {desk}. We have received your message and \
         opened ticket {number} for it.\n\n\
         {workaround}\
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
    Draft {
        kind: DraftKind::Acknowledgement,
        to: vec![to.clone()],
        from_name: desk.name.clone(),
        subject: tagged_subject(&reply_subject(&mail.subject), &desk.tag, number),
        body,
        in_reply_to: mail.message_id.clone(),
        references,
        with_attachments: false,
    }
}

/// The notification body: the ticket's facts, then `head` and the new text.
fn news(ticket: &TicketState, input: &MailIn<'_>, head: &str, text: &str) -> String {
    format!(
        "{head}\n\n\
         Ticket:   {number} ({kind})\n\
         Subject:  {subject}\n\
         Status:   {status}\n\
         Priority: {priority}\n\
         Assignee: {assignee}\n\
         Customer: {customer}\n\
         From:     {from}\n\n\
         {text}\n\n\
         -- \n\
         Reply to this mail to answer the customer. Commands in the first lines of \
         your reply: /status, /assign, /priority, /kind, /link, /note, /resolve, \
         /close, /cc add|remove.\n",
        number = ticket.number,
        kind = ticket.kind.as_str(),
        subject = ticket.subject,
        status = ticket.status.as_str(),
        priority = ticket.priority.as_str(),
        assignee = ticket
            .assignee
            .clone()
            .or_else(|| ticket.team.as_ref().map(|t| format!("group {t}")))
            .unwrap_or_else(|| "nobody".into()),
        customer = ticket.customer.display(),
        from = input.sender.display(),
        text = if text.trim().is_empty() {
            "(no text)"
        } else {
            text.trim()
        },
    )
}

/// A notification to the ticket's watchers, except `except`.
fn notify(
    settings: &Settings,
    ticket: &TicketState,
    except: Option<&str>,
    fx: &mut Effects,
    body: &str,
    kind: DraftKind,
) {
    let to: Vec<Address> = settings
        .staff
        .watchers(ticket.assignee.as_deref(), ticket.team.as_deref())
        .into_iter()
        .filter(|m| Some(m.email.as_str()) != except)
        .map(StaffMember::address)
        .collect();
    if to.is_empty() {
        return;
    }
    fx.drafts.push(Draft {
        kind,
        to,
        from_name: settings.desk.name.clone(),
        subject: staff_subject(settings, ticket),
        body: body.to_string(),
        in_reply_to: None,
        references: vec![staff_thread_id(settings, ticket)],
        with_attachments: false,
    });
}

/// Staff mails of one ticket share a thread of their own, apart from the
/// customer's.
fn staff_thread_id(settings: &Settings, ticket: &TicketState) -> String {
    format!("{}.staff@{}", ticket.number, settings.desk.id_domain())
}

fn staff_subject(settings: &Settings, ticket: &TicketState) -> String {
    tagged_subject(&ticket.subject, &settings.desk.tag, ticket.number)
}

fn set_status(ticket: &mut TicketState, to: Status, fx: &mut Effects) {
    if ticket.status == to {
        return;
    }
    fx.changes.push(Change {
        field: "status",
        from: ticket.status.as_str().into(),
        to: to.as_str().into(),
    });
    ticket.status = to;
}

fn staff_reply(
    settings: &Settings,
    ticket: &mut TicketState,
    member: &StaffMember,
    input: &MailIn<'_>,
    lookup: &dyn Lookup,
    now: DateTime<Utc>,
    fx: &mut Effects,
) {
    let reply = commands::parse(input.mail.reply_text());
    let mut errors: Vec<String> = reply
        .errors
        .iter()
        .map(|e| format!("{}: {}", e.line, e.message))
        .collect();
    // Commands are checked against a copy; only a reply without errors changes the ticket.
    let mut next = ticket.clone();
    let mut trial = Effects::default();
    for c in &reply.commands {
        if let Err(e) = command(
            settings,
            &mut next,
            member,
            c,
            &reply.text,
            lookup,
            now,
            &mut trial,
        ) {
            errors.push(e);
        }
    }
    if !errors.is_empty() {
        fx.visibility = Visibility::Internal;
        fx.shown_text = input.mail.reply_text().to_string();
        fx.flag = Some(format!("commands refused: {}", errors.join("; ")));
        fx.drafts
            .push(command_error(settings, ticket, member, input, &errors));
        return;
    }
    *ticket = next;
    for (name, note) in &trial.escalations {
        fx.drafts
            .push(supplier_escalation(settings, ticket, member, name, note));
    }
    fx.escalations = trial.escalations;
    super::changes::apply::prove(&mut trial.process, input.mail.message_id.as_deref());
    fx.drafts.append(&mut trial.process.drafts);
    fx.process = trial.process;
    fx.changes = trial.changes;
    fx.links = trial.links;
    fx.added = trial.added;
    fx.removed = trial.removed;
    fx.new_problem = trial.new_problem;
    fx.problem_edit = trial.problem_edit;
    fx.new_release = trial.new_release;
    fx.join_release = trial.join_release;
    fx.deploy = trial.deploy;
    fx.release_window = trial.release_window;
    fx.outage = trial.outage;
    let Reply { text, .. } = &reply;
    fx.shown_text = text.clone();
    if reply.is_note() || reply.commands.iter().any(Command::takes_text) {
        fx.visibility = Visibility::Internal;
        let body = format!(
            "Internal note by {} on {}:\n\n{}\n",
            member.name, ticket.number, text
        );
        notify(
            settings,
            ticket,
            Some(&member.email),
            fx,
            &body,
            DraftKind::Notification,
        );
        return;
    }
    if text.trim().is_empty() {
        fx.visibility = Visibility::Internal;
        return;
    }
    // A public answer: relayed from the desk address, never the staff's own.
    if ticket.status == Status::New {
        set_status(ticket, Status::Open, fx);
    }
    if ticket.responded_at.is_none() {
        ticket.responded_at = Some(now);
    }
    let (audience, left_out) = capped_audience(ticket, &member.email, settings.max_recipients);
    if audience.is_empty() {
        return;
    }
    if !left_out.is_empty() {
        fx.drafts.push(fan_out_notice(
            settings,
            ticket,
            member,
            audience.len(),
            &left_out,
        ));
    }
    let mut references: Vec<String> = Vec::new();
    for id in [&ticket.root_message_id, &ticket.last_public_message_id]
        .into_iter()
        .flatten()
    {
        if !references.contains(id) {
            references.push(id.clone());
        }
    }
    fx.drafts.push(Draft {
        kind: DraftKind::Answer,
        to: audience,
        from_name: format!("{} via {}", member.name, settings.desk.name),
        subject: tagged_subject(
            &reply_subject(&ticket.subject),
            &settings.desk.tag,
            ticket.number,
        ),
        body: format!(
            "{}\n\n-- \n{}\n{}\n",
            text.trim_end(),
            member.name,
            settings.desk.name
        ),
        in_reply_to: ticket.last_public_message_id.clone(),
        references,
        with_attachments: true,
    });
}

/// The customer side of a public answer, at most `max` recipients: the
/// customer first, then the other participants in the order they joined;
/// never the writer (a staff member who opened the ticket, such as a problem
/// opened with `/problem`). The rest are returned separately, so the staff
/// member can be told.
fn capped_audience(ticket: &TicketState, writer: &str, max: usize) -> (Vec<Address>, Vec<Address>) {
    let mut audience = ticket.audience();
    audience.retain(|a| a.email != writer);
    if let Some(i) = audience
        .iter()
        .position(|a| a.email == ticket.customer.email)
    {
        let customer = audience.remove(i);
        audience.insert(0, customer);
    }
    let left_out = audience.split_off(audience.len().min(max.max(1)));
    (audience, left_out)
}

/// Tells a staff member that their answer reached only the first recipients.
fn fan_out_notice(
    settings: &Settings,
    ticket: &TicketState,
    member: &StaffMember,
    sent: usize,
    left_out: &[Address],
) -> Draft {
    const LISTED: usize = 20;
    let mut list: Vec<String> = left_out
        .iter()
        .take(LISTED)
        .map(|a| format!("  {}", a.email))
        .collect();
    if left_out.len() > LISTED {
        list.push(format!("  … and {} more", left_out.len() - LISTED));
    }
    Draft {
        kind: DraftKind::CommandError,
        to: vec![Address::new(member.name.clone(), &member.email)],
        from_name: settings.desk.name.clone(),
        subject: tagged_subject(
            &format!(
                "Answer sent to {sent} of {} recipients",
                sent + left_out.len()
            ),
            &settings.desk.tag,
            ticket.number,
        ),
        body: format!(
            "Your answer on {} went to the customer and the first {} participants only: \
             one desk mail has at most {} recipients (tickets.max_recipients).\n\n\
             Not sent to:\n{}\n",
            ticket.number,
            sent.saturating_sub(1),
            settings.max_recipients,
            list.join("\n")
        ),
        in_reply_to: None,
        references: Vec::new(),
        with_attachments: false,
    }
}

/// The field change a staff command asks for, checked against the
/// configuration ("me" is the writer; a service must have an SLA policy);
/// `None` for the commands that are no field change (notes, links, Cc,
/// suppliers).
pub fn staff_change(
    settings: &Settings,
    member: &StaffMember,
    c: &Command,
) -> Result<Option<change::Change>, String> {
    Ok(Some(match c {
        Command::Status(s) => change::Change::Status(*s),
        Command::Assign(who) => change::Change::Assign(
            settings
                .staff
                .resolve(who, &member.email)
                .map_err(|e| format!("/assign {who}: {e}"))?,
        ),
        Command::Priority(p) => change::Change::Priority(*p),
        Command::Kind(k) => change::Change::Kind(*k),
        Command::Service(name) => {
            if !settings.services.contains_key(name) {
                let known: Vec<&str> = settings.services.keys().map(String::as_str).collect();
                return Err(format!(
                    "/service {name}: no such service with an SLA policy (known: {})",
                    known.join(", ")
                ));
            }
            change::Change::Service(name.clone())
        }
        _ => return Ok(None),
    }))
}

#[allow(clippy::too_many_arguments)]
fn command(
    settings: &Settings,
    t: &mut TicketState,
    member: &StaffMember,
    c: &Command,
    text: &str,
    lookup: &dyn Lookup,
    now: DateTime<Utc>,
    fx: &mut Effects,
) -> Result<(), String> {
    match c {
        Command::Problem(title) => {
            if matches!(t.kind, Kind::Problem | Kind::Change) {
                return Err(format!(
                    "/problem: {} is a {}; open problems from incidents and requests",
                    t.number,
                    t.kind.as_str()
                ));
            }
            if fx.new_problem.is_some() {
                return Err("/problem: one new problem per reply".into());
            }
            fx.new_problem = Some(title.clone());
        }
        Command::RootCause(arg) | Command::Workaround(arg) => {
            let word = match c {
                Command::RootCause(_) => "/rootcause",
                _ => "/workaround",
            };
            only_on_problems(t, word)?;
            let value = if arg.is_empty() { text } else { arg }.trim();
            if value.is_empty() {
                return Err(format!(
                    "{word} needs text: on its line, or as the text of the reply"
                ));
            }
            let edit = match c {
                Command::RootCause(_) => problem::Edit {
                    root_cause: Some(value.to_string()),
                    ..problem::Edit::default()
                },
                _ => problem::Edit {
                    workaround: Some(value.to_string()),
                    ..problem::Edit::default()
                },
            };
            fx.problem_edit.merge(edit);
        }
        Command::Release(arg) => {
            if t.kind != Kind::Change {
                return Err(format!(
                    "/release: {} is a {}; releases group changes",
                    t.number,
                    t.kind.as_str()
                ));
            }
            if fx.new_release.is_some() || fx.join_release.is_some() {
                return Err("/release: one release per reply".into());
            }
            match arg {
                Err(title) => fx.new_release = Some(title.clone()),
                Ok(n) if n.kind == Kind::Release && lookup.ticket_id(*n).is_some() => {
                    fx.join_release = Some(*n);
                }
                Ok(n) => return Err(format!("/release {n}: no such release")),
            }
        }
        Command::Outage(o) => {
            if !matches!(t.kind, Kind::Incident | Kind::Problem) {
                return Err(format!(
                    "/outage: {} is a {}; outages are recorded on incidents and problems",
                    t.number,
                    t.kind.as_str()
                ));
            }
            if fx.outage.is_some() {
                return Err("/outage: one per reply".into());
            }
            let open = lookup.open_outages(t.id);
            match o {
                super::outage::Command::Start(name) => {
                    let catalog = &settings.changes.catalog;
                    let Some(item) = catalog.get(name) else {
                        return Err(format!(
                            "/outage start {name}: no such configuration item (known: {})",
                            catalog.names().join(", ")
                        ));
                    };
                    if open.iter().any(|i| i.eq_ignore_ascii_case(&item.name)) {
                        return Err(format!(
                            "/outage start {}: an outage of it is open on {} already",
                            item.name, t.number
                        ));
                    }
                    fx.outage = Some(super::outage::Command::Start(item.name.clone()));
                }
                super::outage::Command::End => {
                    if open.is_empty() {
                        return Err(format!("/outage end: no outage is open on {}", t.number));
                    }
                    fx.outage = Some(super::outage::Command::End);
                }
            }
        }
        Command::Deploy => {
            if t.kind != Kind::Release {
                return Err(format!(
                    "/deploy: {} is a {}, not a release",
                    t.number,
                    t.kind.as_str()
                ));
            }
            let record = lookup.release(t.id).unwrap_or_default();
            release::may_deploy(t, &record, member)?;
            fx.deploy = true;
        }
        Command::KnownError(keywords) => {
            only_on_problems(t, "/knownerror")?;
            let mut edit = fx.problem_edit.clone();
            edit.merge(problem::Edit {
                known_error: Some(keywords.clone()),
                ..problem::Edit::default()
            });
            edit.apply_to(&lookup.problem(t.id).unwrap_or_default())?;
            fx.problem_edit = edit;
        }
        Command::Status(_)
        | Command::Assign(_)
        | Command::Priority(_)
        | Command::Kind(_)
        | Command::Service(_) => {
            let c = staff_change(settings, member, c)?
                .ok_or_else(|| "not a change of fields".to_string())?;
            let mut f = Fields::of(t);
            let moved = change::apply(&mut f, &c, now).map_err(|e| match &c {
                change::Change::Status(s) => format!("/status {}: {e}", s.as_str()),
                _ => e,
            })?;
            f.put(t);
            fx.changes.extend(moved);
        }
        Command::Link(n) => {
            if *n == t.number {
                return Err(format!("/link {n}: a ticket cannot link to itself"));
            }
            if lookup.ticket_id(*n).is_none() {
                return Err(format!("/link {n}: no such ticket"));
            }
            fx.links.push(*n);
        }
        Command::Note => {}
        Command::Ci(name) => super::changes::apply::ci(settings, t, member, name, &mut fx.process)?,
        Command::Change(super::changes::apply::ChangeCommand::Window(arg))
            if t.kind == Kind::Release =>
        {
            let record = lookup.release(t.id).unwrap_or_default();
            if matches!(
                record.state,
                release::State::Deploying | release::State::Deployed
            ) {
                return Err(format!(
                    "/window: {} is {}; its window can no longer change",
                    t.number, record.state
                ));
            }
            let w = super::changes::Window::parse(arg, settings.changes.zone)
                .map_err(|e| format!("/window: {e}"))?;
            fx.release_window = Some(release::Window {
                start: w.start,
                end: w.end,
                zone: w.zone,
            });
        }
        Command::Change(c) => {
            super::changes::apply::command(settings, t, member, c, lookup, now, &mut fx.process)?
        }
        Command::CcAdd(a) => {
            if settings.is_desk_address(&a.email) || settings.staff.by_email(&a.email).is_some() {
                return Err(format!(
                    "/cc add {}: desk and staff addresses cannot be Cc'd",
                    a.email
                ));
            }
            if !t.is_participant(&a.email) {
                let p = Participant {
                    address: a.clone(),
                    role: Role::Cc,
                };
                t.participants.push(p.clone());
                fx.added.push(p);
            }
        }
        Command::Supplier { name, note } => {
            let Some(s) = settings
                .suppliers
                .iter()
                .find(|s| s.name.eq_ignore_ascii_case(name))
            else {
                let known: Vec<&str> = settings.suppliers.iter().map(|s| s.name.as_str()).collect();
                return Err(format!(
                    "/supplier {name}: no such supplier (known: {})",
                    known.join(", ")
                ));
            };
            fx.escalations.push((s.name.clone(), note.clone()));
        }
        Command::CcRemove(email) => {
            let before = t.participants.len();
            t.participants
                .retain(|p| !(p.address.email == *email && p.role == Role::Cc));
            if t.participants.len() == before {
                return Err(format!(
                    "/cc remove {email}: not a Cc participant of this ticket"
                ));
            }
            fx.removed.push(email.clone());
        }
    }
    Ok(())
}

fn only_on_problems(t: &TicketState, word: &str) -> Result<(), String> {
    if t.kind == Kind::Problem {
        Ok(())
    } else {
        Err(format!(
            "{word}: {} is a {}, not a problem (open one with /problem TITLE, or /kind problem)",
            t.number,
            t.kind.as_str()
        ))
    }
}

fn supplier_escalation(
    settings: &Settings,
    ticket: &TicketState,
    member: &StaffMember,
    name: &str,
    note: &str,
) -> Draft {
    let to = settings
        .suppliers
        .iter()
        .find(|s| s.name == name)
        .map(|s| s.contacts.clone())
        .unwrap_or_default();
    Draft {
        kind: DraftKind::SupplierEscalation,
        to,
        from_name: format!("{} via {}", member.name, settings.desk.name),
        subject: staff_subject(settings, ticket),
        body: format!(
            "{desk} escalates ticket {number} to {name}.\n\n\
             Subject:  {subject}\n\
             Priority: {priority}\n\
             Service:  {service}\n\n\
             {note}\n\n\
             Please reply to this mail (keep [{tag} {number}] in the subject); your \
             answer goes to the desk's staff, not to the customer.\n\n-- \n{staff}\n{desk}\n",
            desk = settings.desk.name,
            number = ticket.number,
            subject = ticket.subject,
            priority = ticket.priority.as_str(),
            service = ticket.service.as_deref().unwrap_or("-"),
            note = if note.is_empty() { "(no note)" } else { note },
            tag = settings.desk.tag,
            staff = member.name,
        ),
        in_reply_to: None,
        references: vec![format!(
            "{}.supplier@{}",
            ticket.number,
            settings.desk.id_domain()
        )],
        with_attachments: false,
    }
}

fn command_error(
    settings: &Settings,
    ticket: &TicketState,
    member: &StaffMember,
    input: &MailIn<'_>,
    errors: &[String],
) -> Draft {
    let list: String = errors.iter().map(|e| format!("  - {e}\n")).collect();
    Draft {
        kind: DraftKind::CommandError,
        to: vec![member.address()],
        from_name: settings.desk.name.clone(),
        subject: format!("Not applied: {}", staff_subject(settings, ticket)),
        body: format!(
            "Your reply to {number} was not applied:\n\n{list}\n\
             Nothing was changed and nothing was sent to the customer; your text is \
             kept on the ticket as an internal note. Correct the commands and reply again.\n\n\
             Commands: /status open|pending|resolved|closed, /assign NAME|GROUP|me|nobody, \
             /priority low|normal|high|urgent, /kind incident|request|problem|change|complaint, \
             /link NUMBER, /note, /resolve, /close, /cc add|remove ADDRESS, /ci ITEM; on a \
             change: /risk, /impact, /window, /submit, /change STATE.\n",
            number = ticket.number
        ),
        in_reply_to: input.mail.message_id.clone(),
        references: input.mail.message_id.iter().cloned().collect(),
        with_attachments: false,
    }
}

#[cfg(test)]
pub(crate) mod tests;
