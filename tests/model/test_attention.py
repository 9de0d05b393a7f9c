"""The one attention function: fused == explicit, masking, no (B, H, N, N) on the bare fast path."""

import importlib

import pytest
import torch

from gridformer.model import attention

# the package re-exports the function under the module's name; fetch the module itself
attention_module = importlib.import_module("gridformer.model.attention")

B, H, N, HD = 2, 3, 12, 5


@pytest.fixture
def qkv():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(B, H, N, HD, generator=g) for _ in range(3))
    bias = torch.randn(1, H, N, N, generator=g)
    mask = torch.ones(B, N, dtype=torch.bool)
    mask[0, [1, 4, 7]] = False
    mask[1, -2:] = False
    return q, k, v, bias, mask


CASES = [(c, b, m) for c in (False, True) for b in (False, True) for m in (False, True)
         if c or b]  # (content, bias, mask); bias-only logits need a bias


@pytest.mark.parametrize(("content", "use_bias", "use_mask"), CASES)
def test_fused_equals_explicit(qkv, content, use_bias, use_mask):
    q, k, v, bias, mask = qkv
    args = (q if content else None, k if content else None, v,
            bias if use_bias else None, mask if use_mask else None)
    fast, none = attention(*args)
    slow, weights = attention(*args, return_weights=True)
    assert none is None
    assert fast.shape == (B, H, N, HD)
    assert weights.shape == (B, H, N, N)
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=0)


def test_rows_sum_to_one_over_valid_keys_and_zero_on_masked(qkv):
    q, k, v, bias, mask = qkv
    _, w = attention(q, k, v, bias, mask, return_weights=True)
    keep = mask[:, None, None, :].expand_as(w)
    assert torch.all(w[~keep] == 0)
    torch.testing.assert_close(w.sum(-1), torch.ones(B, H, N), atol=1e-6, rtol=0)


def test_fast_path_without_bias_or_mask_passes_no_attn_mask(qkv, monkeypatch):
    q, k, v, _, mask = qkv
    seen = []
    real = attention_module.F.scaled_dot_product_attention

    def spy(*args, **kwargs):
        seen.append(kwargs.get("attn_mask"))
        return real(*args, **kwargs)

    monkeypatch.setattr(attention_module.F, "scaled_dot_product_attention", spy)
    attention(q, k, v)
    assert seen[-1] is None
    attention(q, k, v, key_mask=mask)  # mask only: a (B, 1, 1, N) bool, not (B, H, N, N)
    assert seen[-1].shape == (B, 1, 1, N)
    assert seen[-1].dtype == torch.bool


def test_bias_only_logits_are_softmax_of_bias(qkv):
    _, _, v, bias, _ = qkv
    out, w = attention(None, None, v, bias, return_weights=True)
    torch.testing.assert_close(w, torch.softmax(bias, -1).expand(B, H, N, N))
    torch.testing.assert_close(out, torch.softmax(bias, -1) @ v)


def test_bad_arguments(qkv):
    q, _, v, _, _ = qkv
    with pytest.raises(ValueError, match=r"attention\(\) needs both q and k, or neither"):
        attention(q, None, v)
    with pytest.raises(ValueError, match=r"attention\(\) without q and k needs a bias"):
        attention(None, None, v)


@pytest.mark.parametrize(("content", "use_mask"), [(True, False), (True, True), (False, True)])
def test_learned_bias_gradients_equal_the_written_out_formula(qkv, content, use_mask):
    # a bias that needs a gradient takes its own CPU path (not the fused kernel's math
    # fallback): its output and every gradient must equal softmax(q k^T / sqrt(hd) + b) v
    q, k, v, bias, mask = (t.clone().double() if t.is_floating_point() else t for t in qkv)
    leaves = [q, k, v, bias] if content else [v, bias]
    for t in leaves:
        t.requires_grad_(True)
    key_mask = mask if use_mask else None
    out, weights = attention(q if content else None, k if content else None, v, bias, key_mask)
    assert weights is None
    logits = bias.expand(B, H, N, N)
    if content:
        logits = logits + q @ k.transpose(-2, -1) / HD**0.5
    if use_mask:
        logits = logits.masked_fill(~mask[:, None, None, :], float("-inf"))
    ref = torch.softmax(logits, -1) @ v
    torch.testing.assert_close(out, ref)
    g = torch.Generator().manual_seed(1)
    upstream = torch.randn(out.shape, generator=g, dtype=out.dtype)
    grads = torch.autograd.grad((out * upstream).sum(), leaves)
    refs = torch.autograd.grad((ref * upstream).sum(), leaves)
    for got, want in zip(grads, refs, strict=True):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize(("batch", "bias_batch"), [(1, 1), (B, 1), (B, B)])
def test_explicit_path_for_each_bias_batch_shape(qkv, batch, bias_batch):
    """A bias shared by the batch is broadcast in place; a per-sample one goes into baddbmm:
    both give softmax(q k^T / sqrt(hd) + b) v and its gradients."""
    q, k, v, _, _ = (t[:batch].clone().double() if t.is_floating_point() else t for t in qkv)
    g = torch.Generator().manual_seed(2)
    bias = torch.randn(bias_batch, H, N, N, generator=g, dtype=torch.float64)
    leaves = [q, k, v, bias]
    for t in leaves:
        t.requires_grad_(True)
    out, weights = attention(q, k, v, bias, return_weights=True)
    ref_weights = torch.softmax(q @ k.transpose(-2, -1) / HD**0.5 + bias, -1)
    ref = ref_weights @ v
    torch.testing.assert_close(weights, ref_weights)
    upstream = torch.randn(out.shape, generator=g, dtype=out.dtype)
    grads = torch.autograd.grad((out * upstream).sum(), leaves)
    refs = torch.autograd.grad((ref * upstream).sum(), leaves)
    for got, want in zip(grads, refs, strict=True):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize(("content", "use_bias", "use_mask"), CASES)
@pytest.mark.parametrize("loss_on", ["out", "weights", "both"])
def test_fused_output_beside_weights_has_the_explicit_gradients(qkv, content, use_bias,
                                                                 use_mask, loss_on):
    """The GPU's ``return_weights`` path (fused output, separate softmax beside it) gives
    the explicit path's output and gradients, whichever of the two a loss reads (the weights
    come from the same `_softmax_weights` on both paths)."""
    q, k, v, bias, mask = (t.double() if t.is_floating_point() else t for t in qkv)
    g = torch.Generator().manual_seed(1)
    w_out = torch.randn(B, H, N, HD, generator=g, dtype=torch.float64)
    w_map = torch.randn(B, H, N, N, generator=g, dtype=torch.float64)

    def run(fn):
        leaves = [t.clone().requires_grad_() for t in (q, k, v, bias)]
        lq, lk, lv, lb = leaves
        out, weights = fn(lq if content else None, lk if content else None, lv,
                          lb if use_bias else None, mask if use_mask else None,
                          dropout_p=0.0, scale=None)
        loss = 0.0
        if loss_on in ("out", "both"):
            loss = loss + (out * w_out).sum()
        if loss_on in ("weights", "both"):
            loss = loss + (weights * w_map).sum()
        loss.backward()
        grads = [t.grad for t in leaves]
        return out.detach(), weights.detach(), grads

    ours = run(attention_module._fused_and_weights)
    reference = run(attention_module._explicit)
    torch.testing.assert_close(ours[0], reference[0], atol=1e-10, rtol=0)
    for got, want in zip(ours[2], reference[2], strict=True):
        assert (got is None) == (want is None)
        if got is not None:
            torch.testing.assert_close(got, want, atol=1e-10, rtol=0)


def test_weights_beside_fused_only_off_the_cpu(qkv, monkeypatch):
    """On the CPU ``return_weights`` keeps the explicit path (its fused kernel has no mask
    gradient); the fused-beside path is taken only off the CPU with gradients on."""
    q, k, v, bias, mask = qkv
    calls = []
    monkeypatch.setattr(attention_module, "_fused_and_weights",
                        lambda *a, **kw: calls.append(1))
    attention(q, k, v.requires_grad_(), bias, mask, return_weights=True)
    assert calls == []
    q, k, v, bias = (t.detach().to("meta") for t in (q, k, v, bias))  # a non-CPU device
    with torch.no_grad():
        attention(q, k, v.requires_grad_(), bias, mask.to("meta"), return_weights=True)
    assert calls == []
    attention(q, k, v.requires_grad_(), bias, mask.to("meta"), return_weights=True)
    assert calls == [1]
