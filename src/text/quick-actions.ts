// quick-actions: finds GitLab quick actions (`/close`, `/label ~bug`) on their own lines of a body,
// outside code blocks and quotes. Input: untrusted mail text. Pure.

export interface QuickAction {
  name: string;
  /** Everything after the command name, trimmed. */
  argument: string;
  line: string;
}

export interface ExtractedActions {
  /** The body without the lines of the commands taken out. */
  text: string;
  actions: QuickAction[];
}

/** The commands intake carries out on an issue. Others stay in the text as written. */
export const ISSUE_ACTIONS = new Set(['close', 'reopen', 'title', 'label', 'unlabel', 'assign', 'unassign', 'confidential', 'subscribe', 'unsubscribe']);
/** On a merge request (intake keeps no labels or assignees for them): the rest stay in the text. */
export const MERGE_REQUEST_ACTIONS = new Set(['close', 'reopen', 'title', 'subscribe', 'unsubscribe']);
const SUPPORTED = new Set([...ISSUE_ACTIONS, 'target_branch']);

/** GitLab's other names for the same commands. */
const ALIASES: Record<string, string> = { labels: 'label', remove_label: 'unlabel' };

/**
 * GitLab's commands, known here only to be shown inert when an external (Service Desk) sender writes
 * them, as GitLab does: wrapped in a code span rather than run.
 */
const KNOWN = new Set([
  ...SUPPORTED,
  ...Object.keys(ALIASES),
  'todo', 'done', 'reassign', 'milestone', 'remilestone', 'due', 'remove_due_date', 'estimate',
  'spend', 'weight', 'clear_weight', 'relate', 'duplicate', 'move', 'copy_metadata', 'lock', 'unlock',
  'award', 'react', 'shrug', 'tableflip', 'cc', 'draft', 'ready', 'merge',
  'approve', 'unapprove', 'assign_reviewer', 'request_review', 'unassign_reviewer', 'epic', 'iteration',
  'health_status', 'severity', 'promote', 'relabel', 'create_merge_request', 'zoom', 'remove_zoom',
  'invite_email', 'remove_email', 'add_contacts', 'remove_contacts', 'status', 'type', 'parent', 'rebase',
]);

// Any case, as GitLab: a phone capitalises the first letter of a line.
const COMMAND = /^\/([a-z_]+)(?:[ \t]+(.*))?$/i;
/** A CommonMark code fence line: up to three spaces, then three or more backticks or tildes. */
const FENCE = /^ {0,3}(`{3,}|~{3,})(.*)$/;

function commandLines(text: string, names: Set<string>): { lines: string[]; matches: Map<number, QuickAction> } {
  const lines = text.split('\n');
  const matches = new Map<number, QuickAction>();
  // As CommonMark reads it: a backtick fence's info string has no backtick (```` ```code``` ```` is
  // inline code, not a fence), and only a fence of the same character, as long and bare, closes it.
  let open: { mark: string; length: number } | null = null;
  lines.forEach((line, i) => {
    const fence = FENCE.exec(line);
    if (fence) {
      const marks = fence[1] as string;
      const rest = fence[2] as string;
      if (!open && !(marks[0] === '`' && rest.includes('`'))) {
        open = { mark: marks[0] as string, length: marks.length };
        return;
      }
      if (open && marks[0] === open.mark && marks.length >= open.length && rest.trim() === '') {
        open = null;
        return;
      }
    }
    if (open) return;
    const match = COMMAND.exec(line.trimEnd());
    const written = match?.[1]?.toLowerCase() ?? '';
    const name = ALIASES[written] ?? written;
    if (match && names.has(name)) {
      matches.set(i, { name, argument: (match[2] ?? '').trim(), line });
    }
  });
  return { lines, matches };
}

/**
 * Takes the supported commands out of a body.
 * @example extractQuickActions('Done.\n/close').actions[0]?.name // 'close'
 */
export function extractQuickActions(text: string, names: Set<string> = ISSUE_ACTIONS): ExtractedActions {
  const { lines, matches } = commandLines(text, names);
  return {
    text: lines
      .filter((_, i) => !matches.has(i))
      .join('\n')
      .replace(/\n{3,}/g, '\n\n')
      // Only whole blank lines go: a leading space is part of the text (it is why " /close" is not a command).
      .replace(/^(?:[ \t]*\n)+/, '')
      .trimEnd(),
    actions: [...matches.values()],
  };
}

/**
 * Shows commands without running them, for mail from people outside the project.
 * @example redactQuickActions('Hi\n/close') // 'Hi\n`/close`'
 */
export function redactQuickActions(text: string): string {
  const { lines, matches } = commandLines(text, KNOWN);
  return lines.map((line, i) => (matches.has(i) ? `\`${line.trimEnd()}\`` : line)).join('\n');
}
