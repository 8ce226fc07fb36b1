// A child process for test/testbed.test.ts: builds a one-server testbed, starts the HTTP
// program in it, prints "ready <prefix> <server pid>" and waits to be signalled. The test
// then SIGKILLs it (namespaces left behind for Testbed.sweep) or SIGINTs it (the testbed's
// own handler must clean up and the child die of SIGINT).
import { Testbed } from '../../host/testbed/topology.js';
import { startRealServers } from '../../host/testbed/servers.js';

const tb = await Testbed.create({ servers: 1 });
const [rs] = await startRealServers(tb, { udpPorts: [] });
process.stdout.write(`ready ${tb.prefix} ${rs!.http.get(80)!.pid}\n`);
setInterval(() => {}, 1 << 30);
