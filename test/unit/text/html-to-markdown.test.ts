import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { htmlToMarkdown, tooDeepToConvert } from '../../../src/text/html-to-markdown.js';
import { trimReply } from '../../../src/text/trim-reply.js';

describe('htmlToMarkdown: the quotation a mail client adds under a reply', () => {
  it.each([
    [
      'Gmail, attribution in a language the trimmer does not know',
      '<div dir="ltr">Ich schaue es mir an.</div><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">Bob, 1 Oca 2024 Pzt tarihinde şunu yazdı:<br></div><blockquote class="gmail_quote">Please type<br>/close<br>next time.</blockquote></div>',
      'Ich schaue es mir an.\n\n> Bob, 1 Oca 2024 Pzt tarihinde şunu yazdı:\n\n> Please type\n> /close\n> next time.',
    ],
    [
      'Apple Mail',
      '<div>Done.</div><div><br><blockquote type="cite"><div>On 1 Jan 2024, at 10:00, GitLab wrote:</div><div>Widgets squeak</div></blockquote></div>',
      'Done.\n\n> On 1 Jan 2024, at 10:00, GitLab wrote:\n>\n> Widgets squeak',
    ],
    [
      'Thunderbird',
      '<p>Done.</p><div class="moz-cite-prefix">On 1/1/24 10:00, GitLab wrote:<br></div><blockquote type="cite">Widgets squeak</blockquote>',
      'Done.\n\n> On 1/1/24 10:00, GitLab wrote:\n\n> Widgets squeak',
    ],
    [
      'Yahoo',
      '<div>Done.</div><div class="yahoo_quoted"><div>On Monday, GitLab wrote:</div><div>Widgets squeak</div></div>',
      'Done.\n\n> On Monday, GitLab wrote:\n>\n> Widgets squeak',
    ],
    [
      'Outlook on the web: the rule and header block, and everything after them',
      '<div>Fixed in main.</div><hr tabindex="-1"><div id="divRplyFwdMsg"><b>From:</b> GitLab<br><b>Sent:</b> Monday</div><div>Widgets squeak</div>',
      'Fixed in main.\n\n> **From:** GitLab\n> **Sent:** Monday\n>\n> Widgets squeak',
    ],
    [
      'Outlook desktop',
      '<div class="WordSection1"><p>Fixed.</p><div id="appendonsend"></div><div><b>From:</b> GitLab</div><p>Widgets squeak</p></div>',
      'Fixed.\n\n> **From:** GitLab\n>\n> Widgets squeak',
    ],
  ])('%s: a quote, which the trimmer keeps apart', (_client, html, markdown) => {
    expect(htmlToMarkdown(html)).toBe(markdown);
    expect(trimReply(htmlToMarkdown(html)).reply).toBe(markdown.split('\n\n>')[0]);
  });

  it('fences preformatted text, so a row of dashes in it is no signature delimiter for the trimmer', () => {
    const markdown = htmlToMarkdown('<p>Result:</p><pre> id | n\n----+---\n  1 | 2\n</pre><p>Widget 1 still squeaks.</p>');
    expect(markdown).toBe('Result:\n\n```\n id | n\n----+---\n  1 | 2\n```\n\nWidget 1 still squeaks.');
    expect(trimReply(markdown)).toEqual({ reply: markdown, elided: '' });
    expect(htmlToMarkdown('<pre><code>x = 1</code></pre>')).toBe('```\nx = 1\n```');
  });

  it('keeps a Gmail forward as text: its container has no quote in it', () => {
    const html = '<div>FYI</div><div class="gmail_quote"><div class="gmail_attr">---------- Forwarded message ---------<br>From: Bob</div><div>It squeaks.</div></div>';
    expect(htmlToMarkdown(html)).toBe('FYI\n\n---------- Forwarded message ---------\nFrom: Bob\n\nIt squeaks.');
  });

  it('marks only the outermost of nested client quotes, so deep nesting costs its size, not its depth squared', () => {
    const depth = 400;
    const html = `<p>Top.</p>${'<blockquote type="cite">'.repeat(depth)}${'line<br>'.repeat(2000)}${'</blockquote>'.repeat(depth)}`;
    const lines = htmlToMarkdown(html).split('\n');
    expect(lines[0]).toBe('Top.');
    expect(lines.slice(2).every((line) => line === '> line' || line === '>')).toBe(true);
  });

  it('reads HTML nested deeper than 500 levels as plain text instead of overflowing the converter', () => {
    expect(htmlToMarkdown(`<p>Top &amp; more</p>${'<div>'.repeat(5000)}deep${'</div>'.repeat(5000)}`)).toBe('Top & more\ndeep');
    expect(htmlToMarkdown(`<p>Top</p>${'<b>'.repeat(200_000)}x`)).toBe('Top\nx');
    // Stray `<` with no `>` after them: each tag search stops at the next `<`, so this stays linear.
    expect(htmlToMarkdown(`${'<div>'.repeat(600)}x${'<'.repeat(200_000)}`)).toBe('x');
    // Depth counts what nests: 500 levels are converted; void and self-closing-by-sibling tags are no level.
    expect(htmlToMarkdown(`${'<div>'.repeat(500)}x${'</div>'.repeat(500)}`)).toBe('x');
    expect(htmlToMarkdown(`<ul>${'<li>item'.repeat(2000)}</ul>`).split('\n')).toHaveLength(2000);
  });

  it('keeps a quotation the writer made (a plain blockquote) as text, as GitLab does', () => {
    expect(htmlToMarkdown('<p>You said:</p><blockquote>the widget squeaks</blockquote><p>It does not.</p>')).toBe('You said:\n\nthe widget squeaks\n\nIt does not.');
  });

  it('quotes every line of a client quotation, whatever it holds', () => {
    const textArb = fc.array(fc.stringMatching(/^[A-Za-z0-9 /~.]{1,30}$/), { minLength: 1, maxLength: 8 });
    fc.assert(
      fc.property(textArb, textArb, fc.constantFrom('gmail', 'apple', 'outlook'), (reply, quote, client) => {
        const escape = (line: string) => line.replaceAll('&', '&amp;').replaceAll('<', '&lt;');
        const quoteHtml = quote.map((line) => `<div>${escape(line)}</div>`).join('');
        const wrapped =
          client === 'gmail' ? `<div class="gmail_quote"><blockquote class="gmail_quote">${quoteHtml}</blockquote></div>` : client === 'apple' ? `<blockquote type="cite">${quoteHtml}</blockquote>` : `<div id="divRplyFwdMsg">${quoteHtml}</div>`;
        const markdown = htmlToMarkdown(`${reply.map((line) => `<p>${escape(line)}</p>`).join('')}${wrapped}`);
        const tail = markdown.split('\n').slice(markdown.split('\n').findIndex((line) => line.startsWith('>')));
        expect(tail.every((line) => line.startsWith('>'))).toBe(true);
        expect(markdown).not.toContain('\uE000');
      }),
      { seed: Number(process.env.FC_SEED ?? 20261126), numRuns: 200 },
    );
  });
});

describe('htmlToMarkdown: what a sender cannot put in a note', () => {
  it('keeps text that looks like a tag as text: an escaped <img> the reader saw is no HTML in the note', () => {
    expect(htmlToMarkdown('<p>Type &lt;img src=x onerror=alert(1)&gt; and &lt;/div&gt;, or 1 &lt; 2.</p>')).toBe('Type &lt;img src=x onerror=alert(1)> and &lt;/div>, or 1 < 2.');
  });

  it('drops script and data links and images, keeping the link text; mail schemes and cid images stay', () => {
    const html = '<p><a href="javascript:alert(1)">one</a> <a href=" JaVa&#x09;Script:alert(2)">two</a> <a href="data:text/html,x">three</a> <a href="https://x.test/a">four</a> <a href="mailto:a@x.test">five</a></p><img src="data:image/png;base64,AAAA" alt="d"><img src="cid:logo" alt="c">';
    expect(htmlToMarkdown(html)).toBe('one two three [four](https://x.test/a) [five](mailto:a@x.test)\n\n![c](cid:logo)');
  });

  it('keeps a details block, with its content converted: no script, handler or raw tag survives in it', () => {
    const markdown = htmlToMarkdown('<details open ontoggle="alert(1)"><summary>logs <i>&lt;b&gt;</i></summary><img src=x onerror="alert(2)"><script>alert(3)</script><p>inside <b>bold</b></p></details>');
    expect(markdown).toBe('<details><summary>logs &lt;b></summary>\n\n![](x)\n\ninside **bold**\n\n</details>');
  });

  it('numbers ordered lists from their start, each list counted once', () => {
    expect(htmlToMarkdown('<ol start="7"><li>a</li><li>b</li></ol><ol><li>c</li></ol>')).toBe('7.  a\n8.  b\n\n1.  c');
    const long = htmlToMarkdown(`<ol>${'<li>x</li>'.repeat(20_000)}</ol>`).split('\n');
    expect([long[0], long.at(-1)]).toEqual(['1.  x', '20000.  x']);
  });

  it('reads as plain text what would make turndown work for seconds: deep lists around many lines, many tags, deep nesting', () => {
    // Fifty lists around 100,000 lines (11 s before): plain text, no indentation.
    const lists = htmlToMarkdown(`${'<ul><li>'.repeat(50)}${'x<br>'.repeat(100_000)}${'</li></ul>'.repeat(50)}`).split('\n');
    expect(lists).toHaveLength(100_000);
    expect(lists.every((line) => line === 'x')).toBe(true);
    expect(htmlToMarkdown(`${'<div>'.repeat(450)}${'y<br>'.repeat(40_000)}${'</div>'.repeat(450)}`).split('\n').every((line) => line === 'y')).toBe(true);
    expect(htmlToMarkdown('<span>z</span>'.repeat(500_000)).split('\n')).toHaveLength(500_000);
    // A few lists around a normal amount of text are converted, indented.
    expect(htmlToMarkdown(`<ul><li>a<ul><li>b<ul><li>${'c<br>'.repeat(3)}</li></ul></li></ul></li></ul>`)).toBe('-   a\n    -   b\n        -   c\n            c\n            c');
  });

  it('ends comments where the parser does, and counts <style> inside <svg>: neither hides tags from the budget', () => {
    // 450 levels around 60,000 elements are past the budget: plain text, one line each, however hidden.
    const deep = `${'<div>'.repeat(450)}${'<p>a</p>'.repeat(60_000)}${'</div>'.repeat(450)}`;
    for (const hide of ['<!-->', '<!--->', '<!-- x --!>']) expect(htmlToMarkdown(`${hide}${deep}<!-- -->`).split('\n')).toHaveLength(60_000);
    expect(htmlToMarkdown(`<svg><style>${deep}</style></svg>`).split('\n')).toHaveLength(60_000);
  });

  it('keeps a link whose scheme is written with entities from becoming one (Markdown decodes them)', () => {
    expect(htmlToMarkdown('<a href="javascript&amp;colon;alert(1)">one</a> <a href="javascript&amp;#58;x">two</a> <a href="https://x.test/?a=1&amp;b=2">three</a>')).toBe('one two [three](https://x.test/?a=1&b=2)');
  });

  it('fences preformatted text longer than any run of backticks in it, so none of its lines closes the block', () => {
    expect(htmlToMarkdown('<pre>```\n~~~\n&lt;img src=x onerror=alert(1)&gt;</pre>')).toBe('````\n```\n~~~\n<img src=x onerror=alert(1)>\n````');
  });

  it('does not count tags inside raw text: <script></div></script> closes nothing, so the nesting is seen, never a stack overflow', () => {
    expect(htmlToMarkdown(`${'<div><script></div></script>'.repeat(5000)}x`)).toBe('x');
    expect(htmlToMarkdown(`${'<div><style></div></style>'.repeat(5000)}<p>y</p>`)).toBe('y');
    expect(htmlToMarkdown('<p>a</p><textarea></p><p></textarea><p>b</p>')).toContain('b');
  });

  it('sees that nesting before the parser does (the outputs above would be the same after a stack overflow)', () => {
    expect(tooDeepToConvert('<div><script></div></script>'.repeat(5000))).toBe(true);
    expect(tooDeepToConvert('<div><style></div></style>'.repeat(5000))).toBe(true);
    expect(tooDeepToConvert('<div><script></script></div>'.repeat(5000))).toBe(false);
    // Inside <svg>, <style> is an element like any other: its end tag closes it.
    expect(tooDeepToConvert(`<svg>${'<g><style></g></style>'.repeat(5000)}</svg>`)).toBe(false);
  });
});
