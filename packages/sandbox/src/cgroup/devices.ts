// The device nodes a sandbox may open: runc's (and so Docker's) default allowlist. CAP_MKNOD stays
// (images carry device nodes, and `mknod` in a RUN step must work), so this is what stands between
// a node the command makes and the host's hardware, together with nodev on every mount but /dev.
// "m" for every c and b device lets such nodes be created (and committed to a layer), never opened.
export const allowedDevices: readonly string[] = [
  'c *:* m', // mknod of any character device
  'b *:* m', // mknod of any block device
  'c 1:3 rwm', // /dev/null
  'c 1:5 rwm', // /dev/zero
  'c 1:7 rwm', // /dev/full
  'c 1:8 rwm', // /dev/random
  'c 1:9 rwm', // /dev/urandom
  'c 5:0 rwm', // /dev/tty
  'c 5:1 rwm', // /dev/console
  'c 5:2 rwm', // /dev/ptmx
  'c 136:* rwm', // /dev/pts/*
  'c 10:200 rwm', // /dev/net/tun
];
