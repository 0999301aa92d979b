"""The ADS gRPC service: one bidirectional stream per edge node, state of the world
(`ads_sotw`) or incremental (`ads_delta`).

Each stream runs one loop that handles, in arrival order, the node's requests
and "your snapshot changed" wake-ups from the cache, and writes whatever the
stream's state machine says is due. The node id comes from the first request
(Envoy sends it once: ``set_node_on_first_message_only``); the id must be a
plain identifier, and the registry caps how many distinct nodes it tracks.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable
from typing import Any, Final

import grpc
from envoy.service.discovery.v3 import ads_pb2_grpc
from envoy.service.discovery.v3.discovery_pb2 import DeltaDiscoveryRequest, DiscoveryRequest

from edge_nodes.ads_delta import DeltaStream
from edge_nodes.ads_sotw import ProtocolError, SotwStream
from edge_nodes.cache import SnapshotCache
from edge_nodes.registry import Registry, TooManyNodes
from edge_nodes.snapshot import SnapshotError

log = logging.getLogger("edge_nodes.ads")

NODE_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_WAKE: Final = object()
_EOF: Final = object()

_Stream = SotwStream | DeltaStream


class AggregatedDiscovery(ads_pb2_grpc.AggregatedDiscoveryServiceServicer):  # type: ignore[misc]
    def __init__(self, cache: SnapshotCache, registry: Registry) -> None:
        self._cache = cache
        self._registry = registry

    async def StreamAggregatedResources(
        self, request_iterator: AsyncIterator[DiscoveryRequest], context: grpc.aio.ServicerContext
    ) -> None:
        await self._serve(request_iterator, context, SotwStream, "sotw")

    async def DeltaAggregatedResources(
        self,
        request_iterator: AsyncIterator[DeltaDiscoveryRequest],
        context: grpc.aio.ServicerContext,
    ) -> None:
        await self._serve(request_iterator, context, DeltaStream, "delta")

    async def _serve(
        self,
        requests: AsyncIterator[Any],
        context: grpc.aio.ServicerContext,
        make: Callable[[str, Registry], _Stream],
        mode: str,
    ) -> None:
        queue: asyncio.Queue[object] = asyncio.Queue()

        async def read() -> None:
            try:
                async for req in requests:
                    queue.put_nowait(req)
            except (grpc.aio.AioRpcError, asyncio.CancelledError):
                pass
            finally:
                queue.put_nowait(_EOF)

        reader = asyncio.create_task(read())
        node_id = ""
        stream: _Stream | None = None
        cancel_watch: Callable[[], None] | None = None
        try:
            while True:
                item: Any = await queue.get()
                if item is _EOF:
                    return
                if item is not _WAKE:
                    if stream is None:
                        node_id = await self._identify(item, context)
                        stream = make(node_id, self._registry)
                        cancel_watch = self._cache.watch(node_id, lambda: queue.put_nowait(_WAKE))
                        log.info("node connected", extra={"node": node_id, "mode": mode})
                    self._registry.seen(node_id)
                    try:
                        stream.on_request(item)
                    except ProtocolError as exc:
                        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
                    if item.HasField("error_detail"):
                        log.warning(
                            "node rejected configuration",
                            extra={
                                "node": node_id,
                                "type": item.type_url.rsplit(".", 1)[-1],
                                "error_detail": item.error_detail.message[:512],
                            },
                        )
                if stream is None:
                    continue
                try:
                    snap = self._cache.snapshot(node_id)
                except SnapshotError:
                    continue  # logged by the cache; the node keeps what it has
                for response in stream.responses(snap):
                    await context.write(response)
        finally:
            reader.cancel()
            if cancel_watch is not None:
                cancel_watch()
            if stream is not None:
                self._registry.disconnect(node_id)
                log.info("node disconnected", extra={"node": node_id})

    async def _identify(self, req: Any, context: grpc.aio.ServicerContext) -> str:
        node_id = req.node.id
        if not NODE_ID.fullmatch(node_id):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "node.id: missing or invalid")
        build = ""
        if req.node.HasField("user_agent_build_version"):
            v = req.node.user_agent_build_version.version
            build = f"{req.node.user_agent_name}/{v.major_number}.{v.minor_number}.{v.patch}"
        try:
            self._registry.connect(node_id, req.node.cluster, build)
        except TooManyNodes as exc:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
        return str(node_id)
