// pyro's guest-side process spawner (a Node-API addon loaded by the agent).
//
// Why it exists: libuv starts children with fork(). Under gVisor, forking the agent (a Node.js
// process with a large address space) costs about twice what the command itself costs to start.
// posix_spawn() uses clone(CLONE_VM|CLONE_VFORK), which copies nothing, so an exec through the
// agent costs about what a spawn from a shell costs. It does only the spawn; reading output,
// timeouts and killing the process group stay in JavaScript. It also starts shells on a
// pseudo-terminal (spawnPty) and sizes and inspects that terminal, which Node cannot do itself, and
// does what a VM restored from a saved image needs at once, without spawning tools: reseed the
// kernel's random number generator (reseedRandom), set the clock (setClock), mount a share (mountFs).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <time.h>
#include <sys/wait.h>
#include <linux/random.h>
#include <termios.h>
#include <unistd.h>

#define CHECK(call)                                                      \
  do {                                                                   \
    if ((call) != napi_ok) {                                             \
      napi_throw_error(env, "PYRO_SPAWN", "Node-API call failed: " #call); \
      return NULL;                                                       \
    }                                                                    \
  } while (0)

static void free_strv(char **v) {
  if (!v) return;
  for (char **p = v; *p; p++) free(*p);
  free(v);
}

// A JS array of strings as a NULL-terminated C array; NULL (with a pending exception) on error.
static char **to_strv(napi_env env, napi_value array) {
  uint32_t n = 0;
  if (napi_get_array_length(env, array, &n) != napi_ok) {
    napi_throw_type_error(env, "PYRO_SPAWN", "expected an array of strings");
    return NULL;
  }
  char **v = calloc(n + 1, sizeof(char *));
  if (!v) return NULL;
  for (uint32_t i = 0; i < n; i++) {
    napi_value item;
    size_t len = 0;
    if (napi_get_element(env, array, i, &item) != napi_ok ||
        napi_get_value_string_utf8(env, item, NULL, 0, &len) != napi_ok) {
      free_strv(v);
      napi_throw_type_error(env, "PYRO_SPAWN", "expected an array of strings");
      return NULL;
    }
    v[i] = malloc(len + 1);
    napi_get_value_string_utf8(env, item, v[i], len + 1, &len);
  }
  return v;
}

static napi_value throw_errno(napi_env env, int err, const char *what) {
  napi_value msg, code, error;
  napi_create_string_utf8(env, strerror(err), NAPI_AUTO_LENGTH, &msg);
  napi_create_int32(env, err, &code);
  napi_create_error(env, NULL, msg, &error);
  napi_set_named_property(env, error, "errno", code);
  napi_value syscall;
  napi_create_string_utf8(env, what, NAPI_AUTO_LENGTH, &syscall);
  napi_set_named_property(env, error, "syscall", syscall);
  napi_throw(env, error);
  return NULL;
}

static napi_value int_property(napi_env env, napi_value object, const char *name, int32_t value) {
  napi_value v;
  if (napi_create_int32(env, value, &v) != napi_ok || napi_set_named_property(env, object, name, v) != napi_ok) {
    napi_throw_error(env, "PYRO_SPAWN", "Node-API call failed: int_property");
    return NULL;
  }
  return object;
}

// Spawns args[0] (file) with args[1] (argv) and args[2] (envp) in args[3] (cwd), in a session (and
// process group) of its own, with default signal dispositions (Node ignores SIGPIPE; a child must
// not inherit that) and an empty signal mask. Consumes `actions`. Returns 0, posix_spawn's error
// number, or -1 with a JS exception pending when an argument is not what it should be.
static int spawn_in_session(napi_env env, napi_value *args, posix_spawn_file_actions_t *actions, pid_t *pid) {
  char file[4096], cwd[4096];
  size_t len;
  char **argv = NULL, **envp = NULL;
  int rc = -1;
  if (napi_get_value_string_utf8(env, args[0], file, sizeof file, &len) != napi_ok ||
      napi_get_value_string_utf8(env, args[3], cwd, sizeof cwd, &len) != napi_ok) {
    napi_throw_type_error(env, "PYRO_SPAWN", "file and cwd must be strings");
  } else if ((argv = to_strv(env, args[1])) && (envp = to_strv(env, args[2]))) {
    posix_spawn_file_actions_addchdir_np(actions, cwd);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    rc = posix_spawnp(pid, file, actions, &attr, argv, envp);
    posix_spawnattr_destroy(&attr);
  }
  posix_spawn_file_actions_destroy(actions);
  free_strv(argv);
  free_strv(envp);
  return rc;
}

// spawn(file, argv, envp, cwd) -> { pid, stdout, stderr } (pipe read ends). The child gets
// /dev/null as stdin, a session (and process group) of its own, default signal dispositions
// (Node ignores SIGPIPE; a child must not inherit that) and an empty signal mask.
static napi_value Spawn(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value args[4];
  CHECK(napi_get_cb_info(env, info, &argc, args, NULL, NULL));
  if (argc < 4) {
    napi_throw_type_error(env, "PYRO_SPAWN", "spawn(file, argv, envp, cwd)");
    return NULL;
  }
  int out[2] = {-1, -1}, err[2] = {-1, -1};
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    int e = errno;
    for (int i = 0; i < 2; i++) {
      if (out[i] >= 0) close(out[i]);
      if (err[i] >= 0) close(err[i]);
    }
    return throw_errno(env, e, "pipe2");
  }

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  pid_t pid = 0;
  int rc = spawn_in_session(env, args, &actions, &pid);
  close(out[1]);
  close(err[1]);
  if (rc != 0) {
    close(out[0]);
    close(err[0]);
    return rc < 0 ? NULL : throw_errno(env, rc, "posix_spawn");
  }

  napi_value result;
  CHECK(napi_create_object(env, &result));
  if (!int_property(env, result, "pid", pid) || !int_property(env, result, "stdout", out[0]) ||
      !int_property(env, result, "stderr", err[0]))
    return NULL;
  return result;
}

// reap(pid) -> null while the child runs, else { code, signal } (signal as a number or null).
static napi_value Reap(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value args[1];
  int32_t pid;
  CHECK(napi_get_cb_info(env, info, &argc, args, NULL, NULL));
  CHECK(napi_get_value_int32(env, args[0], &pid));
  int status = 0;
  pid_t r = waitpid(pid, &status, WNOHANG);
  napi_value result, v;
  if (r == 0) {
    CHECK(napi_get_null(env, &result));
    return result;
  }
  if (r < 0) return throw_errno(env, errno, "waitpid");
  CHECK(napi_create_object(env, &result));
  if (WIFEXITED(status)) {
    CHECK(napi_create_int32(env, WEXITSTATUS(status), &v));
    CHECK(napi_set_named_property(env, result, "code", v));
    CHECK(napi_get_null(env, &v));
    CHECK(napi_set_named_property(env, result, "signal", v));
  } else {
    CHECK(napi_get_null(env, &v));
    CHECK(napi_set_named_property(env, result, "code", v));
    CHECK(napi_create_int32(env, WTERMSIG(status), &v));
    CHECK(napi_set_named_property(env, result, "signal", v));
  }
  return result;
}


// spawnPty(file, argv, envp, cwd, cols, rows) -> { pid, master }. The child runs in a session of
// its own with the terminal's replica as stdin, stdout and stderr; opening the replica (without
// O_NOCTTY) after setsid makes it the session's controlling terminal, on Linux and under gVisor,
// so job control and ^C work. The master is returned close-on-exec, sized cols x rows.
static napi_value SpawnPty(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value args[6];
  CHECK(napi_get_cb_info(env, info, &argc, args, NULL, NULL));
  if (argc < 6) {
    napi_throw_type_error(env, "PYRO_SPAWN", "spawnPty(file, argv, envp, cwd, cols, rows)");
    return NULL;
  }
  int32_t cols, rows;
  CHECK(napi_get_value_int32(env, args[4], &cols));
  CHECK(napi_get_value_int32(env, args[5], &rows));

  int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) return throw_errno(env, errno, "posix_openpt");
  char replica[128];
  struct winsize size = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
  const char *failed = NULL;
  if (grantpt(master) != 0) failed = "grantpt";
  else if (unlockpt(master) != 0) failed = "unlockpt";
  else if (ptsname_r(master, replica, sizeof replica) != 0) failed = "ptsname";
  else if (ioctl(master, TIOCSWINSZ, &size) != 0) failed = "ioctl(TIOCSWINSZ)";
  if (failed) {
    int e = errno;
    close(master);
    return throw_errno(env, e, failed);
  }

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, replica, O_RDWR, 0);
  posix_spawn_file_actions_adddup2(&actions, 0, 1);
  posix_spawn_file_actions_adddup2(&actions, 0, 2);
  // glibc applies SETSID before the file actions, so the replica opens in the new session.
  pid_t pid = 0;
  int rc = spawn_in_session(env, args, &actions, &pid);
  if (rc != 0) {
    close(master);
    return rc < 0 ? NULL : throw_errno(env, rc, "posix_spawn");
  }

  napi_value result;
  CHECK(napi_create_object(env, &result));
  if (!int_property(env, result, "pid", pid) || !int_property(env, result, "master", master)) return NULL;
  return result;
}

// foregroundPgrp(fd) -> the terminal's foreground process group, asked through the master.
// Linux answers; gVisor answers only the terminal's own session (ENOTTY here).
static napi_value ForegroundPgrp(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value args[1];
  int32_t fd;
  CHECK(napi_get_cb_info(env, info, &argc, args, NULL, NULL));
  CHECK(napi_get_value_int32(env, args[0], &fd));
  pid_t pgrp = tcgetpgrp(fd);
  if (pgrp < 0) return throw_errno(env, errno, "tcgetpgrp");
  napi_value result;
  CHECK(napi_create_int32(env, pgrp, &result));
  return result;
}

// A restored VM resumes with the same kernel CRNG state as every other VM restored from the same
// image: credit fresh host entropy to the input pool, then force the CRNG to rekey from it, so the
// next read of /dev/urandom differs from every sibling's. Needs CAP_SYS_ADMIN (the agent is root).
static napi_value ReseedRandom(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value args[1];
  void *data;
  size_t len;
  CHECK(napi_get_cb_info(env, info, &argc, args, NULL, NULL));
  CHECK(napi_get_buffer_info(env, args[0], &data, &len));
  struct rand_pool_info *pool = malloc(sizeof(*pool) + len);
  if (!pool) return throw_errno(env, ENOMEM, "malloc");
  pool->entropy_count = (int)(len * 8);
  pool->buf_size = (int)len;
  memcpy(pool->buf, data, len);
  int fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    free(pool);
    return throw_errno(env, err, "open /dev/urandom");
  }
  int rc = ioctl(fd, RNDADDENTROPY, pool);
  int err = errno;
  free(pool);
  if (rc == 0) {
    rc = ioctl(fd, RNDRESEEDCRNG);
    err = errno;
  }
  close(fd);
  if (rc != 0) return throw_errno(env, err, "ioctl RNDADDENTROPY/RNDRESEEDCRNG");
  return NULL;
}

// Sets the wall clock (a restored VM wakes with the time it was saved at).
static napi_value SetClock(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value args[1];
  double ms;
  CHECK(napi_get_cb_info(env, info, &argc, args, NULL, NULL));
  CHECK(napi_get_value_double(env, args[0], &ms));
  struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)((ms - (double)(time_t)(ms / 1000) * 1000) * 1e6)};
  if (clock_settime(CLOCK_REALTIME, &ts) != 0) return throw_errno(env, errno, "clock_settime");
  return NULL;
}

// mount(2) of a filesystem that needs no options (a virtio-fs share by its tag).
static napi_value MountFs(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value args[3];
  char source[256], target[4096], type[64];
  size_t len;
  CHECK(napi_get_cb_info(env, info, &argc, args, NULL, NULL));
  CHECK(napi_get_value_string_utf8(env, args[0], source, sizeof source, &len));
  CHECK(napi_get_value_string_utf8(env, args[1], target, sizeof target, &len));
  CHECK(napi_get_value_string_utf8(env, args[2], type, sizeof type, &len));
  if (mount(source, target, type, 0, NULL) != 0) return throw_errno(env, errno, "mount");
  return NULL;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "spawn", NAPI_AUTO_LENGTH, Spawn, NULL, &fn);
  napi_set_named_property(env, exports, "spawn", fn);
  napi_create_function(env, "reap", NAPI_AUTO_LENGTH, Reap, NULL, &fn);
  napi_set_named_property(env, exports, "reap", fn);
  napi_create_function(env, "spawnPty", NAPI_AUTO_LENGTH, SpawnPty, NULL, &fn);
  napi_set_named_property(env, exports, "spawnPty", fn);
  napi_create_function(env, "foregroundPgrp", NAPI_AUTO_LENGTH, ForegroundPgrp, NULL, &fn);
  napi_set_named_property(env, exports, "foregroundPgrp", fn);
  napi_create_function(env, "reseedRandom", NAPI_AUTO_LENGTH, ReseedRandom, NULL, &fn);
  napi_set_named_property(env, exports, "reseedRandom", fn);
  napi_create_function(env, "setClock", NAPI_AUTO_LENGTH, SetClock, NULL, &fn);
  napi_set_named_property(env, exports, "setClock", fn);
  napi_create_function(env, "mountFs", NAPI_AUTO_LENGTH, MountFs, NULL, &fn);
  napi_set_named_property(env, exports, "mountFs", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
