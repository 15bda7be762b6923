"""The Redis hot state on real local Redis Clusters: companies on several masters, a slot moved
under load, the configuration bus, and a master killed with `kill -9` mid-load."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from callbid.adapters.config_bus import RedisConfigBus
from callbid.domain.errors import Unavailable
from callbid.domain.reserve import ReserveOrder, ReserveResult, ReserveStatus
from callbid.hotstate.cluster import RedisClient
from callbid.hotstate.redis import RESTORED_KEY, RedisHotState, connect_redis
from callbid.hotstate.redis_wire import prefix
from tests.builders import build_campaign
from tests.conftest import FakeClock, skip_without_redis_server
from tests.contract.test_hotstate_contract import T0, candidate, order, target
from tests.integration.test_scale_out import pause_reaches_second_worker, second_worker
from tests.support.redis_cluster import HOST, Certificates, LocalCluster, running_cluster

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

CAP = 3
BURST = 12  # reserves fired at once at each fresh target: always more than CAP


@pytest.fixture
async def store(redis_cluster: LocalCluster) -> AsyncIterator[RedisHotState]:
    hot = RedisHotState(connect_redis(redis_cluster.url, timeout=1.0, pool_size=32))
    try:
        yield hot
    finally:
        await hot.close()


@dataclass
class Load:
    """What a load run saw: grants per (namespace, target), refusals and answers in time."""

    granted: dict[tuple[str, int], list[str]] = field(default_factory=lambda: defaultdict(list))
    refused: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    answered: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    waited: list[float] = field(default_factory=list)  # seconds each refused call took

    async def burst(self, store: RedisHotState, ns: str, target_id: int) -> None:
        async def one() -> None:
            reserve = order(ns, candidate(target_id, concurrency=CAP), ttl=600)
            sent = time.monotonic()
            try:
                result = await store.reserve(reserve)
            except Unavailable:
                self.refused[ns].append(time.monotonic())
                self.waited.append(time.monotonic() - sent)
                return
            self.answered[ns].append(time.monotonic())
            if result.status is ReserveStatus.RESERVED:
                self.granted[ns, target_id].append(reserve.uuid)

        await asyncio.gather(*(one() for _ in range(BURST)))

    async def run(self, store: RedisHotState, namespaces: list[str], stop: asyncio.Event) -> None:
        """Bursts at a fresh target of every namespace, round after round, until `stop`."""
        round_ = 0
        while not stop.is_set():
            round_ += 1
            await asyncio.gather(*(self.burst(store, ns, round_) for ns in namespaces))
            await asyncio.sleep(0.01)

    async def check(self, store: RedisHotState) -> None:
        """No cap exceeded, and every reservation answered "granted" still readable."""
        assert self.granted, "the load granted nothing"
        for (ns, target_id), uuids in self.granted.items():
            assert len(uuids) <= CAP, (ns, target_id, len(uuids))
            for uuid in uuids:
                assert await store.get(ns, uuid, T0) is not None, (ns, target_id, uuid)
            (usage,) = await store.usage(ns, (target(target_id, concurrency=CAP),), T0)
            assert len(uuids) <= usage.in_use <= CAP, (ns, target_id, usage)


def namespaces_on(cluster: LocalCluster, port: int | None, count: int, stem: str) -> list[str]:
    """`count` namespaces whose slot `port` serves (any master when None), others excluded."""
    found, owners, i = [], cluster.slot_owners(), 0
    while len(found) < count:
        i += 1
        ns = f"{stem}-{i}"
        if port is None or owners[keyslot(prefix(ns))] == port:
            found.append(ns)
    return found


def bus_client(cluster: LocalCluster) -> RedisClient:
    return connect_redis(cluster.url, timeout=1.0, pool_size=4)


async def eventually(condition: Callable[[], bool], seconds: float) -> None:
    """Until `condition()` holds, polling; TimeoutError after `seconds`."""
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110 (a condition on other tasks' results)
            await asyncio.sleep(0.02)


def keyslot(key: str) -> int:
    """Redis Cluster's slot of `key` (CRC16 of its hash tag, mod 16384)."""
    start = key.find("{")
    end = key.find("}", start + 1) if start >= 0 else -1
    if start >= 0 and end > start + 1:
        key = key[start + 1 : end]
    crc = 0
    for byte in key.encode():
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc % 16384


async def test_companies_spread_over_several_masters(
    redis_cluster: LocalCluster, store: RedisHotState
) -> None:
    namespaces = [f"co{company}" for company in range(1, 13)]
    owners = {ns: redis_cluster.owner_of(prefix(ns)) for ns in namespaces}
    assert len(set(owners.values())) > 1, owners
    node = Redis(host=HOST, port=next(iter(owners.values())))
    for ns in namespaces:  # the slot arithmetic of these tests is Redis's own
        assert keyslot(prefix(ns)) == await node.execute_command("CLUSTER KEYSLOT", prefix(ns))
    await node.aclose()
    load = Load()
    for ns in namespaces:
        await load.burst(store, ns, 1)
    assert not load.refused
    assert {ns for ns, _ in load.granted} == set(namespaces)
    assert all(len(uuids) == CAP for uuids in load.granted.values())
    await load.check(store)
    for ns, port in owners.items():  # each company's keys on its own master alone
        node = Redis(host=HOST, port=port)
        slot = keyslot(prefix(ns))
        assert int(await node.execute_command("CLUSTER COUNTKEYSINSLOT", slot)) > 0
        await node.aclose()


async def move_slot(cluster: LocalCluster, slot: int, source: int, dest: int) -> None:
    """Reshard `slot` from `source` to `dest` as `redis-cli --cluster reshard` does, one key
    per MIGRATE with a pause between, so that the load meets the slot half moved."""
    src, dst = Redis(host=HOST, port=source), Redis(host=HOST, port=dest)
    try:
        src_id = (await src.execute_command("CLUSTER MYID")).decode()
        dst_id = (await dst.execute_command("CLUSTER MYID")).decode()
        await dst.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", src_id)
        await src.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", dst_id)
        while keys := await src.execute_command("CLUSTER GETKEYSINSLOT", slot, 1):
            await src.execute_command("MIGRATE", HOST, dest, "", 0, 5000, "KEYS", *keys)
            await asyncio.sleep(0.02)
        for client in (dst, src):
            await client.execute_command("CLUSTER SETSLOT", slot, "NODE", dst_id)
    finally:
        await src.aclose()
        await dst.aclose()


async def test_a_slot_moved_under_load_never_overbooks_and_leaves_nothing_behind(
    redis_cluster: LocalCluster, store: RedisHotState
) -> None:
    (moving,) = namespaces_on(redis_cluster, None, 1, "moving")
    slot = keyslot(prefix(moving))
    source = redis_cluster.slot_owners()[slot]
    dest = next(port for port in set(redis_cluster.slot_owners().values()) if port != source)
    (still,) = [ns for ns in namespaces_on(redis_cluster, dest, 1, "staying")]
    load, stop = Load(), asyncio.Event()
    running = asyncio.create_task(load.run(store, [moving, still], stop))
    await asyncio.sleep(0.3)
    started = time.monotonic()
    await move_slot(redis_cluster, slot, source, dest)
    moved = time.monotonic()
    await asyncio.sleep(0.5)
    stop.set()
    await running
    refused = load.refused[moving]
    print(
        f"\nslot move: {moved - started:.2f} s, {len(refused)} reserves refused, each after "
        f"waiting up to {max(load.waited, default=0):.2f} s"
    )
    assert refused, "no reserve met the slot mid-move"  # else the test proves nothing
    assert not load.refused[still]  # a slot that does not move is not disturbed
    assert max(load.answered[moving]) > moved  # served again, by the new owner
    await load.check(store)
    assert redis_cluster.slot_owners()[slot] == dest
    old = Redis(host=HOST, port=source)
    assert int(await old.execute_command("CLUSTER COUNTKEYSINSLOT", slot)) == 0
    await old.aclose()


async def test_the_config_bus_reaches_the_other_instance(redis_cluster: LocalCluster) -> None:
    seen: dict[str, list[int | None]] = {"a": [], "b": []}
    buses = [RedisConfigBus(bus_client(redis_cluster), seen[name].append) for name in ("a", "b")]
    try:
        for bus in buses:
            bus.start()
            await asyncio.wait_for(bus.subscribed.wait(), 5)
        assert buses[0].channel == "cb:config"
        await buses[0].publish(42)
        await eventually(lambda: 42 in seen["b"], 5)
        assert seen["a"] == [None]  # its own subscription alone, not its own message
    finally:
        for bus in buses:
            await bus.stop()
            await bus._client.aclose()


async def test_a_burst_beyond_the_pool_waits_for_a_connection(
    redis_cluster: LocalCluster,
) -> None:
    """A master that stalls (here `CLIENT PAUSE`) while calls keep coming: each loop turn's
    batch holds a connection to it, and more batches than `pool_size` queue for one, as on
    the one-server pool, instead of failing."""
    (ns,) = namespaces_on(redis_cluster, None, 1, "burst")
    store = RedisHotState(connect_redis(redis_cluster.url, timeout=2.0, pool_size=2))
    roomy = candidate(1, concurrency=100)
    master = Redis(host=HOST, port=redis_cluster.owner_of(prefix(ns)))
    try:
        await store.reserve(order(ns, roomy))  # the map of slots, the script loaded

        async def later(turn: int) -> ReserveStatus:
            await asyncio.sleep(turn * 0.002)  # one call per loop turn: a batch each
            return (await store.reserve(order(ns, roomy))).status

        await master.execute_command("CLIENT", "PAUSE", 300, "ALL")
        statuses = await asyncio.gather(*(later(turn) for turn in range(20)))
        assert statuses == [ReserveStatus.RESERVED] * 20
    finally:
        await master.aclose()
        await store.close()


async def test_scripts_lost_by_every_master_are_loaded_again(
    redis_cluster: LocalCluster, store: RedisHotState
) -> None:
    namespaces = namespaces_on(redis_cluster, None, 6, "flushed")
    await Load().burst(store, namespaces[0], 1)  # the scripts are loaded
    for port in set(redis_cluster.slot_owners().values()):
        node = Redis(host=HOST, port=port)
        await node.script_flush()
        await node.aclose()
    load = Load()  # a batch on one master, then batches on every master at once
    await load.burst(store, namespaces[1], 1)
    await asyncio.gather(*(load.burst(store, ns, 2) for ns in namespaces))
    assert not load.refused
    assert sorted(len(uuids) for uuids in load.granted.values()) == [CAP] * 7
    await load.check(store)


@pytest.mark.postgres
async def test_two_workers_on_the_cluster_share_caps_and_configuration_changes(
    redis_cluster: LocalCluster, make_service: Callable[..., Any], clock: FakeClock
) -> None:
    async with make_service("postgres", redis_url=redis_cluster.url) as one:
        built = await build_campaign(one.runtime.sessions)
        async with second_worker(one.settings, clock) as two:
            await pause_reaches_second_worker(one, two, built)


async def test_a_tls_cluster_serves_every_master_and_the_bus(tmp_path: Path) -> None:
    """Every connection over TLS (clients, the cluster bus, replication): a
    `rediss+cluster://` URL with the CA reaches every master and the configuration bus, and
    neither plain text nor TLS trusting another authority gets in (503, not a grant)."""
    skip_without_redis_server()
    with running_cluster(tmp_path, tls=True) as cluster:
        assert cluster.url.startswith("rediss+cluster://")
        store = RedisHotState(connect_redis(cluster.url, timeout=1.0, pool_size=8))
        seen: list[int | None] = []
        sender = RedisConfigBus(bus_client(cluster), lambda _: None)
        listener = RedisConfigBus(bus_client(cluster), seen.append)
        masters = set(cluster.slot_owners().values())
        spread = [namespaces_on(cluster, port, 1, f"tls-{port}")[0] for port in masters]
        try:
            for ns in spread:
                result = await store.reserve(order(ns, candidate(1, concurrency=CAP)))
                assert result.status is ReserveStatus.RESERVED
            listener.start()
            await asyncio.wait_for(listener.subscribed.wait(), 5)
            async with asyncio.timeout(5):
                while 7 not in seen:
                    await sender.publish(7)
                    await asyncio.sleep(0.1)
        finally:
            await listener.stop()
            await store.close()
            for bus in (sender, listener):
                await bus._client.aclose()

        assert cluster.tls is not None
        stranger = Certificates.make(tmp_path / "another-authority")
        plain = cluster.url.replace("rediss+cluster", "redis+cluster").partition("?")[0]
        for url in (plain, cluster.url.replace(str(cluster.tls.ca), str(stranger.ca))):
            wrong = RedisHotState(connect_redis(url, timeout=1.0, pool_size=2))
            try:
                with pytest.raises(Unavailable):
                    await wrong.reserve(order(spread[0], candidate(1, concurrency=CAP)))
            finally:
                await wrong.close()


async def test_a_master_back_empty_is_noticed_whichever_it_is(tmp_path: Path) -> None:
    """Each master holds a restore mark: one that comes back empty (no AOF, no replica)
    lacks its own, so the restore check refills, whichever master it was."""
    skip_without_redis_server()
    with running_cluster(tmp_path) as cluster:
        store = RedisHotState(connect_redis(cluster.url, timeout=1.0, pool_size=8))
        try:
            assert await store.claim_restore()  # a first start: nothing is marked
            await store.restore_done()
            assert not await store.claim_restore()
            masters = set(cluster.slot_owners().values())
            # Not the master the one mark of old lived on, whose loss went unnoticed.
            victim = next(iter(masters - {cluster.owner_of(RESTORED_KEY)}))
            cluster.kill(victim)
            cluster.restart(victim)
            async with asyncio.timeout(10):
                while True:
                    with contextlib.suppress(RedisError):  # the killed node's connections
                        if await store.claim_restore():
                            break
                    await asyncio.sleep(0.1)
            await store.restore_done()
            assert not await store.claim_restore()
        finally:
            await store.close()


@pytest.fixture(scope="module")
def failover_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """This module's own cluster: 3 masters with a replica each, AOF synced on every write.
    The tests below run in order on it, the one that kills a master last."""
    skip_without_redis_server()
    workdir = tmp_path_factory.mktemp("failover-cluster")
    with running_cluster(workdir, replicas=1, appendonly=True) as cluster:
        yield cluster


def acked_store(cluster: LocalCluster) -> RedisHotState:
    """As `CALLBID_REDIS_REPLICAS_ACK=1` deploys it: every write confirmed by a replica."""
    return RedisHotState(
        connect_redis(cluster.url, timeout=1.0, pool_size=8), replicas_ack=1, wait_ms=300
    )


async def wait_calls(port: int) -> int:
    node = Redis(host=HOST, port=port)
    try:
        stats = await node.info("commandstats")
    finally:
        await node.aclose()
    return int(stats.get("cmdstat_wait", {}).get("calls", 0))


def granted_as(result: ReserveResult, reserve: ReserveOrder) -> None:
    """A retry's answer: granted, as the very reservation first sent."""
    assert result.status is ReserveStatus.RESERVED
    assert result.record is not None
    assert result.record.uuid == reserve.uuid


async def test_each_master_waits_for_its_own_replica(failover_cluster: LocalCluster) -> None:
    cluster = failover_cluster
    masters = sorted(set(cluster.slot_owners().values()))
    spread = {port: namespaces_on(cluster, port, 1, f"acked-{port}")[0] for port in masters}
    store = acked_store(cluster)
    try:
        for ns in spread.values():  # the client's map of slots, the scripts on each master
            await store.reserve(order(ns, candidate(9, concurrency=CAP)))
        before = {port: await wait_calls(port) for port in masters}
        results = await asyncio.gather(
            *(store.reserve(order(ns, candidate(1, concurrency=CAP))) for ns in spread.values())
        )
        assert {result.status for result in results} == {ReserveStatus.RESERVED}
        # One batch, one pipeline: one WAIT on each master, after that master's own calls.
        assert {port: await wait_calls(port) - before[port] for port in masters} == dict.fromkeys(
            masters, 1
        )

        # A master whose replica stops answering confirms nothing: its writes answer 503
        # (the write stays, unconfirmed), the other masters' are granted as before.
        stalled = masters[0]
        replica = cluster.replica_of(stalled)
        assert replica.proc is not None
        orders = {ns: order(ns, candidate(2, concurrency=CAP)) for ns in spread.values()}
        replica.proc.send_signal(signal.SIGSTOP)
        try:
            answers = await asyncio.gather(
                *(store.reserve(reserve) for reserve in orders.values()), return_exceptions=True
            )
        finally:
            replica.proc.send_signal(signal.SIGCONT)
        by_ns = dict(zip(orders, answers, strict=True))
        assert isinstance(by_ns.pop(spread[stalled]), Unavailable)
        assert all(getattr(a, "status", a) is ReserveStatus.RESERVED for a in by_ns.values())
        # The caller's retry of the refused reserve, once the replica is back: the same one.
        refused = orders[spread[stalled]]
        granted_as(await store.reserve(refused), refused)
    finally:
        await store.close()


async def test_a_write_that_followed_its_slot_to_another_master_is_not_confirmed(
    failover_cluster: LocalCluster,
) -> None:
    cluster = failover_cluster
    (ns,) = namespaces_on(cluster, None, 1, "acked-moving")
    slot = keyslot(prefix(ns))
    source = cluster.slot_owners()[slot]
    dest = next(port for port in set(cluster.slot_owners().values()) if port != source)
    store = acked_store(cluster)
    try:
        first = await store.reserve(order(ns, candidate(1, concurrency=CAP)))
        assert first.status is ReserveStatus.RESERVED
        await move_slot(cluster, slot, source, dest)  # the store's map still says `source`
        # Sent to the old master, MOVED to the new one and run there: the old master's WAIT
        # covered nothing of it, so it is not reported as confirmed.
        reserve = order(ns, candidate(1, concurrency=CAP))
        with pytest.raises(Unavailable):
            await store.reserve(reserve)
        granted_as(await store.reserve(reserve), reserve)  # now on its new master's WAIT
        assert cluster.owner_of(prefix(ns)) == dest
    finally:
        await store.close()


async def test_a_master_killed_mid_load_fails_over_without_overbooking_or_loss(
    failover_cluster: LocalCluster,
) -> None:
    cluster = failover_cluster
    victim = cluster.owner_of("cb:config")  # the bus's channel lives there too
    doomed = namespaces_on(cluster, victim, 2, "doomed")
    others = namespaces_on(cluster, None, 6, "safe")
    safe = [ns for ns in others if cluster.owner_of(prefix(ns)) != victim]
    store = RedisHotState(connect_redis(cluster.url, timeout=1.0, pool_size=32))
    seen: list[int | None] = []
    sender = RedisConfigBus(bus_client(cluster), lambda _: None)
    listener = RedisConfigBus(bus_client(cluster), seen.append)
    load, stop = Load(), asyncio.Event()
    try:
        listener.start()
        await asyncio.wait_for(listener.subscribed.wait(), 5)
        running = asyncio.create_task(load.run(store, [*doomed, *safe], stop))
        await asyncio.sleep(0.5)
        killed = time.monotonic()
        cluster.kill(victim)
        await eventually(lambda: any(at > killed for ns in doomed for at in load.answered[ns]), 20)
        recovered = time.monotonic()
        await asyncio.sleep(0.5)
        stop.set()
        await running
        async with asyncio.timeout(10):  # the bus resubscribed, on the promoted replica
            while 7 not in seen:
                await sender.publish(7)
                await asyncio.sleep(0.1)
        bus_back = time.monotonic()
        refused = [at for ns in doomed for at in load.refused[ns]]
        print(
            f"\nfailover: reserves refused for {recovered - killed:.2f} s after the kill "
            f"({len(refused)} refusals, each within {max(load.waited, default=0):.2f} s); "
            f"bus back after {bus_back - killed:.2f} s"
        )
        assert refused, "no reserve met the failed master"
        assert cluster.owner_of(prefix(doomed[0])) != victim
        await load.check(store)
    finally:
        stop.set()
        await listener.stop()
        await store.close()
        for bus in (sender, listener):
            await bus._client.aclose()
