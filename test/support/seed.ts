// The seed's rules (/work/shared/seed/SUMMARY.md), exactly as `ipvsadm-save -n` prints them.
export const SEED_RULES_TEXT = [
  '-A -t 202.103.106.5:80 -s wrr',
  '-a -t 202.103.106.5:80 -r 172.16.0.2:80 -m -w 1',
  '-a -t 202.103.106.5:80 -r 172.16.0.3:8000 -m -w 2',
  '-A -t 202.103.106.5:21 -s wrr',
  '-a -t 202.103.106.5:21 -r 172.16.0.3:21 -m -w 1',
].join('\n') + '\n';
