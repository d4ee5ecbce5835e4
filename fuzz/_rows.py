"""Seeds and the check shared by the two challenge-row targets (CSV and JSON).

The seeds follow the tables the loose column matching exists for: the headers of NTIRE 2023 Table 1, AIM 2020
and AIS 2024 (units in brackets, rank annotations, unverified markers, missing cells, thousands separators) and
esrkit's own ``challenge run``/``rank`` outputs. A row file that reads is then ranked under every shipped
protocol and serialised, as ``esrkit challenge rank`` does.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

CSV_SEEDS: dict[str, bytes] = {
    "ntire2023": (
        b"Team,Val PSNR,Test PSNR,Ave. Time,#Params [M],FLOPs [G],#Acts [M],GPU Mem. [M],#Conv,baseline\n"
        b"NKU-ESR,26.94,27.01,13.64 (5),0.276,16.70,111.12,200.0*,110,\n"
        b"RFDN,26.93,27.01,35.54,0.433,27.10,112.03,788.13,64,yes\n"
        b"XPixel,26.90 (12),-,19.70,0.272,16.86,-,,38,\n"
    ),
    "aim2020": (
        b"Team;Runtime [s];Params [M];FLOPs [G];Val PSNR;verified;baseline\n"
        b"NJU_MCG;0.037;0.433;27.10;29.04;true;false\n"
        b"Baseline;0.110;1,517,571;166.36;29.00;;1\n"
    ),
    "ais2024": (
        b"team\tmodel\truntime_ms\tPSNR-Y QP31\tpsnr_y_qp39\tparams_m\tbaseline\n"
        b"Lanczos\t\t0\t26.2\t25.8\t0\tyes\n"
        b"ByteESR\tspan\t1.9\t26.9\t26.3\t0.06\t\n"
    ),
    "units": b"team,runtime_us,memory [GB],macs [T],acts (K),params (K)\nA,1500,1.5,0.01,2300,433\n",
    "bom": "\ufeffname,time (ms),Δ [dB],Score\nx,3.3,0.12,1.7\n".encode(),
}

JSON_SEEDS: dict[str, bytes] = {
    "list": json.dumps([
        {"team": "A", "model": "rlfn", "runtime_ms": 12.5, "params_m": 0.317, "psnr_val": 26.96, "flops_g": 19.7},
        {"team": "B", "runtime": "0.8 (2)", "Val PSNR": "27.01*", "baseline": True, "notes": "reference"},
    ]).encode(),
    "rows": json.dumps({"rows": [{"Team / Method (Sec.)": "C", "#Params [M]": "0.272",
                                  "metrics": {"psnr_y_qp31": 26.9, "runtime_ms": 1.2}}]}).encode(),
    "entries": json.dumps({"entries": [
        {"row": {"team": "D", "psnr_val": 26.95, "runtime_ms": 10}, "ranks": {}},
        {"team": "E", "psnr_val": 26.99, "runtime_ms": None, "verified": "no"},
    ]}).encode(),
    "run": json.dumps({"row": {"team": "F", "model": "imdn", "params_m": 0.894, "psnr_test_proxy": 26.4},
                       "details": {"runtime": {"div2k_valid": {"images": 2}}}}).encode(),
}


def check_rows(rows: list) -> None:
    """Every value that read is a finite float, every row has a team, and every protocol ranks and serialises
    them (or refuses with an EsrkitError, which the harness accepts)."""
    from esrkit.challenge import available_protocols, rank_rows
    from esrkit.errors import EsrkitError

    for row in rows:
        if not row.team or not all(isinstance(v, float) and math.isfinite(v) for v in row.values.values()):
            raise AssertionError(f"row read into an invalid state: {row}")
    for name in available_protocols():
        try:
            rank_rows(rows, name).to_dict()
        except EsrkitError:
            continue  # a table that lacks what this protocol ranks on


def read(path: Path, data: bytes) -> list:
    from esrkit.challenge.rows import read_rows

    path.write_bytes(data)
    return read_rows([path])
