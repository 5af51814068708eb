#!/bin/sh
# dom0 init for the Windsor lab: a Debian root in an initramfs, booted by Xen 4.17 under QEMU.
# Loads the modules a control domain needs, starts xenstored/xenconsoled, sshd on eth0 (QEMU user
# networking, reached from the host through a loopback-only forwarded port), then waits.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm /run/sshd /var/log/xen/console /var/run/xen /tmp
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run && mkdir -p /run/sshd /run/xen
echo "WINDSOR: dom0 init started"
for m in xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs xen-netback xen-blkback bridge \
         virtio_pci virtio_net loop; do
    modprobe "$m" 2>/dev/null || echo "WINDSOR: modprobe $m failed"
done
mount -t xenfs xenfs /proc/xen
hostname windsor-lab
ip link set lo up
ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2
export XENCONSOLED_ARGS="--log=guest --log-dir=/var/log/xen/console --timestamp=guest"
/etc/init.d/xen start
/usr/sbin/sshd -D -e &
xl info >/dev/null 2>&1 && echo "WINDSOR: dom0 ready"
while :; do sleep 3600; done
