// baseline-options: the smtp-server options of the benchmark's baselines (the drain, the reference
// design): those of intake's that cost anything (no reverse lookup, enhanced codes), and room for the
// 25 MB messages.
import type { SMTPServerOptions } from 'smtp-server';

export const BASELINE_OPTIONS: SMTPServerOptions = {
  authOptional: true,
  disabledCommands: ['AUTH', 'STARTTLS'],
  disableReverseLookup: true,
  hideENHANCEDSTATUSCODES: false,
  maxClients: 1000,
  // 26 MiB, as the bench allows intake: the 25 MB messages (an 18 MiB file in base64) must fit.
  size: 27262976,
  logger: false,
};
