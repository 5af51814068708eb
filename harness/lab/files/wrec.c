/* wrec: the lab guest's workload recorder (our own code, built static at lab build time).
 *
 *   wrec stamp DEVICE SEQ      print one record now (after a shell workload step completed)
 *   wrec beat DEVICE PERIOD_MS print a record every PERIOD_MS, forever (the heartbeat)
 *
 * A record is "WREC <unix seconds.nanoseconds> <device> <seq>" on stdout (the guest's console).
 * A PV guest's CLOCK_REALTIME comes from the wallclock Xen shares with every domain, so records
 * of different guests, and dom0's own clock, are comparable to well under a millisecond —
 * unlike xenconsoled's --timestamp, which has whole seconds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void record(const char *device, unsigned long seq) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    printf("WREC %lld.%09ld %s %lu\n", (long long)now.tv_sec, now.tv_nsec, device, seq);
    fflush(stdout);
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "stamp") == 0) {
        record(argv[2], strtoul(argv[3], NULL, 10));
        return 0;
    }
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
    fprintf(stderr, "usage: wrec stamp DEVICE SEQ | wrec beat DEVICE PERIOD_MS\n");
    return 2;
}
