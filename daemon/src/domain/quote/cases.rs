//! Table tests per class of issue 18, written from what mail clients
//! produce (their documentation and public examples), in several languages:
//! never an empty text for a mail with words of its own, attribution lines
//! and quote prefixes, signatures that must not eat content, bottom-posting,
//! invisible markers.

use super::*;

/// `(what, input, the shown text)`.
type Table<'a> = &'a [(&'a str, &'a str, &'a str)];

fn check(table: Table<'_>) {
    let mut failed = Vec::new();
    for &(what, input, want) in table {
        let got = strip_plain(input);
        if got != want {
            failed.push(format!("{what}\n  want: {want:?}\n  got:  {got:?}"));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// `(what, input, the shown text)`, each input shown whole and flagged.
fn check_whole(table: Table<'_>) {
    for &(what, input, want) in table {
        let got = reply(Some(input), None);
        assert_eq!(got.text, want, "{what}");
        assert!(got.whole, "{what}: not flagged");
    }
}

// ---------------------------------------------------------------------------
// 1. Never an empty text for a mail with words of its own
// ---------------------------------------------------------------------------

#[test]
fn forward_without_a_note_is_shown_whole_and_flagged() {
    check_whole(&[
        (
            "en Gmail forward",
            "---------- Forwarded message ---------\nFrom: Jo Doe <jo@example.com>\nDate: Mon, Mar 2, 2026 at 9:00 AM\nSubject: Printer on floor 3\nTo: <desk@example.com>\n\n\nThe printer on floor 3 is jammed again.\n",
            "---------- Forwarded message ---------\nFrom: Jo Doe <jo@example.com>\nDate: Mon, Mar 2, 2026 at 9:00 AM\nSubject: Printer on floor 3\nTo: <desk@example.com>\n\nThe printer on floor 3 is jammed again.",
        ),
        (
            "de Gmail forward",
            "---------- Weitergeleitete Nachricht ---------\nVon: Jo Doe <jo@example.com>\nDate: Mo., 2. März 2026 um 09:00 Uhr\nSubject: Drucker\nTo: <desk@example.com>\n\nDer Drucker im 3. Stock ist defekt.",
            "---------- Weitergeleitete Nachricht ---------\nVon: Jo Doe <jo@example.com>\nDate: Mo., 2. März 2026 um 09:00 Uhr\nSubject: Drucker\nTo: <desk@example.com>\n\nDer Drucker im 3. Stock ist defekt.",
        ),
        (
            "en Apple Mail forward",
            "Begin forwarded message:\n\nFrom: Jo Doe <jo@example.com>\nSubject: VPN\nDate: 2 March 2026 at 09:00:00 CET\nTo: desk@example.com\n\nThe VPN drops every hour.",
            "Begin forwarded message:\n\nFrom: Jo Doe <jo@example.com>\nSubject: VPN\nDate: 2 March 2026 at 09:00:00 CET\nTo: desk@example.com\n\nThe VPN drops every hour.",
        ),
        (
            "fr Apple Mail forward",
            "Début du message réexpédié :\n\nDe: Jean Martin <jean@example.fr>\nObjet: VPN\nDate: 2 mars 2026 à 09:00:00 UTC+1\nÀ: desk@example.com\n\nLe VPN coupe toutes les heures.",
            "Début du message réexpédié :\n\nDe: Jean Martin <jean@example.fr>\nObjet: VPN\nDate: 2 mars 2026 à 09:00:00 UTC+1\nÀ: desk@example.com\n\nLe VPN coupe toutes les heures.",
        ),
        (
            "es Outlook original message at the top",
            "-----Mensaje original-----\nDe: Ana García <ana@example.es>\nEnviado el: lunes, 2 de marzo de 2026 9:00\nPara: desk@example.com\nAsunto: Impresora\n\nLa impresora no imprime.",
            "-----Mensaje original-----\nDe: Ana García <ana@example.es>\nEnviado el: lunes, 2 de marzo de 2026 9:00\nPara: desk@example.com\nAsunto: Impresora\n\nLa impresora no imprime.",
        ),
        (
            "nl Thunderbird forward",
            "-------- Doorgestuurd bericht --------\nOnderwerp: \tPrinter\nDatum: \tMon, 2 Mar 2026 09:00:00 +0100\nVan: \tJan de Vries <jan@example.nl>\nAan: \tdesk@example.com\n\nDe printer is stuk.",
            "-------- Doorgestuurd bericht --------\nOnderwerp: \tPrinter\nDatum: \tMon, 2 Mar 2026 09:00:00 +0100\nVan: \tJan de Vries <jan@example.nl>\nAan: \tdesk@example.com\n\nDe printer is stuk.",
        ),
        (
            "ru Thunderbird forward",
            "-------- Пересланное сообщение --------\nТема: \tПринтер\nДата: \tMon, 2 Mar 2026 09:00:00 +0300\nОт: \tИван Петров <ivan@example.ru>\nКому: \tdesk@example.com\n\nПринтер не печатает.",
            "-------- Пересланное сообщение --------\nТема: \tПринтер\nДата: \tMon, 2 Mar 2026 09:00:00 +0300\nОт: \tИван Петров <ivan@example.ru>\nКому: \tdesk@example.com\n\nПринтер не печатает.",
        ),
        (
            "pl Thunderbird forward",
            "-------- Przekazana wiadomość --------\nTemat: \tDrukarka\nData: \tMon, 2 Mar 2026 09:00:00 +0100\nOd: \tJan Kowalski <jan@example.pl>\nDo: \tdesk@example.com\n\nDrukarka nie działa.",
            "-------- Przekazana wiadomość --------\nTemat: \tDrukarka\nData: \tMon, 2 Mar 2026 09:00:00 +0100\nOd: \tJan Kowalski <jan@example.pl>\nDo: \tdesk@example.com\n\nDrukarka nie działa.",
        ),
        (
            "pt Outlook forward",
            "________________________________\nDe: João Silva <joao@example.pt>\nEnviado: segunda-feira, 2 de março de 2026 09:00\nPara: desk@example.com\nAssunto: Impressora\n\nA impressora está avariada.",
            "________________________________\nDe: João Silva <joao@example.pt>\nEnviado: segunda-feira, 2 de março de 2026 09:00\nPara: desk@example.com\nAssunto: Impressora\n\nA impressora está avariada.",
        ),
        (
            "ja Thunderbird forward",
            "-------- 転送メッセージ --------\n件名: \tプリンター\n日付: \tMon, 2 Mar 2026 09:00:00 +0900\n差出人: \t山田太郎 <yamada@example.jp>\n宛先: \tdesk@example.com\n\nプリンターが動きません。",
            "-------- 転送メッセージ --------\n件名: \tプリンター\n日付: \tMon, 2 Mar 2026 09:00:00 +0900\n差出人: \t山田太郎 <yamada@example.jp>\n宛先: \tdesk@example.com\n\nプリンターが動きません。",
        ),
        (
            "zh QQ Mail original message",
            "------------------ 原始邮件 ------------------\n发件人: \"张伟\" <zhang@example.cn>;\n发送时间: 2026年3月2日(星期一) 上午9:00\n收件人: \"desk\" <desk@example.com>;\n主题: 打印机\n\n打印机坏了。",
            "------------------ 原始邮件 ------------------\n发件人: \"张伟\" <zhang@example.cn>;\n发送时间: 2026年3月2日(星期一) 上午9:00\n收件人: \"desk\" <desk@example.com>;\n主题: 打印机\n\n打印机坏了。",
        ),
        (
            "en attribution at the top over the writer's own unquoted text",
            "On Mon, Mar 2, 2026 at 9:00 AM Jo Doe <jo@example.com> wrote:\n\nThe laptop still does not boot.",
            "On Mon, Mar 2, 2026 at 9:00 AM Jo Doe <jo@example.com> wrote:\n\nThe laptop still does not boot.",
        ),
        (
            "de attribution at the top, wrapped, over unquoted text",
            "Am Mo., 2. März 2026 um 09:00 Uhr schrieb Jo Doe <\njo@example.com>:\n\nDer Laptop startet immer noch nicht.",
            "Am Mo., 2. März 2026 um 09:00 Uhr schrieb Jo Doe <\njo@example.com>:\n\nDer Laptop startet immer noch nicht.",
        ),
        (
            "sv Outlook block at the top",
            "Från: Anna Svensson <anna@example.se>\nSkickat: den 2 mars 2026 09:00\nTill: desk@example.com\nÄmne: Skrivare\n\nSkrivaren fungerar inte.",
            "Från: Anna Svensson <anna@example.se>\nSkickat: den 2 mars 2026 09:00\nTill: desk@example.com\nÄmne: Skrivare\n\nSkrivaren fungerar inte.",
        ),
        (
            "only a signature under the delimiter",
            "-- \nJo Doe\nIT, Example Corp",
            "--\nJo Doe\nIT, Example Corp",
        ),
    ]);
}

#[test]
fn forward_with_a_note_keeps_the_note() {
    check(&[
        (
            "en",
            "FYI, see below.\n\n---------- Forwarded message ---------\nFrom: Jo Doe <jo@example.com>\nDate: Mon, Mar 2, 2026 at 9:00 AM\nSubject: Printer\nTo: <desk@example.com>\n\nThe printer is jammed.",
            "FYI, see below.",
        ),
        (
            "de",
            "Zur Info, siehe unten.\n\nAnfang der weitergeleiteten Nachricht:\n\nVon: Jo Doe <jo@example.com>\nBetreff: Drucker\nDatum: 2. März 2026 um 09:00:00 MEZ\nAn: desk@example.com\n\nDer Drucker klemmt.",
            "Zur Info, siehe unten.",
        ),
        (
            "ja",
            "ご確認ください。\n\n-------- 転送メッセージ --------\n件名: \tプリンター\n差出人: \t山田太郎 <yamada@example.jp>\n\nプリンターが動きません。",
            "ご確認ください。",
        ),
        (
            "zh",
            "请看下面的邮件。\n\n------------------ 原始邮件 ------------------\n发件人: \"张伟\" <zhang@example.cn>;\n发送时间: 2026年3月2日(星期一) 上午9:00\n\n打印机坏了。",
            "请看下面的邮件。",
        ),
        (
            "pl",
            "Przesyłam dalej.\n\n-------- Przekazana wiadomość --------\nTemat: \tDrukarka\nOd: \tJan Kowalski <jan@example.pl>\n\nDrukarka nie działa.",
            "Przesyłam dalej.",
        ),
    ]);
}

#[test]
fn a_mail_without_words_of_its_own_stays_empty() {
    for input in [
        "> old\n> older",
        "\n\nOn Mon, Mar 2, 2026 at 9:00 AM Jo Doe <jo@example.com> wrote:\n> old",
        "Sent from my iPhone\n\nOn Mon, Mar 2, 2026 at 9:00 AM Jo Doe <jo@example.com> wrote:\n> old",
        "\u{200b}\n\u{feff}\nᐧ",
        "",
    ] {
        let got = reply(Some(input), None);
        assert_eq!(got, Reply::default(), "{input:?}");
    }
}

#[test]
fn a_cut_that_leaves_text_is_not_flagged() {
    let got = reply(
        Some("Thanks.\n\nOn Mon, Mar 2, 2026 at 9:00 AM Jo Doe <jo@example.com> wrote:\n> old"),
        None,
    );
    assert_eq!(
        got,
        Reply {
            text: "Thanks.".into(),
            whole: false
        }
    );
}

#[test]
fn html_forward_without_a_note_is_shown_whole() {
    let gmail = r#"<div dir="ltr"><br><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">---------- Forwarded message ---------<br>From: <strong class="gmail_sendername" dir="auto">Jo Doe</strong> <span dir="auto">&lt;<a href="mailto:jo@example.com">jo@example.com</a>&gt;</span><br>Date: Mon, Mar 2, 2026 at 9:00 AM<br>Subject: Printer<br>To: &lt;<a href="mailto:desk@example.com">desk@example.com</a>&gt;<br></div><br><br><div dir="ltr">The printer is jammed.</div></div></div>"#;
    let got = reply(None, Some(gmail));
    assert_eq!(
        got.text,
        "---------- Forwarded message ---------\nFrom: Jo Doe <jo@example.com>\nDate: Mon, Mar 2, 2026 at 9:00 AM\nSubject: Printer\nTo: <desk@example.com>\n\nThe printer is jammed."
    );
    assert!(got.whole);

    let outlook = r#"<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri"><b>Von:</b> Jo Doe &lt;jo@example.com&gt;<br><b>Gesendet:</b> Montag, 2. März 2026 09:00<br><b>An:</b> Desk<br><b>Betreff:</b> Drucker</font><div>&nbsp;</div></div><div>Der Drucker klemmt.</div>"#;
    let got = reply(None, Some(outlook));
    assert!(got.text.ends_with("Der Drucker klemmt."), "{got:?}");
    assert!(got.whole);

    // With a note above the marker, the note is the text.
    let note = r#"<div dir="ltr">FYI</div><div class="gmail_quote"><div class="gmail_attr">---------- Forwarded message ---------</div><div>The printer is jammed.</div></div>"#;
    assert_eq!(
        reply(None, Some(note)),
        Reply {
            text: "FYI".into(),
            whole: false
        }
    );
}

#[test]
fn html_answer_under_the_quote_is_kept() {
    let thunderbird = r#"<div class="moz-cite-prefix">On 02.03.2026 09:00, Jo Doe wrote:<br></div><blockquote type="cite">Is the VPN down?</blockquote><p>Yes, since 8:00.</p>"#;
    assert_eq!(
        reply(None, Some(thunderbird)),
        Reply {
            text: "Yes, since 8:00.".into(),
            whole: false
        }
    );
    let apple = r#"<div>Le 2 mars 2026 à 09:00, Jean Martin &lt;jean@example.fr&gt; a écrit :</div><blockquote type="cite"><div>Le VPN est coupé ?</div></blockquote><div>Oui, depuis 8h.</div>"#;
    assert_eq!(strip_html(apple), "Oui, depuis 8h.");
}

// ---------------------------------------------------------------------------
// 2. Attribution lines and quote prefixes
// ---------------------------------------------------------------------------

#[test]
fn attribution_lines_as_clients_write_them() {
    check(&[
        (
            "de Gmail, wrapped after <",
            "Danke, läuft wieder.\n\nAm Mo., 2. März 2026 um 09:00 Uhr schrieb Jo Doe <\njo@example.com>:\n\n> Bitte neu starten.\n",
            "Danke, läuft wieder.",
        ),
        (
            "de Gmail on a phone, verb before the date",
            "Danke!\n\nJo Doe <jo@example.com> schrieb am Mo., 2. März 2026, 09:00:\n\n> Bitte neu starten.",
            "Danke!",
        ),
        (
            "de Thunderbird, name last without an address",
            "Danke.\n\nAm 02.03.2026 um 09:00 schrieb Jo Doe:\n> Bitte neu starten.",
            "Danke.",
        ),
        (
            "fr Gmail, wrapped inside the verb",
            "Merci, ça marche.\n\nLe lun. 2 mars 2026 à 09:00, Jean Martin <jean@example.fr> a\nécrit :\n\n> Redémarrez le poste.",
            "Merci, ça marche.",
        ),
        (
            "fr Thunderbird",
            "Merci.\n\nLe 02/03/2026 à 09:00, Jean Martin a écrit :\n> Redémarrez le poste.",
            "Merci.",
        ),
        (
            "es Gmail, wrapped inside the address",
            "Gracias.\n\nEl lun, 2 mar 2026 a las 9:00, Ana García (<\nana@example.es>) escribió:\n\n> Reinicie el equipo.",
            "Gracias.",
        ),
        (
            "nl Gmail, wrapped",
            "Bedankt.\n\nOp ma 2 mrt 2026 om 09:00 schreef Jan de Vries <\njan@example.nl>:\n\n> Start de pc opnieuw op.",
            "Bedankt.",
        ),
        (
            "nl Thunderbird, name last",
            "Bedankt.\n\nOp 02-03-2026 om 09:00 schreef Jan de Vries:\n> Start de pc opnieuw op.",
            "Bedankt.",
        ),
        (
            "pt Gmail, wrapped",
            "Obrigado.\n\nEm seg., 2 de mar. de 2026 às 09:00, João Silva <\njoao@example.pt> escreveu:\n\n> Reinicie o computador.",
            "Obrigado.",
        ),
        (
            "pl Gmail",
            "Dziękuję.\n\npon., 2 mar 2026 o 09:00 Jan Kowalski <jan@example.pl> napisał(a):\n\n> Proszę zrestartować komputer.",
            "Dziękuję.",
        ),
        (
            "pl Thunderbird",
            "Dziękuję.\n\nW dniu 2.03.2026 o 09:00, Jan Kowalski pisze:\n> Proszę zrestartować komputer.",
            "Dziękuję.",
        ),
        (
            "sv Gmail",
            "Tack.\n\nmån 2 mars 2026 kl. 09:00 skrev Anna Svensson <anna@example.se>:\n\n> Starta om datorn.",
            "Tack.",
        ),
        (
            "sv Thunderbird, name last",
            "Tack.\n\nDen 2026-03-02 kl. 09:00, skrev Anna Svensson:\n> Starta om datorn.",
            "Tack.",
        ),
        (
            "ru Gmail",
            "Спасибо, заработало.\n\nпн, 2 мар. 2026 г. в 09:00, Иван Петров <ivan@example.ru>:\n\n> Перезагрузите компьютер.",
            "Спасибо, заработало.",
        ),
        (
            "ru Gmail, wrapped",
            "Спасибо.\n\nпн, 2 мар. 2026 г. в 09:00, Иван Петров <\nivan@example.ru>:\n\n> Перезагрузите компьютер.",
            "Спасибо.",
        ),
        (
            "ru Thunderbird",
            "Спасибо.\n\n02.03.2026 09:00, Иван Петров пишет:\n> Перезагрузите компьютер.",
            "Спасибо.",
        ),
        (
            "ja Gmail",
            "ありがとうございます。直りました。\n\n2026年3月2日(月) 9:00 山田太郎 <yamada@example.jp>:\n\n> 再起動してください。",
            "ありがとうございます。直りました。",
        ),
        (
            "zh Gmail, date first",
            "谢谢，已经好了。\n\n在 2026年3月2日 09:00，张伟 <zhang@example.cn> 写道：\n\n> 请重启电脑。",
            "谢谢，已经好了。",
        ),
        (
            "zh Gmail, name first",
            "谢谢。\n\n张伟 <zhang@example.cn> 于2026年3月2日周一 09:00写道：\n\n> 请重启电脑。",
            "谢谢。",
        ),
        (
            "ko Gmail",
            "감사합니다.\n\n2026년 3월 2일 (월) 오전 9:00, Jo Doe <jo@example.com>님이 작성:\n\n> 재부팅하세요.",
            "감사합니다.",
        ),
        (
            "en date first with an offset",
            "Thanks.\n\nOn 2026-03-02 09:00 +0100, Jo Doe wrote:\n> Restart it.",
            "Thanks.",
        ),
        (
            "en date first with GMT offset, no verb",
            "Thanks.\n\n2026-03-02 9:00 GMT+01:00 Jo Doe <jo@example.com>:\n> Restart it.",
            "Thanks.",
        ),
        (
            "en mutt",
            "Fixed now.\n\n* Jo Doe <jo@example.com> [2026-03-02 09:00 +0100]:\n> The build is red.",
            "Fixed now.",
        ),
        (
            "en Horde",
            "Thanks.\n\nQuoting Jo Doe <jo@example.com>:\n\n> The build is red.",
            "Thanks.",
        ),
        (
            "de Horde",
            "Danke.\n\nZitat von Jo Doe <jo@example.com>:\n\n> Der Build ist rot.",
            "Danke.",
        ),
        (
            "en list via, |-quoted",
            "Thanks, that was it.\n\nOn Mon, Mar 2, 2026 at 9:00 AM Jo Doe via users <users@lists.example.org> wrote:\n| Has anyone seen the sync fail?\n| It started on Friday.",
            "Thanks, that was it.",
        ),
        (
            "en list via without a verb, |-quoted",
            "Same here.\n\n2026-03-02 9:00 GMT+01:00 Jo Doe via users <users@lists.example.org>:\n|\n| Has anyone seen the sync fail?",
            "Same here.",
        ),
    ]);
}

#[test]
fn outlook_header_blocks_in_many_languages() {
    check(&[
        (
            "pl",
            "Dziękuję.\n\nOd: Jan Kowalski <jan@example.pl>\nWysłano: poniedziałek, 2 marca 2026 09:00\nDo: Desk <desk@example.com>\nTemat: Drukarka\n\nstary tekst",
            "Dziękuję.",
        ),
        (
            "ru",
            "Спасибо.\n\nОт: Иван Петров <ivan@example.ru>\nОтправлено: 2 марта 2026 г. 9:00\nКому: Desk\nТема: Принтер\n\nстарый текст",
            "Спасибо.",
        ),
        (
            "uk",
            "Дякую.\n\nВід: Іван Петренко <ivan@example.ua>\nНадіслано: 2 березня 2026 р. 9:00\nКому: Desk\nТема: Принтер\n\nстарий текст",
            "Дякую.",
        ),
        (
            "sv",
            "Tack.\n\nFrån: Anna Svensson <anna@example.se>\nSkickat: den 2 mars 2026 09:00\nTill: Desk\nÄmne: Skrivare\n\ngammal text",
            "Tack.",
        ),
        (
            "pt-BR",
            "Obrigado.\n\nDe: João Silva <joao@example.com.br>\nEnviado: segunda-feira, 2 de março de 2026 09:00\nPara: Desk\nAssunto: Impressora\n\ntexto antigo",
            "Obrigado.",
        ),
        (
            "ja",
            "ありがとう。\n\n差出人: 山田太郎 <yamada@example.jp>\n送信日時: 2026年3月2日 9:00\n宛先: Desk <desk@example.com>\n件名: プリンター\n\n古い本文",
            "ありがとう。",
        ),
        (
            "zh",
            "谢谢。\n\n发件人: 张伟 <zhang@example.cn>\n发送时间: 2026年3月2日 9:00\n收件人: Desk\n主题: 打印机\n\n旧内容",
            "谢谢。",
        ),
        (
            "ko",
            "감사합니다.\n\n보낸 사람: Jo Doe <jo@example.com>\n보낸 날짜: 2026년 3월 2일 월요일 오전 9:00\n받는 사람: Desk\n제목: 프린터\n\n이전 내용",
            "감사합니다.",
        ),
        (
            "de with bold labels",
            "Danke.\n\n*Von:* Jo Doe <jo@example.com>\n*Gesendet:* Montag, 2. März 2026 09:00\n*An:* Desk\n*Betreff:* Drucker\n\nalt",
            "Danke.",
        ),
    ]);
}

#[test]
fn quote_prefixes_other_than_the_angle_bracket() {
    check(&[
        (
            "| quoted history",
            "Agreed.\n\n| We should move the meeting.\n| Tuesday works.",
            "Agreed.",
        ),
        (
            "initials",
            "Agreed.\n\nJD> We should move the meeting.\nJD> Tuesday works.",
            "Agreed.",
        ),
        (
            "initials without a space, nested",
            "Done.\n\nAB>> Can you reset it?\nAB>\nAB> Please.",
            "Done.",
        ),
        (
            "interleaved with initials",
            "JD> Can you reset my password?\nDone.\nJD> And unlock the account?\nUnlocked too.",
            "Done.\nUnlocked too.",
        ),
    ]);
}

#[test]
fn text_that_only_looks_like_attributions_or_quotes_stays() {
    for text in [
        "I wrote: the fix is in.",
        "At 09:00: backup runs.\nAt 10:00: restore.",
        "Am 2. März schrieb ich dem Support:\n\nDer Drucker geht nicht.",
        "| Name | Room |\n|------|------|\n| Jo   | 3.14 |",
        "The tree:\n|-- src\n|-- tests",
        "A>B holds, and B>C too.",
        "The meeting notes:\nIt moved to 10:00.",
    ] {
        assert_eq!(strip_plain(text), text, "{text:?}");
    }
}

// ---------------------------------------------------------------------------
// 3. Signatures that must not eat content
// ---------------------------------------------------------------------------

#[test]
fn separator_lines_in_code_blocks_are_content() {
    for text in [
        "Here is the config:\n\n```\n[server]\n#####\nport = 8080\n-----\n```",
        "The query:\n\n```sql\nSELECT 1;\n--\nSELECT 2;\n```",
        "Output:\n\n```\n--\nnot a signature\n=====\n```",
        "Output:\n\n~~~\nresult\n======\nok\n~~~",
        "Der Log:\n\n```\nFrom: cron@example.com\nDate: Mon, 2 Mar 2026 09:00\nTo: root\n```\n\nWas heißt das?",
        "Log:\n\n```\n> not a quote\nSent from my iPhone\n```",
    ] {
        assert_eq!(strip_plain(text), text, "{text:?}");
    }
    // A real signature after the code block still goes.
    assert_eq!(
        strip_plain("Run:\n\n```\nls -la\n```\n\n-- \nJo Doe\nIT, Example Corp"),
        "Run:\n\n```\nls -la\n```"
    );
    // A lone fence does not hide the quote under it.
    assert_eq!(
        strip_plain(
            "Try this: ```\n\nOn Mon, Mar 2, 2026 at 9:00 AM Jo <jo@example.com> wrote:\n> old"
        ),
        "Try this: ```"
    );
}

#[test]
fn short_sign_offs_with_the_name_stay() {
    check(&[
        (
            "en",
            "It works now.\n\nThanks,\nJo",
            "It works now.\n\nThanks,\nJo",
        ),
        (
            "en regards",
            "It works now.\n\nBest regards,\nJo Doe",
            "It works now.\n\nBest regards,\nJo Doe",
        ),
        ("de", "Geht wieder.\n\nGruß\nJo", "Geht wieder.\n\nGruß\nJo"),
        (
            "de formal",
            "Geht wieder.\n\nViele Grüße\nAnna-Lena",
            "Geht wieder.\n\nViele Grüße\nAnna-Lena",
        ),
        (
            "fr",
            "Ça marche.\n\nCordialement,\nJean",
            "Ça marche.\n\nCordialement,\nJean",
        ),
        (
            "es",
            "Funciona.\n\nSaludos,\nAna",
            "Funciona.\n\nSaludos,\nAna",
        ),
        (
            "nl",
            "Het werkt.\n\nMet vriendelijke groet,\nJan de Vries",
            "Het werkt.\n\nMet vriendelijke groet,\nJan de Vries",
        ),
        (
            "pl",
            "Działa.\n\nPozdrawiam,\nJan",
            "Działa.\n\nPozdrawiam,\nJan",
        ),
        (
            "sv",
            "Det fungerar.\n\nVänliga hälsningar,\nAnna",
            "Det fungerar.\n\nVänliga hälsningar,\nAnna",
        ),
        (
            "ru",
            "Работает.\n\nС уважением,\nИван",
            "Работает.\n\nС уважением,\nИван",
        ),
        (
            "pt",
            "Funciona.\n\nAtenciosamente,\nJoão",
            "Funciona.\n\nAtenciosamente,\nJoão",
        ),
        (
            "sign-off above the quote",
            "Works.\n\nCordialement,\nJean\n\nLe 02/03/2026 à 09:00, Jo Doe a écrit :\n> old",
            "Works.\n\nCordialement,\nJean",
        ),
    ]);
}

#[test]
fn real_signature_blocks_go() {
    check(&[
        (
            "en block",
            "It works now.\n\nBest regards,\nJo Doe\nIT Support | Example Corp\n+1 555 0100",
            "It works now.",
        ),
        (
            "de block",
            "Geht wieder.\n\nMit freundlichen Grüßen\n\nAnna Schmidt\nIT-Abteilung\nTel. +49 30 1234567",
            "Geht wieder.",
        ),
        (
            "fr block",
            "Ça marche.\n\nCordialement,\nJean Martin\nService informatique\n01 23 45 67 89",
            "Ça marche.",
        ),
        ("delimiter", "It works.\n\n-- \nJo", "It works."),
        (
            "name with a phone number",
            "It works.\n\nKind regards,\nJo Doe +1 555 0100",
            "It works.",
        ),
    ]);
}

#[test]
fn mobile_signatures_in_many_languages() {
    for sig in [
        "Von meinem iPhone gesendet",
        "Envoyé de mon iPhone",
        "Enviado desde mi iPhone",
        "Verstuurd vanaf mijn iPhone",
        "Skickat från min iPhone",
        "Wysłane z iPhone'a",
        "Отправлено с iPhone",
        "iPhoneから送信",
        "发自我的iPhone",
        "從我的 iPhone 傳送",
        "Enviado do meu iPhone",
        "Inviato da iPhone",
        "Odesláno z iPhonu",
        "Sent from Outlook for Android",
    ] {
        assert_eq!(
            strip_plain(&format!("It works.\n\n{sig}\n\n> old")),
            "It works.",
            "{sig}"
        );
    }
}

// ---------------------------------------------------------------------------
// 4. Bottom-posting
// ---------------------------------------------------------------------------

#[test]
fn the_answer_under_the_quote_stays() {
    check(&[
        (
            "en, no attribution",
            "> Is the VPN down?\n\nYes, since 8:00.",
            "Yes, since 8:00.",
        ),
        (
            "en Gmail attribution and signature",
            "On Mon, Mar 2, 2026 at 9:00 AM Jo Doe <jo@example.com> wrote:\n> Is the VPN down?\n\nYes, since 8:00.\n\n-- \nBob",
            "Yes, since 8:00.",
        ),
        (
            "de Thunderbird",
            "Am 02.03.2026 um 09:00 schrieb Jo Doe:\n> Läuft der Drucker?\n\nJa, wieder.",
            "Ja, wieder.",
        ),
        (
            "de Gmail wrapped",
            "Am Mo., 2. März 2026 um 09:00 Uhr schrieb Jo Doe <\njo@example.com>:\n\n> Läuft der Drucker?\n\nJa, wieder.",
            "Ja, wieder.",
        ),
        (
            "fr Thunderbird",
            "Le 02/03/2026 à 09:00, Jean Martin a écrit :\n> L'imprimante marche ?\n\nOui.",
            "Oui.",
        ),
        (
            "ru Gmail",
            "пн, 2 мар. 2026 г. в 09:00, Иван Петров <ivan@example.ru>:\n> Работает?\n\nДа, работает.",
            "Да, работает.",
        ),
        (
            "ja Gmail",
            "2026年3月2日(月) 9:00 山田太郎 <yamada@example.jp>:\n> 動きますか？\n\nはい、動きます。",
            "はい、動きます。",
        ),
        (
            "list archive, |-quoted",
            "On Mon, Mar 2, 2026 at 9:00 AM Jo Doe via users <users@lists.example.org> wrote:\n| Has anyone seen the sync fail?\n\nYes, since the upgrade.",
            "Yes, since the upgrade.",
        ),
        (
            "initials",
            "JD> Can you reset my password?\n\nDone, check your mail.",
            "Done, check your mail.",
        ),
        (
            "interleaved",
            "> Option A?\n\nA is great.\n\n> Option B?\n\nB has drawbacks.",
            "A is great.\n\nB has drawbacks.",
        ),
    ]);
}

// ---------------------------------------------------------------------------
// 5. Invisible markers
// ---------------------------------------------------------------------------

#[test]
fn invisible_markers_are_removed() {
    check(&[
        ("Gmail's ᐧ line", "Thanks, fixed.\n\nᐧ\n", "Thanks, fixed."),
        (
            "zero-width space in a word",
            "Thanks\u{200b}, fixed.",
            "Thanks, fixed.",
        ),
        ("BOM at the start", "\u{feff}Danke.\n\n> alt", "Danke."),
        ("word joiner", "Merci\u{2060}.", "Merci."),
        (
            "zero-width joiner and non-joiner between ASCII",
            "Gra\u{200d}cias\u{200c}.",
            "Gracias.",
        ),
        (
            "a line of invisibles is blank",
            "Eins.\n\u{200b}\u{feff}\nZwei.",
            "Eins.\n\nZwei.",
        ),
        (
            "invisibles inside an attribution",
            "Спасибо.\n\n\u{200b}пн, 2 мар. 2026 г. в 09:00, Иван <ivan@example.ru>\u{200b}:\n> старое",
            "Спасибо.",
        ),
        (
            "joiners that shape text stay",
            "👩\u{200d}💻 on it. می\u{200c}خواهم",
            "👩\u{200d}💻 on it. می\u{200c}خواهم",
        ),
        ("U+1427 inside Canadian syllabics stays", "ᑕᐧᐊ", "ᑕᐧᐊ"),
    ]);
}

#[test]
fn odd_input_never_panics() {
    let inputs = [
        "```",
        "```\n```",
        "~~~\n```\n~~~",
        "|",
        "| |",
        "JD>",
        "É>",
        "ÉÀÜ>>",
        "\u{200d}",
        "\u{200c}ᐧ\u{200d}",
        "* x [:",
        "* [2]:",
        "Quoting <@>:",
        "x <a@b> schrieb",
        "schrieb 1:",
        "Den 1, skrev:",
        "Am 1 schrieb Ü Ö Ä:",
        "a\nécrit :",
        "发自我的",
        "-------- 転送メッセージ",
    ];
    for input in inputs {
        let _ = reply(Some(input), Some(input));
        let _ = strip_html(input);
    }
    let s = "Grüße ᐧ\u{200d}👩\n```\nJD> 日本語 <a@b.c> schrieb am 2. März 2026, 09:00:\n| x\n```";
    for (k, _) in s.char_indices() {
        let _ = strip_plain(&s[..k]);
        let _ = strip_html(&s[..k]);
    }
}
