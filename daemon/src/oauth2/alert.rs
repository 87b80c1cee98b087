//! The admin's mail about a refused OAuth2 grant: one outbox row to
//! `desk.admin_address`, queued like the service report's mails.

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::EntityTrait;
use tracing::info;

use super::Alert;
use crate::config::Config;
use crate::domain::ack::Outgoing;
use crate::domain::render::render;
use crate::error::Result;
use crate::store::entity::outbox;
use crate::store::{Fact, Store};

/// The mail telling the admin what the provider said and what to do.
pub fn mail(config: &Config, alert: &Alert, now: DateTime<Utc>) -> Option<Outgoing> {
    let to = config.admin_address.clone()?;
    let desk = &config.desk;
    let login = config
        .oauth2
        .iter()
        .find(|a| a.name == alert.account)
        .map(|a| match a.flow {
            crate::config::Flow::RefreshToken => format!(
                "Run `helpdeskd oauth login {}` as the daemon's user to give it a new refresh token; \
the daemon picks it up within seconds.",
                a.name
            ),
            crate::config::Flow::ClientCredentials => {
                "Check the app registration: its client secret (expired?), its permissions and consent."
                    .to_string()
            }
        })
        .unwrap_or_default();
    Some(Outgoing {
        message_id: format!(
            "oauth2.{}.{}@{}",
            alert
                .account
                .replace(|c: char| !c.is_ascii_alphanumeric(), "-"),
            now.timestamp_micros(),
            desk.id_domain()
        ),
        from: desk.address.clone(),
        reply_to: None,
        to: vec![to],
        subject: format!(
            "[{}] OAuth2 login refused for account {}",
            desk.tag, alert.account
        ),
        in_reply_to: None,
        references: Vec::new(),
        auto_submitted: Some("auto-generated"),
        body: format!(
            "The OAuth2 provider refused a token for the account {account}:\n\n    {reason}\n\n\
The mailboxes and the SMTP server that log in with this account wait: their mail stays \
on the server and in the outbox until a token is granted again.\n\n{login}\n\n\
`helpdeskd check` shows the state of each account.\n",
            account = alert.account,
            reason = alert.reason,
        ),
        html: None,
        attachments: Vec::new(),
        thread: None,
    })
}

/// Queues the alert's mail; nothing without `desk.admin_address`, and
/// nothing when a daemon of the desk (this one or another on the same
/// database) mailed about the account today: every daemon that logs in
/// with the account meets the same refusal.
pub async fn queue(
    store: &Store,
    config: &Config,
    alert: &Alert,
    now: DateTime<Utc>,
) -> Result<bool> {
    let Some(out) = mail(config, alert, now) else {
        return Ok(false);
    };
    let fact = format!("oauth2-alert:{}:{}", alert.account, now.format("%Y-%m-%d"));
    let ours = Fact {
        value: alert.reason.clone(),
        recorded_by: crate::jobs::owner(),
        recorded_at: now.trunc_subsecs(3),
    };
    let recorded = store.record_fact_once(&fact, ours.clone()).await?;
    if recorded != ours {
        info!(
            account = alert.account,
            by = recorded.recorded_by,
            "the admin was told of the refused OAuth2 grant today already"
        );
        return Ok(false);
    }
    let raw = render(&out, now)?;
    let row = crate::store::rows::outbox_row(None, "admin", &out, raw, now);
    outbox::Entity::insert(row).exec(store.conn()).await?;
    info!(account = alert.account, to = %out.to[0].email, "the admin is told of the refused OAuth2 grant");
    Ok(true)
}
