// pyro's statx shim for gVisor sandboxes, preloaded into every guest process through
// /etc/ld.so.preload (bind-mounted by the gvisor engine only).
//
// Why it exists: the runsc this host runs (release 2022-12) answers statx(2) with EINVAL when the
// flags include AT_NO_AUTOMOUNT, which coreutils 9.1 always passes: `ls -l`, `ls DIR` and `stat`
// fail with "Invalid argument" on every path. AT_NO_AUTOMOUNT only matters on automount points,
// which a sandbox has none of, so the shim drops it and makes the same system call.
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *buf) {
  return (int)syscall(SYS_statx, dirfd, path, flags & ~AT_NO_AUTOMOUNT, mask, buf);
}
