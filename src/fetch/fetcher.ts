// fetcher: what every mailbox fetcher (IMAP, Microsoft Graph) shows serve and /metrics, and how it is stopped.

export interface FetcherStatus {
  /** IMAP: the folder is open. Graph: the last request went through. */
  connected: boolean;
  /** When the folder was last gone through to the end (ms since the epoch), or null. */
  lastCheck: number | null;
  /** Why the connection or the last poll last failed, or null. */
  lastError: string | null;
}

export interface Fetcher {
  status(): FetcherStatus;
  /** Lets the message being stored finish, then stops; past graceMs, cuts what is under way. */
  close(graceMs: number): Promise<void>;
}
