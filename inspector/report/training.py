"""The saved training setup in a few words (loss, optimizer, learning rate), for the text report
and the TUI: what the model was compiled with is often the whole story of a bad model."""

from __future__ import annotations

from typing import Any

from inspector.rules.training_rules import optimizer_learning_rate, parse_loss


def training_summary(cfg: dict[str, Any] | None) -> list[tuple[str, str]]:
    """(label, value) pairs in display order; empty when the file saved no compile config."""
    if not cfg:
        return []
    items: list[tuple[str, str]] = []
    loss = _losses(cfg.get("loss"))
    if loss:
        items.append(("loss", loss))
    opt = cfg.get("optimizer")
    if isinstance(opt, dict) and opt.get("class_name"):
        items.append(("optimizer", str(opt["class_name"])))
        lr, what = optimizer_learning_rate(opt)
        if lr is not None:
            schedule = "" if what == "learning rate" else f" ({what})"
            items.append(("learning rate", f"{lr:.4g}{schedule}"))
    elif isinstance(opt, str):
        items.append(("optimizer", opt))
    return items


def _losses(raw: Any) -> str:
    """One loss, a list in output order, or a dict keyed by output name."""
    if raw is None:
        return ""
    if isinstance(raw, list):
        return ", ".join(_one_loss(v) for v in raw)
    if isinstance(raw, dict) and "class_name" not in raw:
        return ", ".join(f"{k}: {_one_loss(v)}" for k, v in raw.items())
    return _one_loss(raw)


def _one_loss(value: Any) -> str:
    loss = parse_loss(value)
    if loss is None:
        return "?" if value is not None else "none"
    return loss.name + (" (from_logits)" if loss.from_logits else "")
