"Mutation tests for lesson 02's checks: each accepts the reference and rejects plausible mistakes and the stub."
import math

import pytest
import torch

from mlre_lab.checks import autograd as A
from mlre_lab.checks.harness import CheckFailed
from mlre_lab.scratch import autograd as L

from .mutation import mutation_tests, stub


class StubClass:
    def __init__(self, *args, **kwargs):
        raise NotImplementedError("exercise stub")


# --- Value mutants: the reference with one method changed -------------------------------------------------------
class AssignGrad(L.Value):  # `=` instead of `+=`
    def __add__(self, other):
        other = self._lift(other)
        out = type(self)(self.data + other.data, (self, other), "+")

        def _backward():
            self.grad = out.grad
            other.grad = out.grad
        out._backward = _backward
        return out


class NoTopologicalOrder(L.Value):  # depth-first from the output, each node once, no sorting
    def backward(self):
        self.grad = 1.0
        stack, seen = [self], {self}
        while stack:
            v = stack.pop()
            v._backward()
            for child in v._prev:
                if child not in seen:
                    seen.add(child)
                    stack.append(child)


class TanhDerivative(L.Value):  # 1 - t instead of 1 - t^2
    def tanh(self):
        t = math.tanh(self.data)
        return self._unary(t, 1 - t, "tanh")


class PowDerivative(L.Value):  # k * x^k instead of k * x^(k-1)
    def __pow__(self, k):
        out = type(self)(self.data**k, (self,), f"**{k}")

        def _backward():
            self.grad += k * self.data**k * out.grad
        out._backward = _backward
        return out


class LeakyRelu(L.Value):  # passes the gradient through negative inputs
    def relu(self):
        return self._unary(max(self.data, 0.0), 1.0, "relu")


class NoSeed(L.Value):  # forgets out.grad = 1
    def backward(self):
        order, seen = [], set()

        def visit(v):
            if v not in seen:
                seen.add(v)
                for child in v._prev:
                    visit(child)
                order.append(v)
        visit(self)
        for v in reversed(order):
            v._backward()


class RsubWrongSign(L.Value):  # 2 - a computed as a - 2
    def __rsub__(self, other):
        return self - other


# --- numerical gradient mutants -----------------------------------------------------------------------------------
def forward_difference(f, xs, eps=1e-5):
    grads = []
    for i in range(len(xs)):
        up = list(xs)
        up[i] += eps
        grads.append((f(up) - f(xs)) / eps)
    return grads


def no_factor_two(f, xs, eps=1e-5):
    return [2 * g for g in L.numerical_grad(f, xs, eps)]


def no_restore(f, xs, eps=1e-5):  # perturbs xs in place and never puts it back
    xs = list(xs)
    grads = []
    for i in range(len(xs)):
        xs[i] += eps
        up = f(xs)
        xs[i] -= 2 * eps
        grads.append((up - f(xs)) / (2 * eps))
    return grads


def all_at_once(f, xs, eps=1e-5):
    up, down = [x + eps for x in xs], [x - eps for x in xs]
    return [(f(up) - f(down)) / (2 * eps)] * len(xs)


# --- softmax mutants ----------------------------------------------------------------------------------------------
def softmax_naive(x, dim=-1):
    return x.exp() / x.exp().sum(dim, keepdim=True)


def softmax_last_dim(x, dim=-1):
    return L.softmax(x, -1)


def softmax_global_max(x, dim=-1):
    z = (x - x.max()).exp()
    return z / z.sum(dim, keepdim=True)


def softmax_dim0(x, dim=-1):
    return L.softmax(x, 0)


def softmax_detached(x, dim=-1):
    return L.softmax(x.detach(), dim)


def log_softmax_of_softmax(x, dim=-1):
    return L.softmax(x, dim).log()


def log_softmax_naive(x, dim=-1):
    return x - x.exp().sum(dim, keepdim=True).log()


def log_softmax_forgets_max(x, dim=-1):
    z = x - x.amax(dim, keepdim=True)
    return x - z.exp().sum(dim, keepdim=True).log()


def log_softmax_last_dim(x, dim=-1):
    return L.log_softmax(x, -1)


# --- cross-entropy mutants ----------------------------------------------------------------------------------------
def ce_no_ignore(logits, targets, ignore_index=-100):
    safe = targets.clamp(min=0)
    return -L.log_softmax(logits).gather(-1, safe[..., None]).squeeze(-1).mean()


def ce_mean_over_all(logits, targets, ignore_index=-100):
    keep = targets != ignore_index
    nll = -L.log_softmax(logits).gather(-1, torch.where(keep, targets, 0)[..., None]).squeeze(-1)
    return (nll * keep).sum() / targets.numel()


def ce_hardcoded_ignore(logits, targets, ignore_index=-100):
    return L.cross_entropy(logits, targets, -100) if ignore_index != -100 else L.cross_entropy(logits, targets)


def ce_sum(logits, targets, ignore_index=-100):
    keep = targets != ignore_index
    nll = -L.log_softmax(logits).gather(-1, torch.where(keep, targets, 0)[..., None]).squeeze(-1)
    return (nll * keep).sum()


def ce_unstable(logits, targets, ignore_index=-100):
    keep = targets != ignore_index
    logp = logits.softmax(-1).log()
    nll = -logp.gather(-1, torch.where(keep, targets, 0)[..., None]).squeeze(-1)
    return (nll * keep).sum() / keep.sum()


# --- optimizer mutants --------------------------------------------------------------------------------------------
class ListSGD:
    "SGD keeping its momentum buffers in a list: the shape the mutants below are written in."

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0):
        self.params = list(params)
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.buffers = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def step(self):
        for p, buf in zip(self.params, self.buffers, strict=True):
            buf.mul_(self.momentum).add_(p.grad + self.weight_decay * p)
            p.sub_(self.lr * buf)

    def zero_grad(self):
        for p in self.params:
            p.grad = None


class ListAdamW:
    "AdamW keeping its moments in lists and one step count: not a torch.optim.Optimizer, nothing to save."

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        self.params = list(params)
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.t = 0

    @torch.no_grad()
    def step(self):
        self.t += 1
        b1, b2 = self.betas
        for p, m, v in zip(self.params, self.m, self.v, strict=True):
            p.mul_(1 - self.lr * self.weight_decay)
            m.mul_(b1).add_((1 - b1) * p.grad)
            v.mul_(b2).add_((1 - b2) * p.grad**2)
            p.sub_(self.lr * (m / (1 - b1**self.t)) / ((v / (1 - b2**self.t)).sqrt() + self.eps))

    def zero_grad(self):
        for p in self.params:
            p.grad = None

class SGDNoMomentum(ListSGD):
    @torch.no_grad()
    def step(self):
        for p in self.params:
            p.sub_(self.lr * (p.grad + self.weight_decay * p))


class SGDDampened(ListSGD):  # buf = mu * buf + (1 - mu) * g, an exponential average
    @torch.no_grad()
    def step(self):
        for p, buf in zip(self.params, self.buffers, strict=True):
            buf.mul_(self.momentum).add_((1 - self.momentum) * (p.grad + self.weight_decay * p))
            p.sub_(self.lr * buf)


class SGDDecoupledDecay(ListSGD):  # weight decay outside the momentum buffer
    @torch.no_grad()
    def step(self):
        for p, buf in zip(self.params, self.buffers, strict=True):
            buf.mul_(self.momentum).add_(p.grad)
            p.sub_(self.lr * (buf + self.weight_decay * p))


class SGDNesterov(ListSGD):
    @torch.no_grad()
    def step(self):
        for p, buf in zip(self.params, self.buffers, strict=True):
            g = p.grad + self.weight_decay * p
            buf.mul_(self.momentum).add_(g)
            p.sub_(self.lr * (g + self.momentum * buf))


class SGDZeroGradNoop(ListSGD):
    def zero_grad(self):
        pass


class AdamWithL2(ListAdamW):  # L2 in the gradient instead of decoupled decay
    @torch.no_grad()
    def step(self):
        for p in self.params:
            p.grad = p.grad + self.weight_decay * p
        decay, self.weight_decay = self.weight_decay, 0.0
        super().step()
        self.weight_decay = decay


class AdamWNoBiasCorrection(ListAdamW):
    @torch.no_grad()
    def step(self):
        b1, b2 = self.betas
        for p, m, v in zip(self.params, self.m, self.v, strict=True):
            p.mul_(1 - self.lr * self.weight_decay)
            m.mul_(b1).add_((1 - b1) * p.grad)
            v.mul_(b2).add_((1 - b2) * p.grad**2)
            p.sub_(self.lr * m / (v.sqrt() + self.eps))


class AdamWEpsInsideSqrt(ListAdamW):
    @torch.no_grad()
    def step(self):
        self.t += 1
        b1, b2 = self.betas
        for p, m, v in zip(self.params, self.m, self.v, strict=True):
            p.mul_(1 - self.lr * self.weight_decay)
            m.mul_(b1).add_((1 - b1) * p.grad)
            v.mul_(b2).add_((1 - b2) * p.grad**2)
            p.sub_(self.lr * (m / (1 - b1**self.t)) / (v / (1 - b2**self.t) + self.eps).sqrt())


class AdamWDecayAfterUpdate(ListAdamW):
    @torch.no_grad()
    def step(self):
        decay, self.weight_decay = self.weight_decay, 0.0
        super().step()
        self.weight_decay = decay
        for p in self.params:
            p.mul_(1 - self.lr * decay)


class AdamWDecayWithoutLr(ListAdamW):  # p *= 1 - wd
    @torch.no_grad()
    def step(self):
        decay, self.weight_decay = self.weight_decay, 0.0
        for p in self.params:
            p.mul_(1 - decay)
        super().step()
        self.weight_decay = decay


class AdamWStepCountFromZero(ListAdamW):  # bias correction with t = 0 at the first step
    @torch.no_grad()
    def step(self):
        super().step()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.t = -1


# --- checkpointable AdamW and hand-written backward mutants ---------------------------------------------------------
class OptimizerWithListState(torch.optim.Optimizer):
    "Subclasses Optimizer but keeps the moments and the step count in attributes: state_dict() saves none of them."

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))
        self.moments, self.t = {}, 0

    @torch.no_grad()
    def step(self, closure=None):
        self.t += 1
        for group in self.param_groups:
            (b1, b2), lr = group["betas"], group["lr"]
            for p in group["params"]:
                m, v = self.moments.setdefault(p, (torch.zeros_like(p), torch.zeros_like(p)))
                p.mul_(1 - lr * group["weight_decay"])
                m.mul_(b1).add_((1 - b1) * p.grad)
                v.mul_(b2).add_((1 - b2) * p.grad**2)
                p.sub_(lr * (m / (1 - b1**self.t)) / ((v / (1 - b2**self.t)).sqrt() + group["eps"]))


class AdamWLrFromDefaults(L.AdamW):
    "Reads the learning rate once, from the defaults: param groups' own rates and schedulers are ignored."

    def __init__(self, params, lr=1e-3, **kwargs):
        super().__init__(params, lr=lr, **kwargs)
        self.fixed_lr = lr

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            group["lr"] = self.fixed_lr
        return super().step()


class AdamWDefaultDecayOnly(L.AdamW):
    "Applies the default weight decay to every group, ignoring a group's own."

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            group["weight_decay"] = self.defaults["weight_decay"]
        return super().step()


def _forward(x, y, w1, b1, w2, b2):
    h = torch.tanh(x @ w1 + b1)
    logits = h @ w2 + b2
    log_probs = logits.log_softmax(-1)
    rows = torch.arange(len(y))
    return h, log_probs, rows, -log_probs[rows, y].mean()


def backward_mutant(mistake):
    def fn(x, y, w1, b1, w2, b2):
        h, log_probs, rows, loss = _forward(x, y, w1, b1, w2, b2)
        d = log_probs.exp()
        if mistake != "softmax without the one-hot":
            d[rows, y] -= 1
        if mistake != "not divided by the batch":
            d = d / len(y)
        pre = x @ w1 + b1
        d_pre = (d @ w2.T) * (1 - (pre if mistake == "tanh derivative at the pre-activation" else h) ** 2)
        reduce = (lambda t: t.mean(0)) if mistake == "bias gradients averaged" else (lambda t: t.sum(0))
        return loss, {"w1": x.T @ d_pre, "b1": reduce(d_pre), "w2": h.T @ d, "b2": reduce(d)}
    return fn


def lr_reference(step, max_lr, min_lr, warmup_steps, total_steps):
    "The library's schedule, under the exercise's argument names."
    return A.lr_at(step, max_lr, min_lr, warmup_steps, total_steps)


# --- schedule mutants ---------------------------------------------------------------------------------------------
def lr_warmup_from_zero(step, max_lr, min_lr, warmup_steps, total_steps):  # off by one: rate 0 at step 0
    if step < warmup_steps:
        return max_lr * step / warmup_steps
    return A.lr_at(step, max_lr, min_lr, warmup_steps, total_steps)


def lr_cosine_to_zero(step, max_lr, min_lr, warmup_steps, total_steps):  # never reaches min_lr
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / (total_steps - warmup_steps))
    return max(min_lr, 0.5 * max_lr * (1 + math.cos(math.pi * progress)))


def lr_cosine_over_total(step, max_lr, min_lr, warmup_steps, total_steps):  # decay measured from step 0
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    progress = min(1.0, step / total_steps)
    return min_lr + 0.5 * (max_lr - min_lr) * (1 + math.cos(math.pi * progress))


def lr_periodic(step, max_lr, min_lr, warmup_steps, total_steps):  # keeps following the cosine after total_steps
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return min_lr + 0.5 * (max_lr - min_lr) * (1 + math.cos(math.pi * progress))


def lr_linear_decay(step, max_lr, min_lr, warmup_steps, total_steps):
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / (total_steps - warmup_steps))
    return max_lr - (max_lr - min_lr) * progress


# --- clipping mutants ---------------------------------------------------------------------------------------------
@torch.no_grad()
def clip_per_parameter(params, max_norm):
    norms = []
    for p in params:
        if p.grad is not None:
            norms.append(p.grad.norm())
            p.grad.mul_((max_norm / (norms[-1] + 1e-6)).clamp(max=1.0))
    return torch.stack(norms).norm()


@torch.no_grad()
def clip_returns_norm_after(params, max_norm):
    L.clip_grad_norm(params, max_norm)
    return torch.stack([p.grad.norm() for p in params if p.grad is not None]).norm()


@torch.no_grad()
def clip_always_rescales(params, max_norm):  # scales small gradients up to max_norm
    grads = [p.grad for p in params if p.grad is not None]
    total = torch.stack([g.norm() for g in grads]).norm()
    for g in grads:
        g.mul_(max_norm / (total + 1e-6))
    return total


@torch.no_grad()
def clip_sum_of_norms(params, max_norm):
    grads = [p.grad for p in params if p.grad is not None]
    total = sum(g.norm() for g in grads)
    for g in grads:
        g.mul_((max_norm / (total + 1e-6)).clamp(max=1.0))
    return total


@torch.no_grad()
def clip_squared_norm(params, max_norm):  # forgets the square root
    grads = [p.grad for p in params if p.grad is not None]
    total = sum((g**2).sum() for g in grads)
    for g in grads:
        g.mul_((max_norm / (total + 1e-6)).clamp(max=1.0))
    return total


# check name -> (check, reference, stub, {mutant name: mutant})
CHECKS = {
    "value_class": (A.check_value_class, L.Value, StubClass, {
        "assigns gradients instead of accumulating": AssignGrad,
        "no topological order": NoTopologicalOrder,
        "tanh derivative 1 - t": TanhDerivative,
        "pow derivative k * x**k": PowDerivative,
        "relu passes negative gradients": LeakyRelu,
        "backward does not seed grad = 1": NoSeed,
        "2 - a computed as a - 2": RsubWrongSign,
    }),
    "numerical_grad": (A.check_numerical_grad, L.numerical_grad, stub, {
        "forward difference": forward_difference,
        "divides by eps, not 2 eps": no_factor_two,
        "perturbation not restored": no_restore,
        "all inputs perturbed at once": all_at_once,
    }),
    "softmax": (A.check_softmax, L.softmax, stub, {
        "no max subtraction": softmax_naive,
        "ignores dim": softmax_last_dim,
        "subtracts the global max": softmax_global_max,
        "normalises over dim 0": softmax_dim0,
        "detached from the graph": softmax_detached,
    }),
    "log_softmax": (A.check_log_softmax, L.log_softmax, stub, {
        "log of softmax": log_softmax_of_softmax,
        "no max subtraction": log_softmax_naive,
        "forgets to subtract the max": log_softmax_forgets_max,
        "ignores dim": log_softmax_last_dim,
    }),
    "cross_entropy": (A.check_cross_entropy, L.cross_entropy, stub, {
        "does not ignore ignore_index": ce_no_ignore,
        "averages over all tokens": ce_mean_over_all,
        "ignore_index hard-coded to -100": ce_hardcoded_ignore,
        "sum instead of mean": ce_sum,
        "log of softmax (unstable)": ce_unstable,
    }),
    "sgd": (A.check_sgd, L.SGD, StubClass, {
        "momentum ignored": SGDNoMomentum,
        "dampened momentum (EMA)": SGDDampened,
        "weight decay outside momentum": SGDDecoupledDecay,
        "nesterov": SGDNesterov,
        "zero_grad does nothing": SGDZeroGradNoop,
    }),
    "adamw": (A.check_adamw, L.AdamW, StubClass, {
        "L2 in the gradient instead of decoupled decay": AdamWithL2,
        "no bias correction": AdamWNoBiasCorrection,
        "eps inside the square root": AdamWEpsInsideSqrt,
        "decay applied after the update": AdamWDecayAfterUpdate,
        "decay not multiplied by lr": AdamWDecayWithoutLr,
        "step count starts at 0": AdamWStepCountFromZero,
    }),
    "adamw_optimizer": (A.check_adamw_optimizer, L.AdamW, StubClass, {
        "not a torch.optim.Optimizer (moments in lists)": ListAdamW,
        "moments outside self.state (lost by state_dict)": OptimizerWithListState,
        "learning rate read once, from the defaults": AdamWLrFromDefaults,
        "every group gets the default weight decay": AdamWDefaultDecayOnly,
        "L2 in the gradient": AdamWithL2,
    }),
    "mlp_backward": (A.check_mlp_backward, A._mlp_forward_backward, stub, {
        "softmax without the one-hot": backward_mutant("softmax without the one-hot"),
        "not divided by the batch": backward_mutant("not divided by the batch"),
        "tanh derivative at the pre-activation": backward_mutant("tanh derivative at the pre-activation"),
        "bias gradients averaged": backward_mutant("bias gradients averaged"),
    }),
    "lr_at": (A.check_lr_at, lr_reference, stub, {
        "warmup off by one (starts at 0)": lr_warmup_from_zero,
        "cosine decays to 0, not min_lr": lr_cosine_to_zero,
        "cosine measured from step 0": lr_cosine_over_total,
        "cosine continues after total_steps": lr_periodic,
        "linear decay": lr_linear_decay,
    }),
    "clip_grad_norm": (A.check_clip_grad_norm, L.clip_grad_norm, stub, {
        "clips each parameter on its own": clip_per_parameter,
        "returns the norm after clipping": clip_returns_norm_after,
        "rescales even below max_norm": clip_always_rescales,
        "sum of norms": clip_sum_of_norms,
        "squared norm": clip_squared_norm,
    }),
}

(test_every_check_is_mutation_tested, test_reference_passes, test_stub_rejected,
 test_mutant_rejected) = mutation_tests(CHECKS, A)



def test_failure_names_case():
    with pytest.raises(CheckFailed) as info:
        A.check_adamw(AdamWEpsInsideSqrt)
    assert "case 'betas=(0.8, 0.9), eps=1e-3, 6 steps" in str(info.value) and "after step 1" in str(info.value)
    with pytest.raises(CheckFailed) as info:
        A.check_value_class(AssignGrad)
    assert "case 'diamond: d = a * b; (d + a) * d'" in str(info.value)


def test_large_logits_case_explains_max_subtraction():
    with pytest.raises(CheckFailed) as info:
        A.check_softmax(softmax_naive)
    msg = str(info.value)
    assert "case 'large logits (scale 1e4)'" in msg and "NaN" in msg and "subtract each row's maximum" in msg


def test_schedule_mismatch_names_the_step():
    with pytest.raises(CheckFailed) as info:
        A.check_lr_at(lr_warmup_from_zero)
    assert "at index (step=" in str(info.value)
