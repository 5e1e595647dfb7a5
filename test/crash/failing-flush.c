/* failing-flush: an LD_PRELOAD shim for the crash suite, which emulates a disk that fails one flush:
 * the FAIL_WAL_FLUSH_AT-th fdatasync or fsync of a file whose name ends in "-wal" (a SQLite WAL)
 * returns EIO, as Linux reports a write-back error; every other one is done as asked. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int is_wal(int fd) {
  char link[64], path[PATH_MAX];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof path - 1);
  if (n < 4) return 0;
  path[n] = '\0';
  return strcmp(path + n - 4, "-wal") == 0;
}

/* The flush asked for, or EIO for the one that fails (counted atomically: libuv's thread pool flushes too). */
static int flush(const char *name, int (**real)(int), int fd) {
  static long seen;
  if (!*real) *real = (int (*)(int))dlsym(RTLD_NEXT, name);
  const char *at = getenv("FAIL_WAL_FLUSH_AT");
  if (at && is_wal(fd) && __atomic_add_fetch(&seen, 1, __ATOMIC_SEQ_CST) == atol(at)) {
    errno = EIO;
    return -1;
  }
  return (*real)(fd);
}

int fsync(int fd) {
  static int (*real)(int);
  return flush("fsync", &real, fd);
}

int fdatasync(int fd) {
  static int (*real)(int);
  return flush("fdatasync", &real, fd);
}
