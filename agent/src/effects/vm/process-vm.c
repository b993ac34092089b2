// A lab "VM", the same program as process-vm.ts in C: after a failover dozens of VMs boot at once
// on a node, and a Node.js start costs ~0.12 s of CPU each, so on a 2-core lab the VMs' own
// start-up would hide what the HA manager does. This one starts in about a millisecond.
//   process-vm ha-vm NAME --ip IP --disk PATH --pidfile PATH [--port 80] [--dev vmbr0] [--prefix 24]
// Behaviour, messages and files are those of process-vm.ts (the driver's tests run both):
// - takes an exclusive flock on its disk file on shared storage, or fails with "in use" and the
//   disk's last line;
// - only then adds its address (`ip addr add`, then a gratuitous ARP), listens on ip:port and
//   answers every request with {"vm","host","pid","startedAt","diskOk"};
// - writes its pid file, appends "time host pid=N boot|tick|shutdown" lines to its disk (reopening
//   the path each time, so a storage cut makes writes fail like real I/O);
// - reports {"ready":true,"pid":N} or {"error":"..."} as one line on fd 3 when the driver opened it;
// - on SIGTERM/SIGINT: stops serving, writes "shutdown", drops its address, removes its pid file.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static const char *name, *ip, *dev = "vmbr0", *disk, *pidfile;
static int port = 80, prefix = 24;
static char host[256], started_at[32], cidr[64];
static int report_fd = -1;

/** ISO 8601 UTC with milliseconds, like JavaScript's toISOString(). */
static void iso_now(char out[32]) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + n, 32 - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

static void logf_(const char *fmt, ...) {
  char t[32];
  iso_now(t);
  fprintf(stderr, "%s ", t);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

/** Copies s into out as a JSON string body (quotes, backslashes and control characters escaped). */
static void json_escape(const char *s, char *out, size_t cap) {
  size_t o = 0;
  for (; *s && o + 7 < cap; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') o += (size_t)snprintf(out + o, cap - o, "\\%c", c);
    else if (c < 0x20) o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
    else out[o++] = (char)c;
  }
  out[o] = 0;
}

static void report(const char *json_line) {
  if (report_fd < 0) return; // not started by the driver: nobody listens on fd 3
  ssize_t ignored = write(report_fd, json_line, strlen(json_line));
  (void)ignored;
  close(report_fd);
  report_fd = -1;
}

// ---- commands (ip, arping)

/** Children start with an empty signal mask: ours blocks SIGTERM/SIGINT (they come through a signalfd). */
static posix_spawnattr_t *child_attr(void) {
  static posix_spawnattr_t attr;
  static bool ready = false;
  if (!ready) {
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_init(&attr);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    ready = true;
  }
  return &attr;
}

/** Runs argv, waits, and returns its exit code (127 if it could not run); stderr goes to err. */
static int run(char *const argv[], char *err, size_t errcap) {
  int p[2];
  err[0] = 0;
  if (pipe2(p, O_CLOEXEC) != 0) return snprintf(err, errcap, "pipe: %s", strerror(errno)), 127;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, p[1], 2);
  pid_t pid;
  int rc = posix_spawnp(&pid, argv[0], &fa, child_attr(), argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(p[1]);
  if (rc != 0) {
    close(p[0]);
    snprintf(err, errcap, "cannot run %s: %s", argv[0], strerror(rc));
    return 127;
  }
  size_t n = 0;
  ssize_t r;
  while ((r = read(p[0], err + n, errcap - 1 - n)) > 0 || (r < 0 && errno == EINTR)) {
    if (r > 0) n += (size_t)r;
    if (n >= errcap - 1) break;
  }
  err[n] = 0;
  close(p[0]);
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  for (char *e = err + strlen(err); e > err && (e[-1] == '\n' || e[-1] == ' '); e--) e[-1] = 0;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/** Adds the address; one already there (left by a killed VM) counts as added. */
static int add_address(char *msg, size_t cap) {
  char err[512];
  char *argv[] = {"ip", "addr", "add", cidr, "dev", (char *)dev, NULL};
  if (run(argv, err, sizeof err) == 0 || strstr(err, "File exists")) return 0;
  snprintf(msg, cap, "ip addr add %s dev %s: %s", cidr, dev, err);
  return -1;
}

/** Removes the address; one already gone counts as removed. */
static void remove_address(void) {
  char err[512];
  char *argv[] = {"ip", "addr", "del", cidr, "dev", (char *)dev, NULL};
  if (run(argv, err, sizeof err) == 0) return;
  if (strstr(err, "Address not found") || strstr(err, "Cannot assign requested address")) return;
  logf_("ip addr del %s dev %s: %s", cidr, dev, err);
}

/** Unsolicited ARP so neighbours that cached the previous node's MAC switch to us; not waited for. */
static pid_t arp_pid = -1;
static void gratuitous_arp(void) {
  char *argv[] = {"arping", "-q", "-U", "-c", "1", "-I", (char *)dev, (char *)ip, NULL};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  int rc = posix_spawnp(&arp_pid, argv[0], &fa, child_attr(), argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) logf_("arping -U %s on %s: %s", ip, dev, strerror(rc)), arp_pid = -1;
}
static void reap_arp(void) {
  int status;
  if (arp_pid <= 0 || waitpid(arp_pid, &status, WNOHANG) != arp_pid) return;
  arp_pid = -1;
  // iputils arping exits 1 when no reply came, which is normal for -U.
  if (!WIFEXITED(status) || WEXITSTATUS(status) > 1) logf_("arping -U %s on %s failed (status %d)", ip, dev, status);
}

// ---- the disk

/** "EROFS: read-only file system, open '/x'": the form of Node's fs errors, so both programs read alike. */
static void errno_text(int e, const char *syscall, const char *path, char *out, size_t cap) {
  const char *code = strerrorname_np(e);
  int n = snprintf(out, cap, "%s: %s, %s '%s'", code ? code : "EIO", strerror(e), syscall, path);
  size_t at = code ? strlen(code) + 2 : 5;
  if (n > 0 && at < cap && out[at] >= 'A' && out[at] <= 'Z') out[at] = (char)(out[at] - 'A' + 'a');
}

/** The disk's last line (who wrote it last), for the "in use" error. */
static void last_line(int fd, char *out, size_t cap) {
  char buf[513];
  struct stat st;
  out[0] = 0;
  if (fstat(fd, &st) != 0 || st.st_size == 0) return;
  size_t len = st.st_size < 512 ? (size_t)st.st_size : 512;
  ssize_t r = pread(fd, buf, len, st.st_size - (off_t)len);
  if (r <= 0) return;
  buf[r] = 0;
  while (r > 0 && (buf[r - 1] == '\n' || buf[r - 1] == ' ' || buf[r - 1] == '\t' || buf[r - 1] == '\r')) buf[--r] = 0;
  char *nl = strrchr(buf, '\n');
  snprintf(out, cap, "%s", nl ? nl + 1 : buf);
}

/** Opens and locks the disk; the fd stays open for the life of the process: it holds the lock. */
static int lock_disk(char *msg, size_t cap) {
  // flock(2) locks the inode, so it holds across mount namespaces and bind mounts (NFS maps it to
  // a server lock); the kernel drops it when the process dies, so a crash leaves no stale lock.
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", disk);
  char *slash = strrchr(dir, '/');
  if (slash && slash != dir) {
    *slash = 0;
    // One level only: a recursive mkdir would turn a read-only storage into a misleading ENOENT.
    if (access(dir, F_OK) != 0 && mkdir(dir, 0777) != 0 && errno != EEXIST) {
      char e[512];
      errno_text(errno, "mkdir", dir, e, sizeof e);
      snprintf(msg, cap, "cannot open disk %s: %s", disk, e);
      return -1;
    }
  }
  int fd = open(disk, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
  if (fd < 0) {
    char e[512];
    errno_text(errno, "open", disk, e, sizeof e);
    snprintf(msg, cap, "cannot open disk %s: %s", disk, e);
    return -1;
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    if (e == EWOULDBLOCK) {
      char last[513];
      last_line(fd, last, sizeof last);
      snprintf(msg, cap, "disk %s is in use by a running VM elsewhere (last write: %s)", disk, last[0] ? last : "none");
    } else {
      snprintf(msg, cap, "cannot lock disk %s: errno %d", disk, e);
    }
    close(fd);
    return -1;
  }
  return fd;
}

static bool disk_ok = true;
static char last_disk_error[512];
static void write_disk(const char *what) {
  char t[32], line[512], err[512];
  iso_now(t);
  int n = snprintf(line, sizeof line, "%s %s pid=%d %s\n", t, host, getpid(), what);
  int fd = open(disk, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
  bool ok = fd >= 0 && write(fd, line, (size_t)n) == n;
  errno_text(errno, fd >= 0 ? "write" : "open", disk, err, sizeof err);
  if (fd >= 0) ok = close(fd) == 0 && ok;
  if (ok) {
    if (!disk_ok) logf_("disk writes work again");
    disk_ok = true;
    return;
  }
  if (disk_ok || strcmp(err, last_disk_error) != 0) logf_("disk write failed: %s", err);
  disk_ok = false;
  snprintf(last_disk_error, sizeof last_disk_error, "%s", err);
}

// ---- HTTP: one JSON answer per connection

#define MAX_CLIENTS 64
static struct client { int fd; size_t got; char buf[2048]; struct timespec since; } clients[MAX_CLIENTS];

static void answer(struct client *c) {
  char body[512], resp[1024];
  int bl = snprintf(body, sizeof body, "{\"vm\":\"%s\",\"host\":\"%s\",\"pid\":%d,\"startedAt\":\"%s\",\"diskOk\":%s}", name,
                    host, getpid(), started_at, disk_ok ? "true" : "false");
  int rl = snprintf(resp, sizeof resp,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%s", bl, body);
  ssize_t ignored = send(c->fd, resp, (size_t)rl, MSG_NOSIGNAL | MSG_DONTWAIT);
  (void)ignored;
  close(c->fd);
  c->fd = -1;
}

static double age_s(struct timespec since) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (double)(now.tv_sec - since.tv_sec) + (double)(now.tv_nsec - since.tv_nsec) / 1e9;
}

static void accept_clients(int lfd) {
  for (;;) {
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    struct client *slot = NULL;
    for (int i = 0; i < MAX_CLIENTS && !slot; i++) if (clients[i].fd < 0) slot = &clients[i];
    if (!slot) { close(fd); continue; } // overloaded: the prober retries
    slot->fd = fd;
    slot->got = 0;
    clock_gettime(CLOCK_MONOTONIC, &slot->since);
  }
}

/** Reads what the client sent; answers once its request head is complete (or it gave up). */
static void serve_client(struct client *c) {
  for (;;) {
    ssize_t r = recv(c->fd, c->buf + c->got, sizeof c->buf - 1 - c->got, 0);
    if (r > 0) {
      c->got += (size_t)r;
      c->buf[c->got] = 0;
      if (strstr(c->buf, "\r\n\r\n") || strstr(c->buf, "\n\n") || c->got >= sizeof c->buf - 1) return answer(c);
      continue;
    }
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
    close(c->fd); // closed or failed before a full request
    c->fd = -1;
    return;
  }
}

// ---- boot and the main loop

static int listen_on(char *msg, size_t cap) {
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1) return snprintf(msg, cap, "cannot listen on %s:%d: bad address", ip, port), -1;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 128) != 0) {
    snprintf(msg, cap, "cannot listen on %s:%d: %s", ip, port, strerror(errno));
    if (fd >= 0) close(fd);
    return -1;
  }
  return fd;
}

static int write_pidfile(void) {
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", pidfile);
  FILE *f = fopen(tmp, "w");
  if (!f) return -1;
  fprintf(f, "{\"pid\":%d,\"name\":\"%s\",\"startedAt\":\"%s\"}", getpid(), name, started_at);
  if (fclose(f) != 0) return -1;
  return rename(tmp, pidfile);
}

static void usage(void) {
  fprintf(stderr, "usage: process-vm ha-vm NAME --ip IP --disk PATH --pidfile PATH [--port 80] [--dev vmbr0] [--prefix 24]\n");
  exit(2);
}

static void parse_args(int argc, char **argv) {
  if (argc < 3 || strcmp(argv[1], "ha-vm") != 0) usage();
  name = argv[2];
  for (int i = 3; i < argc; i++) {
    const char *k = argv[i];
    const char *v = i + 1 < argc ? argv[++i] : NULL;
    if (!v) usage();
    if (!strcmp(k, "--ip")) ip = v;
    else if (!strcmp(k, "--port")) port = atoi(v);
    else if (!strcmp(k, "--dev")) dev = v;
    else if (!strcmp(k, "--prefix")) prefix = atoi(v);
    else if (!strcmp(k, "--disk")) disk = v;
    else if (!strcmp(k, "--pidfile")) pidfile = v;
    else usage();
  }
  if (!name[0] || !ip || !disk || !pidfile || port <= 0 || port > 65535 || prefix < 0 || prefix > 32) usage();
}

int main(int argc, char **argv) {
  // fd 3 is the driver's report pipe only if it is open now, before we open anything ourselves.
  if (fcntl(3, F_GETFD) >= 0) report_fd = 3, fcntl(3, F_SETFD, FD_CLOEXEC);
  parse_args(argc, argv);
  setvbuf(stderr, NULL, _IOLBF, 0);
  iso_now(started_at);
  gethostname(host, sizeof host - 1);
  snprintf(cidr, sizeof cidr, "%s/%d", ip, prefix);
  for (int i = 0; i < MAX_CLIENTS; i++) clients[i].fd = -1;

  // Signals arrive through a signalfd, so shutdown runs in the loop, never inside a handler.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  signal(SIGPIPE, SIG_IGN); // a driver that gave up on the report pipe must not kill us: EPIPE is enough
  int sfd = signalfd(-1, &mask, SFD_CLOEXEC);

  char msg[1024];
  bool address_added = false;
  int lfd = -1;
  if (lock_disk(msg, sizeof msg) < 0) goto failed;
  if (add_address(msg, sizeof msg) < 0) goto failed; // only after the lock: never ARP a running VM away
  address_added = true;
  if ((lfd = listen_on(msg, sizeof msg)) < 0) goto failed;
  gratuitous_arp();
  if (write_pidfile() != 0) {
    snprintf(msg, sizeof msg, "cannot write pid file %s: %s", pidfile, strerror(errno));
    goto failed;
  }
  write_disk("boot");
  fprintf(stderr, "%s vm %s running on %s at %s:%d, pid %d\n", started_at, name, host, ip, port, getpid());
  char ready[64];
  snprintf(ready, sizeof ready, "{\"ready\":true,\"pid\":%d}\n", getpid());
  report(ready);

  struct timespec next_tick;
  clock_gettime(CLOCK_MONOTONIC, &next_tick);
  for (;;) {
    struct pollfd pfds[2 + MAX_CLIENTS];
    struct client *who[2 + MAX_CLIENTS];
    int n = 0;
    pfds[n++] = (struct pollfd){.fd = sfd, .events = POLLIN};
    pfds[n++] = (struct pollfd){.fd = lfd, .events = POLLIN};
    for (int i = 0; i < MAX_CLIENTS; i++) {
      if (clients[i].fd < 0) continue;
      if (age_s(clients[i].since) > 5) { close(clients[i].fd); clients[i].fd = -1; continue; } // idle client
      who[n] = &clients[i];
      pfds[n++] = (struct pollfd){.fd = clients[i].fd, .events = POLLIN};
    }
    if (age_s(next_tick) >= 1.0) {
      write_disk("tick");
      next_tick.tv_sec += 1;
      if (age_s(next_tick) >= 1.0) clock_gettime(CLOCK_MONOTONIC, &next_tick); // after a pause: no burst of ticks
    }
    reap_arp();
    if (poll(pfds, (nfds_t)n, 200) < 0 && errno != EINTR) break;
    if (pfds[0].revents & POLLIN) {
      struct signalfd_siginfo si;
      if (read(sfd, &si, sizeof si) == sizeof si) {
        logf_("%s: shutting down", si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
        break;
      }
    }
    if (pfds[1].revents & POLLIN) accept_clients(lfd);
    for (int i = 2; i < n; i++) if (pfds[i].revents) serve_client(who[i]);
  }
  close(lfd);
  for (int i = 0; i < MAX_CLIENTS; i++) if (clients[i].fd >= 0) close(clients[i].fd);
  write_disk("shutdown");
  remove_address();
  unlink(pidfile);
  return 0;

failed:
  logf_("start failed: %s", msg);
  if (address_added) remove_address();
  char esc[2048], line[2100];
  json_escape(msg, esc, sizeof esc);
  snprintf(line, sizeof line, "{\"error\":\"%s\"}\n", esc);
  report(line);
  return 1;
}
