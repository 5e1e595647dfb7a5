// The policy protocol's pure half: how a byte stream splits into requests, and what each one gets.
import { describe, expect, it } from 'vitest';
import { decide, formatAction, MAX_ATTRIBUTES, MAX_LINE_BYTES, PolicyRequestReader, type RecipientVerdict } from '../../../src/policy/protocol.js';
import { OUTCOMES } from '../../../src/errors.js';

const rcptRequest = (recipient: string, extra = '') =>
  `request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\nclient_address=192.0.2.1\nhelo_name=mx.sender.test\nsender=a@sender.test\nrecipient=${recipient}\ninstance=123.456.7\n${extra}\n`;

const accept = (): RecipientVerdict => ({ kind: 'accept' });
const refuse = (): RecipientVerdict => ({ kind: 'refuse', temporary: false, dsn: '5.1.1', text: 'No such key' });

function answers(input: string | Buffer, check: (r: string) => RecipientVerdict = accept, chunkSize = Infinity): string[] {
  const reader = new PolicyRequestReader();
  const bytes = Buffer.isBuffer(input) ? input : Buffer.from(input);
  const out: string[] = [];
  for (let i = 0; i < bytes.length; i += Math.min(chunkSize, bytes.length)) {
    for (const request of reader.push(bytes.subarray(i, i + Math.min(chunkSize, bytes.length)))) out.push(formatAction(decide(request, check)));
  }
  return out;
}

describe('PolicyRequestReader and decide', () => {
  it('answers DUNNO for an accepted recipient and REJECT with the reason for a refused one', () => {
    expect(answers(rcptRequest('good@x.test'))).toEqual(['action=DUNNO\n\n']);
    expect(answers(rcptRequest('bad@x.test'), refuse)).toEqual(['action=REJECT 5.1.1 No such key\n\n']);
  });

  it('defers when the check cannot be made now', () => {
    const later = (): RecipientVerdict => ({ kind: 'refuse', temporary: true, dsn: '4.3.0', text: 'Temporary failure' });
    expect(answers(rcptRequest('a@x.test'), later)).toEqual(['action=DEFER_IF_PERMIT 4.3.0 Temporary failure\n\n']);
  });

  it('leaves addresses that are not ours and stages other than RCPT to the rest of Postfix', () => {
    expect(answers(rcptRequest('someone@elsewhere.test'), () => ({ kind: 'not_ours' }))).toEqual(['action=DUNNO\n\n']);
    expect(answers('request=smtpd_access_policy\nprotocol_state=DATA\nrecipient=x@y.test\n\n', refuse)).toEqual(['action=DUNNO\n\n']);
    expect(answers('request=smtpd_access_policy\nprotocol_state=END-OF-MESSAGE\n\n', refuse)).toEqual(['action=DUNNO\n\n']);
  });

  it('answers each of several requests on one connection, however the bytes are split, CRLF or LF', () => {
    const stream = rcptRequest('a@x.test') + rcptRequest('b@x.test').replace(/\n/g, '\r\n') + rcptRequest('c@x.test');
    const check = (r: string): RecipientVerdict => (r.startsWith('b') ? refuse() : accept());
    const expected = ['action=DUNNO\n\n', 'action=REJECT 5.1.1 No such key\n\n', 'action=DUNNO\n\n'];
    expect(answers(stream, check)).toEqual(expected);
    expect(answers(stream, check, 1)).toEqual(expected);
    expect(answers(stream, check, 7)).toEqual(expected);
  });

  it('ignores attributes it does not know, as Postfix adds new ones over versions', () => {
    expect(answers(rcptRequest('a@x.test', 'future_attribute=whatever\nccert_subject=\n'), refuse)).toEqual(['action=REJECT 5.1.1 No such key\n\n']);
  });

  it('defers a RCPT request it cannot judge: no recipient, garbage lines, a cut recipient, a doubled one', () => {
    const check = accept;
    const cannot = OUTCOMES['policy.cannot_judge'];
    expect(answers('request=smtpd_access_policy\nprotocol_state=RCPT\n\n', check)).toEqual([`action=DEFER_IF_PERMIT ${cannot.dsn} ${cannot.text} no recipient\n\n`]);
    expect(answers(rcptRequest('a@x.test', 'this is not an attribute\n'), check)).toEqual([
      'action=DEFER_IF_PERMIT 4.3.5 Policy request cannot be judged: line 9 is not name=value\n\n',
    ]);
    expect(answers(rcptRequest(`a${'x'.repeat(100 * 1024)}@x.test`), check)).toEqual([
      `action=DEFER_IF_PERMIT 4.3.5 Policy request cannot be judged: recipient is longer than ${MAX_LINE_BYTES} bytes\n\n`,
    ]);
    expect(answers(rcptRequest('a@x.test', 'recipient=b@x.test\n'), check)).toEqual(['action=DEFER_IF_PERMIT 4.3.5 Policy request cannot be judged: recipient given twice\n\n']);
    expect(answers('protocol_state=RCPT\nrequest=something_else\nrecipient=a@x.test\n\n', check)).toEqual([
      'action=DEFER_IF_PERMIT 4.3.5 Policy request cannot be judged: unknown request type "something_else"\n\n',
    ]);
    expect(answers('recipient=a@x.test\n\n', check)).toEqual(['action=DEFER_IF_PERMIT 4.3.5 Policy request cannot be judged: no protocol_state\n\n']);
  });

  it('takes a 100 KB value of an attribute it does not read, and judges the request', () => {
    expect(answers(rcptRequest('a@x.test', `ccert_subject=${'y'.repeat(100 * 1024)}\n`), refuse)).toEqual(['action=REJECT 5.1.1 No such key\n\n']);
  });

  it('bounds a request of endless attributes', () => {
    const many = Array.from({ length: MAX_ATTRIBUTES + 10 }, (_, i) => `a${i}=1`).join('\n');
    expect(answers(`${rcptRequest('a@x.test').slice(0, -1)}${many}\n\n`)).toEqual([
      `action=DEFER_IF_PERMIT 4.3.5 Policy request cannot be judged: more than ${MAX_ATTRIBUTES} attributes\n\n`,
    ]);
  });

  it('answers nothing until the empty line, and a lone empty line is an empty request (DUNNO)', () => {
    expect(answers(rcptRequest('a@x.test').slice(0, -1))).toEqual([]);
    expect(answers('\n')).toEqual(['action=DUNNO\n\n']);
  });

  it('keeps control characters out of the answer line', () => {
    const check = (): RecipientVerdict => ({ kind: 'refuse', temporary: false, dsn: '5.1.1', text: 'two\nlines\r\0' });
    expect(answers(rcptRequest('a@x.test'), check)).toEqual(['action=REJECT 5.1.1 two lines  \n\n']);
  });
});
