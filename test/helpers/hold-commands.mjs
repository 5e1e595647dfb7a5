// hold-commands: a module hook for `node --import`, for the test of SIGHUP while intake starts: the
// entry's `import('./commands.js')` waits until the file named by HOLD_INTAKE_COMMANDS_UNTIL exists, so that the
// test can signal a process that has started and not yet loaded its commands, for as long as it likes.
import { register } from 'node:module';

const hooks = `
import { existsSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const hold = process.env.HOLD_INTAKE_COMMANDS_UNTIL;
  if (hold && specifier === './commands.js') {
    while (!existsSync(hold)) await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return next(specifier, context);
}
`;
register(`data:text/javascript,${encodeURIComponent(hooks)}`);
