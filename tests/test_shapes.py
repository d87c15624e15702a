"Named-dimension shape checks: binding across arguments, the decorator, and the error messages."
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from mlre_lab.shapes import ShapeError, check_shapes, parse_spec


def test_shape_error_is_a_value_error():
    assert issubclass(ShapeError, ValueError)


def test_binding_across_arguments_names_argument_dimension_and_origin():
    q, mask = torch.zeros(2, 3, 4, 8), torch.zeros(5, 5)
    with pytest.raises(ShapeError) as err:
        check_shapes(q=(q, "batch heads seq d_head"), mask=(mask, "seq seq"))
    msg = str(err.value)
    assert "mask: dimension 'seq' (dim 0) is 5, but 'seq' is 4 from q (dim 2)" in msg
    assert "q     (2, 3, 4, 8)" in msg and "mask  (5, 5)" in msg
    assert "expected 'batch heads seq d_head'" in msg


def test_second_use_within_one_tensor():
    with pytest.raises(ShapeError, match=r"mask: dimension 'seq' \(dim 1\) is 6, but 'seq' is 5 from mask \(dim 0\)"):
        check_shapes(mask=(torch.zeros(5, 6), "seq seq"))


def test_rank_fixed_wildcard_and_ellipsis():
    x = torch.zeros(2, 3, 4)
    assert check_shapes(x=(x, "... d")) == {"d": 4}
    assert check_shapes(x=(x, "b ... d")) == {"b": 2, "d": 4}
    assert check_shapes(x=(x, "b _ 4")) == {"b": 2}
    assert check_shapes(x=(torch.zeros(4), "... d")) == {"d": 4}
    with pytest.raises(ShapeError, match="expected at least 3 dimensions 'a b ... c', got 2 dimensions"):
        check_shapes(x=(torch.zeros(2, 3), "a b ... c"))
    with pytest.raises(ShapeError, match="dimension 2 must be 3, got 4"):
        check_shapes(x=(x, "b s 3"))


def test_known_sizes_given_up_front():
    with pytest.raises(ShapeError, match="'d_model' is 16 from given"):
        check_shapes({"d_model": 16}, x=(torch.zeros(2, 3, 8), "batch seq d_model"))


def test_decorator_checks_args_kwargs_optional_and_tuple_returns():
    @check_shapes(x="batch seq d", mask="batch seq", returns=("batch d", None))
    def pool(x, mask=None):
        return x.mean(1), "not checked"

    assert pool(torch.zeros(2, 3, 4))[0].shape == (2, 4)
    assert pool(torch.zeros(2, 3, 4), mask=torch.ones(2, 3))[0].shape == (2, 4)
    with pytest.raises(ShapeError, match="pool: mask: dimension 'seq'"):
        pool(torch.zeros(2, 3, 4), torch.ones(2, 5))

    @check_shapes(x="batch d", returns=("batch d", "batch"))
    def bad(x):
        return x, x.sum(0)

    with pytest.raises(ShapeError, match=r"return\[1\]: dimension 'batch' \(dim 0\) is 3, but 'batch' is 2 from x"):
        bad(torch.zeros(2, 3))


def test_decorator_rejects_unknown_argument_and_mixed_use():
    with pytest.raises(TypeError, match="no argument named y"):
        check_shapes(y="a")(lambda x: x)
    with pytest.raises(TypeError, match="pass \\(tensor, 'spec'\\)"):
        check_shapes(x=torch.zeros(2))
    with pytest.raises(ValueError, match="more than one '...'"):
        parse_spec("... a ...")


def test_not_a_tensor():
    with pytest.raises(ShapeError, match="x: expected a tensor with shape 'a', got list"):
        check_shapes(x=([1, 2], "a"))


@given(st.lists(st.integers(1, 5), min_size=1, max_size=4), st.data())
def test_property_matching_shapes_bind_and_any_change_is_caught(shape, data):
    names = [f"d{i}" for i in range(len(shape))]
    spec = " ".join(names)
    a, b = torch.zeros(shape), torch.zeros(shape)
    assert check_shapes(a=(a, spec), b=(b, spec)) == dict(zip(names, shape))
    axis = data.draw(st.integers(0, len(shape) - 1))
    changed = list(shape)
    changed[axis] += data.draw(st.integers(1, 3))
    with pytest.raises(ShapeError, match=f"b: dimension '{names[axis]}' \\(dim {axis}\\)"):
        check_shapes(a=(a, spec), b=(torch.zeros(changed), spec))
