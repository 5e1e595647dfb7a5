// addresses: intake's own addresses as one matcher: the address template and, when set, the Service
// Desk alias template (GitLab's service_desk_email address). Input: untrusted addresses. Pure: no I/O.
import { compileTemplate, type AddressTemplate, type TemplateMatch } from './template.js';

/**
 * The address template, and the Service Desk alias template after it: an address the first does not
 * take is read by the second, and a key found there is marked `serviceDesk`, for the router to read
 * as a Service Desk's alone, as GitLab's ServiceDeskReceiver does. The mailbox address and format()
 * are the address template's; the alias's bare mailbox names no project and is taken by neither.
 * @example compileAddresses('incoming+%{key}@example.com', 'contact+%{key}@example.com').match('contact+acme-7-issue-@example.com')
 * // { kind: 'key', key: 'acme-7-issue-', serviceDesk: true }
 */
export function compileAddresses(address: string, serviceDeskAddress: string | null): AddressTemplate {
  const incoming = compileTemplate(address);
  if (!serviceDeskAddress) return incoming;
  const alias = compileTemplate(serviceDeskAddress);
  return {
    template: incoming.template,
    domain: incoming.domain,
    hasKey: incoming.hasKey,
    mailbox: incoming.mailbox,
    serviceDesk: alias,
    format: incoming.format,
    match: (given): TemplateMatch => {
      const first = incoming.match(given);
      if (first.kind !== 'no_match' && first.kind !== 'foreign_domain') return first;
      const second = alias.match(given);
      if (second.kind === 'key') return { kind: 'key', key: second.key, serviceDesk: true };
      // At the alias's own domain, when it has one of its own (RFC 5321 4.5.1).
      if (second.kind === 'postmaster') return second;
      if (first.kind === 'no_match' || second.kind === 'no_match' || second.kind === 'mailbox') return { kind: 'no_match' };
      return first;
    },
  };
}
