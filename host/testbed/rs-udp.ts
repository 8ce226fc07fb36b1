// A real server's UDP echo program for the testbed, run as `node rs-udp.js --name rs1 --port 5353`
// inside a real server's namespace (servers.ts starts it). Each datagram comes back to its
// sender prefixed with one line naming the server ("rs1\n" + the datagram), so a client can
// tell which real server a VIP scheduled it to and still check the echo. Prints
// "ready <port>" once bound; exits 0 on SIGTERM/SIGINT.
import { createSocket } from 'node:dgram';
import { intArg, parseArgs } from './args.js';

const args = parseArgs(process.argv.slice(2), ['--name', '--port', '--host'], []);
const name = args.options.get('--name') ?? 'rs';
const port = intArg(args.options.get('--port'), '--port', 0, 65535, 5353);
const host = args.options.get('--host') ?? '0.0.0.0';
const prefix = Buffer.from(`${name}\n`);

const socket = createSocket({ type: 'udp4' });
socket.on('message', (msg, rinfo) => {
  socket.send(Buffer.concat([prefix, msg]), rinfo.port, rinfo.address);
});
socket.on('error', (err) => {
  process.stderr.write(`rs-udp ${name}: ${err.message}\n`);
  process.exit(1);
});
socket.bind(port, host, () => {
  process.stdout.write(`ready ${socket.address().port}\n`);
});

function stop(): void {
  socket.close(() => process.exit(0));
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
