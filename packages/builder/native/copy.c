/*
 * tsbuild-copy [--jobs N] FROM FROM_BELOW TO TO_BELOW < records: copies build-context files into a COPY's
 * staging directory (src/solver/ops/bulkcopy.ts). It replaces `cp --parents`, which spent ~13 syscalls per
 * file (two stats of the destination, a FICLONE that fails on ext4, fadvise, two copy_file_range, utimensat,
 * ...) and opened every path from the top, following whatever symlink a directory of it had become.
 *
 * FROM and TO are directories the builder names (the build context, the staging root) and are opened as
 * given; FROM_BELOW and TO_BELOW ("" for the directory itself) and every record are walked beneath them one
 * component at a time, openat(O_NOFOLLOW) from the parent's fd: no symlink is ever followed, in the source
 * (the context is untrusted: a directory swapped for a link to / mid-build) or in the destination (a link an
 * earlier source of the step left). A record is a kind byte ('f' regular file, 'l' symlink), a path
 * relative to both FROM/FROM_BELOW and TO/TO_BELOW, and a NUL; any byte but NUL and '/' may be in a name, and
 * a path may be longer than PATH_MAX (it is never passed whole to the kernel).
 *
 * Each file: openat source, fstat (still a regular file?), openat(O_CREAT|O_EXCL|O_NOFOLLOW) destination
 * with the source's permission bits (umask 0), copy_file_range (read/write where it cannot; of a sparse file
 * only the data, its holes kept), futimens with the source's times, close both. A symlink: fstatat, readlinkat, symlinkat, utimensat. What is in the way
 * at a file's name is unlinked first (never written through); a directory in the way is an error. The
 * directories on the way that TO lacks are made with the source directory's mode (those it has are given
 * it); their times are the builder's to set. Owner: this process's (root, as COPY gives without --chown).
 *
 * Exactly the modes asked for, where the kernel would give others (each fixed with fchown/fchmod on the
 * new fd, only where needed):
 *   - setuid/setgid/sticky bits: open and mkdir drop some of them; set with fchmod after the data;
 *   - beneath a setgid directory (of the image) a new entry takes the directory's group and a new
 *     directory the setgid bit: the group is set back to ours, the mode to the source's;
 *   - beneath a default ACL (a store made inside a directory that has one) the permission bits come
 *     from the ACL: the inherited ACLs are removed and the mode set (as `cp --preserve=mode` did).
 *
 * Work is shared by threads (--jobs, else TSBUILD_COPY_JOBS, else every core, up to 4) taking runs of records in
 * turn; two that need the same new directory both get it (EEXIST, then open). The first failure stops every thread
 * and is printed as "tsbuild-copy: PATH: what: why" with exit status 1; nothing is skipped silently.
 * Usage errors exit 2.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#define MAX_THREADS 4
#define BATCH 64 /* records a thread takes at a time: nearby paths, so its open directories are reused */
#define COPY_BUF (1 << 18)

/* What a destination directory does to entries made in it. */
#define D_SETGID 1u  /* setgid: a new directory inherits the bit */
#define D_FOREIGN 2u /* setgid with a group not ours: a new entry takes that group */
#define D_ACL 4u     /* a default ACL: a new entry's permission bits come from it */

static char **recs;
static size_t nrecs;
static atomic_size_t next_rec;
static atomic_int failed;
static pthread_mutex_t err_lock = PTHREAD_MUTEX_INITIALIZER;
static int src_top, dst_top;
static unsigned dst_top_flags;
static gid_t my_gid;

/* The first failure, printed once; the others stop at their next record. */
static int fail(const char *path, size_t len, const char *what, int err) {
  pthread_mutex_lock(&err_lock);
  if (!atomic_exchange(&failed, 1)) {
    fputs("tsbuild-copy: ", stderr);
    fwrite(path, 1, len, stderr);
    fprintf(stderr, ": %s%s%s\n", what, err ? ": " : "", err ? strerror(err) : "");
  }
  pthread_mutex_unlock(&err_lock);
  return -1;
}

static void usage_error(const char *msg) {
  fprintf(stderr, "tsbuild-copy: %s\nusage: tsbuild-copy [--jobs N] FROM FROM_BELOW TO TO_BELOW < records\n", msg);
  exit(2);
}

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) {
    fputs("tsbuild-copy: out of memory\n", stderr);
    exit(1);
  }
  return p;
}

static unsigned dir_flags(int fd) {
  struct stat st;
  unsigned f = 0;
  if (fstat(fd, &st) == 0 && (st.st_mode & S_ISGID)) f |= D_SETGID | (st.st_gid != my_gid ? D_FOREIGN : 0);
  if (fgetxattr(fd, "system.posix_acl_default", NULL, 0) >= 0) f |= D_ACL;
  return f;
}

/* Makes a new entry's owner and mode what was asked for, given what its directory does (parent flags). */
static int fix_new(int fd, mode_t mode, int is_dir, unsigned parent) {
  if ((parent & D_FOREIGN) && fchown(fd, (uid_t)-1, my_gid) < 0) return -1;
  if (parent & D_ACL) {
    if (fremovexattr(fd, "system.posix_acl_access") < 0 && errno != ENODATA) return -1;
    if (is_dir && fremovexattr(fd, "system.posix_acl_default") < 0 && errno != ENODATA) return -1;
  }
  /* After the chown, which clears setuid/setgid bits, and after the data (a write may clear them too). */
  int fix = (mode & 07000) || (parent & (D_FOREIGN | D_ACL)) || (is_dir && (parent & D_SETGID));
  return fix ? fchmod(fd, mode & 07777) : 0;
}

/* One open directory of a thread's path: the source's and the destination's fd. */
struct level {
  int src, dst;
  unsigned flags;      /* the destination's, for what is made in it */
  const char *of;      /* the record it was opened for (records stay in memory to the end) */
  size_t start, len;   /* its name there: compared with the next record's */
};

struct cursor {
  struct level *lv; /* lv[0]: FROM_BELOW and TO_BELOW */
  size_t depth, cap;
  char *buf;
  char name[NAME_MAX + 1];
};

static const char *component(const char *p, size_t len, char *out) {
  if (len > NAME_MAX) return NULL;
  memcpy(out, p, len);
  out[len] = 0;
  return out;
}

static void pop_to(struct cursor *c, size_t depth) {
  while (c->depth > depth) {
    struct level *l = &c->lv[c->depth--];
    close(l->src);
    close(l->dst);
  }
}

/* Opens directory `name` (of record `rec`, whose first `upto` bytes name it) below the cursor's top. */
static int enter(struct cursor *c, const char *rec, size_t start, size_t upto) {
  if (!component(rec + start, upto - start, c->name)) return fail(rec, upto, "name too long", 0);
  struct level *top = &c->lv[c->depth];
  int s = openat(top->src, c->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (s < 0) {
    int e = errno;
    if (e == ELOOP || e == ENOTDIR)
      return fail(rec, upto, "no longer a directory in the build context (not followed)", 0);
    return fail(rec, upto, "cannot open the directory in the build context", e);
  }
  struct stat st;
  if (fstat(s, &st) < 0) {
    int e = errno;
    close(s);
    return fail(rec, upto, "cannot stat the directory in the build context", e);
  }
  int made = 0;
  int d = openat(top->dst, c->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (d < 0 && errno == ENOENT) {
    if (mkdirat(top->dst, c->name, st.st_mode & 01777) == 0) made = 1;
    else if (errno != EEXIST) {
      int e = errno;
      close(s);
      return fail(rec, upto, "cannot make the directory", e);
    }
    d = openat(top->dst, c->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  }
  if (d < 0) {
    int e = errno;
    close(s);
    if (e == ELOOP || e == ENOTDIR) return fail(rec, upto, "a symlink or file is in the way of the directory", 0);
    return fail(rec, upto, "cannot open the directory", e);
  }
  unsigned flags;
  if (made) {
    if (fix_new(d, st.st_mode, 1, top->flags) < 0) {
      int e = errno;
      close(s);
      close(d);
      return fail(rec, upto, "cannot set the directory's mode", e);
    }
    flags = (st.st_mode & S_ISGID) ? D_SETGID : 0;
  } else {
    /* Made before the copier ran, by the builder (an empty directory of the tree and, as mkdir -p, its
       missing parents, 0755) or by an earlier source of the step: given this source directory's mode, as
       the layer says (a directory of the step's last source wins). */
    struct stat dst;
    if (fstat(d, &dst) < 0 || ((dst.st_mode & 07777) != (st.st_mode & 07777) && fchmod(d, st.st_mode & 07777) < 0)) {
      int e = errno;
      close(s);
      close(d);
      return fail(rec, upto, "cannot set the directory's mode", e);
    }
    flags = dir_flags(d);
  }
  if (c->depth + 1 == c->cap) {
    c->cap *= 2;
    c->lv = realloc(c->lv, c->cap * sizeof *c->lv);
    if (!c->lv) {
      close(s);
      close(d);
      return fail(rec, upto, "out of memory", 0);
    }
  }
  c->lv[++c->depth] =
      (struct level){.src = s, .dst = d, .flags = flags, .of = rec, .start = start, .len = upto - start};
  return 0;
}

/* `n` bytes from s's offset to d's: copy_file_range where it works, else read/write. A file cut shorter since its
   fstat ends early. */
static int copy_bytes(struct cursor *c, int s, int d, off_t n) {
  off_t done = 0;
  while (done < n) {
    ssize_t r = copy_file_range(s, NULL, d, NULL, (size_t)(n - done), 0);
    if (r > 0) {
      done += r;
      continue;
    }
    if (r == 0 && done > 0) return 0; /* cut shorter since the fstat */
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP && errno != EPERM)
      return -1;
    break; /* not supported here (or nothing at offset 0 of a file that says it has data): read it */
  }
  if (done >= n) return 0;
  if (!c->buf) c->buf = xmalloc(COPY_BUF);
  while (done < n) {
    ssize_t r = read(s, c->buf, n - done < COPY_BUF ? (size_t)(n - done) : COPY_BUF);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    if (r == 0) return 0;
    for (ssize_t w = 0; w < r;) {
      ssize_t m = write(d, c->buf + w, (size_t)(r - w));
      if (m < 0 && errno == EINTR) continue;
      if (m < 0) return -1;
      w += m;
    }
    done += r;
  }
  return 0;
}

/*
 * The file's `size` bytes as fstat gave them. A file with fewer blocks than its size has holes: only its data
 * is copied, at the same offsets (SEEK_DATA/SEEK_HOLE), and the copy's size set, so that the holes stay holes
 * (copy_file_range writes them out as zeros on ext4: a 10 GiB disk image of little data took 10 GiB).
 */
static int copy_data(struct cursor *c, int s, int d, const struct stat *st) {
  off_t size = st->st_size;
  if ((off_t)st->st_blocks * 512 >= size) return copy_bytes(c, s, d, size);
  for (off_t pos = 0; pos < size;) {
    off_t data = lseek(s, pos, SEEK_DATA);
    if (data < 0 && errno == ENXIO) break; /* a hole to the end */
    if (data < 0 && pos == 0 && (errno == EINVAL || errno == EOPNOTSUPP)) {
      if (lseek(s, 0, SEEK_SET) < 0) return -1;
      return copy_bytes(c, s, d, size); /* no SEEK_DATA here: every byte */
    }
    if (data < 0) return -1;
    if (data >= size) break;
    off_t hole = lseek(s, data, SEEK_HOLE);
    if (hole < 0) return -1;
    if (hole > size) hole = size;
    if (lseek(s, data, SEEK_SET) < 0 || lseek(d, data, SEEK_SET) < 0) return -1;
    if (copy_bytes(c, s, d, hole - data) < 0) return -1;
    pos = hole;
  }
  return ftruncate(d, size);
}

/* Creates `name` in `dir` with `make`, unlinking what is in the way first (never written through). */
static int create_at(int dir, const char *name, int (*make)(int, const char *, const void *), const void *arg) {
  int r = make(dir, name, arg);
  if (r >= 0 || errno != EEXIST) return r;
  if (unlinkat(dir, name, 0) < 0) return -1; /* EISDIR: a directory is in the way */
  return make(dir, name, arg);
}

static int make_file(int dir, const char *name, const void *mode) {
  return openat(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, *(const mode_t *)mode & 0777);
}

static int make_link(int dir, const char *name, const void *target) {
  return symlinkat((const char *)target, dir, name);
}

static int copy_file(struct cursor *c, const char *rec, size_t len, const char *name) {
  struct level *top = &c->lv[c->depth];
  int s = openat(top->src, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (s < 0) {
    int e = errno;
    if (e == ELOOP) return fail(rec, len, "no longer a regular file in the build context (now a symlink)", 0);
    return fail(rec, len, "cannot open the file in the build context", e);
  }
  struct stat st;
  if (fstat(s, &st) < 0) {
    int e = errno;
    close(s);
    return fail(rec, len, "cannot stat the file in the build context", e);
  }
  if (!S_ISREG(st.st_mode)) {
    close(s);
    return fail(rec, len, "no longer a regular file in the build context", 0);
  }
  int d = create_at(top->dst, name, make_file, &st.st_mode);
  if (d < 0) {
    int e = errno;
    close(s);
    return fail(rec, len, e == EISDIR ? "a directory is in the way" : "cannot create the file", e == EISDIR ? 0 : e);
  }
  const char *what = "cannot copy the file";
  int ok = copy_data(c, s, d, &st) == 0;
  if (ok && !(ok = fix_new(d, st.st_mode, 0, top->flags) == 0)) what = "cannot set the file's mode";
  struct timespec times[2] = {st.st_atim, st.st_mtim};
  if (ok && !(ok = futimens(d, times) == 0)) what = "cannot set the file's times";
  int e = errno;
  close(s);
  if (close(d) < 0 && ok) ok = 0, e = errno, what = "cannot write the file";
  return ok ? 0 : fail(rec, len, what, e);
}

static int copy_symlink(struct cursor *c, const char *rec, size_t len, const char *name) {
  struct level *top = &c->lv[c->depth];
  struct stat st;
  if (fstatat(top->src, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return fail(rec, len, "cannot stat the symlink in the build context", errno);
  if (!S_ISLNK(st.st_mode)) return fail(rec, len, "no longer a symlink in the build context", 0);
  char *target = xmalloc((size_t)st.st_size + 2);
  ssize_t n = readlinkat(top->src, name, target, (size_t)st.st_size + 2);
  if (n < 0 || n > st.st_size) {
    int e = n < 0 ? errno : 0;
    free(target);
    return fail(rec, len, e ? "cannot read the symlink in the build context" : "the symlink changed while read", e);
  }
  target[n] = 0;
  int r = create_at(top->dst, name, make_link, target);
  int e = errno;
  free(target);
  if (r < 0 && e == EISDIR) return fail(rec, len, "a directory is in the way", 0);
  if (r < 0) return fail(rec, len, "cannot create the symlink", e);
  if ((top->flags & D_FOREIGN) && fchownat(top->dst, name, (uid_t)-1, my_gid, AT_SYMLINK_NOFOLLOW) < 0)
    return fail(rec, len, "cannot set the symlink's group", errno);
  struct timespec times[2] = {st.st_atim, st.st_mtim};
  if (utimensat(top->dst, name, times, AT_SYMLINK_NOFOLLOW) < 0)
    return fail(rec, len, "cannot set the symlink's times", errno);
  return 0;
}

/* One record: its directories entered (those it shares with the last record kept open), then the entry. */
static int copy_one(struct cursor *c, const char *rec) {
  char kind = rec[0];
  const char *path = rec + 1;
  size_t len = strlen(path);
  if ((kind != 'f' && kind != 'l') || len == 0 || path[0] == '/' || path[len - 1] == '/')
    return fail(path, len, "not a relative path with a kind (internal)", 0);
  size_t depth = 0, start = 0;
  for (size_t i = 0; i <= len; i++) {
    if (i < len && path[i] != '/') continue;
    size_t n = i - start;
    if (n == 0 || (n == 1 && path[start] == '.') || (n == 2 && path[start] == '.' && path[start + 1] == '.'))
      return fail(path, len, "not a plain relative path (internal)", 0);
    if (i == len) break;
    depth++;
    if (depth <= c->depth) {
      struct level *l = &c->lv[depth];
      if (l->len != n || memcmp(l->of + l->start, path + start, n) != 0) {
        pop_to(c, depth - 1);
        if (enter(c, path, start, i) < 0) return -1;
      }
    } else if (enter(c, path, start, i) < 0) {
      return -1;
    }
    start = i + 1;
  }
  pop_to(c, depth);
  if (!component(path + start, len - start, c->name)) return fail(path, len, "name too long", 0);
  return kind == 'f' ? copy_file(c, path, len, c->name) : copy_symlink(c, path, len, c->name);
}

static void *worker(void *arg) {
  (void)arg;
  struct cursor c = {.cap = 16};
  c.lv = xmalloc(c.cap * sizeof *c.lv);
  c.lv[0] = (struct level){.src = src_top, .dst = dst_top, .flags = dst_top_flags};
  while (!atomic_load(&failed)) {
    size_t at = atomic_fetch_add(&next_rec, BATCH);
    if (at >= nrecs) break;
    size_t end = at + BATCH < nrecs ? at + BATCH : nrecs;
    for (size_t i = at; i < end && !atomic_load(&failed); i++)
      if (copy_one(&c, recs[i]) < 0) break;
  }
  pop_to(&c, 0);
  free(c.lv);
  free(c.buf);
  return NULL;
}

/* Opens `below` (relative, "" for top itself) beneath `top`, one component at a time, never through a symlink. */
static int open_below(int top, const char *below, const char *what) {
  int fd = dup(top);
  if (fd < 0) return -1;
  char name[NAME_MAX + 1];
  for (const char *p = below; *p;) {
    const char *slash = strchr(p, '/');
    size_t n = slash ? (size_t)(slash - p) : strlen(p);
    if (n > 0) {
      if (n > NAME_MAX || (n == 2 && p[0] == '.' && p[1] == '.')) {
        fprintf(stderr, "tsbuild-copy: %s: not a plain relative path\n", below);
        exit(2);
      }
      memcpy(name, p, n);
      name[n] = 0;
      int next = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (next < 0) {
        int e = errno;
        fprintf(stderr, "tsbuild-copy: %s: cannot open the directory %s%s: %s\n", below, what,
                e == ELOOP || e == ENOTDIR ? " (a symlink or file is there: not followed)" : "", strerror(e));
        exit(1);
      }
      close(fd);
      fd = next;
    }
    p += n;
    if (*p == '/') p++;
  }
  return fd;
}

static char *read_stdin(size_t *len) {
  size_t cap = 1 << 20;
  char *in = xmalloc(cap);
  *len = 0;
  for (;;) {
    if (*len == cap) {
      cap *= 2;
      char *grown = realloc(in, cap);
      if (!grown) {
        fputs("tsbuild-copy: out of memory\n", stderr);
        exit(1);
      }
      in = grown;
    }
    ssize_t n = read(0, in + *len, cap - *len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      perror("tsbuild-copy: cannot read the records from stdin");
      exit(1);
    }
    if (n == 0) return in;
    *len += (size_t)n;
  }
}

int main(int argc, char **argv) {
  int a = 1, jobs = 0;
  if (a + 1 < argc && strcmp(argv[a], "--jobs") == 0) {
    jobs = atoi(argv[a + 1]);
    if (jobs < 1) usage_error("--jobs takes a number above 0");
    a += 2;
  }
  /* TSBUILD_COPY_JOBS=N (benchmarks): the thread count where the builder, which passes no --jobs, runs it. */
  const char *env_jobs = getenv("TSBUILD_COPY_JOBS");
  if (!jobs && env_jobs && *env_jobs && (jobs = atoi(env_jobs)) < 1)
    usage_error("TSBUILD_COPY_JOBS takes a number above 0");
  if (argc - a != 4) usage_error("wrong number of arguments");
  umask(0);
  my_gid = getegid();
  /* Two fds per directory level and thread: a deep tree may need more than the soft limit. */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  int from = open(argv[a], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int to = open(argv[a + 2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (from < 0 || to < 0) {
    fprintf(stderr, "tsbuild-copy: %s: cannot open: %s\n", argv[from < 0 ? a : a + 2], strerror(errno));
    return 1;
  }
  src_top = open_below(from, argv[a + 1], "in the build context");
  dst_top = open_below(to, argv[a + 3], "to copy into");
  dst_top_flags = dir_flags(dst_top);

  size_t len;
  char *in = read_stdin(&len);
  if (len > 0 && in[len - 1] != 0) usage_error("the last record is not ended by a NUL");
  for (size_t i = 0; i < len; i++)
    if (!in[i]) nrecs++;
  recs = xmalloc(nrecs * sizeof *recs);
  for (size_t i = 0, at = 0; i < nrecs; i++) {
    recs[i] = in + at;
    at += strlen(in + at) + 1;
  }

  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  int threads = jobs ? jobs : cpus < 1 ? 1 : (int)cpus;
  if (threads > MAX_THREADS) threads = MAX_THREADS;
  size_t batches = (nrecs + BATCH - 1) / BATCH;
  if ((size_t)threads > batches) threads = batches ? (int)batches : 1;
  pthread_t tid[MAX_THREADS];
  for (int t = 1; t < threads; t++)
    if (pthread_create(&tid[t], NULL, worker, NULL) != 0) threads = t;
  worker(NULL);
  for (int t = 1; t < threads; t++) pthread_join(tid[t], NULL);
  return atomic_load(&failed) ? 1 : 0;
}
