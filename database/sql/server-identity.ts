import type { Query } from '../db.js';

// Whether two connections reach the same PostgreSQL server. pg_control_system()
// may be refused (a hardened or managed server revokes it), and data_directory
// is hidden from roles without pg_read_all_settings: each is read separately
// and a refusal only means that means of telling is not available.

export const systemIdentifier = (): Query => ({ text: 'SELECT system_identifier::text AS id FROM pg_control_system()' });

/** What any role may read: when the postmaster started, the address and port it answered on, and data_directory if visible. */
export const serverWhereabouts = (): Query => ({
  text: `SELECT pg_postmaster_start_time()::text AS started, host(inet_server_addr()) AS addr, inet_server_port() AS port,
                current_setting('port') AS port_setting,
                (SELECT setting FROM pg_settings WHERE name = 'data_directory') AS data_directory`,
});
