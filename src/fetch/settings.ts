// fetch settings: the IMAP and Graph fetchers' settings from the configuration, their secrets read from
// the files named (systemd credentials), for serve and check alike. Side effects: reads those files.
import { readFileSync } from 'node:fs';
import { ConfigError, type Config } from '../config.js';
import type { GraphSettings } from './graph.js';
import type { ImapSettings } from './imap.js';

/** A secret given as a setting, or as the first line of a file, read now. */
function secretOf(value: string, file: string, setting: string): string {
  if (!file) return value;
  let secret: string;
  try {
    secret = readFileSync(file, 'utf8').split(/\r?\n/)[0] ?? '';
  } catch (error) {
    throw new ConfigError([`${setting}: cannot read ${file}: ${(error as Error).message}`]);
  }
  if (secret === '') throw new ConfigError([`${setting}: ${file} is empty`]);
  return secret;
}

export function imapSettingsOf(config: Config): ImapSettings {
  return {
    host: config.imap_host,
    port: config.imap_port,
    tls: config.imap_tls,
    user: config.imap_user,
    password: secretOf(config.imap_password, config.imap_password_file, 'INTAKE_IMAP_PASSWORD_FILE'),
    mailbox: config.imap_mailbox,
    after: config.imap_after,
    moveTo: config.imap_move_to,
    checkIntervalMs: config.imap_check_interval_ms,
    maxMessageBytes: config.max_message_bytes,
  };
}

export function graphSettingsOf(config: Config): GraphSettings {
  return {
    loginEndpoint: config.graph_login_endpoint,
    graphEndpoint: config.graph_endpoint,
    tenantId: config.graph_tenant_id,
    clientId: config.graph_client_id,
    clientSecret: secretOf(config.graph_client_secret, config.graph_client_secret_file, 'INTAKE_GRAPH_CLIENT_SECRET_FILE'),
    user: config.graph_user,
    folder: config.graph_folder,
    after: config.graph_after,
    moveTo: config.graph_move_to,
    pollIntervalMs: config.graph_poll_interval_ms,
    maxMessageBytes: config.max_message_bytes,
  };
}
