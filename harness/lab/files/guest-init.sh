#!/bin/busybox sh
# A lab guest: busybox and wrec only. Its workloads print records on the console (hvc0), which
# xenconsoled in dom0 writes to /var/log/xen/console/guest-NAME.log — a channel outside netback
# and blkback. Record: "WREC <unix time s.ns, Xen's shared wallclock> <device> <seq>" (wrec.c).
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
wrec stamp boot 0
exec wrec beat heartbeat 100
