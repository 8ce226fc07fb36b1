// Names for ipvsadm's output without -n and its input with names: ports from /etc/services
// (as getservbyport/getservbyname read it: "name port/protocol [aliases] [# comment]"), hosts
// by reverse lookup (as gethostbyaddr through the system resolver: /etc/hosts, then DNS) and
// forward lookup (gethostbyname, IPv4 only).
//
// Formatters are synchronous, look-ups are not: a listing first collects every address it
// will print, resolves them all at once (namesFor), then formats with the answers.
import { lookup, lookupService } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import type { Protocol } from '../addr.js';
import type { Names } from './format.js';

export interface ServicesDb {
  /** getservbyport: the first entry's official name. */
  byPort: Map<string, string>;
  /** getservbyname: official names and aliases. */
  byName: Map<string, number>;
}

/** Parses /etc/services text. Malformed lines are skipped, as libc's parser skips them. */
export function parseServices(text: string): ServicesDb {
  const db: ServicesDb = { byPort: new Map(), byName: new Map() };
  for (const raw of text.split('\n')) {
    const hash = raw.indexOf('#');
    const words = (hash < 0 ? raw : raw.slice(0, hash)).trim().split(/\s+/).filter((w) => w !== '');
    if (words.length < 2) continue;
    const m = /^(\d{1,5})\/([a-z0-9]+)$/i.exec(words[1]);
    if (!m || Number(m[1]) > 65535) continue;
    const port = Number(m[1]);
    const proto = m[2].toLowerCase();
    const key = `${port}/${proto}`;
    if (!db.byPort.has(key)) db.byPort.set(key, words[0]);
    for (const name of [words[0], ...words.slice(2)]) {
      if (!db.byName.has(`${name}/${proto}`)) db.byName.set(`${name}/${proto}`, port);
    }
  }
  return db;
}

let systemDb: ServicesDb | undefined;

/** /etc/services, read once; empty when the file is missing (ports then print as numbers). */
export function systemServices(path = '/etc/services'): ServicesDb {
  if (systemDb !== undefined && path === '/etc/services') return systemDb;
  let text = '';
  try { text = readFileSync(path, 'utf8'); } catch { /* no services database: numbers only */ }
  const db = parseServices(text);
  if (path === '/etc/services') systemDb = db;
  return db;
}

/** A service port by name for `protocol`, as service_to_port(). */
export function servicePort(db: ServicesDb, name: string, protocol: Protocol): number | undefined {
  return db.byName.get(`${name}/${protocol}`);
}

/** A host's name by reverse lookup, or undefined when it has none. */
export type ReverseLookup = (addr: string) => Promise<string | undefined>;

/** Time to wait for one reverse lookup before printing the number (ipvsadm waits for the resolver's own time-outs). */
const REVERSE_TIMEOUT_MS = 3000;

/** The system resolver's answer (getnameinfo with NI_NAMEREQD: /etc/hosts, then DNS). */
export const systemReverse: ReverseLookup = async (addr) => {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => { timer = setTimeout(() => resolve(undefined), REVERSE_TIMEOUT_MS); });
  try {
    return await Promise.race([lookupService(addr, 0).then((r) => r.hostname, () => undefined), timeout]);
  } finally {
    clearTimeout(timer);
  }
};

/** gethostbyname for an IPv4 address, or undefined. */
export async function lookupHost(name: string): Promise<string | undefined> {
  try {
    return (await lookup(name, { family: 4 })).address;
  } catch {
    return undefined;
  }
}

/**
 * Names for the addresses `addrs`: each resolved once, all at once; an address without a name
 * prints as itself, a port without a /etc/services entry as its number (addr_to_anyname,
 * port_to_anyname).
 */
export async function namesFor(addrs: Iterable<string>, options: { reverse?: ReverseLookup; services?: ServicesDb } = {}): Promise<Names> {
  const reverse = options.reverse ?? systemReverse;
  const db = options.services ?? systemServices();
  const unique = [...new Set(addrs)];
  const found = await Promise.all(unique.map((a) => reverse(a)));
  const hosts = new Map(unique.map((a, i) => [a, found[i] ?? a]));
  return {
    host: (a) => hosts.get(a) ?? a,
    port: (p, proto) => db.byPort.get(`${p}/${proto}`) ?? String(p),
  };
}
