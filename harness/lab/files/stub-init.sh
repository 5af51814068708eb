#!/bin/busybox sh
# A device-model stub domain (libxl's Linux stub domain, `device_model_stubdomain_override=1`):
# Debian's QEMU for one HVM guest, with the arguments libxl wrote for it in xenstore
# (VM_PATH/image/dm-argv/NNN), its QMP socket carried to dom0's libxl over vchan. The guest's
# disks reach it as xvdX from dom0's blkback; the guest's direct-boot kernel and image are in this
# image at the paths dom0's xl.cfg names (harness/lab/images.py).
/bin/busybox --install -s /bin 2>/dev/null
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /tmp /run /dev/shm
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /dev/shm
echo 1 > /proc/sys/kernel/sysrq  # `xl sysrq DOM c` is how the harness crashes a domain
# Debian's kernel restricts /dev/xen/privcmd in a domU to its `target` domain and refuses it
# arbitrary hypercalls (the XSA-482 fix): libxendevicemodel's dm_op then fails, QEMU silently
# falls back to an ioreq server 0 that Xen 4.17 no longer has, and its map of it fails with
# ENOENT ("failed to map ioreq server resources: error 2"). Xen still holds this domain to its
# target (xsm's DM_PRIV): the restriction only duplicates that.
modprobe xen-privcmd unrestricted=1
for m in xen-evtchn xen-gntdev xen-gntalloc xenfs xen-blkfront; do modprobe "$m"; done
mount -t xenfs xenfs /proc/xen
windsor-attempt keeper &  # isolation attempts (harness/isolation.py), asked by dom0
# what it did, on its console and in its own xenstore node (dom0 reads data/windsor-stub: the
# console of a stub domain is QEMU's in dom0, and libxl swaps its backend while init runs)
say() { echo "WINDSOR-STUB: $*" >/dev/console; xenstore-write data/windsor-stub "$*" 2>/dev/null; }
target=$(xenstore-read target)
vm=$(xenstore-read "/local/domain/$target/vm")
args=$(xenstore-read $(xenstore-list -p "$vm/image/dm-argv" | sort))
say "device model of domain $target: $(echo "$args" | tr '\n' ' ')"
IFS='
'
set -f
/usr/bin/qemu -chardev socket,server=on,wait=off,path=/tmp/qemu.qmp,id=qmp -mon chardev=qmp,mode=control \
    $args >/tmp/qemu.log 2>&1 &
set +f
unset IFS
qemu=$!
n=0
while [ ! -S /tmp/qemu.qmp ] && kill -0 "$qemu" 2>/dev/null && [ "$n" -lt 300 ]; do
    usleep 100000  # QEMU makes its QMP socket within seconds; 30 s at most
    n=$((n + 1))
done
if [ -S /tmp/qemu.qmp ]; then
    say "QEMU runs (pid $qemu), its QMP socket is there"
    xenstore-write data/windsor-ready "$(wrec now)"  # the role's health, as a driver domain's
else
    say "no QMP socket from QEMU"
fi
vchan-socket-proxy --mode=server 0 "device-model/$target/qmp-vchan" /tmp/qemu.qmp \
    >/tmp/vchan.log 2>&1 &
vchan=$!
usleep 500000
kill -0 "$vchan" 2>/dev/null || say "vchan-socket-proxy ended: $(tail -c 300 /tmp/vchan.log | tr '\n' ' ')"
wait "$qemu"
say "QEMU ended ($?): $(tail -c 300 /tmp/qemu.log | tr '\n' ' ') / vchan: $(tail -c 200 /tmp/vchan.log | tr '\n' ' ')"
exec sleep 2147483647
