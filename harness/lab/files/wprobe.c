/* wprobe: one isolation attempt (harness/isolation.py) with the privileges of the domain it runs
 * in — our own code, built at lab build time against Debian's Xen 4.17 libraries, run in dom0 or,
 * by its attempt keeper, in a driver domain. Prints "allowed DETAIL" or "denied DETAIL" (what the
 * system answered) and exits 0; exits 2 when the attempt could not be made at all.
 *
 *   wprobe xs-read PATH               read a xenstore node
 *   wprobe xs-write PATH VALUE        write one
 *   wprobe grant-map DOMID REF        map grant reference REF of domain DOMID (gntdev)
 *   wprobe foreign-map DOMID FRAME    map frame FRAME of domain DOMID (privcmd)
 *   wprobe domctl-pause DOMID         pause domain DOMID and unpause it at once
 *   wprobe sniff IFNAME               capture one frame on IFNAME within 3 s (AF_PACKET)
 *   wprobe frame DOMID                (dom0) a frame of DOMID to aim foreign-map at: a PV domain's
 *                                     shared info (a machine frame), an HVM domain's first page (gfn 0)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <xenctrl.h>
#include <xenforeignmemory.h>
#include <xengnttab.h>
#include <xenstore.h>

static int said(int allowed, const char *detail) {
    printf("%s %s\n", allowed ? "allowed" : "denied", detail);
    return 0;
}

static int failed(const char *what) {
    char detail[256];
    snprintf(detail, sizeof detail, "%s: %s (errno %d)", what, strerror(errno), errno);
    return said(0, detail);
}

static int usage(void) {
    fprintf(stderr, "usage: wprobe xs-read PATH | xs-write PATH VALUE | grant-map DOMID REF | "
                    "foreign-map DOMID FRAME | domctl-pause DOMID | sniff IFNAME | frame DOMID\n");
    return 2;
}

static int xs(int argc, char **argv, int write) {
    struct xs_handle *h = xs_open(0);
    unsigned int len;
    if (!h)
        return failed("xs_open");
    if (write) {
        if (argc < 4)
            return usage();
        if (!xs_write(h, XBT_NULL, argv[2], argv[3], strlen(argv[3])))
            return failed("xenstored");
    } else {
        void *value = xs_read(h, XBT_NULL, argv[2], &len);
        if (!value)
            return failed("xenstored");
        free(value);
    }
    return said(1, "ok");
}

static int grant(uint32_t domid, uint32_t ref) {
    xengnttab_handle *g = xengnttab_open(NULL, 0);
    void *page;
    if (!g)
        return failed("gntdev open");
    page = xengnttab_map_grant_ref(g, domid, ref, PROT_READ);
    if (!page)
        return failed("GNTTABOP_map_grant_ref");
    xengnttab_unmap(g, page, 1);
    return said(1, "mapped");
}

static int foreign(uint32_t domid, xen_pfn_t frame) {
    xenforeignmemory_handle *fm = xenforeignmemory_open(NULL, 0);
    int err = 0;
    void *page;
    if (!fm)
        return failed("privcmd open");
    page = xenforeignmemory_map(fm, domid, PROT_READ, 1, &frame, &err);
    if (!page)
        return failed("privcmd mmapbatch");
    if (err) {
        errno = -err;
        return failed("privcmd mmapbatch");
    }
    xenforeignmemory_unmap(fm, page, 1);
    return said(1, "mapped");
}

static int pause_domain(uint32_t domid) {
    xc_interface *xch = xc_interface_open(NULL, NULL, 0);
    if (!xch)
        return failed("privcmd open");
    if (xc_domain_pause(xch, domid) < 0)
        return failed("XEN_DOMCTL_pausedomain");
    if (xc_domain_unpause(xch, domid) < 0)
        return failed("XEN_DOMCTL_unpausedomain (the domain stays paused: xl unpause it)");
    return said(1, "paused and unpaused");
}

static int frame(uint32_t domid) {
    xc_interface *xch = xc_interface_open(NULL, NULL, 0);
    xc_domaininfo_t info;
    if (!xch || xc_domain_getinfolist(xch, domid, 1, &info) != 1 || info.domain != domid) {
        perror("wprobe frame");
        return 2;
    }
    printf("%llu\n", (info.flags & XEN_DOMINF_hvm_guest) ? 0ULL : (unsigned long long)info.shared_info_frame);
    return 0;
}

static int sniff(const char *ifname) {
    struct sockaddr_ll at = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL)};
    struct timeval wait = {.tv_sec = 3};
    char buf[2048], detail[64];
    ssize_t got;
    int fd;
    at.sll_ifindex = (int)if_nametoindex(ifname);
    if (!at.sll_ifindex)
        return failed("no such interface here");
    fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
    if (fd < 0)
        return failed("AF_PACKET socket");
    if (bind(fd, (struct sockaddr *)&at, sizeof at) < 0)
        return failed("bind");
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
    got = recv(fd, buf, sizeof buf, 0);
    if (got < 0)
        return failed("no frame within 3 s");
    snprintf(detail, sizeof detail, "captured a frame of %zd bytes", got);
    return said(1, detail);
}

int main(int argc, char **argv) {
    if (argc < 3)
        return usage();
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!strcmp(argv[1], "xs-read"))
        return xs(argc, argv, 0);
    if (!strcmp(argv[1], "xs-write"))
        return xs(argc, argv, 1);
    if (!strcmp(argv[1], "grant-map") && argc == 4)
        return grant((uint32_t)atoi(argv[2]), (uint32_t)strtoul(argv[3], NULL, 0));
    if (!strcmp(argv[1], "foreign-map") && argc == 4)
        return foreign((uint32_t)atoi(argv[2]), (xen_pfn_t)strtoull(argv[3], NULL, 0));
    if (!strcmp(argv[1], "domctl-pause"))
        return pause_domain((uint32_t)atoi(argv[2]));
    if (!strcmp(argv[1], "sniff"))
        return sniff(argv[2]);
    if (!strcmp(argv[1], "frame"))
        return frame((uint32_t)atoi(argv[2]));
    return usage();
}
