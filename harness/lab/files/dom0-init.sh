#!/bin/sh
# dom0 init for the Windsor lab: a Debian root in an initramfs, booted by Xen 4.17 under QEMU.
# Loads the modules a control domain needs, mounts the lab's state disk (it survives a reboot of
# the lab host), starts xenstored/xenconsoled, sshd on eth0 (QEMU
# user networking, reached from the host through a loopback-only forwarded port), then brings
# back the planned topology if there is one (after a dom0 crash rebooted the host).
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo 1 > /proc/sys/kernel/sysrq  # `xl sysrq DOM c` is how the harness crashes a domain
mkdir -p /dev/pts /dev/shm /run/sshd /var/log/xen/console /var/run/xen /tmp
mount -t devpts devpts /dev/pts
# the hotplug scripts' locking.sh stats /dev/stdin: devtmpfs has no /dev/fd links (udev makes them)
ln -sf /proc/self/fd /dev/fd; ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout; ln -sf /proc/self/fd/2 /dev/stderr
mount -t tmpfs tmpfs /run && mkdir -p /run/sshd /run/xen
echo "WINDSOR: dom0 init started"
for m in xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs xen-netback xen-blkback bridge \
         virtio_pci virtio_net virtio_blk ext4 loop dm-mod; do
    modprobe "$m" 2>/dev/null || echo "WINDSOR: modprobe $m failed"
done
mount -t xenfs xenfs /proc/xen
mkdir -p /var/lib/windsor/state
if [ -b /dev/vda ]; then
    mount -t ext4 /dev/vda /var/lib/windsor/state || echo "WINDSOR: state disk not mounted"
fi
hostname windsor-lab
ip link set lo up
ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2
export XENCONSOLED_ARGS="--log=guest --log-dir=/var/log/xen/console --timestamp=guest"
/etc/init.d/xen start
# the harness's tools are baked in at /opt/windsor (harness/xen/payload.py), as `windsor host
# prepare` puts them on other hosts; windsor-boot clears the leases a reboot ended, writes
# /run/windsor-ready and brings the planned topology back
/opt/windsor/current/bin/windsor-boot
/usr/sbin/sshd -D -e &
[ -s /run/windsor-ready ] && xl info >/dev/null 2>&1 && echo "WINDSOR: dom0 ready"
while :; do sleep 3600; done
