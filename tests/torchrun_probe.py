"""torchrun's entry point in test_mapper: ``python -m celeblook ARGS`` whose workers say, as they destroy the process
group, how many DDP wrappers are still alive. Automatic GC is off, so only what the trainer itself frees counts: a
wrapper left to a later GC pass (the interpreter's exit included) tears the group down under a finished worker."""

import gc
import sys

import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from celeblook.cli import main

gc.disable()
destroy = dist.destroy_process_group


def reporting_destroy(*args, **kwargs):
    alive = sum(isinstance(o, DistributedDataParallel) for o in gc.get_objects())
    # one write: the ranks say it at the same moment, and print's text and newline are two
    sys.stdout.write(f"rank {dist.get_rank()}: DDP wrappers alive as the process group is destroyed: {alive}\n")
    sys.stdout.flush()
    return destroy(*args, **kwargs)


dist.destroy_process_group = reporting_destroy
raise SystemExit(main(sys.argv[1:]))
