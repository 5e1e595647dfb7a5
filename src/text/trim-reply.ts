// trim-reply: cuts a reply's body down to what the sender wrote: no trailing quote, no "On ... wrote:"
// header with what follows it, no signature. Input: untrusted mail text. Pure.
// Common cases only; the full email_reply_trimmer rule set is issue 3.

export interface TrimmedReply {
  /** What the sender wrote. */
  reply: string;
  /** What was cut off (quote, signature), for showing it collapsed. */
  elided: string;
}

const SIGNATURE_DELIMITER = /^(--|_{10,})$/;
const ORIGINAL_MESSAGE = /^\s*-{2,}\s*(Original Message|Forwarded message|Ursprüngliche Nachricht|Message d'origine)\s*-{2,}\s*$/i;
const QUOTE_HEADER_START = /^\s*(On|Am|Le|Op|El|Il|Den|På)\s/;
const QUOTE_HEADER =
  /^\s*(On\s[\s\S]{1,300}?\swrote|Am\s[\s\S]{1,300}?\sschrieb[\s\S]{0,100}?|Le\s[\s\S]{1,300}?\sa écrit|Op\s[\s\S]{1,300}?\sschreef[\s\S]{0,100}?|El\s[\s\S]{1,300}?\sescribió|Il\s[\s\S]{1,300}?\sha scritto|Den\s[\s\S]{1,300}?\sskrev|På\s[\s\S]{1,300}?\sskrev)\s?:\s*$/i;
const MOBILE_SIGNATURE = /^\s*(Sent from my \S.*|Sent from (Outlook|Mail) for \S.*|Get Outlook for \S.*|Von meinem \S.* gesendet)\s*$/i;
const OUTLOOK_HEADER = /^\s*\**(From|Von|De|Van):\**\s/i;
const OUTLOOK_HEADER_NEXT = /^\s*\**(Sent|Date|Gesendet|Envoyé|Verzonden|To|An|À|Aan):\**\s/i;
const QUOTED = /^\s*>/;

/**
 * @example trimReply('Thanks!\n\nOn Mon, 1 Jan 2024, Bob wrote:\n> hi').reply // 'Thanks!'
 */
export function trimReply(text: string): TrimmedReply {
  const lines = text
    .replace(/\r\n?/g, '\n')
    .split('\n')
    .map((line) => line.replace(/[ \t]+$/, ''))
    .filter((line) => !MOBILE_SIGNATURE.test(line));
  let cut = lines.length;
  for (let i = 0; i < lines.length; i++) {
    if (startsElidedPart(lines, i)) {
      cut = i;
      break;
    }
  }
  const head = lines.slice(0, cut);
  // A quote that ends the reply is the message being replied to; a quote followed by more text is
  // part of an inline answer and stays.
  let end = head.length;
  while (end > 0 && (QUOTED.test(head[end - 1] as string) || (head[end - 1] as string).trim() === '')) end--;
  const kept = head.slice(0, end);
  const reply = kept.every((line) => line.trim() === '' || QUOTED.test(line)) ? '' : kept.join('\n').trim();
  const elided = [...head.slice(end), ...lines.slice(cut)].join('\n').trim();
  return { reply, elided };
}

function startsElidedPart(lines: string[], i: number): boolean {
  const line = lines[i] as string;
  if (SIGNATURE_DELIMITER.test(line) || ORIGINAL_MESSAGE.test(line)) return true;
  if (QUOTE_HEADER_START.test(line)) {
    // Clients wrap a long "On <date>, <name> <address> wrote:" over up to four lines.
    for (let n = 1; n <= 4 && i + n <= lines.length; n++) {
      if (QUOTE_HEADER.test(lines.slice(i, i + n).join(' '))) return true;
    }
  }
  if (OUTLOOK_HEADER.test(line)) {
    return lines.slice(i + 1, i + 4).some((next) => OUTLOOK_HEADER_NEXT.test(next));
  }
  return false;
}
