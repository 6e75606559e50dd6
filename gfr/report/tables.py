"""Result tables as people read them (report and README): seed means with spread and CI first, '–' when unknown."""

from __future__ import annotations

import math

import pandas as pd

DASH = "–"


def known(x) -> bool:
    """Whether a table value is there: not None, NaN or pandas' NA."""
    return x is not None and not (isinstance(x, float) and math.isnan(x)) and not pd.isna(x)


def pct(x, digits: int = 1) -> str:
    """A proportion as a percentage, or '–'."""
    return f"{100 * x:.{digits}f}%" if known(x) else DASH


def pct_range(low, high, digits: int = 1) -> str:
    """An interval of proportions as 'a–b' percent, or '–'."""
    return f"{100 * low:.{digits}f}–{100 * high:.{digits}f}" if known(low) and known(high) else DASH


def pct_ci(value, low, high, digits: int = 1) -> str:
    """A proportion with its interval, 'a% (b–c)' in percent (the study's "accuracy (CI)" cell)."""
    return f"{pct(value, digits)} ({pct_range(low, high, digits)})"


def p_value(p) -> str:
    """A p-value to two significant digits, or '–'."""
    return f"{p:.2g}" if known(p) else DASH


def readable(frame: pd.DataFrame) -> pd.DataFrame:
    """A table with p-value columns (named '... p ...') to two significant digits and the other numeric columns,
    proportions, in percent: safe to transpose for display."""
    out = frame.copy()
    for col in out.columns:
        if " p " in f" {col} ".replace("(", " "):
            out[col] = out[col].map(p_value)
        elif pd.api.types.is_float_dtype(out[col]):
            out[col] = out[col].map(lambda x: pct(x, 2))
    return out


def mean_spread(mean, std, n) -> str:
    """'mean ± std (n seeds)' in percent; with one seed the spread is unknown: 'mean (1 seed, no spread)'."""
    if not known(mean):
        return DASH
    n = int(n) if known(n) else 0
    if n < 2 or not known(std):
        return f"{100 * mean:.1f} (1 seed, no spread)"
    return f"{100 * mean:.1f} ± {100 * std:.1f} ({n} seeds)"


def inference(r) -> str:
    """A results row's inference cell: the timing pass's median seconds (min–max) and images/s, or 'not timed'."""
    if not known(r.get("inference_s")):
        return "not timed"
    low, high = r.get("inference_min_s"), r.get("inference_max_s")
    spread = f" ({low:.1f}–{high:.1f})" if known(low) and known(high) else ""
    return f"{r.inference_s:.1f} s{spread}, {r.images_per_s:.0f} img/s"


def short_reason(backbone: str, reason) -> str:
    """The gist of why a run did not finish (the full reason stays in results.csv and the report)."""
    text = str(reason) if known(reason) else ""
    text = text.removeprefix(f"{backbone}: ")
    return text.split(": ")[0].split(" (")[0][:80]


def summary(results: pd.DataFrame) -> pd.DataFrame:
    """One row per run: the seed-mean headline (spread, seed 95% CI, test-sampling 95% interval), the reported head
    (secondary), speed, status."""
    rows = []
    for _, r in results.iterrows():
        ok = r.status == "ok"
        rows.append({
            "run": r.run + (" (chosen)" if bool(r.get("chosen", False)) else ""),
            "status": r.status if not ok else "ok",
            "test accuracy, seed mean ± std": mean_spread(r.test_accuracy_seed_mean, r.test_accuracy_seed_std, r.n_seeds)
            if ok else f"{r.status}: {short_reason(r.get('backbone', ''), r.reason)}",
            "seed 95% CI": pct_range(r.test_accuracy_seed_ci_low, r.test_accuracy_seed_ci_high) if ok else "",
            "test-sampling 95% interval": pct_range(r.get("test_sampling_ci_low"), r.get("test_sampling_ci_high"))
            if ok else "",
            "validation, seed mean": pct(r.val_accuracy_seed_mean) if ok else "",
            "reported head (95% CI)": f"{pct(r.test_accuracy)} ({pct_range(r.test_accuracy_ci_low, r.test_accuracy_ci_high)})"
            if ok else "",
            "original write-up": f"{r.original_test_accuracy:.1f}%" if known(r.original_test_accuracy) else DASH,
            "inference (test JPEGs)": inference(r) if ok else "",
        })
    return pd.DataFrame(rows).set_index("run")


def markdown(frame: pd.DataFrame, index: bool = True) -> str:
    """A DataFrame (with its index unless `index` is False) as a GitHub markdown table; cells as str() gives them."""
    return (frame.reset_index() if index else frame).to_markdown(index=False, tablefmt="github", disable_numparse=True)
