"""The bundled demo consortium running: every member's own server, in one process.

``DemoConsortium`` writes the members' catalogues once (``broker.demo.catalogues``, cached
in a directory), loads each into a ``LocalCatalogue`` and serves it the way ``config/demo.yaml``
says: a real SRU server (``connectors.sru.server.SruServer``) or a real Z39.50 server
(``connectors.z3950.server.Z3950Server``) per member, each on its own port on 127.0.0.1,
except the member that is down on purpose. The broker then searches them exactly as it
searches real libraries, over the network.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from broker.catalogues.marc_file import LocalCatalogue
from broker.demo import catalogues as demo_catalogues
from broker.demo import members as demo_members
from broker.demo.members import MemberPlan
from broker.kernel.config import Consortium
from broker.kernel.cql import INDEXES
from broker.kernel.errors import UsageError

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class DemoMember:
    plan: MemberPlan
    catalogue: LocalCatalogue
    server: object | None  # SruServer | Z3950Server; None for the member that is down


class DemoConsortium:
    """``async with DemoConsortium() as demo:`` every member is listening; ``demo.config``
    is the libraries file to search them with."""

    def __init__(self, *, data_dir: Path | None = None,
                 port_base: int = demo_members.PORT_BASE, host: str = demo_members.HOST,
                 seed: int = demo_catalogues.SEED,
                 regenerate: bool = False) -> None:
        self.data_dir = Path(data_dir) if data_dir else demo_catalogues.default_data_dir()
        self.port_base = port_base
        self.host = host
        self.seed = seed
        self.regenerate = regenerate
        self.members: list[DemoMember] = []
        self.directory: Consortium | None = None  # the real members (libraries.yaml)
        self.manifest: dict = {}
        self.generated = False  # the catalogues were written now, not found in the cache
        self.generate_seconds = 0.0
        self.load_seconds = 0.0
        self.start_seconds = 0.0
        self.config: Path | None = None
        self._stack = contextlib.AsyncExitStack()

    @property
    def records(self) -> int:
        return sum(len(m.catalogue) for m in self.members)

    @property
    def plans(self) -> list[MemberPlan]:
        return [m.plan for m in self.members]

    async def __aenter__(self) -> DemoConsortium:
        try:
            await self.start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        if not 1024 <= self.port_base <= 65535 - 64:
            raise UsageError(f"--port-base must be between 1024 and {65535 - 64}, "
                             f"not {self.port_base}")
        began = time.monotonic()
        self.directory = demo_members.load_members()
        plans = demo_members.plan(lib.id for lib in self.directory.libraries)
        self._check_ports(plans)  # before the slow part
        self.manifest, self.generated = demo_catalogues.ensure(
            self.data_dir, plans, self.directory, self.seed, force=self.regenerate)
        loaded = time.monotonic()
        self.generate_seconds = loaded - began
        catalogues = {}
        for p in plans:
            catalogues[p.id] = LocalCatalogue(
                self.data_dir / p.file_name, name=p.id, flavour=p.format, delay=p.delay,
                encoding=p.encoding, indexes=INDEXES if p.callnumber else
                [i for i in INDEXES if i != "callnumber"])
        self.load_seconds = time.monotonic() - loaded
        self.config = self._write_config(plans)
        serving = time.monotonic()
        for p in plans:
            server = None if p.down else await self._serve(p, catalogues[p.id])
            self.members.append(DemoMember(p, catalogues[p.id], server))
        self.start_seconds = time.monotonic() - serving
        logger.info("demo: %d members, %d records, ports %d-%d", len(self.members),
                    self.records, self.port_base, self.port_base + len(plans) - 1)

    async def _serve(self, p: MemberPlan, catalogue: LocalCatalogue) -> object:
        port = p.port(self.port_base)
        server: contextlib.AbstractAsyncContextManager[object]
        if p.protocol == "sru":
            from connectors.sru.server import SruServer

            server = SruServer({p.database: catalogue}, self.host, port)
        else:
            from connectors.z3950.server import Z3950Server

            server = Z3950Server({p.database: catalogue}, host=self.host, port=port)
        try:
            return await self._stack.enter_async_context(server)
        except OSError as exc:
            raise self._port_error(p, port, exc) from None

    def _check_ports(self, plans: list[MemberPlan]) -> None:
        for p in plans:
            if p.down:
                continue
            port = p.port(self.port_base)
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do
                try:
                    probe.bind((self.host, port))
                except OSError as exc:
                    raise self._port_error(p, port, exc) from None

    def _port_error(self, p: MemberPlan, port: int, exc: OSError) -> UsageError:
        return UsageError(
            f"cannot listen on {self.host}:{port} for {p.id} ({exc.strerror or exc}); is "
            "another demo running? Move the demo's ports with --port-base N")

    def _write_config(self, plans: list[MemberPlan]) -> Path:
        """config/demo.yaml for the usual ports; a copy with the ports moved otherwise."""
        if self.port_base == demo_members.PORT_BASE and demo_members.DEMO_CONFIG.is_file():
            return demo_members.DEMO_CONFIG
        assert self.directory is not None
        path = self.data_dir / f"demo-{self.port_base}.yaml"
        path.write_text(demo_members.render_config(self.directory, plans, self.port_base),
                        "utf-8")
        return path

    async def close(self) -> None:
        await self._stack.aclose()
