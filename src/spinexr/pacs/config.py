"""The DICOM node's settings: who may send, where results go, how hard to retry.

Parsed and validated once at the edge (the CLI); every other module reads the typed
:class:`NodeConfig`. Nothing here touches the network or the disk.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path

from spinexr.errors import ConfigError
from spinexr.pacs.filters import FilterConfig

#: An AE title: 1-16 characters of the default repertoire, no backslash, not only spaces.
_AET = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")


def check_aet(value: str, source: str = "AE title") -> str:
    """``value`` stripped, or :class:`ConfigError` naming what is wrong with it."""
    aet = value.strip()
    if not aet or not _AET.match(aet):
        raise ConfigError(f"{value!r} is not an AE title (1-16 printable ASCII characters, "
                          "no backslash)", source)
    return aet


@dataclass(frozen=True)
class Destination:
    """A Storage SCP that receives the results (``AET@HOST:PORT``)."""

    ae_title: str
    host: str
    port: int

    @property
    def name(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"

    @classmethod
    def parse(cls, text: str) -> "Destination":
        """``AET@HOST:PORT`` (an IPv6 host in brackets: ``AET@[::1]:104``)."""
        m = re.match(r"^(?P<aet>[^@]+)@(?P<host>\[[^\]]+\]|[^:@]+):(?P<port>\d{1,5})$",
                     text.strip())
        if not m:
            raise ConfigError(f"{text!r} is not AET@HOST:PORT (e.g. ORTHANC@127.0.0.1:4242)",
                              "--forward")
        port = int(m["port"])
        if not 0 < port < 65536:
            raise ConfigError(f"port {port} of {text!r} is not in 1..65535", "--forward")
        return cls(check_aet(m["aet"], "--forward"), m["host"].strip("[]"), port)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff of a destination that fails: the n-th retry waits
    ``min(max_s, base_s * 2 ** (n - 1))``; a result still undelivered ``dead_after_s`` after
    it was queued is dead-lettered (kept on disk, no more tries)."""

    base_s: float = 2.0
    max_s: float = 300.0
    dead_after_s: float = 24 * 3600.0

    def __post_init__(self) -> None:
        if not (0 < self.base_s <= self.max_s) or self.dead_after_s <= 0:
            raise ConfigError(f"retry delays must satisfy 0 < base ({self.base_s}) <= max "
                              f"({self.max_s}) and dead-after ({self.dead_after_s}) > 0",
                              "--retry")

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed try (``attempts >= 1``)."""
        return min(self.max_s, self.base_s * 2.0 ** max(0, attempts - 1))


@dataclass(frozen=True)
class NodeConfig:
    """Everything the node needs besides the processor.

    Attributes:
        ae_title: the node's own AE title (called AE of incoming, calling AE of outgoing).
        port / host: where the listener binds.
        destinations: Storage SCPs that receive SR, GSPS and SC of every analysed image.
        allow_aets: calling AE titles accepted (empty: any).
        allow_ips: client networks accepted (empty: any).
        data_dir: the on-disk queue lives in ``data_dir / "pacs"``.
        filter: which received images are analysed (see :mod:`spinexr.pacs.filters`).
        study_window_s: images of one study arriving within this many seconds of each other
            are analysed together (0: each image as soon as it arrives).
        retry: backoff and dead-letter policy of the destinations.
        uid_root / explain: passed to the process step.
        max_associations: concurrent incoming associations.
        batch: most images analysed in one call.
        keep_inputs: keep received images after their analysis (default: deleted).
    """

    ae_title: str = "SPINEXR"
    port: int = 11112
    host: str = "0.0.0.0"
    destinations: tuple[Destination, ...] = ()
    allow_aets: tuple[str, ...] = ()
    allow_ips: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    data_dir: Path = Path("spinexr-data")
    filter: FilterConfig = field(default_factory=FilterConfig)
    study_window_s: float = 2.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    uid_root: str | None = None
    explain: tuple[str, ...] = ()
    max_associations: int = 10
    batch: int = 8
    keep_inputs: bool = False
    network_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "ae_title", check_aet(self.ae_title, "--ae-title"))
        object.__setattr__(self, "allow_aets",
                           tuple(check_aet(a, "--allow-aet") for a in self.allow_aets))
        if not 0 <= self.port < 65536:
            raise ConfigError(f"{self.port} is not a port (0..65535)", "--port")
        if self.study_window_s < 0 or self.batch < 1 or self.max_associations < 1:
            raise ConfigError("the study window must be >= 0 s and batch and "
                              "max associations >= 1", "NodeConfig")

    @property
    def queue_dir(self) -> Path:
        return Path(self.data_dir) / "pacs"


def parse_networks(values: list[str] | tuple[str, ...]) -> tuple:
    """CIDR networks (``10.0.0.0/8``, ``127.0.0.1``, ``::1``) for ``--allow-ip``."""
    out = []
    for v in values:
        try:
            out.append(ipaddress.ip_network(v.strip(), strict=False))
        except ValueError:
            raise ConfigError(f"{v!r} is not an IP address or CIDR network (e.g. "
                              "10.20.0.0/16)", "--allow-ip") from None
    return tuple(out)


def ip_allowed(address: str, networks: tuple) -> bool:
    """Whether ``address`` is in one of ``networks`` (empty: every address is)."""
    if not networks:
        return True
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == n.version and ip in n for n in networks)


__all__ = ["Destination", "NodeConfig", "RetryPolicy", "check_aet", "ip_allowed",
           "parse_networks"]
