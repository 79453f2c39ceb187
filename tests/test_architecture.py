"""The structure the architecture note promises (docs/architecture.md), checked on every run.

Layers are checked by import-linter (contracts in pyproject.toml, run by scripts/test.sh); this
file checks what import-linter cannot: module size and where the shared kernel's jobs live.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APPS = ("console", "catalog", "ledger", "reconciliation")
MAX_LINES = 500


def app_modules():
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def test_no_app_module_is_over_500_lines():
    long = {
        str(p.relative_to(ROOT)): n
        for p in app_modules()
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


# Jobs the kernel owns: a definition of one of these names anywhere else is a copy.
KERNEL_JOBS = {
    "NAIROBI": "console/kernel/clock.py",
    "EAT": "console/kernel/clock.py",
    "nairobi_day": "console/kernel/clock.py",
    "day_start": "console/kernel/clock.py",
    "day_range": "console/kernel/clock.py",
    "ksh": "console/kernel/money.py",
    "money": "console/kernel/money.py",
    "embedded_date": "console/kernel/mpesa.py",
    "date_prefix": "console/kernel/mpesa.py",
    "normalise_code": "console/kernel/mpesa.py",
    "normalise_msisdn": "console/kernel/phones.py",
    "local_phone": "console/kernel/phones.py",
    "phone_display": "console/kernel/phones.py",
    "confirm_page": "console/kernel/confirm.py",
    "range_params": "console/kernel/date_filters.py",
    "_page": "console/kernel/confirm.py",
}


def _definitions(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield node.name, node.lineno
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    yield target.id, node.lineno


@pytest.mark.parametrize("name", sorted(KERNEL_JOBS))
def test_each_kernel_job_is_defined_once(name):
    owner = KERNEL_JOBS[name]
    places = [
        f"{p.relative_to(ROOT)}:{line}"
        for p in app_modules()
        for defined, line in _definitions(p)
        if defined == name and str(p.relative_to(ROOT)) != owner
    ]
    assert places == [], f"{name} belongs to {owner}"
