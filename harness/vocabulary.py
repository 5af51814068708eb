"""The harness's vocabulary, defined once: every JUnit property a case writes (its name, unit,
label and meaning), and how a value is written. The harness (harness/junit.py), `windsor compare`,
`windsor report` and its history all take their names, labels and units from here, and
docs/design.md's "Metrics" section lists the same (tests/test_vocabulary.py holds it to that).
"""

from __future__ import annotations

from dataclasses import dataclass

NONE = "none"  # an empty or absent value: Jenkins drops empty properties, so it is written out


@dataclass(frozen=True)
class Property:
    key: str
    label: str  # in sentences ("max guest downtime")
    short: str  # as a column heading ("downtime s")
    unit: str = ""  # "s" for seconds
    headline: bool = False  # one of the figures set beside the baseline everywhere
    baseline: bool = False  # read back from an earlier run's JUnit as a baseline (--baseline-junit)
    meaning: str = ""


def _p(key: str, label: str, short: str = "", unit: str = "", headline: bool = False, baseline: bool = True,
       meaning: str = "") -> Property:
    return Property(key, label, short or label, unit, headline, baseline, meaning)


PROPERTIES: tuple[Property, ...] = (
    _p("fault", "fault", meaning="the fault plugin injected"),
    _p("target_role", "role", meaning="the role it hit"),
    _p("target_domain", "target", meaning="the domain (or dom0 process) it hit"),
    _p("topology", "topology"),
    _p("seed", "seed"),
    _p("guests_total", "guests", meaning="guests on the host"),
    _p("guests_impacted", "guests impacted", "impacted", headline=True,
       meaning="guests with an impacted device"),
    _p("guests_expected_impacted", "guests the blast radius allows",
       meaning="guests with a device the fault may take down"),
    _p("max_guest_downtime_s", "max guest downtime", "downtime s", "s", headline=True,
       meaning="the longest gap of any device, less one cadence"),
    _p("service_restart_s", "service restart", "restart s", "s", headline=True,
       meaning="from the (first) hit to the serving incarnation answering again"),
    _p("guest_recovery_s", "guest recovery", "recovery s", "s", headline=True,
       meaning="from the (first) hit to the end of the last outage of any device"),
    _p("acked_writes_lost", "acked writes lost", "lost", headline=True,
       meaning="acknowledged disk writes not on the guests' disks after recovery"),
    _p("host_survived", "host survived", "survived", headline=True, meaning="the host did not reboot"),
    _p("max_guest_outages", "most outages of one device"),
    _p("max_guest_total_downtime_s", "most downtime of one device", unit="s"),
    _p("host", "host", meaning="the host URL"),
    _p("fault_params", "parameters", baseline=False, meaning="every parameter in effect, defaults included"),
    _p("fault_window_s", "fault window", unit="s", baseline=False),
    _p("fault_hits_s", "hits", baseline=False, meaning="when the fault acted, from the first hit (a crash loop: K)"),
    _p("observed_s", "observed", unit="s", baseline=False, meaning="how long after the fault every device was watched"),
    _p("case_wall_s", "case wall time", unit="s", baseline=False, meaning="this run, booting (or reusing) to teardown"),
    _p("topology_reused", "topology reused", baseline=False),
    _p("noise_s", "noise", unit="s", baseline=False, meaning="the devices' own jitter before the fault"),
    _p("impacted", "impacted devices", baseline=False),
    _p("escaped", "escaped", baseline=False, meaning="impacted devices outside the blast radius"),
    _p("expected_host_crash", "host crash by design", baseline=False),
    _p("outages", "outages", baseline=False, meaning="per impacted device: outages/total downtime"),
    _p("disturbed", "disturbed", baseline=False, meaning="entities outside the blast radius that restarted"),
    _p("guest_events", "what guests saw", baseline=False,
       meaning="records besides progress: disk-eio (an I/O error), xs-write (100 xenstore writes of a storm)"),
    _p("xenstore_late_s", "other guests' xenstore lateness", "xs late s", "s",
       meaning="how late, at worst, the guests' xenstore round trips came after the fault (the guest the fault "
               "drives aside): each guest's probe writes and reads back its own node every period"),
    _p("toolstack_late_s", "toolstack lateness", "xl late s", "s",
       meaning="how late, at worst, dom0's toolstack answered a domain list (xl list) after the fault; none "
               "when the host rebooted"),
    _p("attacker", "attacker", meaning="the domain an isolation case attacks from: where the role lives"),
    _p("isolation_attempts", "attempts outside its duties", "attempts",
       meaning="attempts an attacker in the service's domain made outside what the service needs"),
    _p("isolation_reachable", "reachable from the compromised service", "reachable",
       meaning="of those attempts, how many the system allowed"),
    _p("isolation_reachable_list", "what it reached", meaning="the attempts allowed outside its duties"),
    _p("isolation_unproven", "denials without a control", "unproven",
       meaning="denied attempts whose positive control (the same attempt where it must succeed) failed too"),
    _p("isolation_rows", "every attempt", baseline=True,
       meaning="each attempt: what it tried, allowed or denied with what the system answered, and its control"),
    _p("qos_device", "flooded device", meaning="what the noisy guest floods: disk or net"),
    _p("qos_noisy", "noisy guest", meaning="the guest that floods it"),
    _p("qos_cpu_pct", "CPU budget", "cpu %",
       meaning="dom0's and every service domain's CPU budget while measured, % of one CPU"),
    _p("qos_isolated", "noisy tenant's own domain", "own domain",
       meaning="the noisy guest's device is served by a domain that serves none of the others (the QoS goal applies)"),
    _p("qos_quiet_p50_s", "others' p50, quiet", "quiet p50 s", "s",
       meaning="the other guests' operations of that device, with the noisy one quiet: median latency"),
    _p("qos_quiet_p99_s", "others' p99, quiet", "quiet p99 s", "s"),
    _p("qos_quiet_max_s", "others' max, quiet", "quiet max s", "s"),
    _p("qos_loaded_p50_s", "others' p50, loaded", "loaded p50 s", "s",
       meaning="the same, with the noisy guest flooding"),
    _p("qos_loaded_p99_s", "others' p99, loaded", "loaded p99 s", "s"),
    _p("qos_loaded_max_s", "others' max, loaded", "loaded max s", "s"),
    _p("qos_p99_ratio", "others' p99, loaded over quiet", "p99 ×",
       meaning="the QoS figure: the goal is at most 2 where the noisy tenant has its own domain"),
    _p("qos_noisy_speedup", "noisy guest's rate, loaded over quiet", "noisy ×",
       meaning="proof that the flood took (at least 2)"),
    _p("qos_ops", "operations measured", meaning="the others' operations in the quiet and the loaded window"),
    _p("qos_cdf_s", "latency CDF", "cdf",
       meaning="the others' latency at every 5th percentile, quiet then loaded (quiet;loaded, each 21 values)"),
    _p("scale_cpu_pct", "CPU budget", "cpu %", meaning="dom0's and every service domain's CPU budget, % of one CPU"),
    _p("scale_guests", "guests carried", "guests",
       meaning="the largest number of guests at which the median guest still did 80 % of its cadence and no "
               "service domain was at its CPU cap"),
    _p("scale_limit", "what saturated", meaning="at the next step: the rate, or the domain whose CPU was at its cap"),
    _p("scale_curve", "guests-per-host curve", "curve",
       meaning="per step: guests, the median guest's rate over its cadence, the busiest domain and its CPU share"),
    _p("restart_budget_s", "restart budget", unit="s", baseline=False),
    _p("recovery_budget_s", "recovery budget", unit="s", baseline=False),
    _p("build", "build", baseline=False, meaning="what runs on the host"),
    _p("harness", "harness", baseline=False, meaning="the harness's version and commit"),
)
BY_KEY = {p.key: p for p in PROPERTIES}
HEADLINE = tuple(p for p in PROPERTIES if p.headline)
BASELINE_KEYS = tuple(p.key for p in PROPERTIES if p.baseline)
SECONDS = tuple(p.key for p in HEADLINE if p.unit == "s")
COUNTS = tuple(p.key for p in HEADLINE if p.key in ("guests_impacted", "acked_writes_lost"))


def fmt(value: object) -> str:
    """A value as JUnit carries it: floats with 4 decimals, booleans true/false, nothing as `none`."""
    if value is None or value == "":
        return NONE
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)
