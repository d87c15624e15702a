"The check harness: what it accepts, what it rejects, and what its messages say."
import pytest
import torch

from mlre_lab.checks.harness import (
    Case,
    Check,
    CheckFailed,
    TaskNotImplemented,
    describe_mismatch,
    noncontiguous,
    randn,
    run_check,
)


def ref_scale(x, factor):
    return x * factor


CASES = [
    Case("rows=3, cols=4", (randn(3, 4, seed=0), 2.0), dims=("batch", "d_model")),
    Case("non-contiguous", (noncontiguous(randn(4, 5, seed=1)), 3.0), dims=("batch", "d_model")),
]


def check_scale(fn, grad=False):
    run_check("check_scale", fn, ref_scale, CASES, hint="multiply every entry by factor.",
              oracles={"torch.mul": torch.mul}, grad=grad)


def test_reference_passes_with_one_line(capsys):
    check_scale(ref_scale, grad=True)
    assert capsys.readouterr().out == "PASS check_scale: 2 cases\n"


def stub(x, factor):
    raise NotImplementedError("Task 1")


def test_stub_is_not_implemented():
    with pytest.raises(TaskNotImplemented, match=r"not implemented yet \(Task 1\)"):
        check_scale(stub)


MUTANTS = {
    "adds": lambda x, factor: x + factor,
    "transposed": lambda x, factor: (x * factor).T,
    "float64": lambda x, factor: x.double() * factor,
    "detached": lambda x, factor: (x * factor).detach(),
    "returns None": lambda x, factor: None,
    "view on non-contiguous": lambda x, factor: x.view(-1).view(x.shape) * factor,
    "in place": lambda x, factor: x.mul_(factor),
    "wrong gradient": lambda x, factor: x.detach() * factor + (x - x.detach()) * 2 * factor,
}


@pytest.mark.parametrize("name", MUTANTS)
def test_mutants_rejected(name):
    with pytest.raises(CheckFailed):
        check_scale(MUTANTS[name], grad=True)


def test_message_names_case_shape_dims_and_hint():
    with pytest.raises(CheckFailed) as info:
        check_scale(MUTANTS["transposed"])
    msg = str(info.value)
    assert "case 'rows=3, cols=4'" in msg
    assert "shape (4, 3), expected (batch=3, d_model=4)" in msg
    assert msg.splitlines()[-1] == "  Hint: multiply every entry by factor."
    assert info.value.case == "rows=3, cols=4" and info.value.check == "check_scale"


def test_message_gives_max_error_and_index():
    with pytest.raises(CheckFailed) as info:
        check_scale(MUTANTS["adds"])
    assert "max abs error" in str(info.value) and "at index (batch=" in str(info.value)


def test_dtype_and_missing_return_are_named():
    with pytest.raises(CheckFailed, match="dtype torch.float64, expected torch.float32"):
        check_scale(MUTANTS["float64"])
    with pytest.raises(CheckFailed, match="did you forget `return`"):
        check_scale(MUTANTS["returns None"])


def test_learner_error_shows_learner_frames_only():
    def helper(x):
        return x.view(-1)  # fails on the non-contiguous case

    def learner(x, factor):
        return helper(x).view(x.shape) * factor

    with pytest.raises(CheckFailed) as info:
        check_scale(learner)
    msg = str(info.value)
    assert "case 'non-contiguous'" in msg and "your function `learner` raised RuntimeError" in msg
    assert "return x.view(-1)  # fails on the non-contiguous case" in msg
    assert "mlre_lab/checking.py" not in msg and "site-packages" not in msg


def test_inputs_keep_their_strides_and_are_protected():
    seen = []

    def spy(x, factor):
        seen.append(x.is_contiguous())
        return x * factor

    check_scale(spy)
    assert seen == [True, False]
    with pytest.raises(CheckFailed, match="modified its input `x` in place"):
        check_scale(MUTANTS["in place"])


def test_gradients_checked_only_when_asked():
    check_scale(MUTANTS["detached"])  # values are right
    with pytest.raises(CheckFailed, match="no gradient flows"):
        check_scale(MUTANTS["detached"], grad=True)
    with pytest.raises(CheckFailed, match="gradient with respect to `x`"):
        check_scale(MUTANTS["wrong gradient"], grad=True)


def test_case_hint_replaces_check_hint():
    cases = [Case("big", (torch.tensor([1e4, 0.0]),), hint="subtract the max first.")]
    with pytest.raises(CheckFailed, match="Hint: subtract the max first."):
        run_check("check_softmax", lambda x: x.exp() / x.exp().sum(), lambda x: x.softmax(-1), cases, hint="h")


def test_describe_mismatch_details():
    x = torch.arange(6.0).reshape(2, 3)
    assert describe_mismatch(x, x.clone()) is None
    assert "is on device meta" in describe_mismatch(torch.empty(2, 3, device="meta"), x)
    inf = x.clone()
    inf[0, 2] = float("inf")
    problem = describe_mismatch(inf, x, dims=("batch", "vocab"))
    assert problem.startswith("output has infinity at index (batch=0, vocab=2)")
    assert describe_mismatch(x, inf).startswith("output differs")
    assert describe_mismatch(inf, inf) is None
    assert describe_mismatch(torch.tensor([True, False]), torch.tensor([True, True])).startswith("output differs in 1")
    assert "should be a tuple of 2 items" in describe_mismatch(x, (x, x))
    assert describe_mismatch({"a": x}, {"a": x + 1}).startswith("output['a'] differs")
    assert describe_mismatch(torch.tensor(2.0), 2.0) is None
    assert describe_mismatch(x.double(), x, check_dtype=False) is None


def test_check_object_counts_cases_and_needs_a_hint(capsys):
    check = Check("check_two", hint="h")
    for name in ("a", "b"):
        with check.case(name):
            check.compare(torch.ones(2), torch.ones(2))
    check.passed()
    assert capsys.readouterr().out == "PASS check_two: 2 cases\n"
    with pytest.raises(ValueError, match="one-line hint"):
        Check("check_x", hint="")


def test_noncontiguous_needs_two_elements():
    with pytest.raises(ValueError, match="always contiguous"):
        noncontiguous(torch.zeros(1))
