import { describe, expect, it } from 'vitest';
import { extractQuickActions, MERGE_REQUEST_ACTIONS, redactQuickActions } from '../../../src/text/quick-actions.js';

describe('extractQuickActions', () => {
  it('takes commands in any case, by their GitLab names, outside fences and quotes', () => {
    const { text, actions } = extractQuickActions('Done.\n/Close\n/LABELS ~bug\n/remove_label ~wip\n> /close\n```\n/close\n```\n /close');
    expect(actions.map((a) => [a.name, a.argument])).toEqual([['close', ''], ['label', '~bug'], ['unlabel', '~wip']]);
    expect(text).toBe('Done.\n> /close\n```\n/close\n```\n /close');
  });

  it('leaves the commands a merge request does not take in the text', () => {
    const { text, actions } = extractQuickActions('/label ~x\n/assign @a\n/close', MERGE_REQUEST_ACTIONS);
    expect(actions.map((a) => a.name)).toEqual(['close']);
    expect(text).toBe('/label ~x\n/assign @a');
  });
});

describe('redactQuickActions', () => {
  it('shows known commands inert in any case and by any name', () => {
    expect(redactQuickActions('Hi\n/Close\n/labels ~spam\n/nosuch')).toBe('Hi\n`/Close`\n`/labels ~spam`\n/nosuch');
  });

  it('reads fences as CommonMark does: inline code on its own line opens none, and only a matching fence closes one', () => {
    expect(redactQuickActions('Hello\n```this is not a code fence```\n/close\n/assign @alice')).toBe('Hello\n```this is not a code fence```\n`/close`\n`/assign @alice`');
    // Inside a ```` fence, ``` and ~~~ lines are content: the command stays in the code block.
    expect(redactQuickActions('````\n```\n/close\n~~~\n````\n/close')).toBe('````\n```\n/close\n~~~\n````\n`/close`');
    expect(extractQuickActions('~~~ js\n/close\n~~~\n/close').actions.map((a) => a.line)).toEqual(['/close']);
  });
});
