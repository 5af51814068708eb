#!/bin/busybox sh
# A lab guest: busybox only. Prints one workload record per operation on its console (hvc0);
# xenconsoled in dom0 timestamps every line into /var/log/xen/console/guest-NAME.log, a channel
# outside netback and blkback. Record: "WREC <device> <seq>". (xenconsoled stamps whole seconds only: sub-second records need a
# clock reader in the guest, as busybox date has no %N.)
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo "WREC boot 0"
n=0
while :; do
    echo "WREC heartbeat $n"
    n=$((n + 1))
    usleep 100000
done
