#!/bin/busybox sh
# A lab guest: busybox, wrec and its front-end drivers. Its workloads print records on the
# console (hvc0), which dom0 reads (windsor-console) — a channel outside netback and blkback. Record: "WREC <unix time s.ns, Xen's shared wallclock>
# <device> <seq>" (wrec.c). What to run comes from the kernel command line (xl.cfg `extra`):
#   windsor.ip=10.0.0.N windsor.peer=10.0.0.M windsor.disk=1 windsor.emul=sda windsor.cadence=MS
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo 1 > /proc/sys/kernel/sysrq  # `xl sysrq DOM c` is how the harness crashes a domain
for word in $(cat /proc/cmdline); do
    case "$word" in windsor.*=*) key=${word%%=*}; eval "w_${key#windsor.}=\${word#*=}" ;; esac
done
cadence=${w_cadence:-250}
# Every workload's records go through a FIFO that `wrec pump` copies to hvc0: while the console
# backend is down (xenconsoled stalled or dead, hvc0's ring full) the pump waits and the workloads
# go on; their records reach dom0 when the console is back, with their own times. The console's
# own workload writes to hvc0 itself: its records stop while the console is down.
mkfifo /records
wrec pump </records >/dev/console &
exec >/records
wrec beat console "$cadence" >/dev/console &
wrec stamp boot 0
wrec beat heartbeat "$cadence" &
wrec storm 1000 &  # a xenstore storm when dom0 asks (data/windsor-storm, watched; read every 1 s anyway)
wrec probe "$cadence" &  # its xenstore round trips ("xs" records): how late they come
# a noisy neighbour when dom0 asks (data/windsor-flood: disk, or net to its network backend, .1)
ip=${w_ip:-0.0.0.1}
wrec flood 1000 "${ip%.*}.1" &
if [ -n "$w_disk" ]; then
    modprobe xen-blkfront
    wrec disk 8192 3000 "$cadence" &
fi
if [ -n "$w_emul" ]; then  # an HVM guest: its emulated AHCI disk, which its device model (QEMU) serves
    for m in scsi_mod libata libahci ahci sd_mod; do modprobe "$m" 2>/dev/null; done
    wrec disk 1024 3000 "$cadence" "/dev/$w_emul" emul &
fi
if [ -n "$w_ip" ]; then
    modprobe xen-netfront
    # The newest vif carries the address: after the network backend is rebuilt the recovery
    # agent attaches a new vif (the next device id); the dead ones are flushed so they hold no
    # route. Newest by the vif's device id, not by the eth name: Linux gives a new device the
    # lowest free ethN, so after a crash loop the newest vif may be eth0 beside a dead eth1.
    {
        echo '#!/bin/sh'
        echo 'new="" best=-1'
        echo 'for e in $(ls /sys/class/net | grep "^eth"); do'
        echo '    n=$(readlink "/sys/class/net/$e/device"); n=${n##*/vif-}'
        echo '    [ "$n" -gt "$best" ] 2>/dev/null && { best=$n; new=$e; }'
        echo 'done'
        echo '[ -n "$new" ] || exit 0'
        echo "ip -o addr show dev \"\$new\" | grep -q ' $w_ip/' && exit 0"
        echo 'for old in $(ls /sys/class/net | grep "^eth"); do'
        echo '    [ "$old" = "$new" ] || ip addr flush dev "$old" 2>/dev/null'
        echo 'done'
        echo "ip link set \"\$new\" up && ip addr add $w_ip/24 dev \"\$new\""
    } >/bin/netup
    chmod +x /bin/netup
    /bin/netup
    wrec net "$w_peer" "$cadence" 1000 /bin/netup &
fi
while :; do sleep 3600; done
