// What the wasmvs command shares across its commands: the usage text, the error for a bad
// command line (exit 2) and the file helpers that turn a system error into WASMVS_FILE.
import { readFileSync, writeFileSync } from 'node:fs';
import { WasmvsError } from '../errors.js';

export const USAGE = `Usage: wasmvs <command> [options]

Commands:
  replay --rules FILE IN.pcap OUT.pcap [--connections] [--stats] [--rate] [--exact]
         [--json] [--set TCP,TCPFIN,UDP]
      Feeds every packet of IN.pcap, in file order and with its timestamp as the clock,
      through the engine configured by FILE (ipvsadm-save syntax). Forwarded (rewritten)
      and passed packets go to OUT.pcap in the input's link type; dropped and refused
      packets are left out. Prints a summary: packets by verdict and reason, connections
      created and expired, new connections per real server.
        --rules FILE      rules, one per line: -A -t|-u VIP:port -s SCHED [-p SECONDS]
                          and -a -t|-u VIP:port -r RIP:port -m [-w WEIGHT]
        --connections     also print the final connection table (ipvsadm -L -n -c)
        --stats           also print totals per service and real server (ipvsadm -L -n
                          --stats: Conns, InPkts, OutPkts, InBytes, OutBytes)
        --rate            also print rates as IPVS's estimator gives them at the last
                          packet (ipvsadm -L -n --rate: CPS, InPPS, OutPPS, InBPS, OutBPS)
        --exact           with --stats/--rate, every digit (no K, M, G, T)
        --json            print the summary (and tables) as one JSON object on stdout;
                          --stats or --rate add "statistics" (totals and rates)
        --set T,F,U       timeouts in seconds as ipvsadm --set tcp tcpfin udp (0 = keep)

Options:
  -h, --help       this text
  -V, --version    the version
`;

/** A bad command line: printed with the usage text, exit status 2. */
export class UsageError extends Error {}

function systemError(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? (e as Error).message;
}

/** Reads a file the user named; `what` says which one in the error. */
export function readInput(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new WasmvsError('WASMVS_FILE', `cannot read ${what} ${path}: ${systemError(e)}`);
  }
}

export function writeOutput(path: string, data: Uint8Array): void {
  try {
    writeFileSync(path, data);
  } catch (e) {
    throw new WasmvsError('WASMVS_FILE', `cannot write ${path}: ${systemError(e)}`);
  }
}
