// What the wasmvs command shares across its commands: the usage text, the error for a bad
// command line (exit 2) and the file helpers that turn a system error into WASMVS_FILE.
import { readFileSync, writeFileSync } from 'node:fs';
import { WasmvsError } from '../errors.js';

export const USAGE = `Usage: wasmvs <command> [options]

Commands:
  gateway --rules FILE | --keepalived FILE [--tun NAME] [--control PATH] [--no-offload] [--mtu N]
          [--writer-thread | --no-writer-thread] [--napi-thread | --no-napi-thread] [--no-io-uring]
          [--real-server-iface IFACE]... [--arp-iface IFACE]... [--conn-capacity N]
          [--ftp-ports LIST] [--verbose] [--log-format text|json]
      The director (root): a TUN device (default wvs0) owns the VIPs of FILE (ipvsadm-save
      syntax), every new connection is scheduled and both directions are rewritten.
      Prints one line with "ready" on stdout once it forwards; logs go to stderr.
      SIGHUP re-reads FILE and applies the difference; SIGINT/SIGTERM stop it and remove
      everything it added to the host (routes, rules, proxy ARP entries, sysctls).
        --ftp-ports LIST        virtual TCP ports of FTP control connections, comma-separated
                                (default 21, as ip_vs_ftp's ports; "" turns the FTP helper off)
        --keepalived FILE       instead of --rules: the virtual_server blocks of a keepalived.conf,
                                kept by its health checkers (TCP_CHECK, HTTP_GET, SSL_GET,
                                UDP_CHECK, DNS_CHECK, MISC_CHECK); SIGHUP re-reads it as keepalived
        --tun NAME              the TUN device's name (default wvs0)
        --control PATH          control socket (default $WASMVS_CONTROL, else /run/wasmvs.sock)
        --no-offload            plain IFF_TUN|IFF_NO_PI: no GSO super-packets, no partial
                                checksums (default: virtio_net_hdr offload on)
        --mtu N                 the TUN's MTU (default 1500)
        --writer-thread         write forwarded packets on a second thread, so the kernel's
                                work in each write(2) runs on another core (the default);
                                --no-writer-thread: read, process and write on one thread
        --napi-thread           the kernel receives written packets in a NAPI kernel thread,
                                in batches through GRO, instead of inside each write(2)
                                (default with --no-offload; --no-napi-thread turns it off)
        --no-io-uring           the writer thread makes a write(2) per packet instead of one
                                io_uring_enter per batch (io_uring is used where the kernel has it)
        --real-server-iface IF  real servers' replies are those arriving on IF (repeatable),
                                instead of those from the real servers' addresses
        --arp-iface IF          answer ARP for the VIPs on IF (proxy neighbour entries)
        --conn-capacity N       maximum live connections (default 1048576; 64 bytes each)
        --verbose               log more; --log-format json: one JSON object per line

  adm [--control PATH] IPVSADM-ARGUMENTS...
      ipvsadm against a running gateway: the same commands (-A -E -D -C -R -S -a -e -d -L -Z
      --set -h), options and output; "wasmvs adm -h" lists them. The control socket is
      --control PATH, else $WASMVS_CONTROL, else /run/wasmvs.sock (root only). Through a
      link named ipvsadm the wasmvs command is "wasmvs adm".

  demo [--verbose]
      (root) Builds a namespace topology with the seed's example in 198.18.0.0/15, runs the
      gateway, sends 300 requests through the VIP, shows who answered and the connection
      table, and tears everything down (also on Ctrl-C).

  replay --rules FILE IN.pcap OUT.pcap [--connections] [--stats] [--rate] [--exact]
         [--json] [--set TCP,TCPFIN,UDP] [--replies FILE]
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
        --replies FILE    answer packets to a VIP that no service serves as the gateway
                          does (RST, ICMP port/protocol unreachable, echo reply) and write
                          the answers to FILE (same link type); they never go to OUT.pcap

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
