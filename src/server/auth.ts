// Who is on the other end of a connection, decided from the token sent in Hello. The admin token is
// written at start to a 0600 file only the daemon's user can read; plugin tokens are registered by the
// services that hand them out. No token, or a wrong one, is the anonymous identity (Ping only).
// On the plugin socket (plugin-socket.ts) the admin token is not accepted at all: identifyPlugin.

import crypto from 'node:crypto';
import { ADMIN, ANONYMOUS, pluginIdentity, type Identity } from '../core/identity.js';

export function newToken(): string {
  return crypto.randomBytes(32).toString('hex');
}

function sameToken(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

export class Authenticator {
  private readonly plugins = new Map<string, string>(); // token -> plugin name

  constructor(private readonly adminToken: string) {}

  /** Give a plugin its own token (returned), replacing any earlier one for that plugin. */
  issuePluginToken(plugin: string): string {
    this.revokePlugin(plugin);
    const token = newToken();
    this.plugins.set(token, plugin);
    return token;
  }

  /**
   * The plugin's token, issued on first use and then kept for the daemon's lifetime (docs/security.md
   * section 8): every run of the plugin's service gets the same one.
   */
  pluginToken(plugin: string): string {
    for (const [token, name] of this.plugins) if (name === plugin) return token;
    return this.issuePluginToken(plugin);
  }

  /** Revoke the tokens of every plugin not in `keep` (its service definition is gone). */
  revokeExcept(keep: ReadonlySet<string>): string[] {
    const gone = new Set<string>();
    for (const [token, name] of this.plugins) {
      if (!keep.has(name)) {
        this.plugins.delete(token);
        gone.add(name);
      }
    }
    return [...gone];
  }

  revokePlugin(plugin: string): void {
    for (const [token, name] of this.plugins) if (name === plugin) this.plugins.delete(token);
  }

  identify(token: string | null): Identity {
    if (token === null || token === '') return ANONYMOUS;
    if (sameToken(token, this.adminToken)) return ADMIN;
    const plugin = this.plugins.get(token);
    if (plugin !== undefined) return pluginIdentity(plugin);
    return ANONYMOUS;
  }

  /**
   * For connections on the plugin socket: a plugin token identifies its plugin; anything else, the
   * admin token included, is anonymous. `onAdminToken` is told (for the log) when the admin token shows
   * up there — it was read by someone or something that should not have it.
   */
  identifyPlugin(token: string | null, onAdminToken?: () => void): Identity {
    const identity = this.identify(token);
    if (identity.kind !== 'admin') return identity;
    onAdminToken?.();
    return ANONYMOUS;
  }
}
