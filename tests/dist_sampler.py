"""Run under `torchrun --nproc_per_node 2`: build the hybrid sampler, shard it with accelerate exactly as
`SentenceTransformerTrainer` does (even_batches=False), and record the sub-dataset each rank sees at every step."""
import json, sys

import torch.distributed as dist
from accelerate import Accelerator
from datasets import Dataset, DatasetDict
from torch.utils.data import DataLoader

from hybrid_nli.sampler import build_sampler

accelerator = Accelerator(cpu=True)
accelerator.even_batches = False
names = ['xx_en', 'xx_de', 'xx_ru', 'xy_en_de', 'xy_de_en', 'xy_en_ru']
sizes = [60, 45, 30, 90, 75, 40]
pairs = DatasetDict({n: Dataset.from_dict(dict(anchor=[f'{n}/a{i}' for i in range(k)], positive=[f'{n}/p{i}' for i in range(k)]))
                     for n, k in zip(names, sizes)})
sampler = build_sampler(pairs, alpha=0.5, batch_size=4, seed=11)
flat = [r['anchor'] for n in pairs for r in pairs[n]]
loader = accelerator.prepare(DataLoader(range(len(flat)), batch_sampler=sampler, collate_fn=list))
steps = [{flat[i].split('/')[0] for i in batch} for batch in loader]
assert all(len(s) == 1 for s in steps)
mine = [s.pop() for s in steps]
everyone = [None]*dist.get_world_size()
dist.all_gather_object(everyone, mine)
if dist.get_rank() == 0:
    with open(sys.argv[1], 'w') as f: json.dump({str(r): s for r, s in enumerate(everyone)}, f)
dist.destroy_process_group()
