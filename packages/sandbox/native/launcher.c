// tsbuild-launcher: runs one command in fresh namespaces over an overlay root.
//
// Why C: namespaces belong to threads, and Node is multithreaded. unshare/setns/pivot_root from
// Node either affect one thread only or abort the runtime, so a tiny single-threaded helper does it.
//
// Protocol (see src/spec.ts): the spec arrives on fd 3 as NUL-terminated "key=value" tokens until EOF.
// The outcome leaves on fd 4 as one line:
//   "exit N" | "signal N"         the command ended
//   "error CODE MESSAGE"          the command could not start (CODE 126/127)
//   "setup MESSAGE"               the sandbox could not be built (an infrastructure failure)
// The first line written wins; later lines (e.g. from the launcher when init was killed) are fallbacks.
// Before that, the launcher writes "pid N" (the host pid of PID 1, or of the command in exec mode): with
// an init as soon as it exists, otherwise once the command has exec'd (not at all if it could not start);
// readers skip "pid" lines when looking for the outcome.
//
// Modes: run (default) builds a new container as below. exec (spec key exec=PID) joins the namespaces
// of the running container whose PID 1 has host pid PID (cgroup, ipc, uts, net, pid, mnt) and runs
// the command there, with the same credentials, capabilities and seccomp filter as in run mode.
// tty=1 gives the command a pseudo-terminal from the container's own devpts; the launcher relays it
// to its fds 0/1 (raw mode and window size follow fd 0 when that is a terminal).
//
// Process tree, as Docker's: the command is PID 1 of the new pid namespace (it gets only the signals
// it has a handler for, and reaps only what it waits for), unless init=1 (`run --init`) puts a
// minimal init in front of it, as docker-init/tini do:
//   launcher (host pid ns)  ─ the child below builds the root (overlay, /proc, /dev, /sys, binds,
//     │                       pivot_root) and then either
//     └─ command (PID 1)      execs the command: the launcher forwards signals to it and reports
//                             how it ended;
//     └─ init (PID 1)         or, with init=1, stays as init: reaps every orphan, forwards signals
//          └─ command         to the command, exits with the command's status.
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/bpf.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/nsfs.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <termios.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define SPEC_FD 3
#define STATUS_FD 4
#define SPEC_MAX (64 << 20)

// The new mount API: glibc 2.36's wrappers clash with <linux/mount.h>, so call the syscalls directly.
#ifndef SYS_open_tree
#define SYS_open_tree 428
#define SYS_move_mount 429
#define SYS_fsopen 430
#define SYS_fsconfig 431
#define SYS_fsmount 432
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#define X_FSOPEN_CLOEXEC 0x1
#define X_FSCONFIG_SET_FLAG 0
#define X_FSCONFIG_SET_STRING 1
#define X_FSCONFIG_CMD_CREATE 6
#define X_FSMOUNT_CLOEXEC 0x1
#define X_MOVE_MOUNT_F_EMPTY_PATH 0x4
#define X_MOVE_MOUNT_T_EMPTY_PATH 0x40
#define X_OPEN_TREE_CLONE 1
#define X_OPEN_TREE_CLOEXEC O_CLOEXEC
#define X_AT_RECURSIVE 0x8000
#define X_MOUNT_ATTR_RDONLY 0x1
#define X_MOUNT_ATTR_NOSUID 0x2
#define X_MOUNT_ATTR_NODEV 0x4
#define X_MOUNT_ATTR_NOEXEC 0x8
struct x_mount_attr { unsigned long long attr_set, attr_clr, propagation, userns_fd; };

struct mnt { int tmpfs; char *src, *tgt; int ro; char *size; int file; char *mode; int noexec; int norec; };

struct spec {
  char **lowers; int nlowers;
  char *upper, *work, *rootdir;
  char **argv; int argc;
  char **env; int nenv;
  char *cwd, *hostname;
  uid_t uid; gid_t gid;
  gid_t *groups; int ngroups;
  int newnet, volatile_upper;
  char *hosts, *resolv, *hostnamefile;
  struct mnt *mounts; int nmounts;
  char **cgprocs; int ncg;
  char **cgmounts; int ncgm;  // "NAME:DIR": the run's cgroup DIR shown at /sys/fs/cgroup/NAME ("" = itself)
  char *devcgroup; char **devallow; int ndevallow;
  pid_t execpid, netnspid;
  int tty;
  int mkcwd;  // make cwd (root's, 0755) when the root lacks it, as `docker run -w` does
  int init;  // run a reaping, forwarding init as PID 1 in front of the command (`run --init`)
  // netholder mode (see holder_main); netraw=0 drops CAP_NET_RAW from the command's set.
  int netholder, nonetraw;
  char **helper; int nhelper;
  int spawner;  // netholder: starts the container's launcher too (see launch_container)
  char ttyslave[64];
  // /dev/shm size ("65536k" unless shmsize= says otherwise) and setrlimit()s for the command.
  char shmsize[32];
  struct { int res; struct rlimit lim; } rlimits[16]; int nrlimits;
  // rootless=1: inside a user namespace (see rootless_* and userns_main).
  int rootless;
  int devrw;  // /dev stays writable: a device allowlist (cgroup) or a user namespace guards its nodes
};

static struct spec S;

// ---- reporting -------------------------------------------------------------------------------

static void status(const char *fmt, ...) {
  char buf[4096];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (n > (int)sizeof buf - 2) n = sizeof buf - 2;
  buf[n++] = '\n';
  // One write() so that lines from different processes never interleave.
  (void)!write(STATUS_FD, buf, n);
}

__attribute__((noreturn)) static void die(const char *fmt, ...) {
  char msg[3000];
  int e = errno;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  status("setup %s: %s", msg, strerror(e));
  _exit(125);
}

// ---- spec parsing: tokens "key=value\0" ---------------------------------------------------------

static void push(char ***arr, int *n, char *v) {
  *arr = realloc(*arr, sizeof(char *) * (*n + 2));
  if (!*arr) die("out of memory");
  (*arr)[(*n)++] = v;
  (*arr)[*n] = NULL;  // argv/env must be NULL-terminated for execve
}

static long num(const char *s) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || *end || end == s || v < 0) { errno = EINVAL; die("bad number '%s' in spec", s); }
  return v;
}

static rlim_t rlim_value(const char *s) {
  return !strcmp(s, "inf") ? RLIM_INFINITY : (rlim_t)num(s);
}

// "RESOURCE:SOFT:HARD" with RESOURCE an RLIMIT_* number, SOFT and HARD numbers or "inf".
static void parse_rlimit(char *v) {
  char *soft = strchr(v, ':');
  char *hard = soft ? strchr(soft + 1, ':') : NULL;
  int full = S.nrlimits >= (int)(sizeof S.rlimits / sizeof S.rlimits[0]);
  if (!hard || full) { errno = EINVAL; die("bad rlimit '%s'", v); }
  *soft++ = 0;
  *hard++ = 0;
  long res = num(v);
  if (res >= RLIM_NLIMITS) { errno = EINVAL; die("bad rlimit resource %ld", res); }
  struct rlimit lim = { .rlim_cur = rlim_value(soft), .rlim_max = rlim_value(hard) };
  if (lim.rlim_cur > lim.rlim_max) { errno = EINVAL; die("rlimit soft above hard"); }
  S.rlimits[S.nrlimits].res = (int)res;
  S.rlimits[S.nrlimits].lim = lim;
  S.nrlimits++;
}

static void parse_spec(void) {
  size_t cap = 65536, len = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (len + 1 >= cap) {
      if (cap >= SPEC_MAX) { errno = E2BIG; die("spec too large"); }
      cap *= 2;
      buf = realloc(buf, cap);
    }
    if (!buf) die("out of memory");
    ssize_t r = read(SPEC_FD, buf + len, cap - len - 1);
    if (r < 0) { if (errno == EINTR) continue; die("read spec"); }
    if (r == 0) break;
    len += r;
  }
  close(SPEC_FD);
  buf[len] = 0;
  // A whole spec ends with the token "end=1" (spec.ts). Read up to EOF, a spec whose writer was killed mid-write
  // (before our PDEATHSIG was armed) is cut short: its head alone may be runnable, without the namespace to join,
  // the cgroups or the capabilities to drop that its tail held.
  static const char end[] = "end=1";
  if (len < sizeof end || memcmp(buf + len - sizeof end, end, sizeof end) || (len > sizeof end && buf[len - sizeof end - 1])) {
    errno = EPIPE;
    die("spec truncated (its writer ended before it was whole)");
  }
  len -= sizeof end;
  struct mnt *cur = NULL;
  for (size_t i = 0; i < len;) {
    char *tok = buf + i;
    i += strlen(tok) + 1;
    char *v = strchr(tok, '=');
    if (!v) { errno = EINVAL; die("bad spec token '%s'", tok); }
    *v++ = 0;
    if (!strcmp(tok, "lower")) push(&S.lowers, &S.nlowers, v);
    else if (!strcmp(tok, "upper")) S.upper = v;
    else if (!strcmp(tok, "work")) S.work = v;
    else if (!strcmp(tok, "volatile")) S.volatile_upper = !strcmp(v, "1");
    else if (!strcmp(tok, "rootdir")) S.rootdir = v;
    else if (!strcmp(tok, "arg")) push(&S.argv, &S.argc, v);
    else if (!strcmp(tok, "env")) push(&S.env, &S.nenv, v);
    else if (!strcmp(tok, "cwd")) S.cwd = v;
    else if (!strcmp(tok, "hostname")) S.hostname = v;
    else if (!strcmp(tok, "uid")) S.uid = num(v);
    else if (!strcmp(tok, "gid")) S.gid = num(v);
    else if (!strcmp(tok, "group")) {
      S.groups = realloc(S.groups, sizeof(gid_t) * (S.ngroups + 1));
      if (!S.groups) die("out of memory");
      S.groups[S.ngroups++] = num(v);
    }
    else if (!strcmp(tok, "net")) S.newnet = !strcmp(v, "none");
    else if (!strcmp(tok, "hosts")) S.hosts = v;
    else if (!strcmp(tok, "resolv")) S.resolv = v;
    else if (!strcmp(tok, "hostnamefile")) S.hostnamefile = v;
    else if (!strcmp(tok, "cgroup")) push(&S.cgprocs, &S.ncg, v);
    else if (!strcmp(tok, "cgmount")) push(&S.cgmounts, &S.ncgm, v);
    else if (!strcmp(tok, "devcgroup")) S.devcgroup = v;
    else if (!strcmp(tok, "devallow")) push(&S.devallow, &S.ndevallow, v);
    else if (!strcmp(tok, "mount")) {
      S.mounts = realloc(S.mounts, sizeof(struct mnt) * (S.nmounts + 1));
      if (!S.mounts) die("out of memory");
      cur = &S.mounts[S.nmounts++];
      memset(cur, 0, sizeof *cur);
      cur->tmpfs = !strcmp(v, "tmpfs");
    }
    else if (cur && !strcmp(tok, "msource")) cur->src = v;
    else if (cur && !strcmp(tok, "mtarget")) cur->tgt = v;
    else if (cur && !strcmp(tok, "mro")) cur->ro = !strcmp(v, "1");
    else if (cur && !strcmp(tok, "msize")) cur->size = v;
    else if (cur && !strcmp(tok, "mkind")) cur->file = !strcmp(v, "file");
    else if (cur && !strcmp(tok, "mmode")) cur->mode = v;
    else if (cur && !strcmp(tok, "mnoexec")) cur->noexec = !strcmp(v, "1");
    else if (cur && !strcmp(tok, "mnorec")) cur->norec = !strcmp(v, "1");
    else if (!strcmp(tok, "exec")) S.execpid = num(v);
    else if (!strcmp(tok, "netns")) S.netnspid = num(v);
    else if (!strcmp(tok, "netholder")) S.netholder = !strcmp(v, "1");
    else if (!strcmp(tok, "helper")) push(&S.helper, &S.nhelper, v);
    else if (!strcmp(tok, "spawner")) S.spawner = !strcmp(v, "1");
    else if (!strcmp(tok, "netraw")) S.nonetraw = !strcmp(v, "0");
    else if (!strcmp(tok, "tty")) S.tty = !strcmp(v, "1");
    else if (!strcmp(tok, "shmsize")) snprintf(S.shmsize, sizeof S.shmsize, "%ld", num(v));
    else if (!strcmp(tok, "rlimit")) parse_rlimit(v);
    else if (!strcmp(tok, "rootless")) S.rootless = !strcmp(v, "1");
    else if (!strcmp(tok, "devrw")) S.devrw = !strcmp(v, "1");
    else if (!strcmp(tok, "init")) S.init = !strcmp(v, "1");
    else if (!strcmp(tok, "mkcwd")) S.mkcwd = !strcmp(v, "1");
    else { errno = EINVAL; die("unknown spec key '%s'", tok); }
  }
  if (S.execpid) {
    if (!S.cwd || S.argc == 0) { errno = EINVAL; die("exec spec lacks cwd or argv"); }
    return;
  }
  if (S.netholder) return;
  if (!S.upper || !S.work || !S.rootdir || !S.cwd || S.argc == 0 || S.nlowers == 0) {
    errno = EINVAL;
    die("spec lacks upper, work, rootdir, cwd, a lowerdir or argv");
  }
}

// ---- root filesystem ----------------------------------------------------------------------------

static char *in_root(const char *rel) {
  static char buf[PATH_MAX];
  if (snprintf(buf, sizeof buf, "%s/%s", S.rootdir, rel) >= (int)sizeof buf) { errno = ENAMETOOLONG; die("%s", rel); }
  return buf;
}

// ---- rootless: what differs inside a user namespace (spec key rootless=1) -------------------------
// The CLI runs in a user namespace of its own (userns_main); the root of that namespace may mount
// overlay (kernel >= 5.11), tmpfs, proc and binds in the mount namespaces it makes, but not set
// trusted.* xattrs, make device nodes, or map ids that its namespace does not map.

// Overlay keeps its opaque markers in user.overlay.* instead of trusted.overlay.* (userxattr).
static void rootless_overlay_options(int fs) {
  if (S.rootless && syscall(SYS_fsconfig, fs, X_FSCONFIG_SET_FLAG, "userxattr", NULL, 0) < 0)
    die("overlay userxattr (rootless needs kernel >= 5.11)");
}

// mknod of a device is refused in a user namespace: bind the host's node onto an empty file.
static void rootless_bind_dev(const char *name) {
  char p[PATH_MAX], host[64];
  snprintf(p, sizeof p, "%s/dev/%s", S.rootdir, name);
  snprintf(host, sizeof host, "/dev/%s", name);
  int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0666);
  if (fd < 0) die("create /dev/%s", name);
  close(fd);
  if (mount(host, p, NULL, MS_BIND, NULL) < 0) die("bind %s", host);
}

// devpts's gid=5 (tty) is an error where gid 5 is not mapped (a single id mapping).
static int rootless_devpts_without_tty_gid(void) {
  if (!S.rootless || errno != EINVAL) return 0;
  const char *opts = "newinstance,ptmxmode=0666,mode=0620";
  return mount("devpts", in_root("dev/pts"), "devpts", MS_NOSUID | MS_NOEXEC, opts) == 0;
}

// With a single id mapping setgroups is denied in the namespace (the kernel's rule for unprivileged
// gid maps): the command keeps the groups it has, which map to nothing there.
static int rootless_groups_denied(void) {
  return S.rootless && errno == EPERM && S.ngroups == 0;
}

// Appends overlay's escaped form of a path (',' ':' '\' need a backslash) to an option string.
static int append_escaped(char *dst, size_t cap, size_t *len, const char *s) {
  for (; *s; s++) {
    if (*s == ',' || *s == ':' || *s == '\\') { if (*len + 1 >= cap) return -1; dst[(*len)++] = '\\'; }
    if (*len + 1 >= cap) return -1;
    dst[(*len)++] = *s;
  }
  dst[*len] = 0;
  return 0;
}

static void fs_log(int fsfd, char *out, size_t cap) {
  // The new mount API keeps the kernel's reason for a failure in a log readable from the fd.
  size_t len = 0;
  out[0] = 0;
  char line[512];
  ssize_t r;
  while ((r = read(fsfd, line, sizeof line - 1)) > 0 && len + r + 2 < cap) {
    line[r] = 0;
    len += snprintf(out + len, cap - len, "%s%s", len ? "; " : "", line);
  }
}

static void mount_overlay(void) {
  // fsconfig("lowerdir+") (kernel >= 6.8) passes each layer separately: no 4095-byte option limit.
  int fs = syscall(SYS_fsopen, "overlay", X_FSOPEN_CLOEXEC);
  if (fs < 0) die("fsopen(overlay)");
  int lowerplus = 1;
  for (int i = 0; i < S.nlowers && lowerplus; i++) {
    if (syscall(SYS_fsconfig, fs, X_FSCONFIG_SET_STRING, "lowerdir+", S.lowers[i], 0) < 0) {
      if (errno == EINVAL && i == 0) lowerplus = 0;  // older kernel: fall back to one option string
      else die("overlay lowerdir %s", S.lowers[i]);
    }
  }
  if (!lowerplus) {
    // mount(2) silently truncates option data at 4095 bytes and a truncated lowerdir list can
    // SUCCEED with the wrong layers: build the string ourselves and refuse when it does not fit.
    static char opt[4096];
    size_t len = 0;
    opt[0] = 0;
    for (int i = 0; i < S.nlowers; i++) {
      if (i) {  // the separator itself is not escaped
        if (len + 2 >= sizeof opt) goto toolong;
        opt[len++] = ':';
        opt[len] = 0;
      }
      if (append_escaped(opt, sizeof opt, &len, S.lowers[i]) < 0) goto toolong;
    }
    if (syscall(SYS_fsconfig, fs, X_FSCONFIG_SET_STRING, "lowerdir", opt, 0) < 0) die("overlay lowerdir");
    goto lowers_done;
  toolong:
    errno = E2BIG;
    die("%d lowerdirs do not fit in the 4095-byte overlay option limit of this kernel (< 6.8)", S.nlowers);
  }
lowers_done:;
  const char *kv[][2] = {
    {"upperdir", S.upper}, {"workdir", S.work},
    // Without these the upperdir is not a self-contained diff (redirects, metacopy-only files).
    // Rootless: "off" still follows redirects, which the kernel refuses with userxattr.
    {"redirect_dir", S.rootless ? "nofollow" : "off"}, {"metacopy", "off"}, {"index", "off"},
  };
  for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
    if (syscall(SYS_fsconfig, fs, X_FSCONFIG_SET_STRING, kv[i][0], kv[i][1], 0) < 0)
      die("overlay %s=%s", kv[i][0], kv[i][1]);
  rootless_overlay_options(fs);
  // Unmounting a non-volatile overlay syncs the WHOLE upper filesystem (ovl_sync_fs), so a
  // build step's exit waited for every dirty page on the disk, the build's own background layer
  // writes included: 300 ms after a tiny RUN, seconds after a big one. A build step's upperdir
  // needs no sync: it is read back from the page cache into a layer blob that is fsynced on its
  // own (a SIGKILL keeps the page cache), and its work dir is thrown away, so the kernel's
  // "volatile" marker in it never blocks a later mount. Kernels before 5.10 lack the flag.
  if (S.volatile_upper && syscall(SYS_fsconfig, fs, X_FSCONFIG_SET_FLAG, "volatile", NULL, 0) < 0 && errno != EINVAL)
    die("overlay volatile");
  if (syscall(SYS_fsconfig, fs, X_FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
    int e = errno;
    char why[1500];
    fs_log(fs, why, sizeof why);
    errno = e;
    die("mount overlay (upper %s) [%s]", S.upper, why);
  }
  // nodev: there is no devices cgroup here, and CAP_MKNOD stays (builds may create device nodes in
  // layers), so a node made in the root must not open the host's disk. Only /dev's nodes work.
  int m = syscall(SYS_fsmount, fs, X_FSMOUNT_CLOEXEC, X_MOUNT_ATTR_NODEV);
  if (m < 0) die("fsmount overlay");
  if (syscall(SYS_move_mount, m, "", AT_FDCWD, S.rootdir, X_MOVE_MOUNT_F_EMPTY_PATH) < 0) die("move overlay to %s", S.rootdir);
  close(m);
  close(fs);
}

static void mknod_dev(const char *name, int major, int minor) {
  if (S.rootless) { rootless_bind_dev(name); return; }
  char p[PATH_MAX];
  snprintf(p, sizeof p, "%s/dev/%s", S.rootdir, name);
  if (mknod(p, S_IFCHR | 0666, makedev(major, minor)) < 0) die("mknod /dev/%s", name);
}

// Opens directory `rel` below dirfd ("" for dirfd itself) without following any symlink, magic
// or not, and without leaving dirfd.
static int open_beneath(int dirfd, const char *rel) {
  struct open_how how = {
    .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
    .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
  };
  return syscall(SYS_openat2, dirfd, *rel ? rel : ".", &how, sizeof how);
}

static void symlink_dev(const char *target, const char *name) {
  char p[PATH_MAX];
  snprintf(p, sizeof p, "%s/dev/%s", S.rootdir, name);
  if (symlink(target, p) < 0) die("symlink /dev/%s", name);
}

// /dev as runc makes it (and so Docker's and BuildKit's RUN): a tmpfs, nosuid,strictatime,mode=755,
// size=65536k, writable, without nodev (its own nodes must open), not in the layer. A node a command
// makes there opens only what the device allowlist lets it (cgroup, devices.ts): with none (no cgroups
// mounted), /dev is remounted read-only instead, so that no new node can appear where nodes are honoured.
// In a user namespace (rootless) no device node can be made at all.
static void mount_dev(void) {
  if (mount("tmpfs", in_root("dev"), "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k") < 0) die("mount /dev");
  umask(0);  // or mknod's 0666 becomes 0644
  mknod_dev("null", 1, 3);
  mknod_dev("zero", 1, 5);
  mknod_dev("full", 1, 7);
  mknod_dev("random", 1, 8);
  mknod_dev("urandom", 1, 9);
  mknod_dev("tty", 5, 0);
  if (mkdir(in_root("dev/pts"), 0755) < 0) die("mkdir /dev/pts");
  if (mkdir(in_root("dev/shm"), 01777) < 0) die("mkdir /dev/shm");
  const char *pts = "newinstance,ptmxmode=0666,mode=0620,gid=5";
  if (mount("devpts", in_root("dev/pts"), "devpts", MS_NOSUID | MS_NOEXEC, pts) < 0 &&
      !rootless_devpts_without_tty_gid())
    die("mount /dev/pts");
  char shmopts[64];
  // size= in bytes when the spec gives one (--shm-size); docker's 64 MiB otherwise.
  snprintf(shmopts, sizeof shmopts, "mode=1777,size=%s", S.shmsize[0] ? S.shmsize : "65536k");
  if (mount("shm", in_root("dev/shm"), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, shmopts) < 0) die("mount /dev/shm");
  symlink_dev("pts/ptmx", "ptmx");
  symlink_dev("/proc/self/fd", "fd");
  symlink_dev("/proc/self/fd/0", "stdin");
  symlink_dev("/proc/self/fd/1", "stdout");
  symlink_dev("/proc/self/fd/2", "stderr");
  if (access("/proc/kcore", F_OK) == 0) symlink_dev("/proc/kcore", "core");  // runc adds it where it exists
  if (mkdir(in_root("dev/mqueue"), 0755) < 0) die("mkdir /dev/mqueue");
  // The run's own IPC namespace's queues (CLONE_NEWIPC), as Docker mounts them.
  if (mount("mqueue", in_root("dev/mqueue"), "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0 && !S.rootless)
    die("mount /dev/mqueue");
  umask(022);
  // Bind targets inside /dev (e.g. /dev/pipes/NAME for RUN heredocs) must exist in the tmpfs before
  // it turns read-only; the init layer's copy of them is hidden under it. They are made beneath the
  // tmpfs's fd, never through a link: the tmpfs holds our own (fd -> /proc/self/fd, stdin, ...),
  // which resolve on the host here, before pivot_root, and a target below one would be made in
  // whatever directory the link names there.
  int devfd = open(in_root("dev"), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (devfd < 0) die("open /dev");
  for (int i = 0; i < S.nmounts; i++) {
    struct mnt *m = &S.mounts[i];
    if (strncmp(m->tgt, "/dev/", 5)) continue;
    char rel[PATH_MAX];
    if (snprintf(rel, sizeof rel, "%s", m->tgt + 5) >= (int)sizeof rel) { errno = ENAMETOOLONG; die("%s", m->tgt); }
    for (char *c = rel;; c++) {
      if (*c && *c != '/') continue;
      char end = *c;
      *c = 0;
      char *slash = strrchr(rel, '/');
      if (slash) *slash = 0;
      int pfd = open_beneath(devfd, slash ? rel : "");
      if (pfd < 0) die("mount target %s", m->tgt);
      if (slash) *slash = '/';
      const char *name = slash ? slash + 1 : rel;
      if (!*name || !strcmp(name, ".") || !strcmp(name, "..")) { errno = EINVAL; die("mount target %s", m->tgt); }
      if (!end && m->file) {
        int fd = openat(pfd, name, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0 && errno != EEXIST) die("create %s", m->tgt);
        if (fd >= 0) close(fd);
      } else if (mkdirat(pfd, name, 0755) < 0 && errno != EEXIST) {
        die("mkdir %s", m->tgt);
      }
      close(pfd);
      *c = end;
      if (!end) break;
    }
  }
  close(devfd);
  if (S.devrw) return;
  // No allowlist: read-only, so that no new device node can appear where devices are honoured.
  if (mount(NULL, in_root("dev"), NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k") < 0) die("read-only /dev");
}

// Docker's masked and read-only paths: without them root in the sandbox could, e.g., write
// /proc/sys/kernel/core_pattern (a host-wide setting) with only DAC permissions.
static const char *masked[] = {
  "proc/asound", "proc/acpi", "proc/kcore", "proc/keys", "proc/latency_stats", "proc/timer_list",
  "proc/timer_stats", "proc/sched_debug", "proc/scsi", "sys/firmware", "sys/devices/virtual/powercap", NULL,
};
static const char *readonly[] = {
  "proc/bus", "proc/fs", "proc/irq", "proc/sys", "proc/sysrq-trigger", NULL,
};

static void mask_paths(void) {
  for (const char **p = masked; *p; p++) {
    struct stat st;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s", in_root(*p));
    if (lstat(path, &st) < 0) continue;
    if (S_ISDIR(st.st_mode)) {
      if (mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0") < 0) die("mask %s", *p);
    } else if (mount(in_root("dev/null"), path, NULL, MS_BIND, NULL) < 0) die("mask %s", *p);
  }
  for (const char **p = readonly; *p; p++) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s", in_root(*p));
    if (access(path, F_OK) < 0) continue;
    if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0) die("bind %s", *p);
    if (mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
      die("read-only %s", *p);
  }
}

static void bind_file(const char *src, const char *rel) {
  if (!src) return;
  if (mount(src, in_root(rel), NULL, MS_BIND, NULL) < 0) die("bind %s on /%s", src, rel);
  if (mount(NULL, in_root(rel), NULL, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
    die("mount flags of /%s", rel);
}

// Opens a path inside the root as the kernel resolves it with the root as "/": symlinks and ".."
// cannot lead out of it, whatever the image contains.
static int open_in_root(int rootfd, const char *path) {
  struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
  return syscall(SYS_openat2, rootfd, path, &how, sizeof how);
}

static void extra_mounts(void) {
  int rootfd = open(S.rootdir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) die("open root");
  for (int i = 0; i < S.nmounts; i++) {
    struct mnt *m = &S.mounts[i];
    int t = open_in_root(rootfd, m->tgt);
    if (t < 0) die("mount target %s", m->tgt);
    int mfd;
    if (m->tmpfs) {
      int fs = syscall(SYS_fsopen, "tmpfs", X_FSOPEN_CLOEXEC);
      if (fs < 0) die("fsopen tmpfs");
      if (m->size && syscall(SYS_fsconfig, fs, X_FSCONFIG_SET_STRING, "size", m->size, 0) < 0) die("tmpfs size %s", m->size);
      const char *mode = m->mode ? m->mode : "1777";
      if (syscall(SYS_fsconfig, fs, X_FSCONFIG_SET_STRING, "mode", mode, 0) < 0) die("tmpfs mode %s", mode);
      if (syscall(SYS_fsconfig, fs, X_FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) die("create tmpfs for %s", m->tgt);
      unsigned attr = X_MOUNT_ATTR_NOSUID | X_MOUNT_ATTR_NODEV;
      if (m->ro) attr |= X_MOUNT_ATTR_RDONLY;
      if (m->noexec) attr |= X_MOUNT_ATTR_NOEXEC;
      mfd = syscall(SYS_fsmount, fs, X_FSMOUNT_CLOEXEC, attr);
      if (mfd < 0) die("fsmount tmpfs for %s", m->tgt);
      close(fs);
    } else {
      // With the mounts beneath the source (MS_REC), unless asked without them (bind-nonrecursive).
      unsigned rec = m->norec ? 0 : X_AT_RECURSIVE;
      mfd = syscall(SYS_open_tree, AT_FDCWD, m->src, X_OPEN_TREE_CLONE | X_OPEN_TREE_CLOEXEC | rec);
      if (mfd < 0) die("bind source %s", m->src);
      // A bind keeps the host mount's flags, and CAP_MKNOD stays: on a host filesystem that honours
      // devices, `mknod disk b 8 0` on a cache mount would open the host's disk, and a setuid file a
      // host user left there would run as its owner. nodev+nosuid (and ro) on the whole tree: a
      // plain MS_REMOUNT would leave submounts as they were.
      struct x_mount_attr a = { .attr_set = X_MOUNT_ATTR_NOSUID | X_MOUNT_ATTR_NODEV };
      if (m->ro) a.attr_set |= X_MOUNT_ATTR_RDONLY;
      if (syscall(SYS_mount_setattr, mfd, "", AT_EMPTY_PATH | X_AT_RECURSIVE, &a, sizeof a) < 0)
        die("mount flags of bind %s", m->src);
    }
    if (syscall(SYS_move_mount, mfd, "", t, "", X_MOVE_MOUNT_F_EMPTY_PATH | X_MOVE_MOUNT_T_EMPTY_PATH) < 0)
      die("mount on %s", m->tgt);
    close(mfd);
    close(t);
  }
  close(rootfd);
}

// The run's own cgroup, read-only, at /sys/fs/cgroup, as Docker shows it: a tmpfs with one directory
// per v1 controller the run has a cgroup of its own in, each a bind of that cgroup's directory (on v2
// the run's directory itself). Runtimes that size themselves from it (the JVM, Node, Go) see the
// run's limits. Only the run's own directories: a controller it has no cgroup in would show the
// hierarchy tsbuild runs in, other runs included. Read-only, and without CAP_SYS_ADMIN the command
// cannot remount it: it can neither change its limits nor leave its cgroup. The tmpfs also hides the
// host's cgroups when /sys is a bind of the host's (see build_root). With the cgroup namespace the
// launcher made after joining, /proc/self/cgroup and mountinfo show these as "/".
static void mount_cgroups(void) {
  const char *top = "sys/fs/cgroup";
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s", in_root(top));
  const unsigned long fl = MS_NOSUID | MS_NODEV | MS_NOEXEC;
  if (mount("tmpfs", path, "tmpfs", fl, "mode=755,size=64k") < 0) die("mount /%s", top);
  for (int i = 0; i < S.ncgm; i++) {
    char *name = S.cgmounts[i], *colon = strchr(name, ':');
    if (!colon || memchr(name, '/', colon - name) || colon[1] != '/') { errno = EINVAL; die("bad cgroup mount '%s'", name); }
    if (colon != name) {
      *colon = 0;
      char sub[PATH_MAX];
      if (snprintf(sub, sizeof sub, "%s/%s", path, name) >= (int)sizeof sub) { errno = ENAMETOOLONG; die("%s", name); }
      if (mkdir(sub, 0755) < 0) die("mkdir /%s/%s", top, name);
      *colon = ':';
    }
  }
  if (mount(NULL, path, NULL, MS_REMOUNT | MS_RDONLY | fl, "mode=755,size=64k") < 0) die("read-only /%s", top);
  for (int i = 0; i < S.ncgm; i++) {
    char *name = S.cgmounts[i], *colon = strchr(name, ':');
    int mfd = syscall(SYS_open_tree, AT_FDCWD, colon + 1, X_OPEN_TREE_CLONE | X_OPEN_TREE_CLOEXEC);
    if (mfd < 0) die("open cgroup %s", colon + 1);
    struct x_mount_attr a = { .attr_set = X_MOUNT_ATTR_RDONLY | X_MOUNT_ATTR_NOSUID | X_MOUNT_ATTR_NODEV | X_MOUNT_ATTR_NOEXEC };
    if (syscall(SYS_mount_setattr, mfd, "", AT_EMPTY_PATH, &a, sizeof a) < 0) die("read-only cgroup %s", colon + 1);
    char tgt[PATH_MAX];
    *colon = 0;
    snprintf(tgt, sizeof tgt, "%s%s%s", path, *name ? "/" : "", name);
    *colon = ':';
    if (syscall(SYS_move_mount, mfd, "", AT_FDCWD, tgt, X_MOVE_MOUNT_F_EMPTY_PATH) < 0) die("mount cgroup on %s", tgt);
    close(mfd);
  }
}

static void build_root(void) {
  mount_overlay();
  if (mount("proc", in_root("proc"), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) die("mount /proc");
  mount_dev();
  // A fresh sysfs shows the sandbox's own network namespace; with the host network it shows the host's.
  if (mount("sysfs", in_root("sys"), "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
    if (mount("/sys", in_root("sys"), NULL, MS_BIND | MS_REC, NULL) < 0) die("bind /sys");
    struct x_mount_attr a = { .attr_set = X_MOUNT_ATTR_RDONLY | X_MOUNT_ATTR_NOSUID | X_MOUNT_ATTR_NODEV };
    if (syscall(SYS_mount_setattr, AT_FDCWD, in_root("sys"), X_AT_RECURSIVE, &a, sizeof a) < 0) die("read-only /sys");
  }
  mount_cgroups();
  mask_paths();
  bind_file(S.hosts, "etc/hosts");
  bind_file(S.resolv, "etc/resolv.conf");
  bind_file(S.hostnamefile, "etc/hostname");
  extra_mounts();

  // pivot_root(".", ".") stacks the old root on the new one; detaching it leaves no way back and
  // needs no directory for the old root (which would otherwise show up in the upperdir).
  if (chdir(S.rootdir) < 0) die("chdir root");
  if (syscall(SYS_pivot_root, ".", ".") < 0) die("pivot_root");
  if (umount2(".", MNT_DETACH) < 0) die("detach old root");
  if (chdir("/") < 0) die("chdir /");
}

static void loopback_up(void) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) die("socket");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strcpy(ifr.ifr_name, "lo");
  if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) die("get lo flags");
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) die("bring lo up");
  close(s);
}

// ---- the command --------------------------------------------------------------------------------

enum { STAGE_CREDS = 1, STAGE_CWD, STAGE_CWD_ESCAPE, STAGE_EXEC, STAGE_RLIMIT };
struct child_err { int stage; int err; };

// Docker's default capability set.
static const int keep_caps[] = {
  CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FSETID, CAP_FOWNER, CAP_MKNOD, CAP_NET_RAW, CAP_SETGID, CAP_SETUID,
  CAP_SETFCAP, CAP_SETPCAP, CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT, CAP_KILL, CAP_AUDIT_WRITE,
};

static int drop_privileges(void) {
  unsigned long long keep = 0;
  for (size_t i = 0; i < sizeof keep_caps / sizeof keep_caps[0]; i++) keep |= 1ULL << keep_caps[i];
  // Raw and packet sockets can hand-craft frames to the user-mode network helper, which forwards
  // them as its own host connections, 127.0.0.1 included: none with a link out of the sandbox.
  if (S.nonetraw) keep &= ~(1ULL << CAP_NET_RAW);
  for (int c = 0; c < 64; c++)
    if (!(keep & (1ULL << c)) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL) return -1;
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) return -1;
  if (setgroups(S.ngroups, S.groups) < 0 && !rootless_groups_denied()) return -1;
  if (setresgid(S.gid, S.gid, S.gid) < 0) return -1;
  struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
  struct __user_cap_data_struct d[2];
  memset(d, 0, sizeof d);
  d[0].effective = d[0].permitted = d[0].inheritable = (unsigned)keep;
  d[1].effective = d[1].permitted = d[1].inheritable = (unsigned)(keep >> 32);
  if (syscall(SYS_capset, &h, d) < 0) return -1;
  // For a non-root uid this also clears the effective and permitted sets, as Docker does.
  if (setresuid(S.uid, S.uid, S.uid) < 0) return -1;
  return 0;
}

// A small seccomp filter in the spirit of Docker's default profile: the calls that reach kernel
// state no namespace isolates, or that widen the attack surface, fail with EPERM.
//  - unshare/clone with CLONE_NEWUSER: a user namespace would hand the command a full capability
//    set (over its own namespaces) and with it most of the kernel's rarely-audited code.
//  - clone3: its flags sit in memory a filter cannot read; ENOSYS makes libc fall back to clone.
//  - keyctl/add_key/request_key (the keyring is not namespaced), bpf, perf_event_open,
//    userfaultfd, kexec_load, kexec_file_load.
//  - io_uring_setup/enter/register: a large source of kernel exploits, and its operations run
//    in kernel workers that this filter never sees (Docker's profile refuses it since 25.0).
// Installed while init's CAP_SYS_ADMIN is still held, so no_new_privs is not needed and setuid
// binaries inside keep working.
#if defined(__x86_64__)
#define AUDIT_ARCH_HERE AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define AUDIT_ARCH_HERE AUDIT_ARCH_AARCH64
#endif

static int install_seccomp(void) {
#ifdef AUDIT_ARCH_HERE
#define LD(f) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, f))
#define DENY_NR(nr) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM)
  struct sock_filter f[] = {
    LD(arch),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_HERE, 1, 0),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),  // another ABI (e.g. x32/ia32) could dodge the numbers below
    LD(nr),
#ifdef __x86_64__
    BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1),  // x32 syscalls share the arch value
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
#endif
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone3, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
    DENY_NR(SYS_keyctl), DENY_NR(SYS_add_key), DENY_NR(SYS_request_key), DENY_NR(SYS_bpf),
    DENY_NR(SYS_perf_event_open), DENY_NR(SYS_userfaultfd), DENY_NR(SYS_kexec_load),
    DENY_NR(SYS_io_uring_setup), DENY_NR(SYS_io_uring_enter), DENY_NR(SYS_io_uring_register),
#ifdef SYS_kexec_file_load
    DENY_NR(SYS_kexec_file_load),
#endif
    // unshare(flags) and clone(flags, ...): flags are the first argument (low 32 bits).
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_unshare, 1, 0),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, 0, 3),
    LD(args[0]),
    BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_NEWUSER, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = { .len = sizeof f / sizeof f[0], .filter = f };
  return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
#else
  return 0;
#endif
}

static const char *env_path(void) {
  for (int i = 0; i < S.nenv; i++)
    if (!strncmp(S.env[i], "PATH=", 5)) return S.env[i] + 5;
  return "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
}

// execvp with the sandbox's PATH (not ours) and without its /bin/sh fallback for ENOEXEC.
static int exec_command(void) {
  char *file = S.argv[0];
  char *const *envp = S.env ? S.env : (char *const[]){NULL};
  if (strchr(file, '/')) { execve(file, S.argv, envp); return errno; }
  const char *p = env_path();
  int saw_eacces = 0, last = ENOENT;
  while (1) {
    const char *end = strchrnul(p, ':');
    char full[PATH_MAX];
    size_t dl = end - p;
    if (dl == 0) dl = 1, p = ".";  // an empty PATH element means the current directory
    if (dl + strlen(file) + 2 <= sizeof full) {
      memcpy(full, p, dl);
      full[dl] = '/';
      strcpy(full + dl + 1, file);
      execve(full, S.argv, envp);
      if (errno == EACCES) saw_eacces = 1;
      else if (errno != ENOENT && errno != ENOTDIR) last = errno;
    }
    if (!*end) break;
    p = end + 1;
    if (p[-1] == ':' && !*p) { p = "."; }  // trailing ':' also means "."
  }
  return saw_eacces ? EACCES : last;
}

// Makes each missing directory of S.cwd (root's, 0755 under the launcher's umask), as docker's daemon
// does for `run -w`. Runs after pivot_root with only stdio, the error pipe and rootfd ("/") open: each
// parent is opened as the kernel resolves it with the container's root as "/" (symlinks stay inside it, no
// magic link), and the directory made beneath that fd. Errors are left to the chdir that follows.
static void make_cwd(int rootfd) {
  char path[PATH_MAX];
  if (rootfd < 0 || snprintf(path, sizeof path, "%s", S.cwd) >= (int)sizeof path) return;
  for (char *c = path + 1;; c++) {
    if (*c && *c != '/') continue;
    char end = *c;
    *c = 0;
    char *slash = strrchr(path, '/');
    *slash = 0;
    int pfd = open_in_root(rootfd, *path ? path : "/");
    *slash = '/';
    int made = pfd >= 0 && slash[1] && (mkdirat(pfd, slash + 1, 0755) == 0 || errno == EEXIST);
    if (pfd >= 0) close(pfd);
    *c = end;
    if (!made || !end) break;
  }
}

// Enters the working directory as root, resolved as make_cwd resolves it: with the container's root as "/"
// and no magic link. A plain chdir(2) as root would follow /proc/<pid>/cwd or /root of any process in the
// container, the non-dumpable init's included, which the user it runs as cannot. -1 and errno on failure.
static int enter_cwd_as_root(int rootfd) {
  if (rootfd < 0) return -1;
  int fd = open_in_root(rootfd, S.cwd);
  if (fd < 0) return -1;
  int r = fchdir(fd);
  int err = errno;
  close(fd);
  errno = err;
  return r;
}

__attribute__((noreturn)) static void command_main(int errw) {
  sigset_t none;
  sigemptyset(&none);
  for (int s = 1; s < NSIG; s++) signal(s, SIG_DFL);
  sigprocmask(SIG_SETMASK, &none, NULL);
  setsid();
  if (S.tty) {
    // The pty's slave becomes the command's controlling terminal and stdio; opened while still
    // root (devpts gives it to the opener of ptmx) and then handed to the command's uid.
    int t = open(S.ttyslave, O_RDWR);
    if (t < 0 || ioctl(t, TIOCSCTTY, 0) < 0) { struct child_err e = {STAGE_CREDS, errno}; (void)!write(errw, &e, sizeof e); _exit(126); }
    (void)!fchown(t, S.uid, -1);
    dup2(t, 0); dup2(t, 1); dup2(t, 2);
    if (t > 2) close(t);
  }
  // Nothing but stdio and the error pipe may cross into the command: a leaked host directory fd
  // would be a way out (CVE-2024-21626). Close before chdir so cwd cannot be /proc/self/fd/N.
  close(STATUS_FD);
  if (errw > 3) syscall(SYS_close_range, 3, errw - 1, 0);
  syscall(SYS_close_range, errw + 1, ~0U, 0);
  struct child_err ce = {0, 0};
  // While still root: a hard limit above the launcher's own needs CAP_SYS_RESOURCE (docker's --ulimit can raise).
  for (int i = 0; i < S.nrlimits; i++)
    if (setrlimit(S.rlimits[i].res, &S.rlimits[i].lim) < 0) { ce = (struct child_err){STAGE_RLIMIT, errno}; goto fail; }
  // The container's root, opened once for both (errno is open's if it fails), closed before anything runs
  // as the user.
  int rootfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (S.mkcwd) make_cwd(rootfd);
  // Entered while still root, as runc does: a user may start in a directory it cannot search (USER 1000
  // with WORKDIR /root). Refused for lack of rights, it is tried again as the user, who may have rights
  // root lacks (a root-squashed NFS mount).
  int cwd_later = enter_cwd_as_root(rootfd) < 0;
  if (rootfd >= 0) { int e = errno; close(rootfd); errno = e; }
  if (cwd_later && errno != EACCES && errno != EPERM) { ce = (struct child_err){STAGE_CWD, errno}; goto fail; }
  if (install_seccomp() < 0) { ce = (struct child_err){STAGE_CREDS, errno}; goto fail; }
  if (drop_privileges() < 0) { ce = (struct child_err){STAGE_CREDS, errno}; goto fail; }
  // A change of uid clears the parent-death signal: armed again, or a non-root command would outlive
  // the launcher (with no init above it, nothing else ends the pid namespace). Then, in case the
  // parent died before that: the reader of errw is the parent, so a write end with no reader left
  // (POLLERR) means it is gone.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  struct pollfd gone = { .fd = errw, .events = 0 };
  if (poll(&gone, 1, 0) > 0 && (gone.revents & POLLERR)) _exit(125);
  if (cwd_later && chdir(S.cwd) < 0) { ce = (struct child_err){STAGE_CWD, errno}; goto fail; }
  char wd[PATH_MAX];
  // After pivot_root a cwd outside the root reads back as "(unreachable)/...": refuse it.
  if (!getcwd(wd, sizeof wd) || wd[0] != '/') { ce = (struct child_err){STAGE_CWD_ESCAPE, errno ? errno : EPERM}; goto fail; }
  ce = (struct child_err){STAGE_EXEC, exec_command()};
fail:
  (void)!write(errw, &ce, sizeof ce);
  _exit(ce.stage == STAGE_EXEC && ce.err == ENOENT ? 127 : 126);
}

static const int forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH };

static void block_signals(sigset_t *set) {
  sigemptyset(set);
  sigaddset(set, SIGCHLD);
  for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++) sigaddset(set, forwarded[i]);
  sigprocmask(SIG_BLOCK, set, NULL);
}

static void report_child_error(struct child_err ce) {
  const char *cmd = S.argv[0];
  switch (ce.stage) {
  case STAGE_CREDS: status("error 126 cannot switch to uid %d gid %d: %s", S.uid, S.gid, strerror(ce.err)); break;
  case STAGE_RLIMIT: status("error 126 cannot set a resource limit (--ulimit): %s", strerror(ce.err)); break;
  case STAGE_CWD: status("error 126 cannot change to working directory %s: %s", S.cwd, strerror(ce.err)); break;
  case STAGE_CWD_ESCAPE: status("error 126 working directory %s is outside the container root", S.cwd); break;
  default: {
    // As runc words it (Go's exec.LookPath, then execve), which docker prints.
    int code = ce.err == ENOENT ? 127 : 126;
    if (!strchr(cmd, '/')) status("error %d exec: \"%s\": executable file not found in $PATH", code, cmd);
    else if (ce.err == ENOENT) status("error 127 exec: \"%s\": stat %s: no such file or directory", cmd, cmd);
    else if (ce.err == EACCES) status("error 126 exec: \"%s\": permission denied", cmd);
    else {
      char why[256];
      snprintf(why, sizeof why, "%s", strerror(ce.err));
      why[0] = (char)tolower((unsigned char)why[0]);
      status("error 126 exec %s: %s", cmd, why);
    }
  }
  }
}

// ---- terminals ----------------------------------------------------------------------------------

// A pty from the devpts of the mount namespace we are in (the container's, after pivot_root or setns).
static int open_pty(void) {
  int m = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (m < 0) die("open /dev/ptmx");
  int unlock = 0, n = -1;
  if (ioctl(m, TIOCSPTLCK, &unlock) < 0) die("unlock pty");
  if (ioctl(m, TIOCGPTN, &n) < 0) die("pty number");
  snprintf(S.ttyslave, sizeof S.ttyslave, "/dev/pts/%d", n);
  return m;
}

static void send_fd(int sock, int fd) {
  char c = 0;
  struct iovec iov = { .iov_base = &c, .iov_len = 1 };
  union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } u;
  memset(&u, 0, sizeof u);
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
  struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cm), &fd, sizeof(int));
  if (sendmsg(sock, &msg, MSG_NOSIGNAL) < 0) die("pass the pty to the launcher");
}

static int recv_fd(int sock) {
  char c;
  struct iovec iov = { .iov_base = &c, .iov_len = 1 };
  union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } u;
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
  ssize_t r;
  do r = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC); while (r < 0 && errno == EINTR);
  if (r <= 0) return -1;  // init died before it had a pty
  struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
  if (!cm || cm->cmsg_type != SCM_RIGHTS) return -1;
  int fd;
  memcpy(&fd, CMSG_DATA(cm), sizeof(int));
  return fd;
}

static struct termios saved_tio;
static int raw_set;

static void restore_tty(void) {
  if (raw_set) tcsetattr(0, TCSAFLUSH, &saved_tio);
  raw_set = 0;
}

static void copy_winsize(int master) {
  struct winsize ws;
  if (ioctl(0, TIOCGWINSZ, &ws) == 0) ioctl(master, TIOCSWINSZ, &ws);
}

static int write_all(int fd, const char *b, ssize_t n) {
  while (n > 0) {
    ssize_t w = write(fd, b, n);
    if (w < 0) { if (errno == EINTR) continue; if (errno == EAGAIN) { poll(&(struct pollfd){ .fd = fd, .events = POLLOUT }, 1, -1); continue; } return -1; }
    b += w; n -= w;
  }
  return 0;
}

// Waits for `child` (forwarding signals to it) and, with a pty master, relays fd 0 -> master and
// master -> fd 1 until the child is gone and the master is drained. Returns the wait status.
static int relay_and_wait(pid_t child, int master, sigset_t *set) {
  int sfd = signalfd(-1, set, SFD_CLOEXEC);
  if (sfd < 0) die("signalfd");
  if (master >= 0 && isatty(0) && tcgetattr(0, &saved_tio) == 0) {
    struct termios raw = saved_tio;
    cfmakeraw(&raw);
    if (tcsetattr(0, TCSANOW, &raw) == 0) raw_set = 1;
    copy_winsize(master);
  }
  int in_open = master >= 0, m_open = master >= 0, done = 0, st = 0;
  char buf[16384];
  while (!done || m_open) {
    struct pollfd pf[3];
    int n = 0, ii = -1, mi = -1;
    pf[n++] = (struct pollfd){ .fd = sfd, .events = POLLIN };
    if (in_open && !done) { ii = n; pf[n++] = (struct pollfd){ .fd = 0, .events = POLLIN }; }
    if (m_open) { mi = n; pf[n++] = (struct pollfd){ .fd = master, .events = POLLIN }; }
    // Once the child is gone, drain what the pty still holds (other holders of the slave may keep
    // it open forever, so stop after a quiet moment).
    int r = poll(pf, n, done ? 200 : -1);
    if (r < 0) { if (errno == EINTR) continue; break; }
    if (r == 0) break;
    if (pf[0].revents & POLLIN) {
      struct signalfd_siginfo si;
      if (read(sfd, &si, sizeof si) == sizeof si) {
        if ((int)si.ssi_signo == SIGCHLD) {
          int w;
          if (!done && waitpid(child, &w, WNOHANG) == child) { st = w; done = 1; }
        } else if ((int)si.ssi_signo == SIGWINCH && master >= 0) copy_winsize(master);
        else if (!done) kill(child, si.ssi_signo);
      }
    }
    if (ii >= 0 && (pf[ii].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t k = read(0, buf, sizeof buf);
      if (k <= 0) in_open = 0;
      else if (write_all(master, buf, k) < 0) in_open = 0;
    }
    if (mi >= 0 && (pf[mi].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t k = read(master, buf, sizeof buf);
      if (k <= 0) m_open = 0;  // EIO: every holder of the slave has closed it
      else (void)write_all(1, buf, k);
    }
  }
  if (!done) while (waitpid(child, &st, 0) < 0 && errno == EINTR) {}
  restore_tty();
  close(sfd);
  return st;
}

// The child of the launcher in run mode: PID 1 of the new pid namespace. Builds the root, then
// becomes the command (errw: the launcher's error pipe), or with S.init stays as its init.
__attribute__((noreturn)) static void init_main(sigset_t *set, int alive, int ptysock, int errw) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  // If the launcher died before PDEATHSIG was armed, its end of `alive` is already closed.
  struct pollfd pf = { .fd = alive, .events = 0 };
  if (poll(&pf, 1, 0) > 0 && (pf.revents & POLLHUP)) _exit(125);
  close(alive);
  // Not dumpable: the command (same uid 0) cannot open /proc/1/fd/*, /proc/1/root or ptrace init.
  // (Without S.init this process becomes the command, and its execve makes it dumpable as usual.)
  // execve of the command resets this for the command itself.
  prctl(PR_SET_DUMPABLE, 0);
  build_root();
  if (S.hostname && sethostname(S.hostname, strlen(S.hostname)) < 0) die("sethostname");
  if (S.newnet) loopback_up();
  if (S.tty) {
    int m = open_pty();
    send_fd(ptysock, m);
    close(m);
  }
  if (ptysock >= 0) close(ptysock);
  if (!S.init) command_main(errw);

  int ep[2];
  if (pipe2(ep, O_CLOEXEC) < 0) die("pipe");
  pid_t child = fork();
  if (child < 0) die("fork command");
  if (child == 0) { close(ep[0]); command_main(ep[1]); }
  close(ep[1]);
  struct child_err ce = {0, 0};
  ssize_t n;
  do n = read(ep[0], &ce, sizeof ce); while (n < 0 && errno == EINTR);
  close(ep[0]);
  int failed = n == (ssize_t)sizeof ce;

  // PID 1: reap every orphan, forward signals to the command, leave when the command ends (the
  // kernel then kills whatever else is left in the namespace).
  for (;;) {
    siginfo_t si;
    int sig = sigwaitinfo(set, &si);
    if (sig < 0) continue;
    if (sig != SIGCHLD) { kill(child, sig); continue; }
    int st;
    pid_t p;
    while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
      if (p != child) continue;
      if (failed) { report_child_error(ce); _exit(WEXITSTATUS(st)); }
      if (WIFSIGNALED(st)) { status("signal %d", WTERMSIG(st)); _exit(128 + WTERMSIG(st)); }
      status("exit %d", WEXITSTATUS(st));
      _exit(WEXITSTATUS(st));
    }
  }
}

__attribute__((noreturn)) static void report_wait(int st, int failed, struct child_err ce) {
  if (failed) { report_child_error(ce); _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 126); }
  if (WIFSIGNALED(st)) { status("signal %d", WTERMSIG(st)); _exit(128 + WTERMSIG(st)); }
  status("exit %d", WEXITSTATUS(st));
  _exit(WEXITSTATUS(st));
}

// The command is our child: EOF on errfd once it has exec'd (or died building the root, which reported
// "setup" itself), a child_err if it could not start. Its "pid" is reported only then, on EOF: a command
// that could not start never ran, as docker has it (`run -d` fails with 126/127, the container stays
// Created). Relays its terminal and signals until it ends, then reports how (run mode without init, and
// exec mode).
__attribute__((noreturn)) static void await_command(pid_t child, int errfd, int master, sigset_t *set) {
  struct child_err ce = {0, 0};
  ssize_t n;
  do n = read(errfd, &ce, sizeof ce); while (n < 0 && errno == EINTR);
  close(errfd);
  int failed = n == (ssize_t)sizeof ce;
  if (!failed) status("pid %d", (int)child);
  report_wait(relay_and_wait(child, master, set), failed, ce);
}

// exec mode: the command joins a running container (its PID 1 has host pid S.execpid).
__attribute__((noreturn)) static void exec_main(void) {
  static const char *names[] = { "cgroup", "ipc", "uts", "net", "pid", "mnt" };
  int fds[6];
  // Open all first: after entering the mount namespace, /proc is the container's.
  for (int i = 0; i < 6; i++) {
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/ns/%s", (int)S.execpid, names[i]);
    if ((fds[i] = open(p, O_RDONLY | O_CLOEXEC)) < 0) die("open %s (is the container running?)", p);
  }
  for (int i = 0; i < 6; i++) {
    if (setns(fds[i], 0) < 0) die("enter the %s namespace of pid %d", names[i], (int)S.execpid);
    close(fds[i]);
  }
  if (chdir("/") < 0) die("chdir /");
  sigset_t set;
  block_signals(&set);
  int master = S.tty ? open_pty() : -1;
  int ep[2];
  if (pipe2(ep, O_CLOEXEC) < 0) die("pipe");
  pid_t child = fork();
  if (child < 0) die("fork command");
  if (child == 0) {
    close(ep[0]);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    command_main(ep[1]);
  }
  close(ep[1]);
  await_command(child, ep[0], master, &set);
}

// ---- device allowlist on cgroup v2 ---------------------------------------------------------------

// cgroup v2 has no devices.allow: the allowlist is a BPF_PROG_TYPE_CGROUP_DEVICE program attached
// to the run's cgroup, consulted on every open and mknod of a device node by a process inside.
// It is built from the same rules as v1's list ("c 1:3 rwm", "b *:* m"; spec key devallow) and
// returns 1 (allow) when one rule covers the request, else 0 (EPERM).

static struct bpf_insn insn(__u8 code, __u8 dst, __u8 src, __s16 off, __s32 imm) {
  return (struct bpf_insn){ .code = code, .dst_reg = dst, .src_reg = src, .off = off, .imm = imm };
}

static long parse_dev_num(const char **p) {
  if (**p == '*') { (*p)++; return -1; }
  char *end;
  long v = strtol(*p, &end, 10);
  if (end == *p || v < 0) return -2;
  *p = end;
  return v;
}

static void attach_device_filter(void) {
  struct bpf_insn prog[16 + 8 * 64];
  int n = 0;
  // r2 = type (BPF_DEVCG_DEV_BLOCK/CHAR), r3 = access bits (MKNOD/READ/WRITE), r4 = major, r5 = minor
  prog[n++] = insn(BPF_LDX | BPF_MEM | BPF_W, 2, 1, 0, 0);
  prog[n++] = insn(BPF_ALU64 | BPF_MOV | BPF_X, 3, 2, 0, 0);
  prog[n++] = insn(BPF_ALU | BPF_AND | BPF_K, 2, 0, 0, 0xffff);
  prog[n++] = insn(BPF_ALU | BPF_RSH | BPF_K, 3, 0, 0, 16);
  prog[n++] = insn(BPF_LDX | BPF_MEM | BPF_W, 4, 1, 4, 0);
  prog[n++] = insn(BPF_LDX | BPF_MEM | BPF_W, 5, 1, 8, 0);
  if (S.ndevallow > 64) { errno = E2BIG; die("more than 64 device rules"); }
  for (int r = 0; r < S.ndevallow; r++) {
    const char *p = S.devallow[r];
    char type = *p++;
    if ((type != 'c' && type != 'b' && type != 'a') || *p++ != ' ') goto bad;
    long major = parse_dev_num(&p);
    if (major == -2 || *p++ != ':') goto bad;
    long minor = parse_dev_num(&p);
    if (minor == -2 || *p++ != ' ') goto bad;
    int acc = 0;
    for (; *p; p++) {
      if (*p == 'm') acc |= BPF_DEVCG_ACC_MKNOD;
      else if (*p == 'r') acc |= BPF_DEVCG_ACC_READ;
      else if (*p == 'w') acc |= BPF_DEVCG_ACC_WRITE;
      else goto bad;
    }
    // One block per rule: each test jumps past the block's "return 1" when it does not match.
    int jumps[4], nj = 0;
    if (type != 'a') {
      jumps[nj++] = n;
      prog[n++] = insn(BPF_JMP | BPF_JNE | BPF_K, 2, 0, 0, type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK);
    }
    // Every access asked for must be in the rule: (access & ~rule) == 0.
    prog[n++] = insn(BPF_ALU64 | BPF_MOV | BPF_X, 6, 3, 0, 0);
    prog[n++] = insn(BPF_ALU64 | BPF_AND | BPF_K, 6, 0, 0, ~acc & 7);
    jumps[nj++] = n; prog[n++] = insn(BPF_JMP | BPF_JNE | BPF_K, 6, 0, 0, 0);
    if (major >= 0) { jumps[nj++] = n; prog[n++] = insn(BPF_JMP | BPF_JNE | BPF_K, 4, 0, 0, (__s32)major); }
    if (minor >= 0) { jumps[nj++] = n; prog[n++] = insn(BPF_JMP | BPF_JNE | BPF_K, 5, 0, 0, (__s32)minor); }
    prog[n++] = insn(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 1);
    prog[n++] = insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
    for (int j = 0; j < nj; j++) prog[jumps[j]].off = (__s16)(n - jumps[j] - 1);
    continue;
  bad:
    errno = EINVAL;
    die("bad device rule '%s'", S.devallow[r]);
  }
  prog[n++] = insn(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0);
  prog[n++] = insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);

  static char log[8192];
  union bpf_attr load;
  memset(&load, 0, sizeof load);
  load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  load.insns = (__u64)(unsigned long)prog;
  load.insn_cnt = n;
  load.license = (__u64)(unsigned long)"Apache-2.0";
  load.log_buf = (__u64)(unsigned long)log;
  load.log_size = sizeof log;
  load.log_level = 1;
  int pfd = syscall(SYS_bpf, BPF_PROG_LOAD, &load, sizeof load);
  if (pfd < 0) die("load the device filter [%.200s]", log);
  int cg = open(S.devcgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cg < 0) die("open cgroup %s", S.devcgroup);
  union bpf_attr at;
  memset(&at, 0, sizeof at);
  at.target_fd = cg;
  at.attach_bpf_fd = pfd;
  at.attach_type = BPF_CGROUP_DEVICE;
  at.attach_flags = BPF_F_ALLOW_MULTI;  // programs of the cgroups above (systemd's) still apply too
  if (syscall(SYS_bpf, BPF_PROG_ATTACH, &at, sizeof at) < 0) die("attach the device filter to %s", S.devcgroup);
  close(cg);
  close(pfd);  // the attachment holds the program until the cgroup goes
}

// ---- running from a sealed copy ------------------------------------------------------------------

// CVE-2019-5736: a process in the sandbox that can reach the launcher's /proc/PID/exe (init, or the
// exec child before its execve, are in the sandbox's pid namespace) could open the binary on the
// host and, once it is no longer running, rewrite it: the next tsbuild run would run the attacker's
// code as root on the host. Non-dumpable processes already close /proc/PID/exe and /proc/PID/mem to
// the sandbox; as runc does, the launcher also re-executes itself from a sealed memfd copy, so that
// what /proc/PID/exe leads to is a private, unwritable copy and never the installed binary.
#define LAUNCHER_SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)
#define X_MFD_EXEC 0x10U

static int running_from_sealed_copy(void) {
  int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  int seals = fcntl(fd, F_GET_SEALS);
  close(fd);
  return seals == LAUNCHER_SEALS;
}

static void reexec_from_sealed_copy(char **argv, char **envp) {
  if (running_from_sealed_copy()) return;
  int src = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  if (src < 0) die("open /proc/self/exe");
  struct stat st;
  if (fstat(src, &st) < 0) die("stat /proc/self/exe");
  // MFD_EXEC (kernel >= 6.3): executable even where vm.memfd_noexec=1 seals new memfds noexec.
  int mem = memfd_create("tsbuild-launcher", MFD_CLOEXEC | MFD_ALLOW_SEALING | X_MFD_EXEC);
  if (mem < 0 && errno == EINVAL) mem = memfd_create("tsbuild-launcher", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  // vm.memfd_noexec=2 forbids executable memfds: run from the binary; being non-dumpable still
  // closes /proc/PID/exe to the sandbox.
  if (mem < 0 && errno == EACCES) { close(src); return; }
  if (mem < 0) die("memfd_create");
  for (off_t left = st.st_size; left > 0;) {
    ssize_t n = sendfile(mem, src, NULL, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) die("copy the launcher into a memfd");
    left -= n;
  }
  close(src);
  if (fcntl(mem, F_ADD_SEALS, LAUNCHER_SEALS) < 0) die("seal the launcher copy");
  fexecve(mem, argv, envp);  // an ELF binary: a close-on-exec fd is fine (execveat, AT_EMPTY_PATH)
  die("exec the sealed launcher copy");
}

// ---- network holder ------------------------------------------------------------------------------
// netholder mode: a private network namespace that outlives single runs (a build's RUN steps and a
// container join it with netns=PID), given outbound connectivity by a user-mode network helper
// (slirp4netns, argv from the "helper" tokens) that runs in the host's network namespace:
//   launcher (new net ns: lo up, ICMP datagram sockets for all gids)   holds the namespace
//     └─ helper, with fd 5: the new namespace, fd 6: write when ready, fd 7: EOF means quit
// "pid N" (our pid) is reported once the helper wrote to fd 6 (it has configured the namespace).
// We end when fd 0 (the caller's lifeline pipe) reaches EOF; the helper with us (fd 7 and
// PDEATHSIG). A helper that ends early is reported as "setup".
#define HOLDER_NS_FD 5
#define HOLDER_READY_FD 6
#define HOLDER_EXIT_FD 7

// This process becomes the helper (both forks of it, rootless or not): stdin /dev/null, stdout to stderr, and
// fds[] (namespace, ready, exit) at 5..7. dup2 clears O_CLOEXEC on the copy: these three, and only these, reach it.
__attribute__((noreturn)) static void exec_network_helper(const int fds[3]) {
  int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null < 0 || dup2(null, 0) < 0 || dup2(2, 1) < 0) die("stdio of the network helper");
  if (dup2(fds[0], HOLDER_NS_FD) < 0 || dup2(fds[1], HOLDER_READY_FD) < 0 || dup2(fds[2], HOLDER_EXIT_FD) < 0)
    die("fds of the network helper");
  execv(S.helper[0], S.helper);
  die("run the network helper %s", S.helper[0]);
}

// Rootless: returning to the host's network namespace (setns) needs CAP_SYS_ADMIN over it, which
// the root of our user namespace lacks. So the helper is forked before the unshare, stays in the
// host's namespace, and receives its three fds (namespace, ready, exit) over a socket.
static int rootless_helper_sock = -1;
static pid_t rootless_helper_pid = -1;

static void rootless_helper_prefork(void) {
  int sp[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) die("socketpair");
  pid_t self = getpid();
  rootless_helper_pid = fork();
  if (rootless_helper_pid < 0) die("fork the network helper");
  if (rootless_helper_pid > 0) { close(sp[1]); rootless_helper_sock = sp[0]; return; }
  close(sp[0]);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != self) _exit(125);
  int fds[3];
  // Each moved to 10 and up, out of the way of 5..7 (as holder_main does).
  for (int i = 0; i < 3; i++)
    if ((fds[i] = recv_fd(sp[1])) < 0 || (fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 10)) < 0)
      _exit(125);  // the holder gave up before it had a network
  close(sp[1]);
  exec_network_helper(fds);
}

static pid_t rootless_helper_start(int fds[3]) {
  for (int i = 0; i < 3; i++) send_fd(rootless_helper_sock, fds[i]);
  close(rootless_helper_sock);
  return rootless_helper_pid;
}

// A spawner holder (spec "spawner=1") also starts the launcher of the one container that uses its
// network, so that tsbuild (Node: a fork of a 50 MB process that blocks it until the exec) forks once
// per container, not twice. Its parent gives it the container's stdin, stdout and stderr (fds 5-7) and
// a pipe for the launcher's status (fd 8); once the network is up it reads "launch LEN\n" and a
// launcher spec of LEN bytes on its lifeline (fd 0), forks, and executes itself (the sealed copy) as
// that launcher, with those fds as 0-2 and 4 and the spec on a pipe as fd 3; "launched PID" reports it.
// The launcher's parent is then this holder: it dies with it (PDEATHSIG), as with tsbuild.
#define SPAWN_STATUS_FD 8
static int spawn_fds[4] = { -1, -1, -1, -1 };  // stdin, stdout, stderr, status: moved out of 5..8
static pid_t launched;

// The launcher could not be started: said where tsbuild waits for the launcher's report (its status pipe,
// as a "setup" line), whose EOF (the last copy closed here) ends the wait. Reported on our own status
// fd, tsbuild would wait for ever.
static void launch_failed(const char *what) {
  char buf[512];
  int n = snprintf(buf, sizeof buf, "setup the network holder cannot start the container's launcher: %s: %s\n",
                   what, strerror(errno));
  if (n > (int)sizeof buf - 1) n = sizeof buf - 1;
  if (spawn_fds[3] >= 0) (void)!write(spawn_fds[3], buf, n);
  for (int i = 0; i < 4; i++) close(spawn_fds[i]), spawn_fds[i] = -1;
}

static void launch_container(const char *spec, size_t len) {
  int sp[2];
  if (spawn_fds[0] < 0) return;
  if (pipe2(sp, O_CLOEXEC) < 0) { launch_failed("pipe"); return; }
  pid_t pid = fork();
  if (pid < 0) { int e = errno; close(sp[0]), close(sp[1]); errno = e; launch_failed("fork"); return; }
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    // dup2 clears O_CLOEXEC on the copies: these five, and only these, reach the launcher.
    if (dup2(spawn_fds[0], 0) < 0 || dup2(spawn_fds[1], 1) < 0 || dup2(spawn_fds[2], 2) < 0 ||
        dup2(sp[0], SPEC_FD) < 0 || dup2(spawn_fds[3], STATUS_FD) < 0)
      _exit(125);
    char *argv[] = { "tsbuild-init", NULL };
    char *envp[] = { NULL };
    execve("/proc/self/exe", argv, envp);
    char msg[] = "setup run the launcher: exec failed\n";
    (void)!write(STATUS_FD, msg, sizeof msg - 1);
    _exit(125);
  }
  close(sp[0]);
  for (int i = 0; i < 4; i++) close(spawn_fds[i]), spawn_fds[i] = -1;
  signal(SIGPIPE, SIG_IGN);  // a launcher that died before reading its spec: EPIPE, not our end
  launched = pid;
  status("launched %d", (int)pid);
  if (write_all(sp[1], spec, (ssize_t)len) < 0) kill(pid, SIGKILL);  // it reports nothing then: EOF says so
  close(sp[1]);
}

// The lifeline's bytes: "launch LEN\n" + LEN bytes of spec, once; anything after that is ignored.
static char *lifeline_buf;
static size_t lifeline_len, lifeline_cap;

static void lifeline_reset(void) {
  free(lifeline_buf);
  lifeline_buf = NULL;
  lifeline_len = lifeline_cap = 0;
}

// A request that cannot be served fails the launch (tsbuild hears why), not the holder: the network stays.
static void lifeline_data(const char *b, size_t n) {
  if (!S.spawner || launched || spawn_fds[0] < 0) return;
  if (lifeline_len + n > lifeline_cap) {
    size_t cap = lifeline_cap ? lifeline_cap : 65536;
    while (cap < lifeline_len + n) cap *= 2;
    char *grown = cap > SPEC_MAX + 64 ? (errno = E2BIG, NULL) : realloc(lifeline_buf, cap);
    if (!grown) { launch_failed("spec too large"); lifeline_reset(); return; }
    lifeline_buf = grown;
    lifeline_cap = cap;
  }
  memcpy(lifeline_buf + lifeline_len, b, n);
  lifeline_len += n;
  char *nl = memchr(lifeline_buf, '\n', lifeline_len);
  if (!nl) return;
  unsigned long len;
  if (sscanf(lifeline_buf, "launch %lu\n", &len) != 1) { errno = EINVAL; launch_failed("bad request"); lifeline_reset(); return; }
  // As parse_spec's bound for a spec that tsbuild hands the launcher itself.
  if (len + 1 >= SPEC_MAX) { errno = E2BIG; launch_failed("spec too large"); lifeline_reset(); return; }
  size_t head = (size_t)(nl + 1 - lifeline_buf);
  if (lifeline_len - head < len) return;
  launch_container(nl + 1, len);
  lifeline_reset();
}

__attribute__((noreturn)) static void holder_main(void) {
  if (S.spawner)
    for (int i = 0; i < 4; i++) {
      // Node leaves an 'ignore'd fd above 2 closed: the container's stdio is /dev/null then.
      int from = 5 + i, opened = -1;
      if (fcntl(from, F_GETFD) < 0 && errno == EBADF && i < 3)
        from = opened = open("/dev/null", (i == 0 ? O_RDONLY : O_WRONLY) | O_CLOEXEC);
      // Out of the way of 5..7 (the helper's) and close-on-exec: the helper must not hold the status pipe.
      if (from < 0 || (spawn_fds[i] = fcntl(from, F_DUPFD_CLOEXEC, 10)) < 0) die("the container's fd %d", 5 + i);
      close(opened >= 0 ? opened : from);
    }
  int hostns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (hostns < 0) die("open the host network namespace");
  if (S.rootless && S.nhelper) rootless_helper_prefork();
  if (unshare(CLONE_NEWNET) < 0) die("unshare the network namespace");
  loopback_up();
  // ping without CAP_NET_RAW, as Docker allows it: a setting of this namespace only. Best effort
  // (a read-only /proc/sys, as inside another container, costs only ping).
  int pg = open("/proc/sys/net/ipv4/ping_group_range", O_WRONLY | O_CLOEXEC);
  if (pg >= 0) { (void)!write(pg, "0 2147483647", 12); close(pg); }
  sigset_t set;
  block_signals(&set);
  pid_t helper = 0;
  int quit[2] = { -1, -1 };
  if (S.nhelper) {
    int rp[2], fds[3];
    if (pipe2(rp, O_CLOEXEC) < 0 || pipe2(quit, O_CLOEXEC) < 0) die("pipe");
    int ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (ns < 0) die("open the new network namespace");
    // Copies at 10 and up, out of the way of 5..7: a dup2 onto one of those would close it, and a
    // dup2 of an fd onto itself would leave its O_CLOEXEC.
    fds[0] = fcntl(ns, F_DUPFD_CLOEXEC, 10);
    fds[1] = fcntl(rp[1], F_DUPFD_CLOEXEC, 10);
    fds[2] = fcntl(quit[0], F_DUPFD_CLOEXEC, 10);
    if (fds[0] < 0 || fds[1] < 0 || fds[2] < 0) die("dup");
    pid_t self = getpid();
    helper = S.rootless ? rootless_helper_start(fds) : fork();
    if (helper < 0) die("fork the network helper");
    if (helper == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != self) _exit(125);
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, NULL);
      if (setns(hostns, CLONE_NEWNET) < 0) die("return to the host network namespace");
      exec_network_helper(fds);
    }
    close(rp[1]), close(quit[0]), close(ns), close(fds[0]), close(fds[1]), close(fds[2]);
    char c;
    ssize_t r;
    while ((r = read(rp[0], &c, 1)) < 0 && errno == EINTR) {}
    close(rp[0]);
    if (r != 1) {
      int st = 0;
      while (waitpid(helper, &st, 0) < 0 && errno == EINTR) {}
      if (WIFSIGNALED(st)) status("setup the network helper %s was killed by signal %d", S.helper[0], WTERMSIG(st));
      else status("setup the network helper %s failed (exit %d)", S.helper[0], WEXITSTATUS(st));
      _exit(125);
    }
  }
  close(hostns);
  status("pid %d", (int)getpid());
  int sfd = signalfd(-1, &set, SFD_CLOEXEC);
  if (sfd < 0) die("signalfd");
  for (;;) {
    struct pollfd pf[2] = { { .fd = 0, .events = POLLIN }, { .fd = sfd, .events = POLLIN } };
    if (poll(pf, 2, -1) < 0) { if (errno == EINTR) continue; break; }
    if (pf[0].revents) {
      char b[4096];
      ssize_t k = read(0, b, sizeof b);
      if (k <= 0 && !(k < 0 && errno == EINTR)) break;  // the caller is done (or gone)
      if (k > 0) lifeline_data(b, (size_t)k);
    }
    if (pf[1].revents & POLLIN) {
      struct signalfd_siginfo si;
      if (read(sfd, &si, sizeof si) != sizeof si) continue;
      if ((int)si.ssi_signo == SIGTERM) break;
      if ((int)si.ssi_signo != SIGCHLD) continue;
      int st;
      if (launched > 0 && waitpid(launched, &st, WNOHANG) == launched) launched = -1;  // it reported its end itself
      if (!helper) continue;
      if (waitpid(helper, &st, WNOHANG) == helper) {
        // A container we forked runs on without it (it can no longer reach out), as one that tsbuild forked
        // does: its launcher dies with us (PDEATHSIG), so we stay until the lifeline ends.
        if (launched > 0) { helper = 0; continue; }
        status("setup the network helper %s ended (%s %d)", S.helper[0], WIFSIGNALED(st) ? "signal" : "exit",
               WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
        _exit(125);
      }
    }
  }
  if (helper) {
    close(quit[1]);  // the helper's exit fd: it quits on its own
    kill(helper, SIGKILL);
    while (waitpid(helper, NULL, 0) < 0 && errno == EINTR) {}
  }
  status("exit 0");
  _exit(0);
}

// ---- rootless: one user namespace for the whole tsbuild process -----------------------------------
// "tsbuild-launcher userns PROGRAM ARGS...": bin/tsbuild starts this when it is not run by root.
// It enters a new user namespace in which the caller's uid and gid are 0 and its subordinate ranges
// (/etc/subuid, /etc/subgid; written by newuidmap/newgidmap, the setuid helpers of Debian's uidmap)
// are 1..N, then executes PROGRAM there with the caller's environment. Everything tsbuild does then
// sees the image's own ids: unpacking layers (chown), reading snapshots into tar headers, the
// overlays and namespaces of the sandboxes. Without ranges (or helpers) only the caller's own ids
// are mapped, with a warning of what fails. Started as uid 0 (root, or root of a user namespace
// already, as the CLI is once in ours): just exec.

struct idrange { unsigned long start, count; };

// The user's first range in a subordinate id file ("name:start:count" or "uid:start:count").
static int subid_range(const char *file, const char *user, unsigned long id, struct idrange *r) {
  FILE *f = fopen(file, "re");
  if (!f) return 0;
  char line[512], idtext[32];
  snprintf(idtext, sizeof idtext, "%lu", id);
  int found = 0;
  while (!found && fgets(line, sizeof line, f)) {
    char *save = NULL, *name = strtok_r(line, ":\n", &save), *start = strtok_r(NULL, ":\n", &save);
    char *count = strtok_r(NULL, ":\n", &save), *end1, *end2;
    if (!name || !start || !count || (strcmp(name, user) && strcmp(name, idtext))) continue;
    r->start = strtoul(start, &end1, 10);
    r->count = strtoul(count, &end2, 10);
    found = !*end1 && !*end2 && r->count > 0;
  }
  fclose(f);
  return found;
}

// The name of `uid` from /etc/passwd (the launcher is static: no NSS).
static void user_name(uid_t uid, char *out, size_t cap) {
  snprintf(out, cap, "%u", (unsigned)uid);
  FILE *f = fopen("/etc/passwd", "re");
  if (!f) return;
  char line[1024];
  while (fgets(line, sizeof line, f)) {
    char *save = NULL, *name = strtok_r(line, ":", &save), *pw = strtok_r(NULL, ":", &save);
    char *id = strtok_r(NULL, ":", &save);
    if (name && pw && id && strtoul(id, NULL, 10) == uid) { snprintf(out, cap, "%s", name); break; }
  }
  fclose(f);
}

// An executable `name` in $PATH (or the usual place of the uidmap helpers), into `out`.
static int find_tool(const char *name, char *out, size_t cap) {
  const char *path = getenv("PATH");
  char dirs[4096];
  snprintf(dirs, sizeof dirs, "%s:/usr/bin:/bin", path ? path : "");
  char *save = NULL;
  for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
    if (*d != '/') continue;
    snprintf(out, cap, "%s/%s", d, name);
    if (access(out, X_OK) == 0) return 1;
  }
  return 0;
}

static int write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = write(fd, text, strlen(text));
  close(fd);
  return n == (ssize_t)strlen(text) ? 0 : -1;
}

// Runs `tool PID 0 ID 1 1 START COUNT` (newuidmap/newgidmap) and waits for it.
static int run_idmap_tool(const char *tool, pid_t pid, unsigned long id, struct idrange r) {
  char a[6][32];
  snprintf(a[0], 32, "%d", (int)pid), snprintf(a[1], 32, "%lu", id);
  snprintf(a[2], 32, "%lu", r.start), snprintf(a[3], 32, "%lu", r.count);
  char *argv[] = { (char *)tool, a[0], "0", a[1], "1", "1", a[2], a[3], NULL };
  pid_t c = fork();
  if (c < 0) return -1;
  if (c == 0) { execv(tool, argv); _exit(127); }
  int st;
  while (waitpid(c, &st, 0) < 0) if (errno != EINTR) return -1;
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

__attribute__((noreturn)) static void userns_fail(const char *what) {
  fprintf(stderr, "ERROR: rootless: %s: %s\n", what, strerror(errno));
  _exit(125);
}

// Whether /proc/PID/KIND_map holds exactly "0 ID 1" and, with r.count, "1 r.start r.count".
static int map_is(pid_t pid, const char *kind, unsigned long id, struct idrange r) {
  char path[64], b[512];
  snprintf(path, sizeof path, "/proc/%d/%s_map", (int)pid, kind);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, b, sizeof b - 1);
  close(fd);
  if (n <= 0) return 0;
  b[n] = 0;
  unsigned long a[6];
  int got = sscanf(b, "%lu %lu %lu %lu %lu %lu", &a[0], &a[1], &a[2], &a[3], &a[4], &a[5]);
  if (got < 3 || a[0] != 0 || a[1] != id || a[2] != 1) return 0;
  return r.count ? got == 6 && a[3] == 1 && a[4] == r.start && a[5] == r.count : got == 3;
}

// Joins the user namespace of a live process of ours that maps exactly what we would map (another
// tsbuild command's, kept alive by a container's supervisor, say), so that every command sees the
// same namespace: `exec` and `--network container:` can only enter namespaces owned by the user
// namespace they run in. Returns 0 when there is none, and a new one must be made.
static int join_existing_userns(uid_t uid, gid_t gid, struct idrange ur, struct idrange gr) {
  struct stat self;
  if (stat("/proc/self/ns/user", &self) < 0) return 0;
  DIR *d = opendir("/proc");
  if (!d) return 0;
  struct dirent *e;
  int joined = 0;
  while (!joined && (e = readdir(d))) {
    char *end;
    long pid = strtol(e->d_name, &end, 10);
    struct stat st;
    char path[64];
    if (*end || pid <= 0) continue;
    snprintf(path, sizeof path, "/proc/%ld", pid);
    if (stat(path, &st) < 0 || st.st_uid != uid) continue;
    if (!map_is(pid, "uid", uid, ur) || !map_is(pid, "gid", gid, gr)) continue;
    snprintf(path, sizeof path, "/proc/%ld/ns/user", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    // Only a child of our own namespace (as tsbuild makes them): a user process's nested namespace
    // could show the same map from here.
    int parent = ioctl(fd, NS_GET_PARENT);
    struct stat pst;
    int child = parent >= 0 && fstat(parent, &pst) == 0 && pst.st_ino == self.st_ino && pst.st_dev == self.st_dev;
    if (parent >= 0) close(parent);
    if (child && fstat(fd, &st) == 0 && st.st_ino != self.st_ino && setns(fd, CLONE_NEWUSER) == 0) joined = 1;
    close(fd);
  }
  closedir(d);
  return joined;
}

__attribute__((noreturn)) static void userns_main(char **argv) {
  if (!argv[0]) { errno = EINVAL; userns_fail("usage: tsbuild-launcher userns PROGRAM ARGS..."); }
  uid_t uid = geteuid();
  gid_t gid = getegid();
  if (uid != 0) {
    char user[256], newuidmap[PATH_MAX], newgidmap[PATH_MAX];
    user_name(uid, user, sizeof user);
    struct idrange ur = {0, 0}, gr = {0, 0};
    int have_ranges = subid_range("/etc/subuid", user, uid, &ur) && subid_range("/etc/subgid", user, uid, &gr);
    int have_tools =
        find_tool("newuidmap", newuidmap, sizeof newuidmap) && find_tool("newgidmap", newgidmap, sizeof newgidmap);
    int ranges = have_ranges && have_tools;
    if (!ranges) {
      fprintf(stderr,
              "tsbuild: warning: rootless with a single id mapping (%s): only your own uid and gid exist, as root.\n"
              "  Files owned by any other user cannot be made: base images with such files, RUN useradd/adduser,\n"
              "  chown, USER <other>, COPY --chown fail. Add '%s:100000:65536' to /etc/subuid and /etc/subgid%s.\n",
              !have_ranges ? "no subordinate ranges for this user in /etc/subuid and /etc/subgid"
                           : "newuidmap/newgidmap not found",
              user, have_tools ? "" : " and install newuidmap/newgidmap (Debian: apt-get install uidmap)");
    }
    struct idrange none = {0, 0};
    if (join_existing_userns(uid, gid, ranges ? ur : none, ranges ? gr : none)) goto inside;
    // The helpers write our maps from outside: a child that waits until we have unshared.
    int go[2];
    if (pipe2(go, O_CLOEXEC) < 0) userns_fail("pipe");
    pid_t self = getpid(), mapper = -1;
    if (ranges) {
      mapper = fork();
      if (mapper < 0) userns_fail("fork");
      if (mapper == 0) {
        close(go[1]);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        char c;
        if (getppid() != self || read(go[0], &c, 1) != 1) _exit(1);
        _exit(run_idmap_tool(newuidmap, self, uid, ur) == 0 && run_idmap_tool(newgidmap, self, gid, gr) == 0 ? 0 : 1);
      }
      close(go[0]);
    }
    if (unshare(CLONE_NEWUSER) < 0) userns_fail("unshare a user namespace (are unprivileged user namespaces enabled?)");
    if (ranges) {
      int st;
      if (write(go[1], "g", 1) != 1) userns_fail("start newuidmap");
      close(go[1]);
      while (waitpid(mapper, &st, 0) < 0) if (errno != EINTR) userns_fail("wait for newuidmap");
      if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        errno = EPERM;
        fprintf(stderr, "ERROR: rootless: %s/%s could not map %s's ranges %lu:%lu (uids) and %lu:%lu (gids)\n",
                newuidmap, newgidmap, user, ur.start, ur.count, gr.start, gr.count);
        _exit(125);
      }
    } else {
      char map[64];
      // Unprivileged, a process may map only its own ids, and its gid only once setgroups is off.
      snprintf(map, sizeof map, "0 %u 1", (unsigned)uid);
      if (write_file("/proc/self/uid_map", map) < 0) userns_fail("write uid_map");
      if (write_file("/proc/self/setgroups", "deny") < 0) userns_fail("write setgroups");
      snprintf(map, sizeof map, "0 %u 1", (unsigned)gid);
      if (write_file("/proc/self/gid_map", map) < 0) userns_fail("write gid_map");
    }
  inside:
    if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) userns_fail("become root in the user namespace");
    // The host's supplementary groups (unmapped, shown as nobody) are of no use inside; where
    // setgroups is denied (single mapping) they stay.
    if (ranges && setgroups(0, NULL) < 0) userns_fail("setgroups");
  }
  execvp(argv[0], argv);
  userns_fail(argv[0]);
}

int main(int argc, char **argv, char **envp) {
  if (argc > 1 && !strcmp(argv[1], "userns")) userns_main(argv + 2);
  // Before anything else: the sandbox must never be able to open this process through /proc.
  // (exec mode joins the sandbox's pid namespace; its child is visible there until its execve.)
  prctl(PR_SET_DUMPABLE, 0);
  reexec_from_sealed_copy(argv, envp);
  prctl(PR_SET_DUMPABLE, 0);  // execve made the new image dumpable again
  if (fcntl(STATUS_FD, F_SETFD, FD_CLOEXEC) < 0) _exit(125);
  pid_t parent = getppid();
  // Die with tsbuild: the signal reaches PID 1 through its own PDEATHSIG, and the namespaces with it.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(125);
  parse_spec();
  // Whatever else our parent let us inherit has no business in the sandbox (a spawner holder keeps the
  // container's stdio and status fds, see launch_container).
  syscall(SYS_close_range, (S.netholder && S.spawner ? SPAWN_STATUS_FD : STATUS_FD) + 1, ~0U, 0);

  // The device filter first: nothing may run in the cgroup without it.
  if (S.devcgroup && !S.execpid) attach_device_filter();
  // Join the run's cgroups before anything forks, so every descendant is counted and limited.
  // "0" names the writer itself. Written into a v1 `tasks` file (which moves the writing thread: the
  // launcher has only one), the move skips the kernel's global threadgroup lock (Linux >= 5.17),
  // whose first taking waits out an RCU grace period: 10-15 ms of every run, more than the rest of
  // its start. Into cgroup.procs (v2, or a v1 joined by `exec`) the lock is taken.
  for (int i = 0; i < S.ncg; i++) {
    int fd = open(S.cgprocs[i], O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, "0", 1) != 1) die("join cgroup %s", S.cgprocs[i]);
    close(fd);
  }

  if (S.execpid) exec_main();
  if (S.netholder) holder_main();

  if (S.netnspid) {
    // Share the network namespace of another sandbox (docker's --network container:NAME).
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/ns/net", (int)S.netnspid);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) die("open %s (is that container running?)", p);
    if (setns(fd, CLONE_NEWNET) < 0) die("join the network namespace of pid %d", (int)S.netnspid);
    close(fd);
    S.newnet = 0;
  }
  int flags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWCGROUP;
  if (S.newnet) flags |= CLONE_NEWNET;
  if (unshare(flags) < 0) die("unshare");
  // Or every mount below propagates back to the host (and pivot_root refuses a shared root).
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) die("make / private");

  sigset_t set;
  block_signals(&set);
  int alive[2];  // init's way to tell the launcher died between fork and PR_SET_PDEATHSIG
  if (pipe2(alive, O_CLOEXEC) < 0) die("pipe");
  int ptys[2] = { -1, -1 };  // init passes the pty master it opened in the container's devpts
  if (S.tty && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ptys) < 0) die("socketpair");
  int ep[2] = { -1, -1 };  // without an init: how the command says it could not start (see command_main)
  if (!S.init && pipe2(ep, O_CLOEXEC) < 0) die("pipe");
  pid_t init = fork();
  if (init < 0) die("fork init");
  if (init == 0) {
    close(alive[1]);
    if (ptys[0] >= 0) close(ptys[0]);
    if (ep[0] >= 0) close(ep[0]);
    init_main(&set, alive[0], ptys[1], ep[1]);
  }
  close(alive[0]);
  if (ep[1] >= 0) close(ep[1]);
  // Without an init, the command's pid is reported once it has exec'd (await_command).
  if (S.init) status("pid %d", (int)init);
  int master = -1;
  if (S.tty) {
    close(ptys[1]);
    master = recv_fd(ptys[0]);
    close(ptys[0]);
  }
  if (!S.init) await_command(init, ep[0], master, &set);
  int st = relay_and_wait(init, master, &set);
  if (WIFSIGNALED(st)) {
    // init itself was killed (e.g. by the OOM killer or `stop`'s SIGKILL): nothing else has reported.
    status("signal %d", WTERMSIG(st));
    _exit(128 + WTERMSIG(st));
  }
  _exit(WEXITSTATUS(st));
}
