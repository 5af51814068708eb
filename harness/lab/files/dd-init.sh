#!/bin/busybox sh
# A Windsor driver domain in the lab: busybox, xl (for `xl devd`), the hotplug scripts and the
# backend modules for its roles (kernel command line: windsor.roles=net,blk). It serves the
# guests' vifs on its own bridge (net) and their disks from its own storage (blk: the disks dom0
# gives it), and says it is ready in xenstore (data/windsor-ready = its wallclock then).
/bin/busybox --install -s /bin 2>/dev/null
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo 1 > /proc/sys/kernel/sysrq  # `xl sysrq DOM c` is how the harness crashes a domain
mkdir -p /dev/pts /run /tmp /var/run/xen /var/log/xen /var/lib/xen /var/lock
mount -t devpts devpts /dev/pts
# the hotplug scripts' locking.sh stats /dev/stdin: devtmpfs has no /dev/fd links (udev makes them)
ln -sf /proc/self/fd /dev/fd; ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout; ln -sf /proc/self/fd/2 /dev/stderr
roles=$(sed -n 's/.*windsor\.roles=\([a-z,]*\).*/\1/p' /proc/cmdline)
for m in xen-evtchn xen-gntdev xen-gntalloc xenfs; do modprobe "$m"; done
# Debian's kernel restricts /dev/xen/privcmd in a domU (XSA-482): an attacker with root here lifts
# that (as this does), so what the isolation attempts measure is what Xen itself refuses
modprobe xen-privcmd unrestricted=1
mount -t xenfs xenfs /proc/xen
me=$(xenstore-read domid)
# keep NAME FN: dom0 asks for a change by listing names under our data/windsor-NAME (the
# harness's changes link-down and disk-error); FN gets the listed names, space-padded, and puts
# every item in the state asked for. Woken by a xenstore watch, and every 2 s in any case (a change
# between two watches is never missed for longer).
keep() {
    (while :; do
        "$2" " $(xenstore-list "/local/domain/$me/data/windsor-$1" 2>/dev/null | tr '\n' ' ') "
        timeout 2 xenstore-watch -n 2 "/local/domain/$me/data/windsor-$1" >/dev/null 2>&1
    done) &
}
links() {  # a vif listed (vif7.0 as vif7-0: xenstore names have no dots), or "all", is down
    for v in $(ls /sys/class/net | grep '^vif'); do
        k="${v%.*}-${v##*.}"
        case "$1" in *" $k "*|*" all "*) want=down w=0 ;; *) want=up w=1 ;; esac
        f=$(cat "/sys/class/net/$v/flags" 2>/dev/null) || continue
        [ $((f & 1)) = "$w" ] && continue  # IFF_UP already as wanted
        ip link set "$v" "$want" && echo "WINDSOR: link $v $want" >/dev/console
    done
}
disks() {  # a guest listed has its disk's table swapped for dm's error target; the others their own
    for t in /run/windsor-dm/*.table; do
        [ -e "$t" ] || continue
        g=$(basename "$t" .table)
        case "$1" in *" $g "*) want="0 $(cut -d' ' -f2 "$t") error" ;; *) want=$(cat "$t") ;; esac
        [ "$(dmsetup table "windsor-$g" 2>/dev/null)" = "$want" ] && continue
        dmsetup suspend "windsor-$g" || continue  # resumed whatever the load did: never left hanging
        dmsetup load "windsor-$g" --table "$want"; rc=$?
        dmsetup resume "windsor-$g" && [ "$rc" = 0 ] && echo "WINDSOR: disk $g ${want##* }" >/dev/console
    done
}
case ",$roles," in *,net,*)
    modprobe xen-netback && modprobe bridge
    # the guests' vifs join windsor0 (the name the plan's vif specs give); windsor.gw= its address
    gw=$(sed -n 's/.*windsor\.gw=\([0-9.]*\).*/\1/p' /proc/cmdline)
    brctl addbr windsor0 && ip addr add "$gw/24" dev windsor0 && ip link set windsor0 up
    keep link links
esac
case ",$roles," in *,blk,*)
    modprobe xen-blkback && modprobe xen-blkfront && modprobe dm-mod
    # the storage dom0 gives it for the guests' disks (windsor.disks=g01,g03: xvdb, xvdc) must be
    # there; each becomes the device-mapper device windsor-GUEST the guest's disk spec names
    export DM_DISABLE_UDEV=1
    mkdir -p /run/windsor-dm
    dev=b
    for g in $(sed -n 's/.*windsor\.disks=\([a-z0-9,-]*\).*/\1/p' /proc/cmdline | tr ',' ' '); do
        [ "$g" = - ] && break
        for i in $(seq 200); do [ -e "/sys/block/xvd$dev" ] && break; usleep 50000; done
        # as `dmsetup table` prints it (major:minor), so the keeper sees when it is in place
        echo "0 $(cat "/sys/block/xvd$dev/size") linear $(cat "/sys/block/xvd$dev/dev") 0" >"/run/windsor-dm/$g.table"
        dmsetup create "windsor-$g" "/run/windsor-dm/$g.table" || echo "WINDSOR: FAILED dm for $g" >/dev/console
        dev=$(echo "$dev" | tr 'a-y' 'b-z')
    done
    keep disk disks
esac
windsor-attempt keeper &  # isolation attempts (harness/isolation.py), asked by dom0
ip link set lo up
if grep -q windsor.debug /proc/cmdline; then
    xl devd -F >/dev/console 2>&1 &
    (while :; do sleep 5; { tail -n 20 /var/log/xen/xen-hotplug.log; ps -o pid,stat,args; } 2>&1 | sed 's/^/DEBUG: /' >/dev/console; done) &
else
    xl devd -F >/dev/console 2>&1 &  # daemonized (without -F), its hotplug scripts never completed here
fi
for i in $(seq 100); do pidof xl >/dev/null && break; usleep 50000; done
xenstore-write data/windsor-ready "$(wrec now)"
echo "WINDSOR: driver domain ready ($roles)"
while :; do sleep 3600; done
