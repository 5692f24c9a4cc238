"""What this CPU can do, from /proc/cpuinfo: training and inference choose their kernels by it.

The choices were measured on the kinds of 2-core machine Vigil is built on: AMD EPYCs with
AVX-512 (VNNI and BF16) or with AVX2 only, and an Intel Xeon that adds AMX; where the file cannot
be read, the portable choice is taken.
"""

from __future__ import annotations

import re
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")


def _read(cpuinfo: Path) -> str:
    try:
        return cpuinfo.read_text(encoding="utf-8", errors="ignore")
    except OSError:
        return ""


def has_flag(*flags: str, cpuinfo: Path = CPUINFO) -> bool:
    """Whether the CPU reports any of these feature flags."""
    return re.search(r"\b(" + "|".join(map(re.escape, flags)) + r")\b", _read(cpuinfo)) is not None


def cpu_name(cpuinfo: Path = CPUINFO) -> str:
    """The processor, for the model card: bfloat16 kernels differ between CPUs, and so do their models."""
    found = re.search(r"^model name\s*:\s*(.+)$", _read(cpuinfo), re.MULTILINE)
    return found.group(1).strip() if found else "unknown CPU"


def native_bf16(cpuinfo: Path = CPUINFO) -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX).

    There, mixed-precision training takes 30 % less time than fp32 (measured on the 2-core
    machine) for the same dev macro-F1; elsewhere bfloat16 is emulated and slower, so training
    stays in fp32.
    """
    return has_flag("avx512_bf16", "amx_bf16", cpuinfo=cpuinfo)


def has_vnni(cpuinfo: Path = CPUINFO) -> bool:
    """Whether int8 products are summed in 32 bits (VNNI or AMX), so int8 weights may use all 8 bits."""
    return has_flag("avx512_vnni", "avx_vnni", "amx_int8", cpuinfo=cpuinfo)


def int8_engine(cpuinfo: Path = CPUINFO) -> str | None:
    """The quantised engine for the int8 model: oneDNN where the CPU has AMX, else None (PyTorch's default).

    On the Intel Xeon with AMX, oneDNN ran the int8 model about 1.15 times faster than PyTorch's
    default ``x86`` engine (646 to 663 texts/s against 535 to 592 in the benchmark, with dev
    macro-F1 unchanged at 0.898); on the 2-core AMD EPYCs it was slower (with AVX-512) or no
    faster (with AVX2 only).
    """
    return "onednn" if has_flag("amx_int8", cpuinfo=cpuinfo) else None
