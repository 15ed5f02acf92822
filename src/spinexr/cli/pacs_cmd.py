"""``spinexr pacs listen --ae-title AET --port PORT --forward AET@HOST:PORT ...``.

Runs the DICOM node (:mod:`spinexr.pacs`): a Storage SCP that analyses the spine radiographs
and MR slices it receives with the one process step and sends SR, GSPS and Secondary Capture to
every ``--forward`` destination. Its analyses and audit entries go into the web service's
database (``--data-dir`` / ``SPINEXR_DATABASE_URL``, as ``spinexr serve``), so they show in the
service's history and UI. Stops cleanly on SIGTERM / Ctrl-C; what is queued stays on disk.
"""
from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path

from spinexr.cli.analyze_cmd import add_pack_arguments
from spinexr.errors import ConfigError


def add_parser(sub) -> None:
    p = sub.add_parser("pacs", help="DICOM node: receive from modalities/PACS, send results",
                       description="DICOM networking (needs the 'pacs' extra: pynetdicom).")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    listen = verbs.add_parser("listen", help="run the Storage SCP, analyse, forward results")
    listen.add_argument("--ae-title", default="SPINEXR", help="this node's AE title")
    listen.add_argument("--port", type=int, default=11112, help="port to listen on")
    listen.add_argument("--host", default="0.0.0.0", help="address to listen on")
    listen.add_argument("--forward", action="append", default=[], metavar="AET@HOST:PORT",
                        help="a Storage SCP receiving SR/GSPS/SC (repeatable)")
    listen.add_argument("--allow-aet", action="append", default=[], metavar="AET",
                        help="accept associations from this calling AE title only "
                             "(repeatable; default: any)")
    listen.add_argument("--allow-ip", action="append", default=[], metavar="CIDR",
                        help="accept associations from this network only (repeatable; "
                             "default: any)")
    listen.add_argument("--data-dir", type=Path, default=None,
                        help="the service's data folder (default $SPINEXR_DATA_DIR or "
                             "./spinexr-data); the queue is <data-dir>/pacs")
    add_pack_arguments(listen)
    listen.add_argument("--filter", type=Path, default=None, metavar="FILE",
                        help="incoming filter (JSON/YAML: modalities, body_parts, "
                             "skip_body_parts, skip_words, header_check, require_body_part)")
    listen.add_argument("--study-window", type=float, default=2.0, metavar="SECONDS",
                        help="analyse the images of a study together once it has been quiet "
                             "this long (0: each image at once)")
    listen.add_argument("--retry-base", type=float, default=2.0, metavar="SECONDS",
                        help="first retry delay of a failing destination (doubles each time)")
    listen.add_argument("--retry-max", type=float, default=300.0, metavar="SECONDS")
    listen.add_argument("--dead-after", type=float, default=86400.0, metavar="SECONDS",
                        help="dead-letter a result undelivered this long after it was queued")
    listen.add_argument("--uid-root", default=None, help="UID root of the result objects")
    listen.add_argument("--explain", default="", help="comma-separated: gradcam,ig,...")
    listen.add_argument("--metrics-port", type=int, default=None,
                        help="serve Prometheus metrics on this port (127.0.0.1)")
    listen.add_argument("--no-store", action="store_true",
                        help="do not record analyses in the web service's database")
    listen.add_argument("--keep-inputs", action="store_true",
                        help="keep received images after analysis (default: deleted)")
    listen.add_argument("--log-level", default="INFO",
                        choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    listen.set_defaults(run=run)


def build_config(args: argparse.Namespace, data_dir: Path):
    from spinexr.pacs import Destination, FilterConfig, NodeConfig, RetryPolicy
    from spinexr.pacs.config import parse_networks

    return NodeConfig(
        ae_title=args.ae_title, port=args.port, host=args.host,
        destinations=tuple(Destination.parse(f) for f in args.forward),
        allow_aets=tuple(args.allow_aet), allow_ips=parse_networks(args.allow_ip),
        data_dir=data_dir,
        filter=FilterConfig.load(args.filter) if args.filter else FilterConfig(),
        study_window_s=args.study_window,
        retry=RetryPolicy(base_s=args.retry_base, max_s=args.retry_max,
                          dead_after_s=args.dead_after),
        uid_root=args.uid_root, explain=tuple(m for m in args.explain.split(",") if m))


def _log_node(level: str) -> None:
    """``spinexr.pacs`` logs as JSON lines on stderr, like the service's; pynetdicom's own
    (which print AE titles and UIDs at INFO) only from WARNING up."""
    from spinexr.service.observe import JsonFormatter

    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("spinexr.pacs")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)


def run(args: argparse.Namespace) -> int:
    try:
        import pynetdicom  # noqa: F401
    except ImportError:
        raise ConfigError("the DICOM node needs the 'pacs' extra (pynetdicom missing): "
                          "pip install 'spinexr[pacs]'") from None
    from spinexr.analyze import Analyzer
    from spinexr.models.pack import resolve_packs
    from spinexr.models.threads import apply_thread_plan, plan_threads
    from spinexr.pacs.node import Node
    from spinexr.process import Processor
    from spinexr.service import Settings
    from spinexr.service.observe import configure_logging

    settings = Settings.from_env(data_dir=args.data_dir)
    config = build_config(args, Path(settings.data_dir))
    configure_logging(args.log_level)
    _log_node(args.log_level)
    apply_thread_plan(plan_threads(1, decode_workers=0))   # one analysis worker, as analyze
    pack, vert = resolve_packs(args.pack, args.vertebrae)
    processor = Processor(Analyzer(pack, vertebrae_pack=vert))
    recorder, store = None, None
    if not args.no_store:
        from spinexr.service.external import StoreRecorder
        from spinexr.service.store import Store

        store = Store.open(settings.db_url)
        recorder = StoreRecorder(store)
    node = Node(config, processor, recorder=recorder)
    if args.metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(args.metrics_port, addr="127.0.0.1", registry=node.metrics.registry)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    node.start()
    print(f"spinexr pacs: {config.ae_title} listening on {config.host}:{node.port}, "
          f"forwarding to {', '.join(d.name for d in config.destinations) or 'nobody'}",
          flush=True)
    try:
        stop.wait()
    finally:
        node.stop()
        if store is not None:
            store.close()
    return 0
