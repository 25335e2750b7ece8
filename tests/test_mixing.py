import itertools
import random

import pytest

from eu.data.mixing import StreamPlanner

from utils import ROOT, run_eu, scalars

TINY = str(ROOT / "configs" / "tiny.yaml")


def _lengths(n=37, seed=0):
    rng = random.Random(seed)
    return [rng.randint(5, 60) for _ in range(n)]


def _take(planner, start, n):
    return [p.rows for p in itertools.islice(planner.steps(start), n)]


@pytest.mark.parametrize("mode", [{"examples_per_step": 4}, {"tokens_per_step": 128, "examples_per_step": None}])
def test_plans_are_seeded_and_resume_exactly(mode):
    lengths = _lengths()
    a = StreamPlanner(lengths, 64, seed=1, stream=0, **mode)
    b = StreamPlanner(lengths, 64, seed=1, stream=0, **mode)
    c = StreamPlanner(lengths, 64, seed=2, stream=0, **mode)
    full = _take(a, 0, 40)
    assert full == _take(b, 0, 40)
    assert full != _take(c, 0, 40)
    for k in (1, 9, 23):
        assert _take(a, k, 40 - k) == full[k:]


def test_each_epoch_visits_every_example_once():
    lengths = _lengths(n=40)
    planner = StreamPlanner(lengths, 64, seed=0, stream=1, examples_per_step=4)
    seen = [i for plan in itertools.islice(planner.steps(), 10) for i in plan.examples(0)]
    assert sorted(seen) == list(range(40))


def test_ranks_share_one_global_plan():
    lengths = _lengths()
    two = StreamPlanner(lengths, 64, seed=5, stream=0, world_size=2, examples_per_step=3)
    one = StreamPlanner(lengths, 64, seed=5, stream=0, world_size=1, examples_per_step=6)
    for step, (p2, p1) in enumerate(itertools.islice(zip(two.steps(), one.steps()), 20)):
        assert sorted(p2.examples(0) + p2.examples(1)) == sorted(p1.examples(0))
        if step < 6:  # within the first epoch the ranks never share an example
            assert not set(p2.examples(0)) & set(p2.examples(1))


def test_token_budget_fills_fixed_rows():
    lengths = _lengths()
    planner = StreamPlanner(lengths, 64, seed=0, stream=0, examples_per_step=None, tokens_per_step=256)
    for plan in itertools.islice(planner.steps(), 30):
        assert len(plan.rows[0]) == 4
        assert all(sum(lengths[i] for i in row) <= 64 for row in plan.rows[0])


def test_resumed_fit_sees_the_same_losses_as_an_uninterrupted_one(workdir):
    common = [
        "-c",
        TINY,
        "--trainer.max_steps=6",
        "--trainer.log_every_n_steps=1",
        "--trainer.val_check_interval=100",
        "--trainer.callbacks.init_args.every_n_train_steps=3",
        "--trainer.enable_progress_bar=false",
    ]
    assert run_eu("fit", *common, "--trainer.logger.init_args.name=straight") == 0
    ckpt = workdir / "runs/tiny/checkpoints/step3.ckpt"
    assert ckpt.is_file()
    assert run_eu("fit", *common, "--trainer.logger.init_args.name=resumed", f"--ckpt_path={ckpt}") == 0
    straight = dict(scalars(workdir / "runs/tiny/straight/version_0")["loss/total"])
    resumed = dict(scalars(workdir / "runs/tiny/resumed/version_0")["loss/total"])
    assert sorted(resumed) == [3, 4, 5]
    for step in (3, 4, 5):
        assert resumed[step] == pytest.approx(straight[step], rel=1e-6, abs=0)
