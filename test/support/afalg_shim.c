/* LD_PRELOAD shim for BlueZ's btvirt on kernels without AF_ALG (CONFIG_CRYPTO_USER_API), see
 * docs test-lab §4. btvirt opens AF_ALG sockets at start-up for LE crypto (pairing, privacy), which the
 * BMS tests never use: socket(AF_ALG) gets an AF_UNIX socket instead and its bind() succeeds. Any later
 * crypto request on it fails cleanly. Built by test/support/btvirt.ts. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sys/socket.h>

#ifndef AF_ALG
#define AF_ALG 38
#endif

#define MAX_FD 1024
static unsigned char substituted[MAX_FD];

int socket(int domain, int type, int protocol) {
  static int (*next_socket)(int, int, int);
  if (!next_socket) next_socket = (int (*)(int, int, int))dlsym(RTLD_NEXT, "socket");
  if (domain != AF_ALG) return next_socket(domain, type, protocol);
  int fd = next_socket(AF_UNIX, type, 0);
  if (fd >= 0 && fd < MAX_FD) substituted[fd] = 1;
  return fd;
}

int bind(int fd, const struct sockaddr *addr, socklen_t len) {
  static int (*next_bind)(int, const struct sockaddr *, socklen_t);
  if (!next_bind) next_bind = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "bind");
  if (addr && addr->sa_family == AF_ALG && fd >= 0 && fd < MAX_FD && substituted[fd]) return 0;
  return next_bind(fd, addr, len);
}

int close(int fd) {
  static int (*next_close)(int);
  if (!next_close) next_close = (int (*)(int))dlsym(RTLD_NEXT, "close");
  if (fd >= 0 && fd < MAX_FD) substituted[fd] = 0;
  return next_close(fd);
}
