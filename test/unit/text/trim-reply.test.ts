import { describe, expect, it } from 'vitest';
import { extractEmbedded, trimReply } from '../../../src/text/trim-reply.js';

describe('trimReply', () => {
  it('drops a trailing quote and keeps it as the elided part', () => {
    expect(trimReply('Agreed.\n\n> the original\n> text\n')).toEqual({ reply: 'Agreed.', elided: '> the original\n> text' });
  });

  it('cuts at "On ... wrote:" even when the quote under it is not marked', () => {
    expect(trimReply('Yes.\r\n\r\nOn Mon, 1 Jan 2024 at 10:00, Bob <bob@example.com> wrote:\r\nthe original\r\n').reply).toBe('Yes.');
  });

  it('cuts at a "-- " signature delimiter, but not at a lone bullet', () => {
    expect(trimReply('Body.\n-- \nJake\n555-1234').reply).toBe('Body.');
    expect(trimReply('List:\n-\nitem one\n*\nitem two').reply).toBe('List:\n-\nitem one\n*\nitem two');
  });

  it('keeps bullets on lines of their own (Gmail plain text) above a quote', () => {
    expect(trimReply('Changes:\n\n-\nfirst\n\n*\nsecond\n\n> old')).toEqual({ reply: 'Changes:\n\n-\nfirst\n\n*\nsecond', elided: '> old' });
  });

  it('treats any run of two or more delimiter characters as a delimiter', () => {
    for (const delimiter of ['--', '____', '=====', '~~', '**', '—', '#####']) {
      expect(trimReply(`Body.\n\n${delimiter}\nJake`)).toEqual({ reply: 'Body.', elided: `${delimiter}\nJake` });
    }
  });

  it('keeps an inline answer: a quote followed by more text stays', () => {
    const text = '> Can you check?\nChecked, it works.\n> And the other thing?\nAlso fine.';
    expect(trimReply(text).reply).toBe(text);
  });

  it('drops mobile signatures', () => {
    expect(trimReply('On my way.\n\nSent from my iPhone').reply).toBe('On my way.');
    expect(trimReply('Merci\n\nEnvoyé de mon iPhone')).toEqual({ reply: 'Merci', elided: 'Envoyé de mon iPhone' });
    expect(trimReply('Danke\n\nVon meinem Huawei gesendet').reply).toBe('Danke');
  });

  it('cuts at an Outlook original-message block', () => {
    expect(trimReply('Done.\n\n-----Original Message-----\nFrom: x').reply).toBe('Done.');
    // Outlook always dates the block; upstream only counts "Sent:" as a header when it holds a number.
    expect(trimReply('Done.\n\nFrom: GitLab <gitlab@example.com>\nSent: Monday, 1 January 2024 10:00\nTo: Jake\n').reply).toBe('Done.');
  });

  it('cuts at a localised header block (Italian)', () => {
    const text = 'ok\n\nDa: Sally\nData: giovedì 8 ottobre 2015 15:26\nA: Testy\nOggetto: Test\n\nold';
    expect(trimReply(text)).toEqual({ reply: 'ok', elided: text.slice(4) });
  });

  it('cuts at Outlook\'s header block in Russian and Japanese (full-width colons too)', () => {
    for (const block of [
      'От: GitLab <gitlab@example.com>\nОтправлено: понедельник, 1 января 2024 г. 10:00\nКому: Alice\nТема: Widgets',
      '差出人: GitLab <gitlab@example.com>\n送信日時: 2024年1月1日 10:00\n宛先: Alice\n件名: Widgets',
      '差出人：GitLab\n送信日時：2024年1月1日 10:00\n宛先：Alice\n件名：Widgets',
    ]) {
      expect(trimReply(`Fixed.\n\n${block}\n\nold`)).toEqual({ reply: 'Fixed.', elided: `${block}\n\nold` });
    }
  });

  it('joins an "On ... wrote:" line that the client wrapped, and reports it joined', () => {
    expect(trimReply('Yes.\n\nOn Mon, 1 Jan 2024 at 10:00, Bob Example\n<bob@example.com> wrote:\n\n> hi')).toEqual({
      reply: 'Yes.',
      elided: 'On Mon, 1 Jan 2024 at 10:00, Bob Example <bob@example.com> wrote:\n\n> hi',
    });
  });

  it('recognises attribution lines in other languages', () => {
    for (const marker of [
      'Am 03.02.2016 um 15:35 schrieb Max Mustermann <max@example.com>:',
      'Le 4 janv. 2016 19:03, "Neil" <neil@example.com> a écrit :',
      'Op 10 dec. 2015 18:35 schreef "Arpit" <arpit@example.com>:',
      'El jueves, 21 de noviembre de 2013, Bob escribió:',
      'Den 15. jun. 2016 kl. 20.42 skrev Jeff <jeff@example.com>:',
      '23 mar 2017 21:25 "Neil" <neil@example.com> napisał(a):',
      'GitLab <gitlab@example.com> 于2024年1月1日周一 10:00写道：',
      '在 2024年1月1日 10:00，Bob <bob@example.com> 写道：',
    ]) {
      expect(trimReply(`Thanks!\n\n${marker}\n\n> old`)).toEqual({ reply: 'Thanks!', elided: `${marker}\n\n> old` });
    }
  });

  it('finds an attribution by its opening word, whatever other openings start lines before it', () => {
    // Only an "Am ..." marker knows these lines (no year, no address), and a reply line that opens with
    // "Le " comes first: every opening of the text is found, not only the first.
    for (const marker of ['Am Montag schrieben Sie:', 'Am Montag hat Max Mustermann geschrieben:']) {
      expect(trimReply(`Le correctif marche.\n\n${marker}\n\n> alt`)).toEqual({ reply: 'Le correctif marche.', elided: `${marker}\n\n> alt` });
    }
  });

  it("drops an old newsreader's attribution, '>>>>> \"Bob\" == Bob Smith <bob@example.com> writes:'", () => {
    expect(trimReply('Agreed.\n\n>>>>> "Bob" == Bob Smith <bob@example.com> writes:\n\nBob> the original\nBob> text')).toEqual({
      reply: 'Agreed.',
      elided: '> the original\n> text',
    });
  });

  it('recognises the markers that a single rule knows, each tried only where its words occur', () => {
    for (const [marker, below] of [
      ['2016-03-03 17:21 GMT+01:00 Some One', '> old'], // Gmail's ISO date
      ['-- Original Message --', 'old text'], // a rule of two hyphens
      ['Op\t10 dec. 2015 schreef Arpit van Dijk:', '> old'], // a tab after "Op": only the Dutch date rule
      ['Am\t1. Januar 2016 schrieb Max Mustermann:', '> alt'],
      ['Den 15. jun. 2016 kl. 20.42 skrev Jeff:', '> gammel'],
      ['Posted by mpalmer on 01/21/2016', 'old text'],
      ['Begin forwarded message:', 'old text'],
      ['Début du message transféré :', 'old text'],
      ['codinghorror via Discourse Meta wrote:', '> old'],
      ['Max via Discourse Meta schrieb:', '> alt'],
      ['Gavin (gavin@example.com.au) wrote:', '> old'],
      ['GitLab <gitlab@example.com> 于2024年1月1日周一 10:00写道：', '> 旧'],
    ]) {
      expect(trimReply(`Thanks!\n\n${marker}\n\n${below}`)).toEqual({ reply: 'Thanks!', elided: `${marker}\n\n${below}` });
    }
  });

  it('keeps the answer of a bottom-posted reply', () => {
    expect(trimReply('On Mon, 1 Jan 2024, Bob wrote:\n> question?\n\nanswer at the bottom')).toEqual({
      reply: 'answer at the bottom',
      elided: 'On Mon, 1 Jan 2024, Bob wrote:\n> question?',
    });
  });

  it('reads |-prefixed and >>> ... <<< enclosed quotes as quotes', () => {
    expect(trimReply('Agreed.\n\n| the original\n| text')).toEqual({ reply: 'Agreed.', elided: '> the original\n> text' });
    expect(trimReply('Reply.\n\n>>> Bob >>>\nold text\n<<< Bob <<<')).toEqual({ reply: 'Reply.', elided: '> old text' });
  });

  it('keeps a Markdown table typed in plain text: its rows are not |-quoted lines', () => {
    const table = '| widget | before | after |\n|--------|--------|-------|\n| A      | 40     | 12    |';
    expect(trimReply(`Measured:\n\n${table}\n\nOn Mon, Bob wrote:\n> squeak`)).toEqual({ reply: `Measured:\n\n${table}`, elided: 'On Mon, Bob wrote:\n> squeak' });
    expect(trimReply(table).reply).toBe(table);
    expect(trimReply('Yes.\n\n| quoted by an old client\n| second line').reply).toBe('Yes.');
  });

  it('never classifies or cuts inside a fenced code block', () => {
    const text = 'See:\n\n```\n-- not a signature\n> not a quote\nOn Mon, Bob wrote:\n```\n\nThanks';
    expect(trimReply(`${text}\n\n> old`)).toEqual({ reply: text, elided: '> old' });
  });

  it('keeps a line of the placeholder character apart from the code blocks it stands next to', () => {
    // A block is hoisted to one line of private-use characters; a line of the text made of the same
    // characters (here what the first block's placeholder would be with a shorter mark) stays itself.
    const text = 'Code:\n\n```\nx = 1\n```\n\n\uE000\uE0000\uE000\uE000\n\n```\n-- y\n```\n\nThanks';
    expect(trimReply(`${text}\n\n> old`)).toEqual({ reply: text, elided: '> old' });
  });

  it('removes PGP armour and a trailing mailing-list footer', () => {
    expect(trimReply('-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nSigned reply.\n-----BEGIN PGP SIGNATURE-----\nabc\n-----END PGP SIGNATURE-----\n').reply).toBe('Signed reply.');
    expect(trimReply('Reply.\n\nUnsubscribe: list-unsubscribe@example.com').reply).toBe('Reply.');
  });

  it('undoes the dash-escaping of clear-signed text, so lists and the signature delimiter read as written', () => {
    const signed = '-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nDone:\n- - oiled A\n- - replaced B\n\n- -- \nAlice\n-----BEGIN PGP SIGNATURE-----\nabc\n-----END PGP SIGNATURE-----\n';
    expect(trimReply(signed)).toEqual({ reply: 'Done:\n- oiled A\n- replaced B', elided: '--\nAlice' });
    // Outside a signed message "- " starts a list item and stays.
    expect(trimReply('- - nested\n- item').reply).toBe('- - nested\n- item');
  });

  it('returns a message that is only a quote unchanged (the caller decides what that means)', () => {
    expect(trimReply('\n> only\n> quoted\n')).toEqual({ reply: '> only\n> quoted', elided: '' });
    // With an attribution line it is a reply that says nothing: all of it is elided, as upstream does.
    expect(trimReply('On Mon, 1 Jan 2024, Bob wrote:\n> only\n> quoted')).toEqual({ reply: '', elided: 'On Mon, 1 Jan 2024, Bob wrote:\n> only\n> quoted' });
    expect(trimReply('   \n\n')).toEqual({ reply: '', elided: '' });
  });

  it('removes trailing spaces from each line', () => {
    expect(trimReply('a  \nb\t\n').reply).toBe('a\nb');
  });
});

describe('extractEmbedded', () => {
  it('splits a forwarded Gmail message from the note above it', () => {
    const forwarded = 'From: Bob <bob@example.com>\nDate: Mon, 1 Jan 2024 at 10:00\nSubject: Hello\nTo: <a@example.com>\n\nHi there';
    expect(extractEmbedded(`FYI\n\n---------- Forwarded message ---------\n${forwarded}`)).toEqual({ before: 'FYI', embedded: forwarded });
  });

  it('unquotes a message forwarded inside a quote (Apple Mail)', () => {
    expect(extractEmbedded('See below.\n\nBegin forwarded message:\n\n> From: Bob\n> Hi there')).toEqual({ before: 'See below.', embedded: 'From: Bob\nHi there' });
  });

  it('is null when nothing is embedded', () => {
    expect(extractEmbedded('Just a reply.\n\n> with a quote')).toBeNull();
    expect(extractEmbedded('  \n')).toBeNull();
  });
});
