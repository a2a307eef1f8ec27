// Who is asking: the admin (the daemon's owner), a plugin service (by its token), or an anonymous
// connection. The server decides it at Hello; the executor and the audit log read it.

export interface Identity {
  kind: 'admin' | 'plugin' | 'anonymous';
  /** The plugin's name when kind is 'plugin'. */
  plugin: string | null;
  /** How the identity is written in logs and in Welcome: "admin", "plugin:<name>", "anonymous". */
  label: string;
}

export const ANONYMOUS: Identity = { kind: 'anonymous', plugin: null, label: 'anonymous' };
export const ADMIN: Identity = { kind: 'admin', plugin: null, label: 'admin' };

/** A plugin's identity; its label is the one the audit log, Welcome and log owners use. */
export function pluginIdentity(plugin: string): Identity {
  return { kind: 'plugin', plugin, label: `plugin:${plugin}` };
}
