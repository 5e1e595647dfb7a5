// isBranchName: the names git takes for a branch, and none that a consumer could take for an option or a path.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isBranchName } from '../../../src/text/branch.js';

describe('isBranchName', () => {
  it.each(['feature', 'feature/oil', 'fix-123', 'v1.2', 'new-branch-with-a-patch', 'ünïcode'])('takes %s', (name) => expect(isBranchName(name)).toBe(true));

  it.each(['', 'two words', '../x', 'a..b', '-rf', '/lead', 'trail/', 'end.', 'x.lock', 'a/.hidden', 'a//b', 'a@{1}', '@', 'tab\there', 'star*', 'q?', 'c:d', 'h^', 't~1', 'b[0]', 'back\\slash', 'nul\u0000', 'x'.repeat(256), 'HEAD'])(
    'refuses %j',
    (name) => expect(isBranchName(name)).toBe(false),
  );

  it('property: a taken name has no blank, control character, `..` or leading `-`, and never starts or ends with `/`', () => {
    // Names made mostly of what git takes, with the pieces it refuses mixed in.
    const piece = fc.oneof({ weight: 4, arbitrary: fc.string({ maxLength: 8 }) }, { weight: 1, arbitrary: fc.constantFrom('..', '-', '/', '\t', '\n', '\u0000', '\u007f', ' ', '.lock', '@{', '\\') });
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 6 }).map((pieces) => pieces.join('')), (name) => {
        if (!isBranchName(name)) return true;
        // eslint-disable-next-line no-control-regex -- control characters are what must not be there
        return !/[\u0000-\u0020\u007f]/.test(name) && !name.includes('..') && !name.startsWith('-') && !name.startsWith('/') && !name.endsWith('/');
      }),
      { seed: Number(process.env.FC_SEED ?? 20261126), numRuns: 1000 },
    );
  });
});
