//! Reading `Authentication-Results` (RFC 8601) for the trust rules: a staff
//! mail without a token of its own still counts when a server the admin
//! trusts recorded a DKIM or SPF pass for the sender's own domain.
//!
//! Only headers whose authserv-id is configured count. That server must strip
//! headers claiming its id from incoming mail (RFC 8601 §5), as Postfix,
//! OpenDKIM, rspamd and Exchange Online do; otherwise a sender could forge one.

/// Whether some header from a trusted server records a DKIM pass for a
/// signing domain equal to `sender_domain`, or an SPF pass for a MAIL FROM
/// in `sender_domain`.
pub fn authenticated(headers: &[String], trusted: &[String], sender_domain: &str) -> bool {
    if sender_domain.is_empty() {
        return false;
    }
    headers.iter().any(|h| {
        let mut parts = split_semicolons(h).into_iter();
        let Some(id) = parts.next() else {
            return false;
        };
        let authserv = id.split_whitespace().next().unwrap_or("");
        if !trusted.iter().any(|t| t.eq_ignore_ascii_case(authserv)) {
            return false;
        }
        parts.any(|result| passes_for(&result, sender_domain))
    })
}

/// Splits on `;` outside comments and quotes.
fn split_semicolons(h: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut depth, mut quoted) = (0u32, false);
    for c in h.chars() {
        match c {
            '"' if depth == 0 => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => {
                depth -= 1;
                continue;
            }
            ';' if !quoted && depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        if depth == 0 && c != '(' {
            cur.push(c);
        }
    }
    out.push(cur);
    out.into_iter().map(|s| s.trim().to_string()).collect()
}

fn passes_for(result: &str, sender_domain: &str) -> bool {
    let mut words = result.split_whitespace();
    let Some((method, outcome)) = words.next().and_then(|w| w.split_once('=')) else {
        return false;
    };
    if !outcome.eq_ignore_ascii_case("pass") {
        return false;
    }
    let props: Vec<(String, String)> = words
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| {
            (
                k.to_ascii_lowercase(),
                v.trim_matches('"').to_ascii_lowercase(),
            )
        })
        .collect();
    let domain_of = |v: &str| v.rsplit('@').next().unwrap_or("").to_string();
    let sender = sender_domain.to_ascii_lowercase();
    match method.to_ascii_lowercase().as_str() {
        "dkim" => props.iter().any(|(k, v)| {
            (k == "header.d" && *v == sender) || (k == "header.i" && domain_of(v) == sender)
        }),
        "spf" => props
            .iter()
            .any(|(k, v)| k == "smtp.mailfrom" && domain_of(v) == sender),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<String> {
        vec![s.to_string()]
    }
    fn trusted() -> Vec<String> {
        vec!["mx.example.test".to_string()]
    }

    #[test]
    fn dkim_or_spf_pass_for_the_sender_domain_counts() {
        let dkim = h(
            "mx.example.test; dkim=pass (2048-bit key) header.d=example.test header.s=sel; spf=none",
        );
        assert!(authenticated(&dkim, &trusted(), "example.test"));
        let spf = h("mx.example.test 1; spf=pass smtp.mailfrom=ada@example.test");
        assert!(authenticated(&spf, &trusted(), "example.test"));
        let dkim_i = h("MX.example.test; dkim=pass header.i=@example.test");
        assert!(authenticated(&dkim_i, &trusted(), "example.test"));
    }

    #[test]
    fn untrusted_servers_failures_and_other_domains_do_not() {
        let t = trusted();
        assert!(!authenticated(
            &h("evil.test; dkim=pass header.d=example.test"),
            &t,
            "example.test"
        ));
        assert!(!authenticated(
            &h("mx.example.test; dkim=fail header.d=example.test"),
            &t,
            "example.test"
        ));
        assert!(!authenticated(
            &h("mx.example.test; dkim=pass header.d=attacker.test"),
            &t,
            "example.test"
        ));
        assert!(!authenticated(
            &h("mx.example.test; spf=pass smtp.mailfrom=x@attacker.test"),
            &t,
            "example.test"
        ));
        assert!(!authenticated(
            &h("mx.example.test; none"),
            &t,
            "example.test"
        ));
        assert!(!authenticated(
            &h("mx.example.test; dkim=pass header.d=example.test"),
            &[],
            "example.test"
        ));
        assert!(!authenticated(
            &h("mx.example.test; dkim=pass header.d=example.test"),
            &t,
            ""
        ));
        // A pass hidden in a comment is not a pass.
        assert!(!authenticated(
            &h(
                "mx.example.test; dkim=fail (dkim=pass header.d=example.test) header.d=example.test"
            ),
            &t,
            "example.test"
        ));
    }
}
