// pause: a fetcher's wait between checks, which close() (or news of the folder) can end early.

export interface Pause {
  /** Resolves after ms, or at once when woken. */
  sleep(ms: number): Promise<void>;
  /** Ends the wait under way, if any. */
  wake(): void;
}

export function createPause(): Pause {
  let wake: () => void = () => {};
  return {
    sleep: (ms) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(done, ms);
        function done() {
          clearTimeout(timer);
          wake = () => {};
          resolve();
        }
        wake = done;
      }),
    wake: () => wake(),
  };
}
