// wasmvs demo: the first thing a new user runs. The seed's example (an LVS-NAT director with
// a web service balanced 1:2 and an FTP port sent to one server) mapped into 198.18.0.0/15,
// built in network namespaces, carried by the real gateway, and torn down again, also on
// Ctrl-C. Needs root (namespaces, a TUN); nothing outside its namespaces changes.
import { connectControl } from '../control/client.js';
import { WasmvsError } from '../errors.js';
import { formatConnections } from '../ipvsadm/format.js';
import { startGateway, type TestbedGateway } from '../testbed/gateway.js';
import { clientGet, peerAddresses, startProgram } from '../testbed/servers.js';
import { isRoot, Testbed, TESTBED_VIP } from '../testbed/topology.js';

const VIP = TESTBED_VIP;
const REQUESTS = 300;
const SHOWN_CONNECTIONS = 8;

// The seed's rules (202.103.106.5 -> 198.18.100.10, 172.16.0.2/.3 -> 198.18.1.2/.3).
const RULES = `# the seed's example: web 1:2 over two servers (one on port 8000), FTP port to one
-A -t ${VIP}:80 -s wrr
-a -t ${VIP}:80 -r 198.18.1.2:80 -m -w 1
-a -t ${VIP}:80 -r 198.18.1.3:8000 -m -w 2
-A -t ${VIP}:21 -s wrr
-a -t ${VIP}:21 -r 198.18.1.3:21 -m -w 1
`;

const out = (line = ''): void => { process.stdout.write(`${line}\n`); };
const bar = (n: number, of: number, width = 40): string => '█'.repeat(Math.round((n / of) * width));

export async function runDemo(argv: string[]): Promise<number> {
  const verbose = argv.includes('--verbose');
  const unknown = argv.find((a) => a !== '--verbose');
  if (unknown !== undefined) throw new WasmvsError('WASMVS_BAD_OPTION', `demo takes only --verbose (got "${unknown}")`);
  if (!isRoot()) {
    process.stderr.write('wasmvs demo needs root: it builds network namespaces and a TUN device (try: sudo npx wasmvs demo)\n');
    return 1;
  }
  let tb: Testbed | undefined;
  let gw: TestbedGateway | undefined;
  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals) => {
    interrupted = true;
    out(`\n${sig}: tearing down`);
    tb?.destroySync();
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    out('wasmvs demo: IPVS NAT ("masquerading") as in the seed article, with real traffic');
    out();
    tb = await Testbed.create({ servers: 2, log: verbose ? (l) => out(`    $ ${l}`) : undefined });
    out(`  topology (network namespaces ${tb.prefix}-*):`);
    out(`    client ${tb.client.addresses[0]}  ->  director ${tb.director.clientAddress} | ${tb.director.serverAddress}  ->  rs1 ${tb.servers[0].address}, rs2 ${tb.servers[1].address}`);
    out(`    the VIP ${VIP} belongs to no link: the gateway routes it into its TUN wvs0`);
    const [rs1, rs2] = tb.servers;
    await Promise.all([
      startProgram(tb, rs1, 'rs-http', 80),
      startProgram(tb, rs2, 'rs-http', 8000),
      startProgram(tb, rs2, 'rs-http', 21),
    ]);
    out('  real servers: rs1 HTTP :80, rs2 HTTP :8000 and a stand-in on :21 (a small HTTP server)');
    out();
    out('  rules (ipvsadm-save syntax):');
    for (const line of RULES.trim().split('\n')) out(`    ${line}`);
    out();
    gw = await startGateway(tb, { rules: RULES, args: verbose ? ['--verbose'] : [] });
    out(`  gateway: ${gw.process.stdout.lines[0]}`);
    out();

    out(`  ${REQUESTS} HTTP requests to http://${VIP}/, a new connection each:`);
    const web = await clientGet(tb, `http://${VIP}/`, REQUESTS, { concurrency: 8 });
    const names = Object.entries(web.servers).sort();
    for (const [server, n] of names) out(`    ${server.padEnd(18)} ${String(n).padStart(4)}  ${bar(n, REQUESTS)}`);
    const peers = peerAddresses(web.peers);
    out(`    ${web.ok} answered, ${web.failed} failed; replies came from ${peers.join(', ')} (never a real server's address)`);
    out();

    out(`  5 requests to port 21 (scheduled to rs2:21 only):`);
    const ftp = await clientGet(tb, `http://${VIP}:21/`, 5);
    out(`    ${Object.entries(ftp.servers).map(([s, n]) => `${s}: ${n}`).join(', ')}`);
    out();

    const client = await connectControl({ path: gw.control });
    try {
      const conns = await client.connections();
      out(`  the gateway's connection table (as ipvsadm -L -n -c prints it; ${conns.length} entries, the first ${Math.min(SHOWN_CONNECTIONS, conns.length)}):`);
      const lines = formatConnections(conns).trimEnd().split('\n');
      for (const line of lines.slice(0, 2 + SHOWN_CONNECTIONS)) out(`    ${line}`);
      if (lines.length > 2 + SHOWN_CONNECTIONS) out(`    ... ${lines.length - 2 - SHOWN_CONNECTIONS} more`);
      const c = await client.counters();
      out();
      out(`  counters: ${c.packets} packets, ${c.forwardIn} forwarded in, ${c.forwardOut} out, ${c.drop} dropped; ${c.connsCreated} connections created`);
    } finally {
      client.close();
    }
    out();
    out('  tearing down: gateway stopped (its TUN, routes and rules removed), namespaces deleted');
    return web.ok === REQUESTS ? 0 : 1;
  } finally {
    if (!interrupted) {
      await gw?.stop();
      await tb?.destroy();
    }
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
