"""scripts/check_error_register.py on disassembly shaped like objdump's.

The flagged shape is the one a release build of the LSTM engine's `load` had (a throwing function
that keeps its incoming error register aside, reuses r12 for a stride, and ends a path in a tail
jump to memmove); the others are the shapes that must pass.
"""

import importlib.util
import pathlib

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "scripts" / "check_error_register.py"
spec = importlib.util.spec_from_file_location("check_error_register", SCRIPT)
check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check)

HEADER = "0000000000bb32f0 <$s4Demo4loadyyKF>:"
PROLOGUE = [
    "  bb32f0:\tpush   %rbp",
    "  bb32f1:\tmov    %rsp,%rbp",
    "  bb32f4:\tpush   %r15",
]
SPILL = "  bb3326:\tmov    %r12,-0x68(%rbp)"
RESTORE = "  bb3377:\tmov    -0x68(%rbp),%r12"
CLOBBER = "  bb3388:\tlea    0x0(,%r9,4),%r12"
TAIL_MEMMOVE = "  bb36c5:\tjmp    176900 <memmove@plt>"
RETURN = "  bb3387:\tret"


def function(*body):
    return [HEADER, *PROLOGUE, *body, ""]


@pytest.mark.parametrize(
    "lines, flagged",
    [
        # r12 kept aside, reused, and a path that leaves through memmove: flagged.
        (function(SPILL, RESTORE, RETURN, CLOBBER, "  bb36c4:\tpop    %rbp", TAIL_MEMMOVE), True),
        # The same with memset and memcpy.
        (function(SPILL, CLOBBER, "  bb36c5:\tjmp    176900 <memset@plt>"), True),
        (function(SPILL, CLOBBER, "  bb36c5:\tjmp    176900 <memcpy@plt>"), True),
        # r12 saved as a callee-saved register (not an error register): fine.
        (function("  bb32f6:\tpush   %r12", SPILL, CLOBBER, TAIL_MEMMOVE), False),
        # A call, not a tail jump: fine.
        (function(SPILL, CLOBBER, "  bb36c5:\tcall   176900 <memmove@plt>", RESTORE, RETURN), False),
        # r12 never reused (only restored from its spill): fine.
        (function(SPILL, RESTORE, TAIL_MEMMOVE), False),
        # A tail jump to another function: fine (LLVM's guard covers ordinary calls).
        (function(SPILL, CLOBBER, "  bb36c5:\tjmp    176900 <free@plt>"), False),
    ],
)
def test_flags_only_a_reused_error_register_before_a_memory_tail_call(lines, flagged):
    found = list(check.suspects(lines))
    assert found == (["$s4Demo4loadyyKF"] if flagged else [])


def test_each_function_is_judged_on_its_own_body():
    other = "0000000000bb4000 <$s4Demo5otheryyF>:"
    lines = [
        *function(SPILL, CLOBBER, TAIL_MEMMOVE),
        other,
        "  bb4000:\tpush   %r12",
        TAIL_MEMMOVE,
        "",
    ]
    assert list(check.suspects(lines)) == ["$s4Demo4loadyyKF"]
