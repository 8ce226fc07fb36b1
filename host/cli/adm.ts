// wasmvs adm: ipvsadm, command for command, against a running gateway's control socket.
//
//   wasmvs adm [--control PATH] IPVSADM-ARGUMENTS...     (else $WASMVS_CONTROL, else /run/wasmvs.sock)
//   ipvsadm IPVSADM-ARGUMENTS...                         (the wasmvs command through a link of that name)
//
// The command line is ipvsadm 1.31's (host/ipvsadm/command.ts), the output its printf formats
// (host/ipvsadm/format.ts), the errors its messages and exit statuses (ipvsadm.c, libipvs.c
// ipvs_strerror): 0 success, 2 a bad command line, 255 a refusal of the table (or popt's own
// errors), 1 for `-L -t|-u SERVICE` of a service that does not exist. Without -n, addresses and
// ports print as names (host/ipvsadm/names.ts).
import { connectControl, type ControlClient } from '../control/client.js';
import { DEFAULT_CONTROL_PATH } from '../control/protocol.js';
import type { ServiceKey } from '../engine/engine.js';
import { WasmvsError, type ErrorCode } from '../errors.js';
import { IpvsadmError, parseCommand, type CommandName, type Endpoint, type IpvsadmCommand } from '../ipvsadm/command.js';
import {
  formatConnections, formatSave, formatServices, formatTimeouts, formatVersionLine, NUMERIC, type Names, type TableFormat,
} from '../ipvsadm/format.js';
import { packageVersion } from '../version.js';
import { lookupHost, namesFor, servicePort, systemServices, type ReverseLookup, type ServicesDb } from '../ipvsadm/names.js';

/** Where adm reads and writes; tests replace it. */
export interface AdmIo {
  stdout(text: string): void;
  stderr(text: string): void;
  /** Standard input, for -R. */
  stdin(): Promise<string>;
  /** $WASMVS_CONTROL and friends. */
  env: Record<string, string | undefined>;
  /** Reverse lookups for output without -n (default: the system resolver). */
  reverse?: ReverseLookup;
  /** Forward lookups of host names in -t/-u/-r (default: the system resolver). */
  lookup?: (name: string) => Promise<string | undefined>;
  /** The services database (default /etc/services). */
  services?: ServicesDb;
}

const processIo = (): AdmIo => ({
  stdout: (t) => { process.stdout.write(t); },
  stderr: (t) => { process.stderr.write(t); },
  stdin: async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  },
  env: process.env,
});

// ipvs_strerror()'s table: the message for each refusal, by the call that was refused.
const SERVICE_EXISTS = 'Service already exists';
const NO_SCHEDULER = 'Scheduler or persistence engine not found';
const TABLE_MESSAGES: Partial<Record<CommandName, Partial<Record<ErrorCode, string>>>> = {
  'add-service': { WASMVS_SERVICE_EXISTS: SERVICE_EXISTS, WASMVS_UNKNOWN_SCHEDULER: NO_SCHEDULER },
  'edit-service': { WASMVS_NO_SERVICE: 'No such service', WASMVS_UNKNOWN_SCHEDULER: NO_SCHEDULER },
  'delete-service': { WASMVS_NO_SERVICE: 'No such service' },
  zero: { WASMVS_NO_SERVICE: 'No such service' },
  'add-server': { WASMVS_NO_SERVICE: 'Service not defined', WASMVS_DEST_EXISTS: 'Destination already exists' },
  'edit-server': { WASMVS_NO_SERVICE: 'Service not defined', WASMVS_NO_DEST: 'No such destination' },
  'delete-server': { WASMVS_NO_SERVICE: 'Service not defined', WASMVS_NO_DEST: 'No such destination' },
  restore: {
    WASMVS_SERVICE_EXISTS: SERVICE_EXISTS, WASMVS_UNKNOWN_SCHEDULER: NO_SCHEDULER,
    WASMVS_NO_SERVICE: 'Service not defined', WASMVS_DEST_EXISTS: 'Destination already exists',
  },
};

function versionLine(): string {
  return `wasmvs adm ${packageVersion()} (ipvsadm v1.31 command line; IPVS NAT over wasmvs)\n`;
}

/** usage_exit(): ipvsadm's help, cut to what wasmvs does. */
export function admUsage(program: string): string {
  const p = program;
  return `${versionLine()}Usage:
  ${p} -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [-b sched-flags] [-o]
  ${p} -D virtual-service
  ${p} -C
  ${p} -R
  ${p} -S [-n]
  ${p} -a|e virtual-service -r server-address -m [-w weight] [-x uthreshold] [-y lthreshold]
  ${p} -d virtual-service -r server-address
  ${p} -L|l [virtual-service] [options]
  ${p} -Z [virtual-service]
  ${p} --set tcp tcpfin udp
  ${p} -h

Commands:
Either long or short options are allowed.
  --add-service     -A        add virtual service with options
  --edit-service    -E        edit virtual service with options (the whole service: -s, -p, -M, -b, -o)
  --delete-service  -D        delete virtual service
  --clear           -C        clear the whole table
  --restore         -R        restore rules from stdin (-A and -a lines, all or nothing)
  --save            -S        save rules to stdout
  --add-server      -a        add real server with options
  --edit-server     -e        edit real server with options (the whole server: -w, -x, -y)
  --delete-server   -d        delete real server
  --list            -L|-l     list the table
  --zero            -Z        zero counters in a service or all services
  --set tcp tcpfin udp        set connection timeout values
  --help            -h        display this help message

virtual-service:
  --tcp-service|-t  service-address   service-address is host[:port]
  --udp-service|-u  service-address   service-address is host[:port]

Options:
  --scheduler    -s scheduler         rr|wrr|lc|wlc|lblc|lblcr|dh|sh|sed|nq|fo|ovf|mh|twos,
                                      the default scheduler is wlc.
  --persistent   -p [timeout]         persistent service (default 360 seconds)
  --netmask      -M netmask           persistent granularity mask
  --real-server  -r server-address    server-address is host (and port)
  --masquerading -m                   masquerading (NAT), the only forwarding method of wasmvs
  --weight       -w weight            capacity of real server
  --u-threshold  -x uthreshold        upper threshold of connections
  --l-threshold  -y lthreshold        lower threshold of connections
  --connection   -c                   output of current IPVS connections
  --timeout                           output of timeout (tcp tcpfin udp)
  --daemon                            output of daemon information (wasmvs runs none)
  --stats                             output of statistics information
  --rate                              output of rate information
  --exact        -X                   expand numbers (display exact values)
  --thresholds                        output of thresholds information
  --persistent-conn                   output of persistent connection info
  --tun-info                          output of tunnel information
  --nosort                            disable sorting output of service/server entries
  --sort                              does nothing, for backwards compatibility
  --ops          -o                   one-packet scheduling
  --numeric      -n                   numeric output of addresses and ports
  --sched-flags  -b flags             scheduler flags (comma-separated)

Not supported by wasmvs (refused): -g, -i, --tun-*, -f, --sctp-service, -6, --pe,
--start-daemon, --stop-daemon and the sync daemon's options.
The gateway's control socket: --control PATH before the arguments (wasmvs adm only), else
$WASMVS_CONTROL, else /run/wasmvs.sock.
`;
}

/** A command-line failure: ipvsadm's message on stderr, its exit status. */
class Exit extends Error {
  constructor(readonly status: number, readonly text: string) { super(text); }
}

/** -t/-u/-r host names, looked up as ipvsadm's host_to_addr does (gethostbyname). */
async function resolveEndpoint(e: Endpoint | undefined, what: string, io: AdmIo): Promise<void> {
  if (e === undefined || e.addr !== undefined) return;
  const addr = await (io.lookup ?? lookupHost)(e.host);
  if (addr === undefined) throw new Exit(2, `illegal ${what} address[:port] specified`);
  e.addr = addr;
}

function serviceKey(cmd: IpvsadmCommand): ServiceKey {
  return { protocol: cmd.protocol!, vaddr: cmd.service!.addr!, vport: cmd.service!.port ?? 0 };
}

/** -A/-E send the whole service (ipvsadm fills in wlc and no persistence when not given). */
function serviceSpec(cmd: IpvsadmCommand) {
  return {
    ...serviceKey(cmd),
    scheduler: cmd.scheduler || 'wlc',
    ...(cmd.persistence !== undefined ? { persistence: cmd.persistence } : {}),
    ...(cmd.netmask !== undefined ? { netmask: cmd.netmask } : {}),
    ...(cmd.schedFlags !== undefined ? { schedFlags: cmd.schedFlags } : {}),
    ...(cmd.onePacket ? { onePacket: true } : {}),
  };
}

/** -a/-e send the whole real server: no -w is weight 1, no -x/-y is 0. */
function destSpec(cmd: IpvsadmCommand) {
  return {
    daddr: cmd.server!.addr!,
    dport: cmd.server!.port ?? cmd.service!.port ?? 0,
    weight: cmd.weight ?? 1,
    upperThreshold: cmd.upperThreshold ?? 0,
    lowerThreshold: cmd.lowerThreshold ?? 0,
  };
}

/** config_stream_read(): words of one line, a "ipvsadm" word dropped, from '#' on a comment. */
function restoreWords(line: string): string[] {
  const hash = line.indexOf('#');
  return (hash < 0 ? line : line.slice(0, hash)).split(/[ \t\r]+/).filter((w) => w !== '' && w !== 'ipvsadm');
}

/** -R: every line parsed here (names resolved), sent as one all-or-nothing restore. */
async function restoreText(text: string, io: AdmIo, parse: (words: string[]) => IpvsadmCommand): Promise<string> {
  const out: string[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const words = restoreWords(lines[i]);
    if (words.length === 0) { out.push(''); continue; }
    let cmd: IpvsadmCommand;
    try {
      cmd = parse(words);
    } catch (err) {
      if (err instanceof IpvsadmError) throw new Exit(err.status, `${err.message} (line ${i + 1} of the input; nothing was restored)`);
      throw err;
    }
    if (cmd.command !== 'add-service' && cmd.command !== 'add-server') {
      throw new Exit(2, `line ${i + 1}: wasmvs restores -A (--add-service) and -a (--add-server) lines, as ipvsadm-save writes them, not '${cmd.command}'; nothing was restored`);
    }
    await resolveEndpoint(cmd.service, 'virtual server', io);
    await resolveEndpoint(cmd.server, 'real server', io);
    const svc = `${cmd.protocol === 'udp' ? '-u' : '-t'} ${cmd.service!.addr}:${cmd.service!.port ?? 0}`;
    if (cmd.command === 'add-service') {
      const s = serviceSpec(cmd);
      out.push(`-A ${svc} -s ${s.scheduler}${s.persistence !== undefined ? ` -p ${s.persistence}` : ''}${s.netmask ? ` -M ${s.netmask}` : ''}${s.onePacket ? ' -o' : ''}${s.schedFlags ? ` -b ${s.schedFlags.join(',')}` : ''}`);
    } else {
      const d = destSpec(cmd);
      out.push(`-a ${svc} -r ${d.daddr}:${d.dport} -m -w ${d.weight}${d.upperThreshold ? ` -x ${d.upperThreshold}` : ''}${d.lowerThreshold ? ` -y ${d.lowerThreshold}` : ''}`);
    }
  }
  return `${out.join('\n')}\n`;
}

async function names(numeric: boolean, addrs: Iterable<string>, io: AdmIo, db: ServicesDb): Promise<Names> {
  return numeric ? NUMERIC : namesFor(addrs, { reverse: io.reverse, services: db });
}

async function list(cmd: IpvsadmCommand, client: ControlClient, io: AdmIo, db: ServicesDb): Promise<number> {
  const f = cmd.format;
  const format: TableFormat = { ...f };
  if (cmd.options.has('connection')) {
    const conns = await client.connections();
    const n = await names(f.numeric, conns.flatMap((c) => [c.caddr, c.vaddr, c.daddr]), io, db);
    io.stdout(formatConnections(conns, { names: n, persistentConn: f.persistentConn }));
    return 0;
  }
  if (cmd.options.has('timeout')) {
    io.stdout(formatTimeouts(await client.getTimeouts()));
    return 0;
  }
  if (cmd.options.has('daemon')) return 0; // list_daemon(): wasmvs runs no sync daemon, so no line
  const table = await client.table({ persistConns: f.persistentConn });
  if (cmd.service !== undefined) {
    const key = serviceKey(cmd);
    const svc = table.find((s) => s.protocol === key.protocol && s.vaddr === key.vaddr && s.vport === key.vport);
    // list_service(): ipvs_get_service fails with ESRCH, and ipvsadm exits 1.
    if (svc === undefined) throw new Exit(1, 'No such service');
    format.names = await names(f.numeric, [svc.vaddr, ...svc.dests.map((d) => d.daddr)], io, db);
    io.stdout(formatServices([svc], format));
    return 0;
  }
  const info = await client.info();
  format.names = await names(f.numeric, table.flatMap((s) => [s.vaddr, ...s.dests.map((d) => d.daddr)]), io, db);
  io.stdout(formatVersionLine(info.version, info.connCapacity) + formatServices(table, format));
  return 0;
}

async function execute(cmd: IpvsadmCommand, client: ControlClient, io: AdmIo, db: ServicesDb, parse: (w: string[]) => IpvsadmCommand): Promise<number> {
  switch (cmd.command) {
    case 'list': return list(cmd, client, io, db);
    case 'save': {
      const table = await client.table();
      const n = await names(cmd.format.numeric, table.flatMap((s) => [s.vaddr, ...s.dests.map((d) => d.daddr)]), io, db);
      io.stdout(formatSave(table, { names: n }));
      return 0;
    }
    case 'add-service': await client.addService(serviceSpec(cmd)); return 0;
    case 'edit-service': await client.editService(serviceSpec(cmd)); return 0;
    case 'delete-service': await client.delService(serviceKey(cmd)); return 0;
    case 'flush': await client.clear(); return 0;
    case 'add-server': await client.addDest(serviceKey(cmd), destSpec(cmd)); return 0;
    case 'edit-server': await client.editDest(serviceKey(cmd), destSpec(cmd)); return 0;
    case 'delete-server': {
      const d = destSpec(cmd);
      await client.delDest(serviceKey(cmd), { daddr: d.daddr, dport: d.dport });
      return 0;
    }
    case 'zero': await client.zeroStats(cmd.service ? serviceKey(cmd) : undefined); return 0;
    case 'set': await client.setTimeouts(cmd.timeouts!); return 0;
    case 'restore': await client.restore(await restoreText(await io.stdin(), io, parse)); return 0;
    default: throw new Exit(2, `the '${cmd.command}' command: wasmvs does not support it`);
  }
}

/**
 * Runs one ipvsadm command line against the gateway; returns ipvsadm's exit status. `program`
 * is the name in messages ("ipvsadm" through the link, else "wasmvs adm").
 */
export async function runAdm(argv: readonly string[], options: { program?: string; io?: AdmIo } = {}): Promise<number> {
  const io = options.io ?? processIo();
  const program = options.program ?? 'wasmvs adm';
  let args = [...argv];
  let path: string | undefined;
  // --control PATH (or --control=PATH) comes before the ipvsadm arguments.
  if (args[0] === '--control' && args.length >= 2) { path = args[1]; args = args.slice(2); } else if (args[0]?.startsWith('--control=')) { path = args[0].slice('--control='.length); args = args.slice(1); }
  // ipvsadm with no argument lists the table (list_all(FMT_NONE)).
  if (args.length === 0) args = ['-L'];
  const db = io.services ?? systemServices();
  const parse = (words: string[]) => parseCommand(words, { program, servicePort: (name, proto) => servicePort(db, name, proto) });
  let client: ControlClient | undefined;
  let cmd: IpvsadmCommand | undefined;
  try {
    cmd = parse(args);
    if (cmd.command === 'help') { io.stdout(admUsage(program)); return 0; }
    if (cmd.command === 'version') { io.stdout(versionLine()); return 0; }
    await resolveEndpoint(cmd.service, 'virtual server', io);
    await resolveEndpoint(cmd.server, 'real server', io);
    const socket = path ?? io.env.WASMVS_CONTROL ?? DEFAULT_CONTROL_PATH;
    try {
      client = await connectControl({ path: socket });
    } catch (err) {
      // main(): "Can't initialize ipvs: ...", exit 2.
      throw new Exit(2, `Can't initialize ipvs: ${(err as Error).message}\nIs a wasmvs gateway running with its control socket there (--control PATH, $WASMVS_CONTROL)?`);
    }
    return await execute(cmd, client, io, db, parse);
  } catch (err) {
    if (err instanceof Exit) { io.stderr(`${err.text}\n`); return err.status; }
    if (err instanceof IpvsadmError) { io.stderr(`${err.message}\n`); return err.status; }
    if (err instanceof WasmvsError) {
      // A refusal of the table: ipvs_strerror's message where ipvsadm has one, exit 255.
      const mapped = cmd ? TABLE_MESSAGES[cmd.command]?.[err.code] : undefined;
      const where = /^line \d+: /.exec(err.message)?.[0];
      io.stderr(`${mapped !== undefined ? `${mapped}${where ? ` (${where.slice(0, -2)} of the input; nothing was restored)` : ''}` : err.message}\n`);
      return 255;
    }
    throw err;
  } finally {
    client?.close();
  }
}
