// startup-error: why `intake serve` could not start, and the exit statuses a supervisor reads. A module
// of its own so that the CLI can tell them apart without loading the server.

/** A reason the service cannot start, said in one line (no stack trace: it is not a bug). */
export class StartupError extends Error {
  override name = 'StartupError';
  /** sysexits: 78 (EX_CONFIG) for a setting to fix, so a supervisor does not restart in a loop. */
  constructor(
    message: string,
    readonly exitCode: number = 1,
  ) {
    super(message);
  }
}

export const EX_CONFIG = 78;
/** sysexits: 74 (EX_IOERR), the disk failed a flush; the supervisor restarts intake (deploy/intake.service). */
export const EX_IOERR = 74;
