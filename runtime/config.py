"""``TrainConfig``: everything one distributed training run needs, frozen and validated."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from adaqp.errors import require
from adaqp.runtime.model import ModelConfig

FEATURE_NORMS = ("auto", "row", "none")


@dataclass(frozen=True)
class TrainConfig:
    dataset: str
    nprocs: int = 2
    model: ModelConfig = field(default_factory=ModelConfig)
    epochs: int = 100
    lr: float = 0.01
    weight_decay: float = 0.0
    seed: int = 0
    schedule: str = "vanilla"
    bits: str = "32"  # 1|2|4|8|16|32, "adaptive", or a BitPlan file written by the solver
    replan_every: int = 50  # adaptive: epochs between re-solves (the first ones run at 8 bits)
    max_replans: int | None = None  # adaptive: stop re-solving after this many (None: every K epochs)
    time_budget: str | None = None  # adaptive: e.g. "0.5x" or "1.2s"; None = the lambda form
    cluster: str = "local-cpu"  # adaptive: the cluster spec the solver plans for
    profile: str | None = None  # adaptive: hardware profile (default: the cluster's)
    partition_method: str = "metis"
    plan_dir: str | None = None  # saved partition (+ halo plan) to reuse
    eval_every: int = 10
    warmup_epochs: int = 3
    feature_norm: str = "auto"
    checkpoint_every: int = 0
    checkpoint_dir: str | None = None
    resume: bool = False
    transport: str | None = None
    device: str = "cpu"
    timeout_s: float = 60.0
    progress: bool = True

    def __post_init__(self) -> None:
        from adaqp.schedule import Schedule

        Schedule.parse(self.schedule)  # refuses unknown names with the list of options
        require(self.nprocs >= 1, f"nprocs must be >= 1, got {self.nprocs}")
        require(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        require(self.lr > 0, f"lr must be > 0, got {self.lr}")
        require(self.eval_every >= 1, f"eval_every must be >= 1, got {self.eval_every}")
        require(self.warmup_epochs >= 0, "warmup_epochs must be >= 0")
        require(self.feature_norm in FEATURE_NORMS, f"feature_norm must be one of {FEATURE_NORMS}")
        require(self.checkpoint_every >= 0, "checkpoint_every must be >= 0")
        require(not self.checkpoint_every or self.checkpoint_dir, "checkpointing needs a checkpoint folder")
        require(not self.resume or self.checkpoint_dir, "--resume needs a checkpoint folder")
        require(self.timeout_s > 0, "timeout must be > 0")
        sched = Schedule.parse(self.schedule)
        # pipegcn would ignore --bits as vanilla does; say where quantized stale messages are
        require(not sched.stale or sched.quantize or self.bits in ("32", "adaptive"),
                f"{self.schedule} sends fp32 messages; for quantized stale messages use --schedule "
                f"pipegcn-q --bits {self.bits}")
        # GAT's attention exchanges its halo rows itself (runtime/attention_halo.py), never stale
        require(not sched.stale or self.model.model in ("gcn", "sage"),
                f"{self.schedule} runs gcn and sage only, not {self.model.model}")
        if self.bits == "adaptive":
            # the re-solve plans for waited exchanges; a stale schedule's are off the critical path
            require(not sched.stale, f"--bits adaptive is not supported with {self.schedule}: the solver "
                                     "does not plan stale exchanges; use pipegcn-q with a uniform width")
            require(Schedule.parse(self.schedule).quantize, f"--bits adaptive needs a quantizing schedule "
                                                            f"(quant or adaqp), not {self.schedule}")
            require(self.replan_every >= 1, "replan_every must be >= 1")
            require(self.max_replans is None or self.max_replans >= 1, "max_replans must be >= 1 (or unset)")
        elif not self.bits.isdigit():
            require(Path(self.bits).exists(), f"--bits: no BitPlan file at {self.bits}")

    @property
    def uniform_bits(self) -> int | None:
        return int(self.bits) if self.bits.isdigit() else None

    @property
    def adaptive(self) -> bool:
        return self.bits == "adaptive"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        d["model"] = ModelConfig(**d["model"])
        return cls(**d)
