/* wstall: stall a domain by capping its CPU (credit2), with a lease — our own code, built at lab
 * build time against Debian's libxenctrl. What `xl pause` cannot do: dom0 cannot be paused, and
 * once it is capped to 1 % a later `xl sched-credit2` to undo it would itself crawl. So the cap
 * is undone by this process, already running: when the lease ends, or at once on SIGTERM/SIGINT.
 *
 *   wstall DOMID CAP_PERCENT LEASE_MS
 *
 * Prints "capped <unix s.ns>" after the cap is set and "uncapped <unix s.ns>" after it is
 * restored (the domain's previous cap), on stdout.
 *
 *   wstall list
 *
 * Prints the id of every domain Xen runs (not dying), one per line: from the hypervisor, so it
 * answers when xenstored is gone and `xl list` would hang.
 *
 *   wstall crashed
 *
 * The same, of the domains that crashed and are still there (nobody restarted or destroyed
 * them): one libxenctrl call, where `xl list` costs a TCG dom0 about 0.6 s of CPU. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xenctrl.h>

static void stamp(const char *what) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    printf("%s %lld.%09ld\n", what, (long long)now.tv_sec, now.tv_nsec);
    fflush(stdout);
}

static int list(int crashed_only) {
    static xc_domaininfo_t info[1024];
    xc_interface *xch = xc_interface_open(NULL, NULL, 0);
    int n = xch ? xc_domain_getinfolist(xch, 0, 1024, info) : -1;
    if (n < 0) {
        perror("wstall: list");
        return 1;
    }
    for (int i = 0; i < n; i++)
        if (!(info[i].flags & XEN_DOMINF_dying) &&
            (!crashed_only || ((info[i].flags & XEN_DOMINF_shutdown) &&
                               ((info[i].flags >> XEN_DOMINF_shutdownshift) & XEN_DOMINF_shutdownmask) ==
                                   SHUTDOWN_crash)))
            printf("%u\n", info[i].domain);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 2 && (strcmp(argv[1], "list") == 0 || strcmp(argv[1], "crashed") == 0))
        return list(strcmp(argv[1], "crashed") == 0);
    if (argc != 4) {
        fprintf(stderr, "usage: wstall DOMID CAP_PERCENT LEASE_MS | wstall list | wstall crashed\n");
        return 2;
    }
    uint32_t domid = (uint32_t)strtoul(argv[1], NULL, 10);
    long lease_ms = atol(argv[3]);
    struct xen_domctl_sched_credit2 params, capped;
    xc_interface *xch = xc_interface_open(NULL, NULL, 0);
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGHUP);
    sigprocmask(SIG_BLOCK, &stop, NULL);  /* from here on, a signal only ends the wait */
    if (!xch || xc_sched_credit2_domain_get(xch, domid, &params) != 0) {
        perror("wstall: credit2 parameters");
        return 1;
    }
    capped = params;
    capped.cap = (uint16_t)atoi(argv[2]);
    if (xc_sched_credit2_domain_set(xch, domid, &capped) != 0) {
        perror("wstall: set cap");
        return 1;
    }
    stamp("capped");
    struct timespec lease = {lease_ms / 1000, (lease_ms % 1000) * 1000000L};
    sigtimedwait(&stop, NULL, &lease);
    while (xc_sched_credit2_domain_set(xch, domid, &params) != 0)
        perror("wstall: restore cap");  /* never leave it capped */
    stamp("uncapped");
    return 0;
}
