//! Signed reply tokens (design threading rule 2 and the trust rules).
//!
//! Every mail the desk sends carries, per recipient, a token naming the
//! ticket and the recipient's contact id, signed with the desk's secret:
//! `INC-000042.17.<16 hex>`. It travels in the Message-ID
//! (`<INC-000042.17.<mac>.<unique>@domain>`) and in a plus-addressed
//! Reply-To (`support+INC-000042.17.<mac>@domain`), so a reply can be
//! threaded when a client dropped In-Reply-To, and a staff reply proves
//! that its sender received that ticket's mail — nobody else's token
//! verifies for the staff member's contact id.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::mail::Address;
use super::ticket::{ContactId, TicketNumber};

/// Bytes of the HMAC kept in a token: 64 bits cannot be guessed by mail.
const MAC_BYTES: usize = 8;

/// The desk's token secret.
#[derive(Clone)]
pub struct TokenKey(Vec<u8>);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(***)")
    }
}

/// A verified token: the ticket and the contact it was sent to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Token {
    pub number: TicketNumber,
    pub contact: ContactId,
}

impl TokenKey {
    /// A key of at least 16 bytes.
    pub fn new(secret: &[u8]) -> Result<TokenKey, String> {
        if secret.len() < 16 {
            return Err(format!(
                "the token secret has {} bytes; at least 16 are needed",
                secret.len()
            ));
        }
        Ok(TokenKey(secret.to_vec()))
    }

    /// Names the secret without revealing it: an HMAC of a fixed label, so
    /// the daemons of one desk can compare their secrets through the
    /// database (16 bytes, hex).
    pub fn fingerprint(&self) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else {
            return String::new();
        };
        mac.update(b"helpdeskd token secret fingerprint 1");
        let out = mac.finalize().into_bytes();
        out[..16].iter().map(|b| format!("{b:02x}")).collect()
    }

    fn mac(&self, number: TicketNumber, contact: ContactId) -> String {
        // new_from_slice only fails for key sizes HMAC cannot take; it takes all.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else {
            return String::new();
        };
        mac.update(format!("{number}.{contact}").as_bytes());
        let out = mac.finalize().into_bytes();
        out[..MAC_BYTES]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The 16-hex MAC of any text under the desk's secret (the change
    /// approval tokens of `domain::changes::token` sign with it).
    pub fn mac_text(&self, text: &str) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else {
            return String::new();
        };
        mac.update(text.as_bytes());
        let out = mac.finalize().into_bytes();
        out[..MAC_BYTES]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// `INC-000042.17.0123456789abcdef`.
    pub fn sign(&self, token: Token) -> String {
        format!(
            "{}.{}.{}",
            token.number,
            token.contact,
            self.mac(token.number, token.contact)
        )
    }

    /// Reads a token at the start of `s` (`NUMBER.CONTACT.MAC[.anything]`);
    /// `None` unless the signature verifies.
    pub fn verify(&self, s: &str) -> Option<Token> {
        let mut parts = s.split('.');
        let number: TicketNumber = parts.next()?.parse().ok()?;
        let contact = ContactId(parts.next()?.parse().ok()?);
        let mac = parts.next()?.to_ascii_lowercase();
        if mac.len() != MAC_BYTES * 2 {
            return None;
        }
        let want = self.mac(number, contact);
        // Constant-time enough for 16 hex characters compared once per mail.
        let same = want
            .bytes()
            .zip(mac.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
        same.then_some(Token { number, contact })
    }

    /// The plus-addressed reply address carrying `token`.
    pub fn reply_to(&self, desk: &Address, token: Token) -> Address {
        let (local, domain) = (desk.local_part(), desk.domain());
        // Not lower-cased like other addresses: the number stays readable.
        Address {
            name: desk.name.clone(),
            email: format!("{local}+{}@{domain}", self.sign(token)),
        }
    }

    /// A Message-ID carrying `token`; `unique` tells apart mails with the same token.
    pub fn message_id(&self, token: Token, unique: &str, domain: &str) -> String {
        format!("{}.{unique}@{domain}", self.sign(token))
    }

    /// Every verified token in the recipient addresses (plus-addressed to the
    /// desk) and in referenced Message-IDs, without repeats.
    pub fn find<'a>(
        &self,
        desk: &Address,
        recipients: impl IntoIterator<Item = &'a str>,
        references: impl IntoIterator<Item = &'a str>,
    ) -> Vec<Token> {
        let desk_local = desk.local_part();
        let mut found = Vec::new();
        let mut push = |t: Option<Token>| {
            if let Some(t) = t
                && !found.contains(&t)
            {
                found.push(t);
            }
        };
        for r in recipients {
            let Some((local, domain)) = r.rsplit_once('@') else {
                continue;
            };
            if !domain.eq_ignore_ascii_case(desk.domain()) {
                continue;
            }
            if let Some((base, tag)) = local.split_once('+')
                && base.eq_ignore_ascii_case(desk_local)
            {
                push(self.verify(tag));
            }
        }
        for id in references {
            if let Some((local, _)) = id.rsplit_once('@') {
                push(self.verify(local));
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ticket::Kind;

    fn key() -> TokenKey {
        TokenKey::new(b"0123456789abcdef-test-secret").expect("key")
    }

    fn t(seq: i64, contact: i64) -> Token {
        Token {
            number: TicketNumber {
                kind: Kind::Incident,
                seq,
            },
            contact: ContactId(contact),
        }
    }

    #[test]
    fn a_fingerprint_tells_secrets_apart_and_does_not_show_the_secret() {
        let fp = key().fingerprint();
        assert_eq!(fp.len(), 32);
        assert_eq!(fp, key().fingerprint());
        let other = TokenKey::new(b"0123456789abcdef-test-secreT").expect("key");
        assert_ne!(fp, other.fingerprint());
        assert_ne!(fp, key().sign(t(1, 1)));
    }

    #[test]
    fn tokens_round_trip_and_resist_tampering() {
        let k = key();
        let s = k.sign(t(42, 17));
        assert!(s.starts_with("INC-000042.17."));
        assert_eq!(k.verify(&s), Some(t(42, 17)));
        assert_eq!(k.verify(&s.to_uppercase()), Some(t(42, 17)));
        // Another ticket or another contact with the same MAC does not verify.
        let mac = s.rsplit('.').next().unwrap_or_default();
        assert_eq!(k.verify(&format!("INC-000043.17.{mac}")), None);
        assert_eq!(k.verify(&format!("INC-000042.18.{mac}")), None);
        assert_eq!(k.verify("INC-000042.17"), None);
        assert_eq!(k.verify("garbage"), None);
        let other = TokenKey::new(b"another-secret-of-16+").expect("key");
        assert_eq!(other.verify(&s), None);
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(TokenKey::new(b"short").is_err());
    }

    #[test]
    fn tokens_are_found_in_reply_addresses_and_message_ids() {
        let k = key();
        let desk = Address::new("Desk", "support@example.test");
        let reply = k.reply_to(&desk, t(1, 2));
        assert!(reply.email.starts_with("support+INC-000001.2."));
        let mid = k.message_id(t(3, 4), "n1", "example.test");
        let found = k.find(
            &desk,
            [
                reply.email.as_str(),
                "support@example.test",
                "other+INC-000009.1.0000000000000000@example.test",
                "support+x@other.test",
            ],
            [mid.as_str(), "random@elsewhere"],
        );
        assert_eq!(found, vec![t(1, 2), t(3, 4)]);
    }
}
