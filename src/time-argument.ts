// time-argument: a moment as an operator writes it for `messages --since/--until`: a date or time
// (UTC unless it names its offset, as received_at is stored) or an age such as 90m, 36h, 7d. Input:
// operator arguments; pure.

const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;
const AGE = /^(\d{1,9})([smhdw])$/;
// YYYY-MM-DD, optionally a time (T or a space, as sqlite3 prints them) and an offset.
const MOMENT = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:?\d{2})?)?$/i;

/**
 * The moment `value` names, `now` being the moment ages count back from; null when it names none, or
 * one outside the years 0000 to 9999 (received_at is compared as text: +010000-… would sort first).
 */
export function parseMoment(value: string, now: Date): Date | null {
  const found = moment(value, now);
  if (!found || Number.isNaN(found.getTime())) return null;
  const year = found.getUTCFullYear();
  return year >= 0 && year <= 9999 ? found : null;
}

function moment(value: string, now: Date): Date | null {
  const age = AGE.exec(value);
  if (age) return new Date(now.getTime() - Number(age[1]) * UNIT_MS[age[2] as keyof typeof UNIT_MS]);
  const m = MOMENT.exec(value);
  if (!m) return null;
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  const hour = Number(m[4] ?? 0);
  const minute = Number(m[5] ?? 0);
  const second = Number(m[6] ?? 0);
  const millis = m[7] ? Number(m[7].slice(0, 3).padEnd(3, '0')) : 0;
  // Not Date.UTC, which reads the years 0 to 99 as 1900 to 1999.
  const check = new Date(0);
  check.setUTCFullYear(year, month - 1, day);
  check.setUTCHours(hour, minute, second, millis);
  const utc = check.getTime();
  // 2026-02-30 rolls over into March and 24:00 into the next day: those name no moment.
  if (
    check.getUTCFullYear() !== year || check.getUTCMonth() !== month - 1 || check.getUTCDate() !== day ||
    check.getUTCHours() !== hour || check.getUTCMinutes() !== minute || check.getUTCSeconds() !== second
  ) return null;
  const zone = m[8];
  if (!zone || zone.toUpperCase() === 'Z') return new Date(utc);
  const offset = /^([+-])(\d{2}):?(\d{2})$/.exec(zone)!;
  const hours = Number(offset[2]);
  const minutes = Number(offset[3]);
  if (hours > 23 || minutes > 59) return null;
  const sign = offset[1] === '+' ? 1 : -1;
  return new Date(utc - sign * (hours * 60 + minutes) * 60_000);
}
