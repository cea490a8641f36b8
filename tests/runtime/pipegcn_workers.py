"""Rank bodies for tests/runtime/test_pipegcn.py (loaded by file path in the spawned children).

``stale_run`` trains a few epochs and records, per epoch and (layer, direction), the rows this
rank sent and the stale values it used: the halo rows it aggregated over (forward) and the
gradients it added into the rows it had sent (backward).
"""

from pathlib import Path


def stale_run(rank, world, cfg_dict, plan_dir, epochs):
    from adaqp.runtime.config import TrainConfig
    from adaqp.runtime.trainer import RankTrainer

    tr = RankTrainer(TrainConfig.from_dict(cfg_dict), rank, world, Path(plan_dir))
    st, ex = tr.ctx.stale, tr.ctx.exchanger
    now = {"epoch": 0}
    sent, used = [], []  # per epoch: {"<layer>.<dir>": array}
    take, put, start = st.take, st.put, ex.start
    name = lambda key: f"{key[0]}.{key[1]}"  # noqa: E731

    def record_take(key):
        values = take(key)
        used[now["epoch"]][name(key)] = values.numpy().copy()
        return values

    def record_put(key, values):  # epoch 0: the fresh values, used now and stale next epoch
        used[now["epoch"]][name(key)] = values.numpy().copy()
        put(key, values)

    def record_start(layer, direction, rows, async_op):
        out = rows[ex.send_index] if direction == "fwd" else rows  # in the order they travel
        sent[now["epoch"]][name((layer, direction))] = out.detach().numpy().copy()
        return start(layer, direction, rows, async_op)

    st.take, st.put, ex.start = record_take, record_put, record_start
    losses = []
    for epoch in range(epochs):
        now["epoch"] = epoch
        sent.append({}), used.append({})
        losses.append(tr.train_epoch(epoch)["loss"])
    st.settle()
    h = tr.data.halo
    return {"losses": losses, "sent": sent, "used": used, "send_ptr": h.send_ptr.tolist(),
            "recv_ptr": h.recv_ptr.tolist(), "eval_is_fresh": tr.eval_ctx.stale is None}
