"""The tests every exercise check gets: it accepts its reference, reports the stub as not implemented, and rejects
each plausible wrong answer (mutant) with a reason and a hint. A check that accepts a mutant is a bug."""
from types import ModuleType

import pytest

from mlre_lab.checks.harness import CheckFailed, TaskNotImplemented


def stub(*args, **kwargs):
    "What a generated exercise holds before the learner writes anything."
    raise NotImplementedError("exercise stub")


def mutation_tests(checks: dict, module: ModuleType) -> tuple:
    """Test functions for `checks`: {name: (check, reference, mutants)} or {name: (check, reference, stub, mutants)},
    where `mutants` maps a description to a wrong implementation and `module` holds the `check_*` functions.
    Bind the result to `test_*` names in the calling test module so pytest collects them."""
    def parts(name):
        check, reference, *rest = checks[name]
        return check, reference, (rest[0] if len(rest) == 2 else stub), rest[-1]

    pairs = [(name, mutant) for name in checks for mutant in parts(name)[3]]

    def test_every_check_is_mutation_tested():
        defined = {n for n, f in vars(module).items() if n.startswith("check_") and f.__module__ == module.__name__}
        assert defined == {f"check_{name}" for name in checks}, "every check in the module needs its mutants here"
        assert all(len(parts(name)[3]) >= 3 for name in checks), "each check needs at least three mutants"

    @pytest.mark.parametrize("check", checks)
    def test_reference_passes(check, capsys):
        run, reference, _, _ = parts(check)
        run(reference)
        assert capsys.readouterr().out.startswith(f"PASS check_{check}: ")

    @pytest.mark.parametrize("check", checks)
    def test_stub_rejected(check):
        run, _, stub_impl, _ = parts(check)
        with pytest.raises(TaskNotImplemented):
            run(stub_impl)

    @pytest.mark.parametrize("check,mutant", pairs)
    def test_mutant_rejected(check, mutant):
        run, _, _, mutants = parts(check)
        with pytest.raises(CheckFailed) as info:
            run(mutants[mutant])
        assert not isinstance(info.value, TaskNotImplemented), "a mutant is a wrong answer, not a missing one"
        assert str(info.value).splitlines()[-1].startswith("  Hint: ")

    return test_every_check_is_mutation_tested, test_reference_passes, test_stub_rejected, test_mutant_rejected
