use super::*;

const REPLY: &str = "Thanks, that fixed it.";

fn assert_strips(input: &str, want: &str) {
    assert_eq!(strip_plain(input), want, "input:\n{input}");
}

#[test]
fn gmail_header_single_and_wrapped() {
    assert_strips(
        "Thanks, that fixed it.\n\nOn Mon, Jan 1, 2024 at 10:00 AM Jane Doe <jane@example.com> wrote:\n\n> Try a restart.\n",
        REPLY,
    );
    assert_strips(
        "Thanks, that fixed it.\n\nOn Mon, Jan 1, 2024 at 10:00 AM Jane Doe <\njane@example.com> wrote:\n\n> Try a restart.\n",
        REPLY,
    );
    assert_strips(
        "Thanks, that fixed it.\n\nOn Mon, Jan 1, 2024 at 10:00 AM Jane Doe\n<jane@example.com>\nwrote:\n> Try a restart.\n",
        REPLY,
    );
}

#[test]
fn header_without_blank_line_keeps_the_text_above() {
    assert_strips(
        "On Monday I tried again.\nOn 1 May 2024, Bob <bob@example.com> wrote:\n> Did it work?",
        "On Monday I tried again.",
    );
}

#[test]
fn apple_mail_and_thunderbird() {
    assert_strips(
        "Thanks, that fixed it.\n> On 22 Aug 2015, at 19:21, Adam <adam@example.com> wrote:\n>\n> Hi",
        REPLY,
    );
    assert_strips(
        "Thanks, that fixed it.\n\nOn 04/02/2012 06:26 PM, Megan One wrote:\n> Hi",
        REPLY,
    );
}

#[test]
fn outlook_desktop_block() {
    assert_strips(
        "Thanks, that fixed it.\n\n________________________________\nFrom: Jane Doe <jane@example.com>\nSent: Monday, January 1, 2024 10:00 AM\nTo: Desk <desk@example.com>\nSubject: RE: Printer\n\nTry a restart.",
        REPLY,
    );
}

#[test]
fn outlook_bold_markers_and_split_from_line() {
    assert_strips(
        "Thanks, that fixed it.\n\n ------------------------------\n\n*From:* Jane Doe [mailto:jane@example.com]\n*Sent:* Thursday, February 09, 2012 1:36 PM\n*To:* desk@example.com\n*Subject:* Printer\n\nTry a restart.",
        REPLY,
    );
    assert_strips(
        "Thanks, that fixed it.\n\nFrom: Human Resources \n<a-long-address@example.com> \nSent: Monday, August 26, 2019 4:37 PM\nTo: Desk\nSubject: Printer\n\nTry a restart.",
        REPLY,
    );
}

#[test]
fn two_labels_without_a_date_line_and_address_are_text() {
    let text = "Please set my out-of-office.\nFrom: 1 May\nTo: 5 May\n\nThanks";
    assert_strips(text, text);
    assert_strips(
        "Thanks, that fixed it.\n\nFrom: jane@example.com\nDate: Thu, 24 Mar 2016 08:07:12 -0700\n\nTry a restart.",
        REPLY,
    );
}

#[test]
fn outlook_block_on_one_line() {
    assert_strips(
        "Thanks, that fixed it.\n\nFrom: Jane <jane@example.com> Sent: Monday, 1 January 2024 10:00 To: Desk Subject: Printer\nTry a restart.",
        REPLY,
    );
}

#[test]
fn original_message_separators() {
    for sep in [
        "-----Original Message-----",
        "----- Original Message -----",
        "-----Ursprüngliche Nachricht-----",
        "-------- Message d'origine --------",
        "-------- Oprindelig besked --------",
        "---------- Forwarded message ---------",
        "Begin forwarded message:",
    ] {
        assert_strips(
            &format!("Thanks, that fixed it.\n\n{sep}\nTry a restart."),
            REPLY,
        );
    }
}

#[test]
fn mobile_signatures() {
    for sig in [
        "Sent from my iPhone",
        "Sent from my BlackBerry",
        "Sent from my Verizon Wireless BlackBerry",
        "Get Outlook for iOS<https://aka.ms/o0ukef>",
        "Sent from Mail for Windows",
        "Von meinem iPhone gesendet",
        "Envoyé de mon iPhone",
        "Gesendet von Outlook für Android<https://aka.ms/AAb9ysg>",
    ] {
        assert_strips(
            &format!("Thanks, that fixed it.\n\n{sig}\n\nOn Mon, 1 Jan 2024 Jane wrote:\nold"),
            REPLY,
        );
    }
}

#[test]
fn sent_from_in_a_sentence_stays() {
    let text = "Here is another email\n\nSent from my desk, is much easier then my mobile phone.";
    assert_strips(text, text);
    let text = "The notification was sent from my iPhone app to all users.";
    assert_strips(text, text);
}

#[test]
fn signature_delimiter() {
    assert_strips(
        "Thanks, that fixed it.\n\n-- \nJane Doe\nIT, Example Corp",
        REPLY,
    );
    assert_strips("Thanks, that fixed it.\n--\nJane", REPLY);
    let text = "And here is a fix -- this is not a signature.\n\nkthxbai";
    assert_strips(text, text);
}

#[test]
fn trailing_signature_after_separator_or_regards() {
    assert_strips(
        "Thanks, that fixed it.\n\n__\nriak-users mailing list\nriak-users@lists.example.com",
        REPLY,
    );
    assert_strips(
        "Thanks, that fixed it.\n\nKind regards,\n\nJane Doe\nCEO @ Acme",
        REPLY,
    );
    // Prose or a list after a separator is not a signature.
    let text = "Key points:\n\n----\n\nThe dashes above are markdown formatting, not signatures.";
    assert_strips(text, text);
    let text = "Steps:\n---\n1. reboot\n2. log in";
    assert_strips(text, text);
    // "regards" inside a sentence is not a valediction.
    let text = "I wanted to discuss the issue with regards to the payment.";
    assert_strips(text, text);
}

#[test]
fn german() {
    assert_strips(
        "Danke, geht wieder.\n\nAm 13.12.2017 21:11 schrieb Max Muster <max@example.de>:\n\nAlte Nachricht",
        "Danke, geht wieder.",
    );
    assert_strips(
        "Danke, geht wieder.\n\nVon: Max Muster <max@example.de>\nGesendet: Donnerstag, 23. März 2023 17:11\nAn: Desk\nBetreff: AW: Drucker\n\nAlt",
        "Danke, geht wieder.",
    );
}

#[test]
fn french() {
    assert_strips(
        "Merci.\n\nLe lun. 15 nov. 2021 à 19:42, Jean <jean@example.fr>\na écrit :\n\n> vieux",
        "Merci.",
    );
    assert_strips(
        "Merci.\n\nDe : Jean <jean@example.fr>\nEnvoyé : jeudi 15 décembre 2016 09:35\nÀ : desk@example.com\nObjet : Imprimante\n\nvieux",
        "Merci.",
    );
}

#[test]
fn spanish() {
    assert_strips(
        "Gracias.\n\nEl lun, 1 ene 2024 a las 10:00, Ana (<ana@example.es>) escribió:\n> viejo",
        "Gracias.",
    );
    assert_strips(
        "Gracias.\n\nDe: Ana <ana@example.es>\nEnviado: lunes, 1 de enero de 2024 10:00\nPara: Desk\nAsunto: Impresora\n\nviejo",
        "Gracias.",
    );
}

#[test]
fn dutch() {
    assert_strips(
        "Bedankt.\n\nOp 12 december 2016 19:05 schreef Jan <\njan@example.nl>:\n\n> oud",
        "Bedankt.",
    );
    assert_strips(
        "Bedankt.\n\nVan: Jan [mailto:jan@example.nl]\nVerzonden: maandag 5 december 2016 17:00\nAan: Desk\nOnderwerp: Printer\n\noud",
        "Bedankt.",
    );
}

#[test]
fn italian() {
    assert_strips(
        "Grazie.\n\nIl giorno lun 1 gen 2024 alle ore 10:00 Anna <anna@example.it> ha scritto:\n> vecchio",
        "Grazie.",
    );
    assert_strips(
        "Grazie.\n\nDa: Anna <anna@example.it>\nInviato: martedì 3 gennaio 2017 10:35\nA: Desk\nOggetto: Stampante\n\nvecchio",
        "Grazie.",
    );
}

#[test]
fn portuguese() {
    assert_strips(
        "Obrigado.\n\nEm 10 de julho de 2017 às 16:32:35, João (\njoao@example.pt) escreveu:\n\nvelho",
        "Obrigado.",
    );
    assert_strips(
        "Obrigado.\n\nDe: João <joao@example.pt>\nEnviada: segunda-feira, 1 de janeiro de 2024 10:00\nPara: Desk\nAssunto: Impressora\n\nvelho",
        "Obrigado.",
    );
}

#[test]
fn nordic() {
    assert_strips(
        "Takk.\n\ntir. 18. apr. 2017 kl. 13:09 skrev Ola <ola@example.no\n>:\n\n> gammel",
        "Takk.",
    );
    assert_strips(
        "Kiitos.\n\npe 20. lokakuuta 2017 klo 17.50 Matti\n<matti@example.fi> kirjoitti:\n\nvanha",
        "Kiitos.",
    );
    assert_strips(
        "Tak.\n\n-------- Oprindelig besked --------\nFra: A <a@example.dk>\nDato: 04.07.2024 17.45\nTil: b@example.dk\nEmne: Hej",
        "Tak.",
    );
    assert_strips(
        "Tack.\n\nFrån: Anna <anna@example.se>\nSkickat: den 1 januari 2024 10:00\nTill: Desk\nÄmne: Skrivare\n\ngammal",
        "Tack.",
    );
}

#[test]
fn interleaved_reply_keeps_the_new_lines() {
    assert_strips(
        "On Dec 15, 2024, at 2:00 PM, Jane Doe <jane@example.com> wrote:\n> Option A?\n\nA is great.\n\n> Option B?\n\nB has drawbacks.\n\n--\nBob",
        "A is great.\n\nB has drawbacks.",
    );
}

#[test]
fn quote_without_header_and_rewrapped_quote_tail() {
    assert_strips(
        "Yes.\n\n> Is it down?\n\nAnd again since 9.",
        "Yes.\n\nAnd again since 9.",
    );
    assert_strips(
        "Yes.\n\nOn 1 May 2024, Bob <bob@example.com> wrote:\n> a long quoted line that the replying client wrapped in the middle of a\nword and left unquoted\n> end",
        "Yes.",
    );
}

#[test]
fn plain_text_that_looks_like_headers_stays() {
    for text in [
        "On the surface, this looks like a quote header but it's not.\n\nOn average, this works.",
        "I need emails that come from: john@example.com\n\nThe data comes From: our database.",
        "Timestamps:\n\n2024-01-15 14:30:25\nJan 15, 2024 at 14:30",
        "On your remote host you can run:\n\n     telnet 127.0.0.1 52698",
    ] {
        assert_strips(text, text);
    }
}

#[test]
fn crlf_and_unicode() {
    assert_strips(
        ":+1:\r\n\r\nOn Tue, Sep 25, 2012 at 8:59 AM, Chris\r\n<c@example.com>wrote:\r\n\r\n> old\r\n",
        ":+1:",
    );
    assert_strips(
        "привет\n\nср, 30 апр. 2025 г. в 15:19, Иван <ivan@example.com>:\n\nстарое",
        "привет",
    );
}

#[test]
fn html_gmail() {
    let html = r#"<div dir="ltr">Thanks, that fixed it.</div><div class="gmail_extra"><br><div class="gmail_quote">On Thu, Jun 26, 2014 at 2:14 PM, Jane &lt;<a href="mailto:j@example.com">j@example.com</a>&gt; wrote:<br><blockquote class="gmail_quote">Try a restart.</blockquote></div></div>"#;
    assert_eq!(strip_html(html), REPLY);
}

#[test]
fn html_outlook_and_thunderbird_markers() {
    let outlook = r#"<p>Thanks, that fixed it.</p><div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0in 0in 0in"><p><b>From:</b> Jane</p></div><p>Try a restart.</p>"#;
    assert_eq!(strip_html(outlook), REPLY);
    let web = r#"<div>Thanks, that fixed it.</div><hr><div id="divRplyFwdMsg"><b>From:</b> Jane</div><div>Try a restart.</div>"#;
    assert_eq!(strip_html(web), REPLY);
    let thunderbird = r#"Thanks, that fixed it.<br><div class="moz-cite-prefix">On 26.06.2014 14:41, Jane wrote:<br></div><blockquote type="cite">Try a restart.</blockquote>"#;
    assert_eq!(strip_html(thunderbird), REPLY);
    let yahoo = r#"<div>Thanks, that fixed it.</div><div class="yahoo_quoted"><div>On Monday, Jane wrote:</div><div>Try a restart.</div></div>"#;
    assert_eq!(strip_html(yahoo), REPLY);
}

#[test]
fn html_to_text_basics() {
    let html = "<html><head><style>p { margin: 0 }</style></head><body><!-- c --><p>A &amp; B&nbsp;&lt;x&gt;</p><p>two\n   words<br>next</p><ul><li>one</li></ul><blockquote>quoted</blockquote>&#233;&#x41;&bogus; &</body></html>";
    assert_eq!(
        html_to_text(html).trim_end(),
        "A & B <x>\ntwo words\nnext\n- one\n> quoted\néA&bogus; &"
    );
}

#[test]
fn html_header_blocks_without_marker() {
    // Zimbra/Hotmail style: a rule, then Date/To/From/Subject lines.
    let html = "<div>Thanks, that fixed it.<br><div><hr>Date: Fri, 23 Mar 2012 12:35:31 -0600<br>To: <a href=\"mailto:desk@example.com\">desk@example.com</a><br>From: jane@example.com<br>Subject: Printer<br><br>Try a restart.</div></div>";
    assert_eq!(strip_html(html), REPLY);
    // Sender and date in one line of bold runs.
    let html = "Thanks, that fixed it.<div><hr/><div><font><b>From: jane@example.com</b> <b>Date: Thu, 24 Mar 2016 08:07:12 -0700</b></font></div><div>Try a restart.</div></div>";
    assert_eq!(strip_html(html), REPLY);
    // Outlook 2003: the block right under an <hr>, bold labels.
    let html = "<p>Thanks, that fixed it.</p><div><hr></div><p><b>From:</b> Jane [mailto:jane@example.com]<br><b>Sent:</b> Friday, June 27, 2014 12:06\nPM<br><b>To:</b> Desk<br><b>Subject:</b> Printer</p><p>Try a restart.</p>";
    assert_eq!(strip_html(html), REPLY);
}

#[test]
fn html_marker_only_counts_inside_a_tag() {
    let html = "<p>Our CSS class is called gmail_quote, and type=cite too.</p><!-- <div class=\"gmail_quote\"> --><p>Second line.</p>";
    assert_eq!(
        strip_html(html),
        "Our CSS class is called gmail_quote, and type=cite too.\nSecond line."
    );
    // An apostrophe in an unquoted attribute does not open a value.
    assert_eq!(strip_html("<p class=it's>One</p><p>Two</p>"), "One\nTwo");
}

#[test]
fn html_blockquote_without_marker_becomes_a_quote() {
    let html = "<p>Thanks, that fixed it.</p><p>26.06.2014, 14:41, \"Jane\" &lt;j@example.com&gt;:</p><blockquote>Try a restart.</blockquote>";
    assert_eq!(strip_html(html), REPLY);
}

#[test]
fn reply_text_prefers_plain_with_content() {
    assert_eq!(
        reply_text(Some("Plain.\n\n> old"), Some("<p>Html</p>")),
        "Plain."
    );
    assert_eq!(reply_text(Some("  \n"), Some("<p>Html</p>")), "Html");
    assert_eq!(reply_text(None, Some("<p>Html</p>")), "Html");
    assert_eq!(reply_text(None, None), "");
}

#[test]
fn broken_input_never_panics() {
    let inputs = [
        "",
        "\r",
        "\n\n\n",
        ">",
        ">:",
        "--",
        "<",
        "&",
        "&#;",
        "&#xZZ;",
        "&#99999999;",
        "<a href=\"unterminated",
        "<!-- open",
        "<style>never closed",
        "<blockquote></blockquote></blockquote>",
        "é\u{a0}：",
        "From:",
        "From: x\nSent:",
        "On\nwrote:",
        "*From:*",
        "(http",
        "<http",
        "Sent from (http://x",
        "ü>:",
        "\u{feff}>\r\n> \r\n",
    ];
    for input in inputs {
        let _ = strip_plain(input);
        let _ = strip_html(input);
        let _ = reply_text(Some(input), Some(input));
    }
    // Every prefix of a multi-byte string, to hit odd boundaries.
    let s = "Grüße — 日本語 <b>From:</b> ü&uuml;\n> On 1 Jan 2024 Ü <ü@x.de> schrieb:";
    for (k, _) in s.char_indices() {
        let _ = strip_plain(&s[..k]);
        let _ = strip_html(&s[..k]);
    }
}

#[test]
fn pathological_input_is_linear() {
    let quote_line = format!("{}\n", ">".repeat(60_000));
    let long_line = format!("A{}\n", ">".repeat(700_000));
    let mut text = String::from("Hi folks\n\n");
    text.push_str(&quote_line);
    text.push_str("asdf\n");
    text.push_str(&long_line);
    for _ in 0..5_000 {
        text.push_str("On Thursday:\nwrote:\n----\n> x\nFrom: a\n");
    }
    let html = format!(
        "<div>{}</div>{}",
        "<b>x</b>gmail_quote ".repeat(20_000),
        "<".repeat(50_000)
    );
    let started = std::time::Instant::now();
    let out = strip_plain(&text);
    let _ = strip_html(&html);
    let _ = strip_html(&text);
    assert!(out.starts_with("Hi folks"));
    assert!(
        started.elapsed().as_secs_f64() < 2.0,
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn html_read_once_gives_what_the_two_passes_give() {
    let cases = [
        // A marker under the new text, one at the top (a bottom-posted
        // answer), none, a marker inside a blockquote, two markers.
        r#"<div dir="ltr">Thanks, that fixed it.</div><div class="gmail_quote">On Thu, Jane wrote:<br><blockquote class="gmail_quote">Try a restart.</blockquote></div>"#,
        r#"<div class="gmail_quote">On Thu, Jane wrote:<blockquote>Try a restart.</blockquote></div><p>Thanks, that fixed it.</p>"#,
        "<p>Thanks, that fixed it.</p><blockquote>Try a restart.</blockquote>",
        r#"<blockquote>Old<div class="moz-cite-prefix">older</div></blockquote>New &amp; more"#,
        r#"<p>A</p><div id="divRplyFwdMsg">B</div><div class="yahoo_quoted">C</div>"#,
        r#"<div class="gmail_quote"></div>"#,
        "",
    ];
    for html in cases {
        let once = HtmlText::read(html);
        assert_eq!(once.whole, html_to_text_whole(html), "{html}");
        assert_eq!(once.reply(), reply(None, Some(html)), "{html}");
    }
    assert_eq!(HtmlText::read(cases[0]).reply().text, REPLY);
    assert!(HtmlText::read(cases[0]).whole.contains("Try a restart."));
}
