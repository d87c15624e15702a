"""Mutation tests for the lesson 03 checks: the reference passes; the stub and plausible wrong versions fail."""
import copy
import math

import pytest
import torch
import torch.nn.functional as F

from mlre_lab.checks.harness import CheckFailed, TaskNotImplemented
from mlre_lab.checks.small_model import (
    _assert_batch_independent,
    check_batch_independence_test,
    check_loss_at_init_test,
    check_overfit_test,
    check_train_step,
)
from mlre_lab.scratch.small_model import (
    assert_loss_at_init,
    assert_overfits_one_batch,
    evaluate_classifier,
    train_step_classifier,
)


@pytest.fixture(autouse=True)
def one_thread():
    # These models are tiny: one thread is much faster than several competing for the cores.
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


def stub(*args):
    raise NotImplementedError("write this function")


# ---- check_loss_at_init_test ---------------------------------------------------------------------------------------

def _init_loss(model, x, y):
    with torch.no_grad():
        logits = model(x)
    return F.cross_entropy(logits, y).item(), logits.shape[-1]


def never_raises(model, x, y):
    _init_loss(model, x, y)


def log10_instead_of_ln(model, x, y):
    loss, n = _init_loss(model, x, y)
    assert abs(loss - math.log10(n)) <= 0.1 * math.log10(n)


def only_too_low(model, x, y):
    loss, n = _init_loss(model, x, y)
    assert loss >= 0.9 * math.log(n)


def absolute_tolerance_5(model, x, y):
    loss, n = _init_loss(model, x, y)
    assert abs(loss - math.log(n)) <= 5


def trains_the_model(model, x, y):
    train_step_classifier(model, torch.optim.SGD(model.parameters(), lr=0.1), x, y)
    assert_loss_at_init(model, x, y)


def test_loss_at_init_check_accepts_reference(capsys):
    check_loss_at_init_test(assert_loss_at_init)
    assert capsys.readouterr().out.startswith("PASS check_loss_at_init_test:")


@pytest.mark.parametrize("mutant, reason", [
    (never_raises, "passed an MLP whose output weights are 10x too large"),
    (log10_instead_of_ln, "raised on a well-initialised MLP"),
    (only_too_low, "passed an MLP whose output weights are 10x too large"),
    (absolute_tolerance_5, "passed an MLP whose output weights are 10x too large"),
    (trains_the_model, "changed the model's parameters"),
])
def test_loss_at_init_check_rejects_mutants(mutant, reason):
    with pytest.raises(CheckFailed, match=reason) as info:
        check_loss_at_init_test(mutant)
    assert not isinstance(info.value, TaskNotImplemented)


def test_loss_at_init_check_rejects_stub():
    with pytest.raises(TaskNotImplemented, match="not implemented yet"):
        check_loss_at_init_test(stub)


# ---- check_train_step ----------------------------------------------------------------------------------------------

def no_zero_grad(model, optimizer, x, y):
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.item()


def returns_loss_after_step(model, optimizer, x, y):
    train_step_classifier(model, optimizer, x, y)
    with torch.no_grad():
        return F.cross_entropy(model(x), y).item()


def step_before_backward(model, optimizer, x, y):
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x), y)
    optimizer.step()
    loss.backward()
    return loss.item()


def nll_on_logits(model, optimizer, x, y):
    optimizer.zero_grad()
    loss = F.nll_loss(model(x), y)  # expects log-probabilities, gets logits
    loss.backward()
    optimizer.step()
    return loss.item()


def test_train_step_check_accepts_reference(capsys):
    check_train_step(train_step_classifier)
    assert capsys.readouterr().out.startswith("PASS check_train_step:")


@pytest.mark.parametrize("mutant, reason", [
    (no_zero_grad, r"step 2 of 3.*parameter 'net.1.weight' after the step differs"),
    (returns_loss_after_step, "step 1 of 3.*returned loss is"),
    (step_before_backward, "step 1 of 3.*after the step differs"),
    (nll_on_logits, "step 1 of 3.*returned loss is"),
])
def test_train_step_check_rejects_mutants(mutant, reason):
    with pytest.raises(CheckFailed, match=reason) as info:
        check_train_step(mutant)
    assert not isinstance(info.value, TaskNotImplemented)


def test_train_step_check_rejects_stub():
    with pytest.raises(TaskNotImplemented):
        check_train_step(stub)


# ---- check_overfit_test --------------------------------------------------------------------------------------------

def _train(model, x, y, steps):
    model = copy.deepcopy(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = train_step_classifier(model, optimizer, x, y)
    for _ in range(steps - 1):
        train_step_classifier(model, optimizer, x, y)
    return first, *evaluate_classifier(model, x, y)


def passes_everything(model, x, y):
    pass


def only_loss_decreased(model, x, y):
    first, loss, _ = _train(model, x, y, 200)
    assert loss < first


def only_accuracy(model, x, y):
    _, _, accuracy = _train(model, x, y, 200)
    assert accuracy == 1.0


def too_few_steps(model, x, y):
    _, loss, accuracy = _train(model, x, y, 10)
    assert loss <= 0.05 and accuracy == 1.0


def test_overfit_check_accepts_reference(capsys):
    check_overfit_test(assert_overfits_one_batch)
    assert capsys.readouterr().out.startswith("PASS check_overfit_test:")


@pytest.mark.parametrize("mutant, reason", [
    (passes_everything, "passed a model that ignores its input"),
    (only_loss_decreased, "passed a model that ignores its input"),
    (only_accuracy, "passed a model with tanh on its logits"),
    (too_few_steps, "raised on a healthy MLP"),
])
def test_overfit_check_rejects_mutants(mutant, reason):
    with pytest.raises(CheckFailed, match=reason) as info:
        check_overfit_test(mutant)
    assert not isinstance(info.value, TaskNotImplemented)


def test_overfit_check_rejects_stub():
    with pytest.raises(TaskNotImplemented):
        check_overfit_test(stub)


# ---- the batch-independence test ---------------------------------------------------------------------------------

def _independence_test(threshold=0.0, eval_mode=True, whole_batch=False):
    def test(model, x):
        was_training = model.training
        model.train(not eval_mode)
        x = x.detach().clone().requires_grad_()
        out = model(x)
        (grad,) = torch.autograd.grad(out.sum() if whole_batch else out[0].sum(), x)
        model.train(was_training)
        rows = grad if whole_batch else grad[1:]
        if whole_batch:
            assert (rows != 0).flatten(1).any(1).all(), "some example has no gradient"
        else:
            assert rows.abs().max() <= threshold, "the batch is mixed"
    return test


def test_batch_independence_reference_passes_and_stub_is_not_done(capsys):
    check_batch_independence_test(_assert_batch_independent)
    assert capsys.readouterr().out.startswith("PASS check_batch_independence_test:")
    with pytest.raises(TaskNotImplemented):
        check_batch_independence_test(stub)


@pytest.mark.parametrize("mutant, reason", [
    (_independence_test(eval_mode=False), "no bug"),  # BatchNorm in train mode mixes the batch by design
    (_independence_test(threshold=1e-3), "leaks 0.001"),  # a tolerance hides a small leak
    (_independence_test(whole_batch=True), "passed"),  # the whole batch's sum says nothing about mixing
])
def test_batch_independence_rejects(mutant, reason):
    with pytest.raises(CheckFailed, match=reason) as info:
        check_batch_independence_test(mutant)
    assert not isinstance(info.value, TaskNotImplemented)
