from __future__ import annotations

from pathlib import Path

import pytest

from classifier.cpu import cpu_name, has_vnni, int8_engine, native_bf16

AMD_EPYC = "fpu avx2 avx512f avx512_bf16 avx512_vnni"
XEON_AMX = "fpu avx2 avx512f avx512_bf16 avx512_vnni avx_vnni amx_bf16 amx_tile amx_int8"
OLDER_X86 = "fpu avx2 avx512f avx512bw"
ARM = "fpu neon asimd"


def cpuinfo_with(tmp_path: Path, flags: str, name: str = "Test CPU") -> Path:
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nmodel name\t: {name}\nflags\t\t: {flags}\n")
    return path


@pytest.mark.parametrize(
    ("flags", "bf16", "vnni", "engine"),
    [
        (AMD_EPYC, True, True, None),
        (XEON_AMX, True, True, "onednn"),
        (OLDER_X86, False, False, None),
        (ARM, False, False, None),
    ],
)
def test_kernels_are_chosen_by_what_the_cpu_reports(
    tmp_path: Path, flags: str, bf16: bool, vnni: bool, engine: str | None
) -> None:
    cpuinfo = cpuinfo_with(tmp_path, flags)
    assert native_bf16(cpuinfo) is bf16
    assert has_vnni(cpuinfo) is vnni
    assert int8_engine(cpuinfo) == engine


def test_an_unreadable_cpuinfo_gives_the_portable_choices(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    assert native_bf16(missing) is False
    assert has_vnni(missing) is False
    assert int8_engine(missing) is None
    assert cpu_name(missing) == "unknown CPU"


def test_the_cpu_is_named_as_it_names_itself(tmp_path: Path) -> None:
    assert cpu_name(cpuinfo_with(tmp_path, AMD_EPYC, name="AMD EPYC 9R45")) == "AMD EPYC 9R45"


def test_a_flag_must_match_whole(tmp_path: Path) -> None:
    assert not native_bf16(cpuinfo_with(tmp_path, "fpu avx512_bf16x"))
