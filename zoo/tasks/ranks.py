"""Many inputs over the processes of a `torchrun` launch: each its share, results put back in order.

    torchrun --nproc_per_node 4 -m zoo predict resnet50.a1_in1k photos/*.jpg --json

Inputs are cut into batches first, as one process would cut them; batch i goes to rank
`i % world_size`. Each rank runs its batches exactly as a single process would run them, so
its results are bit for bit the ones a single process gets; the ranks' results are then
gathered (`torch.distributed.all_gather_object`) and put back in batch order, on every
rank. Rank 0 alone prints and writes.

Outside torchrun (no `WORLD_SIZE` in the environment, or 1), there is one rank and
nothing is started.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

__all__ = ["Ranks", "joined", "launched", "local_first"]

T = TypeVar("T")


@dataclass(frozen=True)
class Ranks:
    """This process's place among the processes of a launch."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def leads(self) -> bool:
        """Whether this is rank 0, the one that prints and writes."""
        return self.rank == 0

    def share(self, count: int) -> range:
        """The indices, among `count` batches, this rank runs: every `world_size`-th."""
        return range(self.rank, count, self.world_size)

    def in_order(self, mine: Sequence[tuple[int, T]]) -> list[T]:
        """Every rank's `(index, result)` pairs, gathered on every rank, in index order."""
        if self.world_size == 1:
            return [result for _, result in sorted(mine, key=lambda pair: pair[0])]
        import torch.distributed as dist

        gathered: list[list[tuple[int, T]] | None] = [None] * self.world_size
        dist.all_gather_object(gathered, list(mine))
        every = [pair for part in gathered for pair in part or ()]
        return [result for _, result in sorted(every, key=lambda pair: pair[0])]

    def barrier(self) -> None:
        if self.world_size > 1:
            import torch.distributed as dist

            dist.barrier()


def launched() -> bool:
    """Whether this process is one of several started by torchrun."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


@contextmanager
def joined() -> Iterator[Ranks]:
    """This process's `Ranks`; under torchrun, in a process group (gloo: it carries only the
    gathered results) started here if none is, and ended on leaving."""
    if not launched():
        yield Ranks()
        return
    import torch.distributed as dist

    started = not dist.is_initialized()
    if started:
        dist.init_process_group("gloo")
    ranks = Ranks(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    try:
        yield ranks
        ranks.barrier()  # no rank leaves while another's last messages are in flight
    finally:
        if started:
            dist.destroy_process_group()


@contextmanager
def local_first(ranks: Ranks) -> Iterator[None]:
    """Run the body on each node's local rank 0 first, then on the others: the first fills a
    shared cache (a download), the others then find the file there."""
    if ranks.local_rank != 0:
        ranks.barrier()
    try:
        yield
    finally:  # on an error too, or the others would wait for ever
        if ranks.local_rank == 0:
            ranks.barrier()
