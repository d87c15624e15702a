"Mutation tests for the tensor drills' checks: each accepts the reference and rejects plausible mistakes and the stub."
import torch

from mlre_lab.checks import drills as D

from .mutation import mutation_tests


def _mask_from(indices_fn):
    def mask(scores, k):
        return torch.zeros_like(scores, dtype=torch.bool).scatter(-1, indices_fn(scores, k), True)
    return mask


CHECKS = {
    "gather_rows": (D.check_gather_rows, D.gather_rows, {
        "flat rows without the batch offset": lambda x, idx: x.flatten(0, 1)[idx],
        "the first sequence's positions for all": lambda x, idx: x[:, idx[0]],
        "idx not expanded over d_model": lambda x, idx: x.gather(1, idx[..., None]),
    }),
    "pairwise_sq_dists": (D.check_pairwise_sq_dists, D.pairwise_sq_dists, {
        "not squared": lambda a, b: (a[:, None] - b[None]).pow(2).sum(-1).sqrt(),
        "the cross term's sign flipped": lambda a, b: (a * a).sum(-1)[:, None] + (b * b).sum(-1)[None] + 2 * a @ b.T,
        "absolute differences": lambda a, b: (a[:, None] - b[None]).abs().sum(-1),
        "(m, n) instead of (n, m)": lambda a, b: (b[:, None] - a[None]).pow(2).sum(-1),
    }),
    "running_mean": (D.check_running_mean, D.running_mean, {
        "divided by the sequence length": lambda x: x.cumsum(1) / x.size(1),
        "a running sum": lambda x: x.cumsum(1),
        "counts off by one": lambda x: x.cumsum(1) / torch.arange(2, x.size(1) + 2, dtype=x.dtype,
                                                                  device=x.device)[:, None],
        "cumulated over d": lambda x: x.cumsum(-1) / torch.arange(1, x.size(-1) + 1, dtype=x.dtype, device=x.device),
    }),
    "segment_sum": (D.check_segment_sum, D.segment_sum, {
        "index_put overwrites repeated ids": lambda v, ids, n: v.new_zeros(n, v.size(-1)).index_put((ids,), v),
        "a mean instead of a sum": lambda v, ids, n: D.segment_sum(v, ids, n) / torch.bincount(
            ids, minlength=n).clamp(min=1)[:, None].to(v.dtype),
        "only the segments that occur": lambda v, ids, n: D.segment_sum(v, ids, n)[ids.unique()],
    }),
    "top_k_mask": (D.check_top_k_mask, D.top_k_mask, {
        "the k smallest": _mask_from(lambda s, k: s.topk(k, dim=-1, largest=False).indices),
        "the first k positions": lambda s, k: (torch.arange(s.size(-1), device=s.device) < k).expand_as(s),
        "a float mask": lambda s, k: D.top_k_mask(s, k).float(),
        "k + 1 kept": _mask_from(lambda s, k: s.topk(min(k + 1, s.size(-1)), dim=-1).indices),
    }),
}

(test_every_check_is_mutation_tested, test_reference_passes, test_stub_rejected,
 test_mutant_rejected) = mutation_tests(CHECKS, D)
