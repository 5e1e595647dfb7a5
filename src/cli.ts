#!/usr/bin/env node
// cli: the `intake` command's entry. Under `serve`, SIGHUP means "reload the TLS files", and its default
// action would end the process while the commands load (a few hundred ms), before serve() takes it:
// until then it is ignored, which loses nothing, since serve() reads the files as it starts.
if (process.argv.slice(2).includes('serve')) process.on('SIGHUP', () => undefined);
await import('./commands.js');
