/* wrec: the lab guest's workload recorder (our own code, built static at lab build time).
 *
 *   wrec now                       print the wallclock (unix seconds.nanoseconds)
 *   wrec stamp DEVICE SEQ          print one record now (after a shell workload step completed)
 *   wrec beat DEVICE PERIOD_MS     print a record every PERIOD_MS, forever (the heartbeat)
 *   wrec net PEER_IP PERIOD_MS TIMEOUT_MS HOOK
 *                                  the network workload, forever: an ICMP echo to PEER_IP every
 *                                  PERIOD_MS; a reply within TIMEOUT_MS is a record; after a
 *                                  miss it runs the shell command HOOK (at most once a second),
 *                                  which puts the address on the newest vif
 *   wrec disk SLOTS TIMEOUT_MS PERIOD_MS
 *                                  the disk workload, forever: write block SEQ % SLOTS of the
 *                                  newest /dev/xvd* as "W <SEQ>\n" (O_DIRECT), fdatasync (a flush
 *                                  through blkfront to the backend), read it back, compare, and
 *                                  only then print the record: a record is an acknowledged write.
 *                                  SEQ starts after the highest one already on the disk. A write
 *                                  stuck on a dead backend is left behind in its child process.
 *                                  A write that fails is recorded as "disk-eio" and written again.
 *   wrec disk SLOTS TIMEOUT_MS PERIOD_MS PATH DEVICE
 *                                  the same on the disk PATH (an HVM guest's emulated disk, which
 *                                  its device model serves), its records named DEVICE ("emul")
 *   wrec storm POLL_MS             the xenstore storm, on demand: it reads its own
 *                                  data/windsor-storm when its watch on it fires, and every
 *                                  POLL_MS in any case; while that node is there (dom0 writes it:
 *                                  the harness's change xenstore-storm), it writes data/storm/N
 *                                  (64 nodes in turn) as fast as xenstored answers, adds a watch
 *                                  on data/storm with every write (up to 1024: xenstored's quota
 *                                  says no first, recorded once as "xs-quota" with the count), and
 *                                  records "xs-write" every 100 writes. Every 0.5 s it reads the node
 *                                  again: once it is gone, it removes its watches and nodes. It
 *                                  talks xenstore's wire protocol on /dev/xen/xenbus.
 *   wrec flood POLL_MS PEER_IP     the noisy neighbour, on demand (woken as storm is): while its
 *                                  data/windsor-flood names a device (dom0 writes it: the
 *                                  harness's change flood), that
 *                                  device's requests back to back, 32 in flight: "disk" O_DIRECT
 *                                  reads of the newest disk, "net" ICMP echoes to PEER_IP (its
 *                                  network backend's address); a record "DEVICE-flood N" every
 *                                  100 ms, N the requests completed since the one before
 *   wrec probe PERIOD_MS           the xenstore probe, forever: every PERIOD_MS a write of its own
 *                                  data/probe and a read back; each round trip a record "xs".
 *   wrec pump                      copy stdin (the FIFO every workload writes its records to) to
 *                                  stdout (hvc0), whole lines only, the FIFO grown to 1 MiB: when
 *                                  the console backend stops reading (xenconsoled stalled or dead,
 *                                  and hvc0's 2 KiB ring full) this copy waits, not the workloads,
 *                                  for about 20 minutes of records; they reach dom0 late, with the
 *                                  times they were made. (`wrec beat console` writes to hvc0 itself:
 *                                  the console's own records stop while it is down.)
 *
 * A record is "WREC <unix seconds.nanoseconds> <device> <seq>" on stdout (the guest's console);
 * a disk, emul or net operation's record adds its latency in seconds (the write, its flush and the
 * read back, timed in the child that makes them; an echo to its reply).
 * A PV guest's CLOCK_REALTIME comes from the wallclock Xen shares with every domain, so records
 * of different guests, and dom0's own clock, are comparable to well under a millisecond —
 * unlike xenconsoled's --timestamp, which has whole seconds. Workloads run in C, not in shell
 * loops: under TCG every fork+exec costs, and the guests share two CPUs with everything else. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BLOCK 512

static void record(const char *device, unsigned long seq) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    printf("WREC %lld.%09ld %s %lu\n", (long long)now.tv_sec, now.tv_nsec, device, seq);
    fflush(stdout);
}

/* A record with the operation's latency (seconds): "WREC <time> <device> <seq> <latency>". */
static void record_lat(const char *device, unsigned long seq, double seconds) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    printf("WREC %lld.%09ld %s %lu %.6f\n", (long long)now.tv_sec, now.tv_nsec, device, seq, seconds);
    fflush(stdout);
}

static void sleep_ms(long ms) {
    struct timespec d = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&d, NULL);
}

static double mono(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

/* Wait for `pid` up to `timeout_ms`; its exit status, or -1 if it is still running. */
static int wait_for(pid_t pid, long timeout_ms) {
    for (long waited = 0;; waited += 2) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
        if (waited >= timeout_ms)
            return -1;
        sleep_ms(2);
    }
}

/* The newest Xen virtual disk: after a block backend is rebuilt, the recovery agent attaches
 * the disk again under the next name (xvda, xvdb, ...), because the old one may still be held
 * by a write stuck on the dead backend. */
static int newest_disk(char *path, size_t size) {
    DIR *dir = opendir("/sys/block");
    struct dirent *e;
    char best[64] = "";
    if (!dir)
        return -1;
    while ((e = readdir(dir)))
        if (strncmp(e->d_name, "xvd", 3) == 0 && strlen(e->d_name) < sizeof(best) &&
            (strlen(e->d_name) > strlen(best) ||
             (strlen(e->d_name) == strlen(best) && strcmp(e->d_name, best) > 0)))
            strcpy(best, e->d_name);
    closedir(dir);
    if (!best[0])
        return -1;
    snprintf(path, size, "/dev/%s", best);
    return 0;
}

static unsigned long highest_on_disk(const char *path, unsigned long slots) {
    char buf[BLOCK];
    unsigned long high = 0, seq;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    for (unsigned long i = 0; i < slots && pread(fd, buf, BLOCK, (off_t)i * BLOCK) == BLOCK; i++)
        if (sscanf(buf, "W %lu\n", &seq) == 1 && seq + 1 > high)
            high = seq + 1;
    close(fd);
    return high;
}

/* How long the last write's I/O took (write, flush, read back), in seconds: the child sets it in
 * memory it shares with its parent (fork and exec cost far more than the I/O under TCG, and are
 * not the device's latency). */
static double *io_seconds;

/* One acknowledged write, in a child process (it may block forever on a dead backend). */
static int write_block(const char *path, unsigned long seq, unsigned long slots) {
    void *out, *in;
    int fd = open(path, O_RDWR | O_DIRECT);
    off_t at = (off_t)(seq % slots) * BLOCK;
    if (fd < 0 || posix_memalign(&out, BLOCK, BLOCK) || posix_memalign(&in, BLOCK, BLOCK))
        return 1;
    memset(out, 0, BLOCK);
    snprintf(out, BLOCK, "W %lu\n", seq);
    double began = mono();
    if (pwrite(fd, out, BLOCK, at) != BLOCK || fdatasync(fd) || pread(fd, in, BLOCK, at) != BLOCK)
        return 1;
    *io_seconds = mono() - began;
    return memcmp(out, in, BLOCK) != 0;
}

static int disk(unsigned long slots, long timeout_ms, long period_ms, const char *fixed, const char *name) {
    char path[80] = "", stuck_on[80] = "", eio[80];
    unsigned long seq = 0;
    int started = 0, status;
    pid_t stuck = 0;  /* a write that outlived its timeout: no new writes pile up behind it */
    io_seconds = mmap(NULL, sizeof(*io_seconds), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (io_seconds == MAP_FAILED)
        return 1;
    snprintf(eio, sizeof(eio), "%s-eio", name);
    for (;; sleep_ms(period_ms)) {
        if (fixed ? (snprintf(path, sizeof(path), "%s", fixed), access(path, W_OK)) : newest_disk(path, sizeof(path)))
            continue;
        if (stuck) {
            if (waitpid(stuck, &status, WNOHANG) == stuck) {  /* it finished after all */
                stuck = 0;
                if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                    record(name, seq++);
            } else if (strcmp(path, stuck_on) == 0) {
                continue;  /* the backend is stalled or dead: wait for it, or for a new disk */
            } else {
                stuck = 0;  /* a new disk: the old write is left behind on the dead one */
            }
        }
        if (!started) {
            seq = highest_on_disk(path, slots);
            started = 1;
        }
        *io_seconds = -1;
        pid_t pid = fork();
        if (pid == 0)
            _exit(write_block(path, seq, slots));
        if (pid < 0)
            continue;
        int rc = wait_for(pid, timeout_ms);
        if (rc == 0) {
            record_lat(name, seq++, *io_seconds);
        } else if (rc > 0) {
            record(eio, seq);  /* the write failed (an I/O error): seen, not acknowledged */
        } else if (rc < 0) {
            stuck = pid;
            strcpy(stuck_on, path);
        }
    }
}

static unsigned short checksum(const void *data, size_t len) {
    const unsigned short *p = data;
    unsigned long sum = 0;
    for (; len > 1; len -= 2)
        sum += *p++;
    if (len)
        sum += *(const unsigned char *)p;
    sum = (sum >> 16) + (sum & 0xffff);
    return (unsigned short)~(sum + (sum >> 16));
}

/* One echo request and its reply within timeout_ms: 0 on success. */
static int echo(int fd, struct sockaddr_in *peer, unsigned short seq, long timeout_ms) {
    struct icmphdr req = {.type = ICMP_ECHO};
    char buf[1500];
    req.un.echo.id = htons((unsigned short)getpid());
    req.un.echo.sequence = htons(seq);
    req.checksum = checksum(&req, sizeof(req));
    if (sendto(fd, &req, sizeof(req), 0, (struct sockaddr *)peer, sizeof(*peer)) < 0)
        return 1;
    double end = mono() + timeout_ms / 1e3;
    for (double left; (left = end - mono()) > 0;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, (int)(left * 1e3) + 1) <= 0)
            continue;
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        struct iphdr *ip = (struct iphdr *)buf;
        if (n < (ssize_t)sizeof(*ip) || n < ip->ihl * 4 + (ssize_t)sizeof(struct icmphdr))
            continue;
        struct icmphdr *rep = (struct icmphdr *)(buf + ip->ihl * 4);
        if (rep->type == ICMP_ECHOREPLY && rep->un.echo.id == req.un.echo.id &&
            rep->un.echo.sequence == req.un.echo.sequence)
            return 0;
    }
    return 1;
}

static int net(const char *peer_ip, long period_ms, long timeout_ms, const char *hook) {
    struct sockaddr_in peer = {.sin_family = AF_INET};
    int fd = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
    if (fd < 0 || inet_pton(AF_INET, peer_ip, &peer.sin_addr) != 1)
        return 2;
    double hooked = 0;
    for (unsigned long seq = 0, sent = 0;; sent++) {
        double start = mono();
        if (echo(fd, &peer, (unsigned short)sent, timeout_ms) == 0) {
            record_lat("net", seq++, mono() - start);
        } else if (mono() - hooked >= 1.0) {
            hooked = mono();
            if (system(hook) != 0)
                fprintf(stderr, "wrec: %s failed\n", hook);
        }
        long left = period_ms - (long)((mono() - start) * 1e3);
        if (left > 0)
            sleep_ms(left);
    }
}

/* xenstore's wire protocol (xen/io/xs_wire.h) on /dev/xen/xenbus: a request, then its answer;
 * watch events (type 15) that arrive before it are read and dropped. 0: answered, -1: an error. */
enum { XS_READ = 2, XS_WATCH = 4, XS_UNWATCH = 5, XS_WRITE = 11, XS_RM = 13, XS_EVENT = 15, XS_ERROR = 16 };
struct xs_head { unsigned int type, req_id, tx_id, len; };
static int xs_fd = -1;
static unsigned int xs_req = 1;
static char xs_answer[4096];  /* the last answer's body (a read's value), NUL-terminated */

static int read_full(int fd, void *buf, size_t len) {
    for (size_t got = 0; got < len;) {
        ssize_t n = read(fd, (char *)buf + got, len - got);
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    return 0;
}

static int xs(unsigned int type, const char *body, size_t len) {
    char msg[256];
    struct xs_head head = {type, xs_req++, 0, (unsigned int)len}, answer;
    if (len + sizeof(head) > sizeof(msg))
        return -1;
    memcpy(msg, &head, sizeof(head));
    memcpy(msg + sizeof(head), body, len);
    if (write(xs_fd, msg, sizeof(head) + len) != (ssize_t)(sizeof(head) + len))
        return -1;
    for (;;) {
        char buf[4096];
        if (read_full(xs_fd, &answer, sizeof(answer)) != 0 || answer.len > sizeof(buf) ||
            read_full(xs_fd, buf, answer.len) != 0)
            return -1;
        if (answer.type != XS_EVENT) {
            size_t n = answer.len < sizeof(xs_answer) ? answer.len : sizeof(xs_answer) - 1;
            memcpy(xs_answer, buf, n);
            xs_answer[n] = 0;
            return answer.type == XS_ERROR ? -1 : 0;
        }
    }
}

/* "A\0B\0" or "A\0B" (a write's value has no trailing NUL): its length */
static size_t two(char *out, size_t size, const char *a, const char *b, int nul) {
    int n = snprintf(out, size, "%s%c%s", a, 0, b);
    return (size_t)n + (nul ? 1 : 0);
}

/* Watch NODE (relative to the domain's own path) on the connection: xenstored sends an event at
 * once, and one at every change of it. */
static int xs_watch(const char *node) {
    char body[96];
    return xs(XS_WATCH, body, two(body, sizeof(body), node, "asked", 1));
}

/* Until an event comes on the connection (a watch fired), `max_ms` at most; the event is dropped:
 * the caller reads its node again. Nothing else is pending between requests (`xs` reads every
 * answer, and drops the events that come before it). */
static void xs_wait(long max_ms) {
    struct pollfd p = {xs_fd, POLLIN, 0};
    struct xs_head head;
    char buf[4096];
    if (poll(&p, 1, (int)max_ms) > 0 && read_full(xs_fd, &head, sizeof(head)) == 0 && head.len <= sizeof(buf))
        read_full(xs_fd, buf, head.len);
}

/* The connection an on-demand workload waits on, its node `ask` watched. */
static int xs_open(const char *who, const char *ask) {
    xs_fd = open("/dev/xen/xenbus", O_RDWR);
    if (xs_fd < 0 || xs_watch(ask) != 0) {
        fprintf(stderr, "wrec %s: cannot watch %s on /dev/xen/xenbus: %s\n", who, ask, strerror(errno));
        return -1;
    }
    return 0;
}

static int storm(long poll_ms) {
    static const char ask[] = "data/windsor-storm";
    if (xs_open("storm", ask) != 0)
        return 1;
    for (unsigned long n = 0;; xs_wait(poll_ms)) {
        if (xs(XS_READ, ask, sizeof(ask)) != 0)
            continue;  /* not asked to storm */
        unsigned long watches = 0;
        int write_refused = 0, watch_refused = 0;
        double asked = mono();
        char body[96], token[32], value[32];
        for (;; n++) {
            snprintf(token, sizeof(token), "data/storm/%lu", n % 64);
            snprintf(value, sizeof(value), "%lu", n);
            if (xs(XS_WRITE, body, two(body, sizeof(body), token, value, 0)) != 0 && !write_refused) {
                record("xs-write-refused", n);
                write_refused = 1;
            }
            if (watches < 1024 && !watch_refused) {
                snprintf(token, sizeof(token), "w%lu", watches);
                if (xs(XS_WATCH, body, two(body, sizeof(body), "data/storm", token, 1)) == 0) {
                    watches++;
                } else {
                    record("xs-quota", watches);  /* xenstored refused one more watch */
                    watch_refused = 1;
                }
            }
            if ((n + 1) % 100 == 0)
                record("xs-write", n + 1);
            if (mono() - asked >= 0.5) {  /* with a watch quota's worth of events per write, writes slow */
                asked = mono();
                if (xs(XS_READ, ask, sizeof(ask)) != 0)
                    break;  /* dom0 took it back: the storm is over */
            }
        }
        for (unsigned long w = 0; w < watches; w++) {
            snprintf(token, sizeof(token), "w%lu", w);
            xs(XS_UNWATCH, body, two(body, sizeof(body), "data/storm", token, 1));
        }
        xs(XS_RM, "data/storm", sizeof("data/storm"));
    }
}

/* One flood worker, until killed: the device's requests back to back, a record "DEVICE-flood N"
 * every 100 ms, N the requests completed since the one before. disk: O_DIRECT reads of 4 KiB at
 * random places of the newest disk (reads: the workload's blocks are never touched); net: ICMP
 * echoes to PEER_IP, up to FLOOD_DEPTH in flight, replies counted. */
#define FLOOD_DEPTH 32
static void tally(const char *name, unsigned long *done, double *last) {
    if (mono() - *last >= 0.1) {
        record(name, *done);
        *done = 0;
        *last = mono();
    }
}

static void flood_worker(const char *device, const char *peer_ip) {
    char name[32];
    unsigned long done = 0;
    double last = mono();
    snprintf(name, sizeof(name), "%s-flood", device);
    srand((unsigned)getpid());
    if (strcmp(device, "disk") == 0) {
        char path[80];
        void *buf;
        if (newest_disk(path, sizeof(path)) || posix_memalign(&buf, 4096, 4096))
            _exit(1);
        int fd = open(path, O_RDONLY | O_DIRECT);
        off_t blocks = fd < 0 ? 0 : lseek(fd, 0, SEEK_END) / 4096;
        if (blocks <= 0)
            _exit(1);
        for (;;) {
            if (pread(fd, buf, 4096, (off_t)(rand() % blocks) * 4096) == 4096)
                done++;
            tally(name, &done, &last);
        }
    }
    struct sockaddr_in peer = {.sin_family = AF_INET};
    int fd = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
    if (fd < 0 || inet_pton(AF_INET, peer_ip, &peer.sin_addr) != 1)
        _exit(1);
    unsigned short id = (unsigned short)getpid(), seq = 0;
    for (int out = 0;;) {
        for (; out < FLOOD_DEPTH; out++) {
            struct icmphdr req = {.type = ICMP_ECHO};
            req.un.echo.id = htons(id);
            req.un.echo.sequence = htons(seq++);
            req.checksum = checksum(&req, sizeof(req));
            sendto(fd, &req, sizeof(req), MSG_DONTWAIT, (struct sockaddr *)&peer, sizeof(peer));
        }
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0) {
            out = 0;  /* lost in flight: send a new ring's worth */
        } else {
            char buf[1500];
            ssize_t n;
            while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
                struct iphdr *ip = (struct iphdr *)buf;
                if (n < ip->ihl * 4 + (ssize_t)sizeof(struct icmphdr))
                    continue;
                struct icmphdr *rep = (struct icmphdr *)(buf + ip->ihl * 4);
                if (rep->type == ICMP_ECHOREPLY && rep->un.echo.id == htons(id) && out > 0) {
                    out--;
                    done++;
                }
            }
        }
        tally(name, &done, &last);
    }
}

/* The noisy neighbour, on demand: it reads its own data/windsor-flood when its watch on it fires
 * (and every POLL_MS in any case); while that
 * node names a device (dom0 writes it: the harness's change flood) it runs flood workers on it
 * ("disk": FLOOD_DEPTH readers, one request in flight each; "net": one worker with FLOOD_DEPTH
 * echoes in flight to PEER_IP, its network backend's own address). Once the node is gone, or
 * names another device, the workers are killed. */
static int flood(long poll_ms, const char *peer_ip) {
    static const char ask[] = "data/windsor-flood";
    pid_t workers[FLOOD_DEPTH];
    int running = 0;
    char device[16] = "";
    if (xs_open("flood", ask) != 0)
        return 1;
    for (;; xs_wait(poll_ms)) {
        const char *want = xs(XS_READ, ask, sizeof(ask)) == 0 ? xs_answer : "";
        if (running && strcmp(want, device) != 0) {
            for (int i = 0; i < running; i++)
                kill(workers[i], SIGKILL);
            for (int i = 0; i < running; i++)
                waitpid(workers[i], NULL, 0);
            running = 0;
        }
        if (running || (strcmp(want, "disk") != 0 && strcmp(want, "net") != 0))
            continue;
        strcpy(device, want);  /* "disk" or "net" */
        for (int n = strcmp(device, "disk") == 0 ? FLOOD_DEPTH : 1; running < n; running++) {
            pid_t pid = fork();
            if (pid == 0)
                flood_worker(device, peer_ip);
            if (pid < 0)
                break;
            workers[running] = pid;
        }
    }
}

/* The xenstore probe: every PERIOD_MS a write of its own data/probe and a read back, each round
 * trip a record "xs" (the harness reads how late they came: harness/metrics.py xenstore_late). */
static int probe(long period_ms) {
    static const char node[] = "data/probe";
    int fd = open("/dev/xen/xenbus", O_RDWR);
    if (fd < 0) {
        perror("wrec probe: /dev/xen/xenbus");
        return 1;
    }
    xs_fd = fd;  /* a process of its own (storm is another): one connection each */
    for (unsigned long n = 0;; sleep_ms(period_ms)) {
        char body[64], value[24];
        snprintf(value, sizeof(value), "%lu", n);
        if (xs(XS_WRITE, body, two(body, sizeof(body), node, value, 0)) == 0 && xs(XS_READ, node, sizeof(node)) == 0)
            record("xs", n++);
    }
}

static int pump(void) {
    static char buf[65536];
    size_t have = 0;
    fcntl(0, F_SETPIPE_SZ, 1 << 20);  /* the default 64 KiB holds about a minute of records */
    for (;;) {
        ssize_t n = read(0, buf + have, sizeof(buf) - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {  /* no writer left (init keeps one open): what is left goes too */
            if (have > 0 && write(1, buf, have) < 0)
                return 1;
            return n < 0;
        }
        have += (size_t)n;
        size_t whole = have;  /* up to the last newline: a line is never split around another writer's */
        while (whole > 0 && buf[whole - 1] != '\n')
            whole--;
        if (whole == 0 && have < sizeof(buf))
            continue;
        if (whole == 0)
            whole = have;
        for (size_t off = 0; off < whole;) {
            ssize_t w = write(1, buf + off, whole - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                return 1;
            off += (size_t)w;
        }
        memmove(buf, buf + whole, have - whole);
        have -= whole;
    }
}

int main(int argc, char **argv) {
    signal(SIGCHLD, SIG_DFL);
    if (argc == 2 && strcmp(argv[1], "now") == 0) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        printf("%lld.%09ld\n", (long long)now.tv_sec, now.tv_nsec);
        return 0;
    }
    if (argc == 4 && strcmp(argv[1], "stamp") == 0) {
        record(argv[2], strtoul(argv[3], NULL, 10));
        return 0;
    }
    if (argc == 6 && strcmp(argv[1], "net") == 0)
        return net(argv[2], atol(argv[3]), atol(argv[4]), argv[5]);
    if (argc == 5 && strcmp(argv[1], "disk") == 0 && strtoul(argv[2], NULL, 10) > 0)
        return disk(strtoul(argv[2], NULL, 10), atol(argv[3]), atol(argv[4]), NULL, "disk");
    if (argc == 7 && strcmp(argv[1], "disk") == 0 && strtoul(argv[2], NULL, 10) > 0)
        return disk(strtoul(argv[2], NULL, 10), atol(argv[3]), atol(argv[4]), argv[5], argv[6]);
    if (argc == 3 && strcmp(argv[1], "storm") == 0)
        return storm(atol(argv[2]));
    if (argc == 4 && strcmp(argv[1], "flood") == 0)
        return flood(atol(argv[2]), argv[3]);
    if (argc == 3 && strcmp(argv[1], "probe") == 0)
        return probe(atol(argv[2]));
    if (argc == 2 && strcmp(argv[1], "pump") == 0)
        return pump();
    if (argc == 4 && strcmp(argv[1], "beat") == 0) {
        long period_ns = atol(argv[3]) * 1000000L;
        struct timespec next;
        if (period_ns <= 0)
            return 2;
        clock_gettime(CLOCK_MONOTONIC, &next);
        for (unsigned long seq = 0;; seq++) {
            record(argv[2], seq);
            next.tv_nsec += period_ns;
            while (next.tv_nsec >= 1000000000L) {
                next.tv_nsec -= 1000000000L;
                next.tv_sec++;
            }
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
        }
    }
    fprintf(stderr, "usage: wrec now | stamp DEVICE SEQ | beat DEVICE PERIOD_MS | "
                    "net PEER_IP PERIOD_MS TIMEOUT_MS HOOK | disk SLOTS TIMEOUT_MS PERIOD_MS [PATH DEVICE] | storm POLL_MS | flood POLL_MS PEER_IP | probe PERIOD_MS | pump\n");
    return 2;
}
