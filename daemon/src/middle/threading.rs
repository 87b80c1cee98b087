//! Threading in any order: the same mails give the same tickets whether
//! they come in the order they were written, reversed or shuffled, in one
//! import or one mail at a time (the second reads what the first left in
//! the database: stored messages and the IDs their mails named).

use std::collections::BTreeSet;

use super::{Desk, Mail};

/// Five conversations, their mails in the order they were written:
/// a thread with full References (and one reply with In-Reply-To only),
/// two replies to a mail the desk never gets, two unrelated patches whose
/// tool wrote `In-Reply-To: yes`, and a chain of In-Reply-To only.
fn mails() -> Vec<(&'static str, String)> {
    let m = |from: &str, subject: &str, id: &'static str, irt: &[&str], refs: &[&str]| {
        let mut mail = Mail::new(from, subject, id).body("Some words of my own.\n");
        if !irt.is_empty() {
            let v: Vec<String> = irt.iter().map(|i| format!("<{i}>")).collect();
            mail = mail.header("In-Reply-To", &v.join(" "));
        }
        if !refs.is_empty() {
            let v: Vec<String> = refs.iter().map(|i| format!("<{i}>")).collect();
            mail = mail.header("References", &v.join(" "));
        }
        (id, mail.raw())
    };
    let yes = |from: &str, subject: &str, id: &'static str| {
        let raw = Mail::new(from, subject, id)
            .header("In-Reply-To", "yes")
            .body("A patch.\n")
            .raw();
        (id, raw)
    };
    vec![
        m("ann@a.test", "VPN down", "a1@a.test", &[], &[]),
        m(
            "ann@a.test",
            "Re: VPN down",
            "a2@a.test",
            &["a1@a.test"],
            &["a1@a.test"],
        ),
        m(
            "ann@a.test",
            "Re: VPN down",
            "a3@a.test",
            &["a2@a.test"],
            &["a1@a.test", "a2@a.test"],
        ),
        m(
            "ann@a.test",
            "Re: VPN down",
            "a4@a.test",
            &["a2@a.test"],
            &[],
        ),
        m(
            "bo@b.test",
            "Re: list post",
            "b1@b.test",
            &["b0@b.test"],
            &["b0@b.test"],
        ),
        m(
            "cy@b.test",
            "Re: list post",
            "b2@b.test",
            &["b0@b.test"],
            &["b0@b.test"],
        ),
        yes("dev1@c.test", "[PATCH 1/2] fix", "c1@c.test"),
        yes("dev2@c.test", "[PATCH] other", "d1@c.test"),
        m("eve@e.test", "Printer", "e1@e.test", &[], &[]),
        m(
            "eve@e.test",
            "Re: Printer",
            "e2@e.test",
            &["e1@e.test"],
            &[],
        ),
        m(
            "eve@e.test",
            "Re: Printer",
            "e3@e.test",
            &["e2@e.test"],
            &[],
        ),
    ]
}

/// The tickets as sets of the Message-IDs of their inbound mails.
async fn tickets(desk: &Desk) -> BTreeSet<BTreeSet<String>> {
    let rows = desk
        .rows(
            "SELECT ticket_id, message_id FROM messages WHERE direction = 'in' \
             ORDER BY ticket_id, message_id",
        )
        .await;
    let mut by_ticket: std::collections::BTreeMap<String, BTreeSet<String>> = Default::default();
    for line in rows.lines() {
        let mut t = String::new();
        let mut m = String::new();
        for field in line.split_whitespace() {
            if let Some(v) = field.strip_prefix("ticket_id=") {
                t = v.to_string();
            } else if let Some(v) = field.strip_prefix("message_id=") {
                m = v.to_string();
            }
        }
        by_ticket.entry(t).or_default().insert(m);
    }
    by_ticket.into_values().collect()
}

fn expected() -> BTreeSet<BTreeSet<String>> {
    [
        vec!["a1@a.test", "a2@a.test", "a3@a.test", "a4@a.test"],
        vec!["b1@b.test", "b2@b.test"],
        vec!["c1@c.test"],
        vec!["d1@c.test"],
        vec!["e1@e.test", "e2@e.test", "e3@e.test"],
    ]
    .into_iter()
    .map(|t| t.into_iter().map(str::to_string).collect())
    .collect()
}

/// A fixed shuffle (a small LCG), so a failure can be replayed.
fn shuffled<T: Clone>(v: &[T], seed: u64) -> Vec<T> {
    let mut out = v.to_vec();
    let mut s = seed;
    for i in (1..out.len()).rev() {
        s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let j = (s >> 33) as usize % (i + 1);
        out.swap(i, j);
    }
    out
}

async fn import(order: &[(&'static str, String)], one_at_a_time: bool) -> Desk {
    let desk = Desk::new().await;
    if one_at_a_time {
        for (_, raw) in order {
            desk.deliver(&[raw.as_str()]).await;
        }
    } else {
        let all: Vec<&str> = order.iter().map(|(_, r)| r.as_str()).collect();
        desk.deliver(&all).await;
    }
    desk
}

#[tokio::test]
async fn the_same_mails_give_the_same_tickets_in_any_order() {
    let written = mails();
    let mut orders: Vec<(String, Vec<(&'static str, String)>)> = vec![
        ("written".into(), written.clone()),
        ("reversed".into(), written.iter().rev().cloned().collect()),
    ];
    for seed in [1, 2, 3, 4] {
        orders.push((format!("shuffled {seed}"), shuffled(&written, seed)));
    }
    for (name, order) in &orders {
        for one_at_a_time in [false, true] {
            let desk = import(order, one_at_a_time).await;
            let ids: Vec<&str> = order.iter().map(|(id, _)| *id).collect();
            assert_eq!(
                tickets(&desk).await,
                expected(),
                "{name} order ({}): {ids:?}",
                if one_at_a_time {
                    "one mail per import"
                } else {
                    "one import"
                }
            );
        }
    }
}

/// The IDs a ticket's mails named are kept as its keys, each once, the
/// first ticket to name one keeping it; an ID without `@` is no key.
#[tokio::test]
async fn the_ids_a_ticket_named_are_its_keys() {
    let desk = import(&mails(), true).await;
    assert_eq!(
        desk.rows(
            "SELECT k.message_id, t.number FROM ticket_keys k \
             JOIN tickets t ON t.id = k.ticket_id ORDER BY k.message_id"
        )
        .await,
        "message_id=b0@b.test number=INC-000002"
    );
    let reversed: Vec<_> = mails().into_iter().rev().collect();
    let desk = import(&reversed, true).await;
    assert_eq!(
        desk.rows(
            "SELECT k.message_id, t.number FROM ticket_keys k \
             JOIN tickets t ON t.id = k.ticket_id ORDER BY k.message_id"
        )
        .await,
        [
            "message_id=a1@a.test number=INC-000005",
            "message_id=a2@a.test number=INC-000005",
            "message_id=b0@b.test number=INC-000004",
            "message_id=e1@e.test number=INC-000001",
            "message_id=e2@e.test number=INC-000001",
        ]
        .join("\n")
    );
}
