"""trainstack example: a small CNN on CIFAR-10 with PyTorch DDP (generated images with --synthetic).

Without CIFAR-10 under the run's dataset it stops with exit code 2 and says how to prepare and upload it
(prepare_data.py, then `trainstack upload`), unless --synthetic is given.

Runs alone (`python train.py`) or under torchrun on 1..N nodes; on every trainstack backend:
- checkpoints every --checkpoint-every steps (rank 0 writes: to TRAINSTACK_CHECKPOINT_URI with
  boto3, or into TRAINSTACK_CHECKPOINT_DIR, which SageMaker syncs to S3);
- on start, resumes from the newest checkpoint, so a spot interruption or a torchrun restart costs
  at most the steps since the last one;
- at the end rank 0 writes the model to SM_MODEL_DIR (SageMaker and the ec2 bootstrap upload it)
  or to TRAINSTACK_MODEL_URI.
Everything that needs no torch is in trainlib.py.
"""

from __future__ import annotations

import os
import pickle
import sys
import tempfile
import time

import trainlib


def load_cifar(folder: str):
    import numpy as np
    import torch

    xs, ys = [], []
    for name in trainlib.CIFAR_BATCHES:
        with open(os.path.join(folder, name), "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        raw = batch[b"data"]  # a uint8 array in CIFAR-10's own batches, bytes in prepare_data.py's samples
        data = np.frombuffer(raw, dtype=np.uint8) if isinstance(raw, (bytes, bytearray)) else np.asarray(raw)
        xs.append(data.astype(np.uint8).reshape(-1, 3, 32, 32))
        ys += list(batch[b"labels"])
    x = torch.from_numpy(np.concatenate(xs)).float().div_(255).sub_(0.5).div_(0.25)
    return torch.utils.data.TensorDataset(x, torch.tensor(ys, dtype=torch.long))


def synthetic(n: int, seed: int):
    import torch

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 32, 32, generator=g)
    # learnable labels: a fixed random projection of the image, so the loss really falls
    w = torch.randn(3 * 32 * 32, 10, generator=g)
    return torch.utils.data.TensorDataset(x, (x.flatten(1) @ w).argmax(1))


def model():
    from torch import nn

    def block(i, o):
        return nn.Sequential(nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True))

    return nn.Sequential(
        block(3, 32),
        block(32, 64),
        nn.MaxPool2d(2),
        block(64, 128),
        nn.MaxPool2d(2),
        block(128, 128),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(128, 10),
    )


def main(argv=None) -> int:
    args = trainlib.parse_args(argv)
    me = trainlib.dist_from_env()
    places = trainlib.places_from_env()
    work = tempfile.mkdtemp(prefix="trainstack-example-")
    # The data first (no torch needed): without CIFAR-10 the run stops here, loudly, unless --synthetic.
    folder = None if args.synthetic else trainlib.find_cifar(places, os.path.join(work, "cifar10"))
    if folder is None and not args.synthetic:
        print(f"error: {trainlib.no_data_message(places)}", file=sys.stderr, flush=True)
        return 2
    if args.synthetic and me.is_leader:
        print("training on generated images (--synthetic), not CIFAR-10", flush=True)

    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    cuda = torch.cuda.is_available()
    device = torch.device("cuda", me.local_rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if me.world_size > 1:
        dist.init_process_group("nccl" if cuda else "gloo")
    torch.manual_seed(args.seed)
    data = load_cifar(folder) if folder else synthetic(args.steps_per_epoch * args.batch_size, args.seed)
    sampler = torch.utils.data.distributed.DistributedSampler(
        data, num_replicas=me.world_size, rank=me.rank, shuffle=True, seed=args.seed, drop_last=True
    )
    loader = torch.utils.data.DataLoader(
        data, batch_size=args.batch_size, sampler=sampler, drop_last=True, num_workers=2, pin_memory=cuda
    )
    net = model().to(device)
    opt = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4)
    steps_per_epoch = len(loader)
    step = 0

    latest = trainlib.resume_from(places, args.fresh)  # every rank reads the same checkpoint
    if latest:
        state = torch.load(trainlib.fetch(latest, os.path.join(work, "resume.pt")), map_location=device)
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step = state["step"]
        if me.is_leader:
            print(f"resumed from {latest} at step {step}", flush=True)
    ddp = DDP(net, device_ids=[me.local_rank] if cuda else None) if me.world_size > 1 else net
    loss_fn = torch.nn.CrossEntropyLoss()

    total = args.epochs * steps_per_epoch
    started = time.time()
    while step < total:
        epoch, skip = divmod(step, steps_per_epoch)
        sampler.set_epoch(epoch)
        for i, (x, y) in enumerate(loader):
            if i < skip:  # resumed mid-epoch: the sampler's order is the same, skip what was done
                continue
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            loss = loss_fn(ddp(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if me.is_leader and step % 20 == 0:
                print(
                    f"epoch {epoch + 1}/{args.epochs} step {step}/{total} loss {loss.item():.4f} "
                    f"({time.time() - started:.0f}s)",
                    flush=True,
                )
            if args.checkpoint_every and step % args.checkpoint_every == 0 and me.is_leader:
                path = os.path.join(work, "ckpt.pt")
                torch.save({"model": net.state_dict(), "optimizer": opt.state_dict(), "step": step}, path)
                print(f"checkpoint {trainlib.save_checkpoint(path, step, places, args.keep_checkpoints)}", flush=True)
            if step >= total:
                break

    if me.is_leader:
        path = os.path.join(work, "model.pt")
        torch.save(net.state_dict(), path)
        print(f"model {trainlib.publish_model(path, places)}", flush=True)
    if me.world_size > 1:
        dist.barrier()
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
