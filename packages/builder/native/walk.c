/*
 * tsbuild-walk DIR [--prune RELPATH]...: lists a build context and prints it on stdout as one binary record
 * (layout below, read by src/context/listing.ts). Node pays ~15 us per lstat for its Stats
 * objects and GNU find's text output costs as much again to parse; this does getdents64 and
 * fstatat and nothing else, on every core, and digests each directory's stat data (a Merkle
 * tree of names, modes, inodes, sizes, times and link targets) so the builder can reuse the
 * content digest of an unchanged subtree without looking at its files.
 *
 * Never follows a symlink (fstatat AT_SYMLINK_NOFOLLOW; directories are opened with openat2
 * RESOLVE_NO_SYMLINKS|RESOLVE_BENEATH), keeps names as bytes. An entry that vanishes between
 * getdents and fstatat is left out; a directory that cannot be opened is listed with
 * FLAG_UNREADABLE, so the builder fails only if a COPY reaches into it.
 *
 * Output, little-endian, every record 8-byte aligned:
 *   "TSBWALK1"
 *   blocks: for each directory, its entries sorted by name bytes, each
 *     u32 mode, u32 flags, u64 ino, u64 size, i64 mtime_s, i64 ctime_s, u32 mtime_ns, u32 ctime_ns,
 *     u32 dir (index in the table below, or NONE), u16 name_len, u16 link_len, name, link, padding
 *   table: for each directory (index 0 is DIR itself): u64 block offset, u32 count, u32 flags, sig[32]
 *   trailer: u64 table offset, u32 directories, "TSBW"
 * A child directory always has a larger index than its parent.
 *
 * `tsbuild-walk --sha256` hashes the files named on stdin instead (see hash_main): the content
 * digests of the files the stat cache cannot vouch for.
 *
 * sig(D) = sha256 over D's entries of: name, NUL, u32 mode, u32 flags & (UNREADABLE|PRUNED), u64 ino,
 * u64 size, i64 mtime_s, u32 mtime_ns, i64 ctime_s, u32 ctime_ns, u16 link_len, link, then sig(child)
 * for a directory. The JS walker for small contexts (src/context/walk.ts) computes the same.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "sha256.h"

#define NONE 0xffffffffu
#define FLAG_RACY 1u       /* a regular file changed so recently that its stat cannot vouch for its content */
#define FLAG_UNREADABLE 2u /* a directory that could not be opened or read */
#define FLAG_RACY_BELOW 4u /* a directory with a racy file somewhere below it */
#define FLAG_PRUNED 8u     /* a directory not looked into (--prune: .dockerignore leaves it out whole) */
#define ENTRY_HEAD 56
#define MAX_THREADS 4

/* Race window: a file written within it may be written again inside the same timestamp tick
 * (jiffies, or whole seconds on filesystems without nanoseconds) after it was hashed. */
#define RACY_NS 100000000LL

struct dir {
  uint32_t parent;
  char *path; /* relative to DIR, "" for DIR itself */
  uint8_t *block;
  size_t block_len;
  uint32_t count, flags;
  uint8_t sig[32];
  atomic_uint pending; /* unfinished child directories, +1 while this one is being listed */
};

/* Directories by index, in chunks that never move (workers add while others read). */
#define CHUNK 1024
static struct dir **chunks;
static size_t nchunks_max = 1 << 20;
static atomic_uint ndirs;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static uint32_t *stack;
static size_t stack_len, stack_cap;
static int busy;

static const char *root_path;
static char **prune;
static int nprune;
static int root_fd;
static int64_t start_ns, start_s;

static void die(const char *what, const char *path) {
  fprintf(stderr, "tsbuild-walk: %s %s%s%s: %s\n", what, root_path, *path ? "/" : "", path, strerror(errno));
  exit(2);
}

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) die("out of memory at", "");
  return p;
}

static struct dir *dir_at(uint32_t i) { return &chunks[i / CHUNK][i % CHUNK]; }

/* A new directory entry in the table (caller holds the lock). */
static uint32_t new_dir(uint32_t parent, char *path) {
  uint32_t i = atomic_load(&ndirs);
  if (i / CHUNK >= nchunks_max) die("too many directories in", "");
  if (!chunks[i / CHUNK]) chunks[i / CHUNK] = calloc(CHUNK, sizeof(struct dir));
  if (!chunks[i / CHUNK]) die("out of memory at", "");
  struct dir *d = dir_at(i);
  d->parent = parent;
  d->path = path;
  atomic_init(&d->pending, 1);
  atomic_store(&ndirs, i + 1);
  return i;
}

static void push(uint32_t i) {
  if (stack_len == stack_cap) {
    stack_cap = stack_cap ? stack_cap * 2 : 1024;
    stack = realloc(stack, stack_cap * sizeof *stack);
    if (!stack) die("out of memory at", "");
  }
  stack[stack_len++] = i;
  pthread_cond_signal(&wake);
}

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

struct child {
  char *name;
  uint16_t name_len, link_len;
  char *link;
  struct stat st;
};

static int by_name(const void *a, const void *b) { return strcmp(((const struct child *)a)->name, ((const struct child *)b)->name); }

struct linux_dirent64 {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

/* A directory's names, NUL-separated in one allocation; -1 when it cannot be read. */
static int read_names(int fd, char *dents, size_t dents_len, char **arena, size_t *arena_len) {
  size_t cap = 4096;
  *arena = xmalloc(cap);
  *arena_len = 0;
  for (;;) {
    long n = syscall(SYS_getdents64, fd, dents, dents_len);
    if (n < 0) return -1;
    if (n == 0) return 0;
    for (long off = 0; off < n;) {
      struct linux_dirent64 *d = (void *)(dents + off);
      off += d->d_reclen;
      const char *nm = d->d_name;
      if (nm[0] == '.' && (nm[1] == 0 || (nm[1] == '.' && nm[2] == 0))) continue;
      size_t l = strlen(nm) + 1;
      if (*arena_len + l > cap) {
        while (cap < *arena_len + l) cap *= 2;
        char *p = realloc(*arena, cap);
        if (!p) die("out of memory at", "");
        *arena = p;
      }
      memcpy(*arena + *arena_len, nm, l);
      *arena_len += l;
    }
  }
}

static int open_dir(const char *path) {
  if (!*path) return dup(root_fd);
  static int no_openat2;
  if (!no_openat2) {
    struct open_how how = {.flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
    int fd = (int)syscall(SYS_openat2, root_fd, path, &how, sizeof how);
    if (fd >= 0 || (errno != ENOSYS && errno != EPERM)) return fd;
    /* ENOSYS: a kernel before 5.6. EPERM: a seccomp filter that does not know openat2 (a
       directory open itself fails with EACCES); if openat then succeeds, it was the filter. */
    int saved = errno;
    fd = openat(root_fd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0 || saved == ENOSYS) no_openat2 = 1;
    else errno = saved;
    return fd;
  }
  /* Without openat2, a component swapped for a symlink while we walk could be followed. */
  return openat(root_fd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

static void finish(uint32_t i);

/* Whether DIR-relative path + "/" + name is one the caller asked not to look into. */
static int pruned(const char *path, size_t plen, const char *name, size_t nlen) {
  for (int k = 0; k < nprune; k++) {
    const char *p = prune[k];
    size_t l = strlen(p);
    if (plen == 0 ? l == nlen && memcmp(p, name, nlen) == 0
                  : l == plen + 1 + nlen && memcmp(p, path, plen) == 0 && p[plen] == '/' && memcmp(p + plen + 1, name, nlen) == 0)
      return 1;
  }
  return 0;
}

/* Lists directory i: its entries into its block, its subdirectories onto the stack. */
static void list_dir(uint32_t i, char *dents, size_t dents_len) {
  struct dir *d = dir_at(i);
  int fd = open_dir(d->path);
  if (fd < 0) {
    if (errno == EMFILE || errno == ENFILE || errno == ENOMEM) die("cannot open", d->path);
    d->flags = FLAG_UNREADABLE; /* unreadable, or replaced since its parent was listed: the builder decides */
    finish(i);
    return;
  }
  char *arena;
  size_t arena_len;
  if (read_names(fd, dents, dents_len, &arena, &arena_len) < 0) {
    close(fd);
    free(arena);
    d->flags = FLAG_UNREADABLE;
    finish(i);
    return;
  }
  size_t count = 0;
  for (char *nm = arena; nm < arena + arena_len; nm += strlen(nm) + 1) count++;
  struct child *kids = xmalloc(count * sizeof *kids);
  size_t n = 0, size = 0;
  for (char *nm = arena; nm < arena + arena_len; nm += strlen(nm) + 1) {
    struct child *c = &kids[n];
    if (fstatat(fd, nm, &c->st, AT_SYMLINK_NOFOLLOW) < 0) {
      if (errno == ENOENT) continue; /* removed while we looked */
      die("cannot stat in", d->path);
    }
    c->name = nm;
    c->name_len = (uint16_t)strlen(nm); /* NAME_MAX is 255 */
    c->link = NULL;
    c->link_len = 0;
    if (S_ISLNK(c->st.st_mode)) {
      char target[4096];
      ssize_t tl = readlinkat(fd, nm, target, sizeof target);
      if (tl < 0) {
        if (errno == ENOENT) continue;
        die("cannot read a symlink in", d->path);
      }
      c->link = xmalloc((size_t)tl);
      memcpy(c->link, target, (size_t)tl);
      c->link_len = (uint16_t)tl;
    }
    size += (ENTRY_HEAD + c->name_len + c->link_len + 7) & ~(size_t)7;
    n++;
  }
  close(fd);
  qsort(kids, n, sizeof *kids, by_name);

  uint8_t *block = calloc(1, size ? size : 1);
  if (!block) die("out of memory at", d->path);
  size_t at = 0;
  unsigned subdirs = 0;
  size_t plen = strlen(d->path);
  for (size_t k = 0; k < n; k++) {
    struct child *c = &kids[k];
    uint8_t *e = block + at;
    uint32_t f = 0;
    if (S_ISREG(c->st.st_mode)) {
      int64_t cns = (int64_t)c->st.st_ctim.tv_sec * 1000000000LL + c->st.st_ctim.tv_nsec;
      if (cns >= start_ns - RACY_NS || (c->st.st_ctim.tv_nsec == 0 && c->st.st_ctim.tv_sec >= start_s - 1)) f |= FLAG_RACY;
    }
    put32(e, (uint32_t)c->st.st_mode);
    put32(e + 4, f);
    put64(e + 8, (uint64_t)c->st.st_ino);
    put64(e + 16, (uint64_t)c->st.st_size);
    put64(e + 24, (uint64_t)c->st.st_mtim.tv_sec);
    put64(e + 32, (uint64_t)c->st.st_ctim.tv_sec);
    put32(e + 40, (uint32_t)c->st.st_mtim.tv_nsec);
    put32(e + 44, (uint32_t)c->st.st_ctim.tv_nsec);
    put32(e + 48, NONE);
    e[52] = (uint8_t)c->name_len;
    e[53] = (uint8_t)(c->name_len >> 8);
    e[54] = (uint8_t)c->link_len;
    e[55] = (uint8_t)(c->link_len >> 8);
    memcpy(e + ENTRY_HEAD, c->name, c->name_len);
    if (c->link_len) memcpy(e + ENTRY_HEAD + c->name_len, c->link, c->link_len);
    if (S_ISDIR(c->st.st_mode)) {
      if (nprune && pruned(d->path, plen, c->name, c->name_len)) put32(e + 4, f | FLAG_PRUNED);
      else subdirs++;
    }
    at += (ENTRY_HEAD + c->name_len + c->link_len + 7) & ~(size_t)7;
  }
  d->block = block;
  d->block_len = size;
  d->count = (uint32_t)n;
  atomic_fetch_add(&d->pending, subdirs);

  pthread_mutex_lock(&lock);
  at = 0;
  for (size_t k = 0; k < n; k++) {
    struct child *c = &kids[k];
    if (S_ISDIR(c->st.st_mode) && !(get32(block + at + 4) & FLAG_PRUNED)) {
      char *path = xmalloc(plen + c->name_len + 2);
      if (plen) {
        memcpy(path, d->path, plen);
        path[plen] = '/';
        memcpy(path + plen + 1, c->name, c->name_len + 1);
      } else {
        memcpy(path, c->name, c->name_len + 1);
      }
      uint32_t ci = new_dir(i, path);
      put32(block + at + 48, ci);
      push(ci);
    }
    free(c->link);
    at += (ENTRY_HEAD + c->name_len + c->link_len + 7) & ~(size_t)7;
  }
  pthread_mutex_unlock(&lock);
  free(kids);
  free(arena);
  finish(i);
}

/* Directory i's listing or one of its subtrees is done; the last one digests it, then its parent. */
static void finish(uint32_t i) {
  for (;;) {
    struct dir *d = dir_at(i);
    if (atomic_fetch_sub(&d->pending, 1) != 1) return;
    sha256_ctx h;
    sha256_init(&h);
    uint32_t below = 0;
    for (size_t at = 0, k = 0; k < d->count; k++) {
      uint8_t *e = d->block + at;
      uint16_t name_len = (uint16_t)(e[52] | e[53] << 8), link_len = (uint16_t)(e[54] | e[55] << 8);
      uint32_t ef = get32(e + 4);
      uint32_t ci = get32(e + 48);
      struct dir *c = ci == NONE ? NULL : dir_at(ci);
      if (c) {
        ef |= c->flags;
        put32(e + 4, ef);
      }
      if (ef & (FLAG_RACY | FLAG_RACY_BELOW)) below = FLAG_RACY_BELOW;
      uint8_t rec[50], zero = 0;
      sha256_update(&h, e + ENTRY_HEAD, name_len);
      sha256_update(&h, &zero, 1);
      memcpy(rec, e, 4);                   /* mode */
      put32(rec + 4, ef & (FLAG_UNREADABLE | FLAG_PRUNED));
      memcpy(rec + 8, e + 8, 24);          /* ino, size, mtime_s */
      memcpy(rec + 32, e + 40, 4);         /* mtime_ns */
      memcpy(rec + 36, e + 32, 8);         /* ctime_s */
      memcpy(rec + 44, e + 44, 4);         /* ctime_ns */
      memcpy(rec + 48, e + 54, 2);         /* link_len */
      sha256_update(&h, rec, sizeof rec);
      if (link_len) sha256_update(&h, e + ENTRY_HEAD + name_len, link_len);
      if (c) sha256_update(&h, c->sig, 32);
      at += (ENTRY_HEAD + name_len + link_len + 7) & ~(size_t)7;
    }
    sha256_final(&h, d->sig);
    d->flags |= below;
    if (i == 0) return;
    i = d->parent;
  }
}

static void *worker(void *arg) {
  (void)arg;
  size_t dents_len = 1 << 16;
  char *dents = xmalloc(dents_len);
  pthread_mutex_lock(&lock);
  for (;;) {
    while (stack_len == 0 && busy > 0) pthread_cond_wait(&wake, &lock);
    if (stack_len == 0) break;
    uint32_t i = stack[--stack_len];
    busy++;
    pthread_mutex_unlock(&lock);
    list_dir(i, dents, dents_len);
    pthread_mutex_lock(&lock);
    if (--busy == 0 && stack_len == 0) pthread_cond_broadcast(&wake);
  }
  pthread_mutex_unlock(&lock);
  free(dents);
  return NULL;
}

static void write_all(const void *p, size_t n) {
  for (size_t done = 0; done < n;) {
    ssize_t w = write(1, (const char *)p + done, n - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      die("cannot write the listing of", "");
    }
    done += (size_t)w;
  }
}

/* ---- tsbuild-walk --sha256 [ROOT]: content digests of files, for the stat cache's misses.
 * stdin: paths, each ended by NUL. stdout: per path, in order, a status byte (0 = the 32-byte
 * digest follows, else errno) and 32 bytes. Threads take paths in turn; regular files only,
 * never through a final symlink (O_NOFOLLOW). With ROOT (a build context: it may change while it
 * is read), the paths are relative to it and opened beneath its fd with no symlink in any
 * component (openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, else one component at a time with
 * O_NOFOLLOW): a directory swapped for a symlink after the listing gives ELOOP, never a host file. */
static int hash_root = -1;

/* One component at a time from hash_root (where openat2 is missing): each directory O_NOFOLLOW. */
static int open_components(const char *path, int flags) {
  char *copy = strdup(path);
  if (!copy) return -1;
  int dir = hash_root;
  char *name = copy;
  for (char *slash; (slash = strchr(name, '/')) != NULL; name = slash + 1) {
    *slash = 0;
    int next = openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int saved = errno;
    if (dir != hash_root) close(dir);
    if (next < 0) {
      free(copy);
      errno = saved;
      return -1;
    }
    dir = next;
  }
  int fd = openat(dir, name, flags);
  int saved = errno;
  if (dir != hash_root) close(dir);
  free(copy);
  errno = saved;
  return fd;
}

static int open_hashed(const char *path) {
  int flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  if (hash_root < 0) return open(path, flags);
  static atomic_int no_openat2;
  if (!atomic_load(&no_openat2)) {
    struct open_how how = {.flags = (uint64_t)flags, .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
    int fd = (int)syscall(SYS_openat2, hash_root, path, &how, sizeof how);
    if (fd >= 0 || (errno != ENOSYS && errno != EPERM)) return fd;
    /* EPERM may be the file's own: the walk below says so again if it is */
    atomic_store(&no_openat2, 1);
  }
  return open_components(path, flags);
}
static char **hash_paths;
static uint8_t *hash_out;
static atomic_size_t hash_next;
static size_t hash_count;

static void *hash_worker(void *arg) {
  (void)arg;
  size_t cap = 1 << 18;
  uint8_t *buf = xmalloc(cap);
  for (;;) {
    size_t i = atomic_fetch_add(&hash_next, 1);
    if (i >= hash_count) break;
    uint8_t *o = hash_out + i * 33;
    int fd = open_hashed(hash_paths[i]);
    if (fd < 0) {
      o[0] = (uint8_t)(errno ? errno : EIO);
      continue;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
      o[0] = EINVAL;
      close(fd);
      continue;
    }
    sha256_ctx h;
    sha256_init(&h);
    ssize_t n;
    while ((n = read(fd, buf, cap)) > 0) sha256_update(&h, buf, (size_t)n);
    if (n < 0) o[0] = (uint8_t)errno;
    else sha256_final(&h, o + 1);
    close(fd);
  }
  free(buf);
  return NULL;
}

/** Runs fn on this thread and one more per online core (up to MAX_THREADS); returns when all are done. */
static void on_every_core(void *(*fn)(void *)) {
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  int threads = cpus < 1 ? 1 : cpus > MAX_THREADS ? MAX_THREADS : (int)cpus;
  pthread_t tid[MAX_THREADS];
  for (int t = 1; t < threads; t++)
    if (pthread_create(&tid[t], NULL, fn, NULL) != 0) threads = t;
  fn(NULL);
  for (int t = 1; t < threads; t++) pthread_join(tid[t], NULL);
}

static int hash_main(void) {
  size_t len = 0, cap = 1 << 20;
  char *in = xmalloc(cap);
  for (;;) {
    if (len == cap) {
      cap *= 2;
      in = realloc(in, cap);
      if (!in) die("out of memory at", "");
    }
    ssize_t n = read(0, in + len, cap - len);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("cannot read paths from", "stdin");
    }
    if (n == 0) break;
    len += (size_t)n;
  }
  for (size_t i = 0; i < len; i++)
    if (!in[i]) hash_count++;
  hash_paths = xmalloc(hash_count * sizeof *hash_paths);
  for (size_t i = 0, at = 0; i < hash_count; i++) {
    hash_paths[i] = in + at;
    at += strlen(in + at) + 1;
  }
  hash_out = calloc(hash_count ? hash_count : 1, 33);
  if (!hash_out) die("out of memory at", "");
  on_every_core(hash_worker);
  write_all(hash_out, hash_count * 33);
  return 0;
}

int main(int argc, char **argv) {
  root_path = "";
  if ((argc == 2 || argc == 3) && strcmp(argv[1], "--sha256") == 0) {
    if (argc == 3) {
      root_path = argv[2];
      hash_root = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (hash_root < 0) die("cannot open", "");
    }
    return hash_main();
  }
  if (argc < 2 || argc % 2 != 0) {
    fprintf(stderr, "usage: tsbuild-walk DIR [--prune RELPATH]... | tsbuild-walk --sha256 [ROOT] < NUL-separated paths\n");
    return 2;
  }
  prune = xmalloc((size_t)argc * sizeof *prune);
  for (int a = 2; a + 1 < argc; a += 2) {
    if (strcmp(argv[a], "--prune") != 0) {
      fprintf(stderr, "tsbuild-walk: unknown option %s\n", argv[a]);
      return 2;
    }
    prune[nprune++] = argv[a + 1];
  }
  root_path = argv[1];
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  start_ns = (int64_t)now.tv_sec * 1000000000LL + now.tv_nsec;
  start_s = now.tv_sec;
  root_fd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root_fd < 0) die("cannot open", "");
  chunks = calloc(nchunks_max, sizeof *chunks);
  if (!chunks) die("out of memory at", "");

  pthread_mutex_lock(&lock);
  push(new_dir(NONE, ""));
  pthread_mutex_unlock(&lock);
  on_every_core(worker);
  if (dir_at(0)->flags & FLAG_UNREADABLE) die("cannot read", "");

  /* Blocks in index order, then the table, written at once (a write per block costs more). */
  uint32_t total = atomic_load(&ndirs);
  size_t len = 8 + (size_t)total * 48 + 16;
  for (uint32_t i = 0; i < total; i++) len += dir_at(i)->block_len;
  uint8_t *out = xmalloc(len), *p = out;
  memcpy(p, "TSBWALK1", 8);
  p += 8;
  for (uint32_t i = 0; i < total; i++) {
    struct dir *d = dir_at(i);
    if (d->block_len) memcpy(p, d->block, d->block_len);
    p += d->block_len;
  }
  uint64_t off = 8;
  for (uint32_t i = 0; i < total; i++) {
    struct dir *d = dir_at(i);
    put64(p, off);
    put32(p + 8, d->count);
    put32(p + 12, d->flags);
    memcpy(p + 16, d->sig, 32);
    p += 48;
    off += d->block_len;
  }
  put64(p, off);
  put32(p + 8, total);
  memcpy(p + 12, "TSBW", 4);
  write_all(out, len);
  return 0;
}
